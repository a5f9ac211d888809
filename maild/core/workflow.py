"""State transitions of items and tasks, and who may make them; each returns the effects to carry out.

Pure: every function takes the current item (a dict, as stored), the decided email and `now`, and
returns an `Outcome` — the items to store, the notices to send, the message links to remember.
Nothing here reads the clock, the database or the network.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from maild.core import closeloop, delays
from maild.core.answers import help_reply
from maild.core.classify import Reply
from maild.core.dates import parse_deadline
from maild.core.loopcommands import COMMANDS as LOOP_COMMANDS
from maild.core.model import Command, Inbound, Notice, TaskState
from maild.core.outcomes import (
    OPEN_STATES,
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
    task_for,
    touch,
)
from maild.core.trust import managed_action, may_manage, may_own, token_problem, use_key

# --------------------------------------------------------------------------------------------
# Replies



def link_of(msg: Inbound, item: Mapping[str, Any], decision: Reply) -> Link:
    return ((msg.message_id, item["id"], decision.task_id),)


def apply_command(msg: Inbound, decision: Reply, item: dict[str, Any], command: Command,
                  ctx: WorkflowContext, now: datetime) -> Outcome:
    """One command of a reply on `item` (not modified: a changed copy is in the outcome)."""
    before, item = item, copy.deepcopy(item)
    language = item.get("language", decision.language)
    sender = msg.from_addr
    link = link_of(msg, item, decision)
    if command.name == "help":
        return Outcome("processed", "help", notices=help_reply(msg, language, ctx).notices,
                       links=link)
    if command.name == "show":
        return _show(msg, item, decision.task_id, language, ctx, link)
    reading = decision.token if decision.token and decision.token.item_id == item["id"] else None
    args = dict(command.args)
    task_id = (args.get("task") if command.name == "reassign" else None) or decision.task_id
    task = task_by_id(item, task_id) if task_id else task_for(item, None, sender)
    problem = token_problem(item, sender, command.name, args, reading, ctx,
                            authenticated=decision.authenticated, task=task)
    if problem:
        return refuse(msg, item, sender, language, ctx, command.name, [], link,
                       token_problem=problem)
    outcome = _dispatch(msg, decision, item, command.name, dict(command.args), language, ctx,
                        now, link)
    outcome = closeloop.follow_up(before, outcome, msg, ctx, now)
    _note_trimmed(outcome, msg, decision)
    if reading is not None and reading.token is not None:
        for changed in outcome.items:
            if changed.get("id") == item["id"]:
                key = use_key(reading.token, command.name, dict(command.args))
                changed.setdefault("used_tokens", {})[key] = now.isoformat()
    return outcome


def _note_trimmed(outcome: Outcome, msg: Inbound, decision: Reply) -> None:
    """The audit entries this reply made also say what was cut from it as quoted history or
    signature, and what was kept though it looked quoted (see `reply.ReplyText`)."""
    for changed in outcome.items if decision.trimmed else ():
        for entry in changed.get("audit", ()):
            if entry.get("message_id") == msg.message_id:
                entry.setdefault("detail", {}).update(decision.trimmed)


def _dispatch(msg: Inbound, decision: Reply, item: dict[str, Any], name: str,
              args: dict[str, Any], language: str, ctx: WorkflowContext, now: datetime,
              link: Link) -> Outcome:
    sender = msg.from_addr
    manager = may_manage(item, sender, ctx)

    if name in LOOP_COMMANDS:  # accept or return work, stop a series, dependencies
        return closeloop.handle(msg, decision, item, name, args, language, ctx, now, link)
    if name == "close":
        if not manager:
            return refuse(msg, item, sender, language, ctx, "close", [item["initiator"]], link)
        return _close(msg, item, args, language, ctx, now, link)
    if name == "withdraw":
        if not manager:
            return refuse(msg, item, sender, language, ctx, "withdraw", [item["initiator"]],
                           link)
        return withdraw(msg, item, args, language, ctx, now, link)
    if name == "reassign":
        task = task_by_id(item, args.get("task") or decision.task_id)
        if not manager:
            return refuse(msg, item, sender, language, ctx, "reassign", [item["initiator"]], link)
        if task is None:
            return ask_back(msg, item, sender, language, ctx, "which_task", link)
        return _reassign(msg, item, task, args.get("owner", ""), language, ctx, now, link)

    task = task_for(item, decision.task_id, sender)
    # The initiator answering about someone else's task: accept a delay or move a deadline.
    action = managed_action(item, task, sender, name, ctx)
    if action == "accept":
        assert task is not None
        return _accept_delay(msg, item, task, task["requested_deadline"], language, ctx, now,
                             link)
    if action == "reschedule":
        assert task is not None
        date_text = delays.manager_date(args, task, now, workday_end=ctx.workday_end,
                                        workdays=ctx.workdays)
        return _accept_delay(msg, item, task, date_text, language, ctx, now, link)
    verdict = closeloop.manager_verdict(task, name) if manager and \
        task is not None and task["owner"] != sender else None
    if verdict:  # 确认 / 拒绝 on handed-in work: accept it, or return it with the reason
        assert task is not None
        return closeloop.handle(msg, decision, item, verdict,
                                {"task": task["id"], "reason": args.get("reason", ""),
                                 "note": args.get("note", "")}, language, ctx, now, link)
    if task is None:
        owners = [t["owner"] for t in item["tasks"]]
        if sender in owners:
            return ask_back(msg, item, sender, language, ctx, "which_task", link)
        return refuse(msg, item, sender, language, ctx, name, owners, link)
    if task["owner"] != sender:
        return refuse(msg, item, sender, language, ctx, name, [task["owner"]], link)
    handed_in = closeloop.hand_in(msg, item, task, name, args, language, ctx, now, link)
    if handed_in is not None:  # 完成 where the item waits for the initiator's acceptance
        return handed_in
    return _owner_command(msg, item, task, name, args, language, ctx, now, link)


def _show(msg: Inbound, item: dict[str, Any], task_id: str | None, language: str,
          ctx: WorkflowContext, link: Link) -> Outcome:
    """Where the item stands, for the people on it (the "Status" button); others are refused."""
    sender = msg.from_addr
    insider = sender in {item["initiator"], *(t["owner"] for t in item["tasks"]), *ctx.admins}
    if not insider:
        return refuse(msg, item, sender, language, ctx, "status", [item["initiator"]], link)
    task = task_by_id(item, task_id)
    return Outcome("processed", "status shown", notices=(
        notice_for(msg, item, "command_ack", sender, language, ctx,
                {"task": task, "command": {"name": "show"}, "changed": False,
                 "actor": actor_of(ctx, sender)}, task["id"] if task else None),), links=link)


def _owner_command(msg: Inbound, item: dict[str, Any], task: dict[str, Any], name: str,
                   args: dict[str, Any], language: str, ctx: WorkflowContext, now: datetime,
                   link: Link) -> Outcome:
    sender = msg.from_addr
    notices: list[Notice] = []
    changed = True
    detail = {k: v for k, v in args.items() if v not in (None, "", {})}
    initiator = item["initiator"]
    if name == "confirm":
        if task["state"] in (TaskState.AWAITING_CONFIRMATION.value, TaskState.DECLINED.value):
            task.update(state=TaskState.NOT_STARTED.value, confirmed_at=now.isoformat(),
                        confirmed_by=sender)
            notices.append(notice_for(msg, item, "confirmed", initiator, language, ctx,
                                   {"task": task, "actor": actor_of(ctx, sender)}, task["id"]))
        else:
            changed = False
    elif name == "decline":
        task.update(state=TaskState.DECLINED.value, declined_reason=args.get("reason", ""))
        notices.append(notice_for(msg, item, "declined", initiator, language, ctx,
                               {"task": task, "actor": actor_of(ctx, sender),
                                "reason": args.get("reason", "")}, task["id"]))
    elif name == "progress":
        percent = int(args["percent"])
        task.update(progress=percent, state=(TaskState.DONE.value if percent >= 100
                                             else TaskState.IN_PROGRESS.value))
    elif name == "status":
        task["state"] = args["state"]
        if args["state"] == TaskState.DONE.value:
            task["progress"] = 100
    elif name == "done":
        task.update(state=TaskState.DONE.value, progress=100, done_note=args.get("note", ""))
        if msg.attachments:
            detail["attachments"] = [a.filename for a in msg.attachments]
    elif name == "blocker":
        missing = [key for key in ("situation", "cause", "support") if not args.get(key)]
        if missing:
            return ask_back(msg, item, sender, language, ctx, "blocker_fields", link,
                        missing=missing, task=task)
        blocker = {"at": now.isoformat(), "situation": args["situation"], "cause": args["cause"],
                   "support": args["support"]}
        task.setdefault("blockers", []).append(blocker)
        task["state"] = TaskState.BLOCKED.value
        notices.append(notice_for(msg, item, "blocker_alert", initiator, language, ctx,
                               {"task": task, "actor": actor_of(ctx, sender), "blocker": blocker},
                               task["id"]))
    elif name == "delay":
        deadline = delays.requested_deadline(args, delays.current_deadline(task), now,
                                             workday_end=ctx.workday_end, workdays=ctx.workdays)
        if deadline.value is None or deadline.error:
            # A duration that lands in the past (the deadline went by long ago) shows its date.
            shown = args.get("date") or (deadline.value.date().isoformat() if deadline.value else "")
            return ask_back(msg, item, sender, language, ctx, "delay_date", link, task=task,
                        value=shown)
        task.update(state=TaskState.DELAYED.value, requested_deadline=deadline.value.isoformat(),
                    delay_reason=args.get("reason", ""))
        detail["deadline"] = deadline.value.isoformat()
        args = {**args, "deadline": deadline.value.isoformat()}
        notices.append(notice_for(msg, item, "delay_request", initiator, language, ctx,
                               {"task": task, "actor": actor_of(ctx, sender),
                                "requested_deadline": deadline.value.isoformat(),
                                "extension": delays.extension(args),
                                "reason": args.get("reason", "")}, task["id"]))
    if changed:
        task.pop("unreachable", None)
        touch(item, task, now)
        add_audit(item, now, sender, name, msg, task["id"], **detail)
        if name in ("done", "progress", "status") and all_done(item) and not item.get(
                "retrospective_requested_at"):
            item["retrospective_requested_at"] = now.isoformat()
            notices.append(notice_for(msg, item, "retrospective_request", initiator, language, ctx,
                                   {"retro_form": RETRO_FORM.get(language, RETRO_FORM["en"])},
                                   None))
    notices.append(notice_for(msg, item, "command_ack", sender, language, ctx,
                           {"task": task, "command": {"name": name, **args},
                            "changed": changed, "actor": actor_of(ctx, sender)}, task["id"]))
    return Outcome("processed", f"{name} {task['id']}" + ("" if changed else " (no change)"),
                   items=(item,) if changed else (), notices=tuple(notices), links=link,
                   summary={"item": item["id"], "task": task["id"], "command": name})


def _accept_delay(msg: Inbound, item: dict[str, Any], task: dict[str, Any], date_text: str,
                  language: str, ctx: WorkflowContext, now: datetime, link: Link) -> Outcome:
    """The initiator sets a new deadline: an accepted delay request, or a deadline change."""
    sender = msg.from_addr
    if date_text and "T" in date_text and date_text[:4].isdigit():
        new_deadline = datetime.fromisoformat(date_text)
    else:
        parsed = parse_deadline(date_text, now, workday_end=ctx.workday_end, workdays=ctx.workdays)
        if parsed.value is None or parsed.error:
            return ask_back(msg, item, sender, language, ctx, "delay_date", link, task=task,
                        value=date_text)
        new_deadline = parsed.value
    old = task["deadline"]
    task.update(deadline=new_deadline.isoformat(), deadline_text=date_text)
    task.pop("requested_deadline", None)
    if task["state"] == TaskState.DELAYED.value:
        task["state"] = (TaskState.IN_PROGRESS.value if task.get("progress") else
                         TaskState.NOT_STARTED.value)
    # Reminders and escalations start over against the new deadline.
    task["sent"] = {k: v for k, v in task.get("sent", {}).items() if k.startswith("unconfirmed")}
    touch(item, task, now)
    add_audit(item, now, sender, "deadline", msg, task["id"], old=old, new=task["deadline"])
    command = {"name": "delay", "deadline": task["deadline"]}
    notices = [
        notice_for(msg, item, "command_ack", task["owner"], language, ctx,
                {"task": task, "command": command, "changed": True,
                 "actor": actor_of(ctx, sender)}, task["id"]),
        notice_for(msg, item, "command_ack", sender, language, ctx,
                {"task": task, "command": command, "changed": True,
                 "actor": actor_of(ctx, sender)}, task["id"]),
    ]
    return Outcome("processed", f"deadline {task['id']}", items=(item,), notices=tuple(notices),
                   links=link, summary={"item": item["id"], "task": task["id"],
                                        "command": "deadline"})


def _reassign(msg: Inbound, item: dict[str, Any], task: dict[str, Any], owner_text: str,
              language: str, ctx: WorkflowContext, now: datetime, link: Link) -> Outcome:
    """A new owner for a task: a new confirmation round, the previous owner told."""
    sender = msg.from_addr
    people = ctx.people.resolve(owner_text)
    if len(people) != 1 or not people[0].address:
        return ask_back(msg, item, sender, language, ctx, "reassign_owner", link, task=task,
                    value=owner_text, count=len(people))
    new = people[0]
    if not may_own(new.address, ctx):
        return ask_back(msg, item, sender, language, ctx, "owner_external", link, task=task,
                    value=new.address)
    previous = task["owner"]
    task.update(owner=new.address, owner_name=new.name, owner_department=new.department,
                state=TaskState.AWAITING_CONFIRMATION.value, confirmed_at=None,
                confirmed_by=None, progress=0, round=int(task.get("round", 1)) + 1, sent={},
                assigned_at=now.isoformat())
    task.pop("unreachable", None)
    task.pop("requested_deadline", None)
    touch(item, task, now)
    add_audit(item, now, sender, "reassign", msg, task["id"], previous=previous, owner=new.address)
    notices = [notice_for(msg, item, "confirm_request", new.address, language, ctx, {"task": task},
                       task["id"])]
    if previous != new.address:
        notices.append(notice_for(msg, item, "command_ack", previous, language, ctx,
                               {"task": task, "command": {"name": "reassign", "to": new.name},
                                "changed": True, "actor": actor_of(ctx, sender)}, task["id"]))
    notices.append(notice_for(msg, item, "command_ack", sender, language, ctx,
                           {"task": task, "command": {"name": "reassign", "to": new.name},
                            "changed": True, "actor": actor_of(ctx, sender)}, task["id"]))
    return Outcome("processed", f"reassign {task['id']}", items=(item,), notices=tuple(notices),
                   links=link, summary={"item": item["id"], "task": task["id"],
                                        "command": "reassign"})


def _close(msg: Inbound, item: dict[str, Any], args: Mapping[str, Any], language: str,
           ctx: WorkflowContext, now: datetime, link: Link) -> Outcome:
    """Close with the retrospective; the service archives the item after the commit."""
    retro = {key: str(args.get(key, "")) for key in ("achieved", "shortfall", "improvements")}
    item.update(state="closed", closed_at=now.isoformat(), closed_by=msg.from_addr,
                retrospective=retro)
    touch(item, None, now)
    add_audit(item, now, msg.from_addr, "close", msg, None, **{k: v for k, v in retro.items() if v})
    recipients = [item["initiator"]] + [t["owner"] for t in item["tasks"]]
    retro_text = "\n".join(f"{label}{value}" for label, value in zip(
        RETRO_FORM.get(language, RETRO_FORM["en"]).splitlines()[1:], retro.values(), strict=True)
        if value)
    notices = [notice_for(msg, item, "command_ack", address, language, ctx,
                       {"command": {"name": "close", "retrospective": retro_text},
                        "changed": True,
                        "actor": actor_of(ctx, msg.from_addr)}, None)
               for address in dict.fromkeys(recipients)]
    return Outcome("processed", "close", items=(item,), notices=tuple(notices), links=link,
                   summary={"item": item["id"], "command": "close"})


def withdraw(msg: Inbound, item: dict[str, Any], args: Mapping[str, Any], language: str,
             ctx: WorkflowContext, now: datetime, link: Link) -> Outcome:
    """The initiator takes the item back (撤销): closed without a retrospective, every owner
    told that nothing more is needed; archived like a closed item. The answer to an item sent
    in someone's name: they get its receipt at once, with this button."""
    item.update(state="closed", closed_at=now.isoformat(), closed_by=msg.from_addr,
                withdrawn=True, retrospective=dict.fromkeys(("achieved", "shortfall",
                                                             "improvements"), ""))
    touch(item, None, now)
    note = str(args.get("note", ""))
    add_audit(item, now, msg.from_addr, "withdraw", msg, None, **({"note": note} if note else {}))
    recipients = [msg.from_addr, item["initiator"]] + [t["owner"] for t in item["tasks"]]
    notices = [notice_for(msg, item, "command_ack", address, language, ctx,
                       {"command": {"name": "withdraw", "note": note}, "changed": True,
                        "actor": actor_of(ctx, msg.from_addr)}, None)
               for address in dict.fromkeys(recipients)]
    return Outcome("processed", "withdraw", items=(item,), notices=tuple(notices), links=link,
                   summary={"item": item["id"], "command": "withdraw"})


# --------------------------------------------------------------------------------------------
# Delivery trouble


def delivery_failed(item: Mapping[str, Any], failed_to: tuple[str, ...], subject: str,
                    code: int | None, error: str, ctx: WorkflowContext) -> Notice:
    """Tell the initiator once that an email about their item was refused for good."""
    return Notice(template="delivery_failed", to=(item["initiator"],),
                  language=item.get("language", "zh"),
                  context={"item": item, "recipient": ", ".join(failed_to),
                           "failed_subject": subject, "code": code, "server_message": error[:500]},
                  item_id=item["id"], in_reply_to=item.get("root_message_id"),
                  references=tuple(r for r in (item.get("root_message_id"),) if r))


def owners_unreachable(msg: Inbound, failed: tuple[str, ...], items: list[dict[str, Any]],
                       ctx: WorkflowContext, now: datetime) -> Outcome:
    """A bounce for owners' addresses: mark those tasks unreachable and tell each initiator once."""
    changed: list[dict[str, Any]] = []
    notices: list[Notice] = []
    failed_set = {a.lower() for a in failed}
    for original in items:
        item = copy.deepcopy(original)
        hit = [t for t in item["tasks"] if t["owner"] in failed_set and t["state"] in OPEN_STATES
               and not t.get("unreachable")]
        if not hit:
            continue
        for task in hit:
            task["unreachable"] = now.isoformat()
            add_audit(item, now, msg.from_addr or "mailer-daemon", "unreachable", msg, task["id"],
                      address=task["owner"])
        touch(item, None, now)
        changed.append(item)
        notices.append(notice_for(msg, item, "owner_unreachable", item["initiator"],
                               item.get("language", "zh"), ctx,
                               {"tasks": hit, "addresses": sorted({t["owner"] for t in hit})},
                               hit[0]["id"] if len(hit) == 1 else None))
    reason = f"bounce for {', '.join(sorted(failed_set))}" if failed_set else "bounce"
    return Outcome("processed", reason, items=tuple(changed), notices=tuple(notices))
