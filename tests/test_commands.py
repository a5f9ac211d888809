"""commands.py: the command in the new text of a reply, both languages, full-width tolerant."""

from __future__ import annotations

import pytest

from maild.commands import read_command

CASES = [
    ("确认", "confirm", {}),
    ("收到", "confirm", {}),
    ("好的，按时交付", "confirm", {"note": "按时交付"}),
    ("Confirm", "confirm", {}),
    ("OK, will deliver by Friday.", "confirm", {}),
    ("拒绝：本周人手不足，建议转给销售部", "decline", {"reason": "本周人手不足，建议转给销售部"}),
    ("无法承担: 与Q3预算冲突", "decline", {"reason": "与Q3预算冲突"}),
    ("decline: on leave until September", "decline", {"reason": "on leave until September"}),
    ("进度 50%", "progress", {"percent": 50}),
    ("进度：５０％ 素材已完成一半", "progress", {"percent": 50, "note": "素材已完成一半"}),
    ("progress 75%", "progress", {"percent": 75}),
    ("完成", "done", {}),
    ("Done: report attached", "done", {"note": "report attached"}),
    ("状态：进行中", "status", {"state": "in_progress"}),
    ("帮助", "help", {}),
    ("转派 T-2 给 zhao.lei@corp.example", "reassign", {"task": "T-2", "owner": "zhao.lei@corp.example"}),
    ("延期至 8月20日，原因：设计部人手不足", "delay", {"date": "8月20日", "reason": "设计部人手不足"}),
    ("Confirm. I will start today.", "confirm", {"note": "I will start today."}),
    ("ＯＫ，本周五前给初稿", "confirm", {"note": "本周五前给初稿"}),
    ("Decline: on leave\n\nBest,\nZhao Lei", "decline", {"reason": "on leave"}),
    ("拒绝\n原因：本周在外地出差", "decline", {"reason": "本周在外地出差"}),
    ("不接受，原因：与大促冲突", "decline", {"reason": "与大促冲突"}),
    ("Postpone to next Friday because the data is late", "delay",
     {"date": "next Friday", "reason": "the data is late"}),
    ("延期到下周五，因为客户还没反馈", "delay", {"date": "下周五", "reason": "客户还没反馈"}),
    ("已完成，交付物见附件\n\n王喆\n产品部", "done", {"note": "交付物见附件"}),
    ("进度 60%，初稿已完成\n\n--\n王喆", "progress", {"percent": 60, "note": "初稿已完成"}),
    ("状态：未开始", "status", {"state": "not_started"}),
    ("转派给赵磊", "reassign", {"task": None, "owner": "赵磊"}),
    ("状态", "show", {}),
    ("查看状态？", "show", {}),
    ("Status", "show", {}),
    ("what is the status?", "show", {}),
    ("状态：进行中", "status", {"state": "in_progress"}),
]


@pytest.mark.parametrize("text, name, args", CASES, ids=[c[0][:24] for c in CASES])
def test_reads_command(text, name, args):
    command = read_command(text)
    assert command is not None and command.name == name
    for key, value in args.items():
        assert command.args[key] == value


def test_blocker_fields():
    command = read_command("问题：推广素材制作延迟\n现状：完成30%\n原因：设计部人手不足\n需支持资源：协调1名设计师")
    assert command is not None and command.name == "blocker"
    assert command.args == {"situation": "完成30%", "cause": "设计部人手不足",
                            "support": "协调1名设计师"}


@pytest.mark.parametrize("text", ["", "   ", "谢谢", "好的，但我这周做不了", "进度 150%",
                                  "Let me think about it"],
                         ids=["empty", "blank", "thanks", "yes-but-no", "over-100", "vague"])
def test_ambiguous_or_empty_gives_none(text):
    assert read_command(text) is None


@pytest.mark.parametrize("text", ["好的，但我这周做不了", "OK but I can't this week", "我看一下",
                                  "Let me check with my manager first", "进度 150%"],
                         ids=["zh-refusal", "en-refusal", "zh-vague", "en-vague", "over-100"])
def test_ambiguous_replies_give_no_command(text):
    assert read_command(text) is None


def test_blocker_support_label_in_english():
    command = read_command("Blocked\nSituation: tool down\nCause: licence expired\n"
                           "Support needed: IT to renew")
    assert command is not None and command.to_dict() == {
        "name": "blocker", "situation": "tool down", "cause": "licence expired",
        "support": "IT to renew"}


@pytest.mark.parametrize(("text", "name", "args"), [
    ("撤销", "withdraw", {"note": ""}),
    ("撤销，这不是我发的", "withdraw", {"note": "这不是我发的"}),
    ("withdraw", "withdraw", {"note": ""}),
    ("改期至 8月28日", "delay", {"date": "8月28日", "reason": ""}),
    ("reschedule to Aug 28", "delay", {"date": "Aug 28", "reason": ""}),
], ids=["zh-withdraw", "zh-withdraw-note", "en-withdraw", "zh-reschedule", "en-reschedule"])
def test_the_initiators_button_commands(text, name, args):
    command = read_command(text)
    assert command is not None and (command.name, dict(command.args)) == (name, args)
