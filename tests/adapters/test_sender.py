"""SenderProcess against a real aiosmtpd server on 127.0.0.1: the child sends a batch from the
spool, reports outcomes without touching the store, fails what cannot be built, and a child that
dies loses nothing (its emails stay queued) and is replaced at the next submit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from test_outbox import CountingController, Handler, build_mime, email, free_port, message_ids

from maild.adapters.outbox import SmtpSettings
from maild.adapters.sender import SenderOptions, SenderProcess
from maild.adapters.store import Store
from maild.core.model import Outgoing

pytestmark = pytest.mark.integration

T0 = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
SENDER = "maild@example.com"


@pytest.fixture
def server() -> Iterator[CountingController]:
    controller = CountingController(Handler(), free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def sender(server) -> Iterator[SenderProcess]:
    process = SenderProcess(SenderOptions(SmtpSettings("127.0.0.1", server.port, "plain",
                                                       timeout_s=5), envelope_from=SENDER))
    yield process
    process.close()


def _queue(store: Store, *outs: Outgoing) -> list:
    for out in outs:
        store.enqueue(out, now=T0)
    return store.outbox_due(T0, 100)


def test_the_child_sends_the_spooled_bytes_and_reports_without_writing(server, sender, tmp_path):
    store = Store(None)
    due = _queue(store, email(1), email(2, "gone@example.com"), email(3, "busy@example.com"))
    sender.submit(due, T0, spool=tmp_path / "spool", build_mime=build_mime)
    detached = sender.result()
    assert detached is not None
    wire = build_mime(email(1)).replace(b"\n", b"\r\n")  # SMTP puts lines on the wire in CRLF
    assert server.handler.received == [wire]  # the very bytes, from the spool
    assert detached.report.sent == ("m1@maild.test",)
    assert detached.report.retried == ("m3@maild.test",)
    ((out, code, _error),) = detached.report.failed
    assert (out.message_id, out.to, out.subject, code) == ("m2@maild.test", ("gone@example.com",),
                                                         "s2", 550)
    assert out.text == ""  # the pipe carried the entry without its bodies
    assert {e.status for e in store.outbox_entries()} == {"queued"}  # nothing written yet
    sender_outcomes = [name for name, _a, _k in detached.writes.calls]
    assert sender_outcomes == ["outbox_mark_sent", "outbox_mark_failed", "outbox_mark_retry"]


def test_an_email_that_cannot_be_built_fails_and_the_rest_go(server, sender, tmp_path):
    store = Store(None)
    due = _queue(store, email(1), email(2))

    def build(out: Outgoing) -> bytes:
        if out.message_id == "m1@maild.test":
            raise ValueError("broken template")
        return build_mime(out)

    sender.submit(due, T0, spool=tmp_path / "spool", build_mime=build)
    detached = sender.result()
    assert detached is not None and detached.report.sent == ("m2@maild.test",)
    ((out, code, error),) = detached.report.failed
    assert (out.message_id, code) == ("m1@maild.test", None) and "broken template" in error
    assert message_ids(server.handler) == ["<m2@maild.test>"]


def test_a_child_that_dies_loses_nothing_and_is_replaced(server, sender, tmp_path):
    store = Store(None)
    sender.submit(_queue(store, email(1)), T0, spool=tmp_path / "spool", build_mime=build_mime)
    assert sender.result() is not None
    first = sender._process
    assert first is not None
    first.kill()
    first.join()
    store2 = Store(None)
    due = _queue(store2, email(2), email(3))
    sender.submit(due, T0, spool=tmp_path / "spool", build_mime=build_mime)  # a new child
    detached = sender.result()
    assert detached is not None and detached.report.sent == ("m2@maild.test", "m3@maild.test")
    assert sender._process is not first

    # killed while it sends: no outcome is known, so none is reported; the store still holds
    # the emails as queued and the next drain sends them (at-least-once)
    sender.submit(_queue(Store(None), email(4)), T0, spool=tmp_path / "spool",
                  build_mime=build_mime)
    assert sender._process is not None
    sender._process.kill()
    assert sender.result() is None


def test_submitting_twice_without_collecting_is_refused(server, sender, tmp_path):
    store = Store(None)
    sender.submit(_queue(store, email(1)), T0, spool=tmp_path / "spool", build_mime=build_mime)
    with pytest.raises(RuntimeError, match="not been collected"):
        sender.submit([], T0, spool=tmp_path / "spool2", build_mime=build_mime)
    assert sender.result() is not None
