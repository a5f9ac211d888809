"""The embedded mail system over real sockets: IMAP login, SMTP delivery, IDLE, folders, APPEND."""

from __future__ import annotations

import asyncio
import imaplib
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from maild.adapters.embedded import EmbeddedMailSystem, _CoalescingWriter

pytestmark = pytest.mark.integration

ALICE = "alice@example.com"
BOB = "bob@example.com"
PASSWORDS = {ALICE: "alice-pw", BOB: "bob-pw"}


@pytest.fixture
def mail() -> Iterator[EmbeddedMailSystem]:
    with EmbeddedMailSystem("127.0.0.1", 0, 0, PASSWORDS) as system:
        yield system


Connect = Callable[[EmbeddedMailSystem], IMAPClient]
Imap = Callable[..., IMAPClient]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open IMAP connections (not logged in); all are closed when the test ends."""
    opened: list[IMAPClient] = []

    def open_client(system: EmbeddedMailSystem) -> IMAPClient:
        client = IMAPClient(system.host, system.imap_port, ssl=False, timeout=10)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        try:
            client.shutdown()
        except OSError:
            pass


@pytest.fixture
def imap(connect: Connect) -> Imap:
    """Open an IMAP connection logged in as `user` (default Alice)."""

    def login(system: EmbeddedMailSystem, user: str = ALICE) -> IMAPClient:
        client = connect(system)
        client.login(user, PASSWORDS.get(user, "pw"))
        return client

    return login


def smtp(system: EmbeddedMailSystem) -> smtplib.SMTP:
    return smtplib.SMTP(system.host, system.smtp_port, timeout=10)


def inbox_messages(client: IMAPClient) -> list[bytes]:
    client.select_folder("INBOX")
    client.noop()  # pymap's SEARCH only sees messages already announced to the session
    uids = client.search()
    fetched = client.fetch(uids, ["BODY.PEEK[]"])
    return [fetched[uid][b"BODY[]"] for uid in sorted(uids)]


def message(subject: str, body: bytes, charset: str = "utf-8") -> bytes:
    return (
        b"From: sender@example.org\r\nTo: team@example.com\r\n"
        + b"Subject: "
        + subject.encode("ascii")
        + b"\r\nMIME-Version: 1.0\r\n"
        + f"Content-Type: text/plain; charset={charset}\r\n".encode("ascii")
        + b"Content-Transfer-Encoding: 8bit\r\n\r\n"
        + body
    )


# -- IMAP login ------------------------------------------------------------------------------


def test_login_and_capabilities(mail: EmbeddedMailSystem, imap: Imap) -> None:
    client = imap(mail)
    caps = client.capabilities()
    assert {b"IDLE", b"MOVE", b"UIDPLUS"} <= set(caps)
    assert client.select_folder("INBOX")[b"EXISTS"] == 0  # fresh INBOX, no demo data
    client.logout()


def test_wrong_password_and_unknown_user_fail(mail: EmbeddedMailSystem, connect: Connect) -> None:
    client = connect(mail)
    with pytest.raises(LoginError):
        client.login(ALICE, "wrong")
    client = connect(mail)
    with pytest.raises(LoginError):
        client.login("nobody@example.com", "alice-pw")


def test_add_account_after_start(mail: EmbeddedMailSystem, connect: Connect) -> None:
    mail.add_account("carol@example.com", "carol-pw")
    with smtp(mail) as s:
        s.sendmail("x@example.org", ["carol@example.com"], message("Hi", b"hello\r\n"))
    client = connect(mail)
    client.login("carol@example.com", "carol-pw")
    assert len(inbox_messages(client)) == 1


# -- SMTP delivery ---------------------------------------------------------------------------


def test_delivery_to_users_and_plus_address(mail: EmbeddedMailSystem, imap: Imap) -> None:
    utf8 = message("utf8", "项目：迁移\r\n负责人：王喆\r\n.leading dot\r\n".encode())
    gbk = message("gbk", "任务：李堃 8月10日前完成\r\n".encode("gbk"), charset="gb2312")
    with smtp(mail) as s:
        s.sendmail("x@example.org", [ALICE, BOB], utf8)
        s.sendmail("x@example.org", ["Alice+collab-TOKEN@example.com"], gbk)

    alice = inbox_messages(imap(mail, ALICE))
    bob = inbox_messages(imap(mail, BOB))
    assert alice == [
        b"Delivered-To: " + ALICE.encode() + b"\r\n" + utf8,
        b"Delivered-To: Alice+collab-TOKEN@example.com\r\n" + gbk,
    ]
    assert bob == [b"Delivered-To: " + BOB.encode() + b"\r\n" + utf8]


def test_unknown_recipient_is_refused_with_550(mail: EmbeddedMailSystem, imap: Imap) -> None:
    with smtp(mail) as s:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            s.sendmail("x@example.org", ["nobody@example.com"], message("x", b"x\r\n"))
        code, text = refused.value.recipients["nobody@example.com"]
        assert code == 550 and text == b"5.1.1 No such user"
        # one good recipient among bad ones: the good one still gets it
        bad = s.sendmail("x@example.org", ["ghost@example.com", BOB], message("y", b"y\r\n"))
        assert bad == {"ghost@example.com": (550, b"5.1.1 No such user")}
    assert len(inbox_messages(imap(mail, BOB))) == 1


def test_smtp_auth_is_offered_not_required(mail: EmbeddedMailSystem, imap: Imap) -> None:
    with smtp(mail) as s:
        s.ehlo()
        assert {"PLAIN", "LOGIN"} <= set(s.esmtp_features["auth"].split())
        assert s.esmtp_features["size"] == str(30 * 1024 * 1024)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            s.login(ALICE, "wrong")
    for mechanism in ("PLAIN", "LOGIN"):
        with smtp(mail) as s:
            s.ehlo()
            s.user, s.password = ALICE, PASSWORDS[ALICE]
            code, _ = s.auth(mechanism, getattr(s, "auth_" + mechanism.lower()))
            assert code == 235
            s.sendmail(ALICE, [BOB], message("auth", b"x\r\n"))
    assert len(inbox_messages(imap(mail, BOB))) == 2


# -- IDLE ------------------------------------------------------------------------------------


def test_idle_gets_exists_after_each_delivery(mail: EmbeddedMailSystem, imap: Imap) -> None:
    client = imap(mail)
    client.select_folder("INBOX")
    with smtp(mail) as s:
        for n in range(1, 31):
            client.idle()
            s.sendmail("x@example.org", [ALICE], message(f"n{n}", b"body\r\n"))
            deadline = time.monotonic() + 2.0
            seen: list[tuple[object, ...]] = []
            while (n, b"EXISTS") not in [r[:2] for r in seen]:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"no EXISTS within 2 s in round {n}: {seen}"
                seen += client.idle_check(timeout=remaining)  # raises on a torn line
            client.idle_done()
    assert len(client.search()) == 30


def test_idle_reports_expunge_from_another_session(mail: EmbeddedMailSystem, imap: Imap) -> None:
    with smtp(mail) as s:
        s.sendmail("x@example.org", [ALICE], message("x", b"x\r\n"))
    watcher, mover = imap(mail), imap(mail)
    watcher.select_folder("INBOX")
    mover.select_folder("INBOX")
    mover.create_folder("Processed")
    watcher.idle()
    mover.move(mover.search(), "Processed")
    assert (1, b"EXPUNGE") in watcher.idle_check(timeout=2)
    watcher.idle_done()


def test_writer_coalesces_writes_until_drain() -> None:
    class FakeWriter:
        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.writes.append(data)

        async def drain(self) -> None:
            pass

    fake = FakeWriter()
    writer = _CoalescingWriter(fake)  # type: ignore[arg-type]
    writer.write(b"* 3 ")
    writer.write(b"EXISTS")
    writer.write(b"\r\n")
    assert fake.writes == []
    asyncio.run(writer.drain())
    assert fake.writes == [b"* 3 EXISTS\r\n"]


# -- folders, FETCH, APPEND ------------------------------------------------------------------


def test_create_move_copy_and_exact_fetch(mail: EmbeddedMailSystem, imap: Imap) -> None:
    raw = message("move me", "正文 body\r\n".encode())
    with smtp(mail) as s:
        s.sendmail("x@example.org", [ALICE, BOB], raw)
    expected = b"Delivered-To: " + ALICE.encode() + b"\r\n" + raw
    client = imap(mail)
    assert b"MOVE" in client.capabilities()
    client.create_folder("Processed")
    client.create_folder("Quarantine")
    client.select_folder("INBOX")
    client.noop()
    [uid] = client.search()
    assert client.fetch([uid], ["RFC822"])[uid][b"RFC822"] == expected

    client.copy([uid], "Quarantine")
    client.move([uid], "Processed")
    client.noop()
    assert client.search() == []
    for folder in ("Processed", "Quarantine"):
        client.select_folder(folder)
        [moved] = client.search()
        assert client.fetch([moved], ["RFC822"])[moved][b"RFC822"] == expected
    # Bob's copy is untouched by Alice's moves
    assert inbox_messages(imap(mail, BOB)) == [b"Delivered-To: " + BOB.encode() + b"\r\n" + raw]


def test_append_is_fast_and_intact(mail: EmbeddedMailSystem, imap: Imap) -> None:
    conn = imaplib.IMAP4(mail.host, mail.imap_port, timeout=10)
    conn.login(ALICE, PASSWORDS[ALICE])
    raw = message("appended", "追加 body\r\n".encode())
    durations = []
    start = time.perf_counter()
    for _ in range(50):
        t0 = time.perf_counter()
        typ, _ = conn.append("INBOX", None, None, raw)
        durations.append(time.perf_counter() - t0)
        assert typ == "OK"
    assert time.perf_counter() - start < 10
    # the delayed-ACK stall costs ~44 ms per APPEND; without it one takes ~1-2 ms
    assert statistics.median(durations) < 0.02, statistics.median(durations)
    conn.logout()  # also closes the socket
    assert inbox_messages(imap(mail)) == [raw] * 50


# -- lifecycle -------------------------------------------------------------------------------


def test_stop_is_idempotent_and_closes_open_connections(imap: Imap) -> None:
    system = EmbeddedMailSystem("127.0.0.1", 0, 0, PASSWORDS)
    system.start()
    idler = imap(system)
    idler.select_folder("INBOX")
    idler.idle()
    open_smtp = smtp(system)
    open_smtp.ehlo()
    t0 = time.monotonic()
    system.stop()
    assert time.monotonic() - t0 < 5
    system.stop()
    with pytest.raises(OSError):
        socket.create_connection((system.host, system.imap_port), timeout=1).close()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        idler.idle_check(timeout=2)
        idler.idle_done()
    open_smtp.close()


def test_restart_fresh_instance_and_same_instance(imap: Imap) -> None:
    first = EmbeddedMailSystem("127.0.0.1", 0, 0, PASSWORDS)
    first.start()
    with smtp(first) as s:
        s.sendmail("x@example.org", [ALICE], message("x", b"x\r\n"))
    first.stop()

    with EmbeddedMailSystem("127.0.0.1", 0, 0, PASSWORDS) as second:
        assert inbox_messages(imap(second)) == []  # in memory: nothing survives
        with smtp(second) as s:
            s.sendmail("x@example.org", [ALICE], message("y", b"y\r\n"))
        assert len(inbox_messages(imap(second))) == 1

    first.start()  # the same instance starts again, empty, accounts kept
    try:
        assert inbox_messages(imap(first)) == []
    finally:
        first.stop()


def test_fixed_port_in_use_fails_start() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        system = EmbeddedMailSystem("127.0.0.1", port, 0, PASSWORDS)
        with pytest.raises(OSError):
            system.start()
        system.stop()  # nothing to stop: still fine


def test_serve_forever_stops_cleanly_on_sigterm(imap: Imap) -> None:
    ports = []
    for _ in range(2):
        with socket.create_server(("127.0.0.1", 0)) as probe:
            ports.append(probe.getsockname()[1])
    code = (
        "from maild.adapters.embedded import EmbeddedMailSystem\n"
        f"EmbeddedMailSystem('127.0.0.1', {ports[0]}, {ports[1]}, {PASSWORDS!r}).serve_forever()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports[1]), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.05)
        system = EmbeddedMailSystem("127.0.0.1", *ports)  # only to reuse the helpers' host/ports
        with smtp(system) as s:
            s.sendmail("x@example.org", [ALICE], message("x", b"x\r\n"))
        assert len(inbox_messages(imap(system))) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
