"""A local mail system for the demo and tests: an IMAP server and an SMTP server that delivers into it.

Both run in one background daemon thread with its own asyncio loop. IMAP is pymap's in-memory
dict backend (IDLE push in ~1 ms), embedded the way `pymap.main.run` wires it, with cleartext
passwords (its default PBKDF2 costs 0.3-0.6 s per LOGIN). SMTP is aiosmtpd on the same loop: it
appends straight into pymap's mailboxes, with no IMAP round trip.

pymap writes one response line in several socket writes; a client reading with a timeout (imapclient's
`idle_check`) then sees half a line ("unterminated line"). Each IMAP connection's writer is therefore
wrapped so that everything written between two drains leaves in one write.

Logins are full email addresses with cleartext passwords; every account starts with an empty INBOX
and everything is lost on `stop()` (a new UIDVALIDITY on the next start). Given an `oauth2_check`
(user, token) → bool, SMTP also offers AUTH XOAUTH2 (`xoauth2_auth`), refusing a token the way
Gmail and Exchange do: a 334 challenge carrying a JSON error, then 535.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal
import socket
import ssl
import threading
from argparse import Namespace
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from uuid import uuid4

from aiosmtpd.smtp import SMTP
from proxyprotocol.sock import SocketInfo
from pymap.backend.dict import Config as DictConfig
from pymap.backend.dict import Identity, Login
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pymap.parsing.message import AppendMessage
from pymap.user import UserMetadata
from pysasl.hashing import Cleartext

from maild.adapters.embeddedsmtp import SmtpHandler, TrackedSMTP, listen_on, set_nodelay

__all__ = ["EmbeddedMailSystem"]

_log = logging.getLogger("maild.embedded")  # the name logs have always shown

DATA_SIZE_LIMIT = 30 * 1024 * 1024
_SERVER_NAME = "maild-embedded"


class _Config(DictConfig):
    """pymap's dict config with a fixed greeting (the stock one resolves the FQDN per connection)."""

    @property
    def greeting(self) -> bytes:
        return b"Server ready " + _SERVER_NAME.encode("ascii")


class _CoalescingWriter:
    """A StreamWriter stand-in: bytes written between two drains go to the socket in one write."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._buffer = bytearray()

    def write(self, data: bytes) -> None:
        self._buffer += data

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self._buffer += chunk

    def _flush(self) -> None:
        if self._buffer:
            self._writer.write(bytes(self._buffer))
            self._buffer.clear()

    async def drain(self) -> None:
        self._flush()
        await self._writer.drain()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def __getattr__(self, name: str) -> Any:  # get_extra_info, is_closing, wait_closed, ...
        return getattr(self._writer, name)


class _QuickAckReader:
    """A StreamReader stand-in that ACKs an IMAP literal at once.

    imaplib sends a literal and its closing CRLF in two writes: with Nagle on the client, the CRLF
    waits for the literal's ACK, which the server's kernel delays ~40 ms. TCP_NODELAY here cannot
    help (asyncio sets it anyway); TCP_QUICKACK once the literal is read sends that ACK now.
    """

    def __init__(self, reader: asyncio.StreamReader, sock: socket.socket | None) -> None:
        self._reader = reader
        self._sock = sock if hasattr(socket, "TCP_QUICKACK") else None

    async def readexactly(self, n: int) -> bytes:
        data = await self._reader.readexactly(n)
        if self._sock is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass
        return data

    def __getattr__(self, name: str) -> Any:  # readline, at_eof, ...
        return getattr(self._reader, name)


class EmbeddedMailSystem(SmtpHandler):
    """IMAP (pymap, dict backend) + SMTP (aiosmtpd) on one host, delivering to local accounts."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        imap_port: int = 0,
        smtp_port: int = 0,
        accounts: Mapping[str, str] | None = None,
        oauth2_check: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.host = host
        self.oauth2_check = oauth2_check  # (user, token) → accepted; None: no XOAUTH2
        self.imap_port = imap_port  # the bound port once started
        self.smtp_port = smtp_port
        self._wanted_ports = (imap_port, smtp_port)
        self._accounts: dict[str, str] = {}  # address as given -> password
        self._by_lower: dict[str, str] = {}  # lower-cased address -> address as given
        self._login: Login | None = None
        self._config: _Config | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._imap_tasks: set[asyncio.Task[Any]] = set()
        self._smtp_transports: set[asyncio.BaseTransport] = set()
        self._lock = threading.Lock()  # serialises start/stop
        # False: `local+tag@d` is an unknown user (550), as on Tencent Exmail or on-prem
        # Exchange; tests of maild without plus addressing turn it off.
        self.plus_addressing = True
        for address, password in (accounts or {}).items():
            self._put_account(address, password)

    # -- public API -------------------------------------------------------------------------

    def start(self) -> None:
        """Start both servers in a background thread; return once both listen."""
        with self._lock:
            if self._thread is not None:
                return
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            thread = threading.Thread(
                target=self._thread_main, args=(ready,), name=_SERVER_NAME, daemon=True
            )
            thread.start()
            try:
                ready.result(timeout=30)
            except BaseException:
                thread.join(timeout=5)
                raise
            self._thread = thread

    def stop(self) -> None:
        """Stop both servers, close their connections and join the thread. Idempotent."""
        with self._lock:
            thread, loop, stopping = self._thread, self._loop, self._stopping
            if thread is None:
                return
            if loop is not None and stopping is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(stopping.set)
                except RuntimeError:  # loop already closed
                    pass
            thread.join()
            self._thread = None

    def __enter__(self) -> EmbeddedMailSystem:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def add_account(self, address: str, password: str) -> None:
        """Add (or re-password) an account; works before or after start()."""
        loop = self._loop
        if self._thread is None or loop is None:
            self._put_account(address, password)
            return
        future = asyncio.run_coroutine_threadsafe(self._add_account_async(address, password), loop)
        future.result(timeout=10)

    def serve_forever(self) -> None:
        """Start, block until SIGINT or SIGTERM, then stop cleanly. Call from the main thread."""
        interrupted = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            interrupted.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            _log.info(
                "mail system on %s: IMAP %d, SMTP %d", self.host, self.imap_port, self.smtp_port
            )
            while not interrupted.wait(0.5):
                if self._thread is None or not self._thread.is_alive():
                    break
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- accounts ---------------------------------------------------------------------------

    def _put_account(self, address: str, password: str) -> None:
        address = address.strip()
        if "@" not in address:
            raise ValueError(f"account must be a full email address: {address!r}")
        self._accounts[address] = password
        self._by_lower[address.lower()] = address
        if self._login is not None and self._config is not None:
            user = UserMetadata(self._config, address, password=password)
            self._login.users_dict[address] = user

    async def _add_account_async(self, address: str, password: str) -> None:
        self._put_account(address, password)

    def _resolve(self, address: str) -> str | None:
        """The account a recipient address delivers to: exact, else `local+tag@d` -> `local@d`
        (unless plus addressing is off)."""
        lower = address.lower()
        found = self._by_lower.get(lower)
        if found is None and "@" in lower and self.plus_addressing:
            local, _, domain = lower.rpartition("@")
            if "+" in local:
                found = self._by_lower.get(local.split("+", 1)[0] + "@" + domain)
        return found

    # -- the background loop ----------------------------------------------------------------

    def _thread_main(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:  # reported to start() when it fails before ready
            if not ready.done():
                ready.set_exception(exc)
            else:
                _log.exception("embedded mail system crashed")
        finally:
            self._loop = None
            self._login = None
            self._config = None

    async def _serve(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._imap_tasks.clear()
        self._smtp_transports.clear()
        config = self._make_config()
        config.apply_context()
        self._config = config
        self._login = Login(config)
        for address, password in list(self._accounts.items()):
            self._put_account(address, password)
        imap_server = IMAPServer(self._login, config)

        async def on_imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._imap_tasks.add(task)
            try:
                sock = writer.get_extra_info("socket")
                set_nodelay(sock)
                sock_info = SocketInfo.get(writer, None, unique_id=uuid4().bytes)
                await imap_server(
                    _QuickAckReader(reader, sock),  # type: ignore[arg-type]
                    _CoalescingWriter(writer),  # type: ignore[arg-type]
                    sock_info,
                )
            finally:
                self._imap_tasks.discard(task)

        def make_smtp() -> SMTP:
            protocol = TrackedSMTP(
                self,
                data_size_limit=DATA_SIZE_LIMIT,
                enable_SMTPUTF8=True,
                decode_data=False,
                hostname=_SERVER_NAME,
                auth_required=False,
                auth_require_tls=False,
                authenticator=self._authenticate,
                auth_exclude_mechanism=[] if self.oauth2_check else ["XOAUTH2"],
                loop=loop,
            )
            protocol.open_transports = self._smtp_transports
            return protocol

        imap_listener = await asyncio.start_server(
            on_imap, sock=listen_on(self.host, self._wanted_ports[0])
        )
        try:
            smtp_listener = await loop.create_server(
                make_smtp, sock=listen_on(self.host, self._wanted_ports[1])
            )
        except BaseException:
            imap_listener.close()
            raise
        self.imap_port = imap_listener.sockets[0].getsockname()[1]
        self.smtp_port = smtp_listener.sockets[0].getsockname()[1]
        self._loop = loop
        ready.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            await self._shutdown(imap_listener, smtp_listener)

    def _make_config(self) -> _Config:
        args = Namespace(
            host=self.host, port=self._wanted_ports[0], debug=False, cert=None, key=None,
            tls=False, proxy_protocol=None, inherited_sockets=None, passlib_cfg=None,
            demo_data=False, demo_user="", demo_password="", skip_services=[],
        )  # fmt: skip
        return _Config.from_args(
            args,
            hash_context=Cleartext(),
            cpu_subsystem=Subsystem.for_asyncio(),  # cleartext check: no thread pool needed
            ssl_context=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),  # unused: no TLS
            invalid_user_sleep=0.05,
            reject_dnsbl=False,
        )

    async def _shutdown(self, *listeners: asyncio.AbstractServer) -> None:
        for listener in listeners:
            listener.close()
        for transport in list(self._smtp_transports):
            transport.close()
        tasks = list(self._imap_tasks)
        for task in tasks:
            task.cancel()  # pymap answers "* BYE Server has closed the connection."
        await asyncio.gather(*tasks, return_exceptions=True)
        for listener in listeners:
            await listener.wait_closed()
        await asyncio.sleep(0)  # let connection_lost callbacks run before the loop closes

    async def _deliver(self, account: str, message: bytes) -> None:
        login = self._login
        assert login is not None
        identity = Identity(account, login, None, frozenset())
        append = AppendMessage(message, datetime.now(UTC), frozenset())
        async with identity.new_session() as session:
            await session.append_messages("INBOX", [append])
