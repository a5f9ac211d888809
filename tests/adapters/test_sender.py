"""SenderProcess against a real aiosmtpd server on 127.0.0.1: the daemon spools the due entries
as the store holds them (no MIME built in the daemon), the child decodes them and builds the very
bytes a drain in the daemon would (`to_mime`), reports outcomes without touching the store, fails
alone what cannot be built or decoded, and a child that dies loses nothing (its emails stay
queued) and is replaced at the next submit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from test_outbox import CountingController, Handler, email, free_port, message_ids

from maild.adapters.outbox import Outbox, SmtpSettings
from maild.adapters.sender import SenderOptions, SenderProcess
from maild.adapters.store import Store
from maild.core.model import FileAttachment, Outgoing
from maild.mail.mime import to_mime

pytestmark = pytest.mark.integration

T0 = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
SENDER = "maild@example.com"
NAME = "协作助手"
DATE = "Sat, 01 Aug 2026 17:00:00 +0800"
SETTINGS = {"from_address": SENDER, "from_name": NAME}


@pytest.fixture
def server() -> Iterator[CountingController]:
    controller = CountingController(Handler(), free_port())
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def sender(server) -> Iterator[SenderProcess]:
    process = SenderProcess(SenderOptions(SmtpSettings("127.0.0.1", server.port, "plain",
                                                       timeout_s=5), envelope_from=SENDER,
                                          **SETTINGS))
    yield process
    process.close()


def mail(n: int, *to: str, **changes: object) -> Outgoing:
    """An email `to_mime` can build (it needs a date), with a body in both parts."""
    return replace(email(n, *to), date=DATE, text=f"正文 {n}\n" * 40, html=f"<p>正文 {n}</p>",
                   **changes)  # type: ignore[arg-type]


def build(out: Outgoing) -> bytes:
    """How the daemon's own Outbox builds an email (service.py): the bytes a drain sends."""
    return to_mime(out, **SETTINGS)


def _queue(store: Store, *outs: Outgoing) -> list[tuple[str, bytes]]:
    """Enqueue `outs`; what `_send_in_background` hands to `submit`."""
    for out in outs:
        store.enqueue(out, now=T0)
    return [(mid, store.outbox_document(mid) or b"") for mid in store.outbox_due_ids(T0, 100)]


def test_the_child_builds_the_bytes_a_drain_would_and_reports_without_writing(server, sender,
                                                                               tmp_path):
    store = Store(None)
    files = (FileAttachment("进度.xlsx", "application/octet-stream", b"PK\x03\x04" * 50),)
    first = mail(1, attachments=files, references=("a@x",), in_reply_to="a@x")
    due = _queue(store, first, mail(2, "gone@example.com"), mail(3, "busy@example.com"))
    sender.submit(due, T0, spool=tmp_path / "spool")
    # the spool holds the stored entries as they are: nothing decoded or built in the daemon
    assert (tmp_path / "spool").read_bytes() == b"".join(document for _mid, document in due)
    detached = sender.result()
    assert detached is not None
    assert server.handler.received == [build(first)]
    assert detached.report.sent == ("m1@maild.test",)
    assert detached.report.retried == ("m3@maild.test",)
    ((out, code, _error),) = detached.report.failed
    assert (out.message_id, out.to, out.subject, code) == ("m2@maild.test", ("gone@example.com",),
                                                         "s2", 550)
    assert out.text == "" and out.html == ""  # the pipe carried the entry back without bodies
    assert {e.status for e in store.outbox_entries()} == {"queued"}  # nothing written yet
    sender_outcomes = [name for name, _a, _k in detached.writes.calls]
    assert sender_outcomes == ["outbox_mark_sent", "outbox_mark_failed", "outbox_mark_retry"]

    # a drain in the daemon (after a failed child, say) sends the very same bytes
    server.handler.received.clear()
    twin = Store(None)
    _queue(twin, first)
    box = Outbox(twin, SmtpSettings("127.0.0.1", server.port, "plain", timeout_s=5),
                 envelope_from=SENDER, build_mime=build, keep_alive_s=0)
    assert asyncio.run(box.drain(T0)).sent == ("m1@maild.test",)
    assert server.handler.received == [build(first)]


def test_an_email_that_cannot_be_built_fails_alone_as_in_a_drain(server, sender, tmp_path):
    store = Store(None)
    broken = mail(1, subject="s1\r\nBcc: everyone@example.com")  # to_mime refuses CR/LF
    sender.submit(_queue(store, broken, mail(2)), T0, spool=tmp_path / "spool")
    detached = sender.result()
    assert detached is not None and detached.report.sent == ("m2@maild.test",)
    ((out, code, error),) = detached.report.failed
    assert (out.message_id, code) == ("m1@maild.test", None)
    assert error.startswith("cannot build the message: ValueError")
    assert message_ids(server.handler) == ["<m2@maild.test>"]

    twin = Store(None)  # the same email in a drain in the daemon: the same failure
    _queue(twin, broken)
    box = Outbox(twin, SmtpSettings("127.0.0.1", server.port, "plain", timeout_s=5),
                 envelope_from=SENDER, build_mime=build, keep_alive_s=0)
    ((_out, _code, drained),) = asyncio.run(box.drain(T0)).failed
    assert drained == error


def test_an_entry_that_cannot_be_decoded_fails_alone(server, sender, tmp_path):
    store = Store(None)
    due = _queue(store, mail(1), mail(2))
    document = store._outbox.get("m1@maild.test")
    del document["out"]["subject"]  # as if written by a maild that knew other fields
    store._outbox.put(document)
    due = [(mid, store.outbox_document(mid) or b"") for mid, _old in due]
    sender.submit(due, T0, spool=tmp_path / "spool")
    detached = sender.result()
    assert detached is not None and detached.report.sent == ("m2@maild.test",)
    ((out, code, error),) = detached.report.failed
    assert (out.message_id, out.to, code) == ("m1@maild.test", (), None)
    assert error.startswith("cannot read the stored email: TypeError")
    Outbox(store, SmtpSettings("127.0.0.1", server.port, "plain"), envelope_from=SENDER,
           build_mime=build).settle(detached)
    assert {e["message_id"]: (e["status"], e["attempts"], e["last_error"])
            for e in store._outbox.values()} == {"m1@maild.test": ("failed", 1, error),
                                                  "m2@maild.test": ("sent", 1, "")}


def test_a_child_that_dies_loses_nothing_and_is_replaced(server, sender, tmp_path):
    store = Store(None)
    sender.submit(_queue(store, mail(1)), T0, spool=tmp_path / "spool")
    assert sender.result() is not None
    first = sender._process
    assert first is not None
    first.kill()
    first.join()
    store2 = Store(None)
    due = _queue(store2, mail(2), mail(3))
    sender.submit(due, T0, spool=tmp_path / "spool")  # a new child
    detached = sender.result()
    assert detached is not None and detached.report.sent == ("m2@maild.test", "m3@maild.test")
    assert sender._process is not first

    # killed while it sends: no outcome is known, so none is reported; the store still holds
    # the emails as queued and the next drain sends them (at-least-once)
    sender.submit(_queue(Store(None), mail(4)), T0, spool=tmp_path / "spool")
    assert sender._process is not None
    sender._process.kill()
    assert sender.result() is None


def test_submitting_twice_without_collecting_is_refused(server, sender, tmp_path):
    store = Store(None)
    sender.submit(_queue(store, mail(1)), T0, spool=tmp_path / "spool")
    with pytest.raises(RuntimeError, match="not been collected"):
        sender.submit([], T0, spool=tmp_path / "spool2")
    assert sender.result() is not None


def test_a_spool_that_ends_early_fails_the_request_not_its_emails(tmp_path):
    from maild.adapters.sender import _Spool

    store = Store(None)
    due = _queue(store, mail(1), mail(2))
    (tmp_path / "spool").write_bytes(due[0][1] + due[1][1][:-10])
    spool = _Spool(SenderOptions(SmtpSettings("127.0.0.1", 25, "plain"), envelope_from=SENDER,
                                 **SETTINGS))
    spool.index = [(mid, len(document)) for mid, document in due]
    with open(tmp_path / "spool", "rb") as spool.handle:
        entries = iter(spool)
        assert next(entries).out.message_id == "m1@maild.test"
        with pytest.raises(OSError, match="ends before m2@maild.test"):
            next(entries)  # the child answers with the error: both stay queued
    assert spool.unreadable == []
