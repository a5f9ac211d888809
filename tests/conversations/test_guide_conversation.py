"""Conversations over real SMTP and IMAP (the embedded mail system) with emails written from the
guide: its template 1 as it prints it and as an Excel paste, template 2 with several rows,
template 3 as an HTML table, the step-3 kickoff confirmed with one word, and a corrected form
sent as a reply to maild's "please fix" email.

The emails are the guide corpus's own files (tests/data/guide/new/), sent as their clients
sent them; maild handles its inbox and each person reads theirs.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from conversation import TZ, Conversation, FakeClock, html_of, make_config, text_of

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "data" / "guide" / "new"
LI, WU, CHEN = "li.na@corp.example", "wu.fang@corp.example", "chen.jing@corp.example"
WANG, ZHAO, SUN, ZHOU = ("wang.zhe@corp.example", "zhao.lei@corp.example",
                         "sun.yue@corp.example", "zhou.min@corp.example")
PEOPLE = (LI, WU, CHEN, WANG, ZHAO, SUN, ZHOU)


@pytest.fixture
def convo(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 7, 27, 9, 15, tzinfo=TZ))  # just after the emails' Date
    conversation = Conversation(embedded_mail, make_config(embedded_mail, tmp_path / "var"),
                                clock)
    for person in PEOPLE:  # what earlier tests of the module left in the shared mailboxes
        conversation.inbox(person)
    yield conversation
    conversation.close()


def plain(msg) -> str:
    return text_of(msg).replace("\r\n", "\n")


def send(convo: Conversation, name: str, sender: str) -> None:
    convo.send_raw(sender, [convo.config.inbox_address], (CORPUS / name).read_bytes())
    convo.process()


def only(convo: Conversation, address: str) -> object:
    got = convo.inbox(address)
    assert len(got) == 1, [str(m["Subject"]) for m in got]
    return got[0]


@pytest.mark.parametrize("name", ["t1/guide_print_word_cells_foxmail.eml",
                                  "t1/guide_excel_outlook_html.eml"],
                         ids=["as-the-guide-prints-it", "excel-paste-in-outlook"])
def test_the_guides_template_1_is_registered_and_owners_are_asked(convo, name):
    send(convo, name, LI)
    receipt = only(convo, LI)
    text = plain(receipt)
    assert "[MD-0001]" in str(receipt["Subject"]) and "已登记项目「Q3新品推广项目」" in text
    # owners as the guide writes them, and how they were found
    for role, name_ in (("产品部*经理", "王喆"), ("销售部*主管", "赵磊"), ("客服部*专员", "陈静")):
        assert f"“{role}”→ {name_}" in text
    # 8月15日 is a Saturday: accepted, with the working day before named (the guide's buffer)
    assert "8月15日 周六 18:00不是工作日" in text and "8月14日 周五" in text
    assert "补充「目标/背景」" in text  # suggested, never demanded
    requests = {owner: only(convo, owner) for owner in (WANG, ZHAO, CHEN)}
    assert "新品核心卖点提炼" in plain(requests[WANG]) and "需结合用户调研数据" in plain(
        requests[WANG])
    # the flow goes on as usual: the owner confirms, the initiator hears
    convo.reply(WANG, requests[WANG], "确认")
    convo.process()
    assert "王喆 已确认 T-1" in str(only(convo, LI)["Subject"])


def test_template_2_with_several_rows_is_several_tasks_in_one_receipt(convo):
    send(convo, "t2/guide_print_word_cells_outlook.eml", WU)
    receipt = only(convo, WU)
    assert "已登记 2 项任务" in str(receipt["Subject"])
    assert "MD-0001、MD-0002" in plain(receipt) and "MD-0002" in html_of(receipt)
    assert "[MD-0001]" in str(only(convo, SUN)["Subject"])
    assert "[MD-0002]" in str(only(convo, ZHOU)["Subject"])
    store = convo.service.store
    first, second = store.get_item("MD-0001"), store.get_item("MD-0002")
    assert (first["kind"], first["title"], first["tasks"][0]["progress"]) == (
        "task", "月度客户满意度报告", 75)
    assert (second["title"], second["tasks"][0]["priority"]) == ("办公设备采购申请", "medium")
    # the counter took both ids: the next email is MD-0003
    send(convo, "t2/label_lines_one_left_thunderbird.eml", WU)
    assert "[MD-0003]" in str(only(convo, WU)["Subject"])
    # the same email delivered again makes nothing new
    send(convo, "t2/guide_print_word_cells_outlook.eml", WU)
    assert convo.inbox(WU) == [] and store.get_item("MD-0004") is None


def test_template_3_as_an_html_table_speaks_of_its_eta(convo):
    send(convo, "t3/outlook_html_two_row.eml", CHEN)
    receipt = only(convo, CHEN)
    text = plain(receipt)
    assert "已登记紧急事务「订单系统故障」" in text
    assert "预计完成时间：7月27日 周一 11:15" in text and "截止" not in text  # 2小时内, read at 9:15
    request = only(convo, WANG)
    assert "订单系统故障" in str(request["Subject"]) and "预计完成时间" in plain(request)


def test_the_step_3_kickoff_is_confirmed_with_one_word(convo):
    send(convo, "kickoff/guide_example_foxmail.eml", LI)
    ask = only(convo, LI)
    subject = str(ask["Subject"])
    assert subject.startswith("请确认：Q3新品推广项目启动会 [D-")
    text = plain(ask)
    assert "1. 输出核心卖点 —— 负责人：王喆（产品部）" in text and "（由“产品部总监”找到）" in text
    assert "2. 提交渠道需求 —— 负责人：赵磊（销售部）" in text and "客服部*专员" in text
    assert convo.inbox(WANG) == [] and convo.service.store.get_item("MD-0001") is None

    convo.reply(LI, ask, "确认")
    convo.process()
    receipt = only(convo, LI)
    assert "[MD-0001] 已登记：Q3新品推广项目启动会" == str(receipt["Subject"])
    assert "输出核心卖点" in plain(only(convo, WANG))
    assert "提交渠道需求" in plain(only(convo, ZHAO))
    assert convo.inbox(CHEN) == []  # a participant without a clause is no owner

    convo.reply(LI, ask, "好的")  # a second confirmation registers nothing twice
    convo.process()
    answer = only(convo, LI)
    assert "已经确认并登记过了（MD-0001）" in plain(answer)
    assert convo.service.store.get_item("MD-0002") is None and convo.inbox(WANG) == []


def test_a_corrected_form_sent_as_a_reply_supersedes_the_rejected_one(convo):
    convo.say(WU, "[任务] 月度客户满意度报告",
              "任务名称：月度客户满意度报告\n负责人：张伟\n截止日期：下下下周\n优先级：□高 ☑中 □低\n")
    convo.process()
    please_fix = only(convo, WU)
    assert str(please_fix["Subject"]).startswith("请修改后重发：[任务] 月度客户满意度报告 [D-")
    text = plain(please_fix)
    assert "负责人“张伟”不在通讯录中" in text and "“下下下周”无法识别" in text
    assert "优先级：中" in text  # what was read is said
    assert re.search(r"负责人：张伟\n", text)  # the text back in the form, to correct

    # The reply quotes maild's email, whose re-filled form still says 张伟 and 下下下周.
    convo.reply(WU, please_fix, "负责人：孙悦\n截止日期：8月14日")
    convo.process()
    receipt = only(convo, WU)
    assert "[MD-0001] 已登记：月度客户满意度报告" == str(receipt["Subject"])
    item = convo.service.store.get_item("MD-0001")
    assert [(t["owner"], t["deadline"][:10], t.get("priority")) for t in item["tasks"]] == [
        (SUN, "2026-08-14", "medium")]
    assert "月度客户满意度报告" in plain(only(convo, SUN))
    draft_id = re.search(r"\[(D-[A-Z2-7]{8})\]", str(please_fix["Subject"]))[1]
    assert convo.service.store.meta_get("draft:" + draft_id)["state"] == "used"
