"""Digests: who gets one in a run, their rows and sections, and one digest per person.

Pure, part of the planner (see planner.py for the whole contract).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any

from maild.core import looplevels, series
from maild.core.initiatorbuttons import ITEM_CLOSE_ACTIONS, item_rows, task_buttons
from maild.core.levels import Due, Folded, Horizon, record_of, task_actions
from maild.core.model import Notice, Person
from maild.core.schedrules import (
    ACTION_OF_STATE,
    BLOCKED,
    CLOSED_TASK_STATES,
    NOT_OVERDUE,
    UNCONFIRMED,
    Cadence,
    Planned,
    RowKey,
    RowOf,
    language_of,
    person_of,
)
from maild.core.workcal import WorkCalendar

# --------------------------------------------------------------------------------------------
# Digests


def digest_now(items: Sequence[Mapping[str, Any]], name: str, cadence: Cadence,
                memory: Mapping[str, Any], now: datetime, cal: WorkCalendar) -> set[str]:
    """Who gets this digest in this run: its slot has come, and mail may go."""
    if cadence.every == "off" or not cal.allowed(now):
        return set()
    slots: dict[str | None, bool] = {}
    out = set()
    for address in digest_people(items, name):
        done = memory.get(address, {}).get("done")
        if done not in slots:
            slots[done] = slot_passed(cadence, done, now, cal)
        if slots[done]:
            out.add(address)
    return out


def digest_people(items: Sequence[Mapping[str, Any]], name: str) -> set[str]:
    if name == "digest":
        return {str(item["initiator"]) for item in items}
    return {str(task["owner"]) for item in items for task in item.get("tasks", ())
            if task.get("state") not in CLOSED_TASK_STATES}


def slot_passed(cadence: Cadence, done: str | None, now: datetime, cal: WorkCalendar) -> bool:
    """Has the next digest slot after the last one (`done`, a date) come?"""
    return now >= digest_slot(cadence, done, now, cal)


def digest_slot(cadence: Cadence, done: str | None, now: datetime, cal: WorkCalendar) -> datetime:
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


def digest_horizon(items: Sequence[Mapping[str, Any]], name: str, cadence: Cadence,
                    memory: Mapping[str, Any], now: datetime, cal: WorkCalendar,
                    horizon: Horizon) -> None:
    """The next slot of everyone who would get this digest (after this plan's memory)."""
    slots: dict[str | None, datetime] = {}
    for address in digest_people(items, name):
        done = memory.get(address, {}).get("done")
        if done not in slots:
            slots[done] = digest_slot(cadence, done, now, cal)
    for moment in slots.values():
        horizon.add(moment)


def initiator_digests(items: Sequence[Mapping[str, Any]], now: datetime, who: set[str],
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
                manage = (task_buttons(task, "overdue" in shared["flags"])
                          if task["owner"] != address else ())  # theirs: the owner's buttons
                if due:
                    row = _with_levels(row, ref, task, due, mine=False, manage=manage)
                elif manage:  # the initiator's buttons for it: 转派, 改期, 同意延期
                    row = {**row, "ref": ref, "actions": manage}
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
            "recipient": person_of(directory, address), "since": entry.get("sent_at"),
            "title": mine[0].get("title", "") if len(mine) == 1 else "", "n_items": len(mine),
            "counts": counts, "projects": projects,
            "sections": [{"key": k, "rows": _soonest(pairs)} for k, pairs in sections.items()
                         if pairs],
        }
        closable = [p["id"] for p in projects if p["closable"]]
        if closable:  # each with its own 结项 button
            context["item_buttons"] = item_rows(closable, ITEM_CLOSE_ACTIONS)
        yield Planned(Notice(template="digest", to=(address,), language=language_of(mine),
                             context=context),
                      (("digest", address, now.date().isoformat()), *_folded_records(levels)))


def owner_digests(items: Sequence[Mapping[str, Any]], now: datetime, who: set[str],
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
        context = {"recipient": person_of(directory, address), "rows": rows, "counts": counts}
        yield Planned(Notice(template="owner_digest", to=(address,),
                             language=language_of([i for i, _ in pairs]), context=context),
                      (("owner_digest", address, now.date().isoformat()),
                       *_folded_records(levels)))


def one_digest_each(digests: list[Planned], owned: list[Planned]) -> list[Planned]:
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
                 due: list[tuple[Due, dict[str, Any]]], mine: bool,
                 manage: tuple[str, ...] = ()) -> dict[str, Any]:
    """A digest row that also carries the levels due for its task (their sentences, and the
    buttons of a combined email's entry, after the initiator's `manage` ones); `ref` is
    "ITEM/TASK"."""
    return {**row, "levels": tuple([facts for _due, facts in due]),
            "overdue_days": due[0][1]["overdue_days"], "ref": ref,
            "actions": (*manage, *task_actions(task, mine)) if manage else task_actions(task, mine)}


def _folded_records(levels: Mapping[Any, list[tuple[Due, dict[str, Any]]]]
                    ) -> tuple[tuple[str, str | None, str], ...]:
    return tuple(record_of(due) for due_list in levels.values() for due, _facts in due_list)


def digest_row(item: Mapping[str, Any], task: Mapping[str, Any], now: datetime,
         parse: Callable[[Any], datetime]) -> tuple[dict[str, Any], RowKey]:
    """A digest row, and its sort key: its deadline as a timestamp (infinity without one), its
    item's and its own id (also the key of the levels folded into digests)."""
    state = str(task.get("state", ""))
    deadline = task.get("deadline")
    due = parse(deadline) if deadline else None
    flags = _FLAGS[(due is not None and state not in NOT_OVERDUE and now > due,
                    state == UNCONFIRMED, state == BLOCKED)]
    return {
        "item_id": item["id"], "item_title": item.get("title", ""),
        "item_kind": item.get("kind", "task"),
        "initiator_name": item.get("initiator_name") or item.get("initiator", ""),
        "task_id": task["id"], "name": task.get("name", ""), "owner": task.get("owner", ""),
        "owner_name": task.get("owner_name") or task.get("owner", ""),
        "owner_department": task.get("owner_department", ""), "deadline": deadline,
        "state": state, "progress": int(task.get("progress") or 0),
        "updated_at": task.get("updated_at"), "flags": flags, "action": ACTION_OF_STATE.get(state, ""),
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
