"""The outbox's queue in the store: queued emails whole, sent ones compacted, failed ones kept.

A mixin of `Store` (store.py): it uses the store's `_outbox` table. `_queued` indexes the queued
entries (Message-ID -> (next attempt, enqueue order)) so that finding due mail never decodes the
table; `_build_due_index` makes it from the table at open and after a rollback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from maild.core.model import Outgoing

KEEP_SENT = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True)
class OutboxEntry:
    out: Outgoing
    status: str  # "queued" | "sent" | "failed"
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    sent_at: datetime | None
    code: int | None = None  # last SMTP reply code, when there was one


SENT_FIELDS = ("to", "cc", "subject", "kind", "item_id")  # what a compact sent entry keeps of `out`


def _entry(doc: dict[str, Any]) -> OutboxEntry:
    if "out" in doc:  # queued or failed (or sent by an older maild): the whole email
        out = Outgoing.from_dict(doc["out"])
    else:  # compact sent entry: no bodies, no threading headers
        out = Outgoing.from_dict({"message_id": doc["message_id"], "text": "", "html": "",
                                  **{name: doc[name] for name in SENT_FIELDS if name in doc}})
    when, sent = doc.get("next_attempt_at"), doc.get("sent_at")
    return OutboxEntry(out, doc["status"], doc["attempts"], _dt(when), doc.get("last_error", ""),
                       _dt(sent), doc.get("code"))


def decode_entry(document: bytes) -> OutboxEntry:
    """An entry from the bytes the store holds (`OutboxQueue.outbox_document`)."""
    return _entry(json.loads(document))


class OutboxQueue:
    """Outbox methods of `Store`."""

    _outbox: Any
    _queued: dict[str, tuple[datetime, int]]
    _due_seq: int

    def _build_due_index(self) -> None:
        # queued message_id -> (next_attempt_at, enqueue sequence): finds due mail without parsing
        # every entry. The table's insertion order is the enqueue order.
        self._queued: dict[str, tuple[datetime, int]] = {}
        keys = self._outbox.keys()
        order = {key: seq for seq, key in enumerate(keys)}
        for message_id, text in self._outbox.raw(b'"queued"'):
            if (doc := json.loads(text))["status"] == "queued":
                self._queued[message_id] = (datetime.fromisoformat(doc["next_attempt_at"]),
                                            order.get(message_id, len(keys)))
        self._due_seq = len(keys)

    def enqueue(self, out: Outgoing, *, now: datetime) -> None:
        """Queue an email; a second enqueue of the same Message-ID (in any status) is a no-op.

        Sent entries are pruned after `KEEP_SENT`; re-enqueueing after that would send again.
        """
        if out.message_id in self._outbox:
            return
        when = now.isoformat()
        doc = {"message_id": out.message_id, "out": out.to_dict(), "status": "queued"}
        doc.update(attempts=0, queued_at=when, next_attempt_at=when, last_error="", code=None)
        self._outbox.put({**doc, "sent_at": None})
        self._queued[out.message_id] = (now, self._due_seq)
        self._due_seq += 1

    def outbox_due(self, now: datetime, limit: int = 500) -> list[OutboxEntry]:
        """Queued entries whose time has come, oldest due first (then in enqueue order)."""
        return [_entry(self._outbox.get(mid))  # type: ignore[arg-type]
                for mid in self.outbox_due_ids(now, limit)]

    def outbox_due_ids(self, now: datetime, limit: int = 500) -> list[str]:
        """The Message-IDs `outbox_due` would return, without decoding their emails (a batch's
        ~800 emails decoded at once are ~25 MB; `outbox_entry` decodes one)."""
        due = sorted((when, seq, mid) for mid, (when, seq) in self._queued.items() if when <= now)
        return [mid for _, _, mid in due[:limit]]

    def outbox_queued_count(self) -> int:
        return len(self._queued)

    def outbox_next_due(self) -> datetime | None:
        return min((when for when, _ in self._queued.values()), default=None)

    def _set_outbox(
        self, message_id: str, status: str, attempts: int | None, **changes: Any
    ) -> None:
        """Change an entry; `attempts=None` counts one more attempt."""
        self._outbox.writable()
        doc = self._outbox.get(message_id)
        if doc is None:
            raise KeyError(f"no outbox entry {message_id!r}")
        attempts = doc["attempts"] + 1 if attempts is None else attempts
        doc.update(status=status, attempts=attempts, **changes)
        if status == "queued":
            seq = self._queued[message_id][1] if message_id in self._queued else self._due_seq
            self._queued[message_id] = (datetime.fromisoformat(doc["next_attempt_at"]), seq)
        else:
            doc["next_attempt_at"] = None
            self._queued.pop(message_id, None)
        self._outbox.put(doc)

    def outbox_mark_sent(self, message_id: str, now: datetime, *,
                         sent: OutboxEntry | None = None) -> None:
        """Mark sent and compact the entry to what `maild outbox`, idempotent enqueue and
        pruning need: Message-ID, recipients, subject, kind, item, attempts, code, remark and
        sent_at (~0.3 KB, where the whole email is ~12 KB of JSON). It reads back with `out.text`
        and `out.html` "" and without threading headers, reply address, language or date.
        `sent`: the queued entry as the sender read it, whose fields spare decoding the whole
        stored email again only to drop most of it (~0.1 ms); used while the entry is queued."""
        self._outbox.writable()
        if sent is not None and sent.out.message_id == message_id and message_id in self._queued:
            fields = {name: list(value) if isinstance(value, tuple) else value
                      for name in SENT_FIELDS for value in (getattr(sent.out, name),)}
            attempts, last_error = sent.attempts, sent.last_error
        else:
            doc = self._outbox.get(message_id)
            if doc is None:
                raise KeyError(f"no outbox entry {message_id!r}")
            whole = doc.get("out", doc)
            fields = {name: whole.get(name) for name in SENT_FIELDS}
            attempts, last_error = doc["attempts"], doc.get("last_error", "")
        self._queued.pop(message_id, None)
        self._outbox.put({"message_id": message_id, "status": "sent", **fields,
                          "attempts": attempts + 1, "code": 250, "last_error": last_error,
                          "sent_at": now.isoformat()})

    def outbox_mark_retry(
        self, message_id: str, *, attempts: int, next_attempt_at: datetime, error: str,
        code: int | None = None,
    ) -> None:  # fmt: skip
        when = next_attempt_at.isoformat()
        self._set_outbox(
            message_id, "queued", attempts, next_attempt_at=when, last_error=error, code=code
        )

    def outbox_mark_failed(
        self, message_id: str, *, now: datetime, code: int | None, error: str,
        attempts: int | None = None,
    ) -> None:  # fmt: skip
        """`attempts` defaults to one more than recorded."""
        changes = {"failed_at": now.isoformat(), "last_error": error, "code": code}
        self._set_outbox(message_id, "failed", attempts, **changes)

    def outbox_note(self, message_id: str, error: str) -> None:
        """Record a remark (e.g. recipients refused in a partial delivery); nothing else changes."""
        self._outbox.writable()
        doc = self._outbox.get(message_id)
        if doc is not None:
            doc["last_error"] = error
            self._outbox.put(doc)

    def outbox_requeue(self, message_id: str, now: datetime) -> None:
        """A failed entry back to the queue, due `now`, with a fresh attempt count (`--retry`)."""
        doc = self._outbox.get(message_id)
        if doc is None:
            raise KeyError(f"no outbox entry {message_id!r}")
        if doc["status"] != "failed":
            raise ValueError(f"outbox entry {message_id!r} is {doc['status']}, not failed")
        self._set_outbox(message_id, "queued", 0, next_attempt_at=now.isoformat())

    def outbox_entry(self, message_id: str) -> OutboxEntry | None:
        doc = self._outbox.get(message_id)
        return _entry(doc) if doc is not None else None

    def outbox_document(self, message_id: str) -> bytes | None:
        """The entry as the store holds it (compact JSON), undecoded: what `outbox_entry` reads,
        for another process to decode (`decode_entry`; the sender's child does)."""
        return self._outbox.encoded(message_id)

    def outbox_states(self) -> list[tuple[str, datetime | None]]:
        """(status, next attempt) of every entry, without decoding the emails: queued ones from
        the index of queued mail, the others (small) in one decode."""
        rest = [text for key, text in self._outbox.raw() if key not in self._queued]
        states: list[tuple[str, datetime | None]] = [
            ("queued", when) for when, _seq in self._queued.values()]
        if rest:
            states += [(doc["status"], None) for doc in json.loads(b"[" + b",".join(rest) + b"]")]
        return states

    def outbox_entries(self, status: str | None = None,
                       item_id: str | None = None) -> list[OutboxEntry]:
        """Entries in enqueue order, of one status and/or about one item."""
        needle = json.dumps(item_id, ensure_ascii=False).encode() if item_id else None
        return [_entry(d) for d in self._outbox.values(needle)
                if (status is None or d["status"] == status)
                and (item_id is None or d.get("item_id", d.get("out", {}).get("item_id")) == item_id)]

    def prune_outbox(
        self, now: datetime, *, keep_sent: timedelta = KEEP_SENT, keep_failed: timedelta = KEEP_FAILED
    ) -> int:  # fmt: skip
        """Drop sent entries older than `keep_sent`, failed ones older than `keep_failed`."""
        limits = {"sent": ("sent_at", now - keep_sent), "failed": ("failed_at", now - keep_failed)}
        old = []
        for doc in self._outbox.values():
            field, limit = limits.get(doc["status"], ("", None))
            if limit is not None and datetime.fromisoformat(doc[field]) < limit:
                old.append(doc["message_id"])
        for message_id in old:
            self._outbox.remove(message_id)
        return len(old)

