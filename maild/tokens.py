"""HMAC-signed reply tokens: which item, task and person a reply address belongs to.

A token rides in the reply address (`collab+md0012-t1-k3j5h2m9qa@corp.example`) so a reply finds
its task even when the subject was edited and threading headers were dropped. It is bound to the
item, the task (or `i` for the item itself) and the address it was sent to; the signature is
lower-case base32 because some servers lower-case local parts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

SIGNATURE_LENGTH = 10
TOKEN_RE = re.compile(r"\+(md\d{1,9})-(t\d{1,4}|i)-([a-z2-7]{" + str(SIGNATURE_LENGTH) + r"})@",
                      re.IGNORECASE)
SUBJECT_TAG_RE = re.compile(r"\[\s*(MD-\d{1,9})(?:\s+(T-\d{1,4}))?\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyToken:
    item_id: str  # "MD-0012"
    task_id: str | None  # "T-1", or None for the item itself
    address: str  # whom it was issued to


def _signature(secret: bytes, item_id: str, task_id: str | None, address: str) -> str:
    message = f"{item_id.upper()}|{task_id or 'item'}|{address.lower()}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:SIGNATURE_LENGTH]


def issue(secret: bytes, token: ReplyToken) -> str:
    """The token text for a reply address: `md0012-t1-<signature>`."""
    item_part = token.item_id.replace("-", "").lower()
    task_part = token.task_id.replace("-", "").lower() if token.task_id else "i"
    return f"{item_part}-{task_part}-{_signature(secret, token.item_id, token.task_id, token.address)}"


def reply_address(inbox: str, token_text: str) -> str:
    local, _, domain = inbox.partition("@")
    return f"{local}+{token_text}@{domain}"


def find(secret: bytes, addresses: tuple[str, ...] | list[str], sender: str) -> ReplyToken | None:
    """The first valid token among `addresses` that was issued to `sender`; forged ones are skipped."""
    for address in addresses:
        match = TOKEN_RE.search(address)
        if not match:
            continue
        item_part, task_part, signature = (g.lower() for g in match.groups())
        item_id = "MD-" + item_part[2:]
        task_id = None if task_part == "i" else "T-" + task_part[1:]
        expected = _signature(secret, item_id, task_id, sender)
        if hmac.compare_digest(expected, signature):
            return ReplyToken(item_id, task_id, sender.lower())
    return None


def unverified_item(addresses: tuple[str, ...] | list[str]) -> tuple[str, str | None] | None:
    """Item and task named by a token whose signature we could not check against the sender."""
    for address in addresses:
        match = TOKEN_RE.search(address)
        if match:
            item_part, task_part, _ = (g.lower() for g in match.groups())
            return "MD-" + item_part[2:], (None if task_part == "i" else "T-" + task_part[1:])
    return None


def subject_tag(subject: str) -> tuple[str, str | None] | None:
    match = SUBJECT_TAG_RE.search(subject)
    if not match:
        return None
    return match.group(1).upper(), (match.group(2).upper() if match.group(2) else None)
