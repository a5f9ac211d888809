"""Turn a `Notice` into an `Outgoing` email (subject, text and HTML from Jinja2 templates), and an
`Outgoing` into RFC 5322 bytes (`to_mime`).

Surprises worth knowing:

* Templates are language-neutral: `templates/<kind>.{subject,txt,html}.j2`, extending
  `_layout.{txt,html}.j2` and using `_macros.{txt,html}.j2`; `_common.j2` (summaries, sentences)
  is compiled twice, as `_common.txt.j2` and as the autoescaped `_common.html.j2`. Every phrase a user reads comes from
  the per-language catalog `templates/i18n.toml` through `t("section.key", **values)`. A file
  `<kind>.<lang>.<part>.j2` overrides the neutral one for that language, when it exists.
* All template files and the catalog are read once, at construction; `render` does no I/O and
  never reads the clock (the send date is passed in and is also "now" for date formatting).
* User text is only ever a value, never compiled as a template. HTML parts are autoescaped, and
  `t()` escapes the values it interpolates there. Subjects have newlines and control characters
  replaced by spaces; `to_mime` rejects CR/LF/NUL in any header value.
* `to_mime` is deterministic (the MIME boundary derives from Message-ID and content), so a resend
  of the same `Outgoing` is byte-identical.
* Rendering cost is Jinja's per expression and per call (a morning's schedules are thousands of
  emails): templates are looked up once per (kind, language, part); each render shares one
  context dict among its parts (`_run`); `t`, `deadline`, `state_label` and `mailto` memoise what
  repeats; dict keys are read without Jinja's attribute-first AttributeError (`_Environment`).
  The output is the same as the plain Jinja calls'. A digest's rows (40,000 at 09:00) are
  written in Python, by the `digest_rows` global (`_RowWriter`): the same bytes the Jinja macros
  wrote (tests/test_render.py keeps those macros as the reference).

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
example_address, fonts, mailto_max, digest_rows (a digest's rows, see above), and the filters `deadline` (ISO datetime → local, e.g.
"8月10日 周一 18:00" / "Mon Aug 10, 18:00") and `state_label` (→ StateLabel: text + colours).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from email.utils import format_datetime, getaddresses
from pathlib import Path
from string import Formatter
from types import MappingProxyType
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import css_inline
from jinja2 import (
    DictLoader,
    Environment,
    StrictUndefined,
    Template,
    pass_context,
    select_autoescape,
)
from jinja2.runtime import Context
from markupsafe import Markup, escape

from maild.core import tokens
from maild.core.model import Notice, Outgoing
from maild.mail.mimefiles import with_files
from maild.mail.progress import bar_html, progress_facts, task_bar_html

PARTS = ("subject", "txt", "html")
MAILTO_MAX = 2000  # longer mailto: URLs are dropped by some clients; such buttons are not shown
SUBJECT_MAX = 180
FONTS = (
    "-apple-system,BlinkMacSystemFont,'Segoe UI','PingFang SC','Hiragino Sans GB',"
    "'Microsoft YaHei','Noto Sans CJK SC','Source Han Sans SC',Helvetica,Arial,sans-serif"
)
# state → (text colour, background); every badge also carries the state's label as text.
STATE_COLOURS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "awaiting_confirmation": ("#7a5200", "#fff3cd"),
        "not_started": ("#4a5058", "#eceff2"),
        "in_progress": ("#0b4f9c", "#dcebff"),
        "done": ("#1a6b2b", "#dcf3e1"),
        "submitted": ("#5a2d91", "#eee5fb"),
        "returned": ("#8a3c00", "#ffeedd"),
        "delayed": ("#9a3a00", "#ffe6d5"),
        "declined": ("#a3111f", "#fde2e4"),
        "blocked": ("#8a0f55", "#fbe0ef"),
    }
)
_UNKNOWN_COLOURS = ("#4a5058", "#eceff2")
_MSGID_BAD = re.compile(r"[\s<>]")
_ITEM_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    dict.fromkeys(("initiator_name", "initiator_department", "goal", "scope"), "")
    | {"kind": "task", "participants": (), "created_at": None, "tasks": ()}
    | {"series": None, "acceptance": None}  # closeloop.py: a recurring task, 验收
)
_TASK_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    dict.fromkeys(("owner_name", "owner_department", "deliverable", "note"), "")
    | {"deadline": None, "confirmed_at": None, "progress": 0}
    | {"depends_on": (), "occurrence": None}  # closeloop.py: waits on, a series' occurrence
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


@dataclass(frozen=True)
class StateLabel:
    """A task state as shown to people: its label in one language and its badge colours."""

    state: str
    text: str
    colour: str
    background: str

    def __str__(self) -> str:
        return self.text


class Renderer:
    """Renders notices with the templates and catalog read from `templates_dir` at construction."""

    def __init__(
        self, templates_dir: Path, *, timezone: str, inbox_address: str, from_name: str,
        subject_tokens: bool = False,
    ) -> None:
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
        self._catalog = _load_catalog(templates_dir / "i18n.toml")
        sources = _shared_variants(
            {p.name: p.read_text(encoding="utf-8") for p in templates_dir.glob("*.j2")}
        )
        env = _Environment(
            loader=DictLoader(sources),
            autoescape=select_autoescape(
                enabled_extensions=("html.j2",), default=False, default_for_string=False
            ),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        deadline, label = _deadline_memo(), _state_label_memo()
        links = _memo_mailto(inbox_address if subject_tokens else None)
        strings = _catalog_strings(self._catalog)
        env.filters.update(
            deadline=_deadline_filter(deadline), state_label=_state_label_filter(label),
            oneline=oneline,
        )
        hints = _CommandHints(strings)
        env.globals.update(
            t=_translator(strings), mailto=links, fonts=Markup(FONTS), mailto_max=MAILTO_MAX,
            tz=self._tz, command_hint=hints,
            digest_rows=_digest_rows(_RowKit(strings, deadline, label, links, hints.of)),
            progress=progress_facts, progress_bar=lambda *a: Markup(bar_html(*a)),
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
        _check_msgid(message_id)
        if notice.template not in self._kinds:
            raise ValueError(f"no template named {notice.template!r}")
        lang = self._language(notice.language)
        when = date if date.tzinfo else date.replace(tzinfo=self._tz)
        ctx = self._context(notice, lang, when.astimezone(self._tz), reply_address)
        if action_addresses:
            labels = ctx["L"]["action"]
            ctx["button_addresses"] = {labels[action]: address
                                       for action, address in action_addresses.items()
                                       if action in BUTTON_ACTIONS and action in labels}
        if ctx["entries"]:
            ctx["entries"] = [_entry(e, task_addresses or {}, ctx["action_address"],
                                     self._subject_tokens) for e in ctx["entries"]]
        if "sections" in ctx or "rows" in ctx or ctx["own"]:  # rows with levels have buttons
            _digest_buttons(ctx, task_addresses or {}, self._subject_tokens)
        if ctx["item_buttons"]:  # whole items' buttons (结项, a receipt's 撤销), by item id
            ctx["item_buttons"] = {
                row["ref"]: _with_buttons(row, task_addresses or {}, ctx["action_address"],
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
        text = _tidy_text(self._run(self._part(notice.template, lang, "txt"), ctx))
        html = self._run(self._part(notice.template, lang, "html"), ctx)
        if "<style" in html:  # templates without a <style> block are already inline: keep them
            html = self._inliner.inline(html)
        html = _newlines(html).strip() + "\n"
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
        try:
            return self._env.concat(  # type: ignore[attr-defined]
                template.root_render_func(template.new_context(variables, shared=True)))
        except Exception:
            self._env.handle_exception()

    def _context(
        self, notice: Notice, lang: str, now: datetime, reply_address: str | None
    ) -> dict[str, Any]:
        ctx: dict[str, Any] = {**self._env.globals, **_CONTEXT_DEFAULTS, **notice.context}
        if ctx["item"] is not None:
            ctx["item"] = _normalize_item(ctx["item"])
        if ctx["task"] is not None:
            ctx["task"] = _normalize_task(ctx["task"])
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


# Buttons that get an action-bound address; the others (status, help) use the reply address.
BUTTON_ACTIONS = ("confirm", "decline", "progress", "done", "reassign", "close", "accept",
                  "reschedule", "withdraw", "approve", "return", "stop")


def mailto(address: str, subject: str, body: str) -> str:
    """A mailto: URL (RFC 6068) to one address, with subject and body percent-encoded as UTF-8."""
    return _mailto(address, subject, body, _quote_field)


def _mailto(address: str, subject: str, body: str, encode: Callable[[str], str]) -> str:
    if not address or "@" not in address or re.search(r"[\s<>\"?#%,&=\\]|[^\x21-\x7e]", address):
        raise ValueError(f"not a plain address for mailto: {address!r}")
    fields = {"subject": subject, "body": _newlines(body).replace("\n", "\r\n")}
    query = "&".join(f"{k}={encode(v)}" for k, v in fields.items() if v)
    return f"mailto:{quote(address, safe='@+')}" + (f"?{query}" if query else "")


def _quote_field(value: str) -> str:
    return quote(value, safe="")


def _memo_mailto(subject_inbox: str | None = None) -> Callable[[str, str, str], str]:
    """The templates' `mailto`, memoised: the checked and quoted addresses (without reply
    addresses, every button of a run goes to the inbox), the percent-encoded subjects (the
    buttons of one task share one) and bodies (all emails use the same few). Same URLs.

    With `subject_inbox` (servers without plus addressing) a button's token moves from its
    address into its subject's tag, and the button writes to `subject_inbox`."""
    heads: dict[str, str] = {}
    subjects: dict[str, str] = {}
    bodies: dict[str, str] = {}
    if subject_inbox is not None:
        plain = _memo_mailto()

        def tagged(address: str, subject: str, body: str) -> str:
            if "+" not in address.partition("@")[0]:
                return plain(address, subject, body)
            return plain(subject_inbox, tokens.tag_subject(subject, address), body)
        return tagged

    def field(memo: dict[str, str], value: str, name: str) -> str:
        found = memo.get(value)
        if found is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            text = _newlines(value).replace("\n", "\r\n") if name == "body" else value
            found = memo[value] = f"{name}={_quote_field(text)}" if text else ""
        return found

    def mailto_(address: str, subject: str, body: str) -> str:
        head = heads.get(address)
        if head is None:
            if len(heads) >= _MEMO_MAX:
                heads.clear()
            head = heads[address] = _mailto(address, "", "", _quote_field)  # checks it
        query = "&".join([f for f in (field(subjects, subject, "subject"),
                                      field(bodies, body, "body")) if f])
        return f"{head}?{query}" if query else head

    return mailto_


def to_mime(out: Outgoing, *, from_address: str, from_name: str) -> bytes:
    """The RFC 5322 bytes of `out`: multipart/alternative (text, HTML), UTF-8, threading headers.

    Assembled by hand (stdlib `EmailMessage` + `policy.SMTP` cost ~9 ms per email): 7-bit clean,
    CRLF line ends, headers folded at spaces below 78 columns where possible, non-ASCII header
    text as RFC 2047 base64 encoded-words split on character boundaries, bodies in base64 or
    quoted-printable (`binascii`). Deterministic: the same `Outgoing` always gives the same bytes.
    """
    if not out.to:
        raise ValueError("an email needs at least one recipient")
    if not out.date:
        raise ValueError("Outgoing.date is empty: the date is chosen when the email is enqueued")
    _check_msgid(out.message_id)
    _require_ascii("Message-ID", out.message_id)
    # Ids from inbound mail that cannot go on a 7-bit line (or our own stand-ins) are left out.
    refs = [r for r in out.references if _is_real_msgid(r)]
    for ref in refs:
        _check_msgid(ref)
    refs = [r for r in refs if r.isascii()]
    _header("From", f"{from_name} {from_address}")
    _check_addr_spec(from_address)
    lines = [
        _fold("From", _mailbox(from_name, from_address)),
        _fold("To", _address_list("To", out.to)),
    ]
    if out.cc:
        lines.append(_fold("Cc", _address_list("Cc", out.cc)))
    lines.append(_fold("Subject", _unstructured("Subject", out.subject)))
    _header("Date", out.date)
    _require_ascii("Date", out.date)
    lines += [f"Date: {out.date}", f"Message-ID: <{out.message_id}>"]
    if out.in_reply_to and _is_real_msgid(out.in_reply_to):
        _check_msgid(out.in_reply_to)
        if out.in_reply_to.isascii():
            lines.append(f"In-Reply-To: <{out.in_reply_to}>")
    if refs:
        lines.append(_fold("References", " ".join(f"<{r}>" for r in refs)))
    if out.reply_to:
        lines.append(_fold("Reply-To", _address_list("Reply-To", (out.reply_to,))))
    lines += ["MIME-Version: 1.0", "Auto-Submitted: auto-generated", "X-Auto-Response-Suppress: All"]
    if out.item_id:
        lines.append(_fold("X-Maild-Item", _unstructured("X-Maild-Item", out.item_id)))
    if out.kind:
        lines.append(_fold("X-Maild-Kind", _unstructured("X-Maild-Kind", out.kind)))
    digest = hashlib.sha256(
        "\0".join((out.message_id, out.text, out.html)).encode("utf-8")
    ).hexdigest()
    boundary = f"=_maild_{digest[:32]}"  # "=_" cannot occur in QP or base64 bodies
    if out.attachments:  # multipart/mixed around the alternative (mimefiles)
        content_type, body = with_files(boundary, [_part("plain", out.text),
                                                   _part("html", out.html)], out.attachments)
        lines.append(content_type)
        return b"".join(("\r\n".join(lines).encode("ascii"), b"\r\n", body))
    lines.append(f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"')
    delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
    return b"".join((
        "\r\n".join(lines).encode("ascii"),
        b"\r\n",  # the blank line ending the header; the delimiter's CRLF completes it
        delimiter,
        _part("plain", out.text),
        delimiter,
        _part("html", out.html),
        f"\r\n--{boundary}--\r\n".encode("ascii"),
    ))


_FOLD_AT = 78  # RFC 5322 2.1.1: SHOULD stay within 78 characters, MUST within 998
_WORD_BYTES = 42  # UTF-8 bytes per encoded-word: "=?utf-8?b?" + 56 base64 chars + "?=" = 68
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")


def _part(subtype: str, body: str) -> bytes:
    """One text part (its headers and encoded body), UTF-8, CRLF line ends."""
    data = _newlines(body).replace("\n", "\r\n").encode("utf-8")
    if _cte(body) == "base64":
        encoded = base64.encodebytes(data).replace(b"\n", b"\r\n").rstrip(b"\r\n")
        cte = "base64"
    else:
        # b2a_qp keeps CRLF line ends (and uses CRLF for soft breaks) when the data has them.
        encoded = binascii.b2a_qp(data + b"\r\n", istext=True)[:-2]
        cte = "quoted-printable"
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}'
    return head.encode("ascii") + b"\r\n\r\n" + encoded


def _fold(name: str, value: str) -> str:
    """`Name: value` folded before spaces so that lines stay within 78 columns where possible."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT:
        return line
    pieces = []
    start = 0
    while len(line) - start > _FOLD_AT:
        earliest = start + 1 if start else len(name) + 2  # never fold right after "Name:"
        cut = line.rfind(" ", earliest, start + _FOLD_AT + 1)
        if cut < 0:
            cut = line.find(" ", start + _FOLD_AT + 1)  # a long word: break after it
            if cut < 0:
                break
        if not line[start:cut].strip():  # a folded line must not be whitespace only
            break
        pieces.append(line[start:cut])
        start = cut
    pieces.append(line[start:])
    if any(len(piece) > 998 for piece in pieces):
        raise ValueError(f"header {name} has a word longer than a line may be")
    return "\r\n".join(pieces)


def _encoded_words(text: str) -> str:
    """`text` as RFC 2047 base64 encoded-words, split on character boundaries, space-separated."""
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8", "surrogatepass")
        if len(chunk) + len(data) > _WORD_BYTES and chunk:
            words.append(base64.b64encode(chunk).decode("ascii"))
            chunk.clear()
        chunk += data
    if chunk:
        words.append(base64.b64encode(chunk).decode("ascii"))
    return " ".join(f"=?utf-8?b?{word}?=" for word in words)


def _unstructured(name: str, value: str) -> str:
    """A free-text header value: as is when plain printable ASCII, else encoded-words."""
    _header(name, value)
    if _PRINTABLE.match(value) and "=?" not in value and value == value.strip():
        return value
    return _encoded_words(value)


def _check_addr_spec(address: str) -> None:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or not _PRINTABLE.match(address) or re.search(
        r"[\s<>,;:\"()\[\]\\]", address  # ":" and ";" would make a group of it
    ):
        raise ValueError(f"not a plain address: {address!r}")


def _mailbox(name: str, address: str) -> str:
    """`name <address>`, the name quoted (ASCII) or as encoded-words (non-ASCII)."""
    if not name:
        return address
    if not _PRINTABLE.match(name) or "=?" in name:
        return f"{_encoded_words(name)} <{address}>"
    if _SPECIALS.search(name) or name != name.strip() or "  " in name:
        escaped = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}" <{address}>'
    return f"{name} <{address}>"


def _address_list(name: str, addresses: tuple[str, ...]) -> str:
    """Recipients joined by ", "; a non-ASCII entry is re-encoded (names as encoded-words,
    domains as IDNA); a non-ASCII local part cannot be sent without SMTPUTF8 and is refused."""
    value = ", ".join(addresses)
    _header(name, value)
    if _PRINTABLE.match(value):
        for entry in addresses:  # each one mailbox: no group, no second address smuggled in
            _check_addr_spec(entry.rpartition("<")[2].rstrip(">") if entry.endswith(">")
                             else entry)
        return value
    parts = []
    for display, addr in getaddresses(list(addresses)):
        local, _, domain = addr.rpartition("@")
        if not local.isascii():
            raise ValueError(f"header {name}: {addr!r} needs SMTPUTF8 (non-ASCII local part)")
        addr = f"{local}@{domain.encode('idna').decode('ascii')}"
        _check_addr_spec(addr)
        parts.append(_mailbox(display, addr))
    if not parts:
        raise ValueError(f"header {name}: no usable address in {value!r}")
    return ", ".join(parts)


def _require_ascii(name: str, value: str) -> None:
    if not value.isascii():
        raise ValueError(f"header {name} is not ASCII: {value!r}")


def clean_subject(subject: str) -> str:
    """One line: control characters and line breaks become spaces, runs of spaces collapse."""
    if not subject.isprintable():  # a printable one has none of those: skip the walk per char
        subject = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                          for c in subject)
    line = " ".join(subject.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 1].rstrip() + "…"


def oneline(value: Any) -> str:
    """`value` as text on one line: every run of whitespace, line breaks included, is one space."""
    return " ".join(str(value).split())


def format_deadline(value: Any, *, catalog: Mapping[str, Any], tz: tzinfo, now: datetime) -> str:
    """An ISO date or datetime in `tz`, in the catalog's language; the year only when not `now`'s."""
    if value is None or value == "":
        return str(catalog["none"])
    date_only = False
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        date_only = len(text) == 10
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    parts = {
        "y": moment.year,
        "m": moment.month,
        "d": moment.day,
        "mon": catalog["months"][moment.month - 1],
        "wd": catalog["weekdays"][moment.weekday()],
    }
    same_year = moment.year == now.astimezone(tz).year
    day = str(catalog["date" if same_year else "date_year"]).format(**parts)
    if date_only:
        return day
    return str(catalog["datetime"]).format(date=day, time=moment.strftime("%H:%M"))


def state_label(state: str, catalog: Mapping[str, Any]) -> StateLabel:
    state = str(getattr(state, "value", state))
    colour, background = STATE_COLOURS.get(state, _UNKNOWN_COLOURS)
    return StateLabel(state, str(catalog["state"].get(state, state)), colour, background)


_MEMO_MAX = 4096  # entries per memo below; a full memo is emptied (dates repeat within a run)


def _deadline_memo() -> Callable[[Any, str, Mapping[str, Any], tzinfo, datetime], str]:
    """`format_deadline`, memoised: the same deadline is formatted for every email that shows its
    task (a digest row, a reminder, the status table), with the same language, zone and year."""
    memo: dict[tuple[Any, ...], str] = {}

    def deadline(value: Any, lang: str, catalog: Mapping[str, Any], tz: tzinfo,
                 now: datetime) -> str:
        try:
            key = (value, lang, tz, now)
            return memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: format it every time
            return format_deadline(value, catalog=catalog, tz=tz, now=now)
        if len(memo) >= _MEMO_MAX:
            memo.clear()
        text = memo[key] = format_deadline(value, catalog=catalog, tz=tz, now=now)
        return text

    return deadline


def _deadline_filter(memo: Callable[[Any, str, Mapping[str, Any], tzinfo, datetime], str]
                     ) -> Callable[..., str]:
    """The `deadline` filter: in the render's language, zone and year."""

    @pass_context
    def deadline(ctx: Context, value: Any) -> str:
        return memo(value, ctx["lang"], ctx["L"], ctx["tz"], ctx["now"])

    return deadline


def _state_label_memo() -> Callable[[Any, str, Mapping[str, Any]], StateLabel]:
    """`state_label`, memoised per state and language (StateLabel is immutable)."""
    memo: dict[tuple[str, str], StateLabel] = {}

    def label(state: Any, lang: str, catalog: Mapping[str, Any]) -> StateLabel:
        key = (str(getattr(state, "value", state)), lang)
        found = memo.get(key)
        if found is None:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            found = memo[key] = state_label(state, catalog)
        return found

    return label


def _state_label_filter(memo: Callable[[Any, str, Mapping[str, Any]], StateLabel]
                        ) -> Callable[..., StateLabel]:
    """The `state_label` filter, in the render's language."""

    @pass_context
    def label(ctx: Context, state: str) -> StateLabel:
        return memo(state, ctx["lang"], ctx["L"])

    return label


Strings = Mapping[str, Mapping[str, tuple[str, str]]]  # lang → dotted key → (text, HTML)


def _catalog_strings(catalog: Mapping[str, Mapping[str, Any]]
                     ) -> dict[str, dict[str, tuple[str, str]]]:
    """Every language's catalog strings by dotted key (`_strings`)."""
    return {lang: _strings(table) for lang, table in catalog.items()}


def _translator(strings: Strings) -> Callable[..., str]:
    """The `t` global: the catalog string `key` ("section.name") of the render's language,
    formatted with `values`; in HTML the pattern and the values are escaped (as `Markup.format`
    would: every field of the catalog is a bare `{name}`, checked here at start-up)."""

    @pass_context
    def t(ctx: Context, key: str, /, _default: str | None = None, **values: Any) -> str:
        table = strings[ctx["lang"]]
        entry = table.get(key)
        if entry is None and _default is not None:
            entry = table.get(_default)
        if entry is None:
            raise KeyError(f"catalog has no string {key!r} for language {ctx['lang']!r}")
        plain, escaped = entry
        if ctx.eval_ctx.autoescape:
            return Markup(escaped.format_map(_Escaped(values)))
        return plain.format_map(values)

    return t


class _Escaped(dict[str, Any]):
    """`t`'s values for an HTML pattern: each escaped when the pattern uses it (most patterns use
    a few of the values the templates pass)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> str:
        return _h(dict.__getitem__(self, key))


def _strings(table: Mapping[str, Any], prefix: str = "") -> dict[str, tuple[str, str]]:
    """Every string of a language's catalog by its dotted key: (pattern, HTML-escaped pattern)."""
    out: dict[str, tuple[str, str]] = {}
    for name, value in table.items():
        if isinstance(value, Mapping):
            out |= _strings(value, f"{prefix}{name}.")
        elif isinstance(value, str):
            for _text, field, spec, conversion in Formatter().parse(value):
                if field is not None and (spec or conversion or not field.isidentifier()):
                    raise ValueError(f"catalog {prefix}{name}: only {{name}} fields, not {{{field}}}")
            out[prefix + name] = (value, str(escape(value)))
    return out


class _CommandHints:
    """The `command_hint(actions)` global: what to write on the first line of a reply to the
    address of a listed task whose buttons are `actions` ("确认 / 拒绝: 原因", "改期至 日期 /
    转派 给 新负责人 / 状态"), from the catalog's `reminders.commands`, memoised per language
    and actions (a run's rows share a few). Decline and done have no hint of their own: the
    hints of confirm and progress name them."""

    def __init__(self, strings: Strings) -> None:
        self._hints = {lang: {key.rpartition(".")[2]: text.format_map({})
                              for key, (text, _html) in table.items()
                              if key.startswith("reminders.commands.")}
                       for lang, table in strings.items()}
        self._memo: dict[tuple[str, tuple[str, ...]], str] = {}

    def of(self, lang: str, actions: tuple[str, ...]) -> str:
        key = (lang, tuple(actions))
        found = self._memo.get(key)
        if found is None:
            hints = self._hints[lang]
            found = self._memo[key] = " / ".join(hints[a] for a in actions if a in hints)
        return found

    @pass_context
    def __call__(self, ctx: Context, actions: tuple[str, ...]) -> str:
        return self.of(ctx["lang"], actions)


# --------------------------------------------------------------------------------------------
# Digest rows


@dataclass(frozen=True)
class _RowKit:
    """What `digest_rows` formats with: the catalog strings and the renderer's memoised
    `deadline`, `state_label` and `mailto`."""

    strings: Strings
    deadline: Callable[[Any, str, Mapping[str, Any], tzinfo, datetime], str]
    label: Callable[[Any, str, Mapping[str, Any]], StateLabel]
    mailto: Callable[[str, str, str], str]
    hint: Callable[[str, tuple[str, ...]], str]


def _digest_rows(kit: _RowKit) -> Callable[..., str]:
    """The `digest_rows(rows, show_owner=true)` global of digest.{txt,html}.j2 and
    owner_digest.*: a digest's rows, as a table (HTML) or a list (text). Written in Python, not
    as a macro: 2,000 digests at 09:00 show 40,000 rows, and a row was ~60 Jinja expressions,
    22–50 µs a part; here 2–18 µs. The output is what the macros wrote, byte for byte."""
    words: dict[str, _Words] = {}  # per language, made on first use (the catalog is fixed)

    @pass_context
    def digest_rows(ctx: Context, rows: Any, show_owner: bool = True) -> str:
        lang = ctx["lang"]
        found = words.get(lang)
        if found is None:
            found = words[lang] = _Words(ctx["L"], kit.strings[lang])
        writer = _RowWriter(kit, found, ctx, show_owner)
        if ctx.eval_ctx.autoescape:
            return Markup(writer.html(rows))
        return writer.text(rows)

    return digest_rows


_TH = ('<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;'
       'color:#57606a;font-size:13px;font-weight:600;text-align:left;')
_TD = '<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;'
_MUTED = '<br><span style="color:#57606a;font-size:13px;">'
_SECONDARY = ("decline", "done", "status")  # outlined buttons; the others are filled
_ROW_COLOURS = ("#a3111f", "#8a0f55", "#7a5200")  # overdue, blocked, else (unconfirmed)


class _Words:
    """One language's catalog words as the rows use them, plain and escaped, made once."""

    def __init__(self, L: Mapping[str, Any], strings: Mapping[str, tuple[str, str]]) -> None:
        sched, label = L["schedule"], L["label"]
        colon = L["colon"]
        self.states, self.plain = L["state"], {key: text for key, (text, _) in strings.items()}
        self.flags = dict(sched["flag"])
        self.flags_html = {f: _h(text) for f, text in self.flags.items()}
        self.row_action = dict(sched["row_action"])
        self.row_action_html = {a: _h(text) for a, text in self.row_action.items()}
        self.list_sep, self.list_sep_html = L["list_sep"], _h(L["list_sep"])
        self.sched_sep, self.sched_sep_html = sched["list_sep"], _h(sched["list_sep"])
        self.bodies, self.buttons_html = L["body"], {a: _h(t) for a, t in L["action"].items()}
        self.missing = {role: self.plain["schedule.missing"].format_map({"role": name})
                        for role, name in sched["role"].items()}
        self.head_owner = f"    {label['owner']}{colon}"
        self.head_project = f"    {sched['project']}{colon}"
        self.head_deadline = f"    {label['deadline']}{colon}"
        self.head_update = f" · {sched['last_update']}{colon}"
        self.head_marks = f"    {sched['marks']}{colon}"
        self.table = {
            show_owner: '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'border="0" style="width:100%;border-collapse:collapse;font-size:14px;'
            'line-height:1.45;margin:0 0 8px;">\n<tr>\n'
            f'{_TH}">{_h(label["task"])}</th>\n'
            f'{_TH}">{_h(label["owner"] if show_owner else sched["project"])}</th>\n'
            f'{_TH}">{_h(label["deadline"])}</th>\n'
            f'{_TH}">{_h(label["state"])}</th>\n'
            f'{_TH}padding-right:0;">{_h(sched["last_update"])}</th>\n</tr>\n'
            for show_owner in (True, False)}


class _RowWriter:
    """The rows of one digest part. Every value a reader sees is escaped in HTML (`_h`), as
    Jinja's autoescape did; catalog patterns are formatted as `t` formats them."""

    def __init__(self, kit: _RowKit, words: _Words, ctx: Context, show_owner: bool) -> None:
        self.kit, self.w, self.show_owner = kit, words, show_owner
        self.lang, self.L = ctx["lang"], ctx["L"]
        self.tz, self.now = ctx["tz"], ctx["now"]
        self.inbox, self.mailto_max = ctx["inbox_address"], ctx["mailto_max"]

    def deadline(self, value: Any) -> str:
        return self.kit.deadline(value, self.lang, self.L, self.tz, self.now)

    def said(self, row: Mapping[str, Any]) -> list[str]:
        """Each level's sentence (as a single reminder's summary says it), then the line on its
        missing role ("" without one), in plain text. In HTML each is escaped whole: `t`'s
        escaped pattern with escaped values is the escaped sentence."""
        plain = self.w.plain
        owner, dept = oneline(row["owner_name"]), row["owner_department"]
        if dept:
            owner = plain["person_dept"].format_map({"name": owner, "dept": oneline(dept)})
        values = {"task_id": row["task_id"], "task": oneline(row["name"]), "owner": owner,
                  "threshold": 0, "deadline": self.deadline(row["deadline"]),
                  "progress": row["progress"], "days": row["overdue_days"]}
        out = []
        for lv in row["levels"]:
            values["threshold"] = lv["threshold"]
            who = "owner" if lv["recipient_role"] == "owner" else "other"
            out.append(plain[f"level.{who}.{lv['reason']}"].format_map(values))
            missing = lv["missing_role"]
            out.append(self.w.missing[missing] if missing else "")
        return out

    def change(self, ch: Mapping[str, Any]) -> str:
        """One change of a row, in plain text (escaped whole in HTML, as for `said`)."""
        field, plain = ch["field"], self.w.plain
        if field == "new":
            return plain["schedule.change.new"].format_map({})
        if field == "state":
            label, lang, L = self.kit.label, self.lang, self.L
            old, new = label(ch["old"], lang, L), label(ch["new"], lang, L)
        elif field == "deadline":
            old, new = self.deadline(ch["old"]), self.deadline(ch["new"])
        else:
            old, new = oneline(ch["old"]), oneline(ch["new"])
        return plain[f"schedule.change.{field}"].format_map({"old": old, "new": new})

    def html(self, rows: Any) -> str:
        w, show_owner = self.w, self.show_owner
        out = [w.table[show_owner]]
        add = out.append
        for r in rows:
            flags = r["flags"]
            if flags:
                colour = _ROW_COLOURS[0 if "overdue" in flags else 1 if "blocked" in flags else 2]
                mark = f"border-left:3px solid {colour};padding-left:6px;"
            else:
                mark = ""
            add(f'<tr>\n{_TD}word-break:break-word;{mark}"><span style="font-family:Consolas,'
                f'Menlo,monospace;font-size:12px;color:#57606a;">{_h(r["item_id"])} '
                f'{_h(r["task_id"])}</span><br><strong>{_h(oneline(r["name"]))}</strong>\n')
            if flags:
                add('<br><span style="color:#a3111f;font-size:13px;font-weight:600;">'
                    f'{w.list_sep_html.join([w.flags_html[f] for f in flags])}</span>')
            if r["action"] and show_owner:
                add('<br><span style="color:#1f2328;font-size:13px;">&#8594; '
                    f'{w.row_action_html[r["action"]]}</span>')
            if r["changes"]:
                add(f'{_MUTED}{w.sched_sep_html.join([_h(self.change(c)) for c in r["changes"]])}'
                    "</span>")
            if "levels" in r:
                self._levels_html(r, add)
            if "actions" in r:
                self._buttons_html(r, add)
            if show_owner:
                who = _h(oneline(r["owner_name"]))
                if r["owner_department"]:
                    who = f'{who}{_MUTED}{_h(oneline(r["owner_department"]))}</span>'
            else:
                who = (f'{_h(oneline(r["item_title"]))}{_MUTED}'
                       f'{_h(oneline(r["initiator_name"]))}</span>')
            label = self.kit.label(r["state"], self.lang, self.L)
            progress = r["progress"]
            shown = f" {_h(progress)}%" if progress and r["state"] != "done" else ""
            add(f'</td>\n{_TD}word-break:break-word;">{who}</td>\n'
                f'{_TD}">{_h(self.deadline(r["deadline"]))}</td>\n'
                f'{_TD}"><span style="display:inline-block;padding:2px 8px;border-radius:10px;'
                f'background-color:{_h(label.background)};color:{_h(label.colour)};'
                'font-size:13px;font-weight:600;line-height:1.5;">&#9679; '
                f'{_h(label.text)}{shown}</span>{task_bar_html(r["state"], progress)}</td>\n'
                f'{_TD}padding-right:0;color:#57606a;font-size:13px;">'
                f'{_h(self.deadline(r["updated_at"]))}</td>\n</tr>\n')
        add("</table>\n")
        return "".join(out)

    def _levels_html(self, r: Mapping[str, Any], add: Callable[[str], None]) -> None:
        said = self.said(r)
        for n in range(0, len(said), 2):
            missing = said[n + 1]
            add(f'<br><span style="color:#1f2328;font-size:13px;font-weight:600;">'
                f'{_h(said[n])}</span>' + (f"{_MUTED}{_h(missing)}</span>" if missing else ""))

    def _buttons_html(self, r: Mapping[str, Any], add: Callable[[str], None]) -> None:
        """The row's buttons: its levels' (an owner's, or 查看状态) and the initiator's."""
        add("<br>")
        subject = f"Re: [{r['item_id']} {r['task_id']}] {oneline(r['name'])}"
        bodies = self.w.bodies
        for action in r["actions"]:
            body = (bodies[action] if action != "reassign"
                    else bodies[action].format_map({"task_id": r["task_id"]}))
            url = self.kit.mailto(r["buttons"][action], subject, body)
            if len(url) <= self.mailto_max:
                fill, ink = (("#ffffff", "#0b5cad") if action in _SECONDARY
                             else ("#0b5cad", "#ffffff"))
                add(f'<a href="{_h(url)}" style="display:inline-block;margin:6px 6px 0 0;'
                    'padding:4px 10px;border:1px solid #0b5cad;border-radius:4px;'
                    f'background-color:{fill};color:{ink};font-size:13px;font-weight:600;'
                    f'line-height:1.2;text-decoration:none;">{self.w.buttons_html[action]}</a>')

    def text(self, rows: Any) -> str:
        w, show_owner = self.w, self.show_owner
        states = w.states
        out: list[str] = []
        add = out.append
        for r in rows:
            flags, state, progress = r["flags"], r["state"], r["progress"]
            shown = f" {progress}%" if progress and state != "done" else ""
            add(f"{'!' if flags else '-'} {r['item_id']} {r['task_id']}  "
                f"[{states.get(state, state)}{shown}]  {oneline(r['name'])}\n")
            if show_owner:
                dept = r["owner_department"]
                add(f"{w.head_owner}{oneline(r['owner_name'])}"
                    + (f" · {oneline(dept)}\n" if dept else "\n"))
            else:
                add(f"{w.head_project}{oneline(r['item_title'])} · "
                    f"{oneline(r['initiator_name'])}\n")
            add(f"{w.head_deadline}{self.deadline(r['deadline'])}{w.head_update}"
                f"{self.deadline(r['updated_at'])}\n")
            if flags:
                add(f"{w.head_marks}{w.list_sep.join([w.flags[f] for f in flags])}\n")
            if r["action"] and show_owner:
                add(f"    → {w.row_action[r['action']]}\n")
            if r["changes"]:
                add(f"    ~ {w.sched_sep.join([self.change(c) for c in r['changes']])}\n")
            if "levels" in r:
                said = self.said(r)
                for n in range(0, len(said), 2):
                    missing = said[n + 1]
                    add(f"    ! {said[n]}\n" + (f"    {missing}\n" if missing else ""))
            if "actions" in r:
                commands = self.kit.hint(self.lang, r["actions"])
                if r.get("reply_to"):
                    add("    " + w.plain["reminders.reply_to"].format_map(
                        {"address": r["reply_to"], "commands": commands}) + "\n")
                else:
                    tag = r.get("reply_tag") or f"[{r['item_id']} {r['task_id']}]"
                    add("    " + w.plain["reminders.reply_tag"].format_map(
                        {"address": self.inbox, "tag": tag, "commands": commands}) + "\n")
            add("\n")
        return "".join(out)


def _h(value: Any) -> str:
    """`value` as HTML text, as autoescape writes it (`markupsafe.escape`, as a plain str:
    `str + Markup` would escape the str). Most values need no escaping, and `escape` builds a
    Markup for each: four times the cost of these tests."""
    if type(value) is not str:
        if hasattr(value, "__html__"):
            return str(value.__html__())
        value = str(value)
    if "&" in value or "<" in value or ">" in value or "'" in value or '"' in value:
        return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("'", "&#39;").replace('"', "&#34;"))
    return value


class _Environment(Environment):
    """Jinja's `getattr` tries the attribute first and only then the key, so `row.name` on the
    plain dicts of a render context raises and catches an AttributeError every time (a quarter of
    a digest's render). For dicts and the catalog's mapping proxies the key is looked up first
    unless the name is one of their methods: the same result as Jinja's, without the exception."""

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A plain dict, not Jinja's ChainMap: a render copies the globals into its context, and
        a ChainMap is copied key by key in Python. All globals are set before any template is
        loaded, and never change."""
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) in _MAPPINGS and attribute not in _MAPPING_ATTRS:
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


_MAPPINGS = (dict, MappingProxyType)
_MAPPING_ATTRS = frozenset(dir(dict)) | frozenset(dir(MappingProxyType))


def _shared_variants(sources: Mapping[str, str]) -> dict[str, str]:
    """`_x.j2` (macros for both parts) becomes `_x.txt.j2` and `_x.html.j2`: the same source,
    compiled once plain and once autoescaped, because a macro's output is marked safe by the
    template that calls it: a plain-text macro called from HTML would otherwise skip escaping."""
    out: dict[str, str] = {}
    for name, source in sources.items():
        shared = name.startswith("_") and not name.endswith((".txt.j2", ".html.j2"))
        for variant in (name[:-3] + ".txt.j2", name[:-3] + ".html.j2") if shared else (name,):
            out[variant] = source
    return out


def _load_catalog(path: Path) -> Mapping[str, Any]:
    with path.open("rb") as fh:
        catalog = tomllib.load(fh)
    if not catalog:
        raise ValueError(f"{path}: no languages")
    first, *others = catalog
    for lang in others:
        missing = _keys(catalog[first]) ^ _keys(catalog[lang])
        if missing:
            raise ValueError(f"{path}: [{first}] and [{lang}] differ in keys: {sorted(missing)}")
    return MappingProxyType(catalog)


def _keys(table: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        keys.add(prefix + key)
        if isinstance(value, Mapping):
            keys |= _keys(value, f"{prefix}{key}.")
    return keys


def _normalize_task(task: Mapping[str, Any]) -> dict[str, Any]:
    out = {**_TASK_DEFAULTS, **task}
    out["owner_name"] = out["owner_name"] or out.get("owner", "")
    out["state"] = str(getattr(out.get("state"), "value", out.get("state")))
    return out


def _normalize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {**_ITEM_DEFAULTS, **item}
    out["kind"] = str(getattr(out["kind"], "value", out["kind"]))
    out["initiator_name"] = out["initiator_name"] or out.get("initiator", "")
    out["tasks"] = [_normalize_task(t) for t in out["tasks"] or ()]
    out["participants"] = [_person_text(p) for p in out["participants"] or ()]
    return out


def _entry(entry: Mapping[str, Any], task_addresses: Mapping[str, Mapping[str, str]],
           fallback: str, subject_tokens: bool) -> dict[str, Any]:
    """One task of an email that lists several (`entries`), with its buttons' addresses."""
    return {**_with_buttons(entry, task_addresses, fallback, subject_tokens),
            "task": _normalize_task(entry["task"])}


def _digest_buttons(ctx: dict[str, Any], task_addresses: Mapping[str, Mapping[str, str]],
                    subject_tokens: bool) -> None:
    """The digest rows that carry levels (`actions`), with their buttons' addresses."""
    def rows(listed: Any) -> Any:
        if not any("actions" in row for row in listed):
            return listed
        return [_with_buttons(row, task_addresses, ctx["action_address"], subject_tokens)
                if "actions" in row else row for row in listed]

    if "rows" in ctx:
        ctx["rows"] = rows(ctx["rows"])
    if ctx["own"]:
        ctx["own"] = {**ctx["own"], "rows": rows(ctx["own"]["rows"])}
    if "sections" in ctx:
        ctx["sections"] = [{**section, "rows": rows(section["rows"])}
                           for section in ctx["sections"]]


def _with_buttons(row: Mapping[str, Any], task_addresses: Mapping[str, Mapping[str, str]],
                  fallback: str, subject_tokens: bool) -> dict[str, Any]:
    """`row` (a task listed with `ref` and `actions`) with where its buttons go: for each of its
    actions, the task's address bound to that action (status: the task's reply address, as for
    single emails), else the email's reply address or the inbox (`fallback`); and `reply_to`,
    the task's address for any reply ("" when there is none)."""
    addresses = task_addresses.get(row["ref"]) or {}
    buttons = {action: addresses.get(action if action in BUTTON_ACTIONS else "reply") or fallback
               for action in row["actions"]}
    reply_to = addresses.get("reply", "")
    if subject_tokens:  # no plus addressing: the text says which subject tag to reply with
        return {**row, "buttons": buttons, "reply_to": "",
                "reply_tag": tokens.subject_tag_for(reply_to) or ""}
    return {**row, "buttons": buttons, "reply_to": reply_to, "reply_tag": ""}


def _person_text(person: Any) -> str:
    if isinstance(person, Mapping):
        return str(person.get("name") or person.get("address") or "")
    return str(person)


def _newlines(text: str) -> str:
    if "\r" not in text:  # templates write \n: two passes over a 15 KB page saved per email
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


# Runs of blank lines. Not r"\n{3,}": the same matches, but that form makes the regex engine try
# every position of a 5 KB digest (~40 µs); a literal prefix is searched for (~4 µs).
_BLANK_LINES = re.compile(r"\n\n\n+")


def _tidy_text(text: str) -> str:
    """Trailing spaces off every line (but the "-- " signature separator), at most one blank line."""
    lines = [line.rstrip() for line in _newlines(text).split("\n")]
    if "--" in lines:  # the layout's footer separator is the last such line
        lines[len(lines) - 1 - lines[::-1].index("--")] = "-- "
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def _is_real_msgid(msgid: str) -> bool:
    """False for the "sha256:…" stand-ins decode.py invents for emails without a Message-ID."""
    return bool(msgid) and not msgid.startswith("sha256:")


def _check_msgid(msgid: str) -> None:
    if not msgid or _MSGID_BAD.search(msgid):
        raise ValueError(f"not a bare Message-ID (no <>, no spaces): {msgid!r}")


def _header(name: str, value: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name} contains a line break or NUL: {value!r}")
    return value


def _cte(body: str) -> str:
    """Base64 for mostly non-ASCII bodies (Chinese text), quoted-printable otherwise."""
    if body.isascii():
        return "quoted-printable"
    wide = len(body) - len(body.encode("ascii", "ignore"))  # characters above U+007F
    return "base64" if wide * 3 > len(body) else "quoted-printable"
