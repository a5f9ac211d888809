"""The inbox over IMAP (the only imapclient importer): fetch what waits, move it out, wait for more.

Everything still in INBOX is unhandled: maild moves each email to Processed or Quarantine only
after its effects are committed, so no UID bookkeeping survives a restart and a new UIDVALIDITY
costs nothing (intake is idempotent by Message-ID). Waiting uses IDLE, re-issued at most every
`idle_renew_s`, with a fetch after every wake-up so a lost push costs one renew interval at worst;
servers without IDLE are polled. A broken connection (including imapclient's "unterminated line"
on fragmented responses) is reopened with backoff and jitter.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

log = logging.getLogger("maild.imap")

FETCH_CHUNK = 200


class Inbox(Protocol):
    def fetch_new(self, limit: int) -> list[tuple[int, bytes]]: ...
    def move(self, uids: list[int], folder: str) -> None: ...
    def wait(self, timeout_s: float, should_stop: Callable[[], bool]) -> None: ...
    def close(self) -> None: ...


@dataclass
class ImapSettings:
    host: str
    port: int
    security: str  # tls | starttls | plain
    username: str
    password: str
    folders: tuple[str, ...] = ("Processed", "Quarantine")
    idle_renew_s: float = 540.0
    poll_interval_s: float = 30.0
    timeout_s: float = 60.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)


class ImapInbox:
    """An IMAP INBOX as maild uses it. Not thread-safe: one service thread owns it."""

    def __init__(self, settings: ImapSettings, *, rng: random.Random | None = None,
                 on_contact: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._client: IMAPClient | None = None
        self._rng = rng or random.Random()
        self._failures = 0
        self._on_contact = on_contact or (lambda: None)
        self.has_idle = False
        self.has_move = False
        self.uidvalidity: int | None = None

    # -- connection ----------------------------------------------------------------------
    def connect(self) -> IMAPClient:
        if self._client is not None:
            return self._client
        s = self.settings
        context = s.ssl_context or ssl.create_default_context()
        client = IMAPClient(s.host, port=s.port, ssl=s.security == "tls",
                            ssl_context=context if s.security == "tls" else None,
                            timeout=s.timeout_s)
        try:
            sock = client.socket()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        if s.security == "starttls":
            client.starttls(context)
        client.login(s.username, s.password)
        self.has_idle = client.has_capability("IDLE")
        self.has_move = client.has_capability("MOVE")
        for folder in s.folders:
            if not client.folder_exists(folder):
                client.create_folder(folder)
        selected = client.select_folder("INBOX")
        uidvalidity = selected.get(b"UIDVALIDITY")
        if self.uidvalidity is not None and uidvalidity != self.uidvalidity:
            log.info("event=uidvalidity_changed old=%s new=%s", self.uidvalidity, uidvalidity)
        self.uidvalidity = uidvalidity
        self._client = client
        self._failures = 0
        self._on_contact()
        log.info("event=imap_connected host=%s port=%s idle=%s move=%s", s.host, s.port,
                 self.has_idle, self.has_move)
        return client

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, OSError, ssl.SSLError):
            try:
                client.shutdown()
            except (OSError, IMAPClientError):
                pass

    def _drop(self, error: BaseException) -> None:
        """Forget a broken connection and back off before the next attempt."""
        self._failures += 1
        log.warning("event=imap_error error=%r failures=%d", error, self._failures)
        client, self._client = self._client, None
        if client is not None:
            try:
                client.shutdown()
            except (OSError, IMAPClientError):
                pass
        delay = min(60.0, 0.2 * 2 ** min(self._failures, 9))
        time.sleep(delay * self._rng.uniform(0.5, 1.0))

    def _call(self, operation: Callable[[IMAPClient], object]) -> object:
        for _attempt in range(3):
            try:
                result = operation(self.connect())
                self._on_contact()
                return result
            except (IMAPClientError, OSError, ssl.SSLError, EOFError) as exc:
                self._drop(exc)
        return operation(self.connect())

    # -- the Inbox protocol ----------------------------------------------------------------
    def fetch_new(self, limit: int) -> list[tuple[int, bytes]]:
        def fetch(client: IMAPClient) -> list[tuple[int, bytes]]:
            # Some servers (pymap) only SEARCH what they already announced to this session.
            client.noop()
            uids = sorted(client.search(["ALL"]))[:limit]
            found: list[tuple[int, bytes]] = []
            for start in range(0, len(uids), FETCH_CHUNK):
                chunk = uids[start:start + FETCH_CHUNK]
                data = client.fetch(chunk, ["BODY.PEEK[]"])
                for uid in chunk:
                    body = data.get(uid, {}).get(b"BODY[]")
                    if body is not None:
                        found.append((uid, bytes(body)))
            return found
        return self._call(fetch)  # type: ignore[return-value]

    def move(self, uids: list[int], folder: str) -> None:
        if not uids:
            return

        def move(client: IMAPClient) -> None:
            if self.has_move:
                client.move(uids, folder)
            else:
                client.copy(uids, folder)
                client.delete_messages(uids)
                client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()
        self._call(move)

    def wait(self, timeout_s: float, should_stop: Callable[[], bool]) -> None:
        """Return when the INBOX may have changed, `timeout_s` passed, or `should_stop()`."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            client = self.connect()
        except (IMAPClientError, OSError, ssl.SSLError, EOFError) as exc:
            self._drop(exc)
            return
        if not self.has_idle:
            deadline = min(deadline, time.monotonic() + self.settings.poll_interval_s)
            while time.monotonic() < deadline and not should_stop():
                time.sleep(min(0.2, self.settings.poll_interval_s))
                if time.monotonic() >= deadline:
                    break
            return
        renew_at = time.monotonic() + self.settings.idle_renew_s
        try:
            client.idle()
            try:
                while not should_stop():
                    now = time.monotonic()
                    if now >= deadline or now >= renew_at:
                        break
                    responses = client.idle_check(timeout=min(1.0, deadline - now))
                    if any(_is_change(r) for r in responses):
                        break
            finally:
                client.idle_done()
            self._on_contact()
        except (IMAPClientError, OSError, ssl.SSLError, EOFError, ValueError) as exc:
            # Covers imapclient's "unterminated line" on responses split across packets.
            self._drop(exc)


def _is_change(response: object) -> bool:
    if isinstance(response, tuple) and len(response) >= 2:
        return response[1] in (b"EXISTS", b"RECENT", b"EXPUNGE", b"FETCH")
    if isinstance(response, tuple) and response and response[0] == b"BYE":
        raise EOFError("server said BYE")
    return False


class MemoryInbox:
    """The in-memory twin of `ImapInbox` for unit tests of the service."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[int, bytes]] = {"INBOX": {}}
        self._next_uid = 1

    def deliver(self, raw: bytes) -> int:
        uid = self._next_uid
        self._next_uid += 1
        self.folders["INBOX"][uid] = raw
        return uid

    def fetch_new(self, limit: int) -> list[tuple[int, bytes]]:
        return sorted(self.folders["INBOX"].items())[:limit]

    def move(self, uids: list[int], folder: str) -> None:
        target = self.folders.setdefault(folder, {})
        for uid in uids:
            if uid in self.folders["INBOX"]:
                target[uid] = self.folders["INBOX"].pop(uid)

    def wait(self, timeout_s: float, should_stop: Callable[[], bool]) -> None:
        return None

    def close(self) -> None:
        return None
