"""A batch sent over two SMTP connections, against real aiosmtpd servers on 127.0.0.1: every
recipient gets their emails in queue order (none handed to the server before the previous one
to them was answered), a lost connection reconnects once while the other goes on, a refused
second connection leaves the batch to the first with nothing failed, and a child killed
mid-batch re-sends at most one email per connection and loses none."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from test_outbox import CountingController, Handler, email, free_port, outbox
from test_sender import SENDER, SETTINGS, T0, _queue, build, mail

from maild.adapters.outbox import SmtpSettings
from maild.adapters.sender import SenderOptions, SenderProcess
from maild.adapters.sentjournal import SentJournal
from maild.adapters.store import Store

pytestmark = pytest.mark.integration


@dataclass
class OrderHandler:
    """Accepts everything, a little slowly for some emails (so the two connections overtake
    each other), and writes down what each recipient got, in arrival order."""

    arrived: dict[str, list[str]] = field(default_factory=dict)  # recipient -> Message-IDs
    on_the_wire: set[str] = field(default_factory=set)  # recipients of unanswered emails
    overtaken: list[str] = field(default_factory=list)  # recipients given a second at once
    peers: set[object] = field(default_factory=set)  # the connections that carried email
    delay_s: float = 0.0

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, options: list) -> str:
        if address in self.on_the_wire:
            self.overtaken.append(address)
        self.on_the_wire.add(address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        message_id = message_from_bytes(envelope.original_content or b"")["Message-ID"]
        number = int(message_id.strip("<m").split("@")[0])
        await asyncio.sleep(self.delay_s or 0.004 * (number % 3))  # some answers come later
        for rcpt in envelope.rcpt_tos:
            self.arrived.setdefault(rcpt, []).append(message_id.strip("<>"))
            self.on_the_wire.discard(rcpt)
        self.peers.add(session.peer)
        return "250 Message accepted"


class OneAtATimeSMTP(SMTP):
    """A server that allows one connection per client: the second gets `refusal` (a 421
    greeting) or is closed before any greeting."""

    def __init__(self, *args: object, limit: LimitController, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.limit = limit

    async def _handle_client(self) -> None:
        if self.limit.open >= 1:
            self.limit.refused += 1
            if self.limit.refusal:
                await self.push(self.limit.refusal)
            assert self.transport is not None
            self.transport.close()
            return
        self.limit.open += 1
        try:
            await super()._handle_client()
        finally:
            self.limit.open -= 1


class LimitController(Controller):
    def __init__(self, handler: object, port: int, refusal: str) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port)
        self.refusal = refusal
        self.open = self.refused = 0

    def factory(self) -> SMTP:
        return OneAtATimeSMTP(self.handler, limit=self, **self.SMTP_kwargs)


@pytest.fixture
def order_server() -> Iterator[CountingController]:
    controller = CountingController(OrderHandler(), free_port())  # type: ignore[arg-type]
    controller.start()
    controller.connections = 0
    yield controller
    controller.stop()


def two_connection_sender(port: int, **options: object) -> SenderProcess:
    return SenderProcess(SenderOptions(SmtpSettings("127.0.0.1", port, "plain", timeout_s=5),
                                       envelope_from=SENDER, connections=2, **SETTINGS,
                                       **options))  # type: ignore[arg-type]


PEOPLE = ("wang@corp.example", "li@corp.example", "zhao@corp.example", "qian@corp.example")


def mixed_batch(count: int) -> list:
    """Emails to one person, and every fourth to two more in Cc (a kickoff, say)."""
    batch = []
    for n in range(1, count + 1):
        to = PEOPLE[n % 4]
        cc = (PEOPLE[(n + 1) % 4], PEOPLE[(n + 2) % 4]) if n % 4 == 0 else ()
        batch.append(mail(n, to, cc=cc))
    return batch


def test_two_connections_keep_each_recipients_order(order_server, tmp_path):
    batch = mixed_batch(40)
    store = Store(None)
    sender = two_connection_sender(order_server.port)
    try:
        sender.submit(_queue(store, *batch), T0, spool=tmp_path / "spool")
        detached = sender.result()
    finally:
        sender.close()
    assert detached is not None
    handler: OrderHandler = order_server.handler  # type: ignore[assignment]
    # the report in queue order, whichever connection answered first
    assert detached.report.sent == tuple(out.message_id for out in batch)
    assert order_server.connections == 2 and len(handler.peers) == 2  # both carried email
    assert handler.overtaken == []  # nobody was handed an email before the previous was answered
    for person in PEOPLE:
        queued = [out.message_id for out in batch if person in (*out.to, *out.cc)]
        assert handler.arrived[person] == queued, person
    bare = [name for name, _args, kwargs in detached.writes.calls if "sent" not in kwargs]
    assert bare == []  # each sent mark carries its entry: settle decodes nothing again


@pytest.fixture
def server() -> Iterator[CountingController]:
    """test_outbox's server: the recipient's local part says what it does (drop, busy, ...)."""
    controller = CountingController(Handler(), free_port())
    controller.start()
    controller.connections = 0
    yield controller
    controller.stop()


def test_a_lost_connection_reconnects_once_while_the_other_goes_on(server):
    store = Store(None)
    for n in range(1, 13):
        store.enqueue(email(n, "drop@example.com" if n == 2 else f"ok{n}@example.com"), now=T0)
    report = asyncio.run(outbox(store, server.port, connections=2).drain(T0))
    assert report.retried == ("m2@maild.test",)  # outcome unknown: retried, as with one
    assert report.sent == tuple(f"m{n}@maild.test" for n in range(1, 13) if n != 2)
    assert server.connections == 3  # two, and the lost one once more


def test_both_connections_lost_twice_reschedule_the_rest_untried(server):
    store = Store(None)
    for n in range(1, 7):
        store.enqueue(email(n, "drop@example.com"), now=T0)
    report = asyncio.run(outbox(store, server.port, connections=2).drain(T0))
    assert report.retried == tuple(f"m{n}@maild.test" for n in range(1, 7)) and not report.sent
    assert server.connections == 4 and server.handler.received == []
    untried = store.outbox_entries()[4:]
    assert all("connection lost twice" in e.last_error for e in untried)
    assert all(e.attempts == 1 for e in store.outbox_entries())


@pytest.mark.parametrize("refusal", ["421 4.7.0 too many connections from your address", ""],
                         ids=["421-greeting", "closed-at-once"])
def test_a_refused_second_connection_leaves_the_batch_to_the_first(tmp_path, refusal):
    controller = LimitController(Handler(), free_port(), refusal)
    controller.start()
    deadline = time.monotonic() + 5
    while controller.open and time.monotonic() < deadline:  # start()'s own probe has gone
        time.sleep(0.01)
    controller.refused = 0
    batch = [mail(n, PEOPLE[n % 4]) for n in range(1, 21)]
    sender = two_connection_sender(controller.port)
    try:
        sender.submit(_queue(Store(None), *batch), T0, spool=tmp_path / "spool")
        detached = sender.result()
    finally:
        sender.close()
        controller.stop()
    assert controller.refused == 1
    assert detached is not None
    assert detached.report.sent == tuple(out.message_id for out in batch)
    assert detached.report.retried == () and detached.report.failed == ()
    received = controller.handler.received
    assert sorted(received) == sorted(build(out) for out in batch)  # all of them, over one
    for person in PEOPLE:  # each person's in queue order (whichever lane the server took)
        theirs = [raw for raw in received if f"To: {person}".encode() in raw]
        assert theirs == [build(out) for out in batch if person in out.to], person


def test_a_child_killed_mid_batch_resends_at_most_one_per_connection(tmp_path):
    handler = OrderHandler(delay_s=0.02)
    controller = CountingController(handler, free_port())  # type: ignore[arg-type]
    controller.start()
    journal_path = tmp_path / "sent.journal"
    batch = [mail(n, PEOPLE[n % 4]) for n in range(1, 81)]
    store = Store(None)
    sender = two_connection_sender(controller.port, journal_path=journal_path)
    try:
        sender.submit(_queue(store, *batch), T0, spool=tmp_path / "spool")
        deadline = time.monotonic() + 20
        while sum(map(len, handler.arrived.values())) < 15 and time.monotonic() < deadline:
            time.sleep(0.002)
        assert sender._process is not None
        sender._process.kill()  # mid-batch: both connections have an email on the wire
        assert sender.result() is None  # nothing recorded: the daemon's store still has all
        journal = SentJournal(journal_path)
        written = journal.read()
        assert 15 <= len(written) < len(batch)
        for message_id in written:  # what the daemon's next start does with the journal
            store.outbox_mark_sent(message_id, T0)
        due = [(mid, store.outbox_document(mid) or b"") for mid in store.outbox_due_ids(T0, 100)]
        sender.submit(due, T0, spool=tmp_path / "spool")  # a new child sends the rest
        detached = sender.result()
    finally:
        sender.close()
        controller.stop()
    assert detached is not None and len(detached.report.sent) == len(batch) - len(written)
    got = [mid for mids in handler.arrived.values() for mid in mids]
    assert set(got) == {out.message_id for out in batch}  # none lost
    assert len(got) - len(batch) <= 2  # re-sent: at most what was on the wire, one per connection


class ForwardedTokens:
    """The daemon's token source, as the child's requests carry it."""

    def token(self) -> str:
        return "token-1"

    def refused(self, token: str, protocol: str = "", server_said: str = "") -> str:
        raise AssertionError(f"{protocol} refused {token}: {server_said}")


def test_every_connection_signs_in_with_the_forwarded_oauth2_token(tmp_path):
    from maild.adapters.embedded import EmbeddedMailSystem

    inbox, people = "collab@corp.example", ("li.na@corp.example", "wang.zhe@corp.example")
    offered: list[tuple[str, str]] = []

    def check(user: str, token: str) -> bool:
        offered.append((user, token))
        return token == "token-1"

    accounts = {inbox: "pw", **{person: "demo" for person in people}}
    with EmbeddedMailSystem("127.0.0.1", 0, 0, accounts, oauth2_check=check) as system:
        sender = SenderProcess(SenderOptions(
            SmtpSettings("127.0.0.1", system.smtp_port, "plain", username=inbox,
                         auth="oauth2", timeout_s=5),
            envelope_from=inbox, connections=2, **SETTINGS), oauth=ForwardedTokens())
        batch = [mail(n, people[n % 2]) for n in range(1, 11)]
        try:
            sender.submit(_queue(Store(None), *batch), T0, spool=tmp_path / "spool")
            detached = sender.result()
        finally:
            sender.close()
    assert detached is not None and detached.report.sent == tuple(o.message_id for o in batch)
    assert offered == [(inbox, "token-1")] * 2  # one sign-in per connection
