"""Reminders and escalations: which levels fall due for a task, and the emails that carry them
(one per person and run: `deliver` folds levels into digests and bundles the rest). The item's
initiator never shares an email with others: hers carries her buttons (转派, 改期, 同意延期),
signed for her alone.

Pure, part of the planner (see planner.py for the whole contract).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from maild.core import looplevels
from maild.core.initiatorbuttons import task_buttons
from maild.core.model import Notice, Person
from maild.core.schedrules import UNCONFIRMED, Level, Memo, Planned, ScheduleRules, language_of

# Reminders and escalations


@dataclass(frozen=True, slots=True)
class Due:
    """One level that fell due for one task."""

    level: Level
    key: str
    item: Mapping[str, Any]
    task: Mapping[str, Any]
    due_at: datetime
    since: datetime
    deadline: datetime | None
    record: tuple[str, str, str]  # (item id, task id, key): what `sent` gets


class Horizon:
    """The soonest moment after `now` at which something may fall due, if no item changes."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.soonest: datetime | None = None

    def add(self, moment: datetime) -> None:
        if moment > self.now and (self.soonest is None or moment < self.soonest):
            self.soonest = moment


def task_levels(item: Mapping[str, Any], task: Mapping[str, Any], levels: Sequence[Level],
            now: datetime, memo: Memo, horizon: Horizon, dues: list[Due]) -> None:
    """The task's levels that are due now go to `dues`; the others' due moments to `horizon`."""
    sent = task.get("sent") or {}
    deadline = memo.parse(task["deadline"]) if task.get("deadline") else None
    for level in levels:
        due = _due(level, item, task, deadline, now, sent, memo)
        if due is None:
            continue
        moment, since, key = due
        if now >= moment:
            dues.append(Due(level, key, item, task, moment, since, deadline,
                             (str(item["id"]), str(task["id"]), key)))
            if level.when == "emergency_update_hours":  # it repeats: the next period's
                horizon.add(moment + timedelta(hours=level.threshold))
        else:
            horizon.add(moment)


def _due(level: Level, item: Mapping[str, Any], task: Mapping[str, Any], deadline: datetime | None,
         now: datetime, sent: Mapping[str, Any], memo: Memo
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


Folded = dict[tuple[str, str], dict[tuple[str, str], list[tuple[Due, dict[str, Any]]]]]


def deliver(dues: Sequence[Due], rules: ScheduleRules, memo: Memo, digest_now: set[str],
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
    bundles: dict[str, list[tuple[Due, str, str]]] = {}
    for due, people in zip(dues, reach, strict=True):
        alone = []
        for person in people:
            if due.level.applies_to == "emergency" or load[person[0]] == 1:
                alone.append(person)
            else:
                bundles.setdefault(person[0], []).append((due, person[1], person[2]))
        for group in _apart_from_initiator(alone, str(due.item["initiator"])):
            planned.append(Planned(_single(due, group, memo), (record_of(due),)))
    briefs: dict[str, dict[str, Any]] = {}
    for address, entries in bundles.items():
        planned.append(_bundle(address, entries, memo, briefs))
    return planned, folded


def _apart_from_initiator(people: list[tuple[str, str, str]], initiator: str
                          ) -> list[list[tuple[str, str, str]]]:
    """Who shares a single email: everyone as declared (to first, then cc), but the item's
    initiator hears in an email of their own, whose buttons are signed for them (in a shared
    email they would be someone else's to press, or theirs someone else's)."""
    if len(people) < 2 or all(address != initiator for address, _r, _m in people):
        return [people] if people else []
    hers = [p for p in people if p[0] == initiator]
    rest = [p for p in people if p[0] != initiator]
    return [hers, rest] if people[0][0] == initiator else [rest, hers]  # the declared `to` first


def _single(due: Due, people: list[tuple[str, str, str]], memo: Memo) -> Notice:
    """The email of one level to `people` (to, then cc). The initiator's carries their buttons
    for the task (`manage`: 转派 / 改期 / 同意延期, as its state needs)."""
    (to, role, missing), cc = people[0], tuple(address for address, _r, _m in people[1:])
    item, task = due.item, due.task
    root = item.get("root_message_id")
    manage = (task_buttons(task, _overdue(due.deadline, memo))
              if to == item["initiator"] and to != task["owner"] and not cc else ())
    return Notice(
        template=due.level.template, to=(to,), cc=cc,
        language=str(item.get("language", "zh")),
        context={**_level_facts(due, memo, role, missing), "item": item,
                 "task": task, "owner": memo.person(task["owner"]),
                 "overdue_days": memo.overdue_days(due.deadline),
                 "emergency": due.level.applies_to == "emergency", "manage": manage,
                 **looplevels.level_facts(item, task)},
        item_id=item["id"], task_id=task["id"], in_reply_to=root,
        references=(root,) if root else ())


def _overdue(deadline: datetime | None, memo: Memo) -> bool:
    """Past its deadline, or at it: the moment the `overdue` level falls due."""
    return deadline is not None and memo.now >= deadline


def _recipients(due: Due, rules: ScheduleRules, directory: Mapping[str, Person]
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


def _address(role: str, due: Due, rules: ScheduleRules, directory: Mapping[str, Person]) -> str:
    if role == "owner":
        return str(due.task["owner"])
    if role == "initiator":
        return str(due.item["initiator"])
    if role == "manager":
        owner = directory.get(due.task["owner"])
        return owner.manager if owner else ""
    return rules.emergency_contact


def _level_facts(due: Due, memo: Memo, role: str, missing: str) -> dict[str, Any]:
    """What a level says to one of the people who hear of it."""
    level = due.level
    return {
        "level": due.key, "rule": level.key, "reason": level.when,
        "threshold": int(level.threshold) if level.threshold.is_integer() else level.threshold,
        "due_at": memo.iso(due.due_at), "since": memo.iso(due.since),
        "progress_below": level.progress_below, "recipient_role": role, "missing_role": missing,
    }


def _bundle(address: str, entries: list[tuple[Due, str, str]], memo: Memo,
            briefs: dict[str, dict[str, Any]]) -> Planned:
    """One email to `address` listing every level due for them, one entry per task (with each of
    its levels' sentences): their own tasks first, then the ones they follow, each group soonest
    deadline first. `briefs` (item id → the few item facts an entry shows) is shared by all."""
    by_task: dict[tuple[str, str], list[tuple[Due, str, str]]] = {}
    for entry in entries:
        by_task.setdefault(record_of(entry[0])[:2], []).append(entry)
    keyed = []
    for levels in by_task.values():
        first = levels[0][0]
        item, task, deadline = first.item, first.task, first.deadline
        mine = any(role == "owner" for _d, role, _m in levels)
        actions = task_actions(task, mine)
        if not mine and address == item["initiator"]:  # theirs to act on: 转派, 改期 …
            actions = (*task_buttons(task, _overdue(deadline, memo)), *actions)
        brief = briefs.get(item["id"])
        if brief is None:
            brief = briefs[item["id"]] = {
                "id": item["id"], "title": item.get("title", ""), "kind": item.get("kind", "task"),
                "initiator_name": item.get("initiator_name") or item["initiator"]}
        row = {"item": brief, "task": task, "ref": f"{item['id']}/{task['id']}",
               "owner": memo.person(task["owner"]),
               "recipient_role": "owner" if mine else levels[0][1],
               "actions": actions,
               "overdue_days": memo.overdue_days(deadline),
               "levels": tuple(_level_facts(due, memo, role, missing)
                               for due, role, missing in levels),
               **looplevels.level_facts(item, task)}
        keyed.append(((not mine, deadline or NO_DEADLINE, str(item["id"]), str(task["id"])), row))
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
                    language=language_of(items), context=context,
                    item_id=one["id"] if one else None,
                    task_id=rows[0]["task"]["id"] if one and len(rows) == 1 else None,
                    in_reply_to=root, references=(root,) if root else ())
    return Planned(notice, tuple(dict.fromkeys(record_of(due) for due, _r, _m in entries)))


NO_DEADLINE = datetime.max.replace(tzinfo=UTC)  # sorts after every deadline


def task_actions(task: Mapping[str, Any], mine: bool) -> tuple[str, ...]:
    """The buttons a listed task offers: its owner confirms or declines it, or reports on it;
    the others who hear of it ask for its status."""
    if not mine:
        return ("status",)
    return ("confirm", "decline") if task.get("state") == UNCONFIRMED else ("progress", "done")


def actionable(context: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The tasks an email offers buttons for, once each, with `ref` ("ITEM/TASK") and `actions`:
    the entries of a combined email, the digest rows that carry levels or the initiator's
    buttons, and whole items (`item_buttons`, `ref` "ITEM": 结项, a receipt's 撤销). The service
    issues each its own reply addresses. A task listed twice (in a merged digest, among the reader's own
    tasks and in an item they started) is yielded once, with the actions of both rows."""
    rows = [*context.get("entries", ()), *context.get("rows", ()),
            *(context.get("own") or {}).get("rows", ()),
            *(row for section in context.get("sections", ()) for row in section["rows"]),
            *context.get("item_buttons", ())]
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


def record_of(due: Due) -> tuple[str, str | None, str]:
    return due.record
