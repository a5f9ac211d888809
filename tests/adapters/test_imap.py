"""imap.py: the inbox adapter against a real IMAP server (the embedded one), and its in-memory twin."""

from __future__ import annotations

import smtplib
import threading
import time

import pytest

from maild.adapters.imap import ImapInbox, ImapSettings, MemoryInbox

pytestmark = pytest.mark.integration

RAW = (b"From: li.na@corp.example\r\nTo: collab@corp.example\r\nSubject: t\r\n"
       b"Message-ID: <%d@corp.example>\r\n\r\nbody %d\r\n")


def _settings(mail_system, **extra) -> ImapSettings:
    return ImapSettings(host=mail_system.host, port=mail_system.imap_port, security="plain",
                        username="collab@corp.example", password="collab-demo", **extra)


def _deliver(mail_system, n: int) -> None:
    with smtplib.SMTP(mail_system.host, mail_system.smtp_port, timeout=10) as smtp:
        smtp.sendmail("li.na@corp.example", ["collab@corp.example"], RAW % (n, n))


def test_fetch_returns_exact_bytes_and_move_empties_inbox(mail_system):
    inbox = ImapInbox(_settings(mail_system))
    try:
        for n in range(3):
            _deliver(mail_system, n)
        got = inbox.fetch_new(limit=10)
        assert [raw.split(b"\r\n\r\n", 1)[1] for _, raw in got] == [b"body 0\r\n", b"body 1\r\n",
                                                                   b"body 2\r\n"]
        assert inbox.has_idle and inbox.has_move
        assert len(inbox.fetch_new(limit=2)) == 2  # the limit is honoured
        inbox.move([uid for uid, _ in got[:2]], "Processed")
        inbox.move([got[2][0]], "Quarantine")
        assert inbox.fetch_new(limit=10) == []
    finally:
        inbox.close()


def test_wait_wakes_on_new_mail_and_on_stop(mail_system):
    inbox = ImapInbox(_settings(mail_system))
    try:
        inbox.fetch_new(10)
        timer = threading.Timer(0.3, _deliver, args=(mail_system, 7))
        timer.start()
        started = time.monotonic()
        inbox.wait(20.0, lambda: False)
        assert time.monotonic() - started < 5.0
        assert len(inbox.fetch_new(10)) == 1
        stop = threading.Event()
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        inbox.wait(20.0, stop.is_set)
        assert time.monotonic() - started < 3.0
    finally:
        inbox.close()


def test_reconnects_after_the_connection_drops(mail_system):
    import socket

    inbox = ImapInbox(_settings(mail_system))
    try:
        _deliver(mail_system, 1)
        first = inbox.fetch_new(10)
        assert len(first) == 1
        inbox.connect().socket().shutdown(socket.SHUT_RDWR)  # the network drops us
        _deliver(mail_system, 2)
        got = inbox.fetch_new(10)
        assert sorted(raw.rsplit(b"\r\n\r\n", 1)[1] for _, raw in got) == [b"body 1\r\n",
                                                                          b"body 2\r\n"]
    finally:
        inbox.close()


def test_memory_twin_behaves_like_an_inbox():
    inbox = MemoryInbox()
    first, second = inbox.deliver(b"a"), inbox.deliver(b"b")
    assert inbox.fetch_new(10) == [(first, b"a"), (second, b"b")]
    inbox.move([first], "Processed")
    assert inbox.fetch_new(10) == [(second, b"b")]
    assert inbox.folders["Processed"] == {first: b"a"}


def test_an_email_over_the_cap_comes_back_as_its_header_only(mail_system):
    """The size cap is decided on RFC822.SIZE: an email over it is never fetched whole, only its
    header block (with the size), whether it is alone in INBOX or among others."""
    from maild.adapters.imap import HeaderOnly

    big = (b"From: wang.zhe@corp.example\r\nTo: collab@corp.example\r\nSubject: done\r\n"
           b"Message-ID: <big@corp.example>\r\n\r\n" + (b"x" * 76 + b"\r\n") * 2_600)
    inbox = ImapInbox(_settings(mail_system))
    try:
        with smtplib.SMTP(mail_system.host, mail_system.smtp_port, timeout=10) as smtp:
            smtp.sendmail("wang.zhe@corp.example", ["collab@corp.example"], big)
        alone = inbox.fetch_new(10, max_bytes=100_000)
        assert len(alone) == 1 and isinstance(alone[0][1], HeaderOnly)
        assert alone[0][1].endswith(b"Message-ID: <big@corp.example>\r\n\r\n")
        assert b"xxxx" not in alone[0][1] and alone[0][1].size >= len(big)
        _deliver(mail_system, 8)
        both = inbox.fetch_new(10, max_bytes=100_000)
        assert [type(raw) for _, raw in both] == [HeaderOnly, bytes]
        assert both[1][1].endswith(b"body 8\r\n")
        assert [len(raw) for _, raw in inbox.fetch_new(10)][0] >= len(big)  # no cap: whole
        inbox.move([uid for uid, _ in both], "Processed")
    finally:
        inbox.close()


def test_the_memory_twin_caps_sizes_the_same_way():
    from maild.adapters.imap import HeaderOnly

    memory = MemoryInbox()
    memory.deliver(b"Subject: a\r\n\r\n" + b"y" * 50)
    memory.deliver(b"Subject: b\r\n\r\nsmall")
    got = memory.fetch_new(10, max_bytes=40)
    assert got[0][1] == b"Subject: a\r\n\r\n" and isinstance(got[0][1], HeaderOnly)
    assert got[0][1].size == 64 and got[1][1] == b"Subject: b\r\n\r\nsmall"
