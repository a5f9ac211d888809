"""The work calendar: which days are working days, how working hours add up, and when mail may go.

Pure: no clock, no I/O; every function takes the moment it reasons about.

Surprises worth knowing:

* Holidays and make-up workdays (调休, e.g. Saturday 2026-10-10 after National Day) come from two
  sources, merged: the `chinese-calendar` package, which carries the State Council's published
  arrangements for the years known when it was released (2004–2026 in 1.11.0), and the rules'
  `[calendar.YEAR]` tables (`rules/schedules.toml`), where an operator enters a year's official
  notice as date ranges (`"2027-02-06..2027-02-12" = "春节"`) and its make-up workdays. A day the
  rules list wins over the package; `extra_holidays` / `extra_workdays` (company days) win over both.
* A year neither source knows is counted as weekends only, and the calendar says so:
  `vouches_for(day)` is False for its days (never a guess dressed as an answer). The planner
  holds escalations to managers on such days, and `calgaps.py` words the warning.
* Working time is the span `workday_start`–`workday_end` of each working day; "N working hours"
  after Friday 17:00 (9–18) with N = 2 is Monday 10:00 (or later, across a holiday).
* Quiet hours may wrap midnight (21:00–08:00). Non-emergency mail waits for `next_allowed`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from importlib import metadata
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from chinese_calendar import constants as _cn

HOLIDAY_SOURCES = ("cn", "none")  # "cn": chinese-calendar; "none": weekends and the rules only
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS = 3660  # a working-hour walk never looks further than ten years
# chinese-calendar's own tables, read once: its is_workday() re-scans them on every call (~30 µs),
# too slow for 20,000 tasks a tick. The rule is the package's: a listed make-up workday works, a
# listed holiday rests, otherwise Monday–Friday work; years outside its tables are not covered.
_CN_HOLIDAYS = frozenset(_cn.holidays)
_CN_WORKDAYS = frozenset(_cn.workdays)
_CN_YEARS = range(min(_CN_HOLIDAYS).year, max(_CN_HOLIDAYS).year + 1)
PACKAGE_VERSION = metadata.version("chinese-calendar")
PACKAGE_YEARS = _CN_YEARS
PACKAGE = f"chinese-calendar {PACKAGE_VERSION} ({_CN_YEARS[0]}–{_CN_YEARS[-1]})"
_MAX_RANGE_DAYS = 31  # a longer "FIRST..LAST" is a typo (2027-02-06..2028-02-12), not a holiday
_RANGE_RE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(?:\.\.|–|~)\s*(\d{4}-\d{2}-\d{2})\s*$")
_CALENDAR_KEYS = frozenset({"holidays", "weekend", "workday_start", "workday_end",
                            "extra_holidays", "extra_workdays", "quiet_hours"})


@dataclass(frozen=True)
class WorkCalendar:
    tz: tzinfo
    workday_start: time = time(9, 0)
    workday_end: time = time(18, 0)
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    extra_holidays: frozenset[date] = frozenset()
    extra_workdays: frozenset[date] = frozenset()
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday() numbers
    holidays: str = "cn"
    # The rules' [calendar.YEAR] tables: the years they vouch for, and their days.
    declared_years: frozenset[int] = frozenset()
    official_holidays: frozenset[date] = frozenset()
    official_workdays: frozenset[date] = frozenset()
    # Every day a rule decides (True: work), precedence applied once: is_workday is hot.
    _ruled: Mapping[date, bool] = field(default_factory=dict, init=False, repr=False,
                                        compare=False)

    def __post_init__(self) -> None:
        if self.workday_end <= self.workday_start:
            raise ValueError("calendar: workday_end must be after workday_start")
        if self.holidays not in HOLIDAY_SOURCES:
            raise ValueError(f"calendar: holidays must be one of {HOLIDAY_SOURCES}")
        ruled = dict.fromkeys(self.official_holidays, False)
        ruled.update(dict.fromkeys(self.official_workdays, True))
        ruled.update(dict.fromkeys(self.extra_holidays, False))
        ruled.update(dict.fromkeys(self.extra_workdays, True))
        object.__setattr__(self, "_ruled", ruled)

    @property
    def day_hours(self) -> float:
        """Working hours in one working day (9.0 for 09:00–18:00)."""
        return _seconds(self.workday_start, self.workday_end) / 3600

    def covers(self, year: int) -> bool:
        """True when a source knows `year`'s holidays and make-up workdays: the package, or a
        `[calendar.YEAR]` table in the rules (or holidays = "none": weekends are the whole story)."""
        return self.holidays == "none" or year in _CN_YEARS or year in self.declared_years

    def vouches_for(self, day: date) -> bool:
        """Can the calendar say for certain whether `day` is a working day? The one question the
        planner asks before escalating to a manager."""
        return self.covers(day.year) or day in self._ruled

    def package_knows(self, year: int) -> bool:
        return self.holidays == "cn" and year in _CN_YEARS

    def is_workday(self, day: date) -> bool:
        ruled = self._ruled.get(day)
        if ruled is not None:
            return ruled
        if self.holidays == "cn" and day.year in _CN_YEARS:
            return day in _CN_WORKDAYS or (day.weekday() < 5 and day not in _CN_HOLIDAYS)
        return day.weekday() not in self.weekend  # a year the package does not know

    def local(self, when: datetime) -> datetime:
        """`when` in the calendar's zone; a naive datetime is taken to be in that zone already."""
        return when.replace(tzinfo=self.tz) if when.tzinfo is None else when.astimezone(self.tz)

    def at(self, day: date, moment: time) -> datetime:
        return datetime.combine(day, moment, tzinfo=self.tz)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` of working time after `start` (before it, when negative)."""
        cursor = self.local(start)
        remaining = timedelta(hours=abs(hours))
        if not remaining:
            return cursor
        forward = hours > 0
        for _ in range(_MAX_DAYS):
            day = cursor.date()
            if self.is_workday(day):
                begin, end = self.at(day, self.workday_start), self.at(day, self.workday_end)
                if forward:
                    cursor = max(cursor, begin)
                    if cursor < end:
                        if remaining <= end - cursor:
                            return cursor + remaining
                        remaining -= end - cursor
                else:
                    cursor = min(cursor, end)
                    if cursor > begin:
                        if remaining <= cursor - begin:
                            return cursor - remaining
                        remaining -= cursor - begin
            cursor = self.at(day + timedelta(days=1), time(0)) if forward else \
                self.at(day, time(0)) - timedelta(microseconds=1)
        raise ValueError(f"no working time within {_MAX_DAYS} days of {start.isoformat()}")

    def working_hours_between(self, a: datetime, b: datetime) -> float:
        """Working time from `a` to `b`, in hours; 0 when `b` is not after `a`."""
        a, b = self.local(a), self.local(b)
        if b <= a:
            return 0.0
        total = 0.0
        day = a.date()
        while day <= b.date():
            if self.is_workday(day):
                begin = max(a, self.at(day, self.workday_start))
                end = min(b, self.at(day, self.workday_end))
                if end > begin:
                    total += (end - begin).total_seconds()
            day += timedelta(days=1)
        return total / 3600

    def working_days_between(self, a: datetime, b: datetime) -> int:
        """Whole working days of working time from `a` to `b` (a day is `day_hours` hours)."""
        return math.floor(self.working_hours_between(a, b) / self.day_hours + 1e-9)

    def in_quiet_hours(self, when: datetime) -> bool:
        moment = self.local(when).time()
        start, end = self.quiet_start, self.quiet_end
        if start == end:
            return False
        if start < end:
            return start <= moment < end
        return moment >= start or moment < end

    def allowed(self, when: datetime) -> bool:
        """May non-emergency mail go now: a working day, outside quiet hours."""
        return self.is_workday(self.local(when).date()) and not self.in_quiet_hours(when)

    def next_allowed(self, when: datetime) -> datetime:
        """`when` itself if mail may go then, else the start of the next working day."""
        local = self.local(when)
        if self.allowed(local):
            return local
        day = local.date()
        if local.time() >= self.workday_start or not self.is_workday(day):
            day += timedelta(days=1)
        for _ in range(_MAX_DAYS):
            if self.is_workday(day):
                start = self.at(day, self.workday_start)
                return start if not self.in_quiet_hours(start) else self.at(day, self.quiet_end)
            day += timedelta(days=1)
        raise ValueError(f"no working day within {_MAX_DAYS} days of {when.isoformat()}")


def package_days(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(holidays, make-up workdays) the package lists for `year` (empty when it lacks the year)."""
    return (frozenset(d for d in _CN_HOLIDAYS if d.year == year),
            frozenset(d for d in _CN_WORKDAYS if d.year == year))


def load_calendar(rules: Mapping[str, Any], tz: str) -> WorkCalendar:
    """The calendar from `rules` (the parsed `rules/schedules.toml`, or its `[calendar]` table)."""
    section = rules.get("calendar", rules)
    years, holidays, workdays = _official(section, strict="calendar" in rules)
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"calendar: unknown timezone {tz!r}") from exc
    quiet = rules.get("quiet_hours", section.get("quiet_hours", {}))
    weekend = section.get("weekend", ["sat", "sun"])
    bad = [d for d in weekend if str(d).lower()[:3] not in _WEEKDAYS]
    if bad:
        raise ValueError(f"calendar: weekend days must be mon…sun, not {bad}")
    return WorkCalendar(
        tz=zone,
        workday_start=parse_time(section.get("workday_start", "09:00"), "workday_start"),
        workday_end=parse_time(section.get("workday_end", "18:00"), "workday_end"),
        quiet_start=parse_time(quiet.get("start", "21:00"), "quiet_hours.start"),
        quiet_end=parse_time(quiet.get("end", "08:00"), "quiet_hours.end"),
        extra_holidays=_dates(section.get("extra_holidays", ()), "extra_holidays"),
        extra_workdays=_dates(section.get("extra_workdays", ()), "extra_workdays"),
        weekend=frozenset(_WEEKDAYS.index(str(d).lower()[:3]) for d in weekend),
        holidays=str(section.get("holidays", "cn")),
        declared_years=years, official_holidays=holidays, official_workdays=workdays,
    )


def _official(section: Mapping[str, Any], strict: bool) -> tuple[frozenset[int], frozenset[date],
                                                                  frozenset[date]]:
    """The `[calendar.YEAR]` tables: (years, holidays, make-up workdays). Each vouches for its
    year; its `holidays` table maps a day or a range "FIRST..LAST" to the holiday's name, its
    `workdays` lists make-up workdays (days or ranges). A key that is neither a calendar
    setting nor a year is an error: a typo (`[calendar.2O27]`) must not pass for a year. Without
    a `[calendar]` table (`strict` False, the whole file given) only year keys are read."""
    years: set[int] = set()
    holidays: set[date] = set()
    workdays: set[date] = set()
    for key, value in section.items():
        if key in _CALENDAR_KEYS or not (strict or str(key).isdigit()):
            continue
        where = f"calendar: [calendar.{key}]"
        if not (re.fullmatch(r"\d{4}", str(key)) and isinstance(value, Mapping)):
            raise ValueError(f"{where} is neither a setting ({', '.join(sorted(_CALENDAR_KEYS))})"
                             f" nor a year's table like [calendar.2027]")
        unknown = set(value) - {"holidays", "workdays", "source"}
        if unknown:
            raise ValueError(f"{where} has {sorted(unknown)}; a year's table holds holidays, "
                             f"workdays and source")
        days_off = value.get("holidays", {})
        if not isinstance(days_off, Mapping):
            raise ValueError(f'{where} holidays must be a table: "FIRST..LAST" = "name"')
        holidays |= _dates(days_off.keys(), f"[calendar.{key}.holidays]")
        workdays |= _dates(value.get("workdays", ()), f"[calendar.{key}] workdays")
        years.add(int(key))
    both = holidays & workdays
    if both:
        raise ValueError(f"calendar: {min(both)} is listed both as a holiday and as a workday")
    return frozenset(years), frozenset(holidays), frozenset(workdays)


def parse_time(value: Any, name: str) -> time:
    """A TOML local time or "HH:MM"."""
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"calendar: {name} must be a time like 09:00, not {value!r}") from exc


def _dates(values: Iterable[Any], name: str) -> frozenset[date]:
    """Days from TOML dates, "YYYY-MM-DD" strings and "FIRST..LAST" ranges (both included)."""
    out: set[date] = set()
    if isinstance(values, str | date):
        values = [values]
    for value in values:
        if isinstance(value, datetime):
            out.add(value.date())
        elif isinstance(value, date):
            out.add(value)
        else:
            out |= _range(str(value), name)
    return frozenset(out)


def _range(text: str, name: str) -> set[date]:
    match = _RANGE_RE.match(text)
    try:
        if not match:
            return {date.fromisoformat(text.strip())}
        first, last = date.fromisoformat(match[1]), date.fromisoformat(match[2])
    except ValueError as exc:
        raise ValueError(f'calendar: {name} has {text!r}, not a date or a range like '
                         f'"2026-02-15..2026-02-23"') from exc
    if not first <= last <= first + timedelta(days=_MAX_RANGE_DAYS - 1):
        raise ValueError(f"calendar: {name} has {text!r}: a range runs forward, at most "
                         f"{_MAX_RANGE_DAYS} days")
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


def _seconds(a: time, b: time) -> float:
    return (datetime.combine(date.min, b) - datetime.combine(date.min, a)).total_seconds()
