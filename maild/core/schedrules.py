"""The schedule's rules (`rules/schedules.toml`): reminder and escalation levels, digest cadences,
the emergency contact; and the small helpers every part of the planner uses.

Pure: nothing here reads the clock or the database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from maild.core import looplevels
from maild.core.model import Notice, Person, TaskState
from maild.core.workcal import WorkCalendar, parse_time

CLOSED_TASK_STATES = frozenset({TaskState.DONE.value, TaskState.DECLINED.value})
UNCONFIRMED = TaskState.AWAITING_CONFIRMATION.value
BLOCKED = TaskState.BLOCKED.value
WHENS = {  # when → applies_to
    "unconfirmed_hours": "task", "before_deadline_hours": "task", "overdue": "task",
    "overdue_working_days": "task", "emergency_unconfirmed_minutes": "emergency",
    "emergency_update_hours": "emergency", "emergency_past_eta": "emergency",
    **looplevels.WHENS,  # unreviewed_hours: handed-in work waiting for the initiator
}
ROLES = ("owner", "initiator", "manager", "emergency_contact")
CADENCES = {"digest": ("daily", "every_2_days"), "owner_digest": ("off", "daily", "weekly")}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ACTION_OF_STATE = {"declined": "declined", "blocked": "blocked", "delayed": "delayed",
                   **looplevels.ROW_ACTIONS}
# A row is not flagged overdue once its work is handed in (验收): its owner has delivered.
NOT_OVERDUE = CLOSED_TASK_STATES | {TaskState.SUBMITTED.value}
RowKey = tuple[float, str, str]  # a row's order: deadline (a timestamp), item id, task id
RowOf = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[dict[str, Any], RowKey]]


@dataclass(frozen=True)
class Level:
    """One reminder or escalation level, as declared in `[[escalation]]`."""

    key: str
    applies_to: str
    when: str
    threshold: float
    to: str
    cc: tuple[str, ...] = ()
    progress_below: int | None = None
    template: str = "escalation"
    blocking_threshold: float | None = None  # sooner while other tasks wait on this one


@dataclass(frozen=True)
class Cadence:
    every: str  # off | daily | every_2_days | weekly
    at: time = time(9, 0)
    weekday: int = 0  # for weekly, date.weekday()


@dataclass(frozen=True)
class ScheduleRules:
    digest: Cadence
    owner_digest: Cadence
    levels: tuple[Level, ...]
    emergency_contact: str = ""


@dataclass(frozen=True)
class Planned:
    """An email due, and what to record when it is enqueued: (item_id, task_id, level key) for
    each level it carries (several when it combines one person's levels), or the digest's
    ("digest" | "owner_digest", address, date)."""

    notice: Notice
    records: tuple[tuple[str, str | None, str], ...]


def load_schedule_rules(data: Mapping[str, Any]) -> ScheduleRules:
    """Rules from the parsed `rules/schedules.toml`; ValueError names the first bad entry."""
    levels = []
    for n, entry in enumerate(data.get("escalation", ()), start=1):
        where = f"schedules: [[escalation]] #{n} ({entry.get('key', '?')})"
        when, to = entry.get("when"), entry.get("to")
        if not entry.get("key"):
            raise ValueError(f"{where}: needs a key")
        if when not in WHENS:
            raise ValueError(f"{where}: when must be one of {sorted(WHENS)}")
        cc = tuple(entry.get("cc", ()))
        if to not in ROLES or any(r not in ROLES for r in cc):
            raise ValueError(f"{where}: to and cc must be among {ROLES}")
        applies = entry.get("applies_to", WHENS[when])
        if applies != WHENS[when]:
            raise ValueError(f"{where}: {when} applies to {WHENS[when]}, not {applies}")
        threshold = entry.get("threshold", 0)
        if not isinstance(threshold, int | float) or threshold < 0 or (
                when not in ("overdue", "emergency_past_eta") and threshold <= 0):
            raise ValueError(f"{where}: threshold must be a positive number")
        levels.append(Level(
            key=str(entry["key"]), applies_to=applies, when=when, threshold=float(threshold),
            to=to, cc=cc, progress_below=entry.get("progress_below"),
            blocking_threshold=_blocking_threshold(entry, where),
            template=str(entry.get("template", "reminder" if to == "owner" else "escalation")),
        ))
    if len({lv.key for lv in levels}) != len(levels):
        raise ValueError("schedules: escalation keys must be unique")
    return ScheduleRules(
        digest=_cadence(data.get("digest", {}), "digest", "daily"),
        owner_digest=_cadence(data.get("owner_digest", {}), "owner_digest", "off"),
        levels=tuple(levels),
        emergency_contact=str(data.get("emergency", {}).get("contact", "")).lower(),
    )


def _blocking_threshold(entry: Mapping[str, Any], where: str) -> float | None:
    value = entry.get("blocking_threshold")
    if value is None:
        return None
    if not isinstance(value, int | float) or value < 0 or entry.get("when") not in (
            "overdue_working_days", "before_deadline_hours"):
        raise ValueError(f"{where}: blocking_threshold is a number of working days (or hours) "
                         "for overdue_working_days and before_deadline_hours levels")
    return float(value)


def _cadence(section: Mapping[str, Any], name: str, default: str) -> Cadence:
    every = section.get("cadence", default)
    if every not in CADENCES[name]:
        raise ValueError(f"schedules: [{name}] cadence must be one of {CADENCES[name]}")
    weekday = str(section.get("weekday", "mon")).lower()[:3]
    if weekday not in _WEEKDAYS:
        raise ValueError(f"schedules: [{name}] weekday must be mon…sun")
    return Cadence(every, parse_time(section.get("time", "09:00"), f"{name}.time"),
                   _WEEKDAYS.index(weekday))


def language_of(items: Sequence[Mapping[str, Any]]) -> str:
    return Counter(str(i.get("language", "zh")) for i in items).most_common(1)[0][0]


def person_of(directory: Mapping[str, Person], address: str) -> dict[str, str]:
    person = directory.get(address)
    return {"address": address, "name": person.name if person else address,
            "department": person.department if person else ""}


class Memo:
    """What one `plan` call computes again and again, computed once: stored times read by several
    levels and both digests, working-time sums from the same start (tasks of one item share it,
    deadlines repeat), people from the directory."""

    def __init__(self, cal: WorkCalendar, now: datetime, directory: Mapping[str, Person]) -> None:
        self.cal, self.now, self.directory = cal, now, directory
        self.day_hours = cal.day_hours
        self._parsed: dict[str, datetime] = {}
        self._iso: dict[datetime, str] = {}
        self._later: dict[tuple[datetime, float], datetime] = {}
        self._overdue: dict[datetime, int] = {}
        self._people: dict[str, dict[str, str]] = {}

    def parse(self, value: Any) -> datetime:
        if not isinstance(value, str):
            return parse_stored(value, self.cal)
        found = self._parsed.get(value)
        if found is None:
            found = self._parsed[value] = parse_stored(value, self.cal)
        return found

    def iso(self, moment: datetime) -> str:
        found = self._iso.get(moment)
        if found is None:
            found = self._iso[moment] = moment.isoformat()
        return found

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        found = self._later.get((start, hours))
        if found is None:
            found = self._later[(start, hours)] = self.cal.add_working_hours(start, hours)
        return found

    def overdue_days(self, deadline: datetime | None) -> int:
        """Whole working days from `deadline` to now (0 when it has not passed)."""
        if deadline is None or self.now <= deadline:
            return 0
        found = self._overdue.get(deadline)
        if found is None:
            found = self._overdue[deadline] = self.cal.working_days_between(deadline, self.now)
        return found

    def person(self, address: str) -> dict[str, str]:
        found = self._people.get(address)
        if found is None:
            found = self._people[address] = person_of(self.directory, address)
        return found


def parse_stored(value: Any, cal: WorkCalendar) -> datetime:
    """A stored ISO time in the calendar's zone; a bare date means the end of that working day."""
    if isinstance(value, datetime):
        return cal.local(value)
    text = str(value)
    if len(text) == 10:
        return cal.at(date.fromisoformat(text), cal.workday_end)
    return cal.local(datetime.fromisoformat(text))
