"""Deadlines as people write them, in Chinese or English, turned into one aware datetime.

The one job is `parse_deadline(text, now)`. It is pure: `now` is a parameter and also fixes the
timezone of the result. Surprises worth knowing:

- "8月10日前" / "by Aug 10" mean *due on* Aug 10 (end of that working day), never "ago".
- A date without a year is its next occurrence, and today counts: on 2026-11-27 "8月10日" is
  2027-08-10, on 2026-08-10 itself it is today.
- A weekday alone ("周五", "Friday", "by Friday") is its next occurrence, today included;
  "本周五"/"this Friday" is the Friday of the current Monday–Sunday week and "下周五"/"next Friday"
  the Friday of the following week (so "next Friday" said on Sunday is five days away).
- No time given: `workday_end` of that day. A time alone ("15:30", "上午10点") means today.
- A result earlier than `now` is error "past" (its value is kept, so a reply can show it).
- Anything not read exactly is error "unparseable": no fuzzy guessing ("asap", "尽快", "8/10/2026").
- Working days are Monday–Friday unless a `workdays(date) -> bool` predicate (the work calendar)
  is passed; `previous_workday` finds the working day before a deadline that falls on a weekend
  or holiday (the guide's buffer advice).
- "8.10", "08/10" and "8-10" are month.day (never a decimal or a range); "Q3末", "三季度末",
  "本季度末" the last day of that quarter (its next occurrence); "8月上旬/中旬/下旬" the 10th,
  the 20th and the month's last day, a bare "下旬" this month's (next month's once past);
  "8月底" that month's last day; "early/mid/late August" the same as 上旬/中旬/下旬.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import MappingProxyType

Workdays = Callable[[date], bool]


@dataclass(frozen=True)
class Deadline:
    value: datetime | None  # tz-aware, in now's tz; also set when error == "past"
    error: str | None  # None | "unparseable" | "past"
    has_time: bool = False  # True when the text named a time of day

    @property
    def ok(self) -> bool:
        return self.error is None


ACCEPTED_FORMS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "zh": ("8月10日", "8月10日前", "2026年8月10日", "2026-08-10", "8/10", "8.10", "15号前",
           "周五前", "下周三", "明天下午3点", "月底前", "8月中旬", "Q3末", "本季度末", "3天内",
           "两周内", "3个工作日内", "2小时内"),
    "en": ("Aug 10", "10 August 2026", "2026-08-10 15:00", "8/10", "by Friday", "next Friday",
           "tomorrow 3pm", "EOD", "end of month", "mid-August", "end of Q3", "in 3 days",
           "within 2 hours"),
})

_UNPARSEABLE = Deadline(None, "unparseable")
_EOD = time(23, 59, 59)  # marker: "end of the working day", replaced by workday_end

# Traditional → simplified for the few characters the patterns use; 今晚/明早 spelled out.
_TRAD = str.maketrans({"號": "号", "週": "周", "後": "后", "點": "点", "時": "时", "個": "个",
                       "內": "内", "這": "这", "禮": "礼", "鐘": "钟", "頭": "头", "兩": "两",
                       "為": "为", "於": "于", "遲": "迟", "與": "与", "間": "间"})
_SPELL = (("今晚", "今天晚上"), ("明晚", "明天晚上"), ("明早", "明天早上"), ("今早", "今天早上"))

_NUM = r"(\d{1,2}|[零〇一二两三四五六七八九十]{1,3})"
_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6,
              "七": 7, "八": 8, "九": 9}
_EN_NUMS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
            "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_MONTHS = {"jan": 1, "january": 1, "feb": 2, "february": 2, "mar": 3, "march": 3, "apr": 4,
           "april": 4, "may": 5, "jun": 6, "june": 6, "jul": 7, "july": 7, "aug": 8,
           "august": 8, "sep": 9, "sept": 9, "september": 9, "oct": 10, "october": 10,
           "nov": 11, "november": 11, "dec": 12, "december": 12}
_WEEKDAYS = {"mon": 0, "monday": 0, "tue": 1, "tues": 1, "tuesday": 1, "wed": 2, "weds": 2,
             "wednesday": 2, "thu": 3, "thur": 3, "thurs": 3, "thursday": 3, "fri": 4,
             "friday": 4, "sat": 5, "saturday": 5, "sun": 6, "sunday": 6}
_ZH_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "1": 0,
                "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_MONTH_RE = "(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_WEEKDAY_RE = "(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + ")"

_PREFIX = re.compile(r"^(?:(?:no later than|not later than|on or before|due by|due on|due|by|"
                     r"before|until|till|on)\s+|截止到|截止至|截止于|截至|截止|最晚|最迟|不晚于|于|在|到)")
_SUFFIX = re.compile(r"(?:完成|提交|交付|回复|反馈|给出|输出|上线|处理完|解决)$|(?:之前|以前|前|为止|截止)$")

_ZH_PERIOD = r"(上午|早上|早晨|中午|下午|午后|晚上|傍晚|夜里|凌晨)?"
_TIMES = (
    ("zh", re.compile(_ZH_PERIOD + r"\s*" + _NUM + r"\s*[点时]\s*(?:(半)|(一刻)|(三刻)|"
                      r"(\d{1,2})\s*分?|(整))?")),
    ("clock", re.compile(r"(?:\bat\s+)?" + _ZH_PERIOD + r"\s*(\d{1,2}):(\d{2})(?::\d{2})?"
                         r"(?:\s*([ap])\.?m\.?(?![a-z]))?")),
    ("ampm", re.compile(r"(?:\bat\s+)?\b(\d{1,2})\s*([ap])\.?m\.?(?![a-z])")),
    ("noon", re.compile(r"(?:\bat\s+)?\b(?:noon|midday)\b|中午")),
    ("eod", re.compile(r"\b(?:eod|cob|close of business|end of (?:the )?(?:business |work )?day)"
                       r"\b|下班")),
)
_PM = {"下午", "午后", "晚上", "傍晚", "夜里"}

_RELATIVE_DAYS = {"今天": 0, "今日": 0, "today": 0, "tonight": 0, "明天": 1, "明日": 1,
                  "tomorrow": 1, "tmr": 1, "后天": 2, "day after tomorrow": 2,
                  "the day after tomorrow": 2, "大后天": 3}
_ZH_WITHIN = re.compile(r"^(半|\d{1,3}|[零〇一二两三四五六七八九十]{1,3})\s*个?\s*"
                        r"(工作日|天|日|小时|钟头|分钟|周|星期|礼拜)\s*(?:之内|以内|内)$")
_EN_WITHIN = re.compile(r"^(?:in|within)\s+(\d{1,3}|an?|one|two|three|four|five|six|seven|eight|"
                        r"nine|ten)\s+(?:(working|business|work)\s+)?(days?|hours?|hrs?|minutes?|"
                        r"mins?|weeks?)$")
_ISO = re.compile(r"^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$")
_ZH_YMD = re.compile(r"^(\d{4}|[零〇一二三四五六七八九]{4})\s*年\s*" + _NUM + r"\s*月\s*" + _NUM
                     + r"\s*[日号]?$")
_MD = re.compile(r"^(\d{1,2})\s*[/.-]\s*(\d{1,2})$")
_ZH_MD = re.compile(r"^" + _NUM + r"\s*月(?:份)?\s*" + _NUM + r"\s*[日号]?$")
_ZH_DAY = re.compile(r"^(本月|这个月|下月|下个月)?\s*" + _NUM + r"\s*[日号]$")
_EN_MD = re.compile(r"^" + _MONTH_RE + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?(?:,?\s+(\d{4}))?$")
_EN_DM = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH_RE
                    + r"\.?(?:,?\s+(\d{4}))?$")
_ZH_WEEKDAY = re.compile(r"^(本|这|下下|下)?\s*个?\s*(?:周|星期|礼拜)\s*([一二三四五六日天1-7])$")
_EN_WEEKDAY = re.compile(r"^(this coming|coming|this|next)?\s*" + _WEEKDAY_RE + r"\.?$")
_ZH_NOTE = re.compile(r"^(.+?)\s*[(（]?\s*(?:周|星期|礼拜)\s*([一二三四五六日天])\s*[)）]?$")
_EN_NOTE_AFTER = re.compile(r"^(.+?)\s*,?\s*\(?" + _WEEKDAY_RE + r"\.?\)?$")
_EN_NOTE_BEFORE = re.compile(r"^" + _WEEKDAY_RE + r"\.?,?\s+(.+)$")
_MONTH_END = {"月底": 0, "本月底": 0, "月末": 0, "本月末": 0, "这个月底": 0, "end of month": 0,
              "end of the month": 0, "end of this month": 0, "eom": 0, "下月底": 1, "下个月底": 1,
              "下月末": 1, "end of next month": 1}
_WEEK_END = {"本周内": 0, "这周内": 0, "本周": 0, "这周": 0, "this week": 0, "end of week": 0,
             "end of the week": 0, "end of this week": 0, "eow": 0, "下周内": 1,
             "end of next week": 1}
_CN_QUARTER = {"一": 1, "二": 2, "三": 3, "四": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_QUARTER_END = re.compile(
    r"^(?:(本|这个?|今|下个?|下一)?\s*(?:季度|季)(?:末|底)|q([1-4])\s*(?:末|底|end)|"
    r"(?:第)?([一二三四1-4])\s*季度\s*(?:末|底)|end of (?:the |this )?(next )?quarter|"
    r"end of q([1-4])|eoq)$")
_XUN = re.compile(r"^(?:(本月|这个月|下月|下个月)|" + _NUM + r"\s*月(?:份)?)?\s*([上中下])旬$")
_EN_XUN = re.compile(r"^(early|mid|late|end of)[- ]?" + _MONTH_RE + r"\.?$")
_ZH_MONTH_END = re.compile(r"^" + _NUM + r"\s*月(?:份)?\s*(?:月)?(?:底|末)$")
_YEAR_END = {"年底", "本年底", "今年底", "年末", "今年年底", "end of year", "end of the year", "eoy"}


def parse_deadline(text: str, now: datetime, *, workday_end: time = time(18, 0),
                   workdays: Workdays | None = None) -> Deadline:
    """Read one deadline; see the module docstring for the forms and their meaning."""
    is_workday = workdays or _monday_to_friday
    s = _normalise(text)
    if not s:
        return _UNPARSEABLE
    today = now.date()
    within = _within(s, now, is_workday)
    if within is not None:
        value, has_time = within
        value = value if has_time else _at(value.date(), workday_end, now)
        return _checked(value, now, has_time)
    clock, s = _extract_time(s)
    if clock is _INVALID:
        return _UNPARSEABLE
    if s:
        day = _parse_day(s, today, is_workday)
    else:
        day = today if clock is not None else None
    if day is None:
        return _UNPARSEABLE
    has_time = clock is not None and clock != _EOD
    return _checked(_at(day, clock if has_time else workday_end, now), now, has_time)


def _monday_to_friday(day: date) -> bool:
    return day.weekday() < 5


def _normalise(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).translate(_TRAD).casefold()
    for old, new in _SPELL:
        s = s.replace(old, new)
    s = re.sub(r"(\d)t(\d)", r"\1 \2", re.sub(r"\s+", " ", s)).strip(" 。.!！,，;；")
    for _ in range(4):
        stripped = _SUFFIX.sub("", _PREFIX.sub("", s)).strip(" ,，")
        if stripped == s:
            break
        s = stripped
    return s


def _at(day: date, clock: time, now: datetime) -> datetime:
    return datetime.combine(day, clock, tzinfo=now.tzinfo)


def _checked(value: datetime, now: datetime, has_time: bool) -> Deadline:
    return Deadline(value, "past" if value < now else None, has_time)


def _number(token: str) -> int | None:
    if token.isdecimal():
        return int(token)
    if token in _EN_NUMS:
        return _EN_NUMS[token]
    if "十" in token:
        tens, _, ones = token.partition("十")
        high = _CN_DIGITS.get(tens) if tens else 1
        low = _CN_DIGITS.get(ones) if ones else 0
        return None if high is None or low is None else high * 10 + low
    if token and all(ch in _CN_DIGITS for ch in token):
        return int("".join(str(_CN_DIGITS[ch]) for ch in token))
    return None


def _within(s: str, now: datetime, is_workday: Workdays) -> tuple[datetime, bool] | None:
    """"3天内", "3个工作日内", "2小时内", "in 3 days", "within 2 hours": (value, has_time)."""
    zh = _ZH_WITHIN.match(s)
    en = _EN_WITHIN.match(s)
    if zh:
        count, unit = (0.5 if zh[1] == "半" else _number(zh[1])), zh[2]
        unit = {"工作日": "workday", "天": "day", "日": "day", "小时": "hour", "钟头": "hour",
                "分钟": "minute"}.get(unit, "week")
    elif en:
        count, unit = _number(en[1]), en[3].rstrip("s")
        unit = {"hr": "hour", "min": "minute"}.get(unit, unit)
        unit = "workday" if en[2] and unit == "day" else unit
    else:
        return None
    if count is None:
        return None
    if unit in ("hour", "minute"):
        return now + timedelta(**{unit + "s": count}), True
    if count != int(count):
        return None
    if unit == "workday":
        day = now.date()
        for _ in range(int(count)):
            day += timedelta(days=1)
            while not is_workday(day):
                day += timedelta(days=1)
        return _at(day, time(0), now), False
    days = int(count) * (7 if unit == "week" else 1)
    return _at(now.date() + timedelta(days=days), time(0), now), False


class _Invalid:
    """A time was written but cannot be a time of day ("25:00", "晚上12点")."""


_INVALID = _Invalid()


def _extract_time(s: str) -> tuple[time | _Invalid | None, str]:
    """Find and remove the one time of day in `s`; two times make it invalid."""
    for kind, pattern in _TIMES:
        found = pattern.search(s)
        if not found:
            continue
        rest = (s[:found.start()] + " " + s[found.end():]).strip(" ,，的")
        rest = re.sub(r"\s+at$", "", re.sub(r"\s+", " ", rest)).strip()
        if any(p.search(rest) for _, p in _TIMES):
            return _INVALID, rest
        return _time_of(kind, found), rest
    return None, s


def _time_of(kind: str, m: re.Match[str]) -> time | _Invalid:
    if kind == "eod":
        return _EOD
    if kind == "noon":
        return time(12, 0)
    if kind == "ampm":
        hour, minute, period = _number(m[1]), 0, m[2] + "m"
    elif kind == "clock":
        hour, minute, period = int(m[2]), int(m[3]), (m[1] or (m[4] + "m" if m[4] else None))
    else:
        hour = _number(m[2])
        minute = 30 if m[3] else 15 if m[4] else 45 if m[5] else int(m[6]) if m[6] else 0
        period = m[1]
    if hour is None:
        return _INVALID
    if period in ("晚上", "夜里") and hour == 12:  # midnight: which day is meant is unclear
        return _INVALID
    if period in ("pm", *_PM) and hour < 12:
        hour += 12
    elif period == "中午" and hour < 11:
        hour += 12
    elif period == "am" and hour == 12:
        hour = 0
    elif period in ("am", "pm") and not 1 <= hour <= 12:
        return _INVALID
    if hour > 23 or minute > 59:
        return _INVALID
    return time(hour, minute)


def _parse_day(s: str, today: date, is_workday: Workdays) -> date | None:
    day = _plain_day(s, today, is_workday)
    if day is not None:
        return day
    # A date with its weekday alongside, "8月10日（周一）", "Mon, Aug 10": both must agree.
    for pattern, date_group, weekday_group in ((_ZH_NOTE, 1, 2), (_EN_NOTE_AFTER, 1, 2),
                                               (_EN_NOTE_BEFORE, 2, 1)):
        m = pattern.match(s)
        if m:
            day = _plain_day(m[date_group].strip(" ,，"), today, is_workday)
            word = m[weekday_group]
            weekday = _ZH_WEEKDAYS.get(word, _WEEKDAYS.get(word))
            if day is not None and day.weekday() == weekday:
                return day
            return None
    return None


def _plain_day(s: str, today: date, is_workday: Workdays) -> date | None:
    if s in _RELATIVE_DAYS:
        return today + timedelta(days=_RELATIVE_DAYS[s])
    if m := _ISO.match(s):
        return _date(int(m[1]), int(m[3]), int(m[4]))
    if m := _ZH_YMD.match(s):
        year, month, day = _number(m[1]), _number(m[2]), _number(m[3])
        if year is None or month is None or day is None:
            return None
        return _date(year, month, day)
    if (m := _MD.match(s)) or (m := _ZH_MD.match(s)):
        return _next_month_day(_number(m[1]), _number(m[2]), today)
    if m := _ZH_DAY.match(s):
        return _day_of_month(_number(m[2]), today, m[1])
    if m := _EN_MD.match(s):
        return _month_day(_MONTHS[m[1]], int(m[2]), m[3], today)
    if m := _EN_DM.match(s):
        return _month_day(_MONTHS[m[2]], int(m[1]), m[3], today)
    if (m := _ZH_WEEKDAY.match(s)) or (m := _EN_WEEKDAY.match(s)):
        weekday = _ZH_WEEKDAYS.get(m[2], _WEEKDAYS.get(m[2], 0))
        week = {"本": 0, "这": 0, "this": 0, "下": 1, "next": 1, "下下": 2}.get(m[1] or "")
        if week is None:  # bare or "coming": next occurrence, today counts
            return today + timedelta(days=(weekday - today.weekday()) % 7)
        return today + timedelta(days=7 * week + weekday - today.weekday())
    if s in _MONTH_END:
        year, month = divmod(today.year * 12 + today.month - 1 + _MONTH_END[s], 12)
        return date(year, month + 1, calendar.monthrange(year, month + 1)[1])
    if s in _WEEK_END:
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=_WEEK_END[s])
        days = [monday + timedelta(days=i) for i in range(7)]
        working = [d for d in days if is_workday(d)]
        return working[-1] if working else days[4]
    if s in _YEAR_END:
        return date(today.year, 12, 31)
    return _period_end(s, today)


def _period_end(s: str, today: date) -> date | None:
    """Quarter ends (Q3末, 本季度末), 上旬/中旬/下旬 and a named month's end (8月底)."""
    if m := _QUARTER_END.match(s):
        if m[2] or m[3] or m[5]:
            quarter = _CN_QUARTER[m[2] or m[3] or m[5]]
            for year in (today.year, today.year + 1):
                end = _month_end(year, quarter * 3)
                if end >= today:
                    return end
        ahead = 1 if (m[1] or "").startswith("下") or m[4] else 0
        year, month = divmod(today.year * 12 + (today.month - 1) // 3 * 3 + 2 + 3 * ahead, 12)
        return _month_end(year, month + 1)
    if m := _XUN.match(s):
        which = {"上": 10, "中": 20, "下": 0}[m[3]]
        if m[2]:
            month = _number(m[2])
            if month is None or not 1 <= month <= 12:
                return None
            for year in (today.year, today.year + 1):
                day = _xun_day(year, month, which)
                if day >= today:
                    return day
            return None
        offset = 1 if m[1] in ("下月", "下个月") else 0
        year, month = divmod(today.year * 12 + today.month - 1 + offset, 12)
        day = _xun_day(year, month + 1, which)
        if day < today and m[1] is None:
            year, month = divmod(today.year * 12 + today.month, 12)
            day = _xun_day(year, month + 1, which)
        return day
    if m := _EN_XUN.match(s):
        month = _MONTHS[m[2]]
        which = {"early": 10, "mid": 20}.get(m[1], 0)
        for year in (today.year, today.year + 1):
            day = _xun_day(year, month, which)
            if day >= today:
                return day
    if m := _ZH_MONTH_END.match(s):
        month = _number(m[1])
        if month is None or not 1 <= month <= 12:
            return None
        for year in (today.year, today.year + 1):
            if _month_end(year, month) >= today:
                return _month_end(year, month)
    return None


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _xun_day(year: int, month: int, which: int) -> date:
    """The last day of a month's 上旬 (10th), 中旬 (20th) or 下旬 (its last day: `which` 0)."""
    return date(year, month, which) if which else _month_end(year, month)


def previous_workday(day: date, workdays: Workdays | None = None) -> date:
    """The last working day before `day` (the buffer the guide advises before a deadline that
    falls on a weekend or holiday)."""
    is_workday = workdays or _monday_to_friday
    earlier = day - timedelta(days=1)
    for _ in range(60):  # the longest holiday runs are a week or two
        if is_workday(earlier):
            return earlier
        earlier -= timedelta(days=1)
    return earlier


def _date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _month_day(month: int, day: int, year: str | None, today: date) -> date | None:
    return _date(int(year), month, day) if year else _next_month_day(month, day, today)


def _next_month_day(month: int | None, day: int | None, today: date) -> date | None:
    """The next `month`/`day` on or after today (Feb 29 waits for a leap year)."""
    if month is None or day is None or _date(2000, month, day) is None:
        return None
    for year in range(today.year, today.year + 9):
        found = _date(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _day_of_month(day: int | None, today: date, which: str | None) -> date | None:
    """"15号": the next 15th (today counts); "本月15号" this month's; "下月15号" next month's."""
    if day is None:
        return None
    for offset in range(0 if which != "下月" and which != "下个月" else 1, 13):
        year, month = divmod(today.year * 12 + today.month - 1 + offset, 12)
        found = _date(year, month + 1, day)
        if which is not None or (found is not None and found >= today):
            return found
    return None
