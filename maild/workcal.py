"""The work calendar: which days are working days, how working hours add up, and when mail may go.

Pure: no clock, no I/O; every function takes the moment it reasons about.

Surprises worth knowing:

* Holidays and make-up workdays (调休, e.g. Saturday 2026-10-10 after National Day) come from the
  `chinese-calendar` package, which carries the State Council's published arrangements. It only
  knows the years published when it was released (2004–2026 in 1.11.0): for any other year the
  calendar falls back to weekends only (`covers(year)` tells, so the service can warn), until the
  package is upgraded or the year's days are listed in `rules/schedules.toml`.
* `[calendar] extra_holidays` / `extra_workdays` in the rules win over the package.
* Working time is the span `workday_start`–`workday_end` of each working day; "N working hours"
  after Friday 17:00 (9–18) with N = 2 is Monday 10:00 (or later, across a holiday).
* Quiet hours may wrap midnight (21:00–08:00). Non-emergency mail waits for `next_allowed`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
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

    def __post_init__(self) -> None:
        if self.workday_end <= self.workday_start:
            raise ValueError("calendar: workday_end must be after workday_start")
        if self.holidays not in HOLIDAY_SOURCES:
            raise ValueError(f"calendar: holidays must be one of {HOLIDAY_SOURCES}")

    @property
    def day_hours(self) -> float:
        """Working hours in one working day (9.0 for 09:00–18:00)."""
        return _seconds(self.workday_start, self.workday_end) / 3600

    def covers(self, year: int) -> bool:
        """True when the holiday source knows `year`'s holidays and make-up workdays."""
        return self.holidays == "none" or year in _CN_YEARS

    def is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
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


def load_calendar(rules: Mapping[str, Any], tz: str) -> WorkCalendar:
    """The calendar from `rules` (the parsed `rules/schedules.toml`, or its `[calendar]` table)."""
    section = rules.get("calendar", rules)
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
    )


def parse_time(value: Any, name: str) -> time:
    """A TOML local time or "HH:MM"."""
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"calendar: {name} must be a time like 09:00, not {value!r}") from exc


def _dates(values: Iterable[Any], name: str) -> frozenset[date]:
    out = set()
    for value in values:
        if isinstance(value, datetime):
            out.add(value.date())
        elif isinstance(value, date):
            out.add(value)
        else:
            try:
                out.add(date.fromisoformat(str(value)))
            except ValueError as exc:
                raise ValueError(f"calendar: {name} has {value!r}, not a date") from exc
    return frozenset(out)


def _seconds(a: time, b: time) -> float:
    return (datetime.combine(date.min, b) - datetime.combine(date.min, a)).total_seconds()
