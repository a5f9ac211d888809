"""Owners answer the guide's way, over real SMTP and IMAP: a confirmation with a request for more
days in one sentence, the guide's blocker sentence, a progress line with a ticked box.

People send by SMTP and read their mailboxes by IMAP; maild handles its inbox as its loop would.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage

import pytest
from conversation import TZ, Conversation, FakeClock, html_of, make_config, text_of

pytestmark = pytest.mark.integration

PROJECT = """项目名称：Q3新品推广项目
发起人/部门：李娜 / 市场部
目标/背景：新品计划8月上市，3个月内用户增长50%

任务名称 | 负责人 | 截止日期 | 交付标准
新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
渠道推广方案 | 赵磊 | 8月14日前 | 包含预算、渠道选择、投放节奏
"""
INITIATOR, WANG = "li.na@corp.example", "wang.zhe@corp.example"
PEOPLE = (INITIATOR, WANG, "zhao.lei@corp.example", "chen.jing@corp.example",
          "alex.morgan@corp.example")


def _start(mail_system, tmp_path) -> Conversation:
    convo = Conversation(mail_system, make_config(mail_system, tmp_path / "var"),
                         FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ)))
    for person in PEOPLE:  # a shared mail system: start from what arrives from now on
        convo.inbox(person)
    convo.say(INITIATOR, "[项目] Q3新品推广项目", PROJECT)  # a new Message-ID each time
    convo.process()
    convo.inbox(INITIATOR)  # the receipt
    return convo


@pytest.fixture
def convo(mail_system, tmp_path):
    conversation = _start(mail_system, tmp_path)
    yield conversation
    conversation.close()


@pytest.fixture
def shared(embedded_mail, tmp_path):
    conversation = _start(embedded_mail, tmp_path)
    yield conversation
    conversation.close()


def _task(convo: Conversation, number: int = 0) -> dict:
    return convo.service.store.get_item("MD-0001")["tasks"][number]


def test_ok_but_three_more_days_is_a_confirmation_and_a_delay_request(convo):
    request = convo.inbox(WANG)[0]
    convo.clock.advance(minutes=30)
    convo.reply(WANG, request, "李经理好，\n\n没问题，不过得延后三天左右。\n\n王喆\n产品部")
    convo.process()

    task = _task(convo)
    assert task["confirmed_by"] == WANG and task["state"] == "delayed"
    assert task["requested_deadline"] == "2026-08-13T18:00:00+08:00"  # Aug 10 + 3 working days
    assert [e["action"] for e in convo.service.store.get_item("MD-0001")["audit"][-2:]] == [
        "confirm", "delay"]

    # One email to the initiator naming both: the delay to decide on, and the confirmation.
    told = convo.inbox(INITIATOR)
    assert len(told) == 1
    assert "申请延期" in str(told[0]["Subject"]) and "确认" in str(told[0]["Subject"])
    for part in (text_of(told[0]), html_of(told[0])):
        assert "王喆 在同一封回复里确认了这项任务" in part and "8月13日" in part
        assert "原截止后 3 个工作日" in part
    # One acknowledgement to the owner, listing both.
    ack = convo.inbox(WANG)
    assert len(ack) == 1
    assert "你确认了任务 T-1" in text_of(ack[0]) and "申请延期至 8月13日" in text_of(ack[0])

    # The initiator accepts by replying to that email; the deadline moves.
    convo.clock.advance(hours=1)
    convo.reply(INITIATOR, told[0], "同意")
    convo.process()
    task = _task(convo)
    assert task["deadline"] == "2026-08-13T18:00:00+08:00" and "requested_deadline" not in task
    assert convo.service.store.get_item("MD-0001")["audit"][-1]["action"] == "deadline"
    assert "8月13日" in text_of(convo.inbox(WANG)[0])
    assert convo.folder("collab@corp.example") == []


def _confirmed(convo: Conversation, answer: str) -> EmailMessage:
    """王喆 confirms his task; the acknowledgement he then replies to."""
    convo.reply(WANG, convo.inbox(WANG)[0], answer)
    convo.process()
    convo.inbox(INITIATOR)
    return convo.inbox(WANG)[0]


def test_the_guides_blocker_sentence_reaches_the_initiator_at_once(shared):
    ack = _confirmed(shared, "确认")
    shared.clock.advance(days=1)
    shared.reply(WANG, ack, "李经理好，\n\n推广素材制作延迟，因设计部人手不足，需市场部协调1名设计师临时支援。"
                            "\n\n谢谢！\n王喆")
    shared.process()

    task = _task(shared)
    assert task["state"] == "blocked"
    assert task["blockers"][0]["support"] == "市场部协调1名设计师临时支援"
    alert = shared.inbox(INITIATOR)
    assert len(alert) == 1 and "受阻" in str(alert[0]["Subject"])
    for words in ("推广素材制作延迟", "设计部人手不足", "市场部协调1名设计师临时支援"):
        assert words in text_of(alert[0])


def test_a_ticked_progress_box_with_its_summary_is_progress_with_a_note(shared):
    ack = _confirmed(shared, "收到")
    shared.clock.advance(days=2)
    shared.reply(WANG, ack, "当前进度：□0% □25% □50% ☑75% □100%\n完成情况简述：卖点说明初稿已完成，场景图在画")
    shared.process()

    task = _task(shared)
    assert (task["progress"], task["state"]) == (75, "in_progress")
    entry = shared.service.store.get_item("MD-0001")["audit"][-1]
    assert entry["action"] == "progress" and entry["detail"]["note"] == "卖点说明初稿已完成，场景图在画"
    ack = shared.inbox(WANG)
    assert len(ack) == 1 and "进度 75%" in text_of(ack[0])
    assert shared.inbox(INITIATOR) == []  # progress waits for the digest
