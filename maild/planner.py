"""What is due now: digests to initiators and owners, reminders and escalations, each sent once.

Pure: `plan(items, now, rules, cal, people, state)` reads only stored timestamps (item
`created_at`, task `assigned_at`/`updated_at`/`confirmed_at`/`deadline`) and what was already sent
(each task's `sent` map, key → ISO time, written by the service from `Planned.records`), and
returns the emails due plus the planner's new memory. Nothing here reads the clock or the database.

Surprises worth knowing:

* Catch-up is built in: due-ness is "the due moment has passed and it is not recorded", so a daemon
  down for three days plans each level that fell due once, and one digest (not one per day).
* A level's record key is `"<level key>@<basis>"`: the basis is the owner round (`r1`, `r2` after a
  reassignment) for unconfirmed levels, the deadline for deadline levels, and the last update plus
  the period for the repeating `emergency_update_hours`. A new owner or a new deadline re-arms them.
* Non-emergency notices are only planned on a working day outside quiet hours (deferred, never
  dropped: they are due at the next tick that is allowed). Emergencies run on wall-clock minutes
  and ignore quiet hours, weekends and holidays.
* On a day the calendar cannot vouch for (a year no holiday source knows: `cal.vouches_for`),
  a level that reaches a manager (to or cc) is held, not sent and not recorded: it may be 春节.
  The initiator's digest says so (`calendar_hold` {day, year, held}); the level goes out on the
  first day the calendar vouches for again (`_hold_for_managers`).
* One email per person and run, not one per level (`_deliver`): a level reaches its owner in the
  owner's digest, and its initiator in the initiator's digest, when that digest goes to them in
  the same run (the row of its task says so, with that task's buttons); a person with several
  other levels due gets one email listing them all (a reminder, or an escalation when none of
  the tasks is theirs), and is left out of the Cc of the single emails; a person with one gets
  the single email, to and Cc as declared. Emergencies are never combined or folded. Someone
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
    (int|None), emergency.
  reminder / escalation, several (`_bundle`): recipient, entries (one per task: the reader's own
    tasks first, then those they follow; soonest deadline first) [{item {id, title, kind,
    initiator_name}, task, ref "ITEM/TASK", owner, recipient_role, overdue_days, actions (its
    buttons: confirm+decline | progress+done | status), levels [{level, rule, reason, threshold,
    due_at, since, progress_below, recipient_role, missing_role}]}], counts {mine, others},
    n_items, title (the only item's, or "").
  digest: recipient {name, address}, since (ISO|None: last digest), title (the only item's title,
    or ""), n_items, counts {action, overdue, unconfirmed, blocked, changed, total, reminded},
    sections [{key: action|overdue|changed|rest, rows: [row]}], projects [{id, title, kind,
    total, overdue, unconfirmed, blocked, closable}], and when the reader's owner digest goes
    out in the same run, own {rows, counts} (as the owner digest's; counts.reminded is then the
    sum of both). A task both theirs and in an item they started is listed in both places.
  owner_digest: recipient, counts {overdue, unconfirmed, total, reminded}, rows (soonest deadline
    first).
  row: item_id, item_title, item_kind, initiator_name, task_id, name, owner, owner_name,
    owner_department, deadline (ISO), state, progress, updated_at (ISO), flags (overdue|
    unconfirmed|blocked), action ("" | declined | blocked | delayed), changes ({field, old, new}),
    and, when levels ride in the digest: levels (as in an entry), overdue_days, ref, actions.
  `actionable(context)` yields what has buttons, once per task; the service gives each its own
  reply addresses.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from operator import itemgetter
from typing import Any

from . import looplevels, series
from .model import Notice, Person, TaskState
from .people import Directory
from .workcal import WorkCalendar, parse_time

CLOSED_TASK_STATES = frozenset({TaskState.DONE.value, TaskState.DECLINED.value})
_NOT_OVERDUE = CLOSED_TASK_STATES | {TaskState.SUBMITTED.value}  # handed in: the owner delivered
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
_ACTION = {"declined": "declined", "blocked": "blocked", "delayed": "delayed",
           **looplevels.ROW_ACTIONS}
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


def plan(items: Sequence[Mapping[str, Any]], now: datetime, rules: ScheduleRules,
         cal: WorkCalendar, people: Directory, state: Mapping[str, Any]
         ) -> tuple[list[Planned], dict[str, Any]]:
    """Everything due at `now`, and the planner's new state (commit both together)."""
    now = cal.local(now)
    directory = {p.address: p for p in people.people}
    live = [i for i in items if i.get("state", "open") == "open"]
    memo = _Memo(cal, now, directory)
    horizon = _Horizon(now)
    allowed = cal.allowed(now)
    if live and not allowed:
        horizon.add(cal.next_allowed(now))
    dues: list[_Due] = []
    by_kind = {kind: tuple(lv for lv in rules.levels if lv.applies_to == kind)
               for kind in ("task", "emergency")}
    for item in live:
        if "series" in item and (created := series.next_moment(item)) is not None:
            horizon.add(created)  # a recurring task's next occurrence (closeloop, service)
        emergency = item.get("kind") == "emergency"
        if not (allowed or emergency):
            continue  # deferred, not dropped: due again at the next allowed tick
        levels = by_kind["emergency" if emergency else "task"]
        for task in item.get("tasks", ()):
            if task.get("state") not in CLOSED_TASK_STATES:
                _levels(item, task, levels, now, memo, horizon, dues)
    new_state: dict[str, Any] = {"digest": dict(state.get("digest", {})),
                                 "owner_digest": dict(state.get("owner_digest", {}))}
    digest_now = _digest_now(live, "digest", rules.digest, new_state["digest"], now, cal)
    owner_now = _digest_now(live, "owner_digest", rules.owner_digest, new_state["owner_digest"],
                            now, cal)
    held: list[_Due] = []
    if dues and not cal.vouches_for(now.date()):
        dues, held = _hold_for_managers(dues)
    planned, folded = _deliver(dues, rules, memo, digest_now, owner_now)
    cache: dict[int, tuple[dict[str, Any], RowKey]] = {}  # by task object: both digests use it

    def row_of(item: Mapping[str, Any], task: Mapping[str, Any]) -> tuple[dict[str, Any], RowKey]:
        found = cache.get(id(task))
        if found is None:
            found = cache[id(task)] = _row(item, task, now, memo.parse)
        return found

    digests = list(_initiator_digests(live, now, digest_now, directory, new_state["digest"],
                                      row_of, folded)) if digest_now else []
    owned = list(_owner_digests(live, now, owner_now, directory, new_state["owner_digest"],
                                row_of, folded)) if owner_now else []
    planned.extend(_say_why_held(_one_digest_each(digests, owned), held, now.date()))
    for name, cadence in (("digest", rules.digest), ("owner_digest", rules.owner_digest)):
        if cadence.every != "off":
            _digest_horizon(live, name, cadence, new_state[name], now, cal, horizon)
    new_state["next_at"] = horizon.soonest.isoformat() if horizon.soonest else None
    return planned, new_state


# --------------------------------------------------------------------------------------------
# Reminders and escalations


@dataclass(frozen=True, slots=True)
class _Due:
    """One level that fell due for one task."""

    level: Level
    key: str
    item: Mapping[str, Any]
    task: Mapping[str, Any]
    due_at: datetime
    since: datetime
    deadline: datetime | None
    record: tuple[str, str, str]  # (item id, task id, key): what `sent` gets


class _Horizon:
    """The soonest moment after `now` at which something may fall due, if no item changes."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.soonest: datetime | None = None

    def add(self, moment: datetime) -> None:
        if moment > self.now and (self.soonest is None or moment < self.soonest):
            self.soonest = moment


def _levels(item: Mapping[str, Any], task: Mapping[str, Any], levels: Sequence[Level],
            now: datetime, memo: _Memo, horizon: _Horizon, dues: list[_Due]) -> None:
    """The task's levels that are due now go to `dues`; the others' due moments to `horizon`."""
    sent = task.get("sent") or {}
    deadline = memo.parse(task["deadline"]) if task.get("deadline") else None
    for level in levels:
        due = _due(level, item, task, deadline, now, sent, memo)
        if due is None:
            continue
        moment, since, key = due
        if now >= moment:
            dues.append(_Due(level, key, item, task, moment, since, deadline,
                             (str(item["id"]), str(task["id"]), key)))
            if level.when == "emergency_update_hours":  # it repeats: the next period's
                horizon.add(moment + timedelta(hours=level.threshold))
        else:
            horizon.add(moment)


def _due(level: Level, item: Mapping[str, Any], task: Mapping[str, Any], deadline: datetime | None,
         now: datetime, sent: Mapping[str, Any], memo: _Memo
         ) -> tuple[datetime, datetime, str] | None:
    """(due moment, the moment its clock started, record key), or None when not applicable or
    already sent. While the moment is still far off it may be an earlier bound instead (the exact
    one walks the working calendar): enough to know it is not due, and for the horizon. Cheap
    tests come first: 20,000 tasks are checked on every plan."""
    when, threshold = level.when, level.threshold
    if when == "unreviewed_hours":
        return looplevels.unreviewed(level.key, threshold, task, sent, memo.parse,
                                     memo.add_working_hours)
    if when in ("unconfirmed_hours", "emergency_unconfirmed_minutes"):
        if task.get("state") != UNCONFIRMED:
            return None
        key = f"{level.key}@r{task.get('round', 1)}"
        if key in sent:
            return None
        since = memo.parse(task.get("assigned_at") or task.get("updated_at") or item["created_at"])
        if when == "emergency_unconfirmed_minutes":
            return since + timedelta(minutes=threshold), since, key
        bound = since + timedelta(hours=threshold)  # working time is never shorter than wall time
        if now < bound:
            return bound, since, key
        return memo.add_working_hours(since, threshold), since, key
    if when == "emergency_update_hours":
        if task.get("state") == UNCONFIRMED:
            return None
        stamps = [s for s in (task.get("updated_at"), task.get("confirmed_at")) if s]
        last = max(map(memo.parse, stamps), default=memo.parse(item["created_at"]))
        period = timedelta(hours=threshold)
        k = max(1, math.floor((now - last) / period))
        key = f"{level.key}@{memo.iso(last)}#{k}"
        if key in sent:  # this period's reminder went out: the next one is the next period's
            return last + (k + 1) * period, last, f"{level.key}@{memo.iso(last)}#{k + 1}"
        return last + k * period, last, key
    if deadline is None or looplevels.holds(when, task):
        return None
    key = f"{level.key}@{task['deadline']}"
    if key in sent:
        return None
    if level.blocking_threshold is not None and now >= deadline:
        threshold = looplevels.threshold(threshold, level.blocking_threshold, item, task)
    if when == "before_deadline_hours":
        below = level.progress_below
        if now >= deadline or (below is not None and int(task.get("progress") or 0) >= below):
            return None
        # k working days always fit in 2k + 14 calendar days, even across the Golden Week
        bound = deadline - timedelta(days=2 * math.ceil(threshold / memo.day_hours) + 14)
        if now < bound:
            return bound, deadline, key
        return memo.add_working_hours(deadline, -threshold), deadline, key
    if when == "overdue_working_days":
        bound = deadline + timedelta(hours=threshold * memo.day_hours)
        if now < bound:
            return bound, deadline, key
        return memo.add_working_hours(deadline, threshold * memo.day_hours), deadline, key
    return deadline, deadline, key  # overdue, emergency_past_eta


Folded = dict[tuple[str, str], dict[tuple[str, str], list[tuple[_Due, dict[str, Any]]]]]


def _deliver(dues: Sequence[_Due], rules: ScheduleRules, memo: _Memo, digest_now: set[str],
             owner_now: set[str]) -> tuple[list[Planned], Folded]:
    """The emails for the levels due. A level reaches its initiator in the initiator's digest,
    and its owner in the owner's digest, when that digest goes to them in this run (`folded`:
    (digest kind, address) → task → levels). Otherwise one email per level, to and cc as
    declared, except for a person with more than one level due in this run: one email lists all
    of theirs (`_bundle`), and they are left out of the single emails. Emergencies are never
    folded or combined."""
    folded: Folded = {}
    reach: list[list[tuple[str, str, str]]] = []
    load: dict[str, int] = {}
    for due in dues:
        people = _recipients(due, rules, memo.directory)
        if due.level.applies_to != "emergency":
            rest = []
            for address, role, missing in people:
                kind = ("owner_digest" if role == "owner" and address in owner_now else
                        "digest" if role == "initiator" and address in digest_now else "")
                if kind:
                    folded.setdefault((kind, address), {}).setdefault(
                        due.record[:2], []).append((due, {
                            **_level_facts(due, memo, role, missing),
                            "overdue_days": memo.overdue_days(due.deadline)}))
                else:
                    rest.append((address, role, missing))
            people = rest
            for address, _role, _missing in people:
                load[address] = load.get(address, 0) + 1
        reach.append(people)
    planned: list[Planned] = []
    bundles: dict[str, list[tuple[_Due, str, str]]] = {}
    for due, people in zip(dues, reach, strict=True):
        alone = []
        for person in people:
            if due.level.applies_to == "emergency" or load[person[0]] == 1:
                alone.append(person)
            else:
                bundles.setdefault(person[0], []).append((due, person[1], person[2]))
        if not alone:
            continue
        (to, role, missing), cc = alone[0], tuple(address for address, _r, _m in alone[1:])
        root = due.item.get("root_message_id")
        notice = Notice(
            template=due.level.template, to=(to,), cc=cc,
            language=str(due.item.get("language", "zh")),
            context={**_level_facts(due, memo, role, missing), "item": due.item,
                     "task": due.task, "owner": memo.person(due.task["owner"]),
                     "overdue_days": memo.overdue_days(due.deadline),
                     "emergency": due.level.applies_to == "emergency",
                     **looplevels.level_facts(due.item, due.task)},
            item_id=due.item["id"], task_id=due.task["id"], in_reply_to=root,
            references=(root,) if root else ())
        planned.append(Planned(notice, (_record(due),)))
    briefs: dict[str, dict[str, Any]] = {}
    for address, entries in bundles.items():
        planned.append(_bundle(address, entries, memo, briefs))
    return planned, folded


def _recipients(due: _Due, rules: ScheduleRules, directory: Mapping[str, Person]
                ) -> list[tuple[str, str, str]]:
    """(address, role, missing role) of who hears of `due`: its `to` first, then its cc."""
    level = due.level
    to, role, missing = _address(level.to, due, rules, directory), level.to, ""
    if not to:  # no manager on file, no emergency contact: the initiator hears instead
        to, role, missing = str(due.item["initiator"]), "initiator", level.to
    people = [(to, role, missing)]
    for cc_role in level.cc:
        cc = _address(cc_role, due, rules, directory)
        if cc and all(cc != a for a, _r, _m in people):
            people.append((cc, cc_role, ""))
    return people


def _address(role: str, due: _Due, rules: ScheduleRules, directory: Mapping[str, Person]) -> str:
    if role == "owner":
        return str(due.task["owner"])
    if role == "initiator":
        return str(due.item["initiator"])
    if role == "manager":
        owner = directory.get(due.task["owner"])
        return owner.manager if owner else ""
    return rules.emergency_contact


def _level_facts(due: _Due, memo: _Memo, role: str, missing: str) -> dict[str, Any]:
    """What a level says to one of the people who hear of it."""
    level = due.level
    return {
        "level": due.key, "rule": level.key, "reason": level.when,
        "threshold": int(level.threshold) if level.threshold.is_integer() else level.threshold,
        "due_at": memo.iso(due.due_at), "since": memo.iso(due.since),
        "progress_below": level.progress_below, "recipient_role": role, "missing_role": missing,
    }


def _bundle(address: str, entries: list[tuple[_Due, str, str]], memo: _Memo,
            briefs: dict[str, dict[str, Any]]) -> Planned:
    """One email to `address` listing every level due for them, one entry per task (with each of
    its levels' sentences): their own tasks first, then the ones they follow, each group soonest
    deadline first. `briefs` (item id → the few item facts an entry shows) is shared by all."""
    by_task: dict[tuple[str, str], list[tuple[_Due, str, str]]] = {}
    for entry in entries:
        by_task.setdefault(_record(entry[0])[:2], []).append(entry)
    keyed = []
    for levels in by_task.values():
        first = levels[0][0]
        item, task, deadline = first.item, first.task, first.deadline
        mine = any(role == "owner" for _d, role, _m in levels)
        brief = briefs.get(item["id"])
        if brief is None:
            brief = briefs[item["id"]] = {
                "id": item["id"], "title": item.get("title", ""), "kind": item.get("kind", "task"),
                "initiator_name": item.get("initiator_name") or item["initiator"]}
        row = {"item": brief, "task": task, "ref": f"{item['id']}/{task['id']}",
               "owner": memo.person(task["owner"]),
               "recipient_role": "owner" if mine else levels[0][1],
               "actions": _actions(task, mine),
               "overdue_days": memo.overdue_days(deadline),
               "levels": tuple(_level_facts(due, memo, role, missing)
                               for due, role, missing in levels),
               **looplevels.level_facts(item, task)}
        keyed.append(((not mine, deadline or _NO_DEADLINE, str(item["id"]), str(task["id"])), row))
    keyed.sort(key=lambda pair: pair[0])
    rows = [row for _key, row in keyed]
    mine = sum(row["recipient_role"] == "owner" for row in rows)
    items = list({str(due.item["id"]): due.item for due, _r, _m in entries}.values())
    one = items[0] if len(items) == 1 else None
    root = one.get("root_message_id") if one else None
    context = {"recipient": memo.person(address), "entries": rows,
               "counts": {"mine": mine, "others": len(rows) - mine},
               "n_items": len(items), "title": one.get("title", "") if one else ""}
    notice = Notice(template="reminder" if mine else "escalation", to=(address,),
                    language=_language(items), context=context,
                    item_id=one["id"] if one else None,
                    task_id=rows[0]["task"]["id"] if one and len(rows) == 1 else None,
                    in_reply_to=root, references=(root,) if root else ())
    return Planned(notice, tuple(dict.fromkeys(_record(due) for due, _r, _m in entries)))


_NO_DEADLINE = datetime.max.replace(tzinfo=UTC)  # sorts after every deadline


def _actions(task: Mapping[str, Any], mine: bool) -> tuple[str, ...]:
    """The buttons a listed task offers: its owner confirms or declines it, or reports on it;
    the others who hear of it ask for its status."""
    if not mine:
        return ("status",)
    return ("confirm", "decline") if task.get("state") == UNCONFIRMED else ("progress", "done")


def actionable(context: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The tasks an email offers buttons for, once each, with `ref` ("ITEM/TASK") and `actions`:
    the entries of a combined email, and the digest rows that carry levels. The service issues
    each its own reply addresses. A task listed twice (in a merged digest, among the reader's own
    tasks and in an item they started) is yielded once, with the actions of both rows."""
    rows = [*context.get("entries", ()), *context.get("rows", ()),
            *(context.get("own") or {}).get("rows", ()),
            *(row for section in context.get("sections", ()) for row in section["rows"])]
    seen: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        if "actions" not in row:
            continue
        first = seen.get(row["ref"])
        if first is None:
            seen[row["ref"]] = row
        elif any(a not in first["actions"] for a in row["actions"]):
            seen[row["ref"]] = {"ref": row["ref"],
                                "actions": tuple(dict.fromkeys((*first["actions"],
                                                                *row["actions"])))}
    yield from seen.values()


def _record(due: _Due) -> tuple[str, str | None, str]:
    return due.record


def _hold_for_managers(dues: list[_Due]) -> tuple[list[_Due], list[_Due]]:
    """(levels to send, levels held): a level that reaches a manager waits for a day the
    calendar can vouch for; nothing is recorded, so it is due again then."""
    send, held = [], []
    for due in dues:
        level = due.level
        (held if level.to == "manager" or "manager" in level.cc else send).append(due)
    return send, held


def _say_why_held(planned: list[Planned], held: Sequence[_Due], day: date) -> list[Planned]:
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


# --------------------------------------------------------------------------------------------
# Digests


def _digest_now(items: Sequence[Mapping[str, Any]], name: str, cadence: Cadence,
                memory: Mapping[str, Any], now: datetime, cal: WorkCalendar) -> set[str]:
    """Who gets this digest in this run: its slot has come, and mail may go."""
    if cadence.every == "off" or not cal.allowed(now):
        return set()
    slots: dict[str | None, bool] = {}
    out = set()
    for address in _digest_people(items, name):
        done = memory.get(address, {}).get("done")
        if done not in slots:
            slots[done] = _slot_passed(cadence, done, now, cal)
        if slots[done]:
            out.add(address)
    return out


def _digest_people(items: Sequence[Mapping[str, Any]], name: str) -> set[str]:
    if name == "digest":
        return {str(item["initiator"]) for item in items}
    return {str(task["owner"]) for item in items for task in item.get("tasks", ())
            if task.get("state") not in CLOSED_TASK_STATES}


def _slot_passed(cadence: Cadence, done: str | None, now: datetime, cal: WorkCalendar) -> bool:
    """Has the next digest slot after the last one (`done`, a date) come?"""
    return now >= _slot(cadence, done, now, cal)


def _slot(cadence: Cadence, done: str | None, now: datetime, cal: WorkCalendar) -> datetime:
    """The next digest slot after the last one (`done`, a date; None: never sent)."""
    today = now.date()
    if cadence.every == "weekly":
        if done is None:
            slot = today - timedelta(days=(today.weekday() - cadence.weekday) % 7)
        else:
            last = date.fromisoformat(done)
            slot = last + timedelta(days=(cadence.weekday - last.weekday() - 1) % 7 + 1)
    elif done is None:
        slot = today
    else:
        slot = date.fromisoformat(done) + timedelta(days=2 if cadence.every == "every_2_days" else 1)
    return cal.at(slot, cadence.at)


def _digest_horizon(items: Sequence[Mapping[str, Any]], name: str, cadence: Cadence,
                    memory: Mapping[str, Any], now: datetime, cal: WorkCalendar,
                    horizon: _Horizon) -> None:
    """The next slot of everyone who would get this digest (after this plan's memory)."""
    slots: dict[str | None, datetime] = {}
    for address in _digest_people(items, name):
        done = memory.get(address, {}).get("done")
        if done not in slots:
            slots[done] = _slot(cadence, done, now, cal)
    for moment in slots.values():
        horizon.add(moment)


def _initiator_digests(items: Sequence[Mapping[str, Any]], now: datetime, who: set[str],
                       directory: Mapping[str, Person], memory: dict[str, Any], row_of: RowOf,
                       folded: Folded) -> Iterator[Planned]:
    by_initiator: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in items:
        if str(item["initiator"]) in who:
            by_initiator[str(item["initiator"])].append(item)
    for address, mine in by_initiator.items():
        entry = memory.get(address, {})
        levels = folded.get(("digest", address), {})
        old_snap = entry.get("snap")
        snap: dict[str, str] = {}
        sections: dict[str, list[tuple[dict[str, Any], RowKey]]] = {
            k: [] for k in ("action", "overdue", "changed", "rest")}
        projects = []
        for item in mine:
            flagged = dict.fromkeys(("overdue", "unconfirmed", "blocked"), 0)
            total = done = 0
            for task in item.get("tasks", ()):
                shared, key = row_of(item, task)
                ref = f"{key[1]}/{key[2]}"
                snap[ref] = now_snap = _snapshot(task)
                changes = _changes(old_snap, ref, now_snap)
                row = {**shared, "changes": changes} if changes else shared
                due = levels.get(key[1:]) if levels else None
                if due:
                    row = _with_levels(row, ref, task, due, mine=False)
                flags = row["flags"]
                section = ("action" if row["action"] else "overdue" if "overdue" in flags
                           else "changed" if changes else "rest")
                sections[section].append((row, key))
                for flag in flags:
                    flagged[flag] += 1
                total += 1
                done += row["state"] in CLOSED_TASK_STATES
            projects.append({"id": item["id"], "title": item.get("title", ""),
                             "kind": item.get("kind", "task"), "total": total,
                             "closable": bool(total) and done == total
                             and not series.active(item), **flagged,
                             **looplevels.project_facts(item)})
        counts = {"action": len(sections["action"]) + sum(p["closable"] for p in projects),
                  "changed": len(sections["changed"]),
                  "total": sum(p["total"] for p in projects),
                  **{f: sum(p[f] for p in projects) for f in ("overdue", "unconfirmed",
                                                             "blocked")},
                  "reminded": len(levels)}
        memory[address] = {**entry, "done": now.date().isoformat(), "snap": snap}
        if not (counts["action"] or counts["overdue"] or counts["unconfirmed"]
                or counts["blocked"] or counts["changed"] or counts["reminded"]):
            continue  # nothing to report: no email, the slot is used up
        memory[address]["sent_at"] = now.isoformat()
        context = {
            "recipient": _person(directory, address), "since": entry.get("sent_at"),
            "title": mine[0].get("title", "") if len(mine) == 1 else "", "n_items": len(mine),
            "counts": counts, "projects": projects,
            "sections": [{"key": k, "rows": _soonest(pairs)} for k, pairs in sections.items()
                         if pairs],
        }
        yield Planned(Notice(template="digest", to=(address,), language=_language(mine),
                             context=context),
                      (("digest", address, now.date().isoformat()), *_folded_records(levels)))


def _owner_digests(items: Sequence[Mapping[str, Any]], now: datetime, who: set[str],
                   directory: Mapping[str, Person], memory: dict[str, Any], row_of: RowOf,
                   folded: Folded) -> Iterator[Planned]:
    by_owner: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = defaultdict(list)
    for item in items:
        for task in item.get("tasks", ()):
            if task.get("state") not in CLOSED_TASK_STATES and str(task["owner"]) in who:
                by_owner[str(task["owner"])].append((item, task))
    for address, pairs in by_owner.items():
        memory[address] = {**memory.get(address, {}), "done": now.date().isoformat()}
        levels = folded.get(("owner_digest", address), {})
        rows = []
        for item, task in pairs:
            row, key = row_of(item, task)
            due = levels.get(key[1:]) if levels else None
            if due:
                row = _with_levels(row, f"{key[1]}/{key[2]}", task, due, mine=True)
            rows.append((row, key))
        rows = _soonest(rows)
        counts = {"total": len(rows), "overdue": 0, "unconfirmed": 0, "reminded": len(levels)}
        for row in rows:
            for flag in row["flags"]:
                if flag != "blocked":
                    counts[flag] += 1
        context = {"recipient": _person(directory, address), "rows": rows, "counts": counts}
        yield Planned(Notice(template="owner_digest", to=(address,),
                             language=_language([i for i, _ in pairs]), context=context),
                      (("owner_digest", address, now.date().isoformat()),
                       *_folded_records(levels)))


def _one_digest_each(digests: list[Planned], owned: list[Planned]) -> list[Planned]:
    """One digest per person and run: someone whose initiator digest and owner digest both go
    out now gets the initiator digest with the owner digest's rows and counts in it (`own`), and
    the records of both (each digest's slot, every level either carries)."""
    alone = {p.notice.to[0]: p for p in owned}
    out = []
    for digest in digests:
        mine = alone.pop(digest.notice.to[0], None)
        if mine is None:
            out.append(digest)
            continue
        context, own = dict(digest.notice.context), mine.notice.context
        context["own"] = {"rows": own["rows"], "counts": own["counts"]}
        context["counts"] = {**context["counts"],
                             "reminded": context["counts"]["reminded"] + own["counts"]["reminded"]}
        out.append(Planned(replace(digest.notice, context=context),
                           digest.records + mine.records))
    return out + list(alone.values())


def _with_levels(row: Mapping[str, Any], ref: str, task: Mapping[str, Any],
                 due: list[tuple[_Due, dict[str, Any]]], mine: bool) -> dict[str, Any]:
    """A digest row that also carries the levels due for its task (their sentences, and the
    buttons of a combined email's entry); `ref` is "ITEM/TASK"."""
    return {**row, "levels": tuple([facts for _due, facts in due]),
            "overdue_days": due[0][1]["overdue_days"], "ref": ref,
            "actions": _actions(task, mine)}


def _folded_records(levels: Mapping[Any, list[tuple[_Due, dict[str, Any]]]]
                    ) -> tuple[tuple[str, str | None, str], ...]:
    return tuple(_record(due) for due_list in levels.values() for due, _facts in due_list)


def _row(item: Mapping[str, Any], task: Mapping[str, Any], now: datetime,
         parse: Callable[[Any], datetime]) -> tuple[dict[str, Any], RowKey]:
    """A digest row, and its sort key: its deadline as a timestamp (infinity without one), its
    item's and its own id (also the key of the levels folded into digests)."""
    state = str(task.get("state", ""))
    deadline = task.get("deadline")
    due = parse(deadline) if deadline else None
    flags = _FLAGS[(due is not None and state not in _NOT_OVERDUE and now > due,
                    state == UNCONFIRMED, state == BLOCKED)]
    return {
        "item_id": item["id"], "item_title": item.get("title", ""),
        "item_kind": item.get("kind", "task"),
        "initiator_name": item.get("initiator_name") or item.get("initiator", ""),
        "task_id": task["id"], "name": task.get("name", ""), "owner": task.get("owner", ""),
        "owner_name": task.get("owner_name") or task.get("owner", ""),
        "owner_department": task.get("owner_department", ""), "deadline": deadline,
        "state": state, "progress": int(task.get("progress") or 0),
        "updated_at": task.get("updated_at"), "flags": flags, "action": _ACTION.get(state, ""),
        "changes": (),
    }, (due.timestamp() if due is not None else math.inf, str(item["id"]), str(task["id"]))


# Every combination of a row's flags, made once: 20,000 rows then hold only strings, numbers
# and these, which the garbage collector leaves alone (a plan allocates enough to trigger it).
_FLAGS = {(o, u, b): tuple(f for f, on in (("overdue", o), ("unconfirmed", u), ("blocked", b))
                           if on)
          for o in (False, True) for u in (False, True) for b in (False, True)}


def _snapshot(task: Mapping[str, Any]) -> str:
    g = task.get
    return f"{g('state') or ''}|{g('progress') or ''}|{g('deadline') or ''}|{g('owner') or ''}"


def _changes(old_snap: Mapping[str, str] | None, ref: str,
             snap: str) -> tuple[dict[str, Any], ...]:
    if old_snap is None:  # the first digest: everything is new, nothing "changed"
        return ()
    if ref not in old_snap:
        return ({"field": "new", "old": "", "new": ""},)
    if old_snap[ref] == snap:
        return ()
    old, new = old_snap[ref].split("|"), snap.split("|")
    return tuple({"field": f, "old": o, "new": n}
                 for f, o, n in zip(("state", "progress", "deadline", "owner"), old, new,
                                    strict=False) if o != n)


def _soonest(pairs: list[tuple[dict[str, Any], RowKey]]) -> list[dict[str, Any]]:
    """The rows, soonest deadline first (none last), then by item and task."""
    pairs.sort(key=itemgetter(1))
    return [row for row, _ in pairs]


def _language(items: Sequence[Mapping[str, Any]]) -> str:
    return Counter(str(i.get("language", "zh")) for i in items).most_common(1)[0][0]


def _person(directory: Mapping[str, Person], address: str) -> dict[str, str]:
    person = directory.get(address)
    return {"address": address, "name": person.name if person else address,
            "department": person.department if person else ""}


class _Memo:
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
            return _parse(value, self.cal)
        found = self._parsed.get(value)
        if found is None:
            found = self._parsed[value] = _parse(value, self.cal)
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
            found = self._people[address] = _person(self.directory, address)
        return found


def _parse(value: Any, cal: WorkCalendar) -> datetime:
    """A stored ISO time in the calendar's zone; a bare date means the end of that working day."""
    if isinstance(value, datetime):
        return cal.local(value)
    text = str(value)
    if len(text) == 10:
        return cal.at(date.fromisoformat(text), cal.workday_end)
    return cal.local(datetime.fromisoformat(text))
