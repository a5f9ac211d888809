"""The inbox over IMAP (the only imapclient importer): fetch what waits, move it out, wait for more.

Everything still in INBOX is unhandled: maild moves each email to Processed or Quarantine only
after its effects are committed, so no UID bookkeeping survives a restart and a new UIDVALIDITY
costs nothing (intake is idempotent by Message-ID). Waiting uses IDLE, re-issued at most every
`idle_renew_s`, with a fetch after every wake-up so a lost push costs one renew interval at worst;
servers without IDLE are polled. A broken connection (including imapclient's "unterminated line"
on fragmented responses) is reopened with backoff and jitter. imapclient's `idle_check` swallows
EOF and returns nothing, so a connection cut during IDLE is detected by peeking the socket.

Memory: imapclient turns imaplib's protocol trace on (`debug = 5`), which formats the `repr` of
every fetched literal (~2.3× a big email, even with logging off); maild turns it off unless the
"imapclient.imaplib" logger is enabled for DEBUG. `fetch_new` asks for RFC822.SIZE first, fetches
emails of `BIG_BYTES` or more one at a time, and stops filling a batch at `BATCH_BYTES` (always
at least one email), so one batch never holds much more than one big email. An email over
`max_bytes` is never fetched whole: only its header block comes back, as `HeaderOnly` (bytes that
also carry the email's `size`), so memory stays under the cap whatever arrives.
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
from imapclient.exceptions import IMAPClientError, LoginError

from maild.core.signin import SignInError, TokenSource

log = logging.getLogger("maild.imap")

FETCH_CHUNK = 200
BIG_BYTES = 1 * 2**20  # emails at least this big are fetched alone
BATCH_BYTES = 32 * 2**20  # a batch stops growing here (the rest waits for the next batch)
# What a broken or refused connection raises; callers outside this module catch exactly these.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (IMAPClientError, OSError, ssl.SSLError,
                                                      EOFError)


class HeaderOnly(bytes):
    """The header block of an email too big to fetch whole; `size` is its RFC822.SIZE."""

    size: int

    def __new__(cls, header: bytes, size: int) -> HeaderOnly:
        self = super().__new__(cls, header)
        self.size = size
        return self


def header_block(raw: bytes) -> bytes:
    """`raw` up to and including the blank line that ends its header."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(separator)
        if at >= 0:
            return raw[:at + len(separator)]
    return raw


class Inbox(Protocol):
    def fetch_new(self, limit: int, max_bytes: int | None = None,
                  max_header_bytes: int = 256 * 1024) -> list[tuple[int, bytes]]: ...
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
    oauth: TokenSource | None = field(default=None, repr=False)  # XOAUTH2 instead of LOGIN


def login(client: IMAPClient, username: str, password: str, oauth: TokenSource | None) -> None:
    """LOGIN with the password, or AUTHENTICATE XOAUTH2 with a token from `oauth`. A refused
    token is reported and replaced once on the same connection (it may have expired or been
    revoked early); a refused fresh one raises SignInError saying which permission is missing."""
    if oauth is None:
        client.login(username, password)
        return
    for attempt in range(2):
        token = oauth.token()
        try:
            _xoauth2(client, username, token)
            return
        except LoginError as exc:
            explanation = oauth.refused(token, "imap", _server_text(exc))
            if attempt:
                raise SignInError(explanation) from None


def _xoauth2(client: IMAPClient, username: str, token: str) -> None:
    """AUTHENTICATE XOAUTH2. Unlike imapclient's `oauth2_login`, the server's error challenge
    (a JSON text after a refused token) is answered with an empty line, as the mechanism
    wants: `oauth2_login` sends the token again and Dovecot then waits until the timeout."""
    answered: list[bool] = []

    def answer(challenge: bytes) -> bytes:
        if answered:
            return b""
        answered.append(True)
        return f"user={username}\x01auth=Bearer {token}\x01\x01".encode()

    try:
        client._command_and_check("authenticate", "XOAUTH2", answer)  # imapclient's own path
    except IMAPClientError as exc:
        raise LoginError(str(exc)) from None


def _server_text(exc: BaseException) -> str:
    text = str(exc)
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else text


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
        if not logging.getLogger("imapclient.imaplib").isEnabledFor(logging.DEBUG):
            client._imap.debug = 0  # no repr() of every fetched email (see the module docstring)
        try:
            sock = client.socket()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        try:
            if s.security == "starttls":
                client.starttls(context)
            login(client, s.username, s.password, s.oauth)
        except SignInError:
            try:
                client.shutdown()
            except (OSError, IMAPClientError):
                pass
            raise
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
    def fetch_new(self, limit: int, max_bytes: int | None = None,
                  max_header_bytes: int = 256 * 1024) -> list[tuple[int, bytes]]:
        """Up to `limit` emails waiting in INBOX, by UID; one over `max_bytes` (by its
        RFC822.SIZE) comes back as its `HeaderOnly` header block (at most `max_header_bytes`
        and a little: a longer header is cut, and then reads as too long)."""
        def fetch(client: IMAPClient) -> list[tuple[int, bytes]]:
            # Some servers (pymap) only SEARCH what they already announced to this session.
            client.noop()
            uids = sorted(client.search(["ALL"]))[:limit]
            sizes = _sizes(client, uids, always=max_bytes is not None)
            big = [uid for uid in uids if max_bytes is not None and sizes.get(uid, 0) > max_bytes]
            found: list[tuple[int, bytes]] = []
            if big:
                part = f"BODY.PEEK[HEADER]<0.{max_header_bytes + 1024}>"
                for uid, item in client.fetch(big, [part]).items():
                    header = next((v for k, v in item.items()
                                   if k.startswith(b"BODY[HEADER]")), None)
                    if header is not None:
                        found.append((uid, HeaderOnly(bytes(header), sizes[uid])))
            rest = [uid for uid in uids if uid not in set(big)]
            for group in _fetch_groups(rest, sizes):
                data = client.fetch(group, ["BODY.PEEK[]"])
                for uid in group:
                    body = data.get(uid, {}).get(b"BODY[]")
                    if body is not None:  # bytes already: no copy
                        found.append((uid, body if isinstance(body, bytes) else bytes(body)))
                del data
            return sorted(found, key=lambda pair: pair[0])
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
                    if not responses and _peer_closed(client):
                        raise EOFError("server closed the connection during IDLE")
            finally:
                client.idle_done()
            self._on_contact()
        except (IMAPClientError, OSError, ssl.SSLError, EOFError, ValueError) as exc:
            # Covers imapclient's "unterminated line" on responses split across packets.
            self._drop(exc)


def _sizes(client: IMAPClient, uids: list[int], *, always: bool = False) -> dict[int, int]:
    """RFC822.SIZE of each uid (one cheap round trip per 1,000); for grouping, none is needed
    for a single uid, unless `always` (the size cap decides on it)."""
    sizes: dict[int, int] = {}
    if len(uids) < (1 if always else 2):
        return sizes
    for start in range(0, len(uids), 1000):
        chunk = uids[start:start + 1000]
        for uid, item in client.fetch(chunk, ["RFC822.SIZE"]).items():
            size = item.get(b"RFC822.SIZE")
            if isinstance(size, int):
                sizes[uid] = size
    return sizes


def _fetch_groups(uids: list[int], sizes: dict[int, int]) -> list[list[int]]:
    """`uids` in order, in FETCH groups: at most FETCH_CHUNK small emails per group, big ones
    (BIG_BYTES or more) alone, and no more uids once BATCH_BYTES is reached (at least one)."""
    groups: list[list[int]] = []
    group: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if (groups or group) and total + size > BATCH_BYTES:
            break
        if group and (size >= BIG_BYTES or len(group) >= FETCH_CHUNK):
            groups.append(group)
            group = []
        group.append(uid)
        total += size
        if size >= BIG_BYTES:
            groups.append(group)
            group = []
    if group:
        groups.append(group)
    return groups


def _is_change(response: object) -> bool:
    if isinstance(response, tuple) and response and response[0] == b"BYE":
        raise EOFError("server said BYE")  # checked first: ("BYE", text) has two parts too
    if isinstance(response, tuple) and len(response) >= 2:
        return response[1] in (b"EXISTS", b"RECENT", b"EXPUNGE", b"FETCH")
    return False


def _peer_closed(client: IMAPClient) -> bool:
    """True when the server has closed the connection. imapclient's `idle_check` swallows EOF
    and returns nothing, so without this a cut IDLE spins until the renew interval. The TCP
    socket is peeked through a duplicate descriptor, which works under TLS too and consumes
    nothing."""
    try:
        sock = client.socket()
        if isinstance(sock, ssl.SSLSocket) and sock.pending():
            return False
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as raw:
            return raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True


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

    def fetch_new(self, limit: int, max_bytes: int | None = None,
                  max_header_bytes: int = 256 * 1024) -> list[tuple[int, bytes]]:
        found = sorted(self.folders["INBOX"].items())[:limit]
        if max_bytes is None:
            return found
        return [(uid, HeaderOnly(header_block(raw)[:max_header_bytes + 1024], len(raw))
                 if len(raw) > max_bytes else raw) for uid, raw in found]

    def move(self, uids: list[int], folder: str) -> None:
        target = self.folders.setdefault(folder, {})
        for uid in uids:
            if uid in self.folders["INBOX"]:
                target[uid] = self.folders["INBOX"].pop(uid)

    def wait(self, timeout_s: float, should_stop: Callable[[], bool]) -> None:
        return None

    def close(self) -> None:
        return None
