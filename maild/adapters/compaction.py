"""Compaction of the embedded store (a mixin of `JournalStorage`): the committed state written as
a new snapshot by a thread, while commits go on to the next journal, then adopted.

Surprises:
- `compact` freezes the tables by a shallow copy (documents are immutable bytes or references)
  and rotates to the next journal at once; the thread writes the snapshot and its key directory
  (snapshot.py) and renames them into place. Only a later `_adopt_compaction`, on the owner's
  thread and with nothing uncommitted, moves references to the new file, deletes the journals
  it covers and closes the files nothing refers to any more.
- A failed compaction is logged, not raised: the journals still hold everything.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from maild.adapters import snapshot
from maild.adapters.snapshot import STORE_TABLE, Value, encode_doc, ref, ref_parts

log = logging.getLogger("maild.journalstore")


class Compaction:
    """Compaction methods of `JournalStorage` (which provides the tables, files and journals)."""

    _tables: dict[str, dict[str, Value]]
    _undo: dict[tuple[str, str], Any]
    _fds: dict[int, int]
    _compactor: threading.Thread | None
    _compacted: Any
    _compact_error: BaseException | None
    _lock: Any
    _journal_gen: int
    _journal_fd: int | None
    _journal_size: int
    _journal_file: int
    _snapshot_size: int
    readonly: bool
    folder: Path | None
    keys: dict[str, str]
    crash_hook: Any
    snapshot_path: Path
    _read: Any
    _journals: Any
    _register: Any

    # -- compaction ---------------------------------------------------------------------------

    def compact(self, wait: bool = True) -> None:
        """Write the committed state as a new snapshot (in a thread unless `wait`); new commits
        go to the next journal meanwhile."""
        if self.readonly or self.folder is None:
            return
        if self._undo:
            raise RuntimeError("compact() with uncommitted changes")
        if self._compactor is not None:
            self._compactor.join()
            self._adopt_compaction()
        frozen = {name: dict(docs) for name, docs in self._tables.items()}
        gen = self._journal_gen + 1
        self._journal_gen = gen
        if self._journal_fd is not None:
            self._journal_fd = None  # its descriptor stays registered for the references
        self._journal_size = 0
        frozen[STORE_TABLE] = {**frozen.get(STORE_TABLE, {}),
                               "journal": encode_doc({"key": "journal", "value": gen}, "key")}
        thread = threading.Thread(target=self._write_snapshot, args=(frozen, gen),
                                  name="maild-compact", daemon=True)
        self._compactor = thread
        thread.start()
        if wait:
            thread.join()
            self._adopt_compaction()

    def _write_snapshot(self, frozen: dict[str, dict[str, Value]], gen: int) -> None:
        token = os.urandom(12).hex()
        frozen[STORE_TABLE]["snapshot"] = encode_doc({"key": "snapshot", "value": token}, "key")
        try:
            size, moved = snapshot.write(self.snapshot_path, frozen, self._read, self.keys,
                                         STORE_TABLE, token, self.crash_hook)
            with self._lock:
                self._compacted = (gen, size, moved)
        except BaseException as exc:  # noqa: BLE001 - reported on the owner's thread
            with self._lock:
                self._compact_error = exc

    def _adopt_compaction(self) -> None:
        """Once a compaction has landed (and nothing is uncommitted): point references at the
        new snapshot, delete the journals it covers, close files nothing refers to."""
        thread = self._compactor
        if thread is None or thread.is_alive() or self._undo:
            return
        self._compactor = None
        with self._lock:
            done, self._compacted = self._compacted, None
            error, self._compact_error = self._compact_error, None
        if error is not None:
            log.error("event=compaction_failed error=%r", error)
            return
        assert done is not None
        gen, size, moved = done
        fd = os.open(self.snapshot_path, os.O_RDONLY)
        number = self._register(fd)
        self._snapshot_size = size
        for name, entries in moved.items():
            docs = self._tables.get(name, {})
            for key, old, offset in entries:
                current = docs.get(key)
                if current is old:
                    text_len = len(old) if isinstance(old, bytes) else old & 0xFFFFFFFF
                    docs[key] = ref(number, offset, text_len)
        for jgen, jpath in self._journals():
            if jgen < gen:
                jpath.unlink(missing_ok=True)
        live = {ref_parts(value)[0] for docs in self._tables.values()
                for value in docs.values() if isinstance(value, int)}
        live.add(self._journal_file)
        for file, descriptor in list(self._fds.items()):
            if file not in live and file != number:
                os.close(descriptor)
                del self._fds[file]

    def wait_compaction(self) -> None:
        if self._compactor is not None:
            self._compactor.join()
            self._adopt_compaction()

