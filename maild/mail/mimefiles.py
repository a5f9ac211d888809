"""The MIME body of an outgoing email that carries files: multipart/mixed around the alternative.

The one job is `with_files(seed, text_parts, files)` → (Content-Type header, body bytes), used by
`mime.to_mime` when an `Outgoing` has attachments. Pure and deterministic (boundaries come
from `seed`, so the same email always gives the same bytes). Surprises:

- A calendar entry (`inline=True`, text/calendar; method=REQUEST) goes inside the
  multipart/alternative beside the text and HTML, *and* once more as an `invite.ics` attachment:
  Outlook and Gmail offer Accept/Decline for the former, other clients import the latter
  (the shape Google Calendar's own invitations have).
- File names are RFC 2231 (`filename*=utf-8''…`) with an RFC 2047 `name=` beside it for
  Outlook; bodies are base64 in 76-column lines.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from urllib.parse import quote

from maild.core.model import FileAttachment


def with_files(seed: str, text_parts: Sequence[bytes], files: Sequence[FileAttachment]
               ) -> tuple[str, bytes]:
    """(the top-level Content-Type header line, the body after the blank line)."""
    mixed = seed.replace("=_maild_", "=_maild_m_", 1)
    alternative = seed.replace("=_maild_", "=_maild_a_", 1)
    inner = list(text_parts) + [_calendar_part(f) for f in files if f.inline]
    alt_body = b"".join(_delimiter(alternative) + part for part in inner)
    alt_body += f"\r\n--{alternative}--\r\n".encode("ascii")
    parts = [f'Content-Type: multipart/alternative;\r\n boundary="{alternative}"\r\n'.encode(
        "ascii") + alt_body]
    parts += [_file_part(f) for f in files]
    body = b"".join(_delimiter(mixed) + part for part in parts)
    body += f"\r\n--{mixed}--\r\n".encode("ascii")
    return f'Content-Type: multipart/mixed;\r\n boundary="{mixed}"', body


def _delimiter(boundary: str) -> bytes:
    return f"\r\n--{boundary}\r\n".encode("ascii")


def _base64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n").rstrip(b"\r\n")


def _calendar_part(file: FileAttachment) -> bytes:
    head = (f"Content-Type: {_ascii(file.content_type)}\r\n"
            "Content-Transfer-Encoding: base64")
    return head.encode("ascii") + b"\r\n\r\n" + _base64(file.data)


def _file_part(file: FileAttachment) -> bytes:
    name = file.filename
    media = "application/ics" if file.inline else file.content_type.split(";")[0].strip()
    if file.inline:
        name = name if name.endswith(".ics") else "invite.ics"
    encoded_name = _quoted(name)
    head = (f"Content-Type: {_ascii(media)};\r\n name=\"{_encoded_word(name)}\"\r\n"
            f"Content-Disposition: attachment;\r\n filename*=utf-8''{encoded_name}\r\n"
            "Content-Transfer-Encoding: base64")
    return head.encode("ascii") + b"\r\n\r\n" + _base64(file.data)


def _ascii(value: str) -> str:
    if not value.isascii() or "\r" in value or "\n" in value:
        raise ValueError(f"content type must be one ASCII line: {value!r}")
    return value


def _quoted(name: str) -> str:
    return quote(name.replace("\r", "").replace("\n", ""), safe="")


def _encoded_word(name: str) -> str:
    clean = name.replace("\r", "").replace("\n", "").replace('"', "")
    if clean.isascii():
        return clean
    return "=?utf-8?b?" + base64.b64encode(clean.encode("utf-8")).decode("ascii") + "?="
