"""Acceptance (验收) as a state machine: handed in, accepted or returned with a reason, handed in
again; which items wait for it; how the retrospective counts first-time acceptance; and the
initiator's words for it."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from maild.core import acceptance, loopcommands
from maild.core.model import Attachment, Command

TZ = ZoneInfo("Asia/Shanghai")
LI, WANG = "li.na@corp.example", "wang.zhe@corp.example"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 8, day, hour, tzinfo=TZ)


def task(**fields) -> dict:
    return {"id": "T-1", "name": "新品核心卖点提炼", "owner": WANG, "state": "in_progress",
            "progress": 60, "deadline": at(10, 18).isoformat(),
            "deliverable": "500字以内卖点说明+用户场景图", **fields}


PDF = Attachment("卖点说明.pdf", "application/pdf", 52_000)


def test_hand_in_return_with_reason_hand_in_again_accept() -> None:
    work = task()
    first = acceptance.submit(work, at(7, 10), WANG, "见附件", [PDF], "m1@corp.example")
    assert work["state"] == "submitted" and work["progress"] == 100
    assert first["attachments"] == [{"filename": "卖点说明.pdf", "content_type": "application/pdf",
                                     "size": 52_000}]
    assert acceptance.pending(work) is first

    assert acceptance.send_back(work, at(7, 15), LI, "场景图缺少移动端")
    assert work["state"] == "returned" and work["progress"] == 90  # mostly done, not chased as new
    assert work["returned_reason"] == "场景图缺少移动端"
    assert acceptance.pending(work) is None
    assert not acceptance.approve(work, at(7, 16), LI)  # nothing waits for a verdict

    acceptance.submit(work, at(8, 11), WANG, "已补充移动端场景图", [], "m2@corp.example")
    assert work["state"] == "submitted" and "returned_reason" not in work
    assert acceptance.approve(work, at(8, 14), LI, "很好")
    assert work["state"] == "done" and work["accepted_by"] == LI
    assert work["done_at"] == at(8, 14).isoformat()
    assert work["delivered_at"] == at(7, 10).isoformat()  # on time or not: the first hand-in
    assert [s["verdict"] for s in work["submissions"]] == ["returned", "accepted"]
    assert acceptance.first_time(work) is False


def test_returned_work_is_chased_again_from_scratch() -> None:
    work = task(sent={"unconfirmed_owner@r1": "x", "deadline_near@2026-08-10T18:00:00+08:00": "y"})
    acceptance.submit(work, at(7, 10), WANG, "", [], "m1")
    acceptance.send_back(work, at(7, 11), LI, "缺数据")
    assert work["sent"] == {"unconfirmed_owner@r1": "x"}


@pytest.mark.parametrize("item, default, expected", [
    ({"kind": "task"}, False, False),
    ({"kind": "task"}, True, True),
    ({"kind": "project", "acceptance": True}, False, True),
    ({"kind": "project", "acceptance": False}, True, False),
    ({"kind": "emergency", "acceptance": True}, True, False),
], ids=["default-off", "default-on", "item-asks", "item-declines", "emergency-never"])
def test_which_items_wait_for_acceptance(item, default, expected) -> None:
    assert acceptance.required(item, default) is expected


@pytest.mark.parametrize("text, flag", [
    ("需要", True), ("是", True), ("Yes", True), ("required", True), ("☑需要 □不需要", True),
    ("不需要", False), ("否", False), ("no", False), ("□需要 ☑不需要", False), ("无需", False),
    ("", None), ("看情况", None),
], ids=["xuyao", "shi", "yes", "required", "ticked-yes", "buxuyao", "fou", "no", "ticked-no",
        "wuxu", "blank", "unclear"])
def test_the_forms_acceptance_field(text: str, flag: bool | None) -> None:
    assert acceptance.read_flag(text) is flag


def test_the_retrospective_counts_work_accepted_the_first_time() -> None:
    once, twice, plain = task(id="T-1"), task(id="T-2"), task(id="T-3")
    acceptance.submit(once, at(7, 10), WANG, "", [], "a")
    acceptance.approve(once, at(7, 11), LI)
    acceptance.submit(twice, at(7, 10), WANG, "", [], "b")
    acceptance.send_back(twice, at(7, 11), LI, "再改改")
    acceptance.submit(twice, at(8, 10), WANG, "", [], "c")
    acceptance.approve(twice, at(8, 11), LI)
    history = [{"id": "T-9", "state": "done", "rounds": 1}]  # a retired occurrence
    assert acceptance.stats([once, twice, plain], history) == {
        "accepted": 3, "first_time": 2, "returns": 1}


@pytest.mark.parametrize("text, command", [
    ("验收通过", Command("approve", {"note": ""})),
    ("验收通过，辛苦了！", Command("approve", {"note": "辛苦了！"})),
    ("Approve the work - thanks", Command("approve", {"note": "thanks"})),
    ("LGTM, signed off", Command("approve", {"note": "signed off"})),
    ("退回修改：场景图缺少移动端", Command("return", {"reason": "场景图缺少移动端"})),
    ("验收不通过，数据缺7月", Command("return", {"reason": "数据缺7月"})),
    ("退回修改", Command("return", {"reason": ""})),
    ("return: the July figures are missing", Command("return", {"reason": "the July figures are missing"})),
    ("停止重复", Command("stop")),
    ("Stop repeating", Command("stop")),
    ("依赖 T-3 T-1", Command("depend", {"task": "T-3", "on": ["T-1"]})),
    ("确认依赖 T-3 T-1", Command("depend", {"task": "T-3", "on": ["T-1"]})),
    ("T-3 waits on T-1 and T-2", Command("depend", {"task": "T-3", "on": ["T-1", "T-2"]})),
    ("依赖 T-1", Command("depend", {"task": None, "on": ["T-1"]})),
    ("取消依赖 T-3", Command("undepend", {"task": "T-3", "on": []})),
    ("进度 50%", None),
], ids=["approve", "approve-note", "approve-en", "lgtm", "return", "not-passed", "return-no-reason",
        "return-en", "stop", "stop-en", "depend", "confirm-depend", "depend-en", "depend-one",
        "undepend", "not-ours"])
def test_the_initiators_words(text: str, command: Command | None) -> None:
    assert loopcommands.read(text.splitlines()[0], text) == command
