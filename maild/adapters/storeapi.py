"""The store's engine interface (`DocEngine`: what the embedded journal and PostgreSQL both
implement) and the two small things built on it: one table of decoded documents (`DocTable`)
and an item's summary for the operator's listings (`item_summary`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from maild.adapters.journalstore import ReadOnlyError, encode_doc


class DocEngine(Protocol):
    """Where a `Store` keeps its documents: tables of compact JSON documents by key, changed in
    memory (or a transaction) and made durable all at once by `commit`."""

    readonly: bool
    keys: dict[str, str]
    crash_hook: Callable[[str], None] | None

    def get(self, table: str, key: str) -> bytes | None: ...
    def contains(self, table: str, key: str) -> bool: ...
    def count(self, table: str) -> int: ...
    def keys_of(self, table: str) -> list[str]: ...
    def scan(self, table: str, needle: bytes | None = None) -> list[tuple[str, bytes]]: ...
    def scan_chunks(self, table: str, size: int) -> Iterator[list[tuple[str, bytes]]]: ...
    def put(self, table: str, key: str, text: bytes) -> None: ...
    def remove(self, table: str, key: str) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    @property
    def dirty(self) -> bool: ...
    def table_names(self) -> list[str]: ...
    def close(self) -> None: ...


class DocTable:
    """One table of an engine: documents by key, decoded on the way out, encoded on the way in."""

    def __init__(self, engine: DocEngine, name: str) -> None:
        self._engine = engine
        self.name = name
        self.key = engine.keys[name]

    def get(self, key: str) -> dict[str, Any] | None:
        text = self._engine.get(self.name, key)
        return json.loads(text) if text is not None else None

    def encoded(self, key: str) -> bytes | None:
        """The document as the engine holds it (compact JSON bytes), undecoded."""
        return self._engine.get(self.name, key)

    def __contains__(self, key: str) -> bool:
        return self._engine.contains(self.name, key)

    def writable(self) -> None:
        if self._engine.readonly:
            raise ReadOnlyError(f"the store is read-only (table {self.name!r})")

    def put(self, doc: Mapping[str, Any]) -> None:
        """Upsert by key (an existing document keeps its place in the table's order)."""
        self.writable()
        self._engine.put(self.name, doc[self.key], encode_doc(doc, self.key))

    def remove(self, key: str) -> None:
        self.writable()
        self._engine.remove(self.name, key)

    def values(self, needle: bytes | None = None) -> Iterator[dict[str, Any]]:
        """Decoded documents in table order (safe to remove from the table meanwhile)."""
        return (json.loads(text) for _key, text in self._engine.scan(self.name, needle))

    def raw(self, needle: bytes | None = None) -> list[tuple[str, bytes]]:
        """(key, encoded document) pairs, for scans that can skip most documents undecoded."""
        return self._engine.scan(self.name, needle)

    def keys(self) -> list[str]:
        return self._engine.keys_of(self.name)

    def __len__(self) -> int:
        return self._engine.count(self.name)


def item_summary(item: Mapping[str, Any]) -> dict[str, Any]:
    """What the operator's listings need of an item: its head and one short row per task
    ([id, state, owner, owner name, deadline])."""
    return {"id": item["id"], "kind": item.get("kind", ""), "state": item.get("state", "open"),
            "title": item.get("title", ""), "initiator": item.get("initiator", ""),
            "updated_at": item.get("updated_at"),
            "tasks": [[t.get("id"), t.get("state"), t.get("owner", ""), t.get("owner_name", ""),
                       t.get("deadline")] for t in item.get("tasks") or ()]}


class LockError(Exception):
    """Another process already runs on this data directory (or inbox, in PostgreSQL)."""
