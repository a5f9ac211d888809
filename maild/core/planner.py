"""What is due now: digests to initiators and owners, reminders and escalations, each sent once.

Pure: `plan(items, now, rules, cal, people, state)` (or `plan_steps`, the same as a generator that
yields every few hundred items, so a caller can run other work between its steps) reads only
stored timestamps (item
`created_at`, task `assigned_at`/`updated_at`/`confirmed_at`/`deadline`) and what was already sent
(each task's `sent` map, key → ISO time, written by the service from `Planned.records`), and
returns the emails due plus the planner's new memory. Nothing here reads the clock or the database.

The parts: schedrules.py (the rules and shared helpers), levels.py (reminders and escalations,
`deliver`), digests.py (digests and their rows); `next_level_due` and `next_digest_at` say when an
item or a person next needs planning (scheduling.py keeps them as an index, so a tick with
nothing due plans nothing and a change re-plans only the item it changed).

Surprises worth knowing:

* Catch-up is built in: due-ness is "the due moment has passed and it is not recorded", so a daemon
  down for three days plans each level that fell due once, and one digest (not one per day).
* A level's record key is `"<level key>@<basis>"`: the basis is the owner round (`r1`, `r2` after a
  reassignment) for unconfirmed levels, the deadline for deadline levels, and the last update plus
  the period for the repeating `emergency_update_hours`. A new owner or a new deadline re-arms them.
* Non-emergency notices are only planned on a working day outside quiet hours (deferred, never
  dropped: they are due at the next tick that is allowed).
* On a day the calendar cannot vouch for (a year no holiday source knows: `cal.vouches_for`),
  levels that reach a manager (to or cc) are held: not sent, not recorded, so they go out on the
  first day the calendar vouches for again (`hold_for_managers`); the initiator's digest says
  how many wait (`calendar_hold`). Emergencies run on wall-clock minutes
  and ignore quiet hours, weekends and holidays.
* One email per person and run, not one per level (`_deliver`): a level reaches its owner in the
  owner's digest, and its initiator in the initiator's digest, when that digest goes to them in
  the same run (the row of its task says so, with that task's buttons); a person with several
  other levels due gets one email listing them all (a reminder, or an escalation when none of
  the tasks is theirs), and is left out of the Cc of the single emails; a person with one gets
  the single email, to and Cc as declared, except that the item's initiator gets an email of
  her own, never a Cc (its buttons are signed for her: `levels._apart_from_initiator`).
  Emergencies are never combined or folded. Someone
  whose initiator digest and owner digest both go out in the run gets one digest, their own
  open tasks first (`own`, `_one_digest_each`). An email records every level it carries
  (`Planned.records`; a merged digest, both digests' slots too); one level may ride in several
  emails (its owner's, its initiator's), and is recorded once all the same.
* `state` must be committed together with the planned notices:
  {"digest": {address: {"done": date, "sent_at": iso|None, "snap": {"ITEM/TASK": "state|%|deadline|owner"}}},
   "owner_digest": {address: {"done": date}}, "next_at": iso|None}.
  A digest is sent only when something is to report; the slot (and the snapshot) is used up
  either way, which loses nothing: with nothing to report, nothing changed since the last one.
  `next_at` is the soonest moment anything can fall due if no item changes (a level's due moment,
  or a bound below it, a digest slot, the end of quiet hours): the service plans again then, or
  as soon as an item changes.

Notice contexts (templates and render.py's contract):
  reminder / escalation, one level: item, task, level (record key), rule (level key), reason (the
    `when`), threshold, due_at (ISO), since (ISO), recipient_role, missing_role ("" or
    "manager"/...), owner {name, address, department}, overdue_days (int), progress_below
    (int|None), emergency, manage (the initiator's buttons for the task when the email is to her:
    initiatorbuttons.task_buttons, else ()).
  reminder / escalation, several (`_bundle`): recipient, entries (one per task: the reader's own
    tasks first, then those they follow; soonest deadline first) [{item {id, title, kind,
    initiator_name}, task, ref "ITEM/TASK", owner, recipient_role, overdue_days, actions (its
    buttons: confirm+decline | progress+done | status, after the initiator's own for a task of
    an item the reader started), levels [{level, rule, reason, threshold,
    due_at, since, progress_below, recipient_role, missing_role}]}], counts {mine, others},
    n_items, title (the only item's, or "").
  digest: recipient {name, address}, since (ISO|None: last digest), title (the only item's title,
    or ""), n_items, counts {action, overdue, unconfirmed, blocked, changed, total, reminded},
    sections [{key: action|overdue|changed|rest, rows: [row]}], projects [{id, title, kind,
    total, overdue, unconfirmed, blocked, closable}], and when the reader's owner digest goes
    out in the same run, own {rows, counts} (as the owner digest's; counts.reminded is then the
    sum of both). A task both theirs and in an item they started is listed in both places.
    item_buttons? [{ref: item id, actions: ("close",)}]: each item whose tasks are all done.
  owner_digest: recipient, counts {overdue, unconfirmed, total, reminded}, rows (soonest deadline
    first).
  row: item_id, item_title, item_kind, initiator_name, task_id, name, owner, owner_name,
    owner_department, deadline (ISO), state, progress, updated_at (ISO), flags (overdue|
    unconfirmed|blocked), action ("" | declined | blocked | delayed), changes ({field, old, new}),
    and, when levels ride in the digest: levels (as in an entry), overdue_days, ref, actions;
    in an initiator's digest a row that needs her has ref and actions (her buttons, then the
    levels' status) even without levels.
  `actionable(context)` yields what has buttons, once per task (and per item, for
  `item_buttons`); the service gives each its own reply addresses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from typing import Any

from maild.core import series
from maild.core.digests import (
    digest_horizon,
    digest_now,
    digest_people,
    digest_row,
    digest_slot,
    initiator_digests,
    one_digest_each,
    owner_digests,
)
from maild.core.levels import Due, Horizon, actionable, deliver, task_levels
from maild.core.people import Directory
from maild.core.schedrules import (
    CLOSED_TASK_STATES,
    Cadence,
    Level,
    Memo,
    Planned,
    RowKey,
    ScheduleRules,
    load_schedule_rules,
)
from maild.core.workcal import WorkCalendar

__all__ = ["Cadence", "Level", "Planned", "ScheduleRules", "actionable", "load_schedule_rules",
           "next_digest_at", "next_level_due", "people_of", "plan", "plan_steps"]

YIELD_EVERY = 200  # items between two steps of `plan_steps` (~10-20 ms of planning)


def plan(items: Sequence[Mapping[str, Any]], now: datetime, rules: ScheduleRules,
         cal: WorkCalendar, people: Directory, state: Mapping[str, Any]
         ) -> tuple[list[Planned], dict[str, Any]]:
    """Everything due at `now`, and the planner's new state (commit both together)."""
    steps = plan_steps(items, now, rules, cal, people, state)
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def plan_steps(items: Sequence[Mapping[str, Any]], now: datetime, rules: ScheduleRules,
               cal: WorkCalendar, people: Directory, state: Mapping[str, Any], *,
               every: int = YIELD_EVERY
               ) -> Generator[None, None, tuple[list[Planned], dict[str, Any]]]:
    """`plan` as steps: yields after every `every` items (and digests); returns what `plan`
    returns. The inputs must not change between steps (pass copies)."""
    now = cal.local(now)
    directory = {p.address: p for p in people.people}
    live = [i for i in items if i.get("state", "open") == "open"]
    memo = Memo(cal, now, directory)
    horizon = Horizon(now)
    allowed = cal.allowed(now)
    if live and not allowed:
        horizon.add(cal.next_allowed(now))
    dues: list[Due] = []
    by_kind = {kind: tuple(lv for lv in rules.levels if lv.applies_to == kind)
               for kind in ("task", "emergency")}
    for n, item in enumerate(live, 1):
        if n % every == 0:
            yield
        if "series" in item and (created := series.next_moment(item)) is not None:
            horizon.add(created)  # a recurring task's next occurrence (closeloop, scheduling)
        emergency = item.get("kind") == "emergency"
        if not (allowed or emergency):
            continue  # deferred, not dropped: due again at the next allowed tick
        levels = by_kind["emergency" if emergency else "task"]
        for task in item.get("tasks", ()):
            if task.get("state") not in CLOSED_TASK_STATES:
                task_levels(item, task, levels, now, memo, horizon, dues)
    new_state: dict[str, Any] = {"digest": dict(state.get("digest", {})),
                                 "owner_digest": dict(state.get("owner_digest", {}))}
    digest_who = digest_now(live, "digest", rules.digest, new_state["digest"], now, cal)
    owner_who = digest_now(live, "owner_digest", rules.owner_digest, new_state["owner_digest"],
                            now, cal)
    held: list[Due] = []
    if dues and not cal.vouches_for(now.date()):
        dues, held = hold_for_managers(dues)
    planned, folded = deliver(dues, rules, memo, digest_who, owner_who)
    cache: dict[int, tuple[dict[str, Any], RowKey]] = {}  # by task object: both digests use it

    def row_of(item: Mapping[str, Any], task: Mapping[str, Any]) -> tuple[dict[str, Any], RowKey]:
        found = cache.get(id(task))
        if found is None:
            found = cache[id(task)] = digest_row(item, task, now, memo.parse)
        return found

    digests: list[Planned] = []
    owned: list[Planned] = []
    if digest_who:
        for digest in initiator_digests(live, now, digest_who, directory, new_state["digest"],
                                        row_of, folded):
            digests.append(digest)
            if len(digests) % (every // 4 or 1) == 0:
                yield
    # The owners' digests, planned like the initiators' just above (duplicates): two lists, two readers.
    if owner_who:
        for digest in owner_digests(live, now, owner_who, directory, new_state["owner_digest"],
                                    row_of, folded):
            owned.append(digest)
            if len(owned) % (every // 4 or 1) == 0:
                yield
    planned.extend(say_why_held(one_digest_each(digests, owned), held, now.date()))
    for name, cadence in (("digest", rules.digest), ("owner_digest", rules.owner_digest)):
        if cadence.every != "off":
            digest_horizon(live, name, cadence, new_state[name], now, cal, horizon)
    new_state["next_at"] = horizon.soonest.isoformat() if horizon.soonest else None
    return planned, new_state


def next_level_due(item: Mapping[str, Any], now: datetime, rules: ScheduleRules,
                   cal: WorkCalendar) -> datetime | None:
    """When a plan must next look at this item for its levels: `now` when one is due already
    (or the next allowed moment, for a deferred one), else the soonest moment one can fall due
    if the item does not change (possibly an earlier bound); None when none ever can. A
    recurring task's next occurrence counts as such a moment (the run creates it)."""
    if item.get("state", "open") != "open":
        return None
    now = cal.local(now)
    created = series.next_moment(item) if "series" in item else None
    if created is not None and created <= now:
        return now
    memo = Memo(cal, now, {})
    horizon = Horizon(now)
    dues: list[Due] = []
    emergency = item.get("kind") == "emergency"
    kind = "emergency" if emergency else "task"
    levels = tuple(lv for lv in rules.levels if lv.applies_to == kind)
    for task in item.get("tasks", ()):
        if task.get("state") not in CLOSED_TASK_STATES:
            task_levels(item, task, levels, now, memo, horizon, dues)
    if created is not None:
        horizon.add(created)
    if dues and not cal.vouches_for(now.date()) and not hold_for_managers(dues)[0]:
        # only escalations to managers, held today: look again when the next day starts
        return cal.at(now.date() + timedelta(days=1), time(0))
    if dues:
        return now if emergency or cal.allowed(now) else cal.next_allowed(now)
    return horizon.soonest


def next_digest_at(cadence: Cadence, done: str | None, now: datetime,
                   cal: WorkCalendar) -> datetime | None:
    """When a person's digest of this cadence (last sent on `done`) is next due to be planned:
    its slot, or the next allowed moment when the slot has passed in quiet time; None if off."""
    if cadence.every == "off":
        return None
    now = cal.local(now)
    moment = digest_slot(cadence, done, now, cal)
    if moment <= now and not cal.allowed(now):
        return cal.next_allowed(now)
    return moment


def hold_for_managers(dues: list[Due]) -> tuple[list[Due], list[Due]]:
    """(levels to send, levels held): a level that reaches a manager waits for a day the
    calendar can vouch for; nothing is recorded, so it is due again then."""
    send, held = [], []
    for due in dues:
        level = due.level
        (held if level.to == "manager" or "manager" in level.cc else send).append(due)
    return send, held


def say_why_held(planned: list[Planned], held: Sequence[Due], day: date) -> list[Planned]:
    """Initiator digests that tell their reader how many of their items' escalations to
    managers wait for the calendar (`calendar_hold`)."""
    if not held:
        return planned
    count = Counter(str(due.item["initiator"]) for due in held)
    out = []
    for entry in planned:
        n = count.get(entry.notice.to[0], 0) if entry.notice.template == "digest" else 0
        if n:
            context = {**entry.notice.context,
                       "calendar_hold": {"day": day.isoformat(), "year": day.year, "held": n}}
            entry = Planned(replace(entry.notice, context=context), entry.records)
        out.append(entry)
    return out


def people_of(item: Mapping[str, Any]) -> dict[str, set[str]]:
    """Who would get each kind of digest that lists this item: {"digest": initiators,
    "owner_digest": owners of its open tasks}."""
    if item.get("state", "open") != "open":
        return {"digest": set(), "owner_digest": set()}
    return {name: digest_people([item], name) for name in ("digest", "owner_digest")}
