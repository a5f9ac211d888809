"""Readings that wait for their initiator: a kickoff to confirm in one word, a form to correct.

Pure. A draft is a plain dict the service keeps durably (`Store.meta_set("draft:" + id, …)`) in
the same commit as the email that made it. Its id ("D-" and 8 letters, from the Message-ID of
the email it came from) is linked to that email and to maild's reply, and shown in the reply's
subject ("[D-7K3F9QAB]"), so an answer finds it by threading or by subject.

- `ask_to_confirm`: the tasks as read, one reply asking the initiator to confirm with one word
  (确认 / 好的 / OK …); the draft ("pending") holds the checked items, so the confirmation
  creates exactly what was shown.
- `keep_rejected`: after a validation reply, the rejected reading ("rejected"), so a corrected
  form sent as a reply supersedes it: the reply's new text only (quoted history is never read)
  is merged over the rejected form: its fields replace those, its rows replace the rows. A reply
  of just names ("王磊（销售部）") answers the owner questions in order.
- `answer_draft`: the reply to either. A draft is answered once: a second confirmation, or the
  same one replayed after intake forgot it, is told which items it made. Only the initiator
  may answer; a draft older than `draft_days` has expired and is asked for again.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from maild.core.classify import DraftReply
from maild.core.forms import draft_from_fields, form_errors, read_form
from maild.core.model import FieldError, FormResult, Inbound, ItemKind, Notice, TaskDraft
from maild.core.taskplan import Plan, plan
from maild.core.workflow import Outcome, WorkflowContext, thread_of

DRAFT_ID = re.compile(r"\bD-[A-Z2-7]{8}\b")
_CONFIRM = re.compile(r"^\s*(?:确认|確認|确定|確定|好|好的|可以|同意|没问题|沒問題|是|是的|对|對|行|"
                      r"ok|okay|yes|confirm|confirmed|agreed|correct)\s*[。.!！~～]*\s*$",
                      re.IGNORECASE)


def draft_id(message_id: str) -> str:
    """The id of the draft an email makes: stable, so a redelivered email finds the same one."""
    digest = hashlib.sha256(message_id.encode()).digest()
    return "D-" + base64.b32encode(digest)[:8].decode()


def form_to_dict(form: FormResult) -> dict[str, Any]:
    return {"kind": form.kind.value if form.kind else None, "fields": dict(form.fields),
            "tasks": [{**dataclasses.asdict(t), "row": dict(t.row)} for t in form.tasks],
            "errors": [e.to_dict() for e in form.errors], "source": form.source,
            "unread": list(form.unread)}


def form_from_dict(data: Mapping[str, Any]) -> FormResult:
    return FormResult(
        ItemKind(data["kind"]) if data.get("kind") else None, dict(data.get("fields", {})),
        tuple(TaskDraft(**t) for t in data.get("tasks", ())),
        tuple(FieldError(**{**e, "options": tuple(e.get("options", ()))})
              for e in data.get("errors", ())),
        data.get("source", "table"), tuple(data.get("unread", ())))


def _new_draft(msg: Inbound, form: FormResult, state: str, language: str,
               now: datetime) -> dict[str, Any]:
    from maild.core.intake import origin_of

    return {"id": draft_id(msg.message_id), "state": state, "initiator": msg.from_addr,
            "language": language, "created_at": now.isoformat(), "updated_at": now.isoformat(),
            "origin": origin_of(msg), "form": form_to_dict(form), "messages": [msg.message_id]}


def _tagged(outcome: Outcome, draft: dict[str, Any], msg: Inbound) -> Outcome:
    """The outcome with its notices marked for the draft (the service links them to it)."""
    notices = tuple(dataclasses.replace(n, context={**n.context, "draft_id": draft["id"]})
                    for n in outcome.notices)
    links = (*outcome.links, (msg.message_id, draft["id"], None))
    return dataclasses.replace(outcome, notices=notices, links=tuple(dict.fromkeys(links)),
                               drafts=(draft,))


def keep_rejected(outcome: Outcome, msg: Inbound, form: FormResult, errors: list[FieldError],
                  language: str, now: datetime, draft: dict[str, Any] | None = None) -> Outcome:
    """Keep the reading a validation reply rejected (and its problems), so a corrected reply
    can supersede it."""
    if draft is None:
        draft = _new_draft(msg, form, "rejected", language, now)
    else:
        draft = {**draft, "state": "rejected", "form": form_to_dict(form),
                 "updated_at": now.isoformat(), "messages": [*draft["messages"], msg.message_id]}
    draft["errors"] = [e.to_dict() for e in errors]
    draft.pop("plan", None)
    return _tagged(outcome, draft, msg)


def ask_to_confirm(msg: Inbound, form: FormResult, laid_out: Plan, language: str,
                   ctx: WorkflowContext, now: datetime,
                   draft: dict[str, Any] | None = None) -> Outcome:
    """One reply showing the tasks as read; the draft waits for a one-word confirmation."""
    if draft is None:
        draft = _new_draft(msg, form, "pending", language, now)
    else:
        draft = {**draft, "state": "pending", "form": form_to_dict(form),
                 "updated_at": now.isoformat(), "messages": [*draft["messages"], msg.message_id]}
    draft["plan"] = {"groups": list(laid_out.groups), "notes": list(laid_out.notes),
                     "suggestions": list(laid_out.suggestions)}
    in_reply_to, references = thread_of(msg)
    group = laid_out.groups[0]
    notice = Notice(
        template="draft_confirm", to=(msg.from_addr,), language=language,
        context={"draft": {"id": draft["id"], "kind": group["kind"], "title": group["title"],
                           "participants": group["participants"], "tasks": group["tasks"],
                           "unread": list(form.unread)},
                 "notes": list(laid_out.notes), "original_subject": draft["origin"]["subject"]},
        in_reply_to=in_reply_to, references=references)
    outcome = Outcome("processed", "reading to confirm", notices=(notice,),
                      summary={"draft": draft["id"], "tasks": len(group["tasks"])})
    return _tagged(outcome, draft, msg)


def answer_draft(msg: Inbound, decision: DraftReply, draft: Mapping[str, Any] | None,
                 first_id: str, ctx: WorkflowContext, now: datetime) -> Outcome:
    """The initiator's answer to a draft: confirmed, corrected, or asked again."""
    from maild.core.intake import create_items, start_item, validation_reply

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
