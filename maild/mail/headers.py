"""An email's header values as `decode` reads them: Message-IDs, addresses, the date, and MIME
parameters (content type, file name), taken raw and decoded here.

Pure. Surprises: addresses are parsed before their encoded-words are decoded (RFC 2047 §6.1),
so a decoded name cannot inject syntax, and a From that is not exactly one clean
`local@domain` reads as no sender (CVE-2023-27043). MIME parameters are read with a linear
pattern, since compat32's parser is quadratic on `;`-stuffed headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.message import Message
from email.utils import decode_params, getaddresses, parsedate_to_datetime, unquote

from maild.mail.charsets import decode_bytes, decode_header, decode_raw

MAX_COMMENT_DEPTH = 50  # address headers with deeper nested (comments) are unusable


_NEWLINES = re.compile(r"[\r\n]+")


_ANGLED = re.compile(r"<([^<>]*)>")


_PARAM = re.compile(r';\s*([^\s=;"]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')


_CLEAN_ADDRESS = re.compile(
    r"[^\s@<>()\[\],;:\"\\]+@[^\s@<>()\[\],;:\"\\.]+(?:\.[^\s@<>()\[\],;:\"\\.]+)*"
)


ADDRESS_HEADERS = ("delivered-to", "x-original-to", "envelope-to")


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID without angle brackets or whitespace; None when there is nothing."""
    if value is None:
        return None
    match = _ANGLED.search(value)
    text = "".join((match.group(1) if match else value).split()).strip("<>")
    return text or None


def message_ids(value: str | None) -> tuple[str, ...]:
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
    thousands of `(` raised RecursionError out of decode (found by tests/conversations/test_hostile.py).
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


def addresses_in(values: Iterable[str], hint: str | None) -> tuple[str, ...]:
    """Clean lower-cased addresses from address headers; unusable entries are dropped."""
    found = (_clean_address(addr, hint) for _name, addr in _getaddresses(list(values)))
    return tuple(dict.fromkeys(addr for addr in found if addr))


def _without_quoted_strings(raw: str) -> str:
    """`raw` with each quoted string replaced by `""`; an unterminated one is kept as it is.

    A linear scan: the regex `"(?:[^"\\]|\\.)*"` it replaces was quadratic on an unterminated
    quote (240 KB of `"a\\` took 184 s of CPU; found by tests/conversations/test_hostile.py)."""
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


def single_sender(raw: str, hint: str | None) -> tuple[str, str]:
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


def parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def raw_header(part: Message, name: str) -> str | None:
    for key, value in part.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return None


def main_value(raw: str | None) -> str:
    return raw.split(";", 1)[0].strip().lower() if raw else ""


def content_type_of(part: Message) -> str:
    ctype = main_value(raw_header(part, "content-type"))
    return ctype if ctype.count("/") == 1 else "text/plain"


def param(part: Message, header: str, name: str) -> str | None:
    """One MIME parameter, RFC 2231 and raw 8-bit aware; parsed linearly (no compat32 get_param)."""
    raw = raw_header(part, header)
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


def filename_of(part: Message, hint: str | None) -> str:
    value = param(part, "content-disposition", "filename") or param(part, "content-type", "name")
    return decode_header(value, hint) if value else ""
