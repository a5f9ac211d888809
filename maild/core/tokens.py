"""HMAC-signed reply tokens: which item, task, person and action a reply address belongs to.

A token rides in the reply address (`collab+md0012-t1-1y2-cab3d-k3j5h2m9qa@corp.example`) so a
reply finds its task even when the subject was edited and threading headers were dropped. It is
bound to the item, the task (or `i` for the item itself), the address it was sent to, its issue
day (days since 2020-01-01, base 36) and an action part: one letter for the action it may carry
(`r` any reply, `c` confirm, `x` decline, `p` progress, `d` done, …) plus a 4-letter nonce taken
from the Message-ID of the email it came in, so every email's tokens are its own. The signature
is lower-case base32 because some servers lower-case local parts.

`find` refuses a dated token once it is older than `max_age_days` on the `today` it is given (no
clock is read here). Tokens from before dates or actions were added are still read (they are
signed all the same): they carry any reply and, without a date, never expire. Whether a token was
already used is the workflow's business (`ReplyToken.use_key`); this module only reads and signs.

Servers without plus addressing (Tencent Exmail, Alibaba Mail, on-prem Exchange) cannot carry a
token in the address: there the same token rides in the subject tag instead,
`[MD-0012 T-1 #1y2-ck3j5-k3j5h2m9qa]` (`subject_tag_for`, `tag_subject`), and
`subject_addresses` turns such tags back into the address form every reader here takes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

SIGNATURE_LENGTH = 10
NONCE_LENGTH = 4
MAX_AGE_DAYS = 365
EPOCH = date(2020, 1, 1)
# The command an action-bound token may carry, by the letter in its address. "reply" carries any.
# The initiator's (and admins') own actions: `accept` a delay request (同意延期), `reschedule` a
# task (改期: a new deadline), `withdraw` the item (撤销).
ACTION_CODES = {"reply": "r", "confirm": "c", "decline": "x", "progress": "p", "status": "s",
                "done": "d", "blocker": "b", "delay": "l", "reassign": "a", "close": "z",
                "accept": "g", "reschedule": "m", "withdraw": "w", "approve": "v", "return": "u",
                "stop": "o"}
_ACTION_BY_CODE = {code: action for action, code in ACTION_CODES.items()}
TOKEN_RE = re.compile(r"\+(md\d{1,9})-(t\d{1,4}|i)-(?:([0-9a-z]{1,4})-)?"
                      r"(?:([" + "".join(ACTION_CODES.values()) + r"])([a-z2-7]{"
                      + str(NONCE_LENGTH) + r"})-)?([a-z2-7]{" + str(SIGNATURE_LENGTH) + r"})@",
                      re.IGNORECASE)
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# `[MD-0012]`, `[MD-0012 T-1]`, and with a token where the server has no plus addressing:
# `[MD-0012 T-1 #1y2-ck3j5-k3j5h2m9qa]` (day, action and nonce, signature).
SUBJECT_TAG_RE = re.compile(r"\[\s*(MD-\d{1,9})(?:\s+(T-\d{1,4}))?(?:\s+#\s*([0-9a-z-]{10,40}))?"
                            r"\s*\]", re.IGNORECASE)


@dataclass(frozen=True)
class ReplyToken:
    item_id: str  # "MD-0012"
    task_id: str | None  # "T-1", or None for the item itself
    address: str  # whom it was issued to
    issued: date | None = None  # the day it was issued; None for tokens without a date
    action: str = "reply"  # the one command it may carry; "reply" carries any
    nonce: str = ""  # from the email it came in; "" for tokens from before actions were added
    signature: str = field(default="", compare=False)  # set by `find`

    @property
    def use_key(self) -> str:
        """What marks this token used: its signature, unique to its email and action."""
        return self.signature


@dataclass(frozen=True)
class TokenReading:
    """What the recipient addresses of a reply say about its item, checked against its sender."""

    item_id: str
    task_id: str | None
    token: ReplyToken | None  # valid for the sender and not expired; None otherwise
    problem: str  # "" | "expired" | "unverified" (issued to someone else, or tampered with)
    text: str  # the token as found, for `issued_to`


def nonce_for(message_id: str) -> str:
    """The nonce of the tokens in the email with this Message-ID."""
    digest = hashlib.sha256(message_id.encode("utf-8", "replace")).digest()
    return base64.b32encode(digest).decode().lower()[:NONCE_LENGTH]


def _day_text(day: date) -> str:
    number = max(0, (day - EPOCH).days)
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = _DIGITS[digit] + text
        if not number:
            return text


def _signature(secret: bytes, item_id: str, task_id: str | None, address: str,
               day: str | None = None, action_part: str | None = None) -> str:
    message = f"{item_id.upper()}|{task_id or 'item'}|{address.lower()}"
    if day is not None:
        message += f"|{day}"
    if action_part is not None:
        message += f"|{action_part}"
    # The first 10 base32 letters are the digest's first 50 bits: written 10 bits (two letters)
    # at a time, what `base64.b32encode(digest[:7]).lower()[:10]` writes, at a fifth of its cost
    # (a digest of 200 rows signs ~800 addresses).
    bits = int.from_bytes(hmac.digest(secret, message.encode(), "sha256")[:7], "big") >> 6
    pairs = _B32_PAIRS
    return (pairs[bits >> 40] + pairs[(bits >> 30) & 1023] + pairs[(bits >> 20) & 1023]
            + pairs[(bits >> 10) & 1023] + pairs[bits & 1023])


_B32 = "abcdefghijklmnopqrstuvwxyz234567"
_B32_PAIRS = tuple(a + b for a in _B32 for b in _B32)  # 10 bits → two lower-case letters


def issue(secret: bytes, token: ReplyToken) -> str:
    """The token text for a reply address: `md0012-t1-<day>-<action><nonce>-<signature>`; the
    day part is left out for tokens without an issue day, the action part for tokens that carry
    any reply and have no nonce."""
    if token.action not in ACTION_CODES:
        raise ValueError(f"no token action {token.action!r}")
    item_part = token.item_id.replace("-", "").lower()
    task_part = token.task_id.replace("-", "").lower() if token.task_id else "i"
    day = _day_text(token.issued) if token.issued is not None else None
    action_part = None
    if token.nonce or token.action != "reply":
        nonce = (token.nonce or "a" * NONCE_LENGTH).lower()
        if len(nonce) != NONCE_LENGTH or not re.fullmatch(r"[a-z2-7]+", nonce):
            raise ValueError(f"bad token nonce {token.nonce!r}")
        action_part = ACTION_CODES[token.action] + nonce
    signature = _signature(secret, token.item_id, token.task_id, token.address, day, action_part)
    return "-".join(p for p in (item_part, task_part, day, action_part, signature) if p)


def reply_address(inbox: str, token_text: str) -> str:
    local, _, domain = inbox.partition("@")
    return f"{local}+{token_text}@{domain}"


def action_addresses(secret: bytes, inbox: str, item_id: str, task_id: str | None, to: str,
                     issued: date | None, message_id: str,
                     actions: Iterable[str] = tuple(ACTION_CODES), *,
                     nonce: str | None = None) -> SignedAddresses:
    """The reply addresses of one email for `actions` (default: `reply`, which carries any
    command, and one per action), each signed when first read. The same texts as `issue`
    would give, with the shared parts worked out once; `nonce` is `nonce_for(message_id)`, when
    the caller has it already (an email that lists many tasks signs each its own)."""
    return SignedAddresses(secret, inbox, item_id, task_id, to, issued,
                           nonce or nonce_for(message_id), actions)


class SignedAddresses(Mapping[str, str]):
    """Action → reply address of one email, each address signed the first time it is read: an
    email shows two or three of its sixteen buttons, and a signature is an HMAC."""

    def __init__(self, secret: bytes, inbox: str, item_id: str, task_id: str | None, to: str,
                 issued: date | None, nonce: str, actions: Iterable[str]) -> None:
        self._actions = tuple(dict.fromkeys(actions))
        unknown = [action for action in self._actions if action not in ACTION_CODES]
        if unknown:
            raise KeyError(unknown[0])
        self._known = frozenset(self._actions)
        self._secret, self._item_id, self._task_id, self._to = secret, item_id, task_id, to
        self._local, _, self._domain = inbox.partition("@")
        item_part = item_id.replace("-", "").lower()
        task_part = task_id.replace("-", "").lower() if task_id else "i"
        self._day = _day_text(issued) if issued is not None else None
        self._head = "-".join(p for p in (item_part, task_part, self._day) if p)
        self._nonce = nonce
        self._signed: dict[str, str] = {}

    def __getitem__(self, action: str) -> str:
        address = self._signed.get(action)
        if address is None:
            if action not in self._known:
                raise KeyError(action)
            code = ACTION_CODES[action]
            signature = _signature(self._secret, self._item_id, self._task_id, self._to,
                                   self._day, code + self._nonce)
            address = self._signed[action] = (
                f"{self._local}+{self._head}-{code}{self._nonce}-{signature}@{self._domain}")
        return address

    def __contains__(self, action: object) -> bool:  # without signing it
        return action in self._known

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)


def _parse(match: re.Match[str]) -> tuple[str, str | None, str | None, str | None, str, str]:
    item_part, task_part, day, code, nonce, signature = (
        g.lower() if g else None for g in match.groups())
    assert item_part and task_part and signature
    item_id = "MD-" + item_part[2:]
    task_id = None if task_part == "i" else "T-" + task_part[1:]
    return item_id, task_id, day, (code + nonce if code and nonce else None), nonce or "", signature


def _verify(secret: bytes, match: re.Match[str], sender: str) -> ReplyToken | None:
    item_id, task_id, day, action_part, nonce, signature = _parse(match)
    expected = _signature(secret, item_id, task_id, sender, day, action_part)
    if not hmac.compare_digest(expected, signature):
        return None
    issued = EPOCH + timedelta(days=int(day, 36)) if day else None
    action = _ACTION_BY_CODE[action_part[0]] if action_part else "reply"
    return ReplyToken(item_id, task_id, sender.lower(), issued, action, nonce, signature)


def _expired(token: ReplyToken, today: date | None, max_age_days: int) -> bool:
    return bool(token.issued and today and (today - token.issued).days > max_age_days)


def find(secret: bytes, addresses: tuple[str, ...] | list[str], sender: str, *,
         today: date | None = None, max_age_days: int = MAX_AGE_DAYS) -> ReplyToken | None:
    """The first valid token among `addresses` that was issued to `sender`; forged ones are
    skipped, and so are dated ones older than `max_age_days` on `today` (when given)."""
    for address in addresses:
        match = TOKEN_RE.search(address)
        token = _verify(secret, match, sender) if match else None
        if token is not None and not _expired(token, today, max_age_days):
            return token
    return None


def read(secret: bytes, addresses: tuple[str, ...] | list[str], sender: str, *,
         today: date | None = None, max_age_days: int = MAX_AGE_DAYS) -> TokenReading | None:
    """What the first token among `addresses` says: a valid token for `sender` when there is
    one, else the item the first token names and why it does not count."""
    first: TokenReading | None = None
    for address in addresses:
        match = TOKEN_RE.search(address)
        if not match:
            continue
        text = match.group(0)[1:-1]
        token = _verify(secret, match, sender)
        if token is not None and not _expired(token, today, max_age_days):
            return TokenReading(token.item_id, token.task_id, token, "", text)
        if first is None:
            item_id, task_id = _parse(match)[:2]
            first = TokenReading(item_id, task_id, None,
                                 "expired" if token is not None else "unverified", text)
    return first


def issued_to(secret: bytes, text: str, candidates: tuple[str, ...] | list[str]) -> str | None:
    """Which of `candidates` the token `text` was issued to; None when none (tampered with)."""
    match = TOKEN_RE.search(f"+{text}@")
    if not match:
        return None
    for candidate in candidates:
        if _verify(secret, match, candidate) is not None:
            return candidate.lower()
    return None


def unverified_item(addresses: tuple[str, ...] | list[str]) -> tuple[str, str | None] | None:
    """Item and task named by a token whose signature we could not check against the sender."""
    for address in addresses:
        match = TOKEN_RE.search(address)
        if match:
            return _parse(match)[:2]
    return None


def subject_tag(subject: str) -> tuple[str, str | None] | None:
    match = SUBJECT_TAG_RE.search(subject)
    if not match:
        return None
    return match.group(1).upper(), (match.group(2).upper() if match.group(2) else None)


def subject_tag_for(address: str) -> str | None:
    """The subject tag that carries the token of reply address `address`, for servers without
    plus addressing: `[MD-0012 T-1 #1y2-ck3j5-k3j5h2m9qa]`; None when it has no token."""
    match = TOKEN_RE.search(address)
    if not match:
        return None
    item_part, task_part = match.group(1).lower(), match.group(2).lower()
    rest = match.group(0)[1:-1].lower()[len(item_part) + len(task_part) + 2:]
    task = f" T-{task_part[1:]}" if task_part != "i" else ""
    return f"[MD-{item_part[2:]}{task} #{rest}]"


def tag_subject(subject: str, address: str) -> str:
    """`subject` with its item tag replaced by the token-carrying tag of `address` (or that tag
    put first, after any "Re: "); unchanged when `address` has no token."""
    tag = subject_tag_for(address)
    if tag is None:
        return subject
    if SUBJECT_TAG_RE.search(subject):
        return SUBJECT_TAG_RE.sub(lambda _m: tag, subject, count=1)
    head = re.match(r"^\s*(?:re|回复|答复)\s*[:：]\s*", subject, re.IGNORECASE)
    at = head.end() if head else 0
    return f"{subject[:at]}{tag} {subject[at:]}".strip()


def subject_addresses(subject: str) -> list[str]:
    """The tokens of a subject's tags in the address form `find` and `read` take (a local part
    and an empty domain: `+md0012-t1-1y2-ck3j5-k3j5h2m9qa@`)."""
    found = []
    for match in SUBJECT_TAG_RE.finditer(subject):
        if match.group(3):
            task = match.group(2).replace("-", "").lower() if match.group(2) else "i"
            item = match.group(1).replace("-", "").lower()
            found.append(f"+{item}-{task}-{match.group(3).lower()}@")
    return found
