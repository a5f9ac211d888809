"""Closing the loop over real SMTP and IMAP: work handed in, returned with a reason, handed in
again and accepted; a monthly task through a simulated quarter; a task that waits on another and
is told when it may start.

People write as mail clients do (replies with quoted history, buttons that open a ready-made
reply to their own address); the service handles its inbox; the test reads each mailbox.
"""

from __future__ import annotations

import email.policy
import email.utils
from datetime import datetime
from email.message import EmailMessage

import pytest
from conversation import TZ, Conversation, FakeClock, buttons_of, html_of, make_config, text_of

pytestmark = pytest.mark.integration

LI, WANG, ZHAO, CHEN = ("li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example",
                        "chen.jing@corp.example")
PROJECT = """项目名称：Q3新品推广项目
发起人/部门：李娜 / 市场部
目标/背景：新品计划8月上市，3个月内用户增长50%
验收：需要

任务名称 | 负责人 | 截止日期 | 交付标准 | 备注
新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图 | 需结合用户调研数据
渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏 | 预算上限待财务部确认
客诉应对流程培训 | 陈静 | 8月20日前 | FAQ文档+培训签到记录 | 需产品部提供FAQ文档
"""


def kinds(messages) -> list[str]:
    return sorted(str(m["X-Maild-Kind"]) for m in messages)


def press(convo: Conversation, sender: str, msg: EmailMessage, label: str, extra: str = "") -> None:
    """Click a button of `msg` (a mailto: link), add `extra` to the ready-made body, and send."""
    (address, subject, body), = [(a, s, b) for lab, a, s, b in buttons_of(msg) if lab == label]
    convo.say(sender, subject, body + extra, to=address, in_reply_to=str(msg["Message-ID"]))


def reply_with_file(convo: Conversation, sender: str, to_message: EmailMessage, body: str,
                    filename: str, data: bytes) -> None:
    """Reply as a mail client does, with a file attached."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = str(to_message["Reply-To"])
    msg["Subject"] = "回复：" + str(to_message["Subject"])
    msg["Message-ID"] = email.utils.make_msgid(domain="corp.example")
    msg["In-Reply-To"] = str(to_message["Message-ID"])
    msg["References"] = f"{to_message.get('References', '')} {to_message['Message-ID']}".strip()
    msg["Date"] = email.utils.format_datetime(convo.clock())
    quoted = "\n".join("> " + line for line in text_of(to_message).splitlines())
    msg.set_content(f"{body}\n\n在 {to_message['Date']}，maild 写道：\n{quoted}")
    msg.add_attachment(data, maintype="application", subtype="pdf", filename=filename)
    convo.send_raw(sender, [msg["To"]], msg.as_bytes(policy=email.policy.SMTP))



def test_handed_in_returned_with_a_reason_handed_in_again_and_accepted(convo):
    convo.say(LI, "[项目] Q3新品推广项目", PROJECT)
    convo.process()
    (receipt,) = convo.inbox(LI)
    assert "完成的任务需要你验收" in text_of(receipt)
    request = [m for m in convo.inbox(WANG) if m["X-Maild-Kind"] == "confirm_request"][0]
    assert "完成后需要发起人验收" in text_of(request)
    convo.reply(WANG, request, "确认")
    convo.process()
    convo.inbox(LI), convo.inbox(WANG)

    # 王喆 reports done with the deliverable attached: the task waits for 李娜's acceptance.
    convo.clock.advance(days=2)
    reply_with_file(convo, WANG, request, "完成：卖点说明和用户场景图见附件", "卖点说明.pdf",
                    b"%PDF-1.4 selling points v1")
    convo.process()
    task = convo.service.store.get_item("MD-0001")["tasks"][0]
    assert task["state"] == "submitted"
    (ack,) = convo.inbox(WANG)
    assert "已提交验收" in text_of(ack)
    (review,) = convo.inbox(LI)
    assert review["X-Maild-Kind"] == "review_request"
    for part in (text_of(review), html_of(review)):
        assert "500字以内卖点说明+用户场景图" in part  # the 交付标准 beside what was handed in
        assert "卖点说明和用户场景图见附件" in part and "卖点说明.pdf" in part
    assert [label for label, *_ in buttons_of(review)][:2] == ["验收通过", "退回修改"]
    # The deliverable itself comes along, as the owner attached it.
    assert [(p.get_filename(), p.get_content()) for p in review.iter_attachments()] == [
        ("卖点说明.pdf", b"%PDF-1.4 selling points v1")]
    assert "交付的附件已随本邮件附上" in text_of(review)

    # 李娜 returns it with a reason (the button's ready-made reply, the reason written after it).
    convo.clock.advance(hours=1)
    press(convo, LI, review, "退回修改", "场景图缺少移动端")
    convo.process()
    task = convo.service.store.get_item("MD-0001")["tasks"][0]
    assert task["state"] == "returned" and task["returned_reason"] == "场景图缺少移动端"
    (returned,) = convo.inbox(WANG)
    assert returned["X-Maild-Kind"] == "returned"
    assert "场景图缺少移动端" in text_of(returned) and "场景图缺少移动端" in html_of(returned)
    root = convo.service.store.get_item("MD-0001")["root_message_id"]
    assert f"<{root}>" in str(returned["References"])  # the same thread as the project
    assert kinds(convo.inbox(LI)) == ["command_ack"]

    # He hands it in again from the returned email; she sees the earlier reason, and accepts.
    convo.clock.advance(hours=20)
    reply_with_file(convo, WANG, returned, "完成，已补充移动端场景图", "卖点说明v2.pdf",
                    b"%PDF-1.4 selling points v2")
    convo.process()
    convo.inbox(WANG)
    (second,) = convo.inbox(LI)
    assert second["X-Maild-Kind"] == "review_request"
    assert "第 2 次" in text_of(second) and "场景图缺少移动端" in text_of(second)
    assert [p.get_filename() for p in second.iter_attachments()] == ["卖点说明v2.pdf"]
    press(convo, LI, second, "验收通过")
    convo.process()
    (accepted,) = convo.inbox(WANG)
    assert accepted["X-Maild-Kind"] == "accepted" and "验收通过" in text_of(accepted)
    item = convo.service.store.get_item("MD-0001")
    task = item["tasks"][0]
    assert task["state"] == "done" and task["accepted_by"] == LI
    assert [s["verdict"] for s in task["submissions"]] == ["returned", "accepted"]
    assert [a["action"] for a in item["audit"] if a["task"] == "T-1"][-4:] == [
        "hand_in", "return", "hand_in", "approve"]
    # The same button again changes nothing (a button works once).
    press(convo, LI, second, "验收通过")
    convo.process()
    assert kinds(convo.inbox(LI)) == ["command_ack", "refused"]


@pytest.fixture
def quarter(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 10, 0, tzinfo=TZ))  # Monday
    conversation = Conversation(embedded_mail, make_config(embedded_mail, tmp_path / "var"), clock)
    for address in (LI, WANG, ZHAO, CHEN):  # the module's mail system: earlier tests' mail
        conversation.inbox(address)
    yield conversation
    conversation.close()


MONTHLY = """任务名称：月度客户满意度报告
发起人：李娜 / 市场部
负责人：赵磊
优先级：高
截止日期：8月5日
交付标准：PDF报告，含调研数据与分析
重复：每月5日
"""


def test_a_monthly_task_through_a_simulated_quarter(quarter):
    convo = quarter
    convo.say(LI, "[任务] 月度客户满意度报告", MONTHLY)
    convo.process()
    (receipt,) = convo.inbox(LI)
    text = text_of(receipt)
    # The receipt shows the next occurrences: 09-05 is a Saturday, 10-05 in the Golden Week.
    assert "每月5日" in text and "9月4日 周五（9月5日 周六不是工作日，提前）" in text
    assert "9月30日 周三（10月5日 周一不是工作日，提前）" in text
    (request,) = convo.inbox(ZHAO)
    assert "你确认后会承接整个系列" in text_of(request)
    convo.reply(ZHAO, request, "确认")
    convo.process()
    convo.reply(ZHAO, request, "完成：8月报告已提交")
    convo.process()
    convo.inbox(LI), convo.inbox(ZHAO)

    def tick(*when: int) -> None:
        convo.clock.now = datetime(2026, *when, tzinfo=TZ)
        convo.service.tick()

    # Two working days of notice, as the first had: September's is created Wednesday 09-02.
    tick(9, 2, 8, 59)
    assert [m["X-Maild-Kind"] for m in convo.inbox(ZHAO)] == []
    tick(9, 2, 9, 0)
    (september,) = [m for m in convo.inbox(ZHAO) if m["X-Maild-Kind"] == "occurrence"]
    assert "月度客户满意度报告（9月4日）" in text_of(september)
    assert "不需要再确认" in text_of(september)
    # Its deadline comes as a calendar entry, as for a confirmation.
    (entry,) = [p for p in september.iter_attachments() if p.get_filename().endswith(".ics")]
    assert b"METHOD:REQUEST" in entry.get_content() and b"VALUE=DATE:20260904" in entry.get_content()
    tick(9, 2, 9, 30)  # created once
    assert [m for m in convo.inbox(ZHAO) if m["X-Maild-Kind"] == "occurrence"] == []
    item = convo.service.store.get_item("MD-0001")
    assert [(t["id"], t["state"]) for t in item["tasks"]] == [("T-2", "not_started")]
    assert item["series"]["history"][0]["id"] == "T-1"  # done, kept as history
    convo.reply(ZHAO, september, "完成")
    convo.process()

    # October's is due 09-30 (10-05 is in the Golden Week), created Monday 09-28 (after 中秋).
    tick(9, 28, 9, 0)
    (october,) = [m for m in convo.inbox(ZHAO) if m["X-Maild-Kind"] == "occurrence"]
    assert "月度客户满意度报告（9月30日）" in text_of(october)
    # 赵磊 cannot do this one: he declines it alone, 李娜 hears and gives it to 陈静.
    convo.reply(ZHAO, october, "拒绝：9月底在外地出差")
    convo.process()
    (declined,) = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "declined"]
    convo.reply(LI, declined, "转派 T-3 给 chen.jing@corp.example")
    convo.process()
    (cover,) = [m for m in convo.inbox(CHEN) if m["X-Maild-Kind"] == "confirm_request"]
    convo.reply(CHEN, cover, "确认")
    convo.process()
    convo.reply(CHEN, cover, "完成")
    convo.process()

    # November's goes to the series' owner again, confirmed for the series.
    tick(11, 3, 9, 0)
    (november,) = [m for m in convo.inbox(ZHAO) if m["X-Maild-Kind"] == "occurrence"]
    assert "月度客户满意度报告（11月5日）" in text_of(november)
    assert [m for m in convo.inbox(CHEN) if m["X-Maild-Kind"] == "occurrence"] == []
    item = convo.service.store.get_item("MD-0001")
    assert [(h["id"], h["owner"], h["on_time"]) for h in item["series"]["history"]] == [
        ("T-1", ZHAO, True), ("T-2", ZHAO, True), ("T-3", CHEN, True)]

    # 李娜 stops the series; once November's is done she is asked for the retrospective.
    convo.inbox(LI)
    convo.say(LI, "Re: " + str(receipt["Subject"]), "停止重复", to=str(receipt["Reply-To"]),
              in_reply_to=str(receipt["Message-ID"]))
    convo.process()
    assert "停止重复" in text_of([m for m in convo.inbox(LI)][0])
    tick(12, 3, 9, 0)
    assert [m for m in convo.inbox(ZHAO) if m["X-Maild-Kind"] == "occurrence"] == []
    convo.reply(ZHAO, november, "完成")
    convo.process()
    assert "retrospective_request" in kinds(convo.inbox(LI))


DEPENDENT = PROJECT.replace("验收：需要\n", "")


def test_a_dependency_suggested_by_a_note_is_confirmed_and_the_waiting_owner_unblocked(quarter):
    convo = quarter
    convo.say(LI, "[项目] Q3新品推广项目", DEPENDENT)
    convo.process()
    (receipt,) = convo.inbox(LI)
    assert "需产品部提供FAQ文档" in text_of(receipt)
    item = convo.service.store.get_item("MD-0001")
    assert "depends_on" not in item["tasks"][2]  # suggested, never applied silently
    for owner in (WANG, ZHAO, CHEN):
        convo.reply(owner, convo.inbox(owner)[0], "确认")
    convo.process()
    convo.inbox(LI), convo.inbox(CHEN)

    # The suggestion is confirmed from its button; a loop is then refused with a clear reply.
    press(convo, LI, receipt, "确认依赖 T-3 → T-1")
    convo.process()
    item = convo.service.store.get_item("MD-0001")
    assert item["tasks"][2]["depends_on"] == ["T-1"]
    assert "suggested_dependencies" not in item
    convo.say(LI, "Re: " + str(receipt["Subject"]), "依赖 T-1 T-3", to=str(receipt["Reply-To"]),
              in_reply_to=str(receipt["Message-ID"]))
    convo.process()
    refusal = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "question"][-1]
    assert "循环等待（T-1 → T-3 → T-1）" in text_of(refusal)
    assert convo.service.store.get_item("MD-0001")["tasks"][0].get("depends_on") is None
    (told,) = convo.inbox(CHEN)
    assert "要等 T-1" in text_of(told)

    # 王喆 finishes T-1: 陈静 hears at once that T-3 may start.
    convo.clock.advance(days=3)
    request = [m for m in convo.inbox(WANG)][0]
    convo.reply(WANG, request, "完成")
    convo.process()
    (unblocked,) = [m for m in convo.inbox(CHEN) if m["X-Maild-Kind"] == "unblocked"]
    assert "T-1 新品核心卖点提炼" in text_of(unblocked) and "可以开始了" in text_of(unblocked)
    convo.reply(WANG, request, "进度 100%")
    convo.process()
    assert [m for m in convo.inbox(CHEN) if m["X-Maild-Kind"] == "unblocked"] == []  # once
