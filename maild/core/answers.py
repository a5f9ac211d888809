"""The answers about a form that makes no item: the validation reply (what was recognised, what
to fix, the text put back in the form), the help reply with the guide's blank forms, and the
answer to an email maild cannot read.

Pure. Both `intake` (a form with problems) and `workflow` (a reply asking for help) send these,
so they live here rather than in either (the two must not import each other).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maild.core.datewords import ACCEPTED_FORMS
from maild.core.formprint import table_header
from maild.core.forms import blank_form, refill_form
from maild.core.model import FieldError, FormResult, Inbound, ItemKind, Notice
from maild.core.outcomes import Outcome, WorkflowContext, thread_of


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
