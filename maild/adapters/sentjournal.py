"""The sent journal: every SMTP 250 written down, durably, the moment it arrives.

The outbox records a sent mark in the store, which becomes durable only with the next commit;
a SIGKILL in between used to re-send every email of the drain (or of a whole detached batch).
Each 250 is therefore also appended here as one line (the Message-ID) before the next email
goes out: written, it survives any crash of the process. Its fdatasync (for a crash of the
machine) runs on a thread while the next email is on the wire, and is waited for before the
next 250 is written, so the disk lags by at most one email: ~0.2 ms per email off the sending
path (about a tenth of an email's SMTP exchange here). At start-up the daemon folds the journal
into the outbox (those emails are marked sent and committed), then empties it; it also empties
it after each commit that holds the sent marks, while no send is in flight. So a crashed process
re-sends only the email that was on the wire when it came; a crashed machine, at most that one
and the one before.

Surprises:
- The daemon and the sender's child (`sender.py`) append to the same file, never at the same
  time (one send at a time), each through its own `SentJournal`; `O_APPEND` keeps a line whole.
- A torn last line (a kill inside `write`) is ignored when read: that email was in flight.
- `clear` truncates in place (no rename): a child holding the file open keeps appending to it.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path


class SentJournal:
    """One append-only file of Message-IDs the SMTP server accepted (see the module docs)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._syncer: ThreadPoolExecutor | None = None  # one thread: the fdatasyncs, in order
        self._syncing: Future[None] | None = None  # the last 250's, until it is on the disk

    def _open(self) -> int:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def record(self, message_id: str) -> None:
        """Append `message_id` (durable against a crash of the process on return) and start
        its fdatasync, once the previous one is done (see the module docs)."""
        if "\n" in message_id or "\r" in message_id:
            raise ValueError(f"not a Message-ID: {message_id!r}")
        fd = self._open()
        os.write(fd, message_id.encode("utf-8", "surrogateescape") + b"\n")
        self.synced()
        if self._syncer is None:
            self._syncer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sent-journal")
        self._syncing = self._syncer.submit(os.fdatasync, fd)

    def synced(self) -> None:
        """Wait until every recorded Message-ID is on the disk (raises the fdatasync's error)."""
        syncing, self._syncing = self._syncing, None
        if syncing is not None:
            syncing.result()

    def read(self) -> list[str]:
        """The Message-IDs recorded since the last `clear`, in order, once each."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")
        whole = lines[:-1]  # the part after the last newline is empty, or a torn line
        return list(dict.fromkeys(line.decode("utf-8", "surrogateescape")
                                  for line in whole if line))

    def clear(self) -> None:
        """Forget everything recorded (its sent marks are committed)."""
        if not self.path.exists():
            return
        fd = self._open()
        self.synced()
        if os.fstat(fd).st_size == 0:  # nothing sent since the last clear: no fsync to pay
            return
        os.ftruncate(fd, 0)
        os.fsync(fd)

    def close(self) -> None:
        try:
            self.synced()
        finally:
            if self._syncer is not None:
                self._syncer.shutdown(wait=True)
                self._syncer = None
            fd, self._fd = self._fd, None
            if fd is not None:
                os.close(fd)
