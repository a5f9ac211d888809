"""Recurring tasks' rules: read a 重复 rule (zh or en), and put its days on the work calendar.
The series a rule drives, stored on its item, is `series.py`'s.

Pure: no clock, no I/O.

Surprises worth knowing:

* An occurrence is due on the rule's day (每月5日 → the 5th, 每周一 → Monday, 每季度末 → the last
  day of the quarter), at the time of day the first task was due. A day that is not a working day
  (a weekend, 春节, 国庆) moves to the previous working day, and a make-up workday (调休, e.g.
  Saturday 2026-02-14) is one. Two rule days that land on the same working day (the two Mondays
  inside the 2026 Spring Festival both move to Saturday 02-14) are one occurrence.
* Each occurrence is created `lead_days` working days before its day: the notice the first task
  had (working days from its email to its deadline), but never a whole period (0 for every
  working day, at most 4 for weekly, 15 monthly, 40 quarterly, 60 yearly).
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from maild.core.workcal import WorkCalendar

MAX_LEAD = {"workday": 0, "week": 4, "month": 15, "quarter": 40, "year": 60}  # working days
_SCAN_DAYS = 800  # how far ahead a next occurrence is looked for (a yearly rule: two years)
_WALK_BACK = 60  # a non-working day moves back at most this far (the longest holiday is ~10)

# The forms a rule may take, for the error message when one cannot be read.
ACCEPTED_FORMS: Mapping[str, tuple[str, ...]] = {
    "zh": ("每个工作日", "每周一", "每周一、四", "每月5日", "每月末", "每季度末", "每年8月1日"),
    "en": ("every working day", "every Monday", "monthly on the 5th", "end of every month",
           "end of each quarter", "every year on Aug 1"),
}


@dataclass(frozen=True)
class Rule:
    """When a series recurs. `every` is workday | week | month | quarter | year."""

    every: str
    weekdays: tuple[int, ...] = ()  # week: date.weekday() numbers
    day: int = 0  # month / quarter / year: the day of the month, -1 for its last day
    month: int = 0  # quarter: the month within the quarter (1–3); year: the month (1–12)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["weekdays"] = list(self.weekdays)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        return cls(str(data["every"]), tuple(data.get("weekdays", ())), int(data.get("day", 0)),
                   int(data.get("month", 0)))

    @property
    def anchored(self) -> bool:
        """Does the rule name its day, or does it take it from the first deadline?"""
        if self.every == "week":
            return bool(self.weekdays)
        if self.every in ("month", "quarter", "year"):
            return self.day != 0
        return True

    def anchor(self, day: date) -> Rule:
        """The rule with the day it left open ("每周", "monthly") taken from `day`."""
        if self.anchored:
            return self
        if self.every == "week":
            return Rule("week", (day.weekday(),))
        month = (day.month - 1) % 3 + 1 if self.every == "quarter" else day.month
        return Rule(self.every, (), day.day, month if self.every != "month" else 0)


# -------------------------------------------------------------------------------------------
# Reading a rule

_ZH_DAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6,
           "1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}
_EN_DAY = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_EN_MONTH = {m.lower(): n for n, m in enumerate(calendar.month_abbr) if m}
_CN_NUM = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}

_WORKDAY_RE = re.compile(
    r"^(?:每个?工作日|每一?个?工作日|工作日每天|每天|每日|日报|"
    r"every (?:working ?day|work ?day|weekday|business day|day)|each (?:working|business) day|"
    r"daily|on workdays|weekdays)$")
_ZH_WEEK_RE = re.compile(r"^每(?:个|一)?(?:周|星期|礼拜|週)([一二三四五六日天1-7](?:[、,，和及与/ ]*"
                         r"(?:周|星期|礼拜)?[一二三四五六日天1-7])*)?$")
_EN_WEEK_RE = re.compile(r"^(?:every|each|weekly(?: on)?|every week on|on)\s*((?:mon|tue|wed|thu|"
                         r"fri|sat|sun)[a-z]*(?:\s*(?:,|and|&|/)\s*(?:mon|tue|wed|thu|fri|sat|sun)"
                         r"[a-z]*)*)s?$|^(?:weekly|every week)$")
_ZH_MONTH_RE = re.compile(r"^每(?:个|一)?月(?:的)?(?:(\d{1,2}|[一二三四五六七八九十]{1,3})[日号]|"
                          r"(末|底|最后一天|最后一个工作日))?$|^月(?:末|底)$")
_EN_MONTH_RE = re.compile(
    r"^(?:monthly|every month|each month)(?: on)?(?: the)?\s*(?:(\d{1,2})(?:st|nd|rd|th)?|"
    r"(last day|end))?$|^(?:on )?the (\d{1,2})(?:st|nd|rd|th)? (?:of )?(?:every|each) month$|"
    r"^(?:at the )?(?:end|last day) of (?:every|each|the) month$|^month[- ]end$")
_ZH_QUARTER_RE = re.compile(r"^每(?:个|一)?季度?(?:末|底|最后一天)?$|^季度?(?:末|底)$")
_EN_QUARTER_RE = re.compile(r"^(?:quarterly|every quarter|each quarter)(?: end)?$|"
                            r"^(?:at the )?(?:end|last day) of (?:every|each|the) quarter$|"
                            r"^quarter[- ]end$|^every quarter[- ]end$")
_ZH_YEAR_RE = re.compile(r"^每年(?:的)?(\d{1,2})月(\d{1,2})[日号]$|^每年$")
_EN_YEAR_RE = re.compile(r"^(?:yearly|annually|every year|each year)(?: on)?\s*(?:([a-z]{3})[a-z]*"
                         r"\.? (\d{1,2})(?:st|nd|rd|th)?)?$")


def _clean(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).casefold().strip()
    s = re.sub(r"\s+", " ", s).strip(" 。.!！;；")
    s = re.sub(r"^(?:重复|repeat|recurs?|recurring)\s*[:：]?\s*", "", s)
    return re.sub(r"(?:一次|重复|提交|完成)$", "", s).strip()


def _cn_number(token: str) -> int:
    if token.isdigit():
        return int(token)
    if token.startswith("十"):
        return 10 + _CN_NUM.get(token[1:], 0)
    if "十" in token:
        tens, _, ones = token.partition("十")
        return _CN_NUM[tens] * 10 + _CN_NUM.get(ones, 0)
    return _CN_NUM.get(token, 0)


def parse_rule(text: str) -> Rule | None:
    """The rule `text` states (Chinese or English), or None when it cannot be read exactly."""
    s = _clean(text)
    if not s:
        return None
    if _WORKDAY_RE.match(s):
        return Rule("workday")
    if m := _ZH_WEEK_RE.match(s):
        days = sorted({_ZH_DAY[ch] for ch in re.findall(r"[一二三四五六日天1-7]", m[1] or "")})
        return Rule("week", tuple(days))
    if m := _EN_WEEK_RE.match(s):
        days = sorted({_EN_DAY[w[:3]] for w in re.findall(r"[a-z]+", m[1] or "") if w[:3] in _EN_DAY})
        return Rule("week", tuple(days))
    if m := _ZH_MONTH_RE.match(s):
        if m[1]:
            return _month(_cn_number(m[1]))
        return Rule("month", (), -1) if (m[2] or s.startswith("月")) else Rule("month")
    if m := _EN_MONTH_RE.match(s):
        number = m[1] or m[3]
        if number:
            return _month(int(number))
        return Rule("month", (), -1) if (m[2] or "end" in s or "last" in s) else Rule("month")
    if _ZH_QUARTER_RE.match(s):
        return Rule("quarter", (), -1, 3) if re.search("末|底|最后", s) else Rule("quarter")
    if _EN_QUARTER_RE.match(s):
        return Rule("quarter", (), -1, 3) if re.search("end|last", s) else Rule("quarter")
    if m := _ZH_YEAR_RE.match(s):
        return _year(int(m[1]), int(m[2])) if m[1] else Rule("year")
    if m := _EN_YEAR_RE.match(s):
        if not m[1]:
            return Rule("year")
        month = _EN_MONTH.get(m[1])
        return _year(month, int(m[2])) if month else None
    return None


def _month(day: int) -> Rule | None:
    return Rule("month", (), day) if 1 <= day <= 31 else None


def _year(month: int, day: int) -> Rule | None:
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(2024, month)[1]):
        return None
    return Rule("year", (), day, month)


# -------------------------------------------------------------------------------------------
# The calendar of a rule


def _day_in(year: int, month: int, day: int) -> date:
    """`day` of the month (-1: its last day; 31 in a 30-day month: its last day)."""
    last = calendar.monthrange(year, month)[1]
    return date(year, month, last if day == -1 else min(day, last))


def nominal_days(rule: Rule, after: date) -> Iterator[date]:
    """The rule's days after `after`, in order, before any move to a working day."""
    if rule.every in ("workday", "week"):
        day = after
        for _ in range(_SCAN_DAYS):
            day += timedelta(days=1)
            if rule.every == "workday" or day.weekday() in rule.weekdays:
                yield day
        return
    step = {"month": 1, "quarter": 3, "year": 12}[rule.every]
    if rule.every == "month":
        month = after.month
    elif rule.every == "quarter":
        month = (after.month - 1) // 3 * 3 + rule.month
    else:
        month = rule.month
    year = after.year
    for _ in range(_SCAN_DAYS // 28):
        while month > 12:
            month -= 12
            year += 1
        day = _day_in(year, month, rule.day)
        if day > after:
            yield day
        month += step


def working_day_on_or_before(day: date, cal: WorkCalendar) -> date:
    """`day` itself when it is a working day, else the working day before it."""
    for _ in range(_WALK_BACK):
        if cal.is_workday(day):
            return day
        day -= timedelta(days=1)
    return day


def next_due(rule: Rule, last_due: date, cal: WorkCalendar) -> tuple[date, date] | None:
    """(rule day, due day) of the first occurrence after the one due on `last_due`: the rule's
    next day moved to a working day, skipping those that move onto `last_due` or before it."""
    for nominal in nominal_days(rule, last_due):
        due = working_day_on_or_before(nominal, cal)
        if due > last_due:
            return nominal, due
    return None


def upcoming(rule: Rule, last_due: date, cal: WorkCalendar, count: int = 3
             ) -> list[tuple[date, date]]:
    """The next `count` (rule day, due day) pairs after `last_due`: for the receipt."""
    found: list[tuple[date, date]] = []
    while len(found) < count:
        following = next_due(rule, found[-1][1] if found else last_due, cal)
        if following is None:
            break
        found.append(following)
    return found


def working_days_before(day: date, count: int, cal: WorkCalendar) -> date:
    """The working day `count` working days before `day` (`day` itself for 0)."""
    for _ in range(count):
        day = working_day_on_or_before(day - timedelta(days=1), cal)
    return day


def lead_days(rule: Rule, created: date, first_due: date, cal: WorkCalendar) -> int:
    """The notice each occurrence gets: working days from `created` up to (not including) the
    first deadline's day, capped below the rule's period (`MAX_LEAD`)."""
    count, day = 0, created
    while day < first_due and count < MAX_LEAD[rule.every]:
        count += cal.is_workday(day)
        day += timedelta(days=1)
    return count
