"""Where a delay request moves a deadline: to a date, or by a duration counted on the work calendar.

Pure. A delay command's arguments (`commands.read_commands`) hold a `date` as written
("8月20日", "next Friday"), or a duration, `days` or `weeks` ("延期两天", "2 more days", "往后推一周").

Surprises worth knowing:

* Days are working days after the task's *current* deadline, not after today: "延期两天" on a
  task due Friday 18:00 asks for Tuesday 18:00, and a holiday in between is skipped. The time of
  day of the current deadline is kept.
* A week is seven calendar days; landing on a rest day, it moves on to the next working day.
* Working days follow the `workdays` predicate (`WorkCalendar.is_workday`); without one,
  Monday to Friday. A result that is not after `now` is reported as `past`, like any date.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from maild.core.dates import Deadline, Workdays, monday_to_friday, parse_deadline

_MAX_DAYS = 366  # no delay walks further than a year looking for a working day


def after_working_days(day: date, count: int, workdays: Workdays | None = None) -> date:
    """The `count`-th working day after `day`."""
    for _ in range(count):
        day = next_working_day(day + timedelta(days=1), workdays)
    return day


def next_working_day(day: date, workdays: Workdays | None = None) -> date:
    """`day` itself when it is a working day, else the first working day after it."""
    is_workday = workdays or monday_to_friday
    for _ in range(_MAX_DAYS):
        if is_workday(day):
            return day
        day += timedelta(days=1)
    return day


def requested_deadline(args: Mapping[str, Any], current: datetime | None, now: datetime, *,
                       workday_end: time = time(18, 0),
                       workdays: Workdays | None = None) -> Deadline:
    """The deadline a delay command asks for, read against the task's current deadline."""
    days, weeks = args.get("days"), args.get("weeks")
    if (days or weeks) and current is not None:
        if days:
            day = after_working_days(current.date(), int(days), workdays)
        else:
            day = next_working_day(current.date() + timedelta(weeks=int(weeks)), workdays)
        value = datetime.combine(day, current.timetz())
        return Deadline(value, "past" if value <= now else None)
    if days or weeks:
        return Deadline(None, "unparseable")
    return parse_deadline(str(args.get("date") or ""), now, workday_end=workday_end,
                          workdays=workdays)


def current_deadline(task: Mapping[str, Any]) -> datetime | None:
    """A stored task's deadline, from which a duration counts."""
    return datetime.fromisoformat(task["deadline"]) if task.get("deadline") else None


def extension(args: Mapping[str, Any]) -> dict[str, int] | None:
    """A delay asked as a duration ({"days": 2}), for the email that shows the date it reaches."""
    return {k: int(args[k]) for k in ("days", "weeks") if args.get(k)} or None


def manager_date(args: Mapping[str, Any], task: Mapping[str, Any], now: datetime, *,
                 workday_end: time = time(18, 0), workdays: Workdays | None = None) -> str:
    """The date an initiator's delay names, as text: a duration ("再给两天") becomes the ISO
    moment it reaches from the current deadline ("" when it reaches none)."""
    if not (args.get("days") or args.get("weeks")):
        return str(args.get("date", ""))
    deadline = requested_deadline(args, current_deadline(task), now, workday_end=workday_end,
                                  workdays=workdays)
    return deadline.value.isoformat() if deadline.value is not None and not deadline.error else ""
