"""Durable state for maild: items, intake idempotence, the threading map and the outbox, in one file.

The only module that imports TinyDB. Everything lives in `DATA_DIR/live.json`, a valid TinyDB
database (`{table: {doc_id: document}}`), guarded by an exclusive `flock` on `DATA_DIR/maild.lock`.

Surprises:
- Nothing reaches the disk until `commit()`. Writes only change memory; `commit()` writes the
  whole file once (tmp file + fsync + `os.replace` + fsync of the directory), so a crash leaves
  either the previous commit or the new one, never a mix. `close()` does NOT commit: uncommitted
  changes are dropped, which is what a crash would do too. `rollback()` returns to the last commit.
- In memory every document is held as its compact UTF-8 JSON (`bytes`), keyed by its table's key
  field, not as Python dicts: a dict tree took ~3× the JSON (an open item ~5.7 KB for 1.9 KB of
  JSON), the cyclic GC walked every one of them, and commits needed a second, serialised copy.
  Now a commit writes the held bytes as they are, `get_*` decodes (a fresh copy: callers may
  mutate it) and `put_*` encodes (a value JSON cannot hold fails there, not at commit). Scans
  (`open_items`, the prunes) decode as they go.
- TinyDB's own `Table` API is not used (its write path copies the whole table on every write, its
  queries are full scans); `Store` keeps TinyDB's file layout and `Storage` interface only. Doc
  ids are not kept: a commit numbers each table's documents 1..n in their order.
- Sent outbox entries are compacted to what `maild outbox`, idempotent enqueue and pruning need
  (Message-ID, recipients, subject, kind, item, attempts, code, remark, sent_at); queued and
  failed ones stay whole (they are still to be sent). Processed Message-IDs older than 30 days
  are dropped by `prune_processed` (the service's tick calls it).
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
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.decoder import scanstring
from pathlib import Path
from typing import Any

from tinydb import Storage, TinyDB

from .model import Outgoing

DB_FILE = "live.json"
LOCK_FILE = "maild.lock"
KEEP_SENT = timedelta(days=7)
KEEP_FAILED = timedelta(days=30)
KEEP_PROCESSED = timedelta(days=30)
# table -> the field that keys its documents; a table not listed here is keyed by its doc ids
TABLE_KEYS = {"items": "id", "processed": "message_id", "messages": "message_id",
              "outbox": "message_id", "meta": "key"}

Data = dict[str, dict[str, dict[str, Any]]]  # TinyDB's view: {table: {doc_id: document}}
Docs = dict[str, bytes]  # one table in memory: key -> the document as compact UTF-8 JSON
WRITE_BLOCK = 1 << 20  # bytes of documents joined per write() in a commit: few syscalls, and a
# small transient (by count, 512 queued emails with their bodies were a 6 MB join)
_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


class LockError(Exception):
    """Another process already runs on this data directory."""


class ReadOnlyError(Exception):
    """A write to a store opened with `Store.open_readonly`."""


class CorruptDatabaseError(Exception):
    """The database file exists but cannot be read; maild refuses to start empty over it."""


class _NotTables(ValueError):
    """Valid JSON, but not `{table: {doc_id: {document}}}`."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _encode(doc: Any) -> bytes:
    """A document as held in memory and written to disk; TypeError for non-JSON values."""
    return _dumps(doc).encode("utf-8")


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _skip(text: str, pos: int) -> int:
    return _WS.match(text, pos).end()  # type: ignore[union-attr]


def _expect(text: str, pos: int, wanted: str) -> int:
    """The position after `wanted`, which must be at `pos`."""
    if text[pos:pos + 1] != wanted:
        if pos >= len(text):
            raise json.JSONDecodeError(f"expected {wanted!r}", text, pos)
        raise _NotTables(f"expected {wanted!r} at offset {pos}")
    return pos + 1


def _object(text: str, pos: int, member: Callable[[str, int], int]) -> int:
    """Walk the JSON object at `pos`, calling `member(name, value_pos) -> value_end` for each
    member; returns the position after its closing brace."""
    pos = _skip(text, _expect(text, _skip(text, pos), "{"))
    if text[pos:pos + 1] == "}":
        return pos + 1
    while True:
        name, pos = scanstring(text, _expect(text, pos, '"'))
        pos = _skip(text, _expect(text, _skip(text, pos), ":"))
        pos = _skip(text, member(name, pos))
        if text[pos:pos + 1] == "}":
            return pos + 1
        pos = _skip(text, _expect(text, pos, ","))


def _parse_tables(text: str, keys: Mapping[str, str]) -> dict[str, Docs]:
    """`{table: {doc_id: {document}}}` → `{table: {key: encoded document}}`, one document at a
    time: the file never exists as one dict tree (~3× its size) while it is loaded.

    Raises `json.JSONDecodeError` for invalid JSON and `_NotTables` for any other shape.
    """
    tables: dict[str, Docs] = {}

    def table(name: str, pos: int) -> int:
        docs: Docs = {}
        field = keys.get(name)

        def document(doc_id: str, pos: int) -> int:
            doc, end = _DECODER.raw_decode(text, pos)
            if not isinstance(doc, dict):
                raise _NotTables(f"document {doc_id} of table {name!r} is not an object")
            key = doc_id if field is None else doc.get(field)
            if not isinstance(key, str):
                raise _NotTables(f"document {doc_id} of table {name!r} has no {field!r}")
            docs[key] = _encode(doc)
            return end

        end = _object(text, pos, document)
        tables[name] = docs
        return end

    end = _skip(text, _object(text, 0, table))
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return tables


class AtomicJSONStorage(Storage):
    """A TinyDB storage that holds the database in memory and writes it out atomically on `flush()`.

    Tables are held as `{key: document bytes}` (`table(name)`, for `Store`); `read()`/`write()`
    give TinyDB's dict view (decoded copies, for inspection). Only `flush()` touches the disk.
    With `path=None` it is a purely in-memory twin whose `flush()` keeps a snapshot for `reload()`.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, readonly: bool = False,
                 keys: Mapping[str, str] | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.readonly = readonly
        self.keys = dict(TABLE_KEYS if keys is None else keys)
        self._tmp_prefix = f"{self.path.name}." if self.path is not None else ""
        self.crash_hook: Callable[[str], None] | None = None  # set by the service
        self.dirty = False
        self._snapshot = b"{}"  # last committed file, only kept for the in-memory twin
        if self.path is not None and not readonly:  # a reader must not touch the writer's tmp
            self._remove_stale_tmp()
        self._tables: dict[str, Docs] = self._load()

    def _remove_stale_tmp(self) -> None:
        assert self.path is not None
        for tmp in self.path.parent.glob(f"{self._tmp_prefix}*.tmp"):
            tmp.unlink(missing_ok=True)

    def _load(self) -> dict[str, Docs]:
        if self.path is None:
            return _parse_tables(self._snapshot.decode("utf-8"), self.keys)
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        where = f"maild database {self.path}"
        hint = "restore it from a backup or move it aside; maild will not start empty over it"
        if not raw.strip():
            raise CorruptDatabaseError(f"{where} is empty ({len(raw)} bytes): {hint}")
        try:
            text = raw.decode("utf-8")
            del raw  # the file is held once while it is parsed
            return _parse_tables(text, self.keys)
        except _NotTables as exc:
            raise CorruptDatabaseError(f"{where} is not a TinyDB database of tables ({exc}): "
                                       f"{hint}") from exc
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorruptDatabaseError(f"{where} is not valid JSON ({exc}): {hint}") from exc

    def table(self, name: str) -> Docs:
        """The live `{key: document bytes}` of a table (created empty when missing)."""
        return self._tables.setdefault(name, {})

    def read(self) -> Data:
        """TinyDB's view of the database: decoded copies, doc ids as the next commit writes them."""
        return {name: {str(n): json.loads(text) for n, text in enumerate(docs.values(), 1)}
                for name, docs in self._tables.items()}

    def write(self, data: Data) -> None:
        tables: dict[str, Docs] = {}
        for name, docs in data.items():
            field = self.keys.get(name)
            tables[name] = {str(doc_id if field is None else doc[field]): _encode(doc)
                            for doc_id, doc in docs.items()}
        self._tables = tables
        self.dirty = True

    def reload(self) -> None:
        """Drop everything since the last flush."""
        self._tables = self._load()
        self.dirty = False

    def serialize(self) -> bytes:
        """The database file: exactly `json.dumps(self.read(), ensure_ascii=False,
        separators=(",", ":"))` in UTF-8."""
        return b"".join(self._pieces())

    def _pieces(self) -> Iterator[bytes]:
        """The file in pieces of about `WRITE_BLOCK` bytes: the held bytes go out as they are,
        so a commit never re-encodes a document nor holds the whole file."""
        yield b"{"
        for n, (name, docs) in enumerate(self._tables.items()):
            yield (("," if n else "") + _dumps(name) + ":{").encode("utf-8")
            block: list[bytes] = []
            size = 0
            for doc_id, text in enumerate(docs.values(), 1):
                block += (b'%s"%d":' % (b"," if doc_id > 1 else b"", doc_id), text)
                size += len(text)
                if size >= WRITE_BLOCK:
                    yield b"".join(block)
                    block.clear()
                    size = 0
            yield b"".join(block) + b"}"
        yield b"}"

    def flush(self) -> None:
        """Write the data atomically: tmp file in the same dir, fsync, replace, fsync the dir."""
        if self.readonly:
            raise ReadOnlyError(f"{self.path} was opened read-only")
        if self.path is None:
            self._snapshot = self.serialize()
        else:
            tmp = self.path.with_name(f"{self._tmp_prefix}{os.getpid()}.tmp")
            try:
                with open(tmp, "wb") as fh:
                    fh.writelines(self._pieces())
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
    """One table of a storage: documents by key, decoded on the way out, encoded on the way in."""

    def __init__(self, storage: AtomicJSONStorage, name: str) -> None:
        self._storage = storage
        self.name = name
        self.key = storage.keys[name]

    def _docs(self) -> Docs:
        return self._storage.table(self.name)  # looked up each time: `reload` replaces it

    def get(self, key: str) -> dict[str, Any] | None:
        text = self._docs().get(key)
        return json.loads(text) if text is not None else None

    def __contains__(self, key: str) -> bool:
        return key in self._docs()

    def writable(self) -> None:
        if self._storage.readonly:
            raise ReadOnlyError(f"the store is read-only (table {self.name!r})")

    def put(self, doc: dict[str, Any]) -> None:
        """Upsert by key (an existing document keeps its place in the table's order)."""
        self.writable()
        text = _encode(doc)
        docs = self._docs()
        key = doc[self.key]
        if docs.get(key) != text:
            docs[key] = text
            self._storage.dirty = True

    def remove(self, key: str) -> None:
        self.writable()
        if self._docs().pop(key, None) is not None:
            self._storage.dirty = True

    def values(self) -> Iterator[dict[str, Any]]:
        """Decoded documents in table order (safe to remove from the table meanwhile)."""
        return (json.loads(text) for text in list(self._docs().values()))

    def raw(self) -> list[tuple[str, bytes]]:
        """(key, encoded document) pairs, for scans that can skip most documents undecoded."""
        return list(self._docs().items())

    def __len__(self) -> int:
        return len(self._docs())


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
        self._items = _Table(self._storage, "items")
        self._processed = _Table(self._storage, "processed")
        self._messages = _Table(self._storage, "messages")
        self._outbox = _Table(self._storage, "outbox")
        self._meta = _Table(self._storage, "meta")
        self._tables = (self._items, self._processed, self._messages, self._outbox, self._meta)
        self._build_due_index()

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
        return self._items.get(item_id)

    def has_item(self, item_id: str) -> bool:
        """Whether the live table holds the item (without decoding it, unlike `get_item`)."""
        return item_id in self._items

    def put_item(self, item: dict[str, Any]) -> None:
        self._items.put(item)

    def all_items(self) -> list[dict[str, Any]]:
        """Every item in the live table, closed ones awaiting archiving included, oldest first."""
        return list(self._items.values())

    def open_items(self) -> list[dict[str, Any]]:
        """Items in the live table whose `state` is not "closed" (closed ones await archiving)."""
        return [doc for doc in self._items.values() if doc.get("state") != "closed"]

    def remove_item(self, item_id: str) -> None:
        """Drop an item (archived) and the message links that pointed at it, so the live
        database keeps open work only; a late reply to it then reads as about no open item."""
        self._items.remove(item_id)
        needle = _encode(item_id)  # only links whose JSON holds the id as a string are decoded
        for message_id, text in self._messages.raw():
            if needle in text and json.loads(text).get("item_id") == item_id:
                self._messages.remove(message_id)

    # -- intake idempotence ---------------------------------------------------------------------

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
        for seq, (message_id, text) in enumerate(self._outbox.raw()):
            if b'"queued"' in text and (doc := json.loads(text))["status"] == "queued":
                self._due[message_id] = (datetime.fromisoformat(doc["next_attempt_at"]), seq)
        self._due_seq = len(self._outbox)

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
        self._due[out.message_id] = (now, self._due_seq)
        self._due_seq += 1

    def outbox_due(self, now: datetime, limit: int = 500) -> list[OutboxEntry]:
        """Queued entries whose time has come, oldest due first (then in enqueue order)."""
        return [_entry(self._outbox.get(mid))  # type: ignore[arg-type]
                for mid in self.outbox_due_ids(now, limit)]

    def outbox_due_ids(self, now: datetime, limit: int = 500) -> list[str]:
        """The Message-IDs `outbox_due` would return, without decoding their emails (a batch's
        ~800 emails decoded at once are ~25 MB; `outbox_entry` decodes one)."""
        due = sorted((when, seq, mid) for mid, (when, seq) in self._due.items() if when <= now)
        return [mid for _, _, mid in due[:limit]]

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
        if status == "queued":
            seq = self._due[message_id][1] if message_id in self._due else self._due_seq
            self._due[message_id] = (datetime.fromisoformat(doc["next_attempt_at"]), seq)
        else:
            doc["next_attempt_at"] = None
            self._due.pop(message_id, None)
        self._outbox.put(doc)

    def outbox_mark_sent(self, message_id: str, now: datetime) -> None:
        """Mark sent and compact the entry to what `maild outbox`, idempotent enqueue and
        pruning need: Message-ID, recipients, subject, kind, item, attempts, code, remark and
        sent_at (~0.3 KB, where the whole email is ~12 KB of JSON). It reads back with `out.text`
        and `out.html` "" and without threading headers, reply address, language or date."""
        self._outbox.writable()
        doc = self._outbox.get(message_id)
        if doc is None:
            raise KeyError(f"no outbox entry {message_id!r}")
        out = doc.get("out", doc)
        self._due.pop(message_id, None)
        self._outbox.put({"message_id": message_id, "status": "sent",
                          **{name: out.get(name) for name in SENT_FIELDS},
                          "attempts": doc["attempts"] + 1, "code": 250,
                          "last_error": doc.get("last_error", ""), "sent_at": now.isoformat()})

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
        return doc["value"] if doc is not None else default

    def meta_set(self, key: str, value: Any) -> None:
        self._meta.put({"key": key, "value": value})

    def counts(self) -> dict[str, int]:
        """Documents per table (for `maild status`)."""
        return {table.name: len(table) for table in self._tables}
