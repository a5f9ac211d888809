"""compound.py and delays in workflow.py: a reply that says several things, each applied on its
own (who may, its token, its audit entry), one acknowledgement and one notice to the initiator.
Pure functions of (item, email, now); every notice is rendered in both languages."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conversation import TZ

from maild.core import intake, outcomes, replies, tokens
from maild.core.classify import NewItem, Reply
from maild.core.commands import read_commands
from maild.core.forms import read_form
from maild.core.model import Inbound, Notice
from maild.core.workcal import WorkCalendar
from maild.mail.mime import to_mime
from maild.mail.render import Renderer

NOW = datetime(2026, 8, 3, 9, 0, tzinfo=TZ)
LATER = NOW + timedelta(hours=1)
SECRET = b"compound-test"
INITIATOR, WANG, ZHAO = "li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example"
PROJECT = """项目名称：Q3新品推广项目
目标/背景：新品3个月内用户增长50%
任务：
新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
渠道推广方案 | 赵磊 | 8月14日前 | 包含预算、渠道选择、投放节奏
"""


@pytest.fixture
def ctx(rules):
    return outcomes.WorkflowContext(inbox_address="collab@corp.example", secret=SECRET,
                                    people=rules.people, form_rules=rules.form_rules,
                                    workdays=WorkCalendar(tz=TZ).is_workday)


@pytest.fixture
def item(ctx, rules):
    msg = Inbound(message_id="kickoff@corp.example", subject="[项目] Q3新品推广项目",
                  from_addr=INITIATOR, from_name="李娜", text=PROJECT)
    outcome = intake.start_item(msg, NewItem(read_form(msg.subject, PROJECT, rules.form_rules),
                                             "zh"), "MD-0001", ctx, NOW)
    return outcome.items[0]


@pytest.fixture(scope="module")
def rendered():
    built = Renderer(Path(__file__).parents[2] / "templates", timezone="Asia/Shanghai",
                     inbox_address="collab@corp.example", from_name="maild")

    def render(outcome):
        """Every notice renders in both languages; the text parts, by (template, recipient)."""
        texts = {}
        for n, notice in enumerate(outcome.notices):
            for language in ("zh", "en"):
                out = built.render(Notice(**{**notice.__dict__, "language": language}),
                                   message_id=f"c{n}@corp.example", date=NOW,
                                   reply_address="collab+x@corp.example")
                to_mime(out, from_address="collab@corp.example", from_name="maild")
                texts[(notice.template, notice.to[0], language)] = out.subject + "\n" + out.text
        return texts
    return render


def reply(item, ctx, sender, text, task_id="T-1", token=None, when=LATER):
    said = read_commands(text)
    msg = Inbound(message_id=f"r{abs(hash((sender, text, when)))}@corp.example",
                  subject="Re: [MD-0001]", from_addr=sender, from_name="", text=text)
    decision = Reply("MD-0001", task_id, said.commands, text, "zh", "token", token, said.unread)
    return replies.handle_reply(msg, decision, item, ctx, when)


def token_for(sender, action="reply", task_id="T-1"):
    token = tokens.ReplyToken("MD-0001", task_id, sender, NOW.date(), action, "abcd")
    address = tokens.reply_address("collab@corp.example", tokens.issue(SECRET, token))
    return tokens.read(SECRET, [address], sender)


def templates_to(outcome):
    return [(n.template, n.to[0]) for n in outcome.notices]


def test_confirm_and_delay_are_both_recorded_and_the_initiator_told_of_both(item, ctx, rendered):
    outcome = reply(item, ctx, WANG, "没问题，不过得延后三天左右。")
    task = outcome.items[0]["tasks"][0]
    assert task["confirmed_by"] == WANG and task["state"] == "delayed"
    # Three working days after the current deadline (Mon Aug 10), not after today.
    assert task["requested_deadline"] == "2026-08-13T18:00:00+08:00"
    assert [(e["action"], e["message_id"]) for e in outcome.items[0]["audit"][-2:]] == [
        ("confirm", outcome.links[0][0]), ("delay", outcome.links[0][0])]
    assert templates_to(outcome) == [("command_ack", WANG), ("delay_request", INITIATOR)]
    notice = outcome.notices[1]
    assert [c["name"] for c in notice.context["also"]] == ["confirm"]
    assert notice.context["extension"] == {"days": 3}
    assert [p["result"] for p in outcome.notices[0].context["parts"]] == ["applied", "applied"]
    texts = rendered(outcome)
    told = texts[("delay_request", INITIATOR, "zh")]
    assert "确认" in told.splitlines()[0] and "8月13日" in told and "王喆 在同一封回复里确认了这项任务" in told
    assert "原截止后 3 个工作日" in told
    told_en = texts[("delay_request", INITIATOR, "en")]
    assert "also confirmed the task" in told_en and "Thu Aug 13" in told_en
    ack = texts[("command_ack", WANG, "zh")]
    assert "你确认了任务 T-1" in ack and "申请延期至 8月13日" in ack


def test_the_initiator_accepts_and_the_deadline_moves(item, ctx):
    asked = reply(item, ctx, WANG, "没问题，不过得延后三天左右。").items[0]
    accepted = reply(asked, ctx, INITIATOR, "同意延期，按新日期推进。", when=LATER + timedelta(hours=1))
    task = accepted.items[0]["tasks"][0]
    assert task["deadline"] == "2026-08-13T18:00:00+08:00" and "requested_deadline" not in task
    assert task["state"] == "not_started"  # confirmed, no progress yet
    assert accepted.items[0]["audit"][-1]["action"] == "deadline"


def test_each_command_uses_the_reply_token_once(item, ctx):
    first = reply(item, ctx, WANG, "没问题，不过得延后三天左右。", token=token_for(WANG))
    used = first.items[0]["used_tokens"]
    assert len(used) == 2 and {key.split("|")[1] for key in used} == {"confirm", "delay"}
    again = reply(first.items[0], ctx, WANG, "没问题，不过得延后三天左右。", token=token_for(WANG))
    assert again.items == () and templates_to(again) == [("refused", WANG)]
    assert again.notices[0].context["token_problem"] == "used"


def test_a_button_carries_only_its_own_part(item, ctx, rendered):
    """The 确认 button's address, with a delay written in the body: the confirmation stands, the
    delay is refused for that address and the sender is told how to ask for it."""
    outcome = reply(item, ctx, WANG, "没问题，不过得延后三天左右。", token=token_for(WANG, "confirm"))
    task = outcome.items[0]["tasks"][0]
    assert task["state"] == "not_started" and "requested_deadline" not in task
    parts = outcome.notices[0].context["parts"]
    assert [(p["result"], p.get("token_problem", "")) for p in parts] == [
        ("applied", ""), ("refused", "wrong_action")]
    assert templates_to(outcome) == [("command_ack", WANG), ("confirmed", INITIATOR)]
    assert "「申请延期」没有执行" in rendered(outcome)[("command_ack", WANG, "zh")]


def test_a_part_missing_a_detail_is_asked_about_while_the_rest_stands(item, ctx, rendered):
    outcome = reply(item, ctx, WANG, "进度50%。另外素材制作延迟，因设计部人手不足。")
    task = outcome.items[0]["tasks"][0]
    assert task["progress"] == 50 and "blockers" not in task
    parts = outcome.notices[0].context["parts"]
    assert [(p["result"], p.get("missing")) for p in parts] == [
        ("applied", None), ("asked", ["support"])]
    assert templates_to(outcome) == [("command_ack", WANG)]
    assert "还缺：需支持资源" in rendered(outcome)[("command_ack", WANG, "zh")]


def test_a_part_the_sender_may_not_do_is_refused_while_the_rest_stands(item, ctx, rendered):
    asked = reply(item, ctx, ZHAO, "延期两天，财务部的预算上限周三才能给到。", task_id="T-2").items[0]
    assert asked["tasks"][1]["requested_deadline"] == "2026-08-18T18:00:00+08:00"
    outcome = reply(asked, ctx, INITIATOR, "同意。进度 50%", task_id="T-2")
    task = outcome.items[0]["tasks"][1]
    assert task["deadline"] == "2026-08-18T18:00:00+08:00" and task["progress"] == 0
    ack = next(n for n in outcome.notices if n.to == (INITIATOR,))
    assert [p["result"] for p in ack.context["parts"]] == ["applied", "refused"]
    assert ("command_ack", ZHAO) in templates_to(outcome)  # the owner hears of the new date
    texts = rendered(outcome)
    assert "「更新进度」没有执行：只有 赵磊 <zhao.lei@corp.example> 可以这样做" in texts[
        ("command_ack", INITIATOR, "zh")]


def test_a_question_beside_a_command_is_asked_about_and_passed_on(item, ctx, rendered):
    outcome = reply(item, ctx, WANG, "确认。另外想问下，交付标准里的用户场景图需要几张？")
    assert outcome.items[0]["tasks"][0]["confirmed_by"] == WANG
    assert outcome.items[0]["audit"][-1]["action"] == "unread"
    ack, told = outcome.notices
    assert ack.context["unread"] == ["另外想问下，交付标准里的用户场景图需要几张？"]
    assert ack.context["unread_forwarded"] and told.template == "confirmed"
    texts = rendered(outcome)
    assert "没读懂的部分" in texts[("command_ack", WANG, "zh")]
    assert "场景图需要几张" in texts[("confirmed", INITIATOR, "zh")]
    assert "not understood" in texts[("confirmed", INITIATOR, "en")]


def test_a_question_with_no_notice_to_the_initiator_is_not_said_to_be_passed_on(item, ctx):
    confirmed = reply(item, ctx, WANG, "确认").items[0]
    outcome = reply(confirmed, ctx, WANG, "进度60%。另外请问预算上限什么时候能定？")
    assert templates_to(outcome) == [("command_ack", WANG)]
    assert outcome.notices[0].context["unread_forwarded"] is False


def test_a_delay_by_duration_alone_counts_from_the_current_deadline(item, ctx, rendered):
    outcome = reply(item, ctx, ZHAO, "渠道方案需要延期两天，财务部的预算上限周三才能给到。", task_id="T-2")
    task = outcome.items[0]["tasks"][1]
    assert task["requested_deadline"] == "2026-08-18T18:00:00+08:00"  # Fri Aug 14 + 2 working days
    assert task["delay_reason"] == "财务部的预算上限周三才能给到。"
    assert templates_to(outcome) == [("delay_request", INITIATOR), ("command_ack", ZHAO)]
    assert "8月18日" in rendered(outcome)[("command_ack", ZHAO, "zh")]


def test_a_natural_blocker_reaches_the_initiator_at_once(item, ctx):
    outcome = reply(item, ctx, WANG, "推广素材制作延迟，因设计部人手不足，需市场部协调1名设计师临时支援。")
    blocker = outcome.items[0]["tasks"][0]["blockers"][0]
    assert (blocker["situation"], blocker["cause"], blocker["support"]) == (
        "推广素材制作延迟", "设计部人手不足", "市场部协调1名设计师临时支援")
    assert ("blocker_alert", INITIATOR) in templates_to(outcome)


def test_a_manager_may_give_more_days_too(item, ctx):
    outcome = reply(item, ctx, INITIATOR, "延期两天", task_id="T-2")
    assert outcome.items[0]["tasks"][1]["deadline"] == "2026-08-18T18:00:00+08:00"


def test_strict_tokens_apply_to_every_part(item, ctx):
    strict = dataclasses.replace(ctx, require_token=True)
    outcome = reply(item, strict, WANG, "没问题，不过得延后三天左右。")
    assert outcome.items == () and templates_to(outcome) == [("refused", WANG)]
    assert outcome.notices[0].context["token_problem"] == "missing"


def test_someone_outside_the_item_is_refused_once_and_shown_nothing(item, ctx):
    outcome = reply(item, ctx, "alex.morgan@corp.example", "好的，进度50%。另外请问预算什么时候定？")
    assert outcome.items == () and templates_to(outcome) == [("refused", "alex.morgan@corp.example")]
    assert "item" not in outcome.notices[0].context
