"""Turn a `Notice` into an `Outgoing` email (subject, text and HTML from Jinja2 templates), and an
`Outgoing` into RFC 5322 bytes (`to_mime`, in `mime.py`). Its parts: `templatetools.py` (catalog,
filters, environment), `mailto.py` (buttons), `digestrows.py` (a digest's rows), `mime.py`.

Surprises worth knowing:

* Templates are language-neutral: `templates/<kind>.{subject,txt,html}.j2`, extending
  `_layout.{txt,html}.j2` and using `_macros.{txt,html}.j2`; `_common.j2` (summaries, sentences)
  is compiled twice, as `_common.txt.j2` and as the autoescaped `_common.html.j2`. Every phrase a user reads comes from
  the per-language catalog `templates/i18n.toml` through `t("section.key", **values)`. A file
  `<kind>.<lang>.<part>.j2` overrides the neutral one for that language, when it exists.
* All template files and the catalog are read once, at construction (their compiled code from
  `cache_dir` when it is there, templatecache.py); `render` does no I/O and never reads the
  clock (the send date is passed in and is also "now" for date formatting).
* User text is only ever a value, never compiled as a template. HTML parts are autoescaped, and
  `t()` escapes the values it interpolates there. Subjects have newlines and control characters
  replaced by spaces; `to_mime` rejects CR/LF/NUL in any header value.
* `to_mime` is deterministic (the MIME boundary derives from Message-ID and content), so a resend
  of the same `Outgoing` is byte-identical.
* Rendering cost is Jinja's per expression and per call (a morning's schedules are thousands of
  emails): templates are looked up once per (kind, language, part); each render shares one
  context dict among its parts (`_run`); `t`, `deadline`, `state_label` and `mailto` memoise what
  repeats; dict keys are read without Jinja's attribute-first AttributeError (`KeyFirstEnvironment`);
  macros and functions are called without Jinja's per-call questions, and the macros an import
  `with context` builds are unhooked once a part is written, so they are not left to the garbage
  collector (jinjacall.py); `_common.j2` has one `summary` macro, not one per kind.
  The output is the same as the plain Jinja calls'. A digest's rows (40,000 at 09:00) are
  written in Python, by the `digest_rows` global (`digestrows._RowWriter`): the same bytes the Jinja macros
  wrote (tests/mail/test_render.py keeps those macros as the reference). So is an item's status
  table (`status_table_of`, statustable.py), once per item, language, zone and clock: a
  project's receipt and its confirmations show the same one.

Context contract (`Notice.context`; keys marked ? are optional):

  item?        {id, kind, title, initiator, initiator_name?, initiator_department?, participants?
                (list of str or {name, address}), goal?, scope?, created_at? (ISO), tasks?: [task]}
               Shown as the status table in every email that has it; `[id]` prefixes the subject.
  task         {id, name, owner, owner_name?, owner_department?, deadline? (ISO), deliverable?,
                state (a TaskState value), progress? (int %), confirmed_at? (ISO), note?}
  actor?       {name, address}: who did what the email reports (defaults to the task owner).
  reason?      str: why (decline, refusal, delay ...).
  items?, notes?, suggestions?  (receipt) the items one email made (several from a daily-task
               table: then `item` is None), notes [{item, task, kind: owner|workday|buffer, text?,
               name?, deadline?, before?, days?}] and suggested fields ("goal", "deliverable").
  command?     Command.to_dict(): {name, ...args}; args read: percent, deadline, reason, to, note,
               retrospective, situation, cause, support (command_ack).
  errors       [FieldError.to_dict()], field_labels? {field: label}, accepted_dates? [str],
               refilled_form? str, original_subject? str, recognised? {form, fields [[label,
               value]], tasks [str]}, unread? [str] (validation_error).
  forms        [{name, kind?, text, header? [column], subject?}], unrecognised?, recognised?,
               unread?, original_subject? (templates).  excerpt?  str (not_understood).
  draft, notes (draft_confirm): draft {id, kind, title, participants, tasks [task], unread};
  situation (used|expired|not_yours|not_understood|unknown), item_ids? [id] (draft_answer).
  recipient, code, server_message, failed_subject? (delivery_failed).
  action? str, allowed? [str] (refused).
  parts?       [{command, result (applied|unchanged|asked|refused), task?, ask?, missing?, value?,
               token_problem?, allowed?}], unread? [str], unread_forwarded? bool (command_ack of a
               reply that said several things, compound.py).
  also?        [command dict], remarks? [str]: what else the reply recorded and what it said that
               was not understood (confirmed, declined, delay_request, blocker_alert).
  extension?   {days|weeks: int}: a delay asked as a duration (delay_request).

Per template: receipt(item?, items?, notes?, suggestions?), confirm_request(item, task),
confirmed(item, task, actor?),
declined(item, task, reason, actor?), command_ack(item, command, task?, actor?, reason?),
validation_error(errors, field_labels?, accepted_dates?, refilled_form?, original_subject?),
templates(forms), draft_confirm(draft, notes), draft_answer(situation, item_ids?, original_subject),
delivery_failed(item, recipient, code, server_message, task?, failed_subject?),
refused(reason?, action?, allowed?, item?), not_understood(item?, excerpt?).

The renderer adds: lang, L (the catalog for lang), t, mailto, now, subject, reply_subject,
reply_address, inbox_address, action_address (reply_address or inbox_address), button_addresses
(button label → its action-bound reply address), buttons and reply_to in every listed task
that has `actions` (schedule emails, see planner.py: `entries`, and digest rows; from
`task_addresses`, "ITEM/TASK" → action → address), from_name,
example_address, fonts, mailto_max, digest_rows and status_table_of (see above), and the filters `deadline` (ISO datetime → local, e.g.
"8月10日 周一 18:00" / "Mon Aug 10, 18:00") and `state_label` (→ StateLabel: text + colours).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, tzinfo
from email.utils import format_datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
from jinja2 import (
    DictLoader,
    StrictUndefined,
    Template,
    select_autoescape,
)
from markupsafe import Markup

from maild.core import tokens
from maild.core.model import Notice, Outgoing
from maild.mail.digestrows import RowKit, digest_rows_writer
from maild.mail.jinjacall import MODULES, TrackedTemplate, release_macros
from maild.mail.mailto import (
    ButtonAddresses,
    CommandHints,
    digest_buttons,
    entry_with_buttons,
    memo_mailto,
    with_buttons,
)
from maild.mail.mime import check_msgid
from maild.mail.progress import task_bar_html
from maild.mail.statustable import status_table_writer
from maild.mail.templatecache import bytecode_cache
from maild.mail.templatetools import (
    KeyFirstEnvironment,
    catalog_strings,
    clean_subject,
    deadline_filter,
    deadline_memo,
    load_catalog,
    normalize_item,
    normalize_task,
    oneline,
    shared_variants,
    state_label_filter,
    state_label_memo,
    tidy_text,
    translator,
    unix_newlines,
)

PARTS = ("subject", "txt", "html")
MAILTO_MAX = 2000  # longer mailto: URLs are dropped by some clients; such buttons are not shown
FONTS = (
    "-apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Hiragino Sans GB',"
    "'Microsoft YaHei','Noto Sans CJK SC','Source Han Sans SC',Helvetica,Arial,sans-serif"
)
_CONTEXT_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    dict.fromkeys(("item", "task", "actor", "command", "own"), None)
    | dict.fromkeys(("errors", "accepted_dates", "forms", "allowed"), ())
    | dict.fromkeys(("reason", "refilled_form", "original_subject", "excerpt", "action"), "")
    | dict.fromkeys(("recipient", "code", "server_message", "failed_subject"), "")
    | dict.fromkeys(("token_problem", "situation", "draft_id", "attached_marked", "filename"), "")
    | dict.fromkeys(("items", "notes", "suggestions", "item_ids"), ())
    | dict.fromkeys(("parts", "unread", "also", "remarks"), ())  # a reply saying several things
    | {"unread_forwarded": False, "extension": None, "attached": (), "attached_calendar": False}
    | {"closing": None, "returns": (), "waited_on": (), "forwarded": False}  # closeloop.py
    | {"field_labels": MappingProxyType({}), "button_addresses": MappingProxyType({}),
       "entries": (), "recognised": None, "unrecognised": False, "draft": None}
    | {"item_buttons": MappingProxyType({}), "manage": ()}  # the initiator's buttons
)


class Renderer:
    """Renders notices with the templates and catalog read from `templates_dir` at construction."""

    def __init__(
        self, templates_dir: Path, *, timezone: str, inbox_address: str, from_name: str,
        subject_tokens: bool = False, cache_dir: Path | None = None,
    ) -> None:
        """`cache_dir`: where compiled templates are kept between starts (templatecache.py);
        None compiles them all here."""
        try:
            self._tz: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {timezone!r}") from exc
        self._inbox = inbox_address
        self._from_name = from_name
        # Servers without plus addressing: reply tokens ride in subject tags (see `render`).
        self._subject_tokens = subject_tokens
        # Gmail and Outlook desktop drop or ignore <style>: every rule a template puts there is
        # moved into style="" attributes; @media rules (mobile, dark mode) stay for clients that
        # honour them. No remote stylesheets are ever fetched.
        self._inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
        templates_dir = Path(templates_dir)
        self._catalog = load_catalog(templates_dir / "i18n.toml")
        sources = shared_variants(
            {p.name: p.read_text(encoding="utf-8") for p in templates_dir.glob("*.j2")}
        )
        env = KeyFirstEnvironment(
            loader=DictLoader(sources),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default=False, default_for_string=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
            # every template in a plain dict: Jinja's LRU cache did a deque.remove over ~190
            # templates at each import and extends (~8 per email)
            cache_size=-1,
        )
        env.template_class = TrackedTemplate  # its modules' macros unhooked after a part
        env.bytecode_cache = bytecode_cache(cache_dir, templates_dir, env, sources)
        deadline, label = deadline_memo(), state_label_memo()
        links = memo_mailto(inbox_address if subject_tokens else None)
        strings = catalog_strings(self._catalog)
        env.filters.update(
            deadline=deadline_filter(deadline), state_label=state_label_filter(label),
            oneline=oneline,
        )
        hints = CommandHints(strings)
        kit = RowKit(strings, deadline, label, links, hints.of)
        env.globals.update(
            t=translator(strings), mailto=links, fonts=Markup(FONTS), mailto_max=MAILTO_MAX,
            tz=self._tz, command_hint=hints,
            digest_rows=digest_rows_writer(kit), status_table_of=status_table_writer(kit),
            # the small bar under a task's state, for templates that draw tasks themselves
            task_bar=lambda *a: Markup(task_bar_html(*a)),
        )
        for name in sources:  # compile everything now: a broken template fails at start-up
            env.get_template(name)
        self._env = env
        self._kinds = frozenset(
            name.split(".")[0]
            for name in sources
            if not name.startswith("_")
            and all(f"{name.split('.')[0]}.{part}.j2" in sources for part in PARTS)
        )
        # (kind, lang, part) → template, the per-language override first; looked up once here,
        # because select_template pays a TemplateNotFound for every missing override it tries.
        self._parts = {
            (kind, lang, part): env.get_template(
                f"{kind}.{lang}.{part}.j2" if f"{kind}.{lang}.{part}.j2" in sources
                else f"{kind}.{part}.j2")
            for kind in self._kinds for lang in self._catalog for part in PARTS
        }

    @property
    def kinds(self) -> frozenset[str]:
        """The templates this renderer can render (each has subject, text and HTML parts)."""
        return self._kinds

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._catalog)

    def render(
        self, notice: Notice, *, message_id: str, date: datetime, reply_address: str | None,
        action_addresses: Mapping[str, str] | None = None,
        task_addresses: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Outgoing:
        """Render `notice`; `date` is the send date (the Date header, and "now" for formatting).
        `action_addresses` (action → reply address) give each reply button its own address;
        `task_addresses` ("ITEM/TASK" → action → address) do the same per task, in an email
        that lists several tasks (`entries`)."""
        check_msgid(message_id)
        if notice.template not in self._kinds:
            raise ValueError(f"no template named {notice.template!r}")
        lang = self._language(notice.language)
        when = date if date.tzinfo else date.replace(tzinfo=self._tz)
        ctx = self._context(notice, lang, when.astimezone(self._tz), reply_address)
        if action_addresses:
            ctx["button_addresses"] = ButtonAddresses(ctx["L"]["action"], action_addresses)
        if ctx["entries"]:
            ctx["entries"] = [entry_with_buttons(e, task_addresses or {}, ctx["action_address"],
                                     self._subject_tokens) for e in ctx["entries"]]
        if "sections" in ctx or "rows" in ctx or ctx["own"]:  # rows with levels have buttons
            digest_buttons(ctx, task_addresses or {}, self._subject_tokens)
        if ctx["item_buttons"]:  # whole items' buttons (结项, a receipt's 撤销), by item id
            ctx["item_buttons"] = {
                row["ref"]: with_buttons(row, task_addresses or {}, ctx["action_address"],
                                          self._subject_tokens) for row in ctx["item_buttons"]}
        subject = clean_subject(self._run(self._part(notice.template, lang, "subject"), ctx))
        if ctx["tag"] and not subject.startswith(ctx["tag"]):
            subject = clean_subject(f"{ctx['tag']} {subject}")
        if self._subject_tokens and reply_address:
            # No plus addressing: replies come to the inbox itself, the token in the subject.
            subject = clean_subject(tokens.tag_subject(subject, reply_address))
            reply_address = None
        ctx["subject"] = subject
        ctx["reply_subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        text = tidy_text(self._run(self._part(notice.template, lang, "txt"), ctx))
        html = self._run(self._part(notice.template, lang, "html"), ctx)
        if "<style" in html:  # templates without a <style> block are already inline: keep them
            html = self._inliner.inline(html)
        html = unix_newlines(html).strip() + "\n"
        return Outgoing(
            message_id=message_id,
            to=tuple(notice.to),
            subject=subject,
            text=text,
            html=html,
            cc=tuple(notice.cc),
            in_reply_to=notice.in_reply_to,
            references=tuple(notice.references),
            reply_to=reply_address,
            kind=notice.template,
            item_id=ctx["item_id"],
            language=lang,
            date=format_datetime(when.astimezone(self._tz)),
            attachments=tuple(notice.attachments),
        )

    def _language(self, language: str) -> str:
        lang = re.split(r"[-_]", (language or "").strip().lower())[0]
        return lang if lang in self._catalog else next(iter(self._catalog))

    def _part(self, kind: str, lang: str, part: str) -> Template:
        return self._parts[(kind, lang, part)]

    def _run(self, template: Template, variables: dict[str, Any]) -> str:
        """`template.render(variables)`, minus its two copies of the context per part: the
        variables already hold the globals (`_context`), and templates never write to them."""
        context = template.new_context(variables, shared=True)
        try:
            return self._env.concat(  # type: ignore[attr-defined]
                template.root_render_func(context))
        except Exception:
            self._env.handle_exception()
        finally:
            release_macros(context, variables[MODULES])

    def _context(
        self, notice: Notice, lang: str, now: datetime, reply_address: str | None
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {**self._env.globals, **_CONTEXT_DEFAULTS, **notice.context}
        if ctx["item"] is not None:
            ctx["item"] = normalize_item(ctx["item"])
        if ctx["task"] is not None:
            ctx["task"] = normalize_task(ctx["task"])
        item_id = notice.item_id or (ctx["item"]["id"] if ctx["item"] else None)
        domain = self._inbox.rpartition("@")[2] or "example.com"
        ctx.update(
            kind=notice.template,
            lang=lang,
            L=self._catalog[lang],
            now=now,
            item_id=item_id,
            tag=f"[{item_id}]" if item_id else "",
            subject="",
            reply_subject="",
            **{MODULES: []},
            recipient=notice.to[0] if notice.to else "",
            reply_address=reply_address,
            inbox_address=self._inbox,
            action_address=reply_address or self._inbox,
            from_name=self._from_name,
            example_address=f"someone@{domain}",
            attached=[a.filename for a in notice.attachments],
            attached_calendar=any(a.content_type.startswith("text/calendar")
                                  for a in notice.attachments),
        )
        reader_tz = notice.context.get("reader_timezone")
        if reader_tz:
            # Deadlines and times in the reader's own zone (people.toml `timezone`).
            try:
                ctx["tz"] = ZoneInfo(str(reader_tz))
                ctx["now"] = now.astimezone(ctx["tz"])
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return ctx


# --------------------------------------------------------------------------------------------
# Digest rows


