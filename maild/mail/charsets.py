"""Charsets as Chinese mail really uses them: text bytes and RFC 2047 header values to Unicode.

`decode_bytes(data, declared)` and `decode_header(value, hint)` are the job. Pure, never raises.

Surprises, all deliberate: charset labels lie — `gb2312` over GBK bytes is normal (王喆, 李堃,
朱镕) — so the gb family is decoded as gb18030 and big5 as big5hkscs; the declared charset, utf-8
and gb18030 are tried strictly before anything is replaced. Raw 8-bit header bytes (compat32 keeps
them as surrogate escapes) are tried as utf-8, then as the body's charset. Adjacent encoded-words
of one charset are joined before decoding, so a character split across two words survives.
"""

from __future__ import annotations

import binascii
import codecs
import re
from types import MappingProxyType

# Charset labels whose declared codec is known to be too narrow for what clients actually send.
_GB_LABELS = "gb2312 gbk cp936 x-gbk euc-cn x-euc-cn gb-2312-80 gb-2312 csgb2312 chinese gb18030"
_BIG5_LABELS = "big5 big5-hkscs big5hkscs x-x-big5 cn-big5 csbig5 x-big5 cp950 ms950"
_CHARSET_ALIASES = MappingProxyType(
    dict.fromkeys(_GB_LABELS.split(), ("gb18030",))
    | dict.fromkeys(_BIG5_LABELS.split(), ("big5hkscs", "cp950"))
)
_NEWLINES = re.compile(r"[\r\n]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?([bBqQ])\?(.*?)\?=", re.DOTALL)
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*")


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


def to_bytes(text: str) -> bytes:
    """Bytes behind a compat32 string: surrogate escapes back to their 8-bit bytes."""
    return text.encode("utf-8", "surrogateescape")


def decode_raw(text: str, hint: str | None) -> str:
    """Header text that may carry raw 8-bit bytes: utf-8 first, then the body's charset."""
    if text.isascii():
        return text
    data = to_bytes(text)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return decode_bytes(data, hint)


def _decode_word(encoding: str, text: str) -> bytes | None:
    """The bytes of one encoded-word's payload; None when it is not decodable."""
    payload = to_bytes(text)
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
        decode_bytes(chunk[1], chunk[0]) if isinstance(chunk, tuple) else decode_raw(chunk, hint)
        for chunk in chunks
    ]
    return _NEWLINES.sub(" ", "".join(parts)).strip()
