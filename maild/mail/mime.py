"""An `Outgoing` email as RFC 5322 bytes (`to_mime`): headers folded and RFC 2047-encoded,
addresses checked, text and HTML as multipart/alternative (files around it: `mimefiles`).

Pure and deterministic: the MIME boundary derives from the Message-ID and the content, so a
resend of the same `Outgoing` is byte-identical. CR, LF or NUL in any header value is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from email.utils import getaddresses

from maild.core.model import Outgoing
from maild.mail.mimefiles import with_files
from maild.mail.newlines import unix_newlines

_MSGID_BAD = re.compile(r"[\s<>]")


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
    check_msgid(out.message_id)
    _require_ascii("Message-ID", out.message_id)
    # Ids from inbound mail that cannot go on a 7-bit line (or our own stand-ins) are left out.
    refs = [r for r in out.references if _is_real_msgid(r)]
    for ref in refs:
        check_msgid(ref)
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
        check_msgid(out.in_reply_to)
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
    data = unix_newlines(body).replace("\n", "\r\n").encode("utf-8")
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


def _is_real_msgid(msgid: str) -> bool:
    """False for the "sha256:…" stand-ins decode.py invents for emails without a Message-ID."""
    return bool(msgid) and not msgid.startswith("sha256:")


def check_msgid(msgid: str) -> None:
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
