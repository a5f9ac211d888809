"""intake, taskplan and drafts: a read form becomes items, one helpful reply, or a reading that
waits for its initiator's word — pure functions of (email, form, draft, now)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conversation import TZ

from maild.core import answers, drafts, intake, outcomes
from maild.core.classify import DraftReply, NewItem
from maild.core.forms import read_form
from maild.core.model import Inbound, Notice
from maild.mail.render import Renderer

NOW = datetime(2026, 7, 27, 9, 0, tzinfo=TZ)  # a Monday
LI, WU, WANG, ZHAO, CHEN = ("li.na@corp.example", "wu.fang@corp.example",
                            "wang.zhe@corp.example", "zhao.lei@corp.example",
                            "chen.jing@corp.example")
SUN, ZHOU = "sun.yue@corp.example", "zhou.min@corp.example"
HOLIDAY = date(2026, 8, 14)  # a made-up holiday on a Friday, to see the calendar used

GUIDE_T2 = ("任务名称\t发起人\t负责人\t优先级(□高□中□低)\t截止日期\t当前进度(□0%□25%□50%□75%□100%)\t"
            "完成情况简述\t反馈时间\n"
            "月度客户满意度报告\t运营部*专员\t数据部*分析师\t□高\t7月30日\t□75%\t数据收集已完成,待分析\t7月28日\n"
            "办公设备采购申请\t行政部*主管\t财务部*经理\t□中\t8月5日\t□50%\t预算审批中\t8月3日\n"
            "7月考勤汇总\t行政部*主管\t孙悦\t□低\t7月31日\t☑100%\t已提交\t7月27日\n")
KICKOFF = ("事项：Q3新品推广项目启动会\n发起人：市场部*经理\n参与人：产品部总监、销售部主管、客服部*专员\n"
           "背景：新品计划8月上市\n需配合：产品部8月10日前输出核心卖点；销售部8月14日前提交渠道需求\n")


@pytest.fixture
def ctx(rules):
    return outcomes.WorkflowContext(
        inbox_address="collab@corp.example", secret=b"intake-test", people=rules.people,
        form_rules=rules.form_rules, workdays=lambda d: d.weekday() < 5 and d != HOLIDAY)


@pytest.fixture(scope="module")
def renderer():
    return Renderer(Path(__file__).parents[2] / "templates", timezone="Asia/Shanghai",
                    inbox_address="collab@corp.example", from_name="maild")


def email(sender: str, subject: str, text: str, message_id: str = "", **extra) -> Inbound:
    return Inbound(message_id=message_id or f"m{abs(hash((sender, subject, text)))}@corp.example",
                   subject=subject, from_addr=sender, from_name="", text=text, **extra)


def start(rules, ctx, msg: Inbound, first: str = "MD-0007", when: datetime = NOW):
    form = read_form(msg.subject, msg.text, rules.form_rules)
    return intake.start_item(msg, NewItem(form, "zh"), first, ctx, when)


# Words that are maild's internal keys: never in a Chinese email.
INTERNAL = re.compile(r"buffer:|\b(?:project|task|emergency|owner_\w+|date_\w+|missing|"
                      r"awaiting_confirmation|in_progress|not_started|department\+title|"
                      r"system_outage|customer_complaint|unknown_kind|task_malformed)\b")


def rendered_zh(renderer, outcome) -> list[str]:
    """Every notice of an outcome as sent in Chinese: text, and the HTML's visible text."""
    shown = []
    for n, notice in enumerate(outcome.notices):
        out = renderer.render(Notice(**{**notice.__dict__, "language": "zh"}),
                              message_id=f"r{n}@corp.example", date=NOW, reply_address=None)
        visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(style|head)[^>]*>.*?</\1>", "", out.html,
                                                  flags=re.S))
        shown.append(out.subject + "\n" + out.text + "\n" + visible)
    return shown


def test_a_daily_task_table_is_several_items_and_one_receipt(rules, ctx, renderer):
    outcome = start(rules, ctx, email(WU, "日常任务同步跟进表", GUIDE_T2))
    assert [i["id"] for i in outcome.items] == ["MD-0007", "MD-0008", "MD-0009"]
    assert all(i["kind"] == "task" and len(i["tasks"]) == 1 for i in outcome.items)
    assert [(i["title"], i["tasks"][0]["owner"], i["tasks"][0]["state"], i["tasks"][0]["progress"],
             i["tasks"][0].get("priority")) for i in outcome.items] == [
        ("月度客户满意度报告", SUN, "in_progress", 75, "high"),
        ("办公设备采购申请", ZHOU, "in_progress", 50, "medium"),
        ("7月考勤汇总", SUN, "done", 100, "low")]
    assert [i["fields"]["initiator"] for i in outcome.items] == ["运营部*专员", "行政部*主管",
                                                                "行政部*主管"]
    receipts = [n for n in outcome.notices if n.template == "receipt"]
    assert len(receipts) == 1 and [i["id"] for i in receipts[0].context["items"]] == [
        "MD-0007", "MD-0008", "MD-0009"]
    # reported done on the form: nothing to confirm
    assert sorted((n.to[0], n.item_id) for n in outcome.notices
                  if n.template == "confirm_request") == [(SUN, "MD-0007"), (ZHOU, "MD-0008")]
    assert outcome.links[0][1] == "MD-0007"
    receipt = rendered_zh(renderer, outcome)[0]
    assert "已登记 3 项日常任务" in receipt and "MD-0009" in receipt
    assert "数据部*分析师”→ 孙悦" in receipt


@pytest.mark.parametrize("plus", [True, False], ids=["plus", "subject-tags"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_each_item_of_a_receipt_that_lists_several_has_its_own_buttons(rules, ctx, renderer,
                                                                      lang, plus):
    """撤销 and 转派 for each item, signed for the sender, that item and that action: whoever is
    named by a forged From withdraws every item from this one email."""
    from urllib.parse import parse_qs, unquote, urlsplit

    from maild.app.wiring import notice_addresses
    from maild.core import tokens
    outcome = start(rules, ctx, email(WU, "日常任务同步跟进表", GUIDE_T2))
    (notice,) = [Notice(**{**n.__dict__, "language": lang}) for n in outcome.notices
                 if n.template == "receipt"]
    message_id = "maild.receipt@corp.example"
    reply, actions, per_item = notice_addresses(b"intake-test", "collab@corp.example", notice,
                                                WU, NOW.date(), message_id)
    assert reply is None and actions == {}  # several items: no address for them all
    drawn = renderer if plus else Renderer(
        Path(__file__).parents[2] / "templates", timezone="Asia/Shanghai",
        inbox_address="collab@corp.example", from_name="maild", subject_tokens=True)
    out = drawn.render(notice, message_id=message_id, date=NOW, reply_address=reply,
                       action_addresses=actions, task_addresses=per_item)
    found = []
    for href, label in re.findall(r'<a href="(mailto:[^"]+)"[^>]*>([^<]+)</a>', out.html):
        url = urlsplit(href.replace("&amp;", "&"))
        query = parse_qs(url.query)
        token = tokens.find(b"intake-test", [unquote(url.path),
                                             *tokens.subject_addresses(query["subject"][0])], WU)
        assert token is not None and token.task_id is None
        found.append((label, token.item_id, token.action, query["body"][0]))
    withdraw, reassign = ("撤销", "转派") if lang == "zh" else ("Withdraw", "Reassign")
    body = "转派 T-1 给 " if lang == "zh" else "reassign T-1 to "
    assert found == [(label, item_id, action, text)
                     for item_id in ("MD-0007", "MD-0008", "MD-0009")
                     for label, action, text in ((withdraw, "withdraw", "撤销" if lang == "zh"
                                                  else "withdraw"), (reassign, "reassign", body))]
    # the text part: under each item, where to write to withdraw or reassign it
    for item_id in ("MD-0007", "MD-0008", "MD-0009"):
        address = per_item[item_id]["reply"]
        shown = address if plus else tokens.subject_tag_for(address)
        assert shown and out.text.index(f"· {item_id} ") < out.text.index(shown)
    assert ("collab+" in out.html) == plus and ("collab+" in out.text) == plus


def test_template_1_without_a_goal_is_registered_with_suggestions_and_notes(rules, ctx,
                                                                            renderer):
    body = ("项目名称：Q3新品推广项目\n参与人/部门：产品部、销售部、客服部\n"
            "沟通事项\t时间节点\t负责人\t完成状态\n新品核心卖点提炼\t8月10日前\t产品部*经理\t□未开始\n"
            "渠道推广方案\t8月14日前\t销售部*主管\t□未开始\n客诉应对流程培训\t8月15日前\t客服部\t□未开始\n"
            "备用场地确认\t7月27日\t王喆\t□未开始\n")
    outcome = start(rules, ctx, email(LI, "[项目] Q3新品推广项目", body))
    assert len(outcome.items) == 1 and [n.template for n in outcome.notices].count(
        "confirm_request") == 4
    receipt = outcome.notices[0].context
    assert receipt["suggestions"] == ["goal", "deliverable"]
    assert [(n["task"], n["kind"]) for n in receipt["notes"]] == [
        ("T-1", "owner"), ("T-2", "owner"), ("T-2", "workday"), ("T-3", "owner"),
        ("T-3", "workday"), ("T-4", "buffer")]
    # 8月14日 is a holiday on this calendar: the day before; 8月15日 a Saturday: the 13th too
    assert [n["before"][:10] for n in receipt["notes"] if n["kind"] == "workday"] == [
        "2026-08-13", "2026-08-13"]
    text = rendered_zh(renderer, outcome)[0]
    assert "产品部*经理”→ 王喆" in text and "客服部”→ 陈静" in text
    assert "建议在前一个工作日（8月13日" in text and "补充「目标/背景」" in text


def test_an_emergency_speaks_of_its_eta(rules, ctx, renderer):
    body = ("紧急事务类型：☑系统故障\n事务描述（含影响范围）：支付接口超时\n响应人：产品部*经理\n"
            "处理方案：切换备用通道\n预计完成时间：今天18点\n")
    outcome = start(rules, ctx, email(CHEN, "紧急：支付系统故障", body))
    item = outcome.items[0]
    assert item["kind"] == "emergency" and item["title"] == "支付系统故障"
    receipt, request = rendered_zh(renderer, outcome)
    assert "预计完成时间" in receipt and "截止" not in receipt and "处理方案" in receipt
    assert "系统故障" in receipt and "预计完成时间" in request


def test_problems_get_one_reply_that_says_what_was_read_and_what_to_fix(rules, ctx, renderer):
    body = "任务名称：季度预算汇总\n负责人：经理\n截止日期：下下下周\n优先级：☑高\n会议室: 3楼\n"
    outcome = start(rules, ctx, email(WU, "[任务] 季度预算汇总", body))
    assert outcome.items == () and [n.template for n in outcome.notices] == ["validation_error"]
    context = outcome.notices[0].context
    assert [(e["field"], e["code"]) for e in context["errors"]] == [
        ("owner", "owner_many"), ("deadline", "date_unparseable")]
    assert len(context["errors"][0]["options"]) == 3  # 李娜, 王喆, 周敏: all 经理
    assert context["recognised"]["form"] == "日常任务同步跟进表"
    [text] = rendered_zh(renderer, outcome)
    for shown in ("已经读到的内容", "优先级：高", "可能是：", "周敏（财务部 经理）<zhou.min@corp.example>",
                  "任务名称：季度预算汇总", "[D-"):
        assert shown in text
    assert not INTERNAL.search(text), INTERNAL.search(text)
    assert outcome.drafts and outcome.drafts[0]["state"] == "rejected"


def test_an_unreadable_email_is_answered_with_what_was_read_never_a_bare_template(
        rules, ctx, renderer):
    chat = email(LI, "周五开会吗", "王喆你好，周五下午开个会？\n\n会议室: 3楼\n")
    outcome = answers.unrecognized_reply(chat, "zh", "no form", ctx,
                                        read_form(chat.subject, chat.text, rules.form_rules))
    assert outcome.disposition == "quarantine"
    [text] = rendered_zh(renderer, outcome)
    assert "你的邮件「周五开会吗」没有被登记" in text and "会议室: 3楼" in text
    assert "跨部门项目协作沟通记录表" in text and "沟通事项 | 时间节点 | 负责人" in text
    assert not INTERNAL.search(text), INTERNAL.search(text)
    fields_only = email(LI, "下周安排", "发起人：李娜\n备注：下周二开会\n")
    outcome = answers.unrecognized_reply(fields_only, "zh", "no form", ctx,
                                        read_form(fields_only.subject, fields_only.text,
                                                  rules.form_rules))
    assert [n.template for n in outcome.notices] == ["validation_error"]
    [text] = rendered_zh(renderer, outcome)
    assert "看不出这是哪一种表单" in text and "备注：下周二开会" in text
    assert not INTERNAL.search(text), INTERNAL.search(text)


def test_every_intake_email_in_chinese_is_free_of_internal_keys(rules, ctx, renderer):
    for subject, body in (("日常任务同步跟进表", GUIDE_T2), ("Q3新品推广项目启动会", KICKOFF),
                          ("[紧急] 故障", "响应人：王喆\n预计完成时间：今天18点\n")):
        for text in rendered_zh(renderer, start(rules, ctx, email(LI, subject, body))):
            assert not INTERNAL.search(text), (subject, INTERNAL.search(text))
    help_text = rendered_zh(renderer, answers.help_reply(email(LI, "模板", ""), "zh", ctx))[0]
    assert not INTERNAL.search(help_text), INTERNAL.search(help_text)
    assert "任务名称 | 发起人 | 负责人 | 优先级（□高□中□低）" in help_text


# --------------------------------------------------------------------------------------------
# Drafts: a kickoff to confirm, a form to correct


def reply(sender: str, text: str, message_id: str, subject: str = "Re: 请确认") -> Inbound:
    return email(sender, subject, text, message_id=message_id)


def answer(rules, ctx, draft, msg: Inbound, first: str = "MD-0010", when: datetime = NOW):
    decision = DraftReply(draft["id"], msg.text, read_form(msg.subject, msg.text,
                                                           rules.form_rules), "zh")
    return intake.answer_draft(msg, decision, draft, first, ctx, when)


def test_the_guide_kickoff_is_confirmed_with_one_word(rules, ctx, renderer):
    kickoff = email(LI, "Q3新品推广项目启动会", KICKOFF, message_id="kick@corp.example")
    asked = start(rules, ctx, kickoff)
    assert asked.items == () and [n.template for n in asked.notices] == ["draft_confirm"]
    [draft] = asked.drafts
    assert draft["id"] == drafts.draft_id("kick@corp.example") and draft["state"] == "pending"
    assert (kickoff.message_id, draft["id"], None) in asked.links
    assert asked.notices[0].context["draft_id"] == draft["id"]  # the service links its reply
    text = rendered_zh(renderer, asked)[0]
    assert f"[{draft['id']}]" in text.split("\n")[0] and "（由“产品部总监”找到）" in text
    assert "负责人：赵磊（销售部）" in text and "客服部*专员" in text

    done = answer(rules, ctx, draft, reply(LI, "确认\n\n李娜", "yes@corp.example"))
    [item] = done.items
    assert item["id"] == "MD-0010" and item["root_message_id"] == "kick@corp.example"
    assert [(t["name"], t["owner"], t["deadline"][:10]) for t in item["tasks"]] == [
        ("输出核心卖点", WANG, "2026-08-10"), ("提交渠道需求", ZHAO, "2026-08-14")]
    assert item["participants"] == ["产品部总监", "销售部主管", "客服部*专员"]
    assert done.drafts[0]["state"] == "used" and done.drafts[0]["items"] == ["MD-0010"]
    assert sorted(n.template for n in done.notices) == ["confirm_request", "confirm_request",
                                                        "receipt"]
    # a second confirmation (or the first one replayed after intake forgot it) makes nothing
    again = answer(rules, ctx, done.drafts[0], reply(LI, "好的", "again@corp.example"))
    assert again.items == () and [n.template for n in again.notices] == ["draft_answer"]
    assert again.notices[0].context["situation"] == "used"
    assert "MD-0010" in rendered_zh(renderer, again)[0]


@pytest.mark.parametrize(("sender", "text", "when", "situation"), [
    (WANG, "确认", NOW, "not_yours"),
    (LI, "确认", NOW + timedelta(days=8), "expired"),
    (LI, "这个再想想", NOW, "not_understood"),
], ids=["not-the-initiator", "too-late", "neither-yes-nor-a-correction"])
def test_a_pending_kickoff_is_not_confirmed_by(rules, ctx, sender, text, when, situation):
    draft = start(rules, ctx, email(LI, "Q3新品推广项目启动会", KICKOFF)).drafts[0]
    outcome = answer(rules, ctx, draft, reply(sender, text, "x@corp.example"), when=when)
    assert outcome.items == () and outcome.notices[0].context["situation"] == situation
    if situation == "expired":
        assert outcome.drafts[0]["state"] == "expired"


def test_a_corrected_form_sent_as_a_reply_supersedes_the_rejected_one(rules, ctx):
    rejected = start(rules, ctx, email(WU, "[任务] 月度报告", "任务名称：月度客户满意度报告\n负责人：张伟\n"
                                                        "截止日期：下下下周\n优先级：高\n"))
    draft = rejected.drafts[0]
    quoted = ("\n\n------------------ 原始邮件 ------------------\n发件人: maild\n"
              "任务名称：别的任务\n负责人：赵磊\n截止日期：8月3日\n")
    fixed = reply(WU, "负责人：孙悦\n截止日期：8月14日" + quoted, "fix@corp.example",
                  subject=f"Re: 请修改后重发：[任务] 月度报告 [{draft['id']}]")
    decision = DraftReply(draft["id"], "负责人：孙悦\n截止日期：8月14日", read_form(
        fixed.subject, "负责人：孙悦\n截止日期：8月14日", rules.form_rules), "zh")
    outcome = intake.answer_draft(fixed, decision, draft, "MD-0011", ctx, NOW)
    [item] = outcome.items
    assert item["title"] == "月度客户满意度报告"  # from the rejected form: the reply kept it
    assert [(t["owner"], t["deadline"][:10], t.get("priority")) for t in item["tasks"]] == [
        (SUN, "2026-08-14", "high")]
    assert outcome.drafts[0]["state"] == "used" and outcome.drafts[0]["items"] == ["MD-0011"]


def test_owner_questions_are_answered_with_just_the_names(rules, ctx):
    body = ("项目名称：渠道拓展\n任务分配：\n沟通事项 | 时间节点 | 负责人\n渠道调研 | 8月10日前 | 经理\n"
            "竞品分析 | 8月12日前 | 王喆\n客户访谈 | 8月13日前 | 张伟\n")
    draft = start(rules, ctx, email(LI, "[项目] 渠道拓展", body)).drafts[0]
    assert [(e["task"], e["code"]) for e in draft["errors"]] == [(1, "owner_many"),
                                                                 (3, "owner_unknown")]
    outcome = answer(rules, ctx, draft, reply(LI, "周敏\n陈静", "names@corp.example"))
    [item] = outcome.items
    assert [t["owner"] for t in item["tasks"]] == [ZHOU, WANG, CHEN]
    still_wrong = answer(rules, ctx, draft, reply(LI, "周敏\n张伟", "again@corp.example"))
    assert still_wrong.items == () and [n.template for n in still_wrong.notices] == [
        "validation_error"]
    assert still_wrong.drafts[0]["id"] == draft["id"]  # the same draft, asked again
