"""The schedule baseline: where each person's digests start, so that none goes out on start.

The planner sends a person's digest once its next slot after their last one (`done` in its
memory) has passed. Someone it has no memory of has never had one, so for the planner their
first slot (today's, or this week's Monday) has always passed: a fresh daemon mailed each
initiator a digest and each new owner a "weekly" digest at its first tick, minutes after the
confirmation requests, at whatever hour that was. `seed` gives everyone the planner is about to
meet a last digest at the slot before they joined (their earliest open item's creation, or
task's assignment), so their first digest comes at the next slot after that; the first start
records it for everyone at once. The service seeds before every plan and commits the memory
with the plan (`maild digest --preview` seeds too, without committing).

Surprises:
- Memory of people who no longer get a digest (no open item or task left) is dropped: when they
  come back they are met anew, rather than caught up for the months they were away.
- Catch-up is untouched: a slot that passed while the daemon was down (or between two ticks)
  still brings one digest at the next tick, for newcomers and known people alike.

Pure: (items, planner memory, now, rules, calendar) → planner memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from maild.core.planner import CLOSED_TASK_STATES, Cadence, ScheduleRules
from maild.core.workcal import WorkCalendar

DIGESTS = ("digest", "owner_digest")
PERIOD_DAYS = {"daily": 1, "every_2_days": 2, "weekly": 7}


def seed(items: Sequence[Mapping[str, Any]], state: Mapping[str, Any], now: datetime,
         rules: ScheduleRules, cal: WorkCalendar) -> dict[str, Any]:
    """The planner's memory with every current digest reader known: newcomers get a last
    digest at the slot before they joined (never after `now`); people without a digest due any
    more are forgotten."""
    now = cal.local(now)
    live = [item for item in items if item.get("state", "open") == "open"]
    seeded = dict(state)
    for name in DIGESTS:
        cadence: Cadence = getattr(rules, name)
        if cadence.every == "off":
            continue
        memory = state.get(name, {})
        seeded[name] = {
            address: memory.get(address)
            or {"done": last_slot(cadence, min(cal.local(joined), now), cal).isoformat()}
            for address, joined in readers(live, name, now, memory).items()}
    return seeded


def readers(items: Sequence[Mapping[str, Any]], name: str, now: datetime,
            known: Mapping[str, Any]) -> dict[str, datetime]:
    """Who gets this digest, as the planner decides it (each open item's initiator, or each
    owner of a task still open), and since when: their earliest such item's creation or task's
    assignment (`now` where a time is missing; not worked out for those in `known`)."""
    joined: dict[str, datetime] = {}

    def meet(address: object, stamp: object) -> None:
        key = str(address)
        if key in known:
            joined[key] = now
            return
        when = datetime.fromisoformat(stamp) if isinstance(stamp, str) and stamp else now
        if key not in joined or when < joined[key]:
            joined[key] = when

    for item in items:
        if name == "digest":
            meet(item["initiator"], item.get("created_at"))
            continue
        for task in item.get("tasks", ()):
            if task.get("state") not in CLOSED_TASK_STATES:
                meet(task["owner"], task.get("assigned_at") or item.get("created_at"))
    return joined


def last_slot(cadence: Cadence, moment: datetime, cal: WorkCalendar) -> date:
    """The `done` date whose next slot, for the planner, is the first one after `moment`: on
    a working day for daily cadences (the planner would send a weekend's slot at the end of
    Monday's quiet hours, before the digest's time), on its weekday for the weekly one."""
    today = moment.date()
    if cadence.every == "weekly":
        first = today + timedelta(days=(cadence.weekday - today.weekday()) % 7)
    else:
        first = today
    if first == today and moment >= cal.at(today, cadence.at):
        first += timedelta(days=7 if cadence.every == "weekly" else 1)
    for _ in range(60):  # the longest run of days off is far shorter
        if cadence.every == "weekly" or cal.is_workday(first):
            break
        first += timedelta(days=1)
    return first - timedelta(days=PERIOD_DAYS[cadence.every])
