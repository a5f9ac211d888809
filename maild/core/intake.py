"""New items: a read form becomes stored items with confirmation requests, or one reply about it.

Pure. `start_item` plans the form (`taskplan`) and then does one of three things (the replies
about a form with problems are in `answers`, the drafts kept in `drafts`):
- problems to fix: one validation reply that says what was recognised, names each problem (the
  candidates when an owner fits several people) and gives the sender's text back in the form;
  the rejected reading is kept as a draft, so a corrected form sent as a reply supersedes it;
- a kickoff read from sentences that needs the initiator's word: one reply showing the tasks as
  read, asking to confirm with one word; the reading is kept as a draft until then (`drafts`);
- otherwise the items: stored, one receipt listing them all (with how each owner was found,
  weekend deadlines and the guide's suggestions), one confirmation request per owner.

Owners must be inside the allowed domains or declared external owners (`trust.may_own`). The
receipt goes to the From address, whoever sent the email: someone named as initiator by a forged
From learns of the item at once and can withdraw it (撤销) with one click; a receipt that lists
several items gives each its own 撤销 and 转派 (`item_buttons`).

`answer_draft` is the initiator's reply to a draft: a draft is answered once (a second
confirmation, or the same one replayed after intake forgot it, is told which items it made);
only the initiator may answer; a draft older than `draft_days` has expired and is asked again.

Surprises: one email may make several items (a daily-task table with several rows): they take
consecutive ids from the one given (`MD-0007`, `MD-0008` …) and the service takes as many; the
email is linked to the first. Emergencies speak of 预计完成时间, not 截止日期.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from maild.core import closeloop
from maild.core.answers import validation_reply
from maild.core.classify import DraftReply, NewItem
from maild.core.drafts import (
    _CONFIRM,
    ask_to_confirm,
    form_from_dict,
    form_to_dict,
    keep_rejected,
    origin_of,
)
from maild.core.forms import draft_from_fields, form_errors, read_form
from maild.core.initiatorbuttons import RECEIPT_ITEM_ACTIONS, item_rows
from maild.core.model import FieldError, FormResult, Inbound, ItemKind, Notice, TaskState
from maild.core.outcomes import Outcome, WorkflowContext, add_audit, thread_of
from maild.core.taskplan import Plan, plan


def start_item(msg: Inbound, decision: NewItem, item_id: str, ctx: WorkflowContext,
               now: datetime) -> Outcome:
    """A new item from a form: stored and confirmation requests sent, or one reply about it."""
    from maild.core.drafts import ask_to_confirm, keep_rejected

    form, language = decision.form, decision.language
    laid_out = plan(form, msg.from_addr, ctx, now)
    errors = [*laid_out.errors, *closeloop.problems(laid_out.groups)]  # 重复, 依赖
    if errors:
        outcome = validation_reply(msg, form, errors, language, ctx)
        return keep_rejected(outcome, msg, form, errors, language, now)
    if laid_out.uncertain:
        return ask_to_confirm(msg, form, laid_out, language, ctx, now)
    return create_items(origin_of(msg), laid_out, item_id, language, ctx, now, msg)


def next_ids(first: str, count: int) -> list[str]:
    """`count` consecutive item ids from `first` ("MD-0007" → MD-0007, MD-0008, …)."""
    number = int(first.rpartition("-")[2])
    return [f"MD-{number + k:04d}" for k in range(count)]


def create_items(origin: Mapping[str, Any], laid_out: Plan, first_id: str, language: str,
                 ctx: WorkflowContext, now: datetime, msg: Inbound) -> Outcome:
    """The planned items, stored: one receipt to the initiator, one request per owner. `msg` is
    the email that makes them now (the form, or the reply that confirmed its draft)."""
    sender = ctx.people.by_address(origin["from_addr"])
    root = origin["message_id"]
    items: list[dict[str, Any]] = []
    for item_id, group in zip(next_ids(first_id, len(laid_out.groups)), laid_out.groups,
                              strict=True):
        fields = dict(group["fields"])
        tasks = [{**task, "updated_at": now.isoformat(), "assigned_at": now.isoformat()}
                 for task in group["tasks"]]
        item: dict[str, Any] = {
            "id": item_id, "kind": group["kind"], "title": group["title"] or origin["subject"],
            "language": language, "state": "open",
            "initiator": origin["from_addr"],
            "initiator_name": sender.name if sender else (origin["from_name"]
                                                          or origin["from_addr"]),
            "initiator_department": sender.department if sender else "",
            "initiator_text": fields.get("initiator", ""),
            "participants": list(group["participants"]),
            "goal": fields.get("goal", ""), "scope": fields.get("scope", ""), "fields": fields,
            "created_at": now.isoformat(), "updated_at": now.isoformat(),
            "subject": origin["subject"], "root_message_id": root,
            "tasks": tasks, "audit": [],
        }
        if fields.get("priority"):
            item["priority"] = fields["priority"]
        closeloop.prepare(item, ctx)  # 验收, 重复, 依赖
        add_audit(item, now, origin["from_addr"], "created", msg, tasks=len(tasks))
        items.append(item)
    in_reply_to, references = thread_of(msg, root if root != msg.message_id else None)
    notes = [{**note, "item": items[note["group"]]["id"]} for note in laid_out.notes]
    context: dict[str, Any] = {"item": items[0] if len(items) == 1 else None, "items": items,
                               "notes": notes, "suggestions": list(laid_out.suggestions),
                               "closing": closeloop.receipt_facts(items[0], ctx.calendar)
                               if len(items) == 1 else None}
    if len(items) > 1:  # each item its own 撤销 and 转派, signed for that item
        context["item_buttons"] = item_rows((i["id"] for i in items), RECEIPT_ITEM_ACTIONS)
    notices = [Notice(
        template="receipt", to=(origin["from_addr"],), language=language, context=context,
        item_id=items[0]["id"] if len(items) == 1 else None,
        in_reply_to=in_reply_to, references=references,
    )]
    for item in items:
        for task in item["tasks"]:
            if task["state"] == TaskState.DONE.value:
                continue  # reported done on the form: nothing to confirm
            notices.append(Notice(
                template="confirm_request", to=(task["owner"],), language=language,
                context={"item": item, "task": task}, item_id=item["id"], task_id=task["id"],
                in_reply_to=in_reply_to, references=references,
            ))
    links = tuple(dict.fromkeys([(root, items[0]["id"], None),
                                 (msg.message_id, items[0]["id"], None)]))
    return Outcome("processed", "new item" if len(items) == 1 else f"{len(items)} new items",
                   items=tuple(items), notices=tuple(notices), links=links,
                   summary={"item": items[0]["id"], "items": [i["id"] for i in items],
                            "tasks": sum(len(i["tasks"]) for i in items)})


def answer_draft(msg: Inbound, decision: DraftReply, draft: Mapping[str, Any] | None,
                 first_id: str, ctx: WorkflowContext, now: datetime) -> Outcome:
    """The initiator's answer to a draft: confirmed, corrected, or asked again."""
    from maild.core.answers import validation_reply
    from maild.core.intake import create_items, start_item

    language = (draft or {}).get("language", decision.language)
    if draft is None:  # forgotten (or never ours): read the reply as any new email
        from maild.core.classify import NewItem

        if decision.form.kind is not None:
            return start_item(msg, NewItem(decision.form, language), first_id, ctx, now)
        return _answer(msg, {"id": decision.draft_id}, "unknown", language)
    if msg.from_addr != draft["initiator"]:
        return _answer(msg, draft, "not_yours", language)
    if draft["state"] == "used":
        return _answer(msg, draft, "used", language, item_ids=draft.get("items", []))
    if now - datetime.fromisoformat(draft["created_at"]) > timedelta(days=ctx.draft_days):
        expired = {**draft, "state": "expired", "updated_at": now.isoformat()}
        outcome = _answer(msg, draft, "expired", language)
        return dataclasses.replace(outcome, drafts=(expired,))
    stored = form_from_dict(draft["form"])
    subject = draft["origin"]["subject"]  # the reply's "Re: 请修改后重发：…" is no title
    new = read_form(subject, decision.text, ctx.form_rules)
    from_subject = read_form(subject, "", ctx.form_rules).fields
    new = dataclasses.replace(new, fields={k: v for k, v in new.fields.items()
                                           if from_subject.get(k) != v})
    confirmed = draft["state"] == "pending" and _is_confirmation(decision.text)
    if confirmed:
        laid_out = _stored_plan(draft)
        outcome = create_items(draft["origin"], laid_out, first_id, language, ctx, now, msg)
        used = {**draft, "state": "used", "updated_at": now.isoformat(),
                "items": [i["id"] for i in outcome.items], "confirmed_by": msg.message_id}
        used.pop("plan", None)
        links = (*outcome.links, (msg.message_id, outcome.items[0]["id"], None))
        return dataclasses.replace(outcome, drafts=(used,), links=tuple(dict.fromkeys(links)),
                                   reason="draft confirmed")
    form = _corrected(stored, new, decision.text, draft, ctx)
    if form is None:
        return _answer(msg, draft, "not_understood", language)
    laid_out = plan(form, draft["initiator"], ctx, now)
    if laid_out.errors:
        outcome = validation_reply(msg, form, list(laid_out.errors), language, ctx, subject)
        return keep_rejected(outcome, msg, form, list(laid_out.errors), language, now,
                             dict(draft))
    if laid_out.uncertain:
        return ask_to_confirm(msg, form, laid_out, language, ctx, now, dict(draft))
    outcome = create_items(draft["origin"], laid_out, first_id, language, ctx, now, msg)
    used = {**draft, "state": "used", "updated_at": now.isoformat(),
            "items": [i["id"] for i in outcome.items], "form": form_to_dict(form)}
    used.pop("plan", None)
    return dataclasses.replace(outcome, drafts=(used,), reason="corrected form")


def _is_confirmation(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and bool(_CONFIRM.match(lines[0])) and len(lines) <= 3


def _stored_plan(draft: Mapping[str, Any]) -> Plan:
    stored = draft["plan"]
    return Plan(tuple(stored["groups"]), (), tuple(stored["notes"]),
                tuple(stored["suggestions"]), False)


def _corrected(stored: FormResult, new: FormResult, text: str, draft: Mapping[str, Any],
               ctx: WorkflowContext) -> FormResult | None:
    """The stored form with the reply's corrections over it, or None when the reply holds none.

    `new` is the reply's new text read under the original subject, without the fields that
    subject alone gives. A reply with fields or rows is a corrected form: its fields win, its
    rows replace the rows. A reply of only short lines answers the owner questions, one line per
    question in order."""
    rows = new.tasks if new.kind is ItemKind.PROJECT or (
        new.kind is ItemKind.TASK and len(new.tasks) > 1) else ()
    kind = new.kind if new.kind is not None and (new.fields or rows) else stored.kind
    if new.fields or rows:
        fields = {**stored.fields, **new.fields}
        tasks = new.tasks if new.tasks and kind is ItemKind.PROJECT else stored.tasks
        if kind in (ItemKind.TASK, ItemKind.EMERGENCY) and not (
                kind is ItemKind.TASK and len(new.tasks) > 1):
            tasks = (draft_from_fields(kind, fields),) if new.fields else new.tasks
        elif kind is ItemKind.TASK and len(new.tasks) > 1:
            tasks = new.tasks
        row_errors = tuple(e for e in new.errors if e.code == "task_malformed")
        errors = form_errors(kind, fields, tasks, row_errors, ctx.form_rules) if kind else ()
        return FormResult(kind, fields, tasks, errors, new.source if new.tasks else stored.source,
                          new.unread)
    questions = [e.task for e in (FieldError(**{**e, "options": tuple(e.get("options", ()))})
                                  for e in draft.get("errors", ()))
                 if e.field == "owner" and e.task]
    answers = [line.strip() for line in text.splitlines() if line.strip()]
    if not questions or len(answers) != len(questions) or any(len(a) > 60 for a in answers):
        return None
    tasks = list(stored.tasks)
    for number, answer in zip(questions, answers, strict=True):
        if 0 < number <= len(tasks):
            tasks[number - 1] = dataclasses.replace(tasks[number - 1], owner=answer)
    fields = dict(stored.fields)
    if kind in (ItemKind.TASK, ItemKind.EMERGENCY) and len(tasks) == 1:
        fields["responder" if kind is ItemKind.EMERGENCY else "owner"] = tasks[0].owner
    return dataclasses.replace(stored, fields=fields, tasks=tuple(tasks), errors=())


def _answer(msg: Inbound, draft: Mapping[str, Any], situation: str, language: str,
            **facts: Any) -> Outcome:
    """A short answer about a draft that changes nothing (or only its state)."""
    in_reply_to, references = thread_of(msg)
    notice = Notice(template="draft_answer", to=(msg.from_addr,), language=language,
                    context={"situation": situation, "draft_id": draft["id"], **facts,
                             "original_subject": (draft.get("origin") or {}).get("subject",
                                                                                 msg.subject)},
                    in_reply_to=in_reply_to, references=references)
    return Outcome("processed", f"draft {situation}", notices=(notice,),
                   links=((msg.message_id, draft["id"], None),))
