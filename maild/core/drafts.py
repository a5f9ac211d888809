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
The answer to either is `intake.answer_draft` (it makes the items, so it lives with intake;
this module only keeps and asks).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from maild.core.model import FieldError, FormResult, Inbound, ItemKind, Notice, TaskDraft
from maild.core.outcomes import Outcome, WorkflowContext, thread_of
from maild.core.taskplan import Plan

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
    from maild.core.drafts import origin_of

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


def origin_of(msg: Inbound) -> dict[str, Any]:
    """What an item keeps of the email that started it (also stored with a draft)."""
    return {"message_id": msg.message_id, "subject": msg.subject, "from_addr": msg.from_addr,
            "from_name": msg.from_name}
