"""The words and patterns of deadlines as people write them, in Chinese and English: numbers,
months, weekdays, times of day, relative days, "within N days", month, quarter and year ends,
旬 (ten-day periods), and the date forms a validation reply lists as accepted.

Pure data; `dates.parse_deadline` reads deadlines with it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from types import MappingProxyType

EOD = time(23, 59, 59)  # marker: "end of the working day", replaced by workday_end


# Traditional → simplified for the few characters the patterns use; 今晚/明早 spelled out.
TRAD = str.maketrans({"號": "号", "週": "周", "後": "后", "點": "点", "時": "时", "個": "个",
                       "內": "内", "這": "这", "禮": "礼", "鐘": "钟", "頭": "头", "兩": "两",
                       "為": "为", "於": "于", "遲": "迟", "與": "与", "間": "间"})


SPELL = (("今晚", "今天晚上"), ("明晚", "明天晚上"), ("明早", "明天早上"), ("今早", "今天早上"))


NUM = r"(\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"


CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}


EN_NUMS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10}


MONTHS = {"jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
           "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8,
           "august": 8, "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10,
           "nov": 11, "november": 11, "dec": 12, "december": 12}


WEEKDAYS = {"mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "weds": 2,
             "wednesday": 2, "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4,
             "friday": 4, "sat": 5, "saturday": 5, "sun": 6, "sunday": 6}


ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0,
                "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}


MONTH_RE = "(" + "|".join(sorted(MONTHS, key=len, reverse=True)) + ")"


WEEKDAY_RE = "(" + "|".join(sorted(WEEKDAYS, key=len, reverse=True)) + ")"


PREFIX = re.compile(r"^(?:(?:no later than|not later than|on or before|due by|due on|due|by|"
                     r"before|until|till|on)\s+|截止到|截止至|截止于|截至|截止|最晚|最迟|不晚于|于|在|到)")


SUFFIX = re.compile(r"(?:完成|提交|交付|回复|反馈|给出|输出|上线|处理完|解决)$|(?:之前|以前|前|为止|截止)$")


ZH_PERIOD = r"(上午|早上|早晨|中午|下午|午后|晚上|傍晚|夜里|凌晨)?"


TIMES = (
    ("zh", re.compile(ZH_PERIOD + r"\s*" + NUM + r"\s*[点时]\s*(?:(半)|(一刻)|(三刻)|"
                      r"(\d{1,2})\s*分?|(整))?")),
    ("clock", re.compile(r"(?:\bat\s+)?" + ZH_PERIOD + r"\s*(\d{1,2}):(\d{2})(?::\d{2})?"
                         r"(?:\s*([ap])\.?m\.?(?![a-z]))?")),
    ("ampm", re.compile(r"(?:\bat\s+)?\b(\d{1,2})\s*([ap])\.?m\.?(?![a-z])")),
    ("noon", re.compile(r"(?:\bat\s+)?\b(?:noon|midday)\b|中午")),
    ("eod", re.compile(r"\b(?:eod|cob|close of business|end of (?:the )?(?:business |work )?day)"
                       r"\b|下班")),
)


PM = {"下午", "午后", "晚上", "傍晚", "夜里"}


RELATIVE_DAYS = {"今天": 0, "今日": 0, "today": 0, "tonight": 0, "明天": 1, "明日": 1,
                  "tomorrow": 1, "tmr": 1, "后天": 2, "day after tomorrow": 2,
                  "the day after tomorrow": 2, "大后天": 3}


ZH_WITHIN = re.compile(r"^(半|\d{1,3}|[零〇一二两三四五六七八九十]{1,3})\s*个?\s*"
                        r"(工作日|天|日|小时|钟头|分钟|周|星期|礼拜)\s*(?:之内|以内|内)$")


EN_WITHIN = re.compile(r"^(?:in|within)\s+(\d{1,3}|an?|one|two|three|four|five|six|seven|eight|"
                        r"nine|ten)\s+(?:(working|business|work)\s+)?(days?|hours?|hrs?|minutes?|"
                        r"mins?|weeks?)$")


ISO = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$")


ZH_YMD = re.compile(r"^(\d{4}|[零〇一二三四五六七八九]{4})\s*年\s*" + NUM + r"\s*月\s*" + NUM
                     + r"\s*[日号]?$")


MD = re.compile(r"^(\d{1,2})\s*[/.-]\s*(\d{1,2})$")


ZH_MD = re.compile(r"^" + NUM + r"\s*月(?:份)?\s*" + NUM + r"\s*[日号]?$")


ZH_DAY = re.compile(r"^(本月|这个月|下月|下个月)?\s*" + NUM + r"\s*[日号]$")


EN_MD = re.compile(r"^" + MONTH_RE + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$")


EN_DM = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + MONTH_RE
                    + r"\.?(?:,?\s+(\d{4}))?$")


ZH_WEEKDAY = re.compile(r"^(本|这|下下|下)?\s*个?\s*(?:周|星期|礼拜)\s*([一二三四五六日天1-7])$")


EN_WEEKDAY = re.compile(r"^(this coming|coming|this|next)?\s*" + WEEKDAY_RE + r"\.?$")


ZH_NOTE = re.compile(r"^(.+?)\s*[(（]?\s*(?:周|星期|礼拜)\s*([一二三四五六日天])\s*[)）]?$")


EN_NOTE_AFTER = re.compile(r"^(.+?)\s*,?\s*\(?" + WEEKDAY_RE + r"\.?\)?$")


EN_NOTE_BEFORE = re.compile(r"^" + WEEKDAY_RE + r"\.?,?\s+(.+)$")


MONTH_END = {"月底": 0, "本月底": 0, "月末": 0, "本月末": 0, "这个月底": 0, "end of month": 0,
              "end of the month": 0, "end of this month": 0, "eom": 0, "下月底": 1, "下个月底": 1,
              "下月末": 1, "end of next month": 1}


WEEK_END = {"本周内": 0, "这周内": 0, "本周": 0, "这周": 0, "this week": 0, "end of week": 0,
             "end of the week": 0, "end of this week": 0, "eow": 0, "下周内": 1,
             "end of next week": 1}


CN_QUARTER = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}


QUARTER_END = re.compile(
    r"^(?:(本|这个?|今|下个?|下一)?\s*(?:季度|季)(?:末|底)|q([1-4])\s*(?:末|底|end)|"
    r"(?:第)?([一二三四1-4])\s*季度\s*(?:末|底)|end of (?:the |this )?(next )?quarter|"
    r"end of q([1-4])|eoq)$")


XUN = re.compile(r"^(?:(本月|这个月|下月|下个月)|" + NUM + r"\s*月(?:份)?)?\s*([上中下])旬$")


EN_XUN = re.compile(r"^(early|mid|late|end of)[- ]?" + MONTH_RE + r"\.?$")


ZH_MONTH_END = re.compile(r"^" + NUM + r"\s*月(?:份)?\s*(?:月)?(?:底|末)$")


YEAR_END = {"年底", "本年底", "今年底", "年末", "今年年底", "end of year", "end of the year", "eoy"}


ACCEPTED_FORMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "zh": ("8月10日", "8月10日前", "2026年8月10日", "2026-08-10", "8/10", "8.10", "15号前",
           "周五前", "下周三", "明天下午3点", "月底前", "8月中旬", "Q3末", "本季度末", "3天内",
           "两周内", "3个工作日内", "2小时内"),
    "en": ("Aug 10", "10 August 2026", "2026-08-10 15:00", "8/10", "by Friday", "next Friday",
           "tomorrow 3pm", "EOD", "end of month", "mid-August", "end of Q3", "in 3 days",
           "within 2 hours"),
})
