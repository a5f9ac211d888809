"""Durable state for maild: items, intake idempotence, the threading map and the outbox, in one file.

The only module that imports TinyDB. Everything lives in `DATA_DIR/live.json`, a valid TinyDB
database (`{table: {doc_id: document}}`), guarded by an exclusive `flock` on `DATA_DIR/maild.lock`.

Surprises:
- Nothing reaches the disk until `commit()`. Writes only change memory; `commit()` writes the
  whole file once (tmp file + fsync + `os.replace` + fsync of the directory), so a crash leaves
  either the previous commit or the new one, never a mix. `close()` does NOT commit: uncommitted
  changes are dropped, which is what a crash would do too. `rollback()` returns to the last commit.
- TinyDB's `Table` write path copies the whole table on every write (measured here: 5 ms per upsert
  at 10k documents, 14 s for 10k inserts) and its queries are full scans. So `Store` keeps TinyDB's
  file layout and `Storage` interface but edits the storage's in-memory dict directly and keeps its
  own key → doc_id indexes (built at open, maintained on every write). Do not use
  `TinyDB.table(...)` writes on a `Store`'s database: its cached doc ids would go stale.
- Documents are copied on the way in and out (a JSON round trip): callers may mutate what they get
  without changing the store, and a value that JSON cannot hold fails at `put_*`, not at commit.
- A commit re-encodes only what changed: the JSON text is cached in chunks of 512 documents per
  table (filled at open), and a chunk is re-encoded when a document in it was put, removed or
  changed in place. Code in this module that edits a document in place must call
  `_Table.touch(key)`, or the next commit would write the old text.
- Sent outbox entries keep no bodies (headers, recipients, subject, Message-ID only); processed
  Message-IDs older than 30 days are dropped by `prune_processed` (the service's tick calls it).
- Datetimes are stored as ISO strings; pass aware datetimes consistently (naive and aware do not
  compare).
- `Store.open_readonly(dir)` (for `maild status/items/show/outbox` next to a running daemon) takes
  no lock, creates nothing, never removes the daemon's tmp files, and raises `ReadOnlyError` on
  any write. It sees the last commit, as of the moment it was opened.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tinydb import Storage, TinyDB

from .model import Outgoing

DB_FILE = "live.json"
LOCK_FILE = "maild.lock"
KEEP_SENT = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)
KEEP_PROCESSED = timedelta(days=30)

Data = dict[str, dict[str, dict[str, Any]]]
CHUNK_DOCS = 512  # documents per cached JSON chunk (see AtomicJSONStorage.serialize)


class LockError(Exception):
    """Another process already runs on this data directory."""


class ReadOnlyError(Exception):
    """A write to a store opened with `Store.open_readonly`."""


class CorruptDatabaseError(Exception):
    """The database file exists but cannot be read; maild refuses to start empty over it."""


def _copy(value: Any) -> Any:
    """A deep, JSON-normalised copy (tuples become lists); raises TypeError for non-JSON values."""
    return json.loads(json.dumps(value, ensure_ascii=False))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class AtomicJSONStorage(Storage):
    """A TinyDB storage that holds the database in memory and writes it out atomically on `flush()`.

    `read()` returns the live in-memory dict (not a copy); `write()` replaces it and marks the
    storage dirty; only `flush()` touches the disk. With `path=None` it is a purely in-memory twin
    whose `flush()` just keeps a snapshot for `reload()`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, readonly: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.readonly = readonly
        self._tmp_prefix = f"{self.path.name}." if self.path is not None else ""
        self.crash_hook: Callable[[str], None] | None = None  # set by the service
        self.dirty = False
        self._snapshot = "{}"  # last committed text, only kept for the in-memory twin
        # Serialised JSON per table, in chunks of CHUNK_DOCS consecutive documents, reused by the
        # next flush when the chunk's doc ids are the same and none of them was touched.
        self._chunks: dict[str, list[tuple[tuple[str, ...], bytes]]] = {}
        self._touched: dict[str, set[str]] = {}
        if self.path is not None and not readonly:  # a reader must not touch the writer's tmp
            self._remove_stale_tmp()
        self._data: Data = self._load()

    def _remove_stale_tmp(self) -> None:
        assert self.path is not None
        for tmp in self.path.parent.glob(f"{self._tmp_prefix}*.tmp"):
            tmp.unlink(missing_ok=True)

    def _load(self) -> Data:
        if self.path is None:
            return json.loads(self._snapshot)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        where = f"maild database {self.path}"
        hint = "restore it from a backup or move it aside; maild will not start empty over it"
        if not raw.strip():
            raise CorruptDatabaseError(f"{where} is empty ({len(raw)} bytes): {hint}")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CorruptDatabaseError(f"{where} is not valid JSON ({exc}): {hint}") from exc
        if not isinstance(data, dict) or not all(isinstance(t, dict) for t in data.values()):
            raise CorruptDatabaseError(f"{where} is not a TinyDB database of tables: {hint}")
        return data

    def read(self) -> Data:
        return self._data

    def write(self, data: Data) -> None:
        self._data = data
        self._forget_chunks()
        self.dirty = True

    def touch(self, table: str, doc_id: str) -> None:
        """Record that a document was added, replaced, changed in place or removed."""
        self._touched.setdefault(table, set()).add(doc_id)
        self.dirty = True

    def _forget_chunks(self) -> None:
        self._chunks.clear()
        self._touched.clear()

    def reload(self) -> None:
        """Drop everything since the last flush."""
        self._data = self._load()
        self._forget_chunks()
        self.dirty = False

    def serialize(self) -> str:
        """The database as compact JSON, exactly `json.dumps(data, ensure_ascii=False,
        separators=(",", ":"))`, re-encoding only the chunks of documents touched since the last
        call (a commit at 200k thread links re-encoded 18 MB: 240 ms; now the new links only)."""
        return b"".join(self._parts()).decode("utf-8")

    def _parts(self) -> list[bytes]:
        """`serialize()` as UTF-8 pieces, mostly the cached chunks themselves: `flush` writes them
        one by one, so a commit never holds the whole database as one str plus its encoding
        (cached as bytes: 1 byte per ASCII char, where a str with any CJK text takes 2)."""
        parts: list[bytes] = [b"{"]
        for n, (name, docs) in enumerate(self._data.items()):
            parts.append((("," if n else "") + _dumps(name) + ":{").encode("utf-8"))
            for k, (_, text) in enumerate(self._table_chunks(name, docs)):
                parts += (b",", text) if k else (text,)  # the cached bytes, not a copy
            parts.append(b"}")
        parts.append(b"}")
        for name in set(self._chunks) - set(self._data):
            del self._chunks[name]
        self._touched.clear()
        return parts

    def _table_chunks(self, name: str, docs: dict[str, Any]) -> list[tuple[tuple[str, ...], bytes]]:
        keys = list(docs)
        touched = self._touched.get(name, set())
        old = self._chunks.get(name, [])
        new: list[tuple[tuple[str, ...], bytes]] = []
        for n, start in enumerate(range(0, len(keys), CHUNK_DOCS)):
            chunk = tuple(keys[start:start + CHUNK_DOCS])
            if n < len(old) and old[n][0] == chunk and touched.isdisjoint(chunk):
                new.append(old[n])
            else:
                text = _dumps({key: docs[key] for key in chunk}).encode("utf-8")[1:-1]
                new.append((chunk, text))
        self._chunks[name] = new
        return new

    def flush(self) -> None:
        """Write the data atomically: tmp file in the same dir, fsync, replace, fsync the dir."""
        if self.readonly:
            raise ReadOnlyError(f"{self.path} was opened read-only")
        parts = self._parts()
        if self.path is None:
            self._snapshot = b"".join(parts).decode("utf-8")
        else:
            tmp = self.path.with_name(f"{self._tmp_prefix}{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.writelines(parts)  # piece by piece: no whole-file copy in memory
                    fh.flush()
                    os.fsync(fh.fileno())
                if self.crash_hook is not None:  # tests: a kill between write and replace
                    self.crash_hook("mid_db_write")
                os.replace(tmp, self.path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self.dirty = False

    def close(self) -> None:
        """Does not flush: uncommitted changes are dropped, as in a crash."""


class _Table:
    """One TinyDB table edited in place, with an in-memory index from a key field to doc_id."""

    def __init__(self, storage: AtomicJSONStorage, name: str, key: str) -> None:
        self._storage = storage
        self.name = name
        self.key = key
        self.reindex()

    def reindex(self) -> None:
        docs = self._docs()
        self.index: dict[str, str] = {doc[self.key]: doc_id for doc_id, doc in docs.items()}
        self._next = max((int(d) for d in docs), default=0) + 1

    def _docs(self) -> dict[str, dict[str, Any]]:
        return self._storage.read().setdefault(self.name, {})

    def get(self, key: str) -> dict[str, Any] | None:
        doc_id = self.index.get(key)
        return self._docs()[doc_id] if doc_id is not None else None

    def writable(self) -> None:
        if self._storage.readonly:
            raise ReadOnlyError(f"the store is read-only (table {self.name!r})")

    def put(self, doc: dict[str, Any]) -> None:
        """Upsert by key; `doc` must already be a private copy."""
        self.writable()
        key = doc[self.key]
        doc_id = self.index.get(key)
        if doc_id is None:
            doc_id = str(self._next)
            self._next += 1
            self.index[key] = doc_id
        self._docs()[doc_id] = doc
        self._storage.touch(self.name, doc_id)

    def touch(self, key: str) -> None:
        """Say that the document of `key` was changed in place (so the next commit writes it)."""
        doc_id = self.index.get(key)
        if doc_id is not None:
            self._storage.touch(self.name, doc_id)

    def remove(self, key: str) -> None:
        self.writable()
        doc_id = self.index.pop(key, None)
        if doc_id is not None:
            del self._docs()[doc_id]
            self._storage.touch(self.name, doc_id)

    def values(self) -> Iterator[dict[str, Any]]:
        """Documents in insertion order (doc_id order for a freshly loaded file)."""
        docs = self._docs()
        return (docs[doc_id] for doc_id in self.index.values())

    def __len__(self) -> int:
        return len(self.index)


@dataclass(frozen=True)
class OutboxEntry:
    out: Outgoing
    status: str  # "queued" | "sent" | "failed"
    attempts: int
    next_attempt_at: datetime | None
    last_error: str
    sent_at: datetime | None
    code: int | None = None  # last SMTP reply code, when there was one


def _entry(doc: dict[str, Any]) -> OutboxEntry:
    out, when, sent = Outgoing.from_dict(doc["out"]), doc["next_attempt_at"], doc["sent_at"]
    return OutboxEntry(
        out, doc["status"], doc["attempts"], _dt(when), doc["last_error"], _dt(sent), doc["code"]
    )


class Store:
    """maild's state. `Store(None)` is an in-memory twin for tests; otherwise one process per dir."""

    def __init__(self, data_dir: Path | None, *, readonly: bool = False) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.readonly = readonly
        self._lock_fd: int | None = None
        path: Path | None = None
        if self.data_dir is not None:
            if not readonly:
                self.data_dir.mkdir(parents=True, exist_ok=True)
                self._lock_fd = self._take_lock(self.data_dir)
            path = self.data_dir / DB_FILE
        try:
            self._db = TinyDB(path, storage=AtomicJSONStorage, readonly=readonly)
        except BaseException:
            self._release_lock()
            raise
        self._storage: AtomicJSONStorage = self._db.storage  # type: ignore[assignment]
        self._items = _Table(self._storage, "items", "id")
        self._processed = _Table(self._storage, "processed", "message_id")
        self._messages = _Table(self._storage, "messages", "message_id")
        self._outbox = _Table(self._storage, "outbox", "message_id")
        self._meta = _Table(self._storage, "meta", "key")
        self._tables = (self._items, self._processed, self._messages, self._outbox, self._meta)
        self._build_due_index()
        if not readonly and path is not None:
            self._storage._parts()  # fill the JSON chunk cache now, not in the first commit

    @classmethod
    def open_readonly(cls, data_dir: Path) -> Store:
        """The last committed state of `data_dir`, without the lock (the daemon may hold it).

        A missing directory or database reads as empty; every write raises `ReadOnlyError`.
        """
        return cls(Path(data_dir), readonly=True)

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
        self._db.close()
        self._release_lock()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def commit(self) -> None:
        """One atomic write of everything changed since the last commit; no-op when unchanged."""
        if self.readonly and self._storage.dirty:
            raise ReadOnlyError(f"{self.data_dir} was opened read-only")
        if self._storage.dirty:
            self._storage.flush()

    def rollback(self) -> None:
        """Forget everything since the last commit (reloads the committed state)."""
        self._storage.reload()
        for table in self._tables:
            table.reindex()
        self._build_due_index()

    @property
    def dirty(self) -> bool:
        return self._storage.dirty

    def set_crash_hook(self, hook: Callable[[str], None] | None) -> None:
        """Tests: `hook("mid_db_write")` runs between the tmp file's fsync and the replace."""
        self._storage.crash_hook = hook

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
        doc = self._items.get(item_id)
        return _copy(doc) if doc is not None else None

    def put_item(self, item: dict[str, Any]) -> None:
        self._items.put(_copy(item))

    def all_items(self) -> list[dict[str, Any]]:
        """Every item in the live table, closed ones awaiting archiving included, oldest first."""
        return _copy(list(self._items.values()))

    def open_items(self) -> list[dict[str, Any]]:
        """Items in the live table whose `state` is not "closed" (closed ones await archiving)."""
        return _copy([doc for doc in self._items.values() if doc.get("state") != "closed"])

    def remove_item(self, item_id: str) -> None:
        """Drop an item (archived) and the message links that pointed at it, so the live
        database keeps open work only; a late reply to it then reads as about no open item."""
        self._items.remove(item_id)
        for message_id in [d["message_id"] for d in self._messages.values()
                           if d.get("item_id") == item_id]:
            self._messages.remove(message_id)

    # -- intake idempotence ---------------------------------------------------------------------

    def processed(self, message_id: str) -> dict[str, Any] | None:
        doc = self._processed.get(message_id)
        return _copy(doc["outcome"]) if doc is not None else None

    def mark_processed(self, message_id: str, outcome: dict[str, Any]) -> None:
        self._processed.put({"message_id": message_id, "outcome": _copy(outcome)})

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

    # -- threading map ----------------------------------------------------------------------------

    def link_message(self, message_id: str, item_id: str, task_id: str | None) -> None:
        self._messages.put({"message_id": message_id, "item_id": item_id, "task_id": task_id})

    def lookup_message(self, message_id: str) -> tuple[str, str | None] | None:
        doc = self._messages.get(message_id)
        return (doc["item_id"], doc["task_id"]) if doc is not None else None

    # -- outbox -----------------------------------------------------------------------------------

    def _build_due_index(self) -> None:
        # queued message_id -> (next_attempt_at, enqueue sequence): finds due mail without parsing
        # every entry. The table's insertion order is the enqueue order.
        self._due: dict[str, tuple[datetime, int]] = {}
        for seq, doc in enumerate(self._outbox.values()):
            if doc["status"] == "queued":
                self._due[doc["message_id"]] = (datetime.fromisoformat(doc["next_attempt_at"]), seq)
        self._due_seq = len(self._outbox)

    def enqueue(self, out: Outgoing, *, now: datetime) -> None:
        """Queue an email; a second enqueue of the same Message-ID (in any status) is a no-op.

        Sent entries are pruned after `KEEP_SENT`; re-enqueueing after that would send again.
        """
        if self._outbox.get(out.message_id) is not None:
            return
        when = now.isoformat()
        doc = {"message_id": out.message_id, "out": _copy(out.to_dict()), "status": "queued"}
        doc.update(attempts=0, queued_at=when, next_attempt_at=when, last_error="", code=None)
        self._outbox.put({**doc, "sent_at": None})
        self._due[out.message_id] = (now, self._due_seq)
        self._due_seq += 1

    def outbox_due(self, now: datetime, limit: int = 500) -> list[OutboxEntry]:
        """Queued entries whose time has come, oldest due first (then in enqueue order)."""
        due = sorted((when, seq, mid) for mid, (when, seq) in self._due.items() if when <= now)
        return [_entry(self._outbox.get(mid)) for _, _, mid in due[:limit]]  # type: ignore[arg-type]

    def outbox_next_due(self) -> datetime | None:
        return min((when for when, _ in self._due.values()), default=None)

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
        self._outbox.touch(message_id)
        if status == "queued":
            seq = self._due[message_id][1] if message_id in self._due else self._due_seq
            self._due[message_id] = (datetime.fromisoformat(doc["next_attempt_at"]), seq)
        else:
            doc["next_attempt_at"] = None
            self._due.pop(message_id, None)

    def outbox_mark_sent(self, message_id: str, now: datetime) -> None:
        """Mark sent and drop the bodies: a sent entry keeps its headers, recipients, subject and
        Message-ID (for `maild outbox`, idempotent enqueue and pruning), not ~10 KB of text+HTML
        rewritten on every commit. Its `out.text` and `out.html` read back as ""."""
        self._set_outbox(message_id, "sent", None, sent_at=now.isoformat(), code=250)
        out = self._outbox.get(message_id)["out"]  # type: ignore[index]
        out["text"] = out["html"] = ""
        self._outbox.touch(message_id)

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
            self._outbox.touch(message_id)

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

    def outbox_entries(self, status: str | None = None) -> list[OutboxEntry]:
        return [_entry(d) for d in self._outbox.values() if status is None or d["status"] == status]

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

    # -- meta -------------------------------------------------------------------------------------

    def meta_get(self, key: str, default: Any = None) -> Any:
        doc = self._meta.get(key)
        return _copy(doc["value"]) if doc is not None else default

    def meta_set(self, key: str, value: Any) -> None:
        self._meta.put({"key": key, "value": _copy(value)})

    def counts(self) -> dict[str, int]:
        """Documents per table (for `maild status`)."""
        return {table.name: len(table) for table in self._tables}
