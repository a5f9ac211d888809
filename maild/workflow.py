"""State transitions of items and tasks, and who may make them; each returns the effects to carry out.

Pure: every function takes the current item (a dict, as stored), the decided email and `now`, and
returns an `Outcome` — the items to store, the notices to send, the message links to remember.
Nothing here reads the clock, the database or the network.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from . import tokens
from .classify import NewItem, Reply
from .dates import ACCEPTED_FORMS, parse_deadline
from .forms import FormRules, blank_form, refill_form
from .model import FieldError, Inbound, ItemKind, Notice, TaskState
from .people import Directory

OPEN_STATES = {s.value for s in TaskState} - {TaskState.DONE.value, TaskState.DECLINED.value}


@dataclass(frozen=True)
class WorkflowContext:
    inbox_address: str
    secret: bytes
    people: Directory
    form_rules: FormRules
    admins: tuple[str, ...] = ()
    workday_end: time = time(18, 0)
    buffer_days: float = 1.0  # the guide's advice: leave 1–2 days of buffer on complex tasks


@dataclass(frozen=True)
class Outcome:
    disposition: str  # processed | quarantine
    reason: str
    items: tuple[dict[str, Any], ...] = ()
    notices: tuple[Notice, ...] = ()
    links: tuple[tuple[str, str, str | None], ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)


def _thread(msg: Inbound, root: str | None = None) -> tuple[str, tuple[str, ...]]:
    refs = [r for r in (root, *msg.references, msg.message_id) if r and not r.startswith("sha256:")]
    return msg.message_id, tuple(dict.fromkeys(refs))


def _token(ctx: WorkflowContext, item_id: str, task_id: str | None, address: str) -> str:
    return tokens.issue(ctx.secret, tokens.ReplyToken(item_id, task_id, address))


def _audit(item: dict[str, Any], now: datetime, who: str, action: str, msg: Inbound,
           task_id: str | None = None, **detail: Any) -> None:
    item.setdefault("audit", []).append({"at": now.isoformat(), "who": who, "action": action,
                                         "task": task_id, "message_id": msg.message_id,
                                         "detail": detail})


# --------------------------------------------------------------------------------------------
# New items


def start_item(msg: Inbound, decision: NewItem, item_id: str, ctx: WorkflowContext,
               now: datetime) -> Outcome:
    """A new item from a form: stored and confirmation requests sent, or one reply listing fixes."""
    form, language = decision.form, decision.language
    errors = list(form.errors)
    tasks: list[dict[str, Any]] = []
    warnings: list[str] = []
    for number, draft in enumerate(form.tasks, start=1):
        task_errors: list[FieldError] = []
        if not draft.name.strip():
            task_errors.append(FieldError("title", "missing", "", number))
        owners = ctx.people.resolve(draft.owner)
        if not draft.owner.strip():
            task_errors.append(FieldError("owner", "owner_missing", "", number))
        elif not owners:
            task_errors.append(FieldError("owner", "owner_unknown", draft.owner, number))
        elif len(owners) > 1 or not owners[0].address:
            task_errors.append(FieldError("owner", "owner_many", draft.owner, number))
        deadline = parse_deadline(draft.deadline, now, workday_end=ctx.workday_end)
        if not draft.deadline.strip():
            task_errors.append(FieldError("deadline", "missing", "", number))
        elif deadline.error:
            code = "date_past" if deadline.error == "past" else "date_unparseable"
            task_errors.append(FieldError("deadline", code, draft.deadline, number))
        errors.extend(task_errors)
        if task_errors:
            continue
        owner = owners[0]
        assert deadline.value is not None
        if (deadline.value - now).total_seconds() < ctx.buffer_days * 86400:
            warnings.append(f"buffer:T-{number}")
        tasks.append({
            "id": f"T-{number}", "name": draft.name.strip(), "owner": owner.address,
            "owner_name": owner.name, "owner_department": owner.department,
            "deadline": deadline.value.isoformat(), "deadline_text": draft.deadline,
            "deliverable": draft.deliverable.strip(), "note": draft.note.strip(),
            "state": TaskState.AWAITING_CONFIRMATION.value, "progress": 0,
            "confirmed_at": None, "confirmed_by": None, "updated_at": now.isoformat(),
            "round": 1,
        })
    if errors:
        return _validation_reply(msg, form, errors, language, ctx)

    sender = ctx.people.by_address(msg.from_addr)
    fields = dict(form.fields)
    item: dict[str, Any] = {
        "id": item_id, "kind": form.kind.value if form.kind else ItemKind.TASK.value,
        "title": fields.get("title") or (tasks[0]["name"] if tasks else msg.subject),
        "language": language, "state": "open",
        "initiator": msg.from_addr,
        "initiator_name": sender.name if sender else (msg.from_name or msg.from_addr),
        "initiator_department": sender.department if sender else "",
        "initiator_text": fields.get("initiator", ""),
        "participants": _split_people(fields.get("participants", "")),
        "goal": fields.get("goal", ""),
        "scope": fields.get("scope", ""), "fields": fields,
        "created_at": now.isoformat(), "updated_at": now.isoformat(),
        "subject": msg.subject, "root_message_id": msg.message_id,
        "tasks": tasks, "audit": [],
    }
    _audit(item, now, msg.from_addr, "created", msg, tasks=len(tasks))
    in_reply_to, references = _thread(msg)
    notices = [Notice(
        template="receipt", to=(msg.from_addr,), language=language,
        context={"item": item, "warnings": warnings}, item_id=item_id,
        in_reply_to=in_reply_to, references=references,
        reply_token=_token(ctx, item_id, None, msg.from_addr),
    )]
    for task in tasks:
        notices.append(Notice(
            template="confirm_request", to=(task["owner"],), language=language,
            context={"item": item, "task": task}, item_id=item_id, task_id=task["id"],
            in_reply_to=in_reply_to, references=references,
            reply_token=_token(ctx, item_id, task["id"], task["owner"]),
        ))
    return Outcome("processed", "new item", items=(item,), notices=tuple(notices),
                   links=((msg.message_id, item_id, None),),
                   summary={"item": item_id, "tasks": len(tasks)})


def _split_people(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[、,，;；]+", text) if part.strip()]


def _validation_reply(msg: Inbound, form: Any, errors: list[FieldError], language: str,
                      ctx: WorkflowContext) -> Outcome:
    in_reply_to, references = _thread(msg)
    notice = Notice(
        template="validation_error", to=(msg.from_addr,), language=language,
        context={"errors": [e.to_dict() for e in errors],
                 "field_labels": {e.field: ctx.form_rules.label(e.field, language)
                                  for e in errors if e.field in ctx.form_rules.labels},
                 "refilled_form": refill_form(form, language, ctx.form_rules),
                 "accepted_dates": list(ACCEPTED_FORMS.get(language, ACCEPTED_FORMS["en"])),
                 "original_subject": msg.subject},
        in_reply_to=in_reply_to, references=references,
    )
    return Outcome("processed", "validation errors", notices=(notice,),
                   summary={"errors": [f"{e.field}:{e.code}" for e in errors]})


def help_reply(msg: Inbound, language: str, ctx: WorkflowContext) -> Outcome:
    in_reply_to, references = _thread(msg)
    forms = [{"name": kind.value, "text": blank_form(kind, language, ctx.form_rules)}
             for kind in ItemKind]
    notice = Notice(template="templates", to=(msg.from_addr,), language=language,
                    context={"forms": forms}, in_reply_to=in_reply_to, references=references)
    return Outcome("processed", "help", notices=(notice,))


def unrecognized_reply(msg: Inbound, language: str, reason: str, ctx: WorkflowContext) -> Outcome:
    """An email maild cannot read: kept in quarantine, the sender gets the templates once."""
    outcome = help_reply(msg, language, ctx)
    return Outcome("quarantine", reason, notices=outcome.notices)


# --------------------------------------------------------------------------------------------
# Replies


def handle_reply(msg: Inbound, decision: Reply, item: dict[str, Any] | None, ctx: WorkflowContext,
                 now: datetime) -> Outcome:
    if item is None:
        return unrecognized_reply(msg, decision.language, f"no open item {decision.item_id}", ctx)
    item = copy.deepcopy(item)
    language = item.get("language", decision.language)
    sender = msg.from_addr
    command = decision.command
    link = ((msg.message_id, item["id"], decision.task_id),)
    if command is None:
        return Outcome("processed", "command not understood", notices=(
            _notice(msg, item, "not_understood", sender, language, ctx,
                    {"excerpt": decision.new_text[:500]}),), links=link)
    if command.name == "help":
        return Outcome("processed", "help", notices=help_reply(msg, language, ctx).notices,
                       links=link)

    task = _task_for(item, decision.task_id, sender)
    if command.name in ("confirm", "decline", "progress", "done", "status"):
        if task is None:
            return _refuse(msg, item, sender, language, ctx, command.name,
                           allowed=[t["owner"] for t in item["tasks"]], link=link)
        if task["owner"] != sender:
            return _refuse(msg, item, sender, language, ctx, command.name,
                           allowed=[task["owner"]], link=link)
        return _owner_command(msg, item, task, command.name, dict(command.args), language, ctx,
                              now, link)
    # Reassign, close, delay, blocker and the rest belong to later workflow work.
    return Outcome("processed", f"command {command.name} not handled yet", notices=(
        _notice(msg, item, "not_understood", sender, language, ctx,
                {"excerpt": decision.new_text[:500]}),), links=link)


def _task_for(item: Mapping[str, Any], task_id: str | None, sender: str) -> dict[str, Any] | None:
    if task_id:
        return next((t for t in item["tasks"] if t["id"] == task_id), None)
    mine = [t for t in item["tasks"] if t["owner"] == sender and t["state"] in OPEN_STATES]
    return mine[0] if len(mine) == 1 else None


def _owner_command(msg: Inbound, item: dict[str, Any], task: dict[str, Any], name: str,
                   args: dict[str, Any], language: str, ctx: WorkflowContext, now: datetime,
                   link: tuple[tuple[str, str, str | None], ...]) -> Outcome:
    sender = msg.from_addr
    notices: list[Notice] = []
    changed = True
    if name == "confirm":
        if task["state"] == TaskState.AWAITING_CONFIRMATION.value:
            task.update(state=TaskState.NOT_STARTED.value, confirmed_at=now.isoformat(),
                        confirmed_by=sender)
            notices.append(_notice(msg, item, "confirmed", item["initiator"], language, ctx,
                                   {"task": task, "actor": _actor(ctx, sender)}, task["id"]))
        else:
            changed = False
    elif name == "decline":
        task.update(state=TaskState.DECLINED.value, declined_reason=args.get("reason", ""))
        notices.append(_notice(msg, item, "declined", item["initiator"], language, ctx,
                               {"task": task, "actor": _actor(ctx, sender),
                                "reason": args.get("reason", "")}, task["id"]))
    elif name == "progress":
        percent = int(args["percent"])
        task.update(progress=percent, state=(TaskState.DONE.value if percent >= 100
                                             else TaskState.IN_PROGRESS.value))
    elif name == "status":
        task.update(state=args["state"])
    elif name == "done":
        task.update(state=TaskState.DONE.value, progress=100, done_note=args.get("note", ""))
    if changed:
        task["updated_at"] = now.isoformat()
        item["updated_at"] = now.isoformat()
        _audit(item, now, sender, name, msg, task["id"], **{k: v for k, v in args.items() if v})
    notices.append(_notice(msg, item, "command_ack", sender, language, ctx,
                           {"task": task, "command": {"name": name, **args},
                            "changed": changed, "actor": _actor(ctx, sender)}, task["id"]))
    return Outcome("processed", f"{name} {task['id']}" + ("" if changed else " (no change)"),
                   items=(item,) if changed else (), notices=tuple(notices), links=link,
                   summary={"item": item["id"], "task": task["id"], "command": name})


def _refuse(msg: Inbound, item: dict[str, Any], sender: str, language: str, ctx: WorkflowContext,
            command: str, allowed: list[str], link: tuple[tuple[str, str, str | None], ...]
            ) -> Outcome:
    people = [_actor(ctx, a) for a in dict.fromkeys(allowed)]
    notice = _notice(msg, item, "refused", sender, language, ctx,
                     {"action": command,
                      "allowed": [f"{p['name']} <{p['address']}>" for p in people]})
    return Outcome("processed", f"{sender} may not {command}", notices=(notice,), links=link)


def _actor(ctx: WorkflowContext, address: str) -> dict[str, str]:
    person = ctx.people.by_address(address)
    return {"address": address, "name": person.name if person else address,
            "department": person.department if person else ""}


def _notice(msg: Inbound, item: Mapping[str, Any], template: str, to: str, language: str,
            ctx: WorkflowContext, extra: Mapping[str, Any], task_id: str | None = None) -> Notice:
    in_reply_to, references = _thread(msg, item.get("root_message_id"))
    token_task = task_id if to != item["initiator"] else None
    return Notice(template=template, to=(to,), language=language,
                  context={"item": item, **extra}, item_id=item["id"], task_id=task_id,
                  in_reply_to=in_reply_to, references=references,
                  reply_token=_token(ctx, item["id"], token_task, to))


def delivery_failed(item: Mapping[str, Any], failed_to: tuple[str, ...], subject: str,
                    code: int | None, error: str, ctx: WorkflowContext) -> Notice:
    """Tell the initiator once that an email about their item was refused for good."""
    return Notice(template="delivery_failed", to=(item["initiator"],),
                  language=item.get("language", "zh"),
                  context={"item": item, "recipient": ", ".join(failed_to),
                           "failed_subject": subject, "code": code, "server_message": error[:500]},
                  item_id=item["id"], in_reply_to=item.get("root_message_id"),
                  references=tuple(r for r in (item.get("root_message_id"),) if r),
                  reply_token=_token(ctx, item["id"], None, item["initiator"]))
