"""Durable state for maild: items (with a summary index and each one's next due moment), intake
idempotence, the threading map, the outbox and the schedule's memory.

`Store` is the one API the daemon and the operator commands use; documents live in an engine
that implements `DocEngine`: `JournalStorage` (journalstore.py, the embedded default: a TinyDB
snapshot plus an append-only journal in `DATA_DIR`, guarded by an exclusive `flock` on
`DATA_DIR/maild.lock`), or `PgEngine` (pgstore.py, PostgreSQL, chosen by `[store] url`).

Surprises:
- Nothing is durable before `commit()`, which writes what changed since the last commit in one
  go (one journal record, or one SQL transaction). `close()` does NOT commit: uncommitted
  changes are dropped, which is what a crash would do too. `rollback()` returns to the last commit.
- Documents are held and written as compact UTF-8 JSON, keyed by their table's key field; `get_*`
  decodes (a fresh copy: callers may mutate it) and `put_*` encodes (a value JSON cannot hold
  fails there, not at commit). Writing an unchanged document changes nothing.
- `put_item` also writes the item's summary (`index` table: what `maild items/status` show),
  so operator reads never decode whole items.
- Sent outbox entries are compacted to what `maild outbox`, idempotent enqueue and pruning need
  (Message-ID, recipients, subject, kind, item, attempts, code, remark, sent_at); queued and
  failed ones stay whole (they are still to be sent). Processed Message-IDs older than 30 days
  are dropped by `prune_processed`.
- The data has a format version (`FORMAT_VERSION`); a store written in another one refuses to
  open with `FormatError` until `maild migrate` upgrades it (migrate.py).
- Datetimes are stored as ISO strings; pass aware datetimes consistently.
- `Store.open_readonly(dir)` (for `maild status/items/show/outbox` next to a running daemon) takes
  no lock, creates nothing, and raises `ReadOnlyError` on any write. It sees the last commit as
  of the moment it was opened, and may load only some `tables`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from maild.adapters.bookkeeping import Bookkeeping
from maild.adapters.journalfile import CorruptDatabaseError
from maild.adapters.journalstore import (
    SNAPSHOT_FILE,
    STORE_TABLE,
    ReadOnlyError,
    encode_doc,
    open_database,
)
from maild.adapters.outboxstore import KEEP_FAILED, KEEP_SENT, OutboxEntry, OutboxQueue
from maild.adapters.storeapi import DocEngine, DocTable, LockError, item_summary

__all__ = ["CorruptDatabaseError", "FormatError", "LockError", "OutboxEntry", "ReadOnlyError",
           "Store", "DocEngine", "FORMAT_VERSION", "DB_FILE", "LOCK_FILE", "TABLE_KEYS",
           "KEEP_FAILED", "KEEP_SENT"]

DB_FILE = SNAPSHOT_FILE
LOCK_FILE = "maild.lock"
FORMAT_VERSION = 2
# table -> the field that keys its documents; a table not listed here is keyed by its doc ids
TABLE_KEYS = {"items": "id", "processed": "message_id", "messages": "message_id",
              "outbox": "message_id", "meta": "key", "index": "id", "due": "id",
              "schedule": "key"}
USER_TABLES = ("items", "processed", "messages", "outbox", "meta")  # what `counts()` reports


class FormatError(Exception):
    """The data was written in another format version: `maild migrate` upgrades it."""


class Store(OutboxQueue, Bookkeeping):
    """maild's state. `Store(None)` is an in-memory twin for tests; `Store(dir)` the embedded
    store (one process per dir); `Store(engine=…)` any other `DocEngine` (PostgreSQL)."""

    def __init__(self, data_dir: Path | None = None, *, readonly: bool = False,
                 engine: DocEngine | None = None, tables: Iterable[str] | None = None,
                 compact_bytes: int | None = None, upgrading: bool = False) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.readonly = readonly
        self._lock_fd: int | None = None
        if engine is None:
            if self.data_dir is not None and not readonly:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self._lock_fd = self._take_lock(self.data_dir)
            options: dict[str, Any] = {"readonly": readonly, "keys": TABLE_KEYS,
                                       "tables": set(tables) if tables is not None else None}
            if compact_bytes is not None:
                options["compact_bytes"] = compact_bytes
            folder = self.data_dir if self.data_dir is None or self.data_dir.exists() else None
            try:
                engine = open_database(folder, **options)
            except BaseException:
                self._release_lock()
                raise
        self.engine: DocEngine = engine
        for name in TABLE_KEYS:
            setattr(self, f"_{name}", DocTable(engine, name))
        self._tables = tuple(getattr(self, f"_{name}") for name in USER_TABLES)
        try:
            self._check_format(upgrading)
        except BaseException:
            self.close()
            raise
        self._build_due_index()

    def _check_format(self, upgrading: bool) -> None:
        version = self.format_version
        if version is None:  # a new store
            if not self.readonly:
                self.set_format_version(FORMAT_VERSION)
                self.commit()
            return
        if version != FORMAT_VERSION and not upgrading:
            where = self.data_dir if self.data_dir is not None else "the database"
            newer = version > FORMAT_VERSION
            raise FormatError(
                f"the maild data in {where} has format version {version}; this maild reads "
                f"version {FORMAT_VERSION}" + (": it was written by a newer maild" if newer else
                                               ". Stop the daemon and run `maild migrate -c "
                                               "CONFIG` to upgrade it (it keeps a backup)"))

    @property
    def format_version(self) -> int | None:
        """The data's format version; None for an empty store; 1 for data from before versions."""
        raw = self.engine.get(STORE_TABLE, "format_version")
        if raw is not None:
            return int(json.loads(raw)["value"])
        if any(self.engine.count(name) for name in self.engine.table_names()):
            return 1
        return None

    def set_format_version(self, version: int) -> None:
        self.engine.put(STORE_TABLE, "format_version",
                        encode_doc({"key": "format_version", "value": version}, "key"))

    @classmethod
    def open_readonly(cls, data_dir: Path, tables: Iterable[str] | None = None) -> Store:
        """The last committed state of `data_dir`, without the lock (the daemon may hold it).

        A missing directory or database reads as empty; every write raises `ReadOnlyError`.
        `tables` (default: all) limits what is loaded.
        """
        return cls(Path(data_dir), readonly=True, tables=tables)

    @staticmethod
    def lock_holder(data_dir: Path) -> str | None:
        """The pid text of the process holding `data_dir`'s lock, or None when it is free."""
        lock_path = Path(data_dir) / LOCK_FILE
        try:
            fd = os.open(lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            return None  # closing the descriptor drops the shared lock we just took
        finally:
            os.close(fd)

    # -- lifecycle -----------------------------------------------------------------------------

    @staticmethod
    def _take_lock(data_dir: Path) -> int:
        lock_path = data_dir / LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise LockError(
                f"data directory {data_dir} is in use by another maild (pid {holder}, "
                f"lock {lock_path}); stop that process first, or use another data directory"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the only descriptor releases the flock
            self._lock_fd = None

    def close(self) -> None:
        """Release the lock. Does not commit: uncommitted changes are dropped."""
        self.engine.close()
        self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def commit(self) -> None:
        """Make everything changed since the last commit durable at once; no-op when unchanged."""
        self.engine.commit()

    def rollback(self) -> None:
        """Forget everything since the last commit."""
        self.engine.rollback()
        self._build_due_index()

    @property
    def dirty(self) -> bool:
        return self.engine.dirty

    def set_crash_hook(self, hook: Callable[[str], None] | None) -> None:
        """Tests: `hook("mid_db_write")` runs between a commit's write and its fsync."""
        self.engine.crash_hook = hook

    # -- items -----------------------------------------------------------------------------------

    def peek_item_id(self) -> str:
        """The id `next_item_id` will return, without taking it (a rejected form takes none)."""
        return f"MD-{int(self.meta_get('item_seq', 0)) + 1:04d}"

    def next_item_id(self) -> str:
        """Return "MD-0001", "MD-0002", ...; the counter is part of the next commit."""
        seq = int(self.meta_get("item_seq", 0)) + 1
        self.meta_set("item_seq", seq)
        return f"MD-{seq:04d}"

    def get_item(self, item_id: str) -> dict[str, Any] | None:
        return self._items.get(item_id)

    def has_item(self, item_id: str) -> bool:
        """Whether the live table holds the item (without decoding it, unlike `get_item`)."""
        return item_id in self._items

    def put_item(self, item: dict[str, Any]) -> None:
        self._items.put(item)
        self._index.put(item_summary(item))

    def all_items(self) -> list[dict[str, Any]]:
        """Every item in the live table, closed ones awaiting archiving included, oldest first."""
        return list(self._items.values())

    def open_items(self) -> list[dict[str, Any]]:
        """Items in the live table whose `state` is not "closed" (closed ones await archiving)."""
        return [doc for doc in self._items.values() if doc.get("state") != "closed"]

    def item_ids(self) -> list[str]:
        """Every item's id, in table order, without reading the items."""
        return self._items.keys()

    def closed_item_ids(self) -> list[str]:
        """Items closed but not yet archived (their summaries are searched, not decoded)."""
        return [key for key, text in self._index.raw(b'"state":"closed"')
                if json.loads(text).get("state") == "closed"]

    def summary_docs(self) -> list[bytes]:
        """Every item's summary as stored (compact JSON, "id" first), in table order."""
        return [text for _key, text in self._index.raw()]

    def iter_summaries(self, chunk: int = 2000) -> Iterator[dict[str, Any]]:
        """`summaries`, read and decoded a chunk at a time (no list of them all, in memory or
        from the database)."""
        for docs in self.engine.scan_chunks("index", chunk):
            yield from json.loads(b"[" + b",".join(t for _k, t in docs) + b"]")

    def summaries(self) -> list[dict[str, Any]]:
        """Every item's summary (`item_summary`), in table order: cheap listings (decoded in
        one go: 50,000 separate decodes cost ~5× more)."""
        docs = [text for _key, text in self._index.raw()]
        return json.loads(b"[" + b",".join(docs) + b"]") if docs else []

    def remove_item(self, item_id: str) -> None:
        """Drop an item (archived), its summary, its due moment and the message links that
        pointed at it, so the live database keeps open work only; a late reply to it then reads
        as about no open item."""
        self._items.remove(item_id)
        self._index.remove(item_id)
        self._due.remove(item_id)
        needle = json.dumps(item_id, ensure_ascii=False).encode()  # links holding the id
        for message_id, text in self._messages.raw(needle):
            if json.loads(text).get("item_id") == item_id:
                self._messages.remove(message_id)

    # -- the other tables' bookkeeping is in bookkeeping.py -------------------------------------

    def counts(self) -> dict[str, int]:
        """Documents per table (for `maild status`)."""
        return {table.name: len(table) for table in self._tables}

    def export(self) -> Iterator[tuple[str, str, bytes]]:
        """(table, key, document) of every table but the store's own, for `maild migrate`."""
        for name in self.engine.table_names():
            for key, text in self.engine.scan(name):
                yield name, key, text

    def load(self, rows: Iterable[tuple[str, str, bytes]]) -> int:
        """Write `export`ed rows (uncommitted); how many."""
        count = 0
        for name, key, text in rows:
            if name not in self.engine.keys and name not in TABLE_KEYS:
                self.engine.keys[name] = TABLE_KEYS.get(name, "")
            self.engine.put(name, key, text)
            count += 1
        return count

def is_url(spec: str | Path) -> bool:
    return str(spec).startswith(("postgresql://", "postgres://"))

def open_store(spec: str | Path, *, inbox: str, readonly: bool = False, wait: bool = False,
               upgrading: bool = False, tables: Iterable[str] | None = None) -> Store:
    """The store a config or the command line names: a `postgresql://` URL (the inbox's share
    of that database; `wait`: queue for the inbox's lock instead of failing) or a data dir."""
    if is_url(spec):
        from maild.adapters.pgstore import (
            PgEngine,  # psycopg is only needed when PostgreSQL is used
        )

        engine = PgEngine(str(spec), inbox=inbox, keys=TABLE_KEYS, readonly=readonly,
                          wait=wait)
        return Store(None, readonly=readonly, engine=engine, upgrading=upgrading)
    if readonly:
        return Store(Path(spec), readonly=True, tables=tables)
    return Store(Path(spec), upgrading=upgrading)
