"""The store's bookkeeping besides items (a mixin of `Store`): each item's next due moment and
the planner's memory, the processed marks that make intake idempotent, the message links that
map threading headers to items, and the small `meta` documents (drafts, counters).

Like everything in `Store`, nothing here is durable until `Store.commit`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

KEEP_PROCESSED = timedelta(days=30)

def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Bookkeeping:
    # -- the schedule: each item's next due moment, and the planner's memory ---------------------

    def set_due(self, item_id: str, at: datetime | None) -> None:
        """When the planner must next look at this item (None: nothing can fall due)."""
        self._due.put({"id": item_id, "at": at.isoformat() if at else None})

    def dues(self) -> dict[str, datetime | None]:
        """Every item's recorded next due moment (items never recorded are absent)."""
        return {doc["id"]: _dt(doc.get("at")) for docs in self.engine.scan_chunks("due", 5000)
                for doc in json.loads(b"[" + b",".join(t for _k, t in docs) + b"]")}

    def schedule_state(self) -> dict[str, Any]:
        """The planner's memory as `planner.plan` takes it: {"digest": {address: …},
        "owner_digest": {address: …}, "next_at": …}."""
        state: dict[str, Any] = {"digest": {}, "owner_digest": {}}
        for doc in self._schedule.values():
            kind, _, address = doc["key"].partition("|")
            if address:
                state.setdefault(kind, {})[address] = doc["value"]
            else:
                state[kind] = doc["value"]
        return state

    def put_schedule_entry(self, kind: str, address: str | None, value: Any) -> None:
        """One person's entry of the planner's memory (`kind` "digest" / "owner_digest"), or a
        plain value such as "next_at" (`address` None)."""
        key = f"{kind}|{address}" if address is not None else kind
        self._schedule.put({"key": key, "value": value})

    def put_schedule_state(self, state: Mapping[str, Any]) -> None:
        """The whole memory (unchanged entries cost nothing)."""
        for kind, value in state.items():
            if kind in ("digest", "owner_digest"):
                for address, entry in value.items():
                    self.put_schedule_entry(kind, address, entry)
            else:
                self.put_schedule_entry(kind, None, value)

    def processed(self, message_id: str) -> dict[str, Any] | None:
        doc = self._processed.get(message_id)
        return doc["outcome"] if doc is not None else None

    def mark_processed(self, message_id: str, outcome: dict[str, Any]) -> None:
        self._processed.put({"message_id": message_id, "outcome": outcome})

    def prune_processed(self, now: datetime, *, keep_days: float = KEEP_PROCESSED.days) -> int:
        """Forget intake marks older than `keep_days` (by their outcome's "at"); returns how many.

        Idempotence only needs recent marks: a handled email leaves INBOX right after the commit
        that marks it, so a mark matters only while a move may still be pending or a sender's
        client may still resend. An email delivered again after `keep_days` is handled again.
        Marks without a readable "at" are kept.
        """
        limit = now - timedelta(days=keep_days)
        old = []
        for doc in self._processed.values():
            at = doc.get("outcome", {}).get("at") if isinstance(doc.get("outcome"), dict) else None
            try:
                when = datetime.fromisoformat(at) if isinstance(at, str) else None
            except ValueError:
                when = None
            if when is not None and when < limit:
                old.append(doc["message_id"])
        for message_id in old:
            self._processed.remove(message_id)
        return len(old)

    def link_message(self, message_id: str, item_id: str, task_id: str | None) -> None:
        self._messages.put({"message_id": message_id, "item_id": item_id, "task_id": task_id})

    def lookup_message(self, message_id: str) -> tuple[str, str | None] | None:
        doc = self._messages.get(message_id)
        return (doc["item_id"], doc["task_id"]) if doc is not None else None

    def meta_get(self, key: str, default: Any = None) -> Any:
        doc = self._meta.get(key)
        return doc["value"] if doc is not None else default

    def meta_set(self, key: str, value: Any) -> None:
        self._meta.put({"key": key, "value": value})
