"""The bench's own mail servers on 127.0.0.1, in the bench process: maild and the floors use the same.

- IMAP: maild's embedded system (pymap's dict backend). Backlogs are injected straight into
  pymap's INBOX (`inject`, bench-only use of the embedded system's internals) so that filling
  10,000 emails does not take minutes of APPENDs.
- SMTP: an aiosmtpd sink that accepts every recipient and records, per message, the monotonic time
  of its 250 (CLOCK_MONOTONIC is system-wide, so children's clocks compare), its Message-ID,
  In-Reply-To and size. Nothing is stored beyond that.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from aiosmtpd.controller import Controller

from maild.adapters.embedded import EmbeddedMailSystem

ACCOUNTS = {"collab@corp.example": "collab-demo", "li.na@corp.example": "demo"}
_MID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
_IRT = re.compile(rb"^In-Reply-To:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)
_TO = re.compile(rb"^To:\s*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)
_SUBJ = re.compile(rb"^Subject:\s*([^\r\n]*)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Accepted:
    at: float
    message_id: str
    in_reply_to: str
    to: str
    size: int
    subject: str


class _Sink:
    def __init__(self) -> None:
        self.accepted: list[Accepted] = []
        self.cond = threading.Condition()

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        raw = envelope.original_content or b""
        head = raw[: raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw else 8192]
        mid, irt, to, subj = (m.group(1).decode("utf-8", "replace") if m else ""
                              for m in (r.search(head) for r in (_MID, _IRT, _TO, _SUBJ)))
        entry = Accepted(time.monotonic(), mid, irt, to, len(raw), subj)
        with self.cond:
            self.accepted.append(entry)
            self.cond.notify_all()
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        # Also in tests/pgserver.py (duplicates): bench/ does not import the tests' helpers.
        return sock.getsockname()[1]


class MailServers:
    def __init__(self) -> None:
        self.imap = EmbeddedMailSystem("127.0.0.1", 0, 0, dict(ACCOUNTS))
        self.sink = _Sink()
        self.smtp = Controller(self.sink, hostname="127.0.0.1", port=_free_port(),
                               data_size_limit=64 * 2**20, enable_SMTPUTF8=True)

    def start(self) -> MailServers:
        self.imap.start()
        self.smtp.start()
        return self

    def stop(self) -> None:
        self.smtp.stop()
        self.imap.stop()

    def restart_imap(self) -> None:
        """A fresh, empty IMAP server (pymap's memory freed) on a new port."""
        self.imap.stop()
        self.imap = EmbeddedMailSystem("127.0.0.1", 0, 0, dict(ACCOUNTS))
        self.imap.start()

    @property
    def smtp_port(self) -> int:
        return self.smtp.port

    @property
    def imap_port(self) -> int:
        return self.imap.imap_port

    # -- the sink --------------------------------------------------------------------------
    def count(self) -> int:
        return len(self.sink.accepted)

    def since(self, start: int) -> list[Accepted]:
        with self.sink.cond:
            return list(self.sink.accepted[start:])

    def wait_count(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.sink.cond:
            while len(self.sink.accepted) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sink.cond.wait(left)
        return True

    def clear_sink(self) -> None:
        with self.sink.cond:
            self.sink.accepted.clear()

    # -- IMAP ------------------------------------------------------------------------------
    def inject(self, raws: list[bytes], account: str = "collab@corp.example",
               chunk: int = 500) -> None:
        from pymap.backend.dict import Identity
        from pymap.parsing.message import AppendMessage

        system = self.imap
        loop, login = system._loop, system._login  # bench-only: bypass IMAP APPEND round trips
        assert loop is not None and login is not None

        async def put(part: list[bytes]) -> None:
            identity = Identity(account, login, None, frozenset())
            when = datetime.now(UTC)
            async with identity.new_session() as session:
                await session.append_messages(
                    "INBOX", [AppendMessage(r, when, frozenset()) for r in part])

        for start in range(0, len(raws), chunk):
            asyncio.run_coroutine_threadsafe(put(raws[start:start + chunk]), loop).result(120)
