"""Turn the raw bytes of one email into an `Inbound`: headers, charsets, body text, attachments.

Surprises, all deliberate:

- Size limits are checked on the raw bytes *before* parsing; the header block is everything up to
  the first blank line.
- Parsing uses stdlib `email` with `policy.compat32` (`policy.default`'s header parser takes
  minutes on ~40 KB of crafted header). Header values and MIME parameters are read raw
  (`raw_items`) and decoded here: compat32 would hand back `Header` objects for 8-bit bytes and its
  parameter parser is quadratic on `;`-stuffed headers.
- Chinese charset labels lie (`gb2312` over GBK bytes): bodies and headers go through `charsets`,
  which decodes the gb family as gb18030 and big5 as big5hkscs and never raises.
- A bounce gets `failed_recipients` (see `dsn`): from its delivery-status part, else from the NDR
  text when the envelope already says bounce.
- Addresses are parsed before their encoded-words are decoded (RFC 2047 §6.1), so a decoded name
  cannot inject syntax. A From that is not exactly one clean `local@domain` gives `from_addr ""`
  (CVE-2023-27043: `alice@allowed.org)<attacker@evil.test>` must not pass as alice).
- The MIME tree is walked iteratively with a depth cap; `message/*` parts are not descended into.
- Big emails are not handed to the stdlib parser whole: it holds ~9× the email in memory (a
  20 MB email peaked at 180 MB). Above `SKELETON_BYTES`, every run of base64 lines longer than
  `ELIDE_BYTES` that is the whole body of a non-text or attachment part is cut out first (the
  part keeps a marker), and the attachment's size is computed from the cut bytes. Attachment
  payloads are sized, never kept: only name, type and decoded size reach `Inbound` — except
  table files (.xlsx/.csv/.docx, see `sheets.kind_of`) up to `max_table_bytes`, whose bytes
  ride in `Attachment.data` (never cut out of a big email) for the form reader.
"""

from __future__ import annotations

import binascii
import hashlib
import re
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from types import MappingProxyType

from maild.core.model import Attachment, Inbound
from maild.mail.attachments import (
    attachment_size,
    is_table_file,
    payload_bytes,
    payload_of,
    table_bytes,
)
from maild.mail.charsets import decode_bytes, decode_header
from maild.mail.dsn import bounce_signal, failed_recipients, parse_status_text
from maild.mail.headers import (
    ADDRESS_HEADERS,
    addresses_in,
    content_type_of,
    filename_of,
    main_value,
    message_ids,
    normalize_message_id,
    param,
    parse_date,
    raw_header,
    single_sender,
)
from maild.mail.htmltext import html_to_text

__all__ = ["DecodeError", "decode", "decode_bytes", "decode_header", "html_to_text",
           "normalize_message_id"]

MAX_DEPTH = 100  # MIME nesting beyond this is ignored (recorded as a defect)
SKELETON_BYTES = 512 * 1024  # emails above this are parsed with their big attachments cut out
ELIDE_BYTES = 64 * 1024  # base64 bodies above this are cut out (sized, never decoded)

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
# A run of base64 text and line breaks (a single character class: no backtracking stack).
_B64_RUN = re.compile(rb"[A-Za-z0-9+/=\r\n]{%d,}" % (64 * 1024))


class DecodeError(Exception):
    """The bytes cannot be taken as an email; `reason` says why in one word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # "empty" | "too_large" | "header_too_large" | "not_email"


# ── header fields ────────────────────────────────────────────────────────────────────────────


# ── MIME parts ───────────────────────────────────────────────────────────────────────────────


def _leaves(message: Message) -> tuple[list[Message], bool]:
    """Non-multipart parts in document order, walked iteratively; True when nesting was capped."""
    leaves: list[Message] = []
    capped = False
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        payload = payload_of(part)
        if not isinstance(payload, list) or content_type_of(part).startswith("message/"):
            leaves.append(part)
        elif depth >= MAX_DEPTH:
            capped = True
        else:
            stack.extend(
                (child, depth + 1) for child in reversed(payload) if isinstance(child, Message)
            )
    return leaves, capped


def _skeleton(raw: bytes, header_end: int, keep_tables: int = 0
              ) -> tuple[bytes, list[int], dict[int, bytes]]:
    """`raw` with each big base64 attachment body replaced by a marker line ("MAILDCUT" + its
    index), the decoded size of each cut body, and the decoded bytes of the cut table files.
    Only bodies that are the whole body of a base64 part that is not a text body (an
    attachment, or a non-text type) are cut."""
    pieces: list[bytes] = []
    sizes: list[int] = []
    tables: dict[int, bytes] = {}  # cut index → the decoded bytes of a table file
    kept = 0
    for match in _B64_RUN.finditer(raw, header_end):
        start, end = match.span()
        if not raw.endswith(b"\n", 0, start):
            # The run began in the part's last header line ("...: base64"): the body starts
            # after the blank line that follows.
            found = [(at, skip) for at, skip in ((raw.find(b"\n\n", start, start + 1024), 2),
                                                 (raw.find(b"\n\r\n", start, start + 1024), 3))
                     if at >= 0]
            if not found:
                continue
            at, skip = min(found)
            start = at + skip
        kind = "" if end - start < ELIDE_BYTES else _body_kind(raw, start, header_end,
                                                                keep_tables)
        if not kind:
            continue
        if kind == "keep":  # a table file: decoded straight from the run (binascii, C speed)
            try:
                tables[len(sizes)] = binascii.a2b_base64(raw[start:end])
            except binascii.Error:
                pass
        whitespace = raw.count(b"\n", start, end) + raw.count(b"\r", start, end)
        sizes.append((end - start - whitespace) * 3 // 4 - raw.count(b"=", start, end))
        pieces += [raw[kept:start], b"MAILDCUT%08d\r\n" % (len(sizes) - 1)]
        kept = end
    if not sizes:
        return raw, sizes, tables
    pieces.append(raw[kept:])
    return b"".join(pieces), sizes, tables


def _body_kind(raw: bytes, start: int, header_end: int, keep_tables: int = 0) -> str:
    """"cut" when `start` opens the body of a base64 part that is an attachment or not text,
    "keep" when that part is a table file of at most `keep_tables` bytes (cut too, its bytes
    kept for reading), else ""."""
    if raw.endswith(b"\n\n", 0, start):
        blank = start - 2
    elif raw.endswith(b"\r\n\r\n", 0, start):
        blank = start - 4
    else:
        return ""  # the run starts inside a body: leave it alone
    if blank <= header_end:
        head_start = 0  # a single-part email whose whole body is this run
    else:
        boundary = raw.rfind(b"\n--", max(0, blank - 65536), blank)
        if boundary < 0:
            return ""
        head_start = raw.find(b"\n", boundary + 1, blank)
        if head_start < 0:
            return ""
        head_start += 1
    head = BytesHeaderParser(policy=compat32).parsebytes(raw[head_start:blank] + b"\r\n\r\n")
    if main_value(raw_header(head, "content-transfer-encoding")) != "base64":
        return ""
    attachment = (main_value(raw_header(head, "content-disposition")) == "attachment"
                  or param(head, "content-disposition", "filename") is not None
                  or param(head, "content-type", "name") is not None)
    if keep_tables and is_table_file(head, None):
        end = _B64_RUN.match(raw, start)
        if end is not None and (end.end() - start) * 3 // 4 <= keep_tables:
            return "keep"
    return "cut" if attachment or not content_type_of(head).startswith("text/") else ""


def _body_text(part: Message) -> str:
    text = decode_bytes(payload_bytes(part), param(part, "content-type", "charset"))
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The per-message and per-recipient field blocks of a delivery-status part."""
    payload = payload_of(part)
    if isinstance(payload, list):
        return [{key.lower(): decode_header(str(value)) for key, value in block.items()}
                for block in payload if isinstance(block, Message)]
    return parse_status_text(_body_text(part))


def _parse(raw: bytes) -> tuple[Message, bool]:
    try:
        return message_from_bytes(raw, policy=compat32), False
    except RecursionError:
        return BytesHeaderParser(policy=compat32).parsebytes(raw), True


# ── the entry point ──────────────────────────────────────────────────────────────────────────


def decode(
    raw: bytes, *, max_bytes: int = 25 * 2**20, max_header_bytes: int = 256 * 1024,
    max_table_bytes: int = 5 * 2**20,
) -> Inbound:
    """Decode one email; raises DecodeError only for empty, oversized or non-email input.
    Table files up to `max_table_bytes` keep their bytes (0: none do)."""
    if not raw or raw.isspace():
        raise DecodeError("empty")
    if len(raw) > max_bytes:
        raise DecodeError("too_large", f"{len(raw)} bytes > {max_bytes}")
    blank = _BLANK_LINE.search(raw, 0, max_header_bytes + 4)
    header_size = blank.start() if blank else len(raw)
    if header_size > max_header_bytes:
        raise DecodeError("header_too_large", f"header > {max_header_bytes} bytes")

    cut_sizes: list[int] = []
    cut_tables: dict[int, bytes] = {}
    if len(raw) > SKELETON_BYTES:
        skeleton, cut_sizes, cut_tables = _skeleton(raw, header_size, max_table_bytes)
        message, too_deep = _parse(skeleton)
        del skeleton
    else:
        message, too_deep = _parse(raw)
    raw_headers = [
        (key, value if isinstance(value, str) else str(value)) for key, value in message.raw_items()
    ]
    if not raw_headers:
        raise DecodeError("not_email", "no header fields")

    leaves, capped = _leaves(message)
    hint = next(
        (
            cs
            for leaf in leaves
            if content_type_of(leaf).startswith("text/")
            and (cs := param(leaf, "content-type", "charset"))
        ),
        None,
    )
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    status: list[dict[str, str]] | None = None
    for leaf in leaves:
        ctype = content_type_of(leaf)
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            status = (status or []) + _status_blocks(leaf)
            continue
        filename = filename_of(leaf, hint)
        if filename or main_value(raw_header(leaf, "content-disposition")) == "attachment":
            size = attachment_size(leaf, cut_sizes)
            data = None
            if 0 < size <= max_table_bytes and is_table_file(leaf, hint):
                data = table_bytes(leaf, cut_tables)
                size = len(data) if data is not None else size
            attachments.append(Attachment(filename, ctype, size, data))
        elif ctype == "text/plain" and text is None:
            text = _body_text(leaf)
        elif ctype == "text/html" and html is None:
            html = _body_text(leaf)
    if (text is None or not text.strip()) and html is not None:
        text = html_to_text(html)

    headers: dict[str, list[str]] = {}
    for key, value in raw_headers:
        headers.setdefault(key.lower(), []).append(decode_header(value, hint))

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    def raw_values(*names: str) -> list[str]:
        return [value for key, value in raw_headers if key.lower() in names]

    senders = raw_values("from")
    from_addr, from_name = single_sender(senders[0], hint) if len(senders) == 1 else ("", "")
    message_id = normalize_message_id(first("message-id"))
    subject = first("subject") or ""
    in_reply_to = next(iter(message_ids(first("in-reply-to"))), None)
    bounce = bounce_signal(content_type_of(message), first("return-path"), from_addr, subject,
                           in_reply_to)
    defects = [type(defect).__name__ for leaf in (message, *leaves) for defect in leaf.defects]
    flags = {"missing_message_id": not message_id, "unusable_from": not from_addr}
    flags["nesting_too_deep"] = too_deep or capped
    defects += [name for name, bad in flags.items() if bad]
    return Inbound(
        message_id=message_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        subject=subject,
        from_addr=from_addr,
        from_name=from_name,
        to=addresses_in(raw_values("to"), hint),
        cc=addresses_in(raw_values("cc"), hint),
        delivered_to=addresses_in(raw_values(*ADDRESS_HEADERS), hint),
        in_reply_to=in_reply_to,
        references=message_ids(" ".join(headers.get("references", ()))),
        date=parse_date(first("date")),
        headers=MappingProxyType({key: tuple(values) for key, values in headers.items()}),
        text=text or "",
        html=html,
        attachments=tuple(attachments),
        content_type=content_type_of(message),
        raw_size=len(raw),
        defects=tuple(dict.fromkeys(defects)),
        failed_recipients=failed_recipients(status, text or "", bounce is not None),
    )


def attachment_files(raw: bytes, limit: int) -> list[tuple[str, str, bytes]] | None:
    """The files attached to an email, as (filename, content type, bytes), to forward them
    (an owner's deliverable, to the initiator who accepts it); None when together they are
    larger than `limit` bytes. Filenames are read as `decode` reads them (RFC 2231, GBK)."""
    message, _too_deep = _parse(raw)
    leaves, _capped = _leaves(message)
    hint = next((cs for leaf in leaves if content_type_of(leaf).startswith("text/")
                 and (cs := param(leaf, "content-type", "charset"))), None)
    files: list[tuple[str, str, bytes]] = []
    total = 0
    for leaf in leaves:
        filename = filename_of(leaf, hint)
        if not (filename or main_value(raw_header(leaf, "content-disposition")) == "attachment"):
            continue
        data = payload_bytes(leaf)
        total += len(data)
        if total > limit:
            return None
        files.append((filename or "attachment", content_type_of(leaf), data))
    return files
