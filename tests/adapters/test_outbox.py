"""Outbox.drain against a real aiosmtpd server on 127.0.0.1 whose behaviour is chosen per recipient.

Recipients (local part decides): ok → 250; busy → 451 at RCPT; flaky → 451 the first time, then
250; gone → 550 at RCPT; drop → connection closed after DATA without a reply; hang → no reply to
DATA (the client times out). Implicit TLS and STARTTLS are not exercised here (no certificates in
the test environment); `test_client_settings_per_security_mode` checks the client is configured
for them.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from maild.adapters.outbox import Outbox, SmtpSettings
from maild.adapters.sendreport import DrainReport
from maild.adapters.store import Store
from maild.core.model import Outgoing

T0 = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
SENDER = "maild@example.com"


@dataclass
class Handler:
    received: list[bytes] = field(default_factory=list)
    flaky_seen: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        local = address.split("@")[0]
        if local == "busy":
            return "451 4.3.0 try again later"
        if local == "gone":
            return "550 5.1.1 no such user"
        if local == "flaky" and address not in self.flaky_seen:
            self.flaky_seen.add(address)
            return "451 4.7.1 greylisted"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        locals_ = {rcpt.split("@")[0] for rcpt in envelope.rcpt_tos}
        if "drop" in locals_:
            server.transport.close()
            return "250 never seen"
        if "hang" in locals_:
            await asyncio.sleep(3)
            return "250 too late"
        self.received.append(envelope.original_content or b"")
        return "250 Message accepted"


class CountingController(Controller):
    def __init__(self, handler: Handler, port: int, **kwargs: object) -> None:
        super().__init__(handler, hostname="127.0.0.1", port=port, **kwargs)
        self.connections = 0

    def factory(self) -> SMTP:
        self.connections += 1
        return super().factory()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server() -> Iterator[CountingController]:
    controller = CountingController(Handler(), free_port())
    controller.start()
    controller.connections = 0  # start() makes one connection of its own
    yield controller
    controller.stop()


def build_mime(out: Outgoing) -> bytes:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = ", ".join(out.to)
    if out.cc:
        msg["Cc"] = ", ".join(out.cc)
    msg["Subject"] = out.subject
    msg["Message-ID"] = f"<{out.message_id}>"
    msg.set_content(out.text)
    return msg.as_bytes()


def email(n: int, *to: str, cc: tuple[str, ...] = ()) -> Outgoing:
    return Outgoing(
        message_id=f"m{n}@maild.test", to=to or ("ok@example.com",), cc=cc, subject=f"s{n}",
        text=f"body {n}", html="",
    )  # fmt: skip


def outbox(store: Store, port: int, **kwargs: object) -> Outbox:
    settings = SmtpSettings("127.0.0.1", port, "plain", timeout_s=float(kwargs.pop("timeout_s", 5)))
    options = {"rng": random.Random(7), **kwargs}
    return Outbox(store, settings, envelope_from=SENDER, build_mime=build_mime, **options)  # type: ignore[arg-type]


def drain(box: Outbox, now: datetime) -> DrainReport:
    return asyncio.run(box.drain(now))


def drain_excluding(box: Outbox, now: datetime, exclude: frozenset[str]) -> DrainReport:
    return asyncio.run(box.drain(now, exclude))


def message_ids(handler: Handler) -> list[str]:
    return [message_from_bytes(raw)["Message-ID"] for raw in handler.received]


# -- pure parts -----------------------------------------------------------------------------------


def test_backoff_doubles_caps_and_jitters() -> None:
    box = Outbox(Store(None), SmtpSettings("h", 25, "plain"), envelope_from=SENDER,
                 build_mime=build_mime, rng=random.Random(1))  # fmt: skip
    for attempts, base in ((1, 5), (2, 10), (4, 40), (9, 1280), (10, 1800), (30, 1800)):
        delays = [box.backoff(attempts).total_seconds() for _ in range(50)]
        assert all(0.8 * base <= d <= 1.2 * base for d in delays), attempts
        assert len(set(delays)) > 1


def test_client_settings_per_security_mode() -> None:
    def client(security: str, user: str = ""):  # noqa: ANN202
        box = Outbox(Store(None), SmtpSettings("h", 1, security, username=user, password="pw"),
                     envelope_from=SENDER, build_mime=build_mime)  # fmt: skip
        return box._client()

    tls, starttls, plain = client("tls"), client("starttls", "me"), client("plain")
    assert (tls.use_tls, tls._start_tls_on_connect) == (True, False)
    assert (starttls.use_tls, starttls._start_tls_on_connect) == (False, True)
    assert (plain.use_tls, plain._start_tls_on_connect) == (False, False)
    assert starttls._login_username == "me" and plain._login_username is None
    with pytest.raises(ValueError, match="security"):
        SmtpSettings("h", 25, "ssl")


def test_nothing_due_opens_no_connection() -> None:
    box = outbox(Store(None), free_port())
    assert drain(box, T0) == DrainReport()
    assert box.connections_opened == 0


# -- against the server ---------------------------------------------------------------------------


@pytest.mark.integration
def test_sent_are_marked_and_arrive_with_their_message_id(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1), now=T0)
    store.enqueue(email(2, "a@example.com", cc=("b@example.com", "a@example.com")), now=T0)
    report = drain(outbox(store, server.port), T0)
    assert report == DrainReport(sent=("m1@maild.test", "m2@maild.test"))
    assert message_ids(server.handler) == ["<m1@maild.test>", "<m2@maild.test>"]
    assert [e.status for e in store.outbox_entries()] == ["sent", "sent"]
    assert store.dirty  # the drain does not commit: its caller does
    store.commit()
    assert drain(outbox(store, server.port), T0 + timedelta(hours=1)) == DrainReport()


@pytest.mark.integration
def test_a_drain_takes_at_most_max_per_drain_and_the_next_one_the_rest(
    server: CountingController,
) -> None:
    store = Store(None)
    for n in range(7):
        store.enqueue(email(n), now=T0)
    box = outbox(store, server.port, max_per_drain=5)
    assert len(drain(box, T0).sent) == 5
    assert [e.out.message_id for e in store.outbox_due(T0)] == ["m5@maild.test", "m6@maild.test"]
    assert len(drain(box, T0).sent) == 2
    # the default keeps up with what one inbound batch enqueues (200 emails, ~4 outgoing each)
    assert Outbox(store, SmtpSettings("h", 25, "plain"), envelope_from=SENDER,
                  build_mime=build_mime).max_per_drain >= 200 * 6


@pytest.mark.integration
def test_a_drain_leaves_the_emails_another_process_sends_and_takes_the_rest(
    # Sets up its server and store like the test above (duplicates): each integration test owns them.
    server: CountingController,
) -> None:
    store = Store(None)
    for n in range(6):
        store.enqueue(email(n), now=T0)
    held = frozenset({"m0@maild.test", "m1@maild.test", "m3@maild.test"})  # the child's
    report = drain_excluding(outbox(store, server.port, max_per_drain=2), T0, held)
    assert report.sent == ("m2@maild.test", "m4@maild.test")  # the cap counts what it sends
    assert message_ids(server.handler) == ["<m2@maild.test>", "<m4@maild.test>"]
    assert {e.out.message_id for e in store.outbox_due(T0)} == held | {"m5@maild.test"}


@pytest.mark.integration
def test_one_connection_for_a_batch_of_50(server: CountingController) -> None:
    store = Store(None)
    for n in range(50):
        store.enqueue(email(n), now=T0)
    box = outbox(store, server.port)
    report = drain(box, T0)
    assert len(report.sent) == 50
    assert server.connections == 1 and box.connections_opened == 1
    assert len(server.handler.received) == 50


@pytest.mark.integration
def test_connection_is_kept_between_drains_then_closed(server: CountingController) -> None:
    store = Store(None)
    box = outbox(store, server.port)

    async def scenario() -> None:
        store.enqueue(email(1), now=T0)
        assert (await box.drain(T0)).sent == ("m1@maild.test",)
        store.enqueue(email(2), now=T0)
        assert (await box.drain(T0)).sent == ("m2@maild.test",)  # same loop: reused
        assert box.connections_opened == 1 and server.connections == 1
        await box.close()
        await box.close()  # idempotent
        store.enqueue(email(3), now=T0)
        assert (await box.drain(T0)).sent == ("m3@maild.test",)
        assert box.connections_opened == 2
        await box.close()

    asyncio.run(scenario())
    assert message_ids(server.handler) == ["<m1@maild.test>", "<m2@maild.test>", "<m3@maild.test>"]


@pytest.mark.integration
def test_kept_connection_that_died_or_idled_costs_no_attempt(server: CountingController) -> None:
    store = Store(None)
    box = outbox(store, server.port, keep_alive_s=0.2)

    async def scenario() -> None:
        store.enqueue(email(1), now=T0)
        await box.drain(T0)
        box._kept.transport.close()  # the server (or a NAT) dropped it while we were idle
        await asyncio.sleep(0.05)
        store.enqueue(email(2), now=T0)
        assert (await box.drain(T0)).sent == ("m2@maild.test",)
        await asyncio.sleep(0.3)  # longer than keep_alive_s: hung up, a new one is opened
        store.enqueue(email(3), now=T0)
        assert (await box.drain(T0)).sent == ("m3@maild.test",)
        await box.close()

    asyncio.run(scenario())
    assert box.connections_opened == 3
    assert all(e.attempts == 1 for e in store.outbox_entries("sent"))


@pytest.mark.integration
def test_a_drain_on_another_loop_reconnects(server: CountingController) -> None:
    store = Store(None)
    box = outbox(store, server.port)
    for n in (1, 2):
        store.enqueue(email(n), now=T0)
        assert drain(box, T0).sent == (f"m{n}@maild.test",)  # one asyncio.run per drain
    assert box.connections_opened == 2
    asyncio.run(box.close())


@pytest.mark.integration
def test_4xx_is_retried_with_backoff_then_sent(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1, "flaky@example.com"), now=T0)
    box = outbox(store, server.port)
    assert drain(box, T0) == DrainReport(retried=("m1@maild.test",))
    (entry,) = store.outbox_entries("queued")
    assert entry.attempts == 1 and "451" in entry.last_error and entry.code == 451
    assert T0 + timedelta(seconds=4) <= entry.next_attempt_at <= T0 + timedelta(seconds=6)
    assert drain(box, T0 + timedelta(seconds=1)) == DrainReport()  # not due yet
    report = drain(box, entry.next_attempt_at)
    assert report == DrainReport(sent=("m1@maild.test",))
    assert message_ids(server.handler) == ["<m1@maild.test>"]


@pytest.mark.integration
def test_4xx_fails_after_max_attempts(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1, "busy@example.com"), now=T0)
    box = outbox(store, server.port, max_attempts=3)
    now = T0
    for expected_attempts in (1, 2):
        assert drain(box, now).retried == ("m1@maild.test",)
        now = store.outbox_next_due()
        assert store.outbox_entries()[0].attempts == expected_attempts
    report = drain(box, now)
    ((out, code, error),) = report.failed
    assert (out.message_id, code) == ("m1@maild.test", 451) and "gave up after 3" in error
    assert store.outbox_entries("failed")[0].attempts == 3


@pytest.mark.integration
def test_5xx_fails_once_and_is_not_retried(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1, "gone@example.com"), now=T0)
    store.enqueue(email(2), now=T0)
    box = outbox(store, server.port)
    report = drain(box, T0)
    assert report.sent == ("m2@maild.test",) and report.retried == ()
    ((out, code, error),) = report.failed
    assert (out, code) == (email(1, "gone@example.com"), 550) and "no such user" in error
    assert store.outbox_next_due() is None
    assert drain(box, T0 + timedelta(days=1)) == DrainReport()
    assert server.connections == 1  # the refusal did not cost the connection


@pytest.mark.integration
def test_partial_refusal_counts_as_sent(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1, "ok@example.com", "gone@example.com"), now=T0)
    report = drain(outbox(store, server.port), T0)
    assert report == DrainReport(sent=("m1@maild.test",))
    (entry,) = store.outbox_entries("sent")
    assert "gone@example.com" in entry.last_error and "550" in entry.last_error


@pytest.mark.integration
def test_server_down_retries_everything_with_one_try(server: CountingController) -> None:
    store = Store(None)
    for n in range(5):
        store.enqueue(email(n), now=T0)
    box = outbox(store, free_port())  # nothing listens there
    report = drain(box, T0)
    assert len(report.retried) == 5 and report.sent == () and report.failed == ()
    assert box.connections_opened == 1
    entries = store.outbox_entries("queued")
    assert all(e.attempts == 1 and "cannot connect" in e.last_error for e in entries)
    later = store.outbox_next_due()
    assert later > T0
    box2 = outbox(store, server.port)  # the server is back
    assert len(drain(box2, later + timedelta(seconds=2)).sent) == 5


@pytest.mark.integration
def test_drop_after_data_retries_that_one_and_reconnects_once(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1), now=T0)
    store.enqueue(email(2, "drop@example.com"), now=T0)
    store.enqueue(email(3), now=T0)
    store.enqueue(email(4), now=T0)
    report = drain(outbox(store, server.port), T0)
    assert report.sent == ("m1@maild.test", "m3@maild.test", "m4@maild.test")
    assert report.retried == ("m2@maild.test",)
    assert server.connections == 2


@pytest.mark.integration
def test_second_drop_reschedules_the_rest_untried(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1, "drop@example.com"), now=T0)
    store.enqueue(email(2, "drop@example.com"), now=T0)
    store.enqueue(email(3), now=T0)
    report = drain(outbox(store, server.port), T0)
    assert report.retried == ("m1@maild.test", "m2@maild.test", "m3@maild.test")
    assert server.connections == 2 and server.handler.received == []
    assert "connection lost twice" in store.outbox_entries()[2].last_error


@pytest.mark.integration
def test_silent_server_times_out_and_is_retried(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1, "hang@example.com"), now=T0)
    store.enqueue(email(2), now=T0)
    report = drain(outbox(store, server.port, timeout_s=0.5), T0)
    assert report.retried == ("m1@maild.test",) and report.sent == ("m2@maild.test",)
    assert "Timeout" in store.outbox_entries()[0].last_error


@pytest.mark.integration
def test_build_failure_and_no_recipients_fail_without_raising(server: CountingController) -> None:
    store = Store(None)
    store.enqueue(email(1), now=T0)
    store.enqueue(Outgoing("m2@maild.test", (), "s", "t", ""), now=T0)
    store.enqueue(email(3, "bad\r\nRCPT TO:<x@y>@example.com"), now=T0)

    def picky(out: Outgoing) -> bytes:
        if out.message_id == "m1@maild.test":
            raise RuntimeError("template bug")
        return build_mime(out)

    box = Outbox(store, SmtpSettings("127.0.0.1", server.port, "plain"), envelope_from=SENDER,
                 build_mime=picky)  # fmt: skip
    report = drain(box, T0)
    assert [(o.message_id, code) for o, code, _ in report.failed] == [
        ("m1@maild.test", None), ("m2@maild.test", None), ("m3@maild.test", None),
    ]  # fmt: skip
    assert "template bug" in report.failed[0][2] and "no recipients" in report.failed[1][2]


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_login_when_username_is_set() -> None:
    seen: list[str] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        assert isinstance(auth_data, LoginPassword)
        seen.append(auth_data.login.decode())
        return AuthResult(success=auth_data.password == b"secret", handled=False)

    controller = CountingController(
        Handler(), free_port(), authenticator=authenticator, auth_require_tls=False,
        auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        store = Store(None)
        store.enqueue(email(1), now=T0)
        settings = SmtpSettings("127.0.0.1", controller.port, "plain", "maild", "secret")
        box = Outbox(store, settings, envelope_from=SENDER, build_mime=build_mime)
        assert drain(box, T0).sent == ("m1@maild.test",)
        store.enqueue(email(2), now=T0)
        wrong = SmtpSettings("127.0.0.1", controller.port, "plain", "maild", "nope")
        box = Outbox(store, wrong, envelope_from=SENDER, build_mime=build_mime)
        report = drain(box, T0)  # bad credentials: retried (config problem), never raised
        assert report.retried == ("m2@maild.test",)
        assert "535" in store.outbox_entries("queued")[0].last_error
        assert set(seen) == {"maild"}  # aiosmtplib may try several mechanisms
        assert store.outbox_entries("queued")[0].code == 535
    finally:
        controller.stop()


@pytest.mark.integration
def test_crash_before_commit_resends_with_same_message_id(
    server: CountingController, tmp_path
) -> None:
    with Store(tmp_path) as store:
        store.enqueue(email(1), now=T0)
        store.commit()
    with Store(tmp_path) as store:
        box = outbox(store, server.port)
        box.store.commit = lambda: None  # type: ignore[method-assign]  # "crash" before the commit
        assert drain(box, T0).sent == ("m1@maild.test",)
    with Store(tmp_path) as store:
        assert drain(outbox(store, server.port), T0).sent == ("m1@maild.test",)
        assert store.outbox_entries("sent")
    assert message_ids(server.handler) == ["<m1@maild.test>", "<m1@maild.test>"]


@pytest.mark.integration
def test_a_detached_send_touches_the_store_only_when_settled(server: CountingController) -> None:
    """`send_detached` runs on another thread while the store's owner goes on: it sends, keeps
    its outcomes aside, and `settle` writes them (sent, retried, failed, partly refused) in the
    order they happened, the same outcomes a drain would have recorded."""
    store = Store(None)
    for n, to in enumerate(("ok@example.com", "busy@example.com", "gone@example.com"), start=1):
        store.enqueue(email(n, to), now=T0)
    store.enqueue(email(4, "ok@example.com", "gone@example.com"), now=T0)
    box = outbox(store, server.port)
    due = store.outbox_due(T0)
    detached = asyncio.run(box.send_detached(due, T0))
    assert message_ids(server.handler) == ["<m1@maild.test>", "<m4@maild.test>"]
    assert [e.status for e in store.outbox_entries()] == ["queued"] * 4  # nothing recorded yet
    store.enqueue(email(5), now=T0)  # the owner went on meanwhile

    report = box.settle(detached)
    assert report.sent == ("m1@maild.test", "m4@maild.test")
    assert report.retried == ("m2@maild.test",)
    assert [(out.message_id, code) for out, code, _ in report.failed] == [("m3@maild.test", 550)]
    status = {e.out.message_id: e for e in store.outbox_entries()}
    assert {k: v.status for k, v in status.items()} == {
        "m1@maild.test": "sent", "m2@maild.test": "queued", "m3@maild.test": "failed",
        "m4@maild.test": "sent", "m5@maild.test": "queued"}
    assert status["m2@maild.test"].attempts == 1 and status["m2@maild.test"].code == 451
    assert "gone@example.com" in status["m4@maild.test"].last_error
    assert box.settle(detached) == report  # settling twice writes nothing twice
    assert [e.out.message_id for e in store.outbox_due(T0)] == ["m5@maild.test"]
