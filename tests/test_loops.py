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
