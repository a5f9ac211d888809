"""workflow.py and intake.py: state transitions and authority, as pure functions of (item, email, now)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from conversation import TZ
from rendering import render_both

from maild.core import intake, outcomes, replies, tokens, workflow
from maild.core.classify import NewItem, Reply
from maild.core.commands import read_commands
from maild.core.forms import read_form
from maild.core.model import Attachment, Inbound

NOW = datetime(2026, 8, 3, 9, 0, tzinfo=TZ)
SECRET = b"workflow-test"
INITIATOR, WANG, ZHAO, CHEN = ("li.na@corp.example", "wang.zhe@corp.example",
                               "zhao.lei@corp.example", "chen.jing@corp.example")
PROJECT = """项目名称：Q3新品推广项目
目标/背景：新品3个月内用户增长50%
任务：
新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏
客诉应对流程培训 | 陈静 | 8月3日 | FAQ文档
"""


@pytest.fixture
def ctx(rules):
    return outcomes.WorkflowContext(inbox_address="collab@corp.example", secret=SECRET,
                                    people=rules.people, form_rules=rules.form_rules,
                                    admins=("alex.morgan@corp.example",))


def email(sender: str, text: str, subject: str = "Re: [MD-0001]", **extra) -> Inbound:
    return Inbound(message_id=f"m{abs(hash((sender, text, subject)))}@corp.example",
                   subject=subject, from_addr=sender, from_name="", text=text, **extra)


@pytest.fixture
def item(ctx, rules):
    msg = email(INITIATOR, PROJECT, "[项目] Q3新品推广项目")
    form = read_form(msg.subject, msg.text, rules.form_rules)
    outcome = intake.start_item(msg, NewItem(form, "zh"), "MD-0001", ctx, NOW)
    assert outcome.disposition == "processed" and len(outcome.items) == 1
    return outcome.items[0]


@pytest.fixture(scope="module")
def renderer():
    """Every notice a transition produces renders in both languages (the context contract)."""
    return lambda outcome: render_both(outcome, NOW)


@pytest.fixture
def reply(renderer):
    def send(item, ctx, sender, text, task_id=None, when=NOW + timedelta(hours=1), **extra):
        msg = email(sender, text, **extra)
        said = read_commands(text)
        decision = Reply("MD-0001", task_id, said.commands, text, "zh", "token", None, said.unread)
        return renderer(replies.handle_reply(msg, decision, item, ctx, when))
    return send


def templates_to(outcome):
    return sorted((n.template, n.to[0]) for n in outcome.notices)


def test_start_item_receipt_requests_tokens_and_buffer_warning(item, ctx, rules):
    msg = email(INITIATOR, PROJECT, "[项目] Q3新品推广项目")
    outcome = intake.start_item(msg, NewItem(read_form(msg.subject, msg.text, rules.form_rules),
                                             "zh"), "MD-0001", ctx, NOW)
    assert templates_to(outcome) == sorted([("receipt", INITIATOR), ("confirm_request", WANG),
                                            ("confirm_request", ZHAO), ("confirm_request", CHEN)])
    receipt = outcome.notices[0]
    # 8月15日 is a Saturday: the working day before is named; T-3 is due today: no buffer left
    assert [(n["task"], n["kind"]) for n in receipt.context["notes"]] == [
        ("T-2", "workday"), ("T-3", "buffer")]
    for notice in outcome.notices[1:]:
        # The reply addresses are signed for exactly this item, task and owner when sent.
        assert notice.item_id == "MD-0001" and notice.task_id in ("T-1", "T-2", "T-3")
        assert notice.in_reply_to == msg.message_id
    assert [t["deadline"][:16] for t in item["tasks"]] == [
        "2026-08-10T18:00", "2026-08-15T18:00", "2026-08-03T18:00"]
    assert item["participants"] == [] and item["audit"][0]["action"] == "created"


@pytest.mark.parametrize("row, code", [
    ("渠道调研 | 王喆、赵磊 | 8月10日 | 报告", "owner_many"),
    ("渠道调研 | 张三 | 8月10日 | 报告", "owner_unknown"),
    ("渠道调研 | 王喆 | 尽快 | 报告", "date_unparseable"),
    ("渠道调研 | 王喆 | 2026-07-01 | 报告", "date_past"),
], ids=["two-owners", "unknown-owner", "vague-date", "past-date"])
def test_invalid_tasks_get_one_validation_reply(ctx, rules, row, code):
    text = f"项目名称：渠道拓展\n目标/背景：两个新渠道\n任务：\n{row}\n"
    msg = email(INITIATOR, text, "[项目] 渠道拓展")
    outcome = intake.start_item(msg, NewItem(read_form(msg.subject, text, rules.form_rules), "zh"),
                                "MD-0002", ctx, NOW)
    assert outcome.items == ()
    assert [n.template for n in outcome.notices] == ["validation_error"]
    assert code in {e["code"] for e in outcome.notices[0].context["errors"]}
    assert "渠道拓展" in outcome.notices[0].context["refilled_form"]


def test_confirm_by_owner_records_who_and_when_and_tells_initiator(item, ctx, reply):
    outcome = reply(item, ctx, WANG, "确认", "T-1")
    task = outcome.items[0]["tasks"][0]
    assert task["state"] == "not_started" and task["confirmed_by"] == WANG
    assert task["confirmed_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert templates_to(outcome) == [("command_ack", WANG), ("confirmed", INITIATOR)]
    again = reply(outcome.items[0], ctx, WANG, "确认", "T-1")
    assert again.items == () and templates_to(again) == [("command_ack", WANG)]


@pytest.mark.parametrize("sender, text, task_id", [
    (ZHAO, "确认", "T-1"), (CHEN, "进度 50%", "T-1"), ("alex.morgan@corp.example", "完成", "T-2"),
    (WANG, "关闭", None), (ZHAO, "转派 T-1 给 陈静", None),
], ids=["other-owner-confirms", "other-owner-progress", "admin-cannot-complete",
        "owner-cannot-close", "owner-cannot-reassign"])
def test_only_those_allowed_may_act(item, ctx, sender, text, task_id, reply):
    outcome = reply(item, ctx, sender, text, task_id)
    assert outcome.items == ()
    assert templates_to(outcome) == [("refused", sender)]


def test_decline_then_reassign_starts_a_new_round(item, ctx, reply):
    declined = reply(item, ctx, ZHAO, "拒绝：本周出差", "T-2")
    assert declined.items[0]["tasks"][1]["state"] == "declined"
    notice = next(n for n in declined.notices if n.template == "declined")
    assert notice.to == (INITIATOR,) and notice.context["reason"] == "本周出差"
    moved = reply(declined.items[0], ctx, INITIATOR, "转派 T-2 给 陈静", "T-2")
    task = moved.items[0]["tasks"][1]
    assert (task["owner"], task["state"], task["round"]) == (CHEN, "awaiting_confirmation", 2)
    assert ("confirm_request", CHEN) in templates_to(moved)
    assert moved.items[0]["audit"][-1]["detail"] == {"previous": ZHAO, "owner": CHEN}


def test_blocker_needs_all_three_parts_and_reaches_initiator_at_once(item, ctx, reply):
    partial = reply(item, ctx, WANG, "问题：素材延迟\n现状：完成30%", "T-1")
    assert partial.items == () and templates_to(partial) == [("question", WANG)]
    assert partial.notices[0].context["missing"] == ["cause", "support"]
    full = reply(item, ctx, WANG, "问题：素材延迟\n现状：完成30%\n原因：设计部人手不足\n需支持资源：协调1名设计师",
                 "T-1")
    task = full.items[0]["tasks"][0]
    assert task["state"] == "blocked" and task["blockers"][0]["support"] == "协调1名设计师"
    assert ("blocker_alert", INITIATOR) in templates_to(full)


def test_delay_is_requested_by_owner_and_accepted_by_initiator(item, ctx, reply):
    asked = reply(item, ctx, ZHAO, "延期至 8月20日，原因：预算未批", "T-2")
    task = asked.items[0]["tasks"][1]
    assert task["state"] == "delayed" and task["requested_deadline"].startswith("2026-08-20")
    assert ("delay_request", INITIATOR) in templates_to(asked)
    accepted = reply(asked.items[0], ctx, INITIATOR, "同意", "T-2")
    task = accepted.items[0]["tasks"][1]
    assert task["deadline"].startswith("2026-08-20") and "requested_deadline" not in task
    assert accepted.items[0]["audit"][-1]["action"] == "deadline"


def test_all_done_asks_for_the_retrospective_once_then_close_records_it(item, ctx, reply):
    current = item
    for task_id, owner in (("T-1", WANG), ("T-2", ZHAO), ("T-3", CHEN)):
        outcome = reply(current, ctx, owner, "完成：见附件", task_id,
                        attachments=(Attachment("卖点说明.docx", "application/msword", 1000),))
        current = outcome.items[0]
    assert ("retrospective_request", INITIATOR) in templates_to(outcome)
    assert current["audit"][-1]["detail"]["attachments"] == ["卖点说明.docx"]
    closed = reply(current, ctx, INITIATOR,
                   "结项\n是否达成目标：是\n可优化点：提前3天同步培训时间", None)
    done = closed.items[0]
    assert done["state"] == "closed"
    assert done["retrospective"] == {"achieved": "是", "shortfall": "",
                                     "improvements": "提前3天同步培训时间"}


def test_bounce_marks_owner_unreachable_and_tells_initiator_once(item, ctx, renderer):
    bounce = email("mailer-daemon@corp.example", "user unknown", "系统退信")
    outcome = renderer(workflow.owners_unreachable(bounce, (ZHAO,), [item], ctx, NOW))
    assert templates_to(outcome) == [("owner_unreachable", INITIATOR)]
    assert outcome.items[0]["tasks"][1]["unreachable"]
    again = workflow.owners_unreachable(bounce, (ZHAO,), list(outcome.items), ctx, NOW)
    assert again.notices == () and again.items == ()


def test_ambiguous_reply_gets_a_question_not_a_guess(item, ctx, reply):
    outcome = reply(item, ctx, WANG, "好的，但我这周做不了", "T-1")
    assert outcome.items == () and templates_to(outcome) == [("not_understood", WANG)]


def _with_token(item, ctx, sender, text, action="reply", nonce="abcd", task_id="T-1",
                address=None, when=NOW + timedelta(hours=1)):
    token = tokens.ReplyToken("MD-0001", task_id, address or sender, NOW.date(), action, nonce)
    reading = tokens.read(SECRET, [tokens.reply_address("collab@corp.example",
                                                        tokens.issue(SECRET, token))], sender)
    decision = Reply("MD-0001", task_id, read_commands(text).commands, text, "zh", "token", reading)
    return replies.handle_reply(email(sender, text), decision,
                                 item, ctx, when)


def _refused_for(outcome):
    assert not outcome.items and [n.template for n in outcome.notices] == ["refused"]
    return outcome.notices[0].context["token_problem"]


def test_action_tokens_carry_their_action_once(item, ctx):
    owner = item["tasks"][0]["owner"]
    assert _refused_for(_with_token(item, ctx, owner, "拒绝: 忙", action="confirm")) == \
        "wrong_action"
    confirmed = _with_token(item, ctx, owner, "确认", action="confirm")
    assert confirmed.items[0]["tasks"][0]["state"] == "not_started"
    assert len(confirmed.items[0]["used_tokens"]) == 1
    again = _with_token(confirmed.items[0], ctx, owner, "确认", action="confirm")
    assert _refused_for(again) == "used"


def test_reply_tokens_carry_each_command_once(item, ctx):
    owner = item["tasks"][0]["owner"]
    first = _with_token(item, ctx, owner, "进度 50%").items[0]
    assert _refused_for(_with_token(first, ctx, owner, "进度 50%")) == "used"
    second = _with_token(first, ctx, owner, "进度 75%").items[0]
    assert second["tasks"][0]["progress"] == 75
    # Questions are never refused for a used token: nothing changes.
    shown = _with_token(second, ctx, owner, "状态")
    assert [n.template for n in shown.notices] == ["command_ack"] and not shown.items


@pytest.mark.parametrize(("require", "holder", "problem"), [
    (False, "wang.zhe@corp.example", ""),
    (True, "wang.zhe@corp.example", ""),
    (True, INITIATOR, "not_yours"),
    (False, "nobody@corp.example", "tampered"),
    (True, "nobody@corp.example", "tampered"),
], ids=["own", "own-required", "initiators-required", "unknown", "unknown-required"])
def test_whose_token_it_is(item, ctx, require, holder, problem):
    import dataclasses
    context = dataclasses.replace(ctx, require_token=require)
    owner = item["tasks"][0]["owner"]
    assert owner == "wang.zhe@corp.example"
    outcome = _with_token(item, context, owner, "确认", address=holder)
    if problem:
        assert _refused_for(outcome) == problem
    else:
        assert outcome.items[0]["tasks"][0]["state"] == "not_started"


def test_required_tokens_and_no_token(item, ctx, reply):
    import dataclasses
    owner = item["tasks"][0]["owner"]
    strict = dataclasses.replace(ctx, require_token=True)
    assert _refused_for(reply(item, strict, owner, "确认", task_id="T-1")) == "missing"
    assert reply(item, ctx, owner, "确认", task_id="T-1").items  # not required: From decides


def test_the_audit_entry_shows_what_the_reply_cut(item, ctx, renderer):
    from maild.mail.reply import read_reply

    body = ("确认，周五前交初稿\n\n发自我的华为手机\n\n"
            "在 2026年8月3日，09:15，协作助手 <collab@corp.example> 写道：\n> 请确认任务。确认 / 拒绝\n")
    replied = read_reply(body)
    msg = email(WANG, body)
    decision = Reply("MD-0001", "T-1", read_commands(replied.text).commands, replied.text, "zh", "token",
                     trimmed=replied.audit_detail())
    outcome = renderer(replies.handle_reply(msg, decision, item, ctx, NOW + timedelta(hours=1)))
    entry = outcome.items[0]["audit"][-1]
    assert (entry["action"], entry["message_id"]) == ("confirm", msg.message_id)
    assert entry["detail"]["trimmed"] == "「发自我的华为手机」 +2"
# ── the trust model: the initiator's commands need proof too (maild/core/trust.py) ─────────────────


def _strict(ctx, **changes):
    import dataclasses
    return dataclasses.replace(ctx, require_token=True, **changes)


def _manager(item, ctx, text, *, action="reply", task_id=None, sender=INITIATOR,
             authenticated="", holder=None):
    """The initiator's reply through a token of an email maild sent her (item-level when
    `task_id` is None), or, with `action=None`, without any token."""
    reading = None
    if action is not None:
        token = tokens.ReplyToken("MD-0001", task_id, holder or sender, NOW.date(), action,
                                  "wxyz")
        reading = tokens.read(SECRET, [tokens.reply_address("collab@corp.example",
                                                            tokens.issue(SECRET, token))], sender)
    decision = Reply("MD-0001", task_id, read_commands(text).commands, text, "zh",
                     "token" if reading else "subject", reading, authenticated=authenticated)
    return replies.handle_reply(email(sender, text), decision, item, ctx,
                                 NOW + timedelta(hours=1))


@pytest.mark.parametrize(("text", "task_id"), [
    (f"转派 T-1 给 {ZHAO}", None),
    ("延期至 8月30日", "T-1"),
    ("结项", None),
    ("撤销", None),
], ids=["reassign", "reschedule", "close", "withdraw"])
def test_initiator_commands_need_her_token_or_an_authenticated_sender(item, ctx, text, task_id):
    strict = _strict(ctx)
    assert _refused_for(_manager(item, strict, text, action=None, task_id=task_id)) == "missing"
    assert _refused_for(_manager(item, strict, text, task_id=task_id, holder=WANG)) == \
        "not_yours"
    assert _manager(item, strict, text, task_id=task_id).items  # her own reply address
    # A sender a trusted stamp authenticated needs no token.
    assert _manager(item, strict, text, action=None, task_id=task_id,
                    authenticated="dmarc").items


def test_initiator_buttons_carry_their_own_action_and_task(item, ctx):
    strict = _strict(ctx)
    delayed = _with_token(item, strict, WANG, "延期至 8月20日，原因：等预算").items[0]
    # 同意延期 (accept) and 改期 (reschedule) are buttons of their own.
    assert _refused_for(_manager(delayed, strict, "同意", action="reschedule",
                                 task_id="T-1")) == "wrong_action"
    accepted = _manager(delayed, strict, "同意", action="accept", task_id="T-1")
    assert accepted.items[0]["tasks"][0]["deadline"].startswith("2026-08-20")
    moved = _manager(accepted.items[0], strict, "改期至 8月25日", action="reschedule",
                     task_id="T-1")
    assert moved.items[0]["tasks"][0]["deadline"].startswith("2026-08-25")
    # A task's button does not reach another task of the item.
    assert _refused_for(_manager(item, strict, f"转派 T-2 给 {CHEN}", action="reassign",
                                 task_id="T-1")) == "wrong_task"
    # The receipt's withdraw button does not close, nor its close button withdraw.
    assert _refused_for(_manager(item, strict, "结项", action="withdraw")) == "wrong_action"


def test_withdraw_ends_the_item_and_tells_every_owner(item, ctx, renderer):
    outcome = renderer(_manager(item, _strict(ctx), "撤销，这个项目不是我发的", action="withdraw"))
    (changed,) = outcome.items
    assert changed["state"] == "closed" and changed["withdrawn"] is True
    assert changed["audit"][-1]["action"] == "withdraw"
    assert templates_to(outcome) == sorted(("command_ack", p) for p in (INITIATOR, WANG, ZHAO, CHEN))
    assert outcome.summary["command"] == "withdraw"  # the service archives it
    # An owner may not withdraw the item.
    refused = _with_token(item, _strict(ctx), WANG, "撤销")
    assert [n.template for n in refused.notices] == ["refused"] and not refused.items


def test_owners_outside_the_allowed_domains_are_refused(ctx, rules):
    import dataclasses
    closed = dataclasses.replace(ctx, allowed_domains=("corp.example",),
                                 external_owners=("partner@ally.example",))
    text = ("项目名称：渠道拓展\n目标/背景：两个新渠道\n任务：\n"
            "调研 | mallory@evil.test | 8月10日 | 报告\n"
            "联络 | Partner@Ally.example | 8月12日 | 名单\n")
    msg = email(INITIATOR, text, "[项目] 渠道拓展")
    outcome = intake.start_item(msg, NewItem(read_form(msg.subject, text, rules.form_rules), "zh"),
                                "MD-0002", closed, NOW)
    assert [n.template for n in outcome.notices] == ["validation_error"]
    errors = outcome.notices[0].context["errors"]
    assert [(e["code"], e["value"]) for e in errors] == [("owner_external", "mallory@evil.test")]


def test_reassigning_outside_is_asked_back(item, ctx):
    import dataclasses
    closed = dataclasses.replace(_strict(ctx), allowed_domains=("corp.example",))
    outcome = _manager(item, closed, "转派 T-1 给 mallory@evil.test")
    assert not outcome.items and [n.template for n in outcome.notices] == ["question"]
    assert outcome.notices[0].context["ask"] == "owner_external"
    assert all(n.to == (INITIATOR,) for n in outcome.notices)
