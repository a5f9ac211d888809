"""Documents on disk for the embedded store: a TinyDB snapshot plus an append-only journal of the
documents each commit changed, compacted into a new snapshot in the background.

The only module that imports TinyDB. `DATA_DIR/live.json` is a valid TinyDB database, written
by snapshot.py (one document per line, with a key directory beside it); `DATA_DIR/live.journal.N`
holds the commits made since that snapshot. A commit appends ONE checksummed record (the changed
documents, or their removal) to the journal and fdatasyncs it: it costs what changed, not the
size of the store. When the journal outgrows `compact_bytes` (and the snapshot's size), a thread
writes the whole state as of that commit as a new snapshot (tmp + fsync + rename) and only then
are the journals it covers deleted. Start-up reads the snapshot, then replays the journals it
names (`_store` table, key `journal`).

Surprises:
- Documents larger than `INLINE_MAX` bytes (any, in the tables `NOT_HELD`: summaries, due
  moments, the schedule's memory) are not kept in memory once committed: the table
  holds a reference (file, offset, length) and `get` reads them back with `pread` (page cache:
  microseconds). Smaller ones (thread links, intake marks, sent entries) stay in memory as
  their compact UTF-8 JSON. `get` always returns bytes.
- A record whose checksum fails at the END of the newest journal is a commit whose fsync never
  returned (power cut): it is cut off, as uncommitted. Anywhere else it is corruption:
  `CorruptDatabaseError`, and nothing is touched.
- `rollback()` restores the values changed since the last commit from an undo map: cheap.
- A finished compaction is adopted at the next commit (references move to the new file, files
  nothing refers to are closed); `close()` waits for a running one.
- Read-only opens (`readonly=True`) take no lock, write and delete nothing, may load only some
  `tables`, and see the state as of their opening even when the daemon compacts meanwhile
  (their descriptors keep the replaced files readable).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tinydb import Storage

from maild.adapters import journalfile, snapshot
from maild.adapters.compaction import Compaction
from maild.adapters.files import fsync_dir
from maild.adapters.journalfile import CorruptDatabaseError
from maild.adapters.journalreads import JournalReads
from maild.adapters.snapshot import (  # noqa: F401 - STORE_TABLE and encode_doc are part of this interface
    STORE_TABLE,
    NotTables,
    Value,
    encode_doc,
    inline_max,
    ref,
    ref_parts,
)

log = logging.getLogger("maild.journalstore")  # the name logs have always shown

SNAPSHOT_FILE = "live.json"
JOURNAL_PREFIX = "live.journal."
COMPACT_BYTES = 64 * 2**20


class ReadOnlyError(Exception):
    """A write to a store opened read-only."""


# -- the engine ---------------------------------------------------------------------------------


class JournalStorage(Compaction, JournalReads, Storage):
    """Tables of documents by key, committed to a journal, compacted into a TinyDB snapshot.

    `path=None` is a purely in-memory twin: commits keep nothing but the undo point."""

    def __init__(self, path: str | os.PathLike[str] | None = None, readonly: bool = False,
                 keys: Mapping[str, str] | None = None, tables: set[str] | None = None,
                 compact_bytes: int = COMPACT_BYTES) -> None:
        self.folder = Path(path) if path is not None else None
        self.readonly = readonly
        self.keys = dict(keys or {})
        self.keys.setdefault(STORE_TABLE, "key")
        self.compact_bytes = compact_bytes
        self.crash_hook: Callable[[str], None] | None = None
        self._wanted = None if tables is None else {*tables, STORE_TABLE}
        self._tables: dict[str, dict[str, Value]] = {}
        self._undo: dict[tuple[str, str], Value | None] = {}
        self._fds: dict[int, int] = {}  # file number -> descriptor, for references
        self._next_file = 1
        self._journal_gen = 1  # the journal new commits go to
        self._journal_fd: int | None = None
        self._journal_file = 0  # file number of the newest journal (for references)
        self._journal_file_gen = 0  # which generation that file is
        self._journal_size = 0
        self._snapshot_size = 0
        self._compactor: threading.Thread | None = None
        self._compacted: tuple[int, int, dict[str, list[tuple[str, Value, int]]]] | None = None
        self._compact_error: BaseException | None = None
        self._lock = threading.Lock()
        if self.folder is not None:
            if not readonly:
                for tmp in self.folder.glob(f"{SNAPSHOT_FILE}*.tmp"):
                    tmp.unlink(missing_ok=True)
            try:
                self._load()
            except BaseException:
                self._close_files()
                raise

    # -- files ---------------------------------------------------------------------------------

    @property
    def snapshot_path(self) -> Path:
        assert self.folder is not None
        return self.folder / SNAPSHOT_FILE

    def _journal_path(self, gen: int) -> Path:
        assert self.folder is not None
        return self.folder / f"{JOURNAL_PREFIX}{gen}"

    def _register(self, fd: int) -> int:
        number = self._next_file
        self._next_file += 1
        self._fds[number] = fd
        return number

    def _read(self, value: Value) -> bytes:
        if isinstance(value, bytes):
            return value
        file, offset, length = ref_parts(value)
        data = os.pread(self._fd(file), length, offset)
        if len(data) != length:
            raise CorruptDatabaseError(f"maild database in {self.folder}: a document ends early")
        return data

    def _fd(self, file: int) -> int:
        try:
            return self._fds[file]
        except KeyError:
            raise ValueError(f"the store in {self.folder} is closed: its documents cannot be "
                             f"read") from None

    def _journals(self) -> list[tuple[int, Path]]:
        assert self.folder is not None
        found = []
        for path in self.folder.glob(f"{JOURNAL_PREFIX}*"):
            suffix = path.name[len(JOURNAL_PREFIX):]
            if suffix.isdigit():
                found.append((int(suffix), path))
        return sorted(found)

    # -- loading -------------------------------------------------------------------------------

    def _load(self) -> None:
        hint = "restore it from a backup or move it aside; maild will not start empty over it"
        path = self.snapshot_path
        gen = 1
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            fd = None
        if fd is not None:
            number = self._register(fd)
            self._snapshot_size = os.fstat(fd).st_size
            try:
                self._tables = snapshot.read(path, fd, self.keys, self._wanted, STORE_TABLE)
            except NotTables as exc:
                raise CorruptDatabaseError(f"maild database {path} is not a TinyDB database of "
                                           f"tables ({exc}): {hint}") from exc
            except (UnicodeDecodeError, ValueError) as exc:
                raise CorruptDatabaseError(f"maild database {path} is not valid JSON ({exc}): "
                                           f"{hint}") from exc
            raw_gen = self._get_raw(STORE_TABLE, "journal")
            if raw_gen is not None:
                gen = int(json.loads(raw_gen)["value"])
        self._journal_gen = gen
        journals = self._journals()
        for number, jpath in journals:
            if number < gen:
                if not self.readonly:
                    jpath.unlink(missing_ok=True)  # covered by the snapshot
                continue
            self._replay(jpath, last=number == journals[-1][0], hint=hint)
            self._journal_gen = number

    def _replay(self, path: Path, *, last: bool, hint: str) -> None:
        fd = os.open(path, os.O_RDONLY)
        number = self._register(fd)
        size = os.fstat(fd).st_size
        try:
            for base, payload in journalfile.records(fd, size):
                for name, key, doc, at in journalfile.entries(payload):
                    if self._wanted is not None and name not in self._wanted:
                        continue
                    docs = self._tables.setdefault(name, {})
                    if doc == b"null":
                        docs.pop(key, None)
                    elif len(doc) > inline_max(name):
                        docs[key] = ref(number, base + at, len(doc))
                    else:
                        docs[key] = doc
        except ValueError as exc:
            raise CorruptDatabaseError(f"maild journal {path}: {exc}: {hint}") from None
        except journalfile.Damaged as damaged:
            if not (last and damaged.torn):
                raise CorruptDatabaseError(f"maild journal {path} has a damaged record at "
                                           f"offset {damaged.offset}: {hint}") from None
            log.warning("event=journal_torn_tail file=%s offset=%d bytes=%d", path,
                        damaged.offset, size - damaged.offset)
            if not self.readonly:
                with open(path, "r+b") as fh:
                    fh.truncate(damaged.offset)
                    os.fsync(fh.fileno())
            size = damaged.offset
        if last:
            self._journal_file, self._journal_size = number, size
            self._journal_file_gen = int(path.name[len(JOURNAL_PREFIX):])

    def _get_raw(self, table: str, key: str) -> bytes | None:
        value = self._tables.get(table, {}).get(key)
        return None if value is None else self._read(value)

    # -- documents -------------------------------------------------------------------------------

    def _writable(self, table: str) -> None:
        if self.readonly:
            raise ReadOnlyError(f"the store is read-only (table {table!r})")

    def put(self, table: str, key: str, text: bytes) -> None:
        self._writable(table)
        docs = self._tables.setdefault(table, {})
        old = docs.get(key)
        if old is not None and (old is text or (isinstance(old, bytes) and old == text)
                                or (isinstance(old, int) and len(text) == old & 0xFFFFFFFF
                                    and self._read(old) == text)):
            return
        self._undo.setdefault((table, key), old)
        docs[key] = text

    def remove(self, table: str, key: str) -> None:
        self._writable(table)
        docs = self._tables.get(table, {})
        if key in docs:
            self._undo.setdefault((table, key), docs[key])
            del docs[key]

    @property
    def dirty(self) -> bool:
        return bool(self._undo)

    def rollback(self) -> None:
        for (table, key), old in self._undo.items():
            docs = self._tables.setdefault(table, {})
            if old is None:
                docs.pop(key, None)
            else:
                docs[key] = old
        self._undo.clear()

    # -- commit ----------------------------------------------------------------------------------

    def commit(self) -> None:
        """One journal record with every document changed since the last commit, fsynced."""
        if not self._undo:
            self._adopt_compaction()
            return
        if self.readonly:
            raise ReadOnlyError(f"{self.folder} was opened read-only")
        if self.folder is None:
            self._undo.clear()
            return
        lines: list[bytes] = []
        placed: list[tuple[str, str, int, int]] = []  # table, key, offset in payload, length
        size = crc = 0
        for table, key in self._undo:
            value = self._tables.get(table, {}).get(key)
            prefix = journalfile.line_prefix(table, key)
            text = b"null" if value is None else self._read(value)
            if value is not None and len(text) > inline_max(table):
                placed.append((table, key, size + len(prefix), len(text)))
            line = prefix + text + b"]\n"
            lines.append(line)
            crc = zlib.crc32(line, crc)
            size += len(line)
        fd = self._open_journal()
        start = self._journal_size
        try:  # the lines go out as they are (no joined copy of a batch's ~10 MB of emails)
            journalfile.write_record(fd, lines, size, crc, start)
            del lines
            if self.crash_hook is not None:  # tests: a kill between the write and its fsync
                self.crash_hook("mid_db_write")
            os.fdatasync(fd)
        except BaseException:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise
        self._journal_size = start + journalfile.HEADER.size + size
        base = start + journalfile.HEADER.size
        for table, key, offset, length in placed:
            self._tables[table][key] = ref(self._journal_file, base + offset, length)
        self._undo.clear()
        self._adopt_compaction()
        if (self._journal_size >= max(self.compact_bytes, self._snapshot_size)
                and self._compactor is None):
            self.compact(wait=False)

    def _open_journal(self) -> int:
        if self._journal_fd is None:
            path = self._journal_path(self._journal_gen)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if self._journal_file and self._journal_file_gen == self._journal_gen:
                # replayed at start: the same file, now writable, under the same number
                os.close(self._fds[self._journal_file])
                self._fds[self._journal_file] = fd
            else:
                fsync_dir(path.parent)
                self._journal_file = self._register(fd)
                self._journal_file_gen = self._journal_gen
                self._journal_size = os.fstat(fd).st_size
            self._journal_fd = fd
        return self._journal_fd

    # -- TinyDB's Storage view ----------------------------------------------------------------

    def read(self) -> dict[str, dict[str, Any]]:
        """TinyDB's view: decoded copies, doc ids numbered as the next snapshot writes them."""
        return {name: {str(n): json.loads(self._read(value))
                       for n, value in enumerate(docs.values(), 1)}
                for name, docs in self._tables.items() if name != STORE_TABLE}

    def write(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        for name, docs in data.items():
            field = self.keys.get(name)
            wanted = {str(doc_id if field is None else doc[field]): encode_doc(doc, field)
                      for doc_id, doc in docs.items()}
            for key in [k for k in self._tables.get(name, {}) if k not in wanted]:
                self.remove(name, key)
            for key, text in wanted.items():
                self.put(name, key, text)

    def close(self) -> None:
        """Does not commit: uncommitted changes are dropped, as in a crash. A running
        compaction is finished first."""
        if self._compactor is not None:
            self._compactor.join()
            self._compactor = None
        self._close_files()

    def _close_files(self) -> None:
        for descriptor in self._fds.values():
            try:
                os.close(descriptor)
            except OSError:
                pass
        self._fds.clear()
        self._journal_fd = None

    def files(self) -> Iterator[Path]:
        """The files that hold the committed state (for backups and the bench)."""
        if self.folder is None:
            return iter(())
        paths = [self.snapshot_path] if self.snapshot_path.exists() else []
        paths += [p for gen, p in self._journals() if gen >= 1]
        return iter(paths)

def open_database(folder: Path | None, **options: Any) -> JournalStorage:
    """The store's engine as a TinyDB storage (`TinyDB(folder, storage=JournalStorage)`):
    TinyDB keeps its file layout and Storage interface; maild does not use its Table API (a
    full copy of the table on every write, queries as full scans)."""
    from tinydb import TinyDB

    database = TinyDB(folder, storage=JournalStorage, **options)
    return database.storage  # type: ignore[return-value]
