"""The work calendar: China's holidays and 调休 make-up days, working hours, quiet hours."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest

from maild.core.workcal import WorkCalendar, load_calendar

TZ = ZoneInfo("Asia/Shanghai")
CAL = load_calendar({}, "Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


@pytest.mark.parametrize("day, workday", [
    (date(2026, 9, 30), True),    # Wednesday before National Day
    (date(2026, 10, 1), False),   # National Day
    (date(2026, 10, 7), False),   # last day of the Golden Week
    (date(2026, 10, 8), True),    # Thursday back at work
    (date(2026, 10, 10), True),   # Saturday make-up workday (调休)
    (date(2026, 9, 20), True),    # Sunday make-up workday
    (date(2026, 10, 11), False),  # ordinary Sunday
    (date(2026, 9, 25), False),   # Mid-autumn Festival, a Friday
    (date(2027, 3, 6), False),    # a year the package does not know: weekends only
    (date(2027, 3, 8), True),
], ids=["before-golden-week", "national-day", "oct-7", "oct-8", "makeup-saturday",
        "makeup-sunday", "sunday", "mid-autumn", "unknown-year-saturday", "unknown-year-monday"])
def test_is_workday(day: date, workday: bool) -> None:
    assert CAL.is_workday(day) is workday


def test_same_answers_as_the_package() -> None:
    day = date(2024, 1, 1)
    while day.year <= 2026:
        assert CAL.is_workday(day) is chinese_calendar.is_workday(day), day
        day += timedelta(days=1)


def test_coverage_is_reported() -> None:
    assert CAL.covers(2026)
    assert not CAL.covers(2035)
    assert WorkCalendar(tz=TZ, holidays="none").covers(2035)


def test_overrides_win_over_the_package() -> None:
    cal = load_calendar({"calendar": {"extra_holidays": [date(2026, 9, 30)],
                                      "extra_workdays": ["2026-10-07"]}}, "Asia/Shanghai")
    assert not cal.is_workday(date(2026, 9, 30))
    assert cal.is_workday(date(2026, 10, 7))


@pytest.mark.parametrize("start, hours, expected", [
    (at(2026, 8, 3, 10), 2, at(2026, 8, 3, 12)),
    (at(2026, 8, 3, 17), 2, at(2026, 8, 4, 10)),        # across the evening
    (at(2026, 8, 7, 17), 2, at(2026, 8, 10, 10)),       # Friday → Monday
    (at(2026, 8, 8, 11), 1, at(2026, 8, 10, 10)),       # starts on a Saturday
    (at(2026, 9, 30, 17), 8, at(2026, 10, 8, 16)),      # across National Day
    (at(2026, 10, 9, 17), 2, at(2026, 10, 10, 10)),     # into the make-up Saturday
    (at(2026, 8, 3, 20), 0, at(2026, 8, 3, 20)),
    (at(2026, 10, 8, 10), -2, at(2026, 9, 30, 17)),     # backwards across National Day
    (at(2026, 8, 10, 18), -9, at(2026, 8, 10, 9)),
], ids=["same-day", "overnight", "weekend", "from-saturday", "national-day", "makeup-day",
        "zero", "backwards-holiday", "backwards-one-day"])
def test_add_working_hours(start: datetime, hours: float, expected: datetime) -> None:
    assert CAL.add_working_hours(start, hours) == expected


@pytest.mark.parametrize("a, b, days", [
    (at(2026, 8, 10, 18), at(2026, 8, 11, 17), 0),
    (at(2026, 8, 10, 18), at(2026, 8, 11, 18), 1),
    (at(2026, 8, 7, 18), at(2026, 8, 11, 18), 2),       # the weekend does not count
    (at(2026, 9, 30, 18), at(2026, 10, 9, 18), 2),      # nor does the Golden Week
    (at(2026, 8, 11, 18), at(2026, 8, 10, 18), 0),
], ids=["not-yet", "one", "weekend", "golden-week", "backwards"])
def test_working_days_between(a: datetime, b: datetime, days: int) -> None:
    assert CAL.working_days_between(a, b) == days


@pytest.mark.parametrize("when, quiet, allowed, next_ok", [
    (at(2026, 8, 3, 10), False, True, at(2026, 8, 3, 10)),
    (at(2026, 8, 3, 22), True, False, at(2026, 8, 4, 9)),
    (at(2026, 8, 4, 7), True, False, at(2026, 8, 4, 9)),
    (at(2026, 8, 8, 10), False, False, at(2026, 8, 10, 9)),   # Saturday
    (at(2026, 9, 30, 23), True, False, at(2026, 10, 8, 9)),   # eve of National Day
], ids=["working", "night", "early", "saturday", "holiday-eve"])
def test_quiet_hours_and_next_allowed(when: datetime, quiet: bool, allowed: bool,
                                      next_ok: datetime) -> None:
    assert CAL.in_quiet_hours(when) is quiet
    assert CAL.allowed(when) is allowed
    assert CAL.next_allowed(when) == next_ok


def test_quiet_hours_without_wrap_and_naive_times() -> None:
    cal = WorkCalendar(tz=TZ, quiet_start=time(12), quiet_end=time(13))
    assert cal.in_quiet_hours(datetime(2026, 8, 3, 12, 30))
    assert not cal.in_quiet_hours(at(2026, 8, 3, 13))


@pytest.mark.parametrize("rules, message", [
    ({"calendar": {"workday_start": "9am"}}, "workday_start"),
    ({"calendar": {"extra_holidays": ["Oct 1"]}}, "extra_holidays"),
    ({"calendar": {"weekend": ["sabbath"]}}, "weekend"),
    ({"calendar": {"workday_start": "18:00", "workday_end": "09:00"}}, "after"),
    ({"calendar": {"holidays": "us"}}, "holidays"),
], ids=["bad-time", "bad-date", "bad-weekend", "reversed-day", "unknown-source"])
def test_bad_rules_are_named(rules: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_calendar(rules, "Asia/Shanghai")


def test_unknown_timezone() -> None:
    with pytest.raises(ValueError, match="timezone"):
        load_calendar({}, "Mars/Olympus")
