"""Mail loops through the whole daemon: two maild instances pointed at each other, and maild
facing a naive auto-responder that answers everything and marks nothing. Both must stop: the
first at once (maild never answers maild), the second within the per-sender reply limit.
"""

from __future__ import annotations

import email
import email.policy
import smtplib
from datetime import datetime
from email.message import EmailMessage

import pytest
from conftest import make_mail_system
from conversation import TZ, Conversation, FakeClock, make_config

pytestmark = pytest.mark.integration

A, B = "collab@corp.example", "collab2@corp.example"
RESPONDER = "zhao.lei@corp.example"


@pytest.fixture
def system(shipped_config):
    emb = shipped_config.embedded_system
    mail = make_mail_system("embedded", {**emb.accounts, B: "collab2-demo"}, emb.host)
    yield mail
    mail.stop()


def _service(system, tmp_path, inbox: str, clock: FakeClock, **overrides) -> Conversation:
    values = {"mail.inbox_address": inbox, **overrides}
    config = make_config(system, tmp_path / inbox.partition("@")[0], **values)
    return Conversation(system, config, clock)


def _send(system, sender: str, to: str, subject: str, body: str, extra: dict | None = None) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = f"<{abs(hash((sender, subject, body)))}@corp.example>"
    for name, value in (extra or {}).items():
        del msg[name]
        msg[name] = value
    msg.set_content(body)
    with smtplib.SMTP(system.host, system.smtp_port, timeout=10) as smtp:
        smtp.sendmail(sender, [to], msg.as_bytes(policy=email.policy.SMTP))


def test_two_maild_instances_pointed_at_each_other_stop_within_two_rounds(system, tmp_path):
    clock = FakeClock(datetime(2026, 8, 1, 10, 0, tzinfo=TZ))  # a Saturday: no digests due
    a = _service(system, tmp_path, A, clock)
    b = _service(system, tmp_path, B, clock,
                 **{"embedded.account": [{"address": B, "password": "collab2-demo"},
                                         *({"address": k, "password": v}
                                           for k, v in a.config.embedded_system.accounts.items())]})
    try:
        # A forged first email: "from" B's inbox to A, asking for help (A will answer B).
        _send(system, B, A, "帮助", "帮助")
        sent = []
        for _round in range(6):
            a.process()
            b.process()
            sent.append(len(a.service.store.outbox_entries()) + len(b.service.store.outbox_entries()))
        assert sent[-1] == sent[1], sent  # nothing new after the second round
        assert sent[-1] <= 1, sent  # A answered the forged email once; B never answered A
        assert a.folder(A) == [] and b.folder(B) == []
        assert b.service.store.outbox_entries() == []
        for entry in a.service.store.outbox_entries():  # what A sent, B saw and ignored as maild's
            seen = b.service.store.processed(entry.out.message_id)
            assert seen and seen["reason"].startswith("ignored own"), seen
    finally:
        a.close()
        b.close()


def test_maild_and_a_naive_auto_responder_stop(system, tmp_path):
    clock = FakeClock(datetime(2026, 8, 1, 10, 0, tzinfo=TZ))
    maild = _service(system, tmp_path, A, clock)
    limit = maild.config.replies_per_sender_per_hour
    answered: set[str] = set()

    def responder_round() -> int:
        """Answer every new email, as a naive responder does: no Auto-Submitted, no Precedence."""
        count = 0
        for msg in maild.folder(RESPONDER):
            key = str(msg["Message-ID"])
            if key in answered:
                continue
            answered.add(key)
            _send(system, RESPONDER, A, "Re: " + str(msg["Subject"]).replace("\n", " "),
                  f"Thanks for your message ({len(answered)}).",
                  {"In-Reply-To": key, "References": key})
            count += 1
        return count

    try:
        _send(system, RESPONDER, A, "帮助", "帮助")
        rounds = 0
        while responder_round() or rounds == 0:
            rounds += 1
            assert rounds <= limit + 5, "the loop did not stop"
            maild.process()
        replies = len(maild.service.store.outbox_entries())
        assert replies <= limit, replies  # bounded by the per-sender limit, then silence
        maild.process()
        assert responder_round() == 0 and maild.folder(A) == []
        print(f"\nnaive auto-responder: stopped after {rounds} rounds, {replies} replies by maild")
    finally:
        maild.close()


def test_an_owners_auto_responder_is_capped_per_day_and_the_exchange_ends(system, tmp_path):
    """赵磊's auto-responder answers every email from maild, through its reply address as mail
    clients do, with a canned "收到，我会尽快处理。" and no Auto-Submitted: maild reads "收到"
    as a confirmation and acknowledges it, which the responder answers again. Acknowledgements
    are not unsolicited, so only the per-correspondent daily cap (40 per 24 hours, as OTRS
    caps auto-responses) ends it; each day's schedules (digest, reminders) may start it again,
    within the same cap. Three simulated days, in steps of three hours."""
    from imapclient import IMAPClient

    clock = FakeClock(datetime(2026, 8, 3, 8, 0, tzinfo=TZ))  # a Monday
    maild = _service(system, tmp_path, A, clock)
    cap = maild.config.replies_per_sender_per_day
    seen: set[int] = set()
    sent_back = 0

    def responder_round(client: IMAPClient) -> int:
        nonlocal sent_back
        client.noop()
        new = [uid for uid in client.search(["ALL"]) if uid not in seen]
        for uid, data in client.fetch(new, ["BODY.PEEK[HEADER]"]).items():
            seen.add(uid)
            msg = email.message_from_bytes(bytes(data[b"BODY[HEADER]"]),
                                           policy=email.policy.default)
            sent_back += 1
            key = str(msg["Message-ID"])
            _send(system, RESPONDER, str(msg.get("Reply-To") or msg["From"]),
                  "Re: " + str(msg["Subject"]).replace("\n", " "), "收到，我会尽快处理。",
                  {"In-Reply-To": key, "References": key,
                   "Message-ID": f"<auto-{sent_back}@corp.example>"})
        return len(new)

    try:
        with IMAPClient(system.host, port=system.imap_port, ssl=False, timeout=30) as client:
            client.login(RESPONDER, "demo")
            client.select_folder("INBOX")
            seen.update(client.search(["ALL"]))  # what earlier tests left
            project = ("项目名称：自动回复测试\n目标/背景：x\n范围：x\n\n任务：\n"
                       "任务名称 | 负责人 | 截止日期 | 交付标准\n渠道方案 | 赵磊 | 8月5日 | 方案\n")
            _send(system, "li.na@corp.example", A, "[项目] 自动回复测试", project)
            maild.process()
            for _step in range(24):
                rounds = 0
                while responder_round(client):
                    rounds += 1
                    assert rounds <= cap + 5, "the exchange did not stop within the daily cap"
                    maild.process()
                maild.service.tick()  # digests and reminders that fell due, if any
                clock.advance(hours=3)
            per_day: dict[str, int] = {}
            for entry in maild.service.store.outbox_entries():
                if RESPONDER in entry.out.to and entry.sent_at is not None:
                    day = entry.sent_at.date().isoformat()
                    per_day[day] = per_day.get(day, 0) + 1
            print(f"\nauto-responder owner: maild's emails to it per day {per_day}, "
                  f"{sent_back} emails from it")
            assert all(count <= cap + 3 for count in per_day.values()), per_day  # + schedules
            assert responder_round(client) == 0  # quiet at the end
    finally:
        maild.close()
