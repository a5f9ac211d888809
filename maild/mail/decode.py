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
from collections.abc import Iterable
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import decode_params, getaddresses, parsedate_to_datetime, unquote
from types import MappingProxyType

from maild.core.model import Attachment, Inbound
from maild.mail.charsets import decode_bytes, decode_header, decode_raw
from maild.mail.dsn import bounce_signal, failed_recipients, parse_status_text
from maild.mail.htmltext import html_to_text
from maild.mail.sheets import LEGACY, kind_of

__all__ = ["DecodeError", "decode", "decode_bytes", "decode_header", "html_to_text",
           "normalize_message_id"]

MAX_DEPTH = 100  # MIME nesting beyond this is ignored (recorded as a defect)
MAX_COMMENT_DEPTH = 50  # address headers with deeper nested (comments) are unusable
SKELETON_BYTES = 512 * 1024  # emails above this are parsed with their big attachments cut out
ELIDE_BYTES = 64 * 1024  # base64 bodies above this are cut out (sized, never decoded)
SIZE_BY_COUNTING = 64 * 1024  # base64 payloads above this are sized without decoding

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_NEWLINES = re.compile(r"[\r\n]+")
_ANGLED = re.compile(r"<([^<>]*)>")
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_CLEAN_ADDRESS = re.compile(
    r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\.]+(?:\.[^\s@<>()\[\],;:\"\\.]+)*"
)
_ADDRESS_HEADERS = ("delivered-to", "x-original-to", "envelope-to")
# A run of base64 text and line breaks (a single character class: no backtracking stack).
_B64_RUN = re.compile(rb"[A-Za-z0-9+/=\r\n]{%d,}" % (64 * 1024))
_MARKER = re.compile(r"MAILDCUT(\d{8})")  # 16 base64 characters: decodes to 12 bytes
_MARKER_DECODED = 12


class DecodeError(Exception):
    """The bytes cannot be taken as an email; `reason` says why in one word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # "empty" | "too_large" | "header_too_large" | "not_email"


# ── header fields ────────────────────────────────────────────────────────────────────────────


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets or whitespace; None when there is nothing."""
    if value is None:
        return None
    match = _ANGLED.search(value)
    text = "".join((match.group(1) if match else value).split()).strip("<>")
    return text or None


def _message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    found = _ANGLED.findall(value) or re.split(r"[\s,]+", value)
    ids = (normalize_message_id(item) for item in found)
    return tuple(dict.fromkeys(item for item in ids if item))


def _clean_address(address: str, hint: str | None) -> str:
    address = decode_raw(address, hint).strip().lower()
    return address if _CLEAN_ADDRESS.fullmatch(address) else ""


def _getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """`getaddresses`, bounded: its comment parser recurses once per nested `(`, so a header of
    thousands of `(` raised RecursionError out of decode (found by tests/test_hostile.py).
    Nesting deeper than MAX_COMMENT_DEPTH makes the header unusable."""
    for value in values:
        depth = deepest = 0
        for char in value:
            if char == "(":
                depth += 1
                deepest = max(deepest, depth)
            elif char == ")":
                depth = max(0, depth - 1)
        if deepest > MAX_COMMENT_DEPTH:
            return []
    try:
        return getaddresses(values)
    except RecursionError:
        return []


def _addresses(values: Iterable[str], hint: str | None) -> tuple[str, ...]:
    """Clean lower-cased addresses from address headers; unusable entries are dropped."""
    found = (_clean_address(addr, hint) for _name, addr in _getaddresses(list(values)))
    return tuple(dict.fromkeys(addr for addr in found if addr))


def _without_quoted_strings(raw: str) -> str:
    """`raw` with each quoted string replaced by `""`; an unterminated one is kept as it is.

    A linear scan: the regex `"(?:[^"\\]|\\.)*"` it replaces was quadratic on an unterminated
    quote (240 KB of `"a\\` took 184 s of CPU; found by tests/test_hostile.py)."""
    out: list[str] = []
    at = 0
    while True:
        start = raw.find('"', at)
        if start < 0:
            out.append(raw[at:])
            return "".join(out)
        end = start + 1
        while end < len(raw) and raw[end] != '"':
            end += 2 if raw[end] == "\\" else 1
        if end >= len(raw):  # unterminated: nothing after it is quoted
            out.append(raw[at:])
            return "".join(out)
        out.append(raw[at:start] + '""')
        at = end + 1


def _single_sender(raw: str, hint: str | None) -> tuple[str, str]:
    """(address, name) of a From header that is exactly one clean mailbox, else ("", "")."""
    raw = _NEWLINES.sub("", raw)
    pairs = [(name, addr) for name, addr in _getaddresses([raw]) if name or addr]
    if len(pairs) != 1:
        return "", ""
    name, addr = pairs[0]
    address = _clean_address(addr, hint)
    bare = _without_quoted_strings(raw)
    if not address or bare.count("@") != 1 or bare.count("(") != bare.count(")"):
        return "", ""
    if "<" in bare or ">" in bare:
        angled = _ANGLED.findall(bare)
        if len(angled) != 1 or bare.count("<") != 1 or bare.count(">") != 1:
            return "", ""
        if _clean_address(angled[0], hint) != address:
            return "", ""
    return address, decode_header(name, hint)


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# ── MIME parts ───────────────────────────────────────────────────────────────────────────────


def _raw_header(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def _main_value(raw: str | None) -> str:
    return raw.split(";", 1)[0].strip().lower() if raw else ""


def _content_type(part: Message) -> str:
    ctype = _main_value(_raw_header(part, "content-type"))
    return ctype if ctype.count("/") == 1 else "text/plain"


def _param(part: Message, header: str, name: str) -> str | None:
    """One MIME parameter, RFC 2231 and raw 8-bit aware; parsed linearly (no compat32 get_param)."""
    raw = _raw_header(part, header)
    if not raw:
        return None
    raw = _NEWLINES.sub("", raw)
    found = [(key.lower(), val.strip()) for key, val in _PARAM.findall(raw)
             if key.lower().startswith(name)]
    # A whole value (`name=` or `name*=`) and RFC 2231 continuations (`name*0*=`, `name*1*=`)
    # of the same parameter must not reach `decode_params` together: it sorts their numbers
    # with None and raised TypeError (found by the long fuzz run). The first whole value wins.
    whole = [(key, val) for key, val in found if key in (name, name + "*")]
    params = [("", ""), *(whole[:1] or found)]
    for key, value in decode_params(params)[1:]:
        if key != name:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, latin-1 octets)
            charset, _language, text = value
            return decode_bytes(unquote(text).encode("latin-1", "surrogateescape"), charset or None)
        return unquote(value)
    return None


def _filename(part: Message, hint: str | None) -> str:
    value = _param(part, "content-disposition", "filename") or _param(part, "content-type", "name")
    return decode_header(value, hint) if value else ""


def _get_payload(part: Message) -> list[Message] | str | None:
    """`part.get_payload()`, or None when compat32 cannot even look up the part's charset to
    hand back 8-bit text (a NUL in `charset=` raised ValueError; found by fuzz/fuzz_decode.py)."""
    try:
        return part.get_payload()
    except (ValueError, LookupError):
        return None


def _leaves(message: Message) -> tuple[list[Message], bool]:
    """Non-multipart parts in document order, walked iteratively; True when nesting was capped."""
    leaves: list[Message] = []
    capped = False
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        payload = _get_payload(part)
        if not isinstance(payload, list) or _content_type(part).startswith("message/"):
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
    if _main_value(_raw_header(head, "content-transfer-encoding")) != "base64":
        return ""
    attachment = (_main_value(_raw_header(head, "content-disposition")) == "attachment"
                  or _param(head, "content-disposition", "filename") is not None
                  or _param(head, "content-type", "name") is not None)
    if keep_tables and _is_table_file(head, None):
        end = _B64_RUN.match(raw, start)
        if end is not None and (end.end() - start) * 3 // 4 <= keep_tables:
            return "keep"
    return "cut" if attachment or not _content_type(head).startswith("text/") else ""


def _is_table_file(part: Message, hint: str | None) -> bool:
    kind = kind_of(_filename(part, hint), _content_type(part))
    return kind is not None and kind not in LEGACY


def _attachment_size(part: Message, cut_sizes: list[int]) -> int:
    """Decoded size of an attachment without keeping (or, when big, decoding) its payload."""
    payload = _get_payload(part)
    if isinstance(payload, str) and (
        _main_value(_raw_header(part, "content-transfer-encoding")) == "base64"
    ):
        cuts = _MARKER.findall(payload)
        if cuts:
            cut = sum(cut_sizes[int(n)] for n in cuts if int(n) < len(cut_sizes))
            return cut + _counted_base64_size(_MARKER.sub("", payload))
        if len(payload) > SIZE_BY_COUNTING:
            return _counted_base64_size(payload)
    return len(_payload_bytes(part))


def _table_bytes(part: Message, cut_tables: dict[int, bytes]) -> bytes | None:
    """A table file's bytes: decoded here, or kept when its body was cut (`_skeleton`); None
    when its body was cut some other way."""
    payload = _get_payload(part)
    cuts = _MARKER.findall(payload) if isinstance(payload, str) else []
    if not cuts:
        return _payload_bytes(part)
    return cut_tables.get(int(cuts[0])) if len(cuts) == 1 else None


def _counted_base64_size(text: str) -> int:
    """The decoded size of well-formed base64 `text`, by counting (no decoded copy)."""
    whitespace = text.count("\n") + text.count("\r") + text.count(" ") + text.count("\t")
    return max(0, (len(text) - whitespace) * 3 // 4 - text.count("="))


def _payload_bytes(part: Message) -> bytes:
    payload = _get_payload(part)
    if isinstance(payload, list):
        try:
            return b"".join(child.as_bytes() for child in payload if isinstance(child, Message))
        except Exception:  # an attached message that cannot be re-serialised: size unknown
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def attachment_files(raw: bytes, limit: int) -> list[tuple[str, str, bytes]] | None:
    """The files attached to an email, as (filename, content type, bytes), to forward them
    (an owner's deliverable, to the initiator who accepts it); None when together they are
    larger than `limit` bytes. Filenames are read as `decode` reads them (RFC 2231, GBK)."""
    message, _too_deep = _parse(raw)
    leaves, _capped = _leaves(message)
    hint = next((cs for leaf in leaves if _content_type(leaf).startswith("text/")
                 and (cs := _param(leaf, "content-type", "charset"))), None)
    files: list[tuple[str, str, bytes]] = []
    total = 0
    for leaf in leaves:
        filename = _filename(leaf, hint)
        if not (filename or _main_value(_raw_header(leaf, "content-disposition")) == "attachment"):
            continue
        data = _payload_bytes(leaf)
        total += len(data)
        if total > limit:
            return None
        files.append((filename or "attachment", _content_type(leaf), data))
    return files


def _body_text(part: Message) -> str:
    text = decode_bytes(_payload_bytes(part), _param(part, "content-type", "charset"))
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _status_blocks(part: Message) -> list[dict[str, str]]:
    """The per-message and per-recipient field blocks of a delivery-status part."""
    payload = _get_payload(part)
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
            if _content_type(leaf).startswith("text/")
            and (cs := _param(leaf, "content-type", "charset"))
        ),
        None,
    )
    text: str | None = None
    html: str | None = None
    attachments: list[Attachment] = []
    status: list[dict[str, str]] | None = None
    for leaf in leaves:
        ctype = _content_type(leaf)
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            status = (status or []) + _status_blocks(leaf)
            continue
        filename = _filename(leaf, hint)
        if filename or _main_value(_raw_header(leaf, "content-disposition")) == "attachment":
            size = _attachment_size(leaf, cut_sizes)
            data = None
            if 0 < size <= max_table_bytes and _is_table_file(leaf, hint):
                data = _table_bytes(leaf, cut_tables)
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
    from_addr, from_name = _single_sender(senders[0], hint) if len(senders) == 1 else ("", "")
    message_id = normalize_message_id(first("message-id"))
    subject = first("subject") or ""
    in_reply_to = next(iter(_message_ids(first("in-reply-to"))), None)
    bounce = bounce_signal(_content_type(message), first("return-path"), from_addr, subject,
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
        to=_addresses(raw_values("to"), hint),
        cc=_addresses(raw_values("cc"), hint),
        delivered_to=_addresses(raw_values(*_ADDRESS_HEADERS), hint),
        in_reply_to=in_reply_to,
        references=_message_ids(" ".join(headers.get("references", ()))),
        date=_parse_date(first("date")),
        headers=MappingProxyType({key: tuple(values) for key, values in headers.items()}),
        text=text or "",
        html=html,
        attachments=tuple(attachments),
        content_type=_content_type(message),
        raw_size=len(raw),
        defects=tuple(dict.fromkeys(defects)),
        failed_recipients=failed_recipients(status, text or "", bounce is not None),
    )
