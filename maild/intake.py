"""New items: a parsed form becomes a stored item with confirmation requests, or one reply to fix it.

Pure: `start_item` validates every task (one owner from the people directory, inside the
allowed domains or a declared external owner, and a readable future deadline) and either
returns the new item with a receipt and one confirmation request per owner, or a single
validation reply that names each problem and refills the sender's form. The receipt goes to the
From address, whoever sent the email: someone named as initiator by a forged From learns of
the item at once and can withdraw it (撤销) with one click.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .classify import NewItem
from .dates import ACCEPTED_FORMS, parse_deadline
from .forms import blank_form, refill_form
from .model import FieldError, Inbound, ItemKind, Notice, TaskState
from .trust import may_own
from .workflow import Outcome, WorkflowContext, add_audit, thread_of


def start_item(msg: Inbound, decision: NewItem, item_id: str, ctx: WorkflowContext,
               now: datetime) -> Outcome:
    """A new item from a form: stored and confirmation requests sent, or one reply listing fixes."""
    form, language = decision.form, decision.language
    # The sender is the initiator: a form without 发起人 is complete (the field only adds a dept).
    errors = [e for e in form.errors if not (e.field == "initiator" and e.code == "missing")]
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
        elif not may_own(owners[0].address, ctx):
            # Never mail outside on an email's word: anyone may write a project in a name.
            task_errors.append(FieldError("owner", "owner_external", draft.owner, number))
        deadline = parse_deadline(draft.deadline, now, workday_end=ctx.workday_end)
        if not draft.deadline.strip():
            task_errors.append(FieldError("deadline", "missing", "", number))
        elif deadline.error:
            code = "date_past" if deadline.error == "past" else "date_unparseable"
            task_errors.append(FieldError("deadline", code, draft.deadline, number))
        # A field the form already reported missing (a task form's own deadline) is named once.
        reported = {(e.field, e.code) for e in errors if e.task is None}
        errors.extend(e for e in task_errors if (e.field, e.code) not in reported)
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
            "assigned_at": now.isoformat(),
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
    add_audit(item, now, msg.from_addr, "created", msg, tasks=len(tasks))
    in_reply_to, references = thread_of(msg)
    notices = [Notice(
        template="receipt", to=(msg.from_addr,), language=language,
        context={"item": item, "warnings": warnings}, item_id=item_id,
        in_reply_to=in_reply_to, references=references,
    )]
    for task in tasks:
        notices.append(Notice(
            template="confirm_request", to=(task["owner"],), language=language,
            context={"item": item, "task": task}, item_id=item_id, task_id=task["id"],
            in_reply_to=in_reply_to, references=references,
        ))
    return Outcome("processed", "new item", items=(item,), notices=tuple(notices),
                   links=((msg.message_id, item_id, None),),
                   summary={"item": item_id, "tasks": len(tasks)})


def _split_people(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[、,，;；]+", text) if part.strip()]


def _validation_reply(msg: Inbound, form: Any, errors: list[FieldError], language: str,
                      ctx: WorkflowContext) -> Outcome:
    in_reply_to, references = thread_of(msg)
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
    in_reply_to, references = thread_of(msg)
    forms = [{"name": kind.value, "text": blank_form(kind, language, ctx.form_rules)}
             for kind in ItemKind]
    notice = Notice(template="templates", to=(msg.from_addr,), language=language,
                    context={"forms": forms}, in_reply_to=in_reply_to, references=references)
    return Outcome("processed", "help", notices=(notice,))


def unrecognized_reply(msg: Inbound, language: str, reason: str, ctx: WorkflowContext) -> Outcome:
    """An email maild cannot read: kept in quarantine, the sender gets the templates once."""
    outcome = help_reply(msg, language, ctx)
    return Outcome("quarantine", reason, notices=outcome.notices)
