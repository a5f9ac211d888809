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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from maild.core.datewords import (
    CN_DIGITS,
    CN_QUARTER,
    EN_DM,
    EN_MD,
    EN_NOTE_AFTER,
    EN_NOTE_BEFORE,
    EN_NUMS,
    EN_WEEKDAY,
    EN_WITHIN,
    EN_XUN,
    EOD,
    ISO,
    MD,
    MONTH_END,
    MONTHS,
    PM,
    PREFIX,
    QUARTER_END,
    RELATIVE_DAYS,
    SPELL,
    SUFFIX,
    TIMES,
    TRAD,
    WEEK_END,
    WEEKDAYS,
    XUN,
    YEAR_END,
    ZH_DAY,
    ZH_MD,
    ZH_MONTH_END,
    ZH_NOTE,
    ZH_WEEKDAY,
    ZH_WEEKDAYS,
    ZH_WITHIN,
    ZH_YMD,
)

Workdays = Callable[[date], bool]


@dataclass(frozen=True)
class Deadline:
    value: datetime | None  # tz-aware, in now's tz; also set when error == "past"
    error: str | None  # None | "unparseable" | "past"
    has_time: bool = False  # True when the text named a time of day

    @property
    def ok(self) -> bool:
        return self.error is None


UNPARSEABLE = Deadline(None, "unparseable")


def parse_deadline(text: str, now: datetime, *, workday_end: time = time(18, 0),
                   workdays: Workdays | None = None) -> Deadline:
    """Read one deadline; see the module docstring for the forms and their meaning."""
    is_workday = workdays or monday_to_friday
    s = _normalise(text)
    if not s:
        return UNPARSEABLE
    today = now.date()
    within = _within(s, now, is_workday)
    if within is not None:
        value, has_time = within
        value = value if has_time else _at(value.date(), workday_end, now)
        return _checked(value, now, has_time)
    clock, s = _extract_time(s)
    if clock is _INVALID:
        return UNPARSEABLE
    if s:
        day = _parse_day(s, today, is_workday)
    else:
        day = today if clock is not None else None
    if day is None:
        return UNPARSEABLE
    has_time = clock is not None and clock != EOD
    return _checked(_at(day, clock if has_time else workday_end, now), now, has_time)


def monday_to_friday(day: date) -> bool:
    """The working days when no calendar is given: Monday to Friday."""
    return day.weekday() < 5


def _normalise(text: str) -> str:
    s = unicodedata.normalize("NFKC", text).translate(TRAD).casefold()
    for old, new in SPELL:
        s = s.replace(old, new)
    s = re.sub(r"(\d)t(\d)", r"\1 \2", re.sub(r"\s+", " ", s)).strip(" 。.!！,，;；")
    for _ in range(4):
        stripped = SUFFIX.sub("", PREFIX.sub("", s)).strip(" ,，")
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
    if token in EN_NUMS:
        return EN_NUMS[token]
    if "十" in token:
        tens, _, ones = token.partition("十")
        high = CN_DIGITS.get(tens) if tens else 1
        low = CN_DIGITS.get(ones) if ones else 0
        return None if high is None or low is None else high * 10 + low
    if token and all(ch in CN_DIGITS for ch in token):
        return int("".join(str(CN_DIGITS[ch]) for ch in token))
    return None


def _within(s: str, now: datetime, is_workday: Workdays) -> tuple[datetime, bool] | None:
    """"3天内", "3个工作日内", "2小时内", "in 3 days", "within 2 hours": (value, has_time)."""
    zh = ZH_WITHIN.match(s)
    en = EN_WITHIN.match(s)
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
    for kind, pattern in TIMES:
        found = pattern.search(s)
        if not found:
            continue
        rest = (s[:found.start()] + " " + s[found.end():]).strip(" ,，的")
        rest = re.sub(r"\s+at$", "", re.sub(r"\s+", " ", rest)).strip()
        if any(p.search(rest) for _, p in TIMES):
            return _INVALID, rest
        return _time_of(kind, found), rest
    return None, s


def _time_of(kind: str, m: re.Match[str]) -> time | _Invalid:
    if kind == "eod":
        return EOD
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
    if period in ("pm", *PM) and hour < 12:
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
    for pattern, date_group, weekday_group in ((ZH_NOTE, 1, 2), (EN_NOTE_AFTER, 1, 2),
                                               (EN_NOTE_BEFORE, 2, 1)):
        m = pattern.match(s)
        if m:
            day = _plain_day(m[date_group].strip(" ,，"), today, is_workday)
            word = m[weekday_group]
            weekday = ZH_WEEKDAYS.get(word, WEEKDAYS.get(word))
            if day is not None and day.weekday() == weekday:
                return day
            return None
    return None


def _plain_day(s: str, today: date, is_workday: Workdays) -> date | None:
    if s in RELATIVE_DAYS:
        return today + timedelta(days=RELATIVE_DAYS[s])
    if m := ISO.match(s):
        return _date(int(m[1]), int(m[3]), int(m[4]))
    if m := ZH_YMD.match(s):
        year, month, day = _number(m[1]), _number(m[2]), _number(m[3])
        if year is None or month is None or day is None:
            return None
        return _date(year, month, day)
    if (m := MD.match(s)) or (m := ZH_MD.match(s)):
        return _next_month_day(_number(m[1]), _number(m[2]), today)
    if m := ZH_DAY.match(s):
        return _day_of_month(_number(m[2]), today, m[1])
    if m := EN_MD.match(s):
        return _month_day(MONTHS[m[1]], int(m[2]), m[3], today)
    if m := EN_DM.match(s):
        return _month_day(MONTHS[m[2]], int(m[1]), m[3], today)
    if (m := ZH_WEEKDAY.match(s)) or (m := EN_WEEKDAY.match(s)):
        weekday = ZH_WEEKDAYS.get(m[2], WEEKDAYS.get(m[2], 0))
        week = {"本": 0, "这": 0, "this": 0, "下": 1, "next": 1, "下下": 2}.get(m[1] or "")
        if week is None:  # bare or "coming": next occurrence, today counts
            return today + timedelta(days=(weekday - today.weekday()) % 7)
        return today + timedelta(days=7 * week + weekday - today.weekday())
    if s in MONTH_END:
        year, month = divmod(today.year * 12 + today.month - 1 + MONTH_END[s], 12)
        return date(year, month + 1, calendar.monthrange(year, month + 1)[1])
    if s in WEEK_END:
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=WEEK_END[s])
        days = [monday + timedelta(days=i) for i in range(7)]
        working = [d for d in days if is_workday(d)]
        return working[-1] if working else days[4]
    if s in YEAR_END:
        return date(today.year, 12, 31)
    return _period_end(s, today)


def _period_end(s: str, today: date) -> date | None:
    """Quarter ends (Q3末, 本季度末), 上旬/中旬/下旬 and a named month's end (8月底)."""
    if m := QUARTER_END.match(s):
        if m[2] or m[3] or m[5]:
            quarter = CN_QUARTER[m[2] or m[3] or m[5]]
            for year in (today.year, today.year + 1):
                end = _month_end(year, quarter * 3)
                if end >= today:
                    return end
        ahead = 1 if (m[1] or "").startswith("下") or m[4] else 0
        year, month = divmod(today.year * 12 + (today.month - 1) // 3 * 3 + 2 + 3 * ahead, 12)
        return _month_end(year, month + 1)
    if m := XUN.match(s):
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
    if m := EN_XUN.match(s):
        month = MONTHS[m[2]]
        which = {"early": 10, "mid": 20}.get(m[1], 0)
        for year in (today.year, today.year + 1):
            day = _xun_day(year, month, which)
            if day >= today:
                return day
    if m := ZH_MONTH_END.match(s):
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
    is_workday = workdays or monday_to_friday
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
