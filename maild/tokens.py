"""HMAC-signed reply tokens: which item, task and person a reply address belongs to.

A token rides in the reply address (`collab+md0012-t1-k3j5h2m9qa@corp.example`) so a reply finds
its task even when the subject was edited and threading headers were dropped. It is bound to the
item, the task (or `i` for the item itself) and the address it was sent to; the signature is
lower-case base32 because some servers lower-case local parts.

A token issued with a date carries its issue day (days since 2020-01-01, base 36:
`collab+md0012-t1-1y2-k3j5h2m9qa@`), covered by the signature; `find` refuses it once it is older
than `max_age_days` on the `today` it is given (no clock is read here). Tokens from before dates
were added have no day: they are still read (they are signed all the same) and never expire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date, timedelta

SIGNATURE_LENGTH = 10
MAX_AGE_DAYS = 365
EPOCH = date(2020, 1, 1)
TOKEN_RE = re.compile(r"\+(md\d{1,9})-(t\d{1,4}|i)-(?:([0-9a-z]{1,4})-)?([a-z2-7]{"
                      + str(SIGNATURE_LENGTH) + r"})@", re.IGNORECASE)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
SUBJECT_TAG_RE = re.compile(r"\[\s*(MD-\d{1,9})(?:\s+(T-\d{1,4}))?\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyToken:
    item_id: str  # "MD-0012"
    task_id: str | None  # "T-1", or None for the item itself
    address: str  # whom it was issued to
    issued: date | None = None  # the day it was issued; None for tokens without a date


def _day_text(day: date) -> str:
    number = max(0, (day - EPOCH).days)
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if not number:
            return text


def _signature(secret: bytes, item_id: str, task_id: str | None, address: str,
               day: str | None = None) -> str:
    message = f"{item_id.upper()}|{task_id or 'item'}|{address.lower()}"
    if day is not None:
        message += f"|{day}"
    digest = hmac.new(secret, message.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:SIGNATURE_LENGTH]


def issue(secret: bytes, token: ReplyToken) -> str:
    """The token text for a reply address: `md0012-t1-<day>-<signature>` (`md0012-t1-<signature>`
    when the token has no issue day)."""
    item_part = token.item_id.replace("-", "").lower()
    task_part = token.task_id.replace("-", "").lower() if token.task_id else "i"
    day = _day_text(token.issued) if token.issued is not None else None
    signature = _signature(secret, token.item_id, token.task_id, token.address, day)
    return f"{item_part}-{task_part}-{day}-{signature}" if day else f"{item_part}-{task_part}-{signature}"


def reply_address(inbox: str, token_text: str) -> str:
    local, _, domain = inbox.partition("@")
    return f"{local}+{token_text}@{domain}"


def find(secret: bytes, addresses: tuple[str, ...] | list[str], sender: str, *,
         today: date | None = None, max_age_days: int = MAX_AGE_DAYS) -> ReplyToken | None:
    """The first valid token among `addresses` that was issued to `sender`; forged ones are
    skipped, and so are dated ones older than `max_age_days` on `today` (when given)."""
    for address in addresses:
        match = TOKEN_RE.search(address)
        if not match:
            continue
        item_part, task_part, day, signature = (g.lower() if g else None for g in match.groups())
        assert item_part and task_part and signature
        item_id = "MD-" + item_part[2:]
        task_id = None if task_part == "i" else "T-" + task_part[1:]
        expected = _signature(secret, item_id, task_id, sender, day)
        if not hmac.compare_digest(expected, signature):
            continue
        issued = EPOCH + timedelta(days=int(day, 36)) if day else None
        if issued and today and (today - issued).days > max_age_days:
            continue  # expired
        return ReplyToken(item_id, task_id, sender.lower(), issued)
    return None


def unverified_item(addresses: tuple[str, ...] | list[str]) -> tuple[str, str | None] | None:
    """Item and task named by a token whose signature we could not check against the sender."""
    for address in addresses:
        match = TOKEN_RE.search(address)
        if match:
            item_part, task_part = match.group(1).lower(), match.group(2).lower()
            return "MD-" + item_part[2:], (None if task_part == "i" else "T-" + task_part[1:])
    return None


def subject_tag(subject: str) -> tuple[str, str | None] | None:
    match = SUBJECT_TAG_RE.search(subject)
    if not match:
        return None
    return match.group(1).upper(), (match.group(2).upper() if match.group(2) else None)
