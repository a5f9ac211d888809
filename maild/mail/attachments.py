"""An attachment's size and bytes as `decode` reports them: sized without keeping the payload
(base64 counted, not decoded, above `SIZE_BY_COUNTING`; cut-out runs of a big email sized from
their markers), and the bytes kept only for table files (.xlsx/.csv/.docx) the form reader reads.

Pure.
"""

from __future__ import annotations

import re
from email.message import Message

from maild.mail.headers import content_type_of, filename_of, main_value, raw_header
from maild.mail.sheets import LEGACY, kind_of

SIZE_BY_COUNTING = 64 * 1024  # base64 payloads above this are sized without decoding


def is_table_file(part: Message, hint: str | None) -> bool:
    kind = kind_of(filename_of(part, hint), content_type_of(part))
    return kind is not None and kind not in LEGACY


def attachment_size(part: Message, cut_sizes: list[int]) -> int:
    """Decoded size of an attachment without keeping (or, when big, decoding) its payload."""
    payload = payload_of(part)
    if isinstance(payload, str) and (
        main_value(raw_header(part, "content-transfer-encoding")) == "base64"
    ):
        cuts = _MARKER.findall(payload)
        if cuts:
            cut = sum(cut_sizes[int(n)] for n in cuts if int(n) < len(cut_sizes))
            return cut + _counted_base64_size(_MARKER.sub("", payload))
        if len(payload) > SIZE_BY_COUNTING:
            return _counted_base64_size(payload)
    return len(payload_bytes(part))


def table_bytes(part: Message, cut_tables: dict[int, bytes]) -> bytes | None:
    """A table file's bytes: decoded here, or kept when its body was cut (`_skeleton`); None
    when its body was cut some other way."""
    payload = payload_of(part)
    cuts = _MARKER.findall(payload) if isinstance(payload, str) else []
    if not cuts:
        return payload_bytes(part)
    return cut_tables.get(int(cuts[0])) if len(cuts) == 1 else None


def _counted_base64_size(text: str) -> int:
    """The decoded size of well-formed base64 `text`, by counting (no decoded copy)."""
    whitespace = text.count("\n") + text.count("\r") + text.count(" ") + text.count("\t")
    return max(0, (len(text) - whitespace) * 3 // 4 - text.count("="))


def payload_bytes(part: Message) -> bytes:
    payload = payload_of(part)
    if isinstance(payload, list):
        try:
            return b"".join(child.as_bytes() for child in payload if isinstance(child, Message))
        except Exception:  # an attached message that cannot be re-serialised: size unknown
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


_MARKER = re.compile(r"MAILDCUT(\d{8})")  # 16 base64 characters: decodes to 12 bytes



def payload_of(part: Message) -> list[Message] | str | None:
    """`part.get_payload()`, or None when compat32 cannot even look up the part's charset to
    hand back 8-bit text (a NUL in `charset=` raised ValueError; found by fuzz/fuzz_decode.py)."""
    try:
        return part.get_payload()
    except (ValueError, LookupError):
        return None
