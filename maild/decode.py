"""Turn the raw bytes of one email into an `Inbound`: headers, charsets, body text, attachments.

Surprises, all deliberate:

- Size limits are checked on the raw bytes *before* parsing; the header block is everything up to
  the first blank line.
- Parsing uses stdlib `email` with `policy.compat32` (`policy.default`'s header parser takes
  minutes on ~40 KB of crafted header). Header values and MIME parameters are read raw
  (`raw_items`) and decoded here: compat32 would hand back `Header` objects for 8-bit bytes and its
  parameter parser is quadratic on `;`-stuffed headers.
- Chinese charset labels lie: `gb2312` over GBK bytes is normal (王喆, 李堃), so the gb family is
  decoded as gb18030 and big5 as big5hkscs — in bodies and in headers (encoded-words and raw 8-bit).
  Decoding never raises: declared charset, utf-8 and gb18030 are tried strictly before replacing.
- Addresses are parsed before their encoded-words are decoded (RFC 2047 §6.1), so a decoded name
  cannot inject syntax. A From that is not exactly one clean `local@domain` gives `from_addr ""`
  (CVE-2023-27043: `alice@allowed.org)<attacker@evil.test>` must not pass as alice).
- The MIME tree is walked iteratively with a depth cap; `message/*` parts are not descended into.
"""

from __future__ import annotations

import binascii
import codecs
import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import decode_params, getaddresses, parsedate_to_datetime, unquote
from html.parser import HTMLParser
from types import MappingProxyType

from maild.model import Attachment, Inbound

MAX_DEPTH = 100  # MIME nesting beyond this is ignored (recorded as a defect)

# Charset labels whose declared codec is known to be too narrow for what clients actually send.
_GB_LABELS = "gb2312 gbk cp936 x-gbk euc-cn x-euc-cn gb-2312-80 gb-2312 csgb2312 chinese gb18030"
_BIG5_LABELS = "big5 big5-hkscs big5hkscs x-x-big5 cn-big5 csbig5 x-big5 cp950 ms950"
_CHARSET_ALIASES = MappingProxyType(
    dict.fromkeys(_GB_LABELS.split(), ("gb18030",))
    | dict.fromkeys(_BIG5_LABELS.split(), ("big5hkscs", "cp950"))
)
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
_NEWLINES = re.compile(r"[\r\n]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?([bBqQ])\?(.*?)\?=", re.DOTALL)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")
_ANGLED = re.compile(r"<([^<>]*)>")
_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_CLEAN_ADDRESS = re.compile(
    r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\.]+(?:\.[^\s@<>()\[\],;:\"\\.]+)*"
)
_QUOTED_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ADDRESS_HEADERS = ("delivered-to", "x-original-to", "envelope-to")


class DecodeError(Exception):
    """The bytes cannot be taken as an email; `reason` says why in one word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason  # "empty" | "too_large" | "header_too_large" | "not_email"


# ── charsets ─────────────────────────────────────────────────────────────────────────────────


def _codecs_for(label: str | None) -> tuple[str, ...]:
    """Codec names to try for a declared charset label, widest first; () when unusable."""
    if not label:
        return ()
    name = label.strip().strip("\"'").lower().replace("_", "-")
    if name in _CHARSET_ALIASES:
        return _CHARSET_ALIASES[name]
    if not name or len(name) > 40:
        return ()
    try:
        found = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):
        return ()
    return _CHARSET_ALIASES.get(found.replace("_", "-"), (found,))


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode text bytes: declared (aliased) charset, utf-8, gb18030 strictly; then replace."""
    declared_codecs = _codecs_for(declared)
    for name in (*declared_codecs, "utf-8", "gb18030"):
        try:
            return data.decode(name)
        except (LookupError, ValueError, TypeError):
            continue
    for name in (*declared_codecs[:1], "utf-8"):
        try:
            return data.decode(name, errors="replace")
        except (LookupError, ValueError, TypeError):
            continue
    return data.decode("utf-8", errors="replace")  # pragma: no cover - utf-8 replace cannot fail


def _to_bytes(text: str) -> bytes:
    """Bytes behind a compat32 string: surrogate escapes back to their 8-bit bytes."""
    return text.encode("utf-8", "surrogateescape")


def _decode_raw(text: str, hint: str | None) -> str:
    """Header text that may carry raw 8-bit bytes: utf-8 first, then the body's charset."""
    if text.isascii():
        return text
    data = _to_bytes(text)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(data, hint)


def _decode_word(encoding: str, text: str) -> bytes | None:
    """The bytes of one encoded-word's payload; None when it is not decodable."""
    payload = _to_bytes(text)
    try:
        if encoding in "bB":
            payload = re.sub(rb"\s", b"", payload).rstrip(b"=")
            if not _BASE64.fullmatch(payload) or len(payload) % 4 == 1:
                return None
            return binascii.a2b_base64(payload + b"=" * (-len(payload) % 4))
        return binascii.a2b_qp(re.sub(rb"\s", b"", payload), header=True)
    except (binascii.Error, ValueError):
        return None


def decode_header(value: str, hint: str | None = None) -> str:
    """Decode a raw header value: unfold, RFC 2047 encoded-words (adjacent ones joined), raw 8-bit."""
    value = _NEWLINES.sub("", value)
    chunks: list[str | tuple[str, bytes]] = []  # raw text, or (charset, bytes) of encoded-words
    literal_start = 0
    for match in _ENCODED_WORD.finditer(value):
        data = _decode_word(match.group(2), match.group(3))
        if data is None:
            continue
        literal = value[literal_start : match.start()]
        if literal and not (literal.isspace() and chunks and isinstance(chunks[-1], tuple)):
            chunks.append(literal)
        charset = match.group(1).lower()
        previous = chunks[-1] if chunks else None
        if isinstance(previous, tuple) and previous[0] == charset:
            chunks[-1] = (charset, previous[1] + data)
        else:
            chunks.append((charset, data))
        literal_start = match.end()
    chunks.append(value[literal_start:])
    parts = [
        decode_bytes(chunk[1], chunk[0]) if isinstance(chunk, tuple) else _decode_raw(chunk, hint)
        for chunk in chunks
    ]
    return _NEWLINES.sub(" ", "".join(parts)).strip()


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
    address = _decode_raw(address, hint).strip().lower()
    return address if _CLEAN_ADDRESS.fullmatch(address) else ""


def _addresses(values: Iterable[str], hint: str | None) -> tuple[str, ...]:
    """Clean lower-cased addresses from address headers; unusable entries are dropped."""
    found = (_clean_address(addr, hint) for _name, addr in getaddresses(list(values)))
    return tuple(dict.fromkeys(addr for addr in found if addr))


def _single_sender(raw: str, hint: str | None) -> tuple[str, str]:
    """(address, name) of a From header that is exactly one clean mailbox, else ("", "")."""
    raw = _NEWLINES.sub("", raw)
    pairs = [(name, addr) for name, addr in getaddresses([raw]) if name or addr]
    if len(pairs) != 1:
        return "", ""
    name, addr = pairs[0]
    address = _clean_address(addr, hint)
    bare = _QUOTED_STRING.sub('""', raw)
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
    params = [("", "")]
    params += [
        (key.lower(), val.strip())
        for key, val in _PARAM.findall(raw)
        if key.lower().startswith(name)
    ]
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


def _leaves(message: Message) -> tuple[list[Message], bool]:
    """Non-multipart parts in document order, walked iteratively; True when nesting was capped."""
    leaves: list[Message] = []
    capped = False
    stack: list[tuple[Message, int]] = [(message, 0)]
    while stack:
        part, depth = stack.pop()
        payload = part.get_payload()
        if not isinstance(payload, list) or _content_type(part).startswith("message/"):
            leaves.append(part)
        elif depth >= MAX_DEPTH:
            capped = True
        else:
            stack.extend(
                (child, depth + 1) for child in reversed(payload) if isinstance(child, Message)
            )
    return leaves, capped


def _payload_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):
        try:
            return b"".join(child.as_bytes() for child in payload if isinstance(child, Message))
        except Exception:  # an attached message that cannot be re-serialised: size unknown
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _body_text(part: Message) -> str:
    text = decode_bytes(_payload_bytes(part), _param(part, "content-type", "charset"))
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _parse(raw: bytes) -> tuple[Message, bool]:
    try:
        return message_from_bytes(raw, policy=compat32), False
    except RecursionError:
        return BytesHeaderParser(policy=compat32).parsebytes(raw), True


# ── the entry point ──────────────────────────────────────────────────────────────────────────


def decode(
    raw: bytes, *, max_bytes: int = 25 * 2**20, max_header_bytes: int = 256 * 1024
) -> Inbound:
    """Decode one email; raises DecodeError only for empty, oversized or non-email input."""
    if not raw or raw.isspace():
        raise DecodeError("empty")
    if len(raw) > max_bytes:
        raise DecodeError("too_large", f"{len(raw)} bytes > {max_bytes}")
    blank = _BLANK_LINE.search(raw, 0, max_header_bytes + 4)
    header_size = blank.start() if blank else len(raw)
    if header_size > max_header_bytes:
        raise DecodeError("header_too_large", f"header > {max_header_bytes} bytes")

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
    for leaf in leaves:
        ctype = _content_type(leaf)
        filename = _filename(leaf, hint)
        if filename or _main_value(_raw_header(leaf, "content-disposition")) == "attachment":
            attachments.append(Attachment(filename, ctype, len(_payload_bytes(leaf))))
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
    defects = [type(defect).__name__ for leaf in (message, *leaves) for defect in leaf.defects]
    flags = {"missing_message_id": not message_id, "unusable_from": not from_addr}
    flags["nesting_too_deep"] = too_deep or capped
    defects += [name for name, bad in flags.items() if bad]
    return Inbound(
        message_id=message_id or "sha256:" + hashlib.sha256(raw).hexdigest(),
        subject=first("subject") or "",
        from_addr=from_addr,
        from_name=from_name,
        to=_addresses(raw_values("to"), hint),
        cc=_addresses(raw_values("cc"), hint),
        delivered_to=_addresses(raw_values(*_ADDRESS_HEADERS), hint),
        in_reply_to=next(iter(_message_ids(first("in-reply-to"))), None),
        references=_message_ids(" ".join(headers.get("references", ()))),
        date=_parse_date(first("date")),
        headers=MappingProxyType({key: tuple(values) for key, values in headers.items()}),
        text=text or "",
        html=html,
        attachments=tuple(attachments),
        content_type=_content_type(message),
        raw_size=len(raw),
        defects=tuple(dict.fromkeys(defects)),
    )


# ── HTML to text ─────────────────────────────────────────────────────────────────────────────

_BLOCK_TAGS = frozenset(
    "address article aside blockquote center dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p section summary ul".split()
)
_HIDDEN_TAGS = frozenset("script style title noscript template".split())  # not head: often unclosed
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


class _TextExtractor(HTMLParser):
    """Collects readable lines: blocks break lines, table rows become `cell | cell` lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.tables: list[tuple[list[str], list[str] | None]] = []  # (cells of the row, open cell)

    def _cell(self) -> list[str] | None:
        """The innermost open table cell: text inside a nested table lands in its outer cell."""
        return next((cell for _row, cell in reversed(self.tables) if cell is not None), None)

    def _write(self, text: str) -> None:
        cell = self._cell()
        if cell is not None:
            cell.append(text.replace("\n", " "))
            return
        first, *rest = text.split("\n")
        self.current.append(first)
        for line in rest:
            self._flush(hard=True)
            self.current.append(line)

    def _flush(self, hard: bool = False) -> None:
        cell = self._cell()
        if cell is not None:
            cell.append(" ")
        elif hard or "".join(self.current).strip(" "):
            self.lines.append("".join(self.current))
            self.current = []

    def _emit_line(self, line: str) -> None:
        self._flush()
        cell = self._cell()
        if cell is not None:
            cell.append(f" {line} ")
        else:
            self.lines.append(line)

    def _end_cell(self) -> None:
        if self.tables and self.tables[-1][1] is not None:
            row, cell = self.tables[-1]
            row.append(_HTML_SPACE.sub(" ", "".join(cell or ())).replace("\xa0", " ").strip())
            self.tables[-1] = (row, None)

    def _end_row(self) -> None:
        self._end_cell()
        if self.tables:
            row, _ = self.tables[-1]
            self.tables[-1] = ([], None)
            if any(row):
                self._emit_line(" | ".join(row))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif self.hidden:
            return
        elif tag == "br":
            self._flush(hard=True)
        elif tag == "table":
            self._flush()
            self.tables.append(([], None))
        elif tag == "tr":
            self._end_row()
        elif tag in ("td", "th") and self.tables:
            self._end_cell()
            self.tables[-1] = (self.tables[-1][0], [])
        elif tag == "pre":
            self.pre += 1
            self._flush()
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif self.hidden:
            return
        elif tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()
        elif tag == "table" and self.tables:
            self._end_row()
            self.tables.pop()
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._flush()
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self._write(data if self.pre else _HTML_SPACE.sub(" ", data))

    def text(self) -> str:
        while self.tables:
            self._end_row()
            self.tables.pop()
        self._flush()
        lines = [line.replace("\xa0", " ").strip() for line in self.lines]
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """Readable text from HTML: blocks and <br> break lines, table rows become `a | b` lines."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - malformed markup, keep what we have
        pass
    return parser.text()
