"""End-to-end conversations over real SMTP and IMAP, with each mail system (embedded, Dovecot).

People send email by SMTP; maild's service handles its inbox over IMAP and sends by SMTP; the
test reads each person's mailbox over IMAP and the stored state.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import unquote

import pytest
from conversation import TZ, Conversation, FakeClock, html_of, make_config, text_of

from maild.core import tokens

pytestmark = pytest.mark.integration

DATA = __import__("pathlib").Path(__file__).parents[1] / "data"
OWNERS = ("wang.zhe@corp.example", "zhao.lei@corp.example", "chen.jing@corp.example")
INITIATOR = "li.na@corp.example"



def _kickoff(convo: Conversation) -> str:
    raw = (DATA / "new_project_zh.eml").read_bytes()
    convo.send_raw(INITIATOR, [convo.config.inbox_address], raw)
    convo.process()
    return "20260803091238.A1B2C3@corp.example"


def test_project_email_brings_receipt_and_one_confirmation_request_per_owner(convo):
    root = _kickoff(convo)

    receipts = convo.inbox(INITIATOR)
    assert len(receipts) == 1
    receipt = receipts[0]
    assert re.search(r"\[MD-0001\]", str(receipt["Subject"]))
    assert receipt["In-Reply-To"] == f"<{root}>"
    assert receipt["Auto-Submitted"] == "auto-generated"
    assert receipt.get_content_type() == "multipart/alternative"
    for word in ("新品核心卖点提炼", "渠道推广方案", "客诉应对流程培训", "王喆", "赵磊", "陈静", "待确认"):
        assert word in text_of(receipt) and word in html_of(receipt)

    expected = {"wang.zhe@corp.example": ("T-1", "新品核心卖点提炼", "500字以内卖点说明+用户场景图"),
                "zhao.lei@corp.example": ("T-2", "渠道推广方案", "包含预算、渠道选择、投放节奏"),
                "chen.jing@corp.example": ("T-3", "客诉应对流程培训", "FAQ文档+培训签到记录")}
    for owner, (task_id, name, deliverable) in expected.items():
        got = convo.inbox(owner)
        assert len(got) == 1, owner
        request = got[0]
        assert str(request["To"]).endswith(owner)
        assert "MD-0001" in str(request["Subject"])
        assert request["In-Reply-To"] == f"<{root}>"
        assert f"<{root}>" in str(request["References"])
        assert request["Auto-Submitted"] == "auto-generated"
        assert request["X-Auto-Response-Suppress"] == "All"
        reply_to = str(request["Reply-To"])
        token = tokens.find(b"conversation-test", [reply_to], owner)
        assert token is not None
        assert (token.item_id, token.task_id, token.address, token.issued, token.action) == (
            "MD-0001", task_id, owner, convo.clock().date(), "reply")
        for part in (text_of(request), html_of(request)):
            assert name in part and deliverable in part and "李娜" in part and "确认" in part
        # The confirm and decline buttons each have their own address, signed for this owner.
        buttons = re.findall(r'href="mailto:([^"?]+)', html_of(request))
        assert [tokens.find(b"conversation-test", [unquote(b)], owner).action
                for b in buttons] == ["confirm", "decline"]

    item = convo.service.store.get_item("MD-0001")
    assert item["initiator"] == INITIATOR and item["title"] == "Q3新品推广项目"
    assert [t["owner"] for t in item["tasks"]] == list(expected)
    assert all(t["state"] == "awaiting_confirmation" for t in item["tasks"])
    assert item["tasks"][0]["deadline"].startswith("2026-08-10T18:00")
    # The inbound email left INBOX for Processed only after its effects were committed.
    assert convo.folder("collab@corp.example") == []
    assert len(convo.folder("collab@corp.example", "Processed")) == 1


def test_owner_confirms_with_quoted_history_and_initiator_is_told(convo):
    _kickoff(convo)
    convo.inbox(INITIATOR)
    request = convo.inbox("wang.zhe@corp.example")[0]
    convo.clock.advance(minutes=20)
    convo.reply("wang.zhe@corp.example", request, "确认")
    convo.process()

    task = convo.service.store.get_item("MD-0001")["tasks"][0]
    assert task["state"] == "not_started"
    assert task["confirmed_by"] == "wang.zhe@corp.example"
    assert task["confirmed_at"].startswith("2026-08-03T09:35")
    audit = convo.service.store.get_item("MD-0001")["audit"]
    assert audit[-1]["action"] == "confirm" and audit[-1]["who"] == "wang.zhe@corp.example"

    told = convo.inbox(INITIATOR)
    assert len(told) == 1
    assert "王喆" in text_of(told[0]) and "新品核心卖点提炼" in text_of(told[0])
    assert told[0]["References"] and "20260803091238.A1B2C3@corp.example" in told[0]["References"]
    ack = convo.inbox("wang.zhe@corp.example")
    assert len(ack) == 1 and "MD-0001" in str(ack[0]["Subject"])
    # The other tasks are untouched: the quoted request mentions 确认 too, but quotes are not read.
    assert [t["state"] for t in convo.service.store.get_item("MD-0001")["tasks"][1:]] == [
        "awaiting_confirmation", "awaiting_confirmation"]


def test_only_the_owner_may_confirm(convo):
    _kickoff(convo)
    request = convo.inbox("wang.zhe@corp.example")[0]
    # 赵磊 forwards-and-answers 王喆's request: the token is not his, so he is refused.
    convo.reply("zhao.lei@corp.example", request, "确认")
    convo.process()
    assert convo.service.store.get_item("MD-0001")["tasks"][0]["state"] == "awaiting_confirmation"
    refusal = [m for m in convo.inbox("zhao.lei@corp.example") if "MD-0001" in str(m["Subject"])]
    assert any("王喆" in text_of(m) for m in refusal)


def test_decline_reaches_initiator_with_reason_and_reassign_hint(convo):
    _kickoff(convo)
    convo.inbox(INITIATOR)
    request = convo.inbox("zhao.lei@corp.example")[0]
    convo.reply("zhao.lei@corp.example", request, "拒绝：本周在外地出差，建议转给销售部其他同事")
    convo.process()
    task = convo.service.store.get_item("MD-0001")["tasks"][1]
    assert task["state"] == "declined"
    notice = convo.inbox(INITIATOR)
    assert len(notice) == 1
    body = text_of(notice[0])
    assert "本周在外地出差，建议转给销售部其他同事" in body and "转派 T-2" in body


def test_duplicate_delivery_is_handled_once(convo):
    raw = (DATA / "new_project_zh.eml").read_bytes()
    convo.send_raw(INITIATOR, [convo.config.inbox_address], raw)
    convo.send_raw(INITIATOR, [convo.config.inbox_address], raw)
    convo.process()
    assert len(convo.inbox("wang.zhe@corp.example")) == 1
    assert len(convo.service.store.open_items()) == 1
    assert len(convo.folder("collab@corp.example", "Processed")) == 2


def test_invalid_form_gets_one_reply_naming_each_problem(convo):
    raw = (DATA / "new_project_invalid_zh.eml").read_bytes()
    convo.send_raw(INITIATOR, [convo.config.inbox_address], raw)
    convo.process()
    replies = convo.inbox(INITIATOR)
    assert len(replies) == 1
    body = text_of(replies[0])
    assert "王喆、赵磊" in body          # two owners on one task
    assert "张三" in body               # unknown owner
    assert "尽快" in body               # unparseable deadline
    assert "渠道拓展项目" in body        # the sender's text, refilled
    assert convo.service.store.open_items() == []
    for owner in OWNERS:
        assert convo.inbox(owner) == []


@pytest.mark.parametrize("fixture", ["auto_reply_zh.eml", "bounce_dsn.eml"],
                         ids=["auto-reply", "bounce"])
def test_auto_replies_and_bounces_are_never_answered(convo, fixture):
    _kickoff(convo)
    for address in (INITIATOR, *OWNERS):
        convo.inbox(address)
    sender = "wang.zhe@corp.example" if "auto" in fixture else "mailer-daemon@corp.example"
    convo.send_raw(sender, [convo.config.inbox_address], (DATA / fixture).read_bytes())
    convo.process()
    for address in (INITIATOR, *OWNERS):
        assert convo.inbox(address) == []
    assert convo.service.store.get_item("MD-0001")["tasks"][0]["state"] == "awaiting_confirmation"


def test_unrecognised_email_is_quarantined_with_one_helpful_reply(convo):
    convo.say("alex.morgan@corp.example", "周末聚餐", "大家周六有空吗？")
    convo.process()
    assert len(convo.folder("collab@corp.example", "Quarantine")) == 1
    replies = convo.inbox("alex.morgan@corp.example")
    assert len(replies) == 1
    assert "[项目]" in text_of(replies[0])


def test_english_task_is_answered_in_english(convo):
    convo.send_raw(INITIATOR, [convo.config.inbox_address], (DATA / "new_task_en.eml").read_bytes())
    convo.process()
    receipt = convo.inbox(INITIATOR)[0]
    request = convo.inbox("zhao.lei@corp.example")[0]
    assert "Monthly customer satisfaction report" in text_of(request)
    assert "confirm" in text_of(request).lower()
    assert not re.search(r"[\u4e00-\u9fff]{4,}", str(receipt["Subject"]))


def test_bounce_for_an_owner_marks_them_unreachable_and_tells_the_initiator_once(convo):
    _kickoff(convo)
    for address in (INITIATOR, *OWNERS):
        convo.inbox(address)
    dsn = (DATA / "bounce_dsn.eml").read_bytes().replace(b"nobody@corp.example",
                                                         b"zhao.lei@corp.example")
    for n in range(2):  # the same bounce delivered twice, and a second one for the same address
        convo.send_raw("mailer-daemon@corp.example", [convo.config.inbox_address],
                       dsn.replace(b"bounce-0001", b"bounce-000%d" % n))
    convo.process()
    told = convo.inbox(INITIATOR)
    assert len(told) == 1 and told[0]["X-Maild-Kind"] == "owner_unreachable"
    assert "zhao.lei@corp.example" in text_of(told[0])
    assert convo.service.store.get_item("MD-0001")["tasks"][1]["unreachable"]
    for owner in OWNERS:
        assert convo.inbox(owner) == []


def test_without_plus_addressing_replies_match_by_threading(mail_system, tmp_path):
    """Where the server lacks plus-addressing, replies go to the inbox and match by In-Reply-To."""
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    config = make_config(mail_system, tmp_path / "var", **{"mail.plus_addressing": False})
    convo = Conversation(mail_system, config, clock)
    try:
        _kickoff(convo)
        request = convo.inbox("wang.zhe@corp.example")[0]
        assert str(request["Reply-To"] or request["From"]).endswith("<collab@corp.example>")
        assert "+" not in str(request["Reply-To"] or "")
        convo.reply("wang.zhe@corp.example", request, "确认")
        convo.process()
        assert convo.service.store.get_item("MD-0001")["tasks"][0]["state"] == "not_started"
    finally:
        convo.close()


def test_inline_answer_from_a_phone_is_read_and_the_audit_shows_what_was_cut(convo):
    _kickoff(convo)
    request = convo.inbox("wang.zhe@corp.example")[0]
    quoted = "\n".join("> " + line for line in text_of(request).splitlines())
    body = (f"进度 40%\n\n> 截止日期：8月10日\n\n能按时交，场景图周四出。\n\n发自我的华为手机\n\n"
            f"在 2026年8月3日，09:15，maild <{convo.config.inbox_address}> 写道：\n{quoted}\n")
    refs = f"{request.get('References', '')} {request['Message-ID']}".strip()
    convo.say("wang.zhe@corp.example", "Re: " + str(request["Subject"]), body,
              to=str(request.get("Reply-To") or request["From"]),
              in_reply_to=str(request["Message-ID"]), references=refs)
    convo.process()

    item = convo.service.store.get_item("MD-0001")
    assert item["tasks"][0]["progress"] == 40
    entry = item["audit"][-1]
    assert entry["action"] == "progress" and entry["who"] == "wang.zhe@corp.example"
    # Both the quoted line between the answers and the signature with the history below it.
    assert entry["detail"]["trimmed"].startswith("「> 截止日期：8月10日」 | 「发自我的华为手机」 +")
