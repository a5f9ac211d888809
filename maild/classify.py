"""Decide what an inbound email is: a new item, a reply to one, a request for help, or mail to ignore.

Loop protection comes first and is a list of small named checks run in order (own mail, bounces,
auto-replies, list mail): an email any of them flags is never answered, whatever it says. Replies
are matched by a signed token in the recipient address, then by threading headers, then by the
subject tag; commands are read only from the new text of the reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from . import tokens
from .commands import normalise, read_command
from .dsn import bounce_signal
from .forms import FormRules, read_form
from .model import Command, FormResult, Inbound
from .reply import read_reply
from .sheetforms import FileForm, email_tables, form_sheet_names, read_file_form
from .sheets import Limits
from .workbooks import SheetWords


@dataclass(frozen=True)
class ClassifyContext:
    inbox_address: str
    secret: bytes
    allowed_domains: tuple[str, ...]
    form_rules: FormRules
    lookup_message: Callable[[str], tuple[str, str | None] | None]  # Message-ID → (item, task)
    item_exists: Callable[[str], bool]
    # [security] authserv_id / require_authentication: when required, only mail that the receiving
    # server (named by its authserv-id) found dmarc=pass, or dkim=pass for the From domain, counts.
    authserv_id: str = ""
    require_authentication: bool = False
    today: date | None = None  # for reply-token expiry; None: dated tokens never expire
    token_max_age_days: int = tokens.MAX_AGE_DAYS
    # Attached .xlsx/.csv/.docx forms (sheetforms): read when the words of maild's own
    # templates are given; the limits apply before any file is opened.
    sheet_words: SheetWords | None = None
    file_limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class NewItem:
    form: FormResult
    language: str
    file: FileForm | None = None  # the attached table the form came from


@dataclass(frozen=True)
class TableFileProblem:
    """A new email whose table file maild will not open (an old .xls/.doc, too big, a zip bomb,
    damaged) and no readable form besides: the sender is told what to send instead."""

    filename: str
    code: str  # legacy | too_large | zip_bomb | unreadable | empty
    language: str


@dataclass(frozen=True)
class Reply:
    item_id: str
    task_id: str | None
    command: Command | None
    new_text: str
    language: str
    matched_by: str  # token | thread | subject
    token: tokens.TokenReading | None = None  # what its reply address said, if it had a token
    trimmed: dict[str, str] = field(default_factory=dict)  # reply.ReplyText.audit_detail()


@dataclass(frozen=True)
class HelpRequest:
    language: str
    reason: str = "asks for the blank templates"


@dataclass(frozen=True)
class Ignore:
    kind: str  # own | bounce | auto_reply | list | unauthorized | unauthenticated
    reason: str


@dataclass(frozen=True)
class Unrecognized:
    reason: str
    language: str


Decision = NewItem | Reply | HelpRequest | Ignore | Unrecognized | TableFileProblem

_AUTO_SUBJECT_RE = re.compile(
    r"^\s*(?:自动回复|自動回覆|自动答复|自動答覆|automatic reply|auto(?:matic)?[- ]?reply|autoreply|"
    r"out of (?:the )?office|ooo\b|oof\b|away from (?:the )?office|vacation|休假|假期自动回复)",
    re.IGNORECASE)
_AUTO_BODY_RE = re.compile(r"假期自动回复|这是一封自动回复|此邮件为自动回复|this is an automatic reply|"
                           r"i am (?:currently )?out of (?:the )?office", re.IGNORECASE)
_HELP_RE = re.compile(r"^\s*(?:帮助|幫助|help|模板|template[s]?|\?|？)\s*[.。!！]?\s*$", re.IGNORECASE)
_CJK_RE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def language_of(*texts: str) -> str:
    """zh when the text is meaningfully Chinese, else en."""
    sample = "".join(texts)[:4000]
    cjk = len(_CJK_RE.findall(sample))
    return "zh" if cjk >= 2 or (cjk and cjk * 4 >= len(sample.strip())) else "en"


def _is_own(msg: Inbound, ctx: ClassifyContext) -> str | None:
    local = ctx.inbox_address.partition("@")[0]
    sender_local = msg.from_addr.partition("@")[0].split("+")[0]
    if msg.header("x-maild-item") or msg.header("x-maild-kind"):
        return "carries maild's own headers"
    if msg.from_addr.partition("@")[2] == ctx.inbox_address.partition("@")[2] and sender_local == local:
        return "sent from the collaboration inbox itself"
    return None


def _is_bounce(msg: Inbound, ctx: ClassifyContext) -> str | None:
    return bounce_signal(msg.content_type, msg.header("return-path"), msg.from_addr, msg.subject,
                         msg.in_reply_to)


def _is_auto_reply(msg: Inbound, ctx: ClassifyContext) -> str | None:
    auto = (msg.header("auto-submitted") or "no").strip().lower()
    if not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponder", "x-ms-exchange-generated-message-source"):
        if msg.header(name):
            return f"{name} header"
    if (msg.header("x-auto-response-suppress") or "").strip().lower() in ("all", "oof"):
        if _AUTO_SUBJECT_RE.search(msg.subject):
            return "Exchange auto-response"
    if (msg.header("precedence") or "").strip().lower() in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {msg.header('precedence')}"
    if _AUTO_SUBJECT_RE.search(msg.subject):
        return "auto-reply subject"
    if _AUTO_BODY_RE.search(msg.text[:2000]):
        return "auto-reply text"
    return None


def _is_list(msg: Inbound, ctx: ClassifyContext) -> str | None:
    for name in ("list-id", "list-unsubscribe", "list-post"):
        if msg.header(name):
            return f"mailing-list mail ({name})"
    return None


def _is_unauthorized(msg: Inbound, ctx: ClassifyContext) -> str | None:
    if not msg.from_addr:
        return "no usable sender address"
    domain = msg.from_addr.partition("@")[2]
    if ctx.allowed_domains and domain not in ctx.allowed_domains:
        return f"sender domain {domain} is not allowed"
    return None


_COMMENT_RE = re.compile(r"\([^()]*\)")
_RESULT_RE = re.compile(r"^\s*([a-z0-9_-]+)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY_RE = re.compile(r"\b(header\.(?:d|i|from))\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


def _aligned(domain: str, other: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    other = other.lower().lstrip("@").rpartition("@")[2].rstrip(".")
    return bool(other) and (domain == other or domain.endswith("." + other)
                            or other.endswith("." + domain))


def authentication_results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """(authserv-id, [(method, result, {property: value})]) of one Authentication-Results value
    (RFC 8601); comments are dropped."""
    text = value
    for _ in range(4):  # nested comments, a few levels deep
        text = _COMMENT_RE.sub(" ", text)
    first, *results = text.split(";")
    authserv = (first.split() or [""])[0].lower()
    parsed = []
    for result in results:
        match = _RESULT_RE.match(result)
        if match:
            props = {k.lower(): v.lower() for k, v in _PROPERTY_RE.findall(match.group(3))}
            parsed.append((match.group(1).lower(), match.group(2).lower(), props))
    return authserv, parsed


def _is_unauthenticated(msg: Inbound, ctx: ClassifyContext) -> str | None:
    """When required, the receiving server must vouch for the From domain.

    Only the topmost Authentication-Results field counts: the receiving server prepends its own,
    so every copy below it came with the email from outside, and one with another authserv-id
    is someone else's claim. It must show dmarc=pass for the From domain, or dkim=pass with a
    signing domain aligned with it.
    """
    if not ctx.require_authentication:
        return None
    values = msg.headers.get("authentication-results", ())
    if not values:
        return "no Authentication-Results from the receiving server"
    authserv, results = authentication_results(values[0])
    if not ctx.authserv_id or authserv != ctx.authserv_id.lower():
        return f"Authentication-Results from {authserv or 'nobody'!r}, not our server"
    domain = msg.from_addr.partition("@")[2]
    for method, result, props in results:
        if result != "pass" or not domain:
            continue
        if method == "dmarc" and _aligned(domain, props.get("header.from", domain)):
            return None
        if method == "dkim" and _aligned(domain, props.get("header.d") or props.get("header.i", "")):
            return None
    return f"neither dmarc=pass nor an aligned dkim=pass for {domain or 'the sender'}"


# Order is data: the first check that fires decides; nothing after it may answer the email.
LOOP_CHECKS: tuple[tuple[str, Callable[[Inbound, ClassifyContext], str | None]], ...] = (
    ("own", _is_own),
    ("bounce", _is_bounce),
    ("auto_reply", _is_auto_reply),
    ("list", _is_list),
    ("unauthorized", _is_unauthorized),
    ("unauthenticated", _is_unauthenticated),
)


def classify(msg: Inbound, ctx: ClassifyContext) -> Decision:
    for kind, check in LOOP_CHECKS:
        reason = check(msg, ctx)
        if reason:
            return Ignore(kind, reason)

    replied = read_reply(msg.text, msg.html)
    text = replied.text
    language = language_of(msg.subject, text)
    target = _reply_target(msg, ctx)
    if target:
        item_id, task_id, via, reading = target
        return Reply(item_id, task_id, read_command(text), text, language, via, reading,
                     replied.audit_detail())

    form = read_form(msg.subject, msg.text, ctx.form_rules, msg.html)
    if msg.attachments and ctx.sheet_words is not None and (form.kind is None or form.errors):
        tables, problems = email_tables(msg.attachments, ctx.file_limits, form_sheet_names(
            ctx.form_rules, ctx.sheet_words))
        found = read_file_form(msg.subject, msg.text, tables, ctx.form_rules, ctx.sheet_words)
        if found is not None and found.form.kind is not None:
            texts = [msg.subject, msg.text, *(" ".join(r) for r in found.grid.rows[:3])]
            return NewItem(found.form, language_of(*texts), found)
        if problems:
            return TableFileProblem(*problems[0], language_of(msg.subject, msg.text))
    if form.kind is not None:
        return NewItem(form, language_of(msg.subject, msg.text))
    subject = normalise(msg.subject)
    subject = re.sub(r"^\s*(?:(?:re|fw|fwd|回复|答复|转发)\s*[:：]\s*)+", "", subject, flags=re.IGNORECASE)
    if _HELP_RE.match(subject) or _HELP_RE.match(normalise(text)):
        return HelpRequest(language)
    return Unrecognized("neither a form maild knows nor a reply to one of its items", language)


def _reply_target(msg: Inbound, ctx: ClassifyContext
                  ) -> tuple[str, str | None, str, tokens.TokenReading | None] | None:
    recipients = msg.delivered_to + msg.to + msg.cc
    reading = tokens.read(ctx.secret, recipients, msg.from_addr, today=ctx.today,
                          max_age_days=ctx.token_max_age_days)
    if reading and reading.token and ctx.item_exists(reading.item_id):
        return reading.item_id, reading.task_id, "token", reading
    for message_id in ((msg.in_reply_to,) if msg.in_reply_to else ()) + tuple(reversed(msg.references)):
        found = ctx.lookup_message(message_id)
        if found:
            return found[0], found[1], "thread", reading
    if reading and ctx.item_exists(reading.item_id):
        # The token names an item but does not count for this sender (issued to someone else,
        # tampered with, or expired): the workflow decides what it may still do.
        return reading.item_id, reading.task_id, "token", reading
    tag = tokens.subject_tag(msg.subject)
    if tag and ctx.item_exists(tag[0]):
        return tag[0], tag[1], "subject", reading
    return None


def inspect_kind(decision: Decision) -> str:
    """The `kind` reported by `maild inspect --json` (a stable, documented set)."""
    if isinstance(decision, NewItem):
        return "new_item"
    if isinstance(decision, Reply):
        return "reply"
    if isinstance(decision, Ignore) and decision.kind == "bounce":
        return "bounce"
    if isinstance(decision, Ignore) and decision.kind in ("auto_reply", "own", "list"):
        return "auto_reply"
    return "unrecognized"
