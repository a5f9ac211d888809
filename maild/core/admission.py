"""What happens to an inbound email before (and beside) the workflow: its identity, the size cap,
the answer caps, and the one log line it leaves behind.

Pure functions of the email, the stored marks and `now`; the service applies them.

- Identity is the Message-ID plus a fingerprint of the content (`fingerprint`): the same email
  fetched again (a crash, a re-delivery, a replay) is a duplicate, while a different email that
  reuses a Message-ID seen before is a collision (`collision_key`): it is handled under its own
  key and logged, never dropped as a duplicate. Marks written before fingerprints existed match
  any content.
- The fingerprint reads only what a sender wrote (From, To, Cc, Date, Subject, Message-ID and the
  body), not what servers add on the way (Received, Delivered-To, Authentication-Results), so a
  copy delivered twice is one email.
- An email over the size cap was fetched without its body (`imap.HeaderOnly`); a trustworthy
  sender (one the loop and trust checks let through) is told once, in their language, with the
  limit and the advice to share large files by link (`not_handled`). So is a trustworthy sender
  of an email maild failed on.
- Answers to one correspondent are capped per hour (the unsolicited ones: templates, refusals,
  not understood) and per 24 hours (every answer to their own email but a new item's receipt:
  an auto-responder writes no forms): OTRS caps auto-responses at 40 per address per day.
  Without the daily cap, a responder that answers every email with something maild
  acknowledges ("收到" reads as a confirmation) went on forever.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from maild.core.model import Inbound, Notice
from maild.core.outcomes import thread_of

# Replies to a sender that are not about a task they own; these are capped per hour as well.
UNSOLICITED_TEMPLATES = frozenset({"validation_error", "templates", "not_understood", "refused",
                                   "not_handled", "draft_answer"})
# Answers the daily cap does not count: a receipt answers a new item, which only a form makes.
UNCAPPED_ANSWERS = frozenset({"receipt"})


def fingerprint(raw: bytes, msg: Inbound) -> str:
    """A hash of what the sender wrote: the fields a server does not add, and the body (for an
    email fetched without its body, its size)."""
    digest = hashlib.sha256()
    for value in (msg.message_id, msg.from_addr, msg.subject,
                  msg.date.isoformat() if msg.date else "", ",".join(msg.to), ",".join(msg.cc)):
        digest.update(value.encode("utf-8", "surrogateescape") + b"\0")
    size = getattr(raw, "size", None)
    if size is not None:
        digest.update(f"size:{size}".encode())
    else:
        body = raw.partition(b"\r\n\r\n")[2] if b"\r\n\r\n" in raw else raw.partition(b"\n\n")[2]
        digest.update(body.replace(b"\r\n", b"\n").rstrip())
    return digest.hexdigest()[:32]


def same_email(mark: dict[str, Any], content: str) -> bool:
    """Whether a processed mark is this very email (marks without a fingerprint: any)."""
    return mark.get("content") in (None, content)


def collision_key(message_id: str, content: str) -> str:
    """The key of a different email that reuses `message_id`."""
    return f"{message_id}#{content[:16]}"


def not_handled(msg: Inbound, problem: str, language: str, *, size: int = 0,
                limit: int = 0) -> Notice:
    """The one answer to a trustworthy sender whose email was kept unhandled: `problem` is
    "too_large" (with `size` and `limit` in bytes) or "internal_error"."""
    in_reply_to, references = thread_of(msg)
    return Notice(template="not_handled", to=(msg.from_addr,), language=language,
                  context={"problem": problem, "size_mb": _mb(size), "limit_mb": _mb(limit),
                           "original_subject": msg.subject},
                  in_reply_to=in_reply_to, references=references)


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0")


def recent(stamps: Iterable[str], now: datetime, window: timedelta) -> list[str]:
    """The timestamps (ISO) of `stamps` within `window` before `now`."""
    cutoff = now - window
    return [t for t in stamps if datetime.fromisoformat(t) > cutoff]


def log_line(event: str, **fields: Any) -> str:
    """`event=… key=value …` with every value on one line and without spaces unless quoted (JSON
    string syntax), so both log formats read it back field by field."""
    parts = [f"event={event}"]
    for key, value in fields.items():
        text = "" if value is None else str(value)
        if not text or any(c in text for c in ' "=\\\r\n\t'):
            text = json.dumps(text, ensure_ascii=False)
        parts.append(f"{key}={text}")
    return " ".join(parts)
