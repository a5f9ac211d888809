"""Decide what an inbound email is: a new item, a reply to one, a request for help, or mail to ignore.

Loop protection comes first and is a list of small named checks run in order (own mail, bounces,
auto-replies, list mail): an email any of them flags is never answered, whatever it says. Replies
are matched by a signed token in the recipient address or in the subject tag (servers without
plus addressing), then by threading headers, then by the subject tag; commands are read only from
the new text of the reply.

Sender authentication (`sender_authentication`) is read only from stamps the operator declared
trustworthy: the topmost Authentication-Results field carrying the configured authserv-id, where
the receiving server strips copies from outside (`trust_authentication_results`), or Exchange's
`X-MS-Exchange-Organization-AuthAs: Internal`, which Exchange's header firewall removes from mail
entering from outside (`trust_exchange_internal`). Anything else in a header is the sender's word.

A reply to a draft (a reading waiting for its initiator: a kickoff to confirm, a form to correct;
see drafts.py) is a `DraftReply`, its form read from the new text only. A new email that is a
reply (Re:, In-Reply-To) is read from its new text when that alone holds a form, so quoted
history never becomes tasks; a forwarded form is read whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from maild.core import tokens
from maild.core.commands import read_commands
from maild.core.commandwords import normalise
from maild.core.forms import FormRules, read_form
from maild.core.model import Command, FormResult, Inbound
from maild.core.sheetforms import FileForm, email_tables, form_sheet_names, read_file_form
from maild.mail.dsn import bounce_signal
from maild.mail.reply import read_reply
from maild.mail.sheets import Limits
from maild.mail.workbooks import SheetWords


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
    # The operator's declarations of which stamps their receiving servers make unforgeable.
    trust_authentication_results: bool = False
    trust_exchange_internal: bool = False
    # Attached .xlsx/.csv/.docx forms (sheetforms): read when the words of maild's own
    # templates are given; the limits apply before any file is opened.
    sheet_words: SheetWords | None = None
    file_limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class NewItem:
    form: FormResult
    language: str
    authenticated: str = ""  # how the sender was authenticated (`sender_authentication`), or ""
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
    commands: tuple[Command, ...]  # every command the new text gives, in order; () when none
    new_text: str
    language: str
    matched_by: str  # token | thread | subject
    token: tokens.TokenReading | None = None  # what its reply address said, if it had a token
    unread: tuple[str, ...] = ()  # parts that ask for something no command covers
    trimmed: dict[str, str] = field(default_factory=dict)  # reply.ReplyText.audit_detail()
    authenticated: str = ""  # how the sender was authenticated (`sender_authentication`), or ""

    @property
    def command(self) -> Command | None:
        """The first command: most replies give exactly one."""
        return self.commands[0] if self.commands else None


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
    form: FormResult | None = None  # what was read anyway (fields without a form), for the reply


@dataclass(frozen=True)
class DraftReply:
    draft_id: str
    text: str  # the reply's new text
    form: FormResult  # read from the new text only
    language: str


Decision = (NewItem | Reply | HelpRequest | Ignore | Unrecognized | DraftReply
            | TableFileProblem)

DRAFT_PREFIX = "D-"
_DRAFT_TAG = re.compile(r"\[(D-[A-Z2-7]{8})\]")

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
    sample = "".join(t[:4000] for t in texts)[:4000]  # never copies a whole big body
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


def _stamped_results(msg: Inbound, ctx: ClassifyContext) -> tuple[str, str]:
    """("dmarc" | "dkim", "") when the receiving server's own Authentication-Results vouches for
    the From domain, else ("", why not).

    Only the topmost field carrying the configured authserv-id counts, and only where the
    operator declared that their server strips such fields arriving from outside (RFC 8601
    §5): the server prepends its own, so any copy below it came with the email, and without the
    stripping the topmost one may be the sender's own. It must show dmarc=pass for the From
    domain, or dkim=pass with a signing domain aligned with it.
    """
    if not (ctx.trust_authentication_results and ctx.authserv_id):
        return "", "Authentication-Results are not trusted here"
    ours = next((results for authserv, results in map(
        authentication_results, msg.headers.get("authentication-results", ()))
        if authserv == ctx.authserv_id.lower()), None)
    if ours is None:
        return "", f"no Authentication-Results from {ctx.authserv_id}"
    domain = msg.from_addr.partition("@")[2]
    for method, result, props in ours:
        if result != "pass" or not domain:
            continue
        if method == "dmarc" and _aligned(domain, props.get("header.from", domain)):
            return "dmarc", ""
        if method == "dkim" and _aligned(domain, props.get("header.d") or props.get("header.i", "")):
            return "dkim", ""
    return "", f"neither dmarc=pass nor an aligned dkim=pass for {domain or 'the sender'}"


def _exchange_internal(msg: Inbound, ctx: ClassifyContext) -> bool:
    """Exchange marks mail its own users sent (authenticated) `AuthAs: Internal`; its header
    firewall removes X-MS-Exchange-Organization-* fields from mail entering from outside, so
    where Exchange receives all mail the mark cannot be forged. Elsewhere anyone can write it:
    it counts only when the operator says so."""
    if not ctx.trust_exchange_internal:
        return False
    values = msg.headers.get("x-ms-exchange-organization-authas", ())
    return bool(values) and values[0].strip().lower() == "internal"


def sender_authentication(msg: Inbound, ctx: ClassifyContext) -> str:
    """How a trusted stamp authenticates the sender: "dmarc", "dkim", "exchange", or ""."""
    if _exchange_internal(msg, ctx):
        return "exchange"
    return _stamped_results(msg, ctx)[0]


def _is_unauthenticated(msg: Inbound, ctx: ClassifyContext) -> str | None:
    """When required, a stamp the operator trusts must vouch for the sender."""
    if not ctx.require_authentication or _exchange_internal(msg, ctx):
        return None
    proof, why_not = _stamped_results(msg, ctx)
    return None if proof else why_not


# Order is data: the first check that fires decides; nothing after it may answer the email.
LOOP_CHECKS: tuple[tuple[str, Callable[[Inbound, ClassifyContext], str | None]], ...] = (
    ("own", _is_own),
    ("bounce", _is_bounce),
    ("auto_reply", _is_auto_reply),
    ("list", _is_list),
    ("unauthorized", _is_unauthorized),
    ("unauthenticated", _is_unauthenticated),
)


def screen(msg: Inbound, ctx: ClassifyContext) -> Ignore | None:
    """The first loop or trust check that rules the email out, else None. Reads headers only,
    so it also decides about an email fetched without its body (an oversize one)."""
    for kind, check in LOOP_CHECKS:
        reason = check(msg, ctx)
        if reason:
            return Ignore(kind, reason)
    return None


def classify(msg: Inbound, ctx: ClassifyContext) -> Decision:
    ignored = screen(msg, ctx)
    if ignored is not None:
        return ignored

    replied = read_reply(msg.text, msg.html)
    text = replied.text
    language = language_of(msg.subject, text)
    tag = _DRAFT_TAG.search(msg.subject)  # maild's own "[D-…]" subject: a draft's answer
    target = (tag[1], None, "subject", None) if tag else _reply_target(msg, ctx)
    if target and target[0].startswith(DRAFT_PREFIX):
        return DraftReply(target[0], text, read_form(msg.subject, text, ctx.form_rules),
                          language)
    if target:
        item_id, task_id, via, reading = target
        said = read_commands(text)
        return Reply(item_id, task_id, said.commands, text, language, via, reading, said.unread,
                     replied.audit_detail(), sender_authentication(msg, ctx))
    return _new_item(msg, text, language, ctx)


def _new_item(msg: Inbound, text: str, language: str, ctx: ClassifyContext) -> Decision:
    """A new email: a form (from a reply's new text when that alone is one), help, or neither."""
    form = None
    if text.strip() != msg.text.strip() and (msg.in_reply_to or msg.references):
        form = read_form(msg.subject, text, ctx.form_rules)
        form = form if form.kind is not None else None
    if form is None:
        form = read_form(msg.subject, msg.text, ctx.form_rules, msg.html)
    if msg.attachments and ctx.sheet_words is not None and (form.kind is None or form.errors):
        tables, problems = email_tables(msg.attachments, ctx.file_limits, form_sheet_names(
            ctx.form_rules, ctx.sheet_words))
        found = read_file_form(msg.subject, msg.text, tables, ctx.form_rules, ctx.sheet_words)
        if found is not None and found.form.kind is not None:
            texts = [msg.subject, msg.text, *(" ".join(r) for r in found.grid.rows[:3])]
            return NewItem(found.form, language_of(*texts), sender_authentication(msg, ctx),
                           file=found)
        if problems:
            return TableFileProblem(*problems[0], language_of(msg.subject, msg.text))
    if form.kind is not None:
        return NewItem(form, language_of(msg.subject, msg.text), sender_authentication(msg, ctx))
    subject = normalise(msg.subject)
    subject = re.sub(r"^\s*(?:(?:re|fw|fwd|回复|答复|转发)\s*[:：]\s*)+", "", subject, flags=re.IGNORECASE)
    if _HELP_RE.match(subject) or _HELP_RE.match(normalise(text)):
        return HelpRequest(language)
    return Unrecognized("neither a form maild knows nor a reply to one of its items", language,
                        form if form.fields or form.unread else None)


def _reply_target(msg: Inbound, ctx: ClassifyContext
                  ) -> tuple[str, str | None, str, tokens.TokenReading | None] | None:
    # A token rides in a reply address, or in the subject tag where the server has no plus
    # addressing; the addresses are read first.
    recipients = msg.delivered_to + msg.to + msg.cc + tuple(tokens.subject_addresses(msg.subject))
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
    if isinstance(decision, DraftReply):
        return "new_item" if decision.form.kind is not None else "reply"
    if isinstance(decision, Reply):
        return "reply"
    if isinstance(decision, Ignore) and decision.kind == "bounce":
        return "bounce"
    if isinstance(decision, Ignore) and decision.kind in ("auto_reply", "own", "list"):
        return "auto_reply"
    return "unrecognized"
