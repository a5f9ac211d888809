"""Send what the durable outbox says is due, over SMTP, and record each outcome in the store.

The only module that imports aiosmtplib. One `drain(now)` takes the due entries and sends them over
`connections` connections (1 unless told: the daemon's drains; the sender's child uses
`[smtp] connections`), each opened lazily and kept open after the drain for up to `keep_alive_s`
(30 s) of idleness so that the next drain reuses it (checked with a NOOP first; a dead one is
replaced without costing any email an attempt). `await close()` hangs up; the owner calls it at
shutdown. Several connections (`sendlanes`) keep each recipient's emails in queue order
(`sendorder`); the report comes back in queue order too.

Surprises:
- `drain` does NOT commit: it records outcomes (sent / retry / failed) in the store's memory and
  returns the report; the caller commits (once, together with whatever else it changed). A caller
  that never commits loses nothing but those marks: at the next start the entries are still
  queued and are sent again, which is the at-least-once contract below.
- One drain takes at most `max_per_drain` (2,000) due emails, enough for everything one inbound
  batch enqueues (200 emails × ~4 outgoing). A smaller cap (it was 500) let a backlog outrun the
  sending: the queue grew by every batch's excess, each queued email held whole in memory.
- At-least-once, not exactly-once: a crash after the server's 250 but before `store.commit()` sends
  the email again on the next drain, with the same Message-ID (and, since `Outgoing.date` is fixed
  at enqueue, the same bytes), which keeps threading right and lets clients that dedupe by
  Message-ID (e.g. Gmail) show it once. A connection that drops or times out in the
  middle of a message is treated the same way: outcome unknown, retried.
- A kept connection belongs to the event loop that opened it: a drain on another loop (e.g. one
  `asyncio.run` per drain) drops it and connects afresh. Idleness is measured with that loop's
  monotonic clock; `now` is still never read from a clock.
- Per-message problems never raise. 5xx → failed at once; 4xx, timeouts and dropped connections →
  retried with exponential backoff (±20 % jitter) and failed after `max_attempts` tries.
- When the connection cannot be (re)opened (refused, timeout, or a 4xx/5xx greeting, EHLO, STARTTLS
  or AUTH: a server or configuration problem, not the email's), or drops a second time in one
  drain, the rest of the batch is rescheduled without being tried (each counts one attempt), so a
  dead server is not hammered. With several connections, per connection: one that cannot be
  opened (a 421 "too many connections") or drops twice stops, the others carry the batch, and
  only the last one's giving up reschedules the rest. With the defaults (8 attempts, 5 s
  doubling: 5+10+…+320 s) an outage longer than ~11 minutes turns queued mail into failures.
- A partial refusal (some recipients accepted) counts as sent: retrying would duplicate the email
  for the accepted ones. The refused recipients are logged and kept in the entry's `last_error`.
- `send_detached` sends like `drain` but writes nothing: its outcomes come back in the
  `DetachedSend`, and `settle` records them in the store later, on the store's own thread or in
  another process (the sender's child, `sender.py`, which holds an Outbox without a store).
- `now` comes in; the module never reads the clock. Jitter comes from the injected `rng`.
- With `auth = "oauth2"` a connection signs in with XOAUTH2 and a token from `oauth`, asked
  for at each new connection (so an expired one is never offered). A refused token is reported
  to `oauth` and the connection is tried once more with a fresh one; a second refusal, or no
  token at all (`SignInError`), reschedules the batch like any server problem, with the
  reason saying which permission is missing.
- With a `journal` (`sentjournal.SentJournal`), each 250 is also appended there and fsynced
  before the next email is sent, so a crash before the commit re-sends only the emails that were
  in flight, one per connection (the service folds the journal into the store at start-up).
- With XOAUTH2 each connection asks `oauth` for its own token and reports its own refusal.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import aiosmtplib

from maild.adapters.outboxstore import OutboxEntry
from maild.adapters.sendlanes import Batch, LaneBatch, run_lane
from maild.adapters.sendreport import (
    CannotConnect,
    ConnectionLost,
    DetachedSend,
    DrainReport,
    LaterWrites,
    Outcomes,
    Tally,
    recipients_of,
)
from maild.adapters.sentjournal import SentJournal
from maild.core.model import Outgoing
from maild.core.signin import SignInError, TokenSource

if TYPE_CHECKING:  # the sender's child holds no store: it does not load the store's engines
    from maild.adapters.store import Store

log = logging.getLogger("maild.outbox")  # the name logs have always shown

SECURITY_MODES = ("tls", "starttls", "plain")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # "tls" (implicit TLS, 465) | "starttls" (required) | "plain"
    username: str = ""
    password: str = ""
    timeout_s: float = 30.0
    auth: str = "password"  # password | oauth2 (XOAUTH2: the Outbox's `oauth` gives tokens)

    def __post_init__(self) -> None:
        if self.security not in SECURITY_MODES:
            raise ValueError(
                f"smtp security must be one of {SECURITY_MODES}, not {self.security!r}"
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return f"{exc.code} {exc.message}".strip()
    return f"{type(exc).__name__}: {exc}".strip().rstrip(":")


class Outbox:
    def __init__(
        self,
        store: Store | None,
        settings: SmtpSettings,
        *,
        envelope_from: str,
        build_mime: Callable[[Outgoing], bytes],
        max_attempts: int = 8,
        backoff_initial_s: float = 5,
        backoff_max_s: float = 1800,
        rng: random.Random | None = None,
        keep_alive_s: float = 30.0,
        max_per_drain: int = 2000,
        oauth: TokenSource | None = None,
        journal: SentJournal | None = None,
        connections: int = 1,
    ) -> None:
        # Assignments alike in shape to Service's (duplicates): constructors, not shared logic.
        self.store = store
        self.settings = settings
        self.envelope_from = envelope_from
        self.build_mime = build_mime
        self.outcomes = Outcomes(max_attempts, backoff_initial_s, backoff_max_s,
                                 rng or random.Random())
        self.backoff, self.reschedule = self.outcomes.backoff, self.outcomes.reschedule
        self.keep_alive_s = keep_alive_s  # 0: hang up at the end of every drain
        self.max_per_drain = max_per_drain
        self.journal = journal  # where each 250 is written down at once (see the module docs)
        self.connections = connections  # at most this many at once (`sendlanes`)
        self.connections_opened = 0  # for tests and `maild status`
        self._kept: aiosmtplib.SMTP | None = None  # the connection kept between drains
        self._spare: list[aiosmtplib.SMTP] = []  # the other lanes' connections kept with it
        self._kept_loop: asyncio.AbstractEventLoop | None = None
        self._kept_since = 0.0  # loop.time() of its last use
        self.crash_hook: Callable[[str], None] | None = None  # set by the service
        self.oauth = oauth if settings.auth == "oauth2" else None

    # -- connection --------------------------------------------------------------------------

    def _client(self, offered: list[str] | None = None) -> aiosmtplib.SMTP:
        """A new client; with XOAUTH2 the token it offers is appended to `offered`."""
        s = self.settings
        offered = [] if offered is None else offered
        sign_in: dict[str, Any] = {"password": s.password or None}
        if self.oauth is not None:
            oauth = self.oauth

            async def token() -> str:  # per connection: lanes may sign in at the same time
                offered.append(await asyncio.to_thread(oauth.token))  # may ask the endpoint
                return offered[-1]
            sign_in = {"oauth_token_generator": token}
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.security == "tls",
            start_tls=s.security == "starttls",
            username=s.username or None,
            timeout=s.timeout_s,
            **sign_in,
        )

    async def _connect(self) -> aiosmtplib.SMTP:
        for attempt in range(2):
            offered: list[str] = []  # the token offered on this connection (XOAUTH2)
            client = self._client(offered)
            self.connections_opened += 1
            try:
                await client.connect()  # also STARTTLS and login, per the constructor arguments
                return client
            except aiosmtplib.SMTPAuthenticationError as exc:
                client.close()
                if self.oauth is None:
                    raise
                why = self.oauth.refused(offered[-1] if offered else "", "smtp",
                                         f"{exc.code} {exc.message}")
                if attempt:
                    raise SignInError(why) from None
            except BaseException:
                client.close()
                raise
        raise AssertionError("unreachable")

    async def open_connection(self) -> aiosmtplib.SMTP:
        """A new connection, signed in; raises `CannotConnect` saying why (and the code)."""
        try:
            return await self._connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError, SignInError) as exc:
            where = f"{self.settings.host}:{self.settings.port}"
            code = exc.code if isinstance(exc, aiosmtplib.SMTPResponseException) else None
            raise CannotConnect(f"cannot connect to {where}: {_describe(exc)}", code) from exc

    @staticmethod
    async def hang_up(client: aiosmtplib.SMTP | None) -> None:
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass
        finally:
            client.close()

    async def reuse(self) -> aiosmtplib.SMTP | None:
        """A connection kept from an earlier drain if it is still usable, else None."""
        client, loop = self._kept, self._kept_loop
        if self._spare:
            client = self._spare.pop()
        else:
            self._kept = self._kept_loop = None
        if client is None:
            return None
        running = asyncio.get_running_loop()
        if loop is not running or loop is None or loop.is_closed():
            _abandon(client)
            return None
        if running.time() - self._kept_since > self.keep_alive_s or not client.is_connected:
            await self.hang_up(client)
            return None
        try:
            await client.noop()  # the server may have timed us out while we were idle
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()
            return None
        return client

    async def keep(self, client: aiosmtplib.SMTP | None) -> None:
        """After a drain: keep a healthy connection for the next one, or hang up."""
        if client is None:
            return
        if self.keep_alive_s <= 0 or not client.is_connected:
            await self.hang_up(client)
            return
        running = asyncio.get_running_loop()
        if self._kept is not None and self._kept_loop is running:
            self._spare.append(client)  # an idle one among them is NOOP-checked before reuse
        else:
            await self.close()  # one kept on another loop: unusable
            self._kept, self._kept_loop = client, running
        self._kept_since = running.time()

    async def close(self) -> None:
        """Hang up the connections kept between drains (politely, with QUIT). Idempotent."""
        clients, loop = [self._kept, *self._spare], self._kept_loop
        self._kept = self._kept_loop = None
        self._spare = []
        for client in clients:
            if client is None:
                continue
            if loop is not asyncio.get_running_loop() or loop is None or loop.is_closed():
                _abandon(client)
            else:
                await self.hang_up(client)

    # -- sending -----------------------------------------------------------------------------

    async def send_one(
        self, client: aiosmtplib.SMTP, entry: OutboxEntry, tally: Tally, now: datetime
    ) -> None:
        """Send one email and record the outcome; raises `ConnectionLost` if the link broke."""
        out = entry.out
        recipients = recipients_of(out)
        if not recipients:
            self.outcomes.fail(tally, entry, now, None, "no recipients")
            return
        try:
            message = self.build_mime(out)
        except Exception as exc:  # a rendering bug must not stop the rest of the queue
            log.exception("outbox: cannot build %s", out.message_id)
            self.outcomes.fail(tally, entry, now, None, f"cannot build the message: {_describe(exc)}")
            return
        try:
            refused, _reply = await client.sendmail(self.envelope_from, recipients, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            error = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            if codes and all(code >= 500 for code in codes):
                self.outcomes.fail(tally, entry, now, codes[0], error)
            else:
                temp = [c for c in codes if c < 500]
                self.reschedule(tally, entry, now, temp[0] if temp else None, error)
        except aiosmtplib.SMTPResponseException as exc:
            # SMTPDataError, SMTPSenderRefused, ...; 421 means the server is closing on us.
            if exc.code >= 500:
                self.outcomes.fail(tally, entry, now, exc.code, _describe(exc))
            else:
                self.reschedule(tally, entry, now, exc.code, _describe(exc))
            if exc.code == 421 or not client.is_connected:
                raise ConnectionLost(_describe(exc)) from exc
        except (ValueError, aiosmtplib.SMTPNotSupported) as exc:
            # an address aiosmtplib will not put on the wire (injection, non-ASCII without SMTPUTF8)
            self.outcomes.fail(tally, entry, now, None, _describe(exc))
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            # disconnects, timeouts, socket errors: the email may or may not have gone through
            self.reschedule(tally, entry, now, None, _describe(exc))
            raise ConnectionLost(_describe(exc)) from exc
        else:
            if self.journal is not None:
                self.journal.record(out.message_id)
            if self.crash_hook is not None:  # tests: a kill after the 250, before the mark
                self.crash_hook("after_smtp_250")
            tally.writes.outbox_mark_sent(out.message_id, now, sent=entry)
            tally.sent.append(out.message_id)
            if refused:
                note = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
                log.warning("outbox: %s partly refused: %s", out.message_id, note)
                tally.writes.outbox_note(out.message_id, f"partly refused: {note}")

    async def drain(self, now: datetime, exclude: frozenset[str] = frozenset()) -> DrainReport:
        """Send every due email once and record the outcomes in the store, WITHOUT committing
        (the caller commits). Never raises for SMTP trouble. `exclude`: Message-IDs another
        process is sending meanwhile (the sender's child)."""
        tally = Tally(self.store)
        # the ids first: the emails the child holds (a schedule run's, thousands) are not decoded
        ids = [mid for mid in self.store.outbox_due_ids(now, self.max_per_drain + len(exclude))
               if mid not in exclude][:self.max_per_drain]
        due = [e for e in map(self.store.outbox_entry, ids) if e is not None]
        await self._send(due, now, tally)
        return tally.report()

    async def send_detached(self, due: Batch[OutboxEntry], now: datetime) -> DetachedSend:
        """Send `due` like `drain`, touching no store: safe on another thread while the store's
        owner goes on. Nothing is recorded until `settle` runs on the owner's thread, and no
        other drain may run in between (it would send the same entries again)."""
        tally = Tally(LaterWrites())
        await self._send(due, now, tally)
        return DetachedSend(tally.report(), tally.writes)

    def settle(self, detached: DetachedSend) -> DrainReport:
        """Record a detached send's outcomes in the store, WITHOUT committing."""
        detached.writes.replay(self.store)
        return detached.report

    async def _send(self, due: Batch[OutboxEntry], now: datetime, tally: Tally) -> None:
        if not due:
            if self._kept is not None and (
                self._kept_loop is not asyncio.get_running_loop()
                or asyncio.get_running_loop().time() - self._kept_since > self.keep_alive_s
            ):
                await self.close()  # idle too long: do not hold the server's slots
            return
        lanes = max(1, min(self.connections, len(due)))
        batch = LaneBatch(due, lambda e: recipients_of(e.out), lambda e: e.out.message_id,
                          lanes=lanes)
        if lanes == 1:
            await run_lane(self, batch, len(due), now, tally)
            return
        try:
            async with asyncio.TaskGroup() as group:  # one lane's error stops the others
                for _lane in range(lanes):
                    group.create_task(run_lane(self, batch, len(due), now, tally))
        except BaseExceptionGroup as errors:  # raised as with one lane
            raise errors.exceptions[0] from None
        # the report in queue order, whichever connection answered first
        first = batch.positions.get
        tally.sent.sort(key=first)  # type: ignore[arg-type]
        tally.retried.sort(key=first)  # type: ignore[arg-type]
        tally.failed.sort(key=lambda failed: first(failed[0].message_id, -1))

def _abandon(client: aiosmtplib.SMTP) -> None:
    """Drop a connection whose event loop is gone or not running: no QUIT is possible, so shut
    the socket down (the server sees the close) and forget it."""
    transport = client.transport
    try:
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        client.close()
    except RuntimeError:  # "Event loop is closed": the socket goes with the transport
        pass
