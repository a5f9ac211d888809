"""Closing the loop in the workflow: work handed in and accepted or returned, recurring tasks
stopped or created, tasks made to wait on others. The workflow calls in at a few points:

* `problems(groups)` and `prepare(item, ctx)` at intake: what must be fixed first (a rule that
  cannot be read, a loop), then the item's acceptance choice, its series (重复), the dependencies
  its tasks state, and those their notes only suggest (for the receipt to ask);
* `hand_in(...)` before an owner's 完成 (or 100 %, or 状态：已完成) is applied: where the item
  waits for acceptance, the task is handed in instead and the initiator asked to review it;
* `handle(...)` for the initiator's commands (`COMMANDS`), and `manager_verdict` to read their
  plain 确认 / 拒绝 on handed-in work as acceptance / return;
* `follow_up(before, outcome, …)` after every reply: owners of tasks that stopped waiting are
  told, finish times stamped, a series confirmed or moved, the retrospective given its counts;
* `create_occurrences(item, now, cal)` from the schedule run.

Pure, like the workflow: items in, `Outcome`s and notices out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from maild.core import acceptance, dependencies, recurrence, series
from maild.core.model import FieldError, Inbound, Notice, TaskState

# The step helpers workflow imports too (duplicates): closing the loop is more workflow steps.
from maild.core.outcomes import (
    RETRO_FORM,
    Link,
    Outcome,
    WorkflowContext,
    actor_of,
    add_audit,
    all_done,
    ask_back,
    notice_for,
    refuse,
    task_by_id,
    touch,
)
from maild.core.trust import may_manage
from maild.core.workcal import WorkCalendar

if TYPE_CHECKING:
    from maild.core.classify import Reply

UPCOMING = 3  # the next occurrences the receipt shows


# --------------------------------------------------------------------------------------------
# New items


def problems(groups: Sequence[Mapping[str, Any]]) -> list[FieldError]:
    """What closes the loop in a new form that must be fixed first: a 重复 rule that cannot be
    read or is not on a single daily task, a dependency on a task that is not there, on the task
    itself, or in a loop. `groups` are the items a form lays out (`taskplan.Plan.groups`)."""
    errors: list[FieldError] = []
    for group in groups:
        fields, tasks = group.get("fields") or {}, group.get("tasks") or ()
        repeat = str(fields.get("repeat", "")).strip()
        if repeat and recurrence.parse_rule(repeat) is None:
            errors.append(FieldError("repeat", "repeat_unparseable", repeat))
        elif repeat and (len(tasks) != 1 or group.get("kind") == "emergency"):
            errors.append(FieldError("repeat", "repeat_one_task", repeat))
        stated = [{**t, "depends_on": _stated(t)} for t in tasks]
        for number, task in enumerate(stated, start=1):
            if not task["depends_on"]:
                continue
            problem, detail = dependencies.check_add(
                [{**t, "depends_on": []} if t is task else t for t in stated], task["id"],
                task["depends_on"])
            if problem:
                errors.append(FieldError("note", f"dependency_{problem}",
                                         " → ".join(detail) if problem == "cycle"
                                         else "、".join(detail), number))
                break  # one loop is one error, not one per task in it
    return errors


def _stated(task: Mapping[str, Any]) -> list[str]:
    # A 依赖 column holds the IDs or row numbers alone ("T-1", "1、2"); a note must say it
    # outright ("依赖 T-1").
    return list(dict.fromkeys([*dependencies.column_ids(str(task.get("depends") or "")),
                               *dependencies.explicit(str(task.get("note") or ""))]))


def prepare(item: dict[str, Any], ctx: WorkflowContext) -> None:
    """Read what closes the loop from a new item's fields and task notes, in place: whether it
    waits for acceptance (`验收`), its series (`重复`, a daily task only), the dependencies its
    notes state and the ones they suggest. `problems` has refused what cannot be applied."""
    fields = item.get("fields") or {}
    # Decided once, at intake: a later change of the default leaves open items as they were.
    flag = acceptance.read_flag(str(fields.get("acceptance", "")))
    item["acceptance"] = acceptance.required(
        {"kind": item.get("kind"), "acceptance": flag}, ctx.acceptance)
    repeat = str(fields.get("repeat", "")).strip()
    rule = recurrence.parse_rule(repeat) if repeat else None
    if rule is not None and len(item["tasks"]) == 1 and ctx.calendar is not None:
        series.start_series(item, rule, repeat, ctx.calendar)
    for task in item["tasks"]:
        if stated := _stated(task):
            task["depends_on"] = stated
    suggested = dependencies.suggest(item["tasks"])
    if suggested:
        item["suggested_dependencies"] = [s.to_dict() for s in suggested]


def receipt_facts(item: Mapping[str, Any], cal: WorkCalendar | None) -> dict[str, Any]:
    """What the receipt adds: the series' next occurrences (and the days that moved), the
    dependencies stated and those to confirm, whether done work waits for acceptance."""
    facts: dict[str, Any] = {"series": None}
    stored = item.get("series")
    if stored and cal is not None:
        rule = recurrence.Rule.from_dict(stored["rule"])
        last = date.fromisoformat(stored["last_due"])
        facts["series"] = {"text": stored["text"], "upcoming": [
            {"due": due.isoformat(), "nominal": nominal.isoformat(), "moved": due != nominal}
            for nominal, due in recurrence.upcoming(rule, last, cal, UPCOMING)]}
    tasks = dependencies.by_id(item)
    facts["waits"] = [{"task": t["id"], "on": [tasks[i]["id"] + " " + tasks[i].get("name", "")
                                                for i in t["depends_on"] if i in tasks]}
                      for t in item.get("tasks", ()) if t.get("depends_on")]
    facts["suggested"] = [
        {**s, "name": tasks[s["task"]].get("name", ""), "on_name": tasks[s["on"]].get("name", ""),
         "body": f"依赖 {s['task']} {s['on']}" if item.get("language") == "zh"
         else f"depends: {s['task']} on {s['on']}"}
        for s in item.get("suggested_dependencies", ()) if s["task"] in tasks and s["on"] in tasks]
    facts["acceptance"] = item.get("acceptance")
    return facts


# --------------------------------------------------------------------------------------------
# Replies


def manager_verdict(task: Mapping[str, Any] | None, name: str) -> str | None:
    """An initiator's plain word on handed-in work: 确认 / OK accepts it, 拒绝 returns it."""
    if task is None or acceptance.pending(task) is None:
        return None
    return {"confirm": "approve", "decline": "return"}.get(name)


def hand_in(msg: Inbound, item: dict[str, Any], task: dict[str, Any], name: str,
            args: Mapping[str, Any], language: str, ctx: WorkflowContext, now: datetime,
            link: Link) -> Outcome | None:
    """The owner's 完成 where the item waits for acceptance: the task is handed in and the
    initiator gets the deliverable to review. None when this is not a hand-in."""

    finishing = (name == "done" or (name == "progress" and int(args.get("percent", 0)) >= 100)
                 or (name == "status" and args.get("state") == TaskState.DONE.value))
    if not finishing or not acceptance.required(item, ctx.acceptance):
        return None
    sender = msg.from_addr
    if task["state"] in (acceptance.SUBMITTED, acceptance.DONE):  # handed in already
        return Outcome("processed", f"{name} {task['id']} (no change)", notices=(
            notice_for(msg, item, "command_ack", sender, language, ctx,
                    {"task": task, "command": {"name": "hand_in", **args}, "changed": False,
                     "actor": actor_of(ctx, sender)}, task["id"]),), links=link)
    note = str(args.get("note", ""))
    submission = acceptance.submit(task, now, sender, note, msg.attachments, msg.message_id)
    task.pop("unreachable", None)
    task.pop("requested_deadline", None)  # the work is in: a pending delay request is moot
    touch(item, task, now)
    add_audit(item, now, sender, "hand_in", msg, task["id"], note=note,
              attachments=[a["filename"] for a in submission["attachments"]])
    previous = [s for s in task["submissions"][:-1] if s.get("verdict") == "returned"]
    notices = (
        notice_for(msg, item, "review_request", item["initiator"], language, ctx,
                {"task": task, "submission": submission, "returns": previous,
                 "actor": actor_of(ctx, sender), "forward_attachments": True}, task["id"]),
        notice_for(msg, item, "command_ack", sender, language, ctx,
                {"task": task, "command": {"name": "hand_in", "note": note}, "changed": True,
                 "actor": actor_of(ctx, sender)}, task["id"]),
    )
    return Outcome("processed", f"hand in {task['id']}", items=(item,), notices=notices,
                   links=link, summary={"item": item["id"], "task": task["id"],
                                        "command": "hand_in"})


def handle(msg: Inbound, decision: Reply, item: dict[str, Any], name: str,
           args: Mapping[str, Any], language: str, ctx: WorkflowContext, now: datetime,
           link: Link) -> Outcome:
    """The initiator's (or an admin's) approve, return, stop, depend and undepend."""

    sender = msg.from_addr
    if not may_manage(item, sender, ctx):
        return refuse(msg, item, sender, language, ctx, name, [item["initiator"]], link)
    if name == "stop":
        return _stop(msg, item, language, ctx, now, link)
    task_id = args.get("task") or decision.task_id
    if name in ("approve", "return") and not task_id:
        pending = [t for t in item["tasks"] if acceptance.pending(t)]
        task_id = pending[0]["id"] if len(pending) == 1 else None
    task = task_by_id(item, task_id)
    if task is None:
        return ask_back(msg, item, sender, language, ctx, "which_task", link)
    if name in ("approve", "return"):
        return _verdict(msg, item, task, name, args, language, ctx, now, link)
    return _depend(msg, item, task, name, list(args.get("on") or ()), language, ctx, now, link)


def _verdict(msg: Inbound, item: dict[str, Any], task: dict[str, Any], name: str,
             args: Mapping[str, Any], language: str, ctx: WorkflowContext, now: datetime,
             link: Link) -> Outcome:

    sender = msg.from_addr
    text = str(args.get("note") or args.get("reason") or "").strip()
    if acceptance.pending(task) is None:
        return ask_back(msg, item, sender, language, ctx, "nothing_to_review", link, task=task,
                    value=task["id"])
    if name == "return" and not text:
        return ask_back(msg, item, sender, language, ctx, "return_reason", link, task=task,
                    value=task["id"])
    if name == "approve":
        acceptance.approve(task, now, sender, text)
    else:
        acceptance.send_back(task, now, sender, text)
    touch(item, task, now)
    add_audit(item, now, sender, name, msg, task["id"], **({"reason": text} if text else {}))
    actor = actor_of(ctx, sender)
    notices = [
        notice_for(msg, item, "accepted" if name == "approve" else "returned", task["owner"],
                language, ctx, {"task": task, "actor": actor, "reason": text}, task["id"]),
        notice_for(msg, item, "command_ack", sender, language, ctx,
                {"task": task, "command": {"name": name, "reason": text}, "changed": True,
                 "actor": actor}, task["id"]),
    ]
    notices += _retrospective_if_done(msg, item, language, ctx, now)
    return Outcome("processed", f"{name} {task['id']}", items=(item,), notices=tuple(notices),
                   links=link, summary={"item": item["id"], "task": task["id"], "command": name})


def _stop(msg: Inbound, item: dict[str, Any], language: str, ctx: WorkflowContext,
          now: datetime, link: Link) -> Outcome:

    sender = msg.from_addr
    if not series.stop(item, now, sender):
        return ask_back(msg, item, sender, language, ctx, "no_series", link)
    touch(item, None, now)
    add_audit(item, now, sender, "stop", msg, None)
    stopped = item["series"]
    ack = {"command": {"name": "stop", "repeat": stopped["text"]}, "changed": True,
           "actor": actor_of(ctx, sender)}
    notices = [notice_for(msg, item, "command_ack", address, language, ctx, ack)
               for address in dict.fromkeys((sender, stopped["owner"]))]
    notices += _retrospective_if_done(msg, item, language, ctx, now)
    return Outcome("processed", "stop series", items=(item,), notices=tuple(notices),
                   links=link, summary={"item": item["id"], "command": "stop"})


def _depend(msg: Inbound, item: dict[str, Any], task: dict[str, Any], name: str,
            on: list[str], language: str, ctx: WorkflowContext, now: datetime,
            link: Link) -> Outcome:

    sender = msg.from_addr
    on = [i.upper() for i in on]
    if name == "depend":
        problem, detail = dependencies.check_add(item["tasks"], task["id"], on)
        if problem:
            return ask_back(msg, item, sender, language, ctx, f"dependency_{problem}", link,
                        task=task, value=" → ".join(detail) if problem == "cycle"
                        else "、".join(detail))
        task["depends_on"] = list(dict.fromkeys([*(task.get("depends_on") or ()), *on]))
    else:
        kept = [i for i in task.get("depends_on") or () if on and i not in on]
        if kept:
            task["depends_on"] = kept
        else:
            task.pop("depends_on", None)
    item["suggested_dependencies"] = [
        s for s in item.get("suggested_dependencies", ()) if s["task"] != task["id"]]
    if not item["suggested_dependencies"]:
        item.pop("suggested_dependencies")
    touch(item, task, now)
    add_audit(item, now, sender, name, msg, task["id"], on=on)
    actor = actor_of(ctx, sender)
    waits = [dependencies.brief(t) for t in dependencies.waiting_on(item, task)]
    command = {"name": name, "on": "、".join(on) if language == "zh" else ", ".join(on)}
    notices = [notice_for(msg, item, "command_ack", sender, language, ctx,
                       {"task": task, "command": command, "changed": True, "actor": actor},
                       task["id"])]
    if name == "depend" and waits and task["owner"] != sender:
        notices.append(notice_for(msg, item, "command_ack", task["owner"], language, ctx,
                               {"task": task, "command": command, "changed": True,
                                "actor": actor, "waits_on": waits}, task["id"]))
    return Outcome("processed", f"{name} {task['id']}", items=(item,), notices=tuple(notices),
                   links=link, summary={"item": item["id"], "task": task["id"], "command": name})


def _retrospective_if_done(msg: Inbound, item: dict[str, Any], language: str,
                           ctx: WorkflowContext, now: datetime) -> list[Notice]:

    if not all_done(item) or item.get("retrospective_requested_at"):
        return []
    item["retrospective_requested_at"] = now.isoformat()
    return [notice_for(msg, item, "retrospective_request", item["initiator"], language, ctx,
                    {"retro_form": RETRO_FORM.get(language, RETRO_FORM["en"])}, None)]


def follow_up(before: Mapping[str, Any] | None, outcome: Outcome, msg: Inbound,
              ctx: WorkflowContext, now: datetime) -> Outcome:
    """What every change to an item brings with it: a finish time on tasks that became done, the
    series confirmed (or moved, while unconfirmed) by its owner, the owners of tasks that no
    longer wait told so, and the retrospective request given the acceptance counts."""

    if before is None or not outcome.items:
        return outcome
    notices = list(outcome.notices)
    for item in outcome.items:
        if item.get("id") != before.get("id"):
            continue
        old = dependencies.by_id(before)
        for task in item.get("tasks", ()):
            was = old.get(task["id"], {})
            if task.get("state") == acceptance.DONE and was.get("state") != acceptance.DONE:
                task.setdefault("done_at", now.isoformat())
            if was and task.get("owner") != was.get("owner"):
                series.reassigned(item, task)
            if task.get("confirmed_at") and not was.get("confirmed_at") \
                    and task.get("confirmed_by") == task.get("owner"):
                series.confirm(item, task, now)
        language = str(item.get("language", "zh"))
        for task in dependencies.newly_unblocked(before, item):
            now_tasks = dependencies.by_id(item)
            done = [dependencies.brief(now_tasks[i]) for i in old[task["id"]]["depends_on"]
                    if i in now_tasks and now_tasks[i].get("state") == acceptance.DONE]
            notices.append(notice_for(msg, item, "unblocked", task["owner"], language, ctx,
                                   {"task": task, "waited_on": done}, task["id"]))
        stats = acceptance.stats(item.get("tasks", ()),
                                 (item.get("series") or {}).get("history", ()))
        notices = [_with_stats(n, stats) if n.template == "retrospective_request"
                   and n.item_id == item["id"] else n for n in notices]
    return Outcome(outcome.disposition, outcome.reason, outcome.items, tuple(notices),
                   outcome.links, outcome.summary)


def _with_stats(notice: Notice, stats: Mapping[str, int]) -> Notice:
    if not stats["accepted"]:
        return notice
    return Notice(**{**notice.__dict__, "context": {**notice.context, "acceptance": dict(stats)}})


# --------------------------------------------------------------------------------------------
# The schedule run


def create_occurrences(item: Mapping[str, Any], now: datetime, cal: WorkCalendar
                       ) -> tuple[dict[str, Any], list[Notice]] | None:
    """The occurrences of `item`'s series due at `now`: the changed item and one email to the
    owner per new occurrence (a confirmation request while the series is unconfirmed). None
    when nothing is due. Commit both together: each occurrence is created once."""
    created = series.create_due(item, now, cal)
    if created is None:
        return None
    changed, new = created
    root = changed.get("root_message_id")
    refs = (root,) if root else ()
    notices = []
    for task in new:
        template = ("confirm_request" if task["state"] == TaskState.AWAITING_CONFIRMATION.value
                    else "occurrence")
        notices.append(Notice(template=template, to=(task["owner"],),
                              language=str(changed.get("language", "zh")),
                              context={"item": changed, "task": copy.deepcopy(task)},
                              item_id=changed["id"], task_id=task["id"], in_reply_to=root,
                              references=refs))
    changed.setdefault("audit", []).append({
        "at": now.isoformat(), "who": "maild", "action": "occurrence", "task": new[-1]["id"],
        "message_id": None, "detail": {"created": [t["id"] for t in new],
                                       "due": [t["occurrence"]["due"] for t in new]}})
    return changed, notices
