"""Calendar gaps: which of the coming days no holiday source vouches for, and the warning that
says how to fill them with one edit of the rules.

Pure: every function takes the day it starts from (`maild check` and the service pass today).

Surprises worth knowing:

* A gap is never filled with a guess. The warning gives the exact table to add
  (`[calendar.2027]` in `rules/schedules.toml`, after the line it names) with placeholders, not
  dates: the dates are the State Council's to publish, and an invented 春节 would be worse than
  none. Upgrading `chinese-calendar` once a release covers the year fills the gap too.
* A year both sources know is checked for disagreement (`disagreements`): the rules win, but a
  day typed in before the notice came out and never corrected shows up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from maild.core.workcal import PACKAGE, PACKAGE_VERSION, PACKAGE_YEARS, WorkCalendar, package_days

HORIZON_DAYS = 90  # how far ahead `maild check` and the daemon look
RULES_FILE = "rules/schedules.toml"
_HEADER_RE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")


@dataclass(frozen=True)
class Gap:
    """A run of consecutive days, `first` to `last`, that no source vouches for."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


def gaps(cal: WorkCalendar, start: date, days: int = HORIZON_DAYS) -> list[Gap]:
    """The runs of days from `start` (included) over `days` days that the calendar cannot vouch for."""
    out: list[Gap] = []
    first: date | None = None
    for n in range(days + 1):  # one past the end closes a run that reaches it
        day = start + timedelta(days=n)
        vouched = n == days or cal.vouches_for(day)
        if not vouched and first is None:
            first = day
        elif vouched and first is not None:
            out.append(Gap(first, day - timedelta(days=1)))
            first = None
    return out


def missing_years(found: Sequence[Gap]) -> list[int]:
    return sorted({gap.first.year + n for gap in found
                   for n in range(gap.last.year - gap.first.year + 1)})


def sources(cal: WorkCalendar) -> str:
    """Where the calendar's holidays come from, in a few words."""
    if cal.holidays == "none":
        return "weekends and the rules only (holidays = \"none\")"
    declared = ", ".join(map(str, sorted(cal.declared_years)))
    return PACKAGE + (f" + rules for {declared}" if declared else "")


def warning(cal: WorkCalendar, start: date, *, rules_file: str = RULES_FILE,
            after_line: int | None = None, days: int = HORIZON_DAYS) -> str | None:
    """The loud, multi-line warning for a gap in the next `days` days, or None when there is
    none. It names the file, the line to add after, and the table to add."""
    found = gaps(cal, start, days)
    if not found:
        return None
    uncovered = sum(gap.days for gap in found)
    spans = ", ".join(f"{g.first}..{g.last}" if g.days > 1 else str(g.first) for g in found)
    years = missing_years(found)
    year = years[0]
    where = f"{rules_file}" + (f" after line {after_line}" if after_line else "")
    lines = [
        f"calendar: {uncovered} of the next {days} days ({spans}) cannot be vouched for: "
        f"chinese-calendar {PACKAGE_VERSION} knows {PACKAGE_YEARS[0]}–{PACKAGE_YEARS[-1]} "
        f"only, and {rules_file} has no "
        + " / ".join(f"[calendar.{y}]" for y in years) + ".",
        "  Until a source covers them, maild counts only weekends as days off on those days, "
        "and escalations to managers wait (digests say why).",
        f"  Once the State Council publishes {year}'s holidays, add them to {where}:",
        f"    [calendar.{year}]",
        f"    {'workdays = []':<28}# the notice's make-up workdays (调休): [{year}-MM-DD, ...]",
        f"    {f'[calendar.{year}.holidays]':<28}# the notice's days off, one line each:",
        f'    "{year}-MM-DD..{year}-MM-DD" = "春节"',
        f"  or upgrade chinese-calendar once a release covers {year} "
        "(pip install -U chinese-calendar).",
    ]
    return "\n".join(lines)


def log_fields(cal: WorkCalendar, start: date, *, rules_file: str = RULES_FILE,
               days: int = HORIZON_DAYS) -> str | None:
    """The same warning as one key=value log line (the daemon's start-up and daily check)."""
    found = gaps(cal, start, days)
    if not found:
        return None
    years = missing_years(found)
    return (f"event=calendar_gap first={found[0].first} last={found[-1].last} "
            f"days={sum(g.days for g in found)} years={','.join(map(str, years))} "
            f"sources={sources(cal).replace(' ', '_')} "
            f"fix=add_[calendar.{years[0]}]_to_{rules_file}")


def insert_after(text: str) -> int | None:
    """The line of the rules file after which a `[calendar.YEAR]` table belongs: the last
    non-blank line of the calendar's tables (before the next other table). None without one."""
    lines = text.splitlines()
    inside, last = False, None
    for number, line in enumerate(lines, start=1):
        header = _HEADER_RE.match(line)
        if header:
            name = header[1].strip().strip('"')
            if name == "calendar" or name.startswith("calendar."):
                inside = True
            elif inside:
                break
        if inside and line.strip():
            last = number
    return last


def disagreements(cal: WorkCalendar) -> list[tuple[date, bool]]:
    """Days of a year both the rules and the package know where they disagree: (day, what the
    package says: True for a workday). The rules win; this only shows it."""
    out = []
    for year in sorted(cal.declared_years):
        if not cal.package_knows(year):
            continue
        holidays, workdays = package_days(year)
        for day in sorted(cal.official_holidays | cal.official_workdays):
            if day.year != year:
                continue
            package = day in workdays or (day.weekday() < 5 and day not in holidays)
            if package != (day in cal.official_workdays):
                out.append((day, package))
    return out
