"""What is due now: digests to initiators and owners, reminders and escalations, each sent once.

Pure: `plan(items, now, rules, cal, people, state)` reads only stored timestamps (item
`created_at`, task `assigned_at`/`updated_at`/`confirmed_at`/`deadline`) and what was already sent
(each task's `sent` map, key → ISO time, written by the service from `Planned.record`), and returns
the notices due plus the planner's new memory. Nothing here reads the clock or the database.

Surprises worth knowing:

* Catch-up is built in: due-ness is "the due moment has passed and it is not recorded", so a daemon
  down for three days plans each level that fell due once, and one digest (not one per day).
* A level's record key is `"<level key>@<basis>"`: the basis is the owner round (`r1`, `r2` after a
  reassignment) for unconfirmed levels, the deadline for deadline levels, and the last update plus
  the period for the repeating `emergency_update_hours`. A new owner or a new deadline re-arms them.
* Non-emergency notices are only planned on a working day outside quiet hours (deferred, never
  dropped: they are due at the next tick that is allowed). Emergencies run on wall-clock minutes
  and ignore quiet hours, weekends and holidays.
* `state` must be committed together with the planned notices:
  {"digest": {address: {"done": date, "sent_at": iso|None, "snap": {"ITEM/TASK": "state|%|deadline|owner"}}},
   "owner_digest": {address: {"done": date}}}.
  A digest is sent only when something is to report; the slot (and the snapshot) is used up
  either way, which loses nothing: with nothing to report, nothing changed since the last one.

Notice contexts (templates and render.py's contract):
  reminder / escalation: item, task, level (record key), rule (level key), reason (the `when`),
    threshold, due_at (ISO), since (ISO), recipient_role, missing_role ("" or "manager"/...),
    owner {name, address, department}, overdue_days (int), progress_below (int|None), emergency.
  digest: recipient {name, address}, since (ISO|None: last digest), title (the only item's title,
    or ""), n_items, counts {action, overdue, unconfirmed, blocked, changed, total},
    sections [{key: action|overdue|changed|rest, rows: [row]}], projects [{id, title, kind,
    total, overdue, unconfirmed, blocked, closable}].
  owner_digest: recipient, counts {overdue, unconfirmed, total}, rows (soonest deadline first).
  row: item_id, item_title, item_kind, initiator_name, task_id, name, owner, owner_name,
    owner_department, deadline (ISO), state, progress, updated_at (ISO), flags [overdue|
    unconfirmed|blocked], action ("" | declined | blocked | delayed), changes [{field, old, new}].
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from .model import Notice, Person, TaskState
from .people import Directory
from .workcal import WorkCalendar, parse_time

CLOSED_TASK_STATES = frozenset({TaskState.DONE.value, TaskState.DECLINED.value})
UNCONFIRMED = TaskState.AWAITING_CONFIRMATION.value
WHENS = {  # when → applies_to
    "unconfirmed_hours": "task", "before_deadline_hours": "task", "overdue": "task",
    "overdue_working_days": "task", "emergency_unconfirmed_minutes": "emergency",
    "emergency_update_hours": "emergency", "emergency_past_eta": "emergency",
}
ROLES = ("owner", "initiator", "manager", "emergency_contact")
CADENCES = {"digest": ("daily", "every_2_days"), "owner_digest": ("off", "daily", "weekly")}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ACTION = {"declined": "declined", "blocked": "blocked", "delayed": "delayed"}
RowOf = Callable[[Mapping[str, Any], Mapping[str, Any]], tuple[dict[str, Any], float]]


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
    notice: Notice
    record: tuple[str, str | None, str]  # (item_id, task_id, key), or ("digest", address, date)


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
    planned: list[Planned] = []
    for item in live:
        for task in item.get("tasks", ()):
            if task.get("state") not in CLOSED_TASK_STATES:
                planned.extend(_levels(item, task, now, rules, cal, directory))
    new_state: dict[str, Any] = {"digest": dict(state.get("digest", {})),
                                 "owner_digest": dict(state.get("owner_digest", {}))}
    cache: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}

    def row_of(item: Mapping[str, Any], task: Mapping[str, Any]) -> tuple[dict[str, Any], float]:
        ref = (str(item["id"]), str(task["id"]))
        if ref not in cache:
            cache[ref] = _row(item, task, now, cal)
        return cache[ref]

    if _may_digest(rules.digest, now, cal):
        planned.extend(_initiator_digests(live, now, rules.digest, cal, directory,
                                          new_state["digest"], row_of))
    if _may_digest(rules.owner_digest, now, cal):
        planned.extend(_owner_digests(live, now, rules.owner_digest, cal, directory,
                                      new_state["owner_digest"], row_of))
    return planned, new_state


# --------------------------------------------------------------------------------------------
# Reminders and escalations


def _levels(item: Mapping[str, Any], task: Mapping[str, Any], now: datetime, rules: ScheduleRules,
            cal: WorkCalendar, directory: Mapping[str, Person]) -> Iterator[Planned]:
    emergency = item.get("kind") == "emergency"
    if not (emergency or cal.allowed(now)):
        return  # deferred, not dropped: due again at the next allowed tick
    sent = task.get("sent") or {}
    deadline = _parse(task["deadline"], cal) if task.get("deadline") else None
    for level in rules.levels:
        if level.applies_to != ("emergency" if emergency else "task"):
            continue
        due = _due(level, item, task, deadline, now, cal, sent)
        if due is not None and now >= due[0]:
            yield _level_notice(level, due[2], item, task, now, due[0], due[1], rules, cal,
                                directory)


def _due(level: Level, item: Mapping[str, Any], task: Mapping[str, Any], deadline: datetime | None,
         now: datetime, cal: WorkCalendar, sent: Mapping[str, Any]
         ) -> tuple[datetime, datetime, str] | None:
    """(due moment, the moment its clock started, record key), or None when not applicable or
    already sent. Cheap tests come first: 20,000 tasks are checked on every tick."""
    when, threshold = level.when, level.threshold
    if when in ("unconfirmed_hours", "emergency_unconfirmed_minutes"):
        key = f"{level.key}@r{task.get('round', 1)}"
        if task.get("state") != UNCONFIRMED or key in sent:
            return None
        since = _parse(task.get("assigned_at") or task.get("updated_at") or item["created_at"], cal)
        if when == "emergency_unconfirmed_minutes":
            return since + timedelta(minutes=threshold), since, key
        if now < since + timedelta(hours=threshold):  # working time is never shorter than wall time
            return None
        return cal.add_working_hours(since, threshold), since, key
    if when == "emergency_update_hours":
        if task.get("state") == UNCONFIRMED:
            return None
        stamps = [s for s in (task.get("updated_at"), task.get("confirmed_at")) if s]
        last = max((_parse(s, cal) for s in stamps), default=_parse(item["created_at"], cal))
        period = timedelta(hours=threshold)
        k = max(1, math.floor((now - last) / period))
        key = f"{level.key}@{last.isoformat()}#{k}"
        return None if key in sent else (last + k * period, last, key)
    if deadline is None:
        return None
    key = f"{level.key}@{task['deadline']}"
    if key in sent:
        return None
    if when == "before_deadline_hours":
        below = level.progress_below
        if now >= deadline or (below is not None and int(task.get("progress") or 0) >= below):
            return None
        # k working days always fit in 2k + 14 calendar days, even across the Golden Week
        if now < deadline - timedelta(days=2 * math.ceil(threshold / cal.day_hours) + 14):
            return None
        return cal.add_working_hours(deadline, -threshold), deadline, key
    if when == "overdue_working_days":
        if now < deadline + timedelta(hours=threshold * cal.day_hours):
            return None
        return cal.add_working_hours(deadline, threshold * cal.day_hours), deadline, key
    return deadline, deadline, key  # overdue, emergency_past_eta


def _level_notice(level: Level, key: str, item: Mapping[str, Any], task: Mapping[str, Any],
                  now: datetime, due_at: datetime, since: datetime, rules: ScheduleRules,
                  cal: WorkCalendar, directory: Mapping[str, Person]) -> Planned:
    owner = directory.get(task["owner"])

    def address(role: str) -> str:
        if role == "owner":
            return str(task["owner"])
        if role == "initiator":
            return str(item["initiator"])
        if role == "manager":
            return owner.manager if owner else ""
        return rules.emergency_contact

    role, to, missing = level.to, address(level.to), ""
    if not to:  # no manager on file, no emergency contact: the initiator hears instead
        role, to, missing = "initiator", str(item["initiator"]), level.to
    cc = tuple(dict.fromkeys(a for a in map(address, level.cc) if a and a != to))
    deadline = task.get("deadline")
    overdue_days = (cal.working_days_between(_parse(deadline, cal), now)
                    if deadline and now > _parse(deadline, cal) else 0)
    root = item.get("root_message_id")
    context = {
        "item": item, "task": task, "level": key, "rule": level.key, "reason": level.when,
        "threshold": int(level.threshold) if level.threshold.is_integer() else level.threshold,
        "due_at": due_at.isoformat(), "since": since.isoformat(), "recipient_role": role,
        "missing_role": missing, "owner": _person(directory, task["owner"]),
        "overdue_days": overdue_days, "progress_below": level.progress_below,
        "emergency": level.applies_to == "emergency",
    }
    notice = Notice(template=level.template, to=(to,), cc=cc,
                    language=str(item.get("language", "zh")), context=context,
                    item_id=item["id"], task_id=task["id"], in_reply_to=root,
                    references=(root,) if root else ())
    return Planned(notice, (str(item["id"]), str(task["id"]), key))


# --------------------------------------------------------------------------------------------
# Digests


def _may_digest(cadence: Cadence, now: datetime, cal: WorkCalendar) -> bool:
    return cadence.every != "off" and cal.allowed(now)


def _slot_passed(cadence: Cadence, done: str | None, now: datetime, cal: WorkCalendar) -> bool:
    """Has the next digest slot after the last one (`done`, a date) come?"""
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
    return now >= cal.at(slot, cadence.at)


def _initiator_digests(items: Sequence[Mapping[str, Any]], now: datetime, cadence: Cadence,
                       cal: WorkCalendar, directory: Mapping[str, Person],
                       memory: dict[str, Any], row_of: RowOf) -> Iterator[Planned]:
    by_initiator: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in items:
        by_initiator[str(item["initiator"])].append(item)
    for address, mine in by_initiator.items():
        entry = memory.get(address, {})
        if not _slot_passed(cadence, entry.get("done"), now, cal):
            continue
        old_snap = entry.get("snap")
        snap: dict[str, str] = {}
        sections: dict[str, list[tuple[dict[str, Any], float]]] = {
            k: [] for k in ("action", "overdue", "changed", "rest")}
        projects = []
        for item in mine:
            rows = []
            for task in item.get("tasks", ()):
                shared, stamp = row_of(item, task)
                ref = f"{item['id']}/{task['id']}"
                snap[ref] = _snapshot(task)
                row = {**shared, "changes": _changes(old_snap, ref, snap[ref])}
                section = ("action" if row["action"] else "overdue" if "overdue" in row["flags"]
                           else "changed" if row["changes"] else "rest")
                sections[section].append((row, stamp))
                rows.append(row)
            closable = bool(rows) and all(r["state"] in CLOSED_TASK_STATES for r in rows)
            projects.append({"id": item["id"], "title": item.get("title", ""),
                             "kind": item.get("kind", "task"), "total": len(rows),
                             "closable": closable,
                             **{f: sum(f in r["flags"] for r in rows)
                                for f in ("overdue", "unconfirmed", "blocked")}})
        counts = {"action": len(sections["action"]) + sum(p["closable"] for p in projects),
                  "changed": len(sections["changed"]),
                  "total": sum(p["total"] for p in projects),
                  **{f: sum(p[f] for p in projects) for f in ("overdue", "unconfirmed",
                                                             "blocked")}}
        memory[address] = {**entry, "done": now.date().isoformat(), "snap": snap}
        if not (counts["action"] or counts["overdue"] or counts["unconfirmed"]
                or counts["blocked"] or counts["changed"]):
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
                             context=context), ("digest", address, now.date().isoformat()))


def _owner_digests(items: Sequence[Mapping[str, Any]], now: datetime, cadence: Cadence,
                   cal: WorkCalendar, directory: Mapping[str, Person],
                   memory: dict[str, Any], row_of: RowOf) -> Iterator[Planned]:
    by_owner: dict[str, list[tuple[Mapping[str, Any], Mapping[str, Any]]]] = defaultdict(list)
    for item in items:
        for task in item.get("tasks", ()):
            if task.get("state") not in CLOSED_TASK_STATES:
                by_owner[str(task["owner"])].append((item, task))
    for address, pairs in by_owner.items():
        entry = memory.get(address, {})
        if not _slot_passed(cadence, entry.get("done"), now, cal):
            continue
        memory[address] = {**entry, "done": now.date().isoformat()}
        rows = _soonest([row_of(item, task) for item, task in pairs])
        counts = {"total": len(rows), **{f: sum(f in r["flags"] for r in rows)
                                         for f in ("overdue", "unconfirmed")}}
        context = {"recipient": _person(directory, address), "rows": rows, "counts": counts}
        yield Planned(Notice(template="owner_digest", to=(address,),
                             language=_language([i for i, _ in pairs]), context=context),
                      ("owner_digest", address, now.date().isoformat()))


def _row(item: Mapping[str, Any], task: Mapping[str, Any], now: datetime,
         cal: WorkCalendar) -> tuple[dict[str, Any], float]:
    """A digest row, and its deadline as a timestamp for sorting (infinity without one)."""
    state = str(task.get("state", ""))
    deadline = task.get("deadline")
    due = _parse(deadline, cal) if deadline else None
    flags = []
    if due is not None and state not in CLOSED_TASK_STATES and now > due:
        flags.append("overdue")
    if state == UNCONFIRMED:
        flags.append("unconfirmed")
    if state == TaskState.BLOCKED.value:
        flags.append("blocked")
    return {
        "item_id": item["id"], "item_title": item.get("title", ""),
        "item_kind": item.get("kind", "task"),
        "initiator_name": item.get("initiator_name") or item.get("initiator", ""),
        "task_id": task["id"], "name": task.get("name", ""), "owner": task.get("owner", ""),
        "owner_name": task.get("owner_name") or task.get("owner", ""),
        "owner_department": task.get("owner_department", ""), "deadline": deadline,
        "state": state, "progress": int(task.get("progress") or 0),
        "updated_at": task.get("updated_at"), "flags": flags, "action": _ACTION.get(state, ""),
        "changes": [],
    }, (due.timestamp() if due is not None else math.inf)


def _snapshot(task: Mapping[str, Any]) -> str:
    g = task.get
    return f"{g('state') or ''}|{g('progress') or ''}|{g('deadline') or ''}|{g('owner') or ''}"


def _changes(old_snap: Mapping[str, str] | None, ref: str, snap: str) -> list[dict[str, Any]]:
    if old_snap is None:  # the first digest: everything is new, nothing "changed"
        return []
    if ref not in old_snap:
        return [{"field": "new", "old": "", "new": ""}]
    if old_snap[ref] == snap:
        return []
    old, new = old_snap[ref].split("|"), snap.split("|")
    return [{"field": f, "old": o, "new": n}
            for f, o, n in zip(("state", "progress", "deadline", "owner"), old, new, strict=False)
            if o != n]


def _soonest(pairs: list[tuple[dict[str, Any], float]]) -> list[dict[str, Any]]:
    """The rows, soonest deadline first (none last), then by item and task."""
    pairs = sorted(pairs, key=lambda p: (p[1], str(p[0]["item_id"]), str(p[0]["task_id"])))
    return [row for row, _ in pairs]


def _language(items: Sequence[Mapping[str, Any]]) -> str:
    return Counter(str(i.get("language", "zh")) for i in items).most_common(1)[0][0]


def _person(directory: Mapping[str, Person], address: str) -> dict[str, str]:
    person = directory.get(address)
    return {"address": address, "name": person.name if person else address,
            "department": person.department if person else ""}


def _parse(value: Any, cal: WorkCalendar) -> datetime:
    """A stored ISO time in the calendar's zone; a bare date means the end of that working day."""
    if isinstance(value, datetime):
        return cal.local(value)
    text = str(value)
    if len(text) == 10:
        return cal.at(date.fromisoformat(text), cal.workday_end)
    return cal.local(datetime.fromisoformat(text))
