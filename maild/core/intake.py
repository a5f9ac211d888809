"""New items: a read form becomes stored items with confirmation requests, or one reply about it.

Pure. `start_item` plans the form (`taskplan`) and then does one of three things:
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

Surprises: one email may make several items (a daily-task table with several rows): they take
consecutive ids from the one given (`MD-0007`, `MD-0008` …) and the service takes as many; the
email is linked to the first. Emergencies speak of 预计完成时间, not 截止日期.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from maild.core import closeloop
from maild.core.classify import NewItem
from maild.core.dates import ACCEPTED_FORMS
from maild.core.formprint import table_header
from maild.core.forms import blank_form, refill_form
from maild.core.initiatorbuttons import RECEIPT_ITEM_ACTIONS, item_rows
from maild.core.model import FieldError, FormResult, Inbound, ItemKind, Notice, TaskState
from maild.core.taskplan import Plan, plan
from maild.core.workflow import Outcome, WorkflowContext, add_audit, thread_of


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


def origin_of(msg: Inbound) -> dict[str, Any]:
    """What an item keeps of the email that started it (also stored with a draft)."""
    return {"message_id": msg.message_id, "subject": msg.subject, "from_addr": msg.from_addr,
            "from_name": msg.from_name}


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


def recognised(form: FormResult, language: str, ctx: WorkflowContext) -> dict[str, Any]:
    """What maild read in a form, for a reply: the form's name, its fields as [label, value]
    in the sender's language, and each task row as "name | owner | deadline"."""
    rules = ctx.form_rules
    fields = [[rules.label(key, language, form.kind), _display_choice(key, value, language, ctx)]
              for key, value in form.fields.items() if key in rules.labels and key != "tasks"]
    tasks = [" | ".join(p for p in (t.name, t.owner, t.deadline) if p) for t in form.tasks]
    return {"form": _form_name(form.kind, language, ctx), "fields": fields, "tasks": tasks}


def validation_reply(msg: Inbound, form: FormResult, errors: Sequence[FieldError],
                     language: str, ctx: WorkflowContext, subject: str | None = None) -> Outcome:
    """One reply: what was recognised, what must be fixed, and the sender's text in the form.
    `subject` is the form's own subject when `msg` is a reply correcting it."""
    in_reply_to, references = thread_of(msg)
    rules = ctx.form_rules
    labels = {e.field: rules.label(e.field, language, form.kind)
              for e in errors if e.field in rules.labels}
    notice = Notice(
        template="validation_error", to=(msg.from_addr,), language=language,
        context={"errors": [e.to_dict() for e in errors],
                 "field_labels": labels,
                 "recognised": recognised(form, language, ctx),
                 "unread": list(form.unread),
                 "refilled_form": refill_form(form, language, rules),
                 "accepted_dates": list(ACCEPTED_FORMS.get(language, ACCEPTED_FORMS["en"]))
                 if any(e.code.startswith("date") for e in errors) else [],
                 "original_subject": msg.subject if subject is None else subject},
        in_reply_to=in_reply_to, references=references,
    )
    return Outcome("processed", "validation errors", notices=(notice,),
                   summary={"errors": [f"{e.field}:{e.code}" for e in errors]})


def help_reply(msg: Inbound, language: str, ctx: WorkflowContext, reason: str = "",
               form: FormResult | None = None) -> Outcome:
    """The guide's three blank forms (and the commands); `reason` says why they are sent when
    the sender did not ask, with what was recognised of `form`."""
    in_reply_to, references = thread_of(msg)
    rules = ctx.form_rules
    forms = [{"name": _form_name(kind, language, ctx), "kind": kind.value,
              "text": blank_form(kind, language, rules),
              "header": table_header(kind, language, rules),
              "subject": _marker(kind, language, ctx) + " "} for kind in ItemKind]
    context: dict[str, Any] = {"forms": forms}
    if reason:
        context.update(unrecognised=True, original_subject=msg.subject,
                       recognised=recognised(form, language, ctx) if form else None,
                       unread=list(form.unread) if form else [])
    notice = Notice(template="templates", to=(msg.from_addr,), language=language,
                    context=context, in_reply_to=in_reply_to, references=references)
    return Outcome("processed", "help", notices=(notice,))


def unrecognized_reply(msg: Inbound, language: str, reason: str, ctx: WorkflowContext,
                       form: FormResult | None = None) -> Outcome:
    """An email maild cannot read: kept in quarantine; the sender gets one answer saying what
    was recognised and the blank forms, or, when some fields were read, the validation reply
    with the text put back in the nearest form."""
    if form is not None and form.fields:
        outcome = validation_reply(msg, form, [FieldError("kind", "unknown_kind")], language, ctx)
    else:
        outcome = help_reply(msg, language, ctx, reason=reason or "unrecognised", form=form)
    return Outcome("quarantine", reason, notices=outcome.notices)


def _form_name(kind: ItemKind | None, language: str, ctx: WorkflowContext) -> str:
    if kind is None:
        return ""
    return ctx.form_rules.templates[kind].names["zh" if language.startswith("zh") else "en"]


def _marker(kind: ItemKind, language: str, ctx: WorkflowContext) -> str:
    """The subject marker for a form: "[项目]" in Chinese, "[Project]" in English."""
    markers = ctx.form_rules.templates[kind].markers
    ascii_ones = [m for m in markers if m.isascii()]
    return f"[{markers[0] if language.startswith('zh') or not ascii_ones else ascii_ones[0]}]"


def _display_choice(key: str, value: str, language: str, ctx: WorkflowContext) -> str:
    lang = "zh" if language.startswith("zh") else "en"
    for choice in ctx.form_rules.choices.get(key, ()):
        if choice.value == value:
            return choice.names[lang]
    return value
