"""Every inbound email is answered or logged with a reason; an email is known by its Message-ID
and its content; a crash re-sends only what was in flight (admission.py, sentjournal.py, and the
service that applies them, over real IMAP and SMTP)."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

import pytest
from conversation import TZ, Conversation, FakeClock, make_config

from maild.adapters.sentjournal import SentJournal
from maild.core import admission
from maild.mail.decode import decode

INITIATOR, OWNER = "li.na@corp.example", "wang.zhe@corp.example"
HELP = ("From: li.na@corp.example\r\nTo: collab@corp.example\r\nSubject: help\r\n"
        "Date: Mon, 3 Aug 2026 09:00:00 +0800\r\nMessage-ID: <{id}@corp.example>\r\n\r\n{body}\r\n")


# ── pure parts ────────────────────────────────────────────────────────────────────────────────


def test_the_fingerprint_is_what_the_sender_wrote():
    raw = HELP.format(id="a", body="帮助").encode()
    relayed = b"Received: from mx by mx2\r\nDelivered-To: collab@corp.example\r\n" + raw
    other = HELP.format(id="a", body="help").encode()
    prints = [admission.fingerprint(r, decode(r)) for r in (raw, relayed, other)]
    assert prints[0] == prints[1] != prints[2]
    assert admission.same_email({"content": prints[0]}, prints[1])
    assert not admission.same_email({"content": prints[0]}, prints[2])
    assert admission.same_email({"folder": "Processed"}, prints[2])  # a mark from before
    assert admission.collision_key("a@corp.example", prints[2]).startswith("a@corp.example#")


def test_a_log_line_reads_back_field_by_field_in_both_formats():
    from maild.app.cli import _JsonFormatter

    line = admission.log_line("inbound", uid=7, message_id="a@b", sender="",
                              reason='ignored auto_reply: Auto-Submitted: "auto-replied"')
    assert line.startswith("event=inbound uid=7 message_id=a@b sender=\"\" reason=\"")
    record = logging.LogRecord("maild", logging.INFO, __file__, 1, line, None, None)
    import json
    fields = json.loads(_JsonFormatter().format(record))
    assert fields["reason"] == 'ignored auto_reply: Auto-Submitted: "auto-replied"'
    assert (fields["event"], fields["uid"], fields["sender"]) == ("inbound", "7", "")


def test_the_sent_journal_keeps_whole_lines_and_forgets_on_clear(tmp_path: Path):
    journal = SentJournal(tmp_path / "sent.journal")
    assert journal.read() == []
    journal.record("a@corp.example")
    journal.record("b@corp.example")
    journal.record("a@corp.example")
    with open(tmp_path / "sent.journal", "ab") as torn:  # a kill inside write()
        torn.write(b"c@corp.ex")
    assert journal.read() == ["a@corp.example", "b@corp.example"]
    journal.clear()
    assert journal.read() == [] and (tmp_path / "sent.journal").stat().st_size == 0
    journal.record("d@corp.example")  # appending goes on in the same file
    assert SentJournal(tmp_path / "sent.journal").read() == ["d@corp.example"]
    with pytest.raises(ValueError):
        journal.record("e@x\r\nf@x")
    journal.close()


def test_a_250_is_written_at_once_and_reaches_the_disk_behind_the_next_email(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The fdatasync of a 250 runs while the next email is sent: `record` returns once the line
    is written (a crash of the process loses nothing), the next `record` waits for the previous
    fdatasync, and `close` and `clear` wait for the last one."""
    import os
    import threading
    release, synced = threading.Event(), []

    def slow_fdatasync(fd: int) -> None:  # a disk that answers when the test says so
        release.wait(5)
        synced.append(len(SentJournal(tmp_path / "sent.journal").read()))

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    journal = SentJournal(tmp_path / "sent.journal")
    journal.record("a@corp.example")
    assert journal.read() == ["a@corp.example"] and synced == []  # written, not yet synced
    waiting = threading.Thread(target=journal.record, args=("b@corp.example",))
    waiting.start()
    waiting.join(0.2)
    assert waiting.is_alive() and synced == []  # b waits for a's fdatasync
    release.set()
    waiting.join(5)
    journal.close()
    assert synced == [2, 2]  # a's (done once b was written), then b's: close waited for it


# ── through the service ──────────────────────────────────────────────────────────────────────



@pytest.fixture
def convo(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    conversation = Conversation(embedded_mail, make_config(embedded_mail, tmp_path / "var"),
                                clock)
    for person in (INITIATOR, OWNER):
        conversation.inbox(person)
    conversation.process()
    yield conversation
    conversation.close()


@pytest.mark.integration
def test_one_log_line_per_email_that_leaves_the_inbox(convo, caplog):
    raws = [HELP.format(id="log-1", body="帮助").encode(),
            HELP.format(id="log-1", body="帮助").encode(),  # the same again: a duplicate
            b"\r\n".join(bytes(range(128, 256))[i:i + 64] for i in (0, 64)) * 4,  # junk
            HELP.format(id="log-1", body="something else").encode()]  # a collision
    for raw in raws:
        convo.send_raw(INITIATOR, [convo.config.inbox_address], raw)
    with caplog.at_level(logging.INFO, logger="maild.service"):
        convo.process()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=inbound")]
    assert len(lines) == len(raws), lines
    assert all(" uid=" in line and " folder=" in line and " reason=" in line for line in lines)
    assert 'reason=duplicate' in lines[1]
    # The junk got a Delivered-To line on the way, and nothing else a sender could be read from.
    assert "message_id=sha256:" in lines[2] and "no usable sender address" in lines[2]
    assert "collision=true" in lines[3] and "reason=help" in lines[3]


@pytest.mark.integration
def test_an_email_maild_fails_on_is_kept_and_its_sender_told_once(convo, monkeypatch):
    """A bug on one email: it goes to Quarantine, its (trustworthy) sender gets one answer;
    an auto-reply that trips the same bug gets none."""
    real = convo.service._decide

    def failing(msg, *args):
        if "boom" in msg.subject:
            raise RuntimeError("a bug")
        return real(msg, *args)
    monkeypatch.setattr(convo.service, "_decide", failing)
    convo.say(INITIATOR, "boom 项目", "任务：x")
    convo.say(INITIATOR, "boom again", "x", headers={"Auto-Submitted": "auto-replied"})
    convo.process()
    (answer,) = convo.inbox(INITIATOR)
    assert answer["X-Maild-Kind"] == "not_handled" and "管理员" in answer.get_body(
        ("plain",)).get_content()
    assert len(convo.folder(convo.config.inbox_address, "Quarantine")) >= 2


class _Killed(Exception):
    """Stands for a SIGKILL right after an SMTP 250 (the journal already has it)."""


@pytest.mark.integration
def test_after_a_crash_only_what_was_in_flight_is_sent_again(embedded_mail, tmp_path):
    """The service dies after the server accepted the first of a project's emails, before
    the commit that records it: the journal has it, the next start marks it sent; the other
    emails go out once. Nobody gets anything twice."""
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    config = make_config(embedded_mail, tmp_path / "var")
    first = Conversation(embedded_mail, config, clock)
    for person in (INITIATOR, OWNER, "zhao.lei@corp.example"):
        first.inbox(person)

    def kill(point: str) -> None:
        raise _Killed(point)
    first.service.outbox.crash_hook = kill
    first.say(INITIATOR, "[项目] 断电测试", "项目名称：断电测试\n目标/背景：x\n范围：x\n\n任务：\n"
              "任务名称 | 负责人 | 截止日期 | 交付标准\n卖点 | 王喆 | 8月10日前 | 说明\n"
              "渠道 | 赵磊 | 8月15日前 | 方案\n")
    with pytest.raises(_Killed):
        first.process()
    journal = SentJournal(config.data_dir / "sent.journal")
    assert len(journal.read()) == 1
    first.service.store.rollback()  # what the kill loses: everything since the last commit
    first.close()

    again = Conversation(embedded_mail, config, clock)
    again._seen = first._seen  # the mailboxes as they were before the project
    try:
        assert journal.read() == []  # folded into the outbox at start, then forgotten
        again.process()
        again.service.drain()
        got = {p: len(again.inbox(p)) for p in (INITIATOR, OWNER, "zhao.lei@corp.example")}
        assert got == {INITIATOR: 1, OWNER: 1, "zhao.lei@corp.example": 1}
        assert {e.status for e in again.service.store.outbox_entries()} == {"sent"}
    finally:
        again.close()
