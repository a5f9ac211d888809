"""Send a full batch's emails from a child process while the service handles the next batch.

Sending costs about 1 ms of CPU per email in aiosmtplib alone (the bench's raw-sending floor pays
the same), and a thread cannot run that beside the parsing and rendering of the next batch: the
GIL takes turns. A child process can. It holds its own `Outbox` (without a store) and its own SMTP
connections (`SenderOptions.connections`, `[smtp] connections`: a batch goes out over that many
at once, each recipient's emails still in queue order, see `sendlanes`), kept between batches,
and answers each request with the `DetachedSend` (the outcomes, in queue order), which the
service records on its own thread (`Outbox.settle`) and commits with its next batch. Each sent
mark carries the entry the child read, so `settle` compacts it without decoding the stored email
again.

The emails do not go through the pipe: `submit` writes the due entries to a spool file as the
store holds them (compact JSON, undecoded), one after the other, and sends their Message-IDs and
lengths. The child decodes each entry as it comes to it and builds its bytes (`to_mime`, as a
drain in the daemon would: the same bytes, the same Message-ID), so neither process holds a whole
batch of emails in memory at once (a batch is ~800 emails, ~11 MB; the child holds those read
ahead and not yet built: at most `sendlanes`' lookahead of 64, or the rest of the batch while it
is rescheduled untried, the server down), and the daemon, the bottleneck of a backlog, neither
decodes nor encodes them.

Surprises:
- One request at a time: `submit`, then `result` before the next `submit`. The spool file is
  rewritten by each `submit`.
- A child that dies or raises leaves nothing recorded: `result` returns None, the entries are
  still queued in the store, and the next drain sends them again (at-least-once, the same
  Message-IDs), as after any crash between a server's 250 and the commit that records it. The
  next `submit` starts a new child.
- The child is started with the `spawn` method (the daemon has threads and open sockets that a
  fork would copy) on the first `submit`, about 0.3 s; it exits when its pipe closes, so a
  SIGKILLed daemon does not leave it behind. It is spawned with the daemon's main module hidden
  (`_main_module_hidden`): spawn would run the `maild` script again in it, loading the whole
  daemon; it loads this module's imports only (no jinja2, no store engines).
- Crash points (tests, MAILD_CRASH_AT) reached in the child kill the daemon, then the child.
- An email that cannot be built fails alone, as in a drain ("cannot build the message"); one
  whose stored entry cannot be decoded fails alone too (it never would be), reported by its
  Message-ID with empty fields.
- With OAuth2 the child gets no secret: each request carries a current access token from the
  daemon's token source (`submit` may raise SignInError), used for the child's new connections.
- The child writes each 250 to the sent journal (`options.journal_path`) as it comes, so a
  daemon killed while the child sends re-sends, at its next start, only what was in flight: at
  most one email per connection (`connections`), as each connection has one email on the wire
  at a time. The journal is closed (its last fdatasync waited for) when the child exits.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, BinaryIO

from maild.adapters.outbox import Outbox, SmtpSettings
from maild.adapters.outboxstore import OutboxEntry, decode_entry
from maild.adapters.sendreport import DetachedSend
from maild.adapters.sentjournal import SentJournal
from maild.core.model import Outgoing
from maild.core.signin import SignInError, TokenSource
from maild.mail.mime import to_mime

log = logging.getLogger("maild.sender")  # the name logs have always shown


@dataclass(frozen=True)
class SenderOptions:
    """What the child needs to build its Outbox and the emails' bytes (all picklable)."""

    settings: SmtpSettings
    envelope_from: str
    max_attempts: int = 8
    backoff_initial_s: float = 5
    backoff_max_s: float = 1800
    crashpoints: frozenset[str] = frozenset()
    journal_path: Path | None = None  # the sent journal the child writes each 250 to
    connections: int = 1  # SMTP connections the child sends a batch over ([smtp] connections)
    from_address: str = field(kw_only=True)  # the From header of the bytes `to_mime` builds
    from_name: str = field(kw_only=True)

    def build_mime(self, out: Outgoing) -> bytes:
        """The bytes of `out`, the same in the daemon's drains and in the child (a resend of an
        email is byte-identical wherever it goes out)."""
        return to_mime(out, from_address=self.from_address, from_name=self.from_name)


class _Spool:
    """The child's view of a spool file, open for one request (an `sendlanes.Batch`): the due
    entries, decoded one at a time as the Outbox comes to them (without their bodies, so that a
    report of a batch's failures never holds them), and the bytes of those it sends
    (`build_mime`). The whole email of an entry handed out is kept until it is built: a few
    (the lanes' lookahead) when several connections send, one with one connection."""

    def __init__(self, options: SenderOptions) -> None:
        self.options = options
        self.handle: BinaryIO | None = None
        self.index: list[tuple[str, int]] = []  # (Message-ID, length), in spool order
        self.unreadable: list[tuple[str, str]] = []  # (Message-ID, why), for `with_unreadable`
        self._whole: dict[str, Outgoing] = {}  # Message-ID -> whole email, handed out, not built

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[OutboxEntry]:
        assert self.handle is not None
        self.handle.seek(0)
        self.unreadable = []
        self._whole = {}
        for message_id, length in self.index:
            document = self.handle.read(length)
            if len(document) != length:  # not the email's fault: the request fails, all queued
                raise OSError(f"the spool {self.handle.name} ends before {message_id}")
            try:
                entry = decode_entry(document)
            except Exception as exc:  # fails alone, below: it would not decode next time either
                log.exception("outbox: cannot decode the stored %s", message_id)
                self.unreadable.append((message_id, f"cannot read the stored email: "
                                                    f"{type(exc).__name__}: {exc}"))
                continue
            self._whole[entry.out.message_id] = entry.out
            yield replace(entry, out=replace(entry.out, text="", html="", attachments=()))

    def build_mime(self, out: Outgoing) -> bytes:
        """The bytes of an entry handed out: `to_mime` of its whole email, as a drain builds."""
        whole = self._whole.pop(out.message_id, None)
        if whole is None:
            raise LookupError(f"{out.message_id} is not an entry being sent")
        return self.options.build_mime(whole)

    def done(self) -> None:
        """The request is answered: forget the emails handed out and never built (rescheduled
        untried when the server was down)."""
        self._whole = {}

    def with_unreadable(self, sent: DetachedSend, now: datetime) -> DetachedSend:
        """`sent`, and the entries that could not be decoded failed (for good, once each)."""
        if not self.unreadable:
            return sent
        failed = []
        for message_id, error in self.unreadable:
            sent.writes.outbox_mark_failed(message_id, now=now, code=None, error=error)
            failed.append((Outgoing(message_id, (), "", "", ""), None, error))
        return replace(sent, report=replace(sent.report,
                                            failed=sent.report.failed + tuple(failed)))


class _ForwardedToken:
    """The child's token source: the access token that came with the current request."""

    def __init__(self) -> None:
        self.value = ""

    def token(self) -> str:
        if not self.value:
            raise SignInError("no access token came from the daemon")
        return self.value

    def refused(self, token: str, protocol: str = "", server_said: str = "") -> str:
        self.value = ""
        return f"{protocol.upper()} refused the daemon's access token ({server_said})"


def _serve(conn: Connection, options: SenderOptions, daemon_pid: int) -> None:
    """The child: answer each (spool, index, now, token) with the DetachedSend, until the pipe
    closes."""
    spool = _Spool(options)
    forwarded = _ForwardedToken()
    journal = SentJournal(options.journal_path) if options.journal_path else None
    outbox = Outbox(None, options.settings, envelope_from=options.envelope_from,
                    build_mime=spool.build_mime,
                    max_attempts=options.max_attempts,
                    backoff_initial_s=options.backoff_initial_s,
                    backoff_max_s=options.backoff_max_s, oauth=forwarded, journal=journal,
                    connections=options.connections)
    if options.crashpoints:
        def crash(point: str) -> None:
            if point in options.crashpoints:
                os.kill(daemon_pid, signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
        outbox.crash_hook = crash
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return
            if request is None:
                return
            path, spool.index, now, forwarded.value = request
            try:
                with open(path, "rb") as spool.handle:
                    sent = loop.run_until_complete(outbox.send_detached(spool, now))
                answer: Any = spool.with_unreadable(sent, now)
            except Exception as exc:  # reported to the daemon, which re-sends from its store
                answer = f"{type(exc).__name__}: {exc}"
            spool.done()
            conn.send(answer)
    finally:
        try:
            loop.run_until_complete(outbox.close())
            loop.close()
        finally:
            if journal is not None:
                journal.close()  # its last fdatasync waited for, its thread and file closed


class SenderProcess:
    """The daemon's side of the child that sends detached batches."""

    def __init__(self, options: SenderOptions, oauth: TokenSource | None = None) -> None:
        self.options = options
        self.oauth = oauth if options.settings.auth == "oauth2" else None
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None
        self._waiting = False

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (ops, the bench's memory figures)."""
        return self._process.pid if self._process is not None else None

    def submit(self, documents: Iterable[tuple[str, bytes]], now: datetime, *,
               spool: Path) -> None:
        """Start sending the due entries `documents`: (Message-ID, the entry as the store holds
        it), read one at a time and written as they are to the file `spool`."""
        if self._waiting:
            raise RuntimeError("the previous send has not been collected")
        token = self.oauth.token() if self.oauth is not None else ""  # may raise SignInError
        index: list[tuple[str, int]] = []
        with open(spool, "wb") as handle:
            for message_id, document in documents:
                handle.write(document)
                index.append((message_id, len(document)))
        if self._process is None or not self._process.is_alive():
            self._start()
        assert self._conn is not None
        self._conn.send((spool, index, now, token))
        self._waiting = True

    def warm(self) -> None:
        """Start the child now (its imports take ~0.3 s), so the first `submit` does not wait."""
        if (self._process is None or not self._process.is_alive()) and not self._waiting:
            self._start()

    def ready(self) -> bool:
        """Whether `result` would answer without waiting (True when nothing was submitted)."""
        if not self._waiting or self._conn is None:
            return True
        try:
            return self._conn.poll()
        except (EOFError, OSError):
            return True

    def result(self) -> DetachedSend | None:
        """Wait for the send; None when the child failed (the entries stay queued)."""
        if not self._waiting:
            return None
        self._waiting = False
        assert self._conn is not None
        try:
            answer = self._conn.recv()
        except (EOFError, OSError) as exc:
            log.warning("event=sender_lost error=%r; its emails stay queued", exc)
            self._stop()
            return None
        if isinstance(answer, str):
            log.warning("event=sender_failed error=%s; its emails stay queued", answer)
            return None
        return answer

    def close(self) -> None:
        """Collect nothing more; ask the child to hang up and exit."""
        if self._conn is not None and not self._waiting:
            try:
                self._conn.send(None)
            except OSError:
                pass
        self._stop()

    def _start(self) -> None:
        self._stop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self.options, os.getpid()),
                                        name="maild-send", daemon=True)
        with _main_module_hidden():
            self._process.start()
        child.close()
        self._conn = parent

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None
        self._waiting = False


@contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Spawn runs the parent's main script again in the child (as `__mp_main__`) unless it is a
    package's `__main__`: the `maild` console script would load the whole daemon (jinja2, the
    store, the rules: ~40 MB, ~0.3 s) into a child that needs this module only. Without its
    `__file__` and `__spec__` while the child is prepared, nothing is run again."""
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__.pop(name) for name in ("__file__", "__spec__")
             if main is not None and name in main.__dict__}
    try:
        if main is not None:
            main.__spec__ = None  # type: ignore[assignment]
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)
