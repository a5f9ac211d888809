"""The initiator's buttons in the emails that list several tasks or items, over real SMTP and IMAP,
on a server with plus addressing and on one without (tokens in subject tags): 李娜 reassigns,
moves deadlines and accepts a delay from the rows of her digest, acts from the escalation that
reaches her, closes a finished item from her digest, and withdraws one item of a receipt that
lists several. Each button acts once, on its own task or item, for her alone.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from conversation import TZ, Conversation, buttons_of, text_of

pytestmark = pytest.mark.integration

LI, WANG, ZHAO, CHEN = ("li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example",
                        "chen.jing@corp.example")
PEOPLE = (LI, WANG, ZHAO, CHEN, "alex.morgan@corp.example")
# Monday 3 August 2026: T-1 is due Wednesday, T-2 the week after, T-3 later.
PROJECT = ("项目名称：渠道拓展项目\n发起人/部门：李娜 / 市场部\n目标/背景：两个新渠道\n范围：华东\n\n任务：\n"
           "任务名称 | 负责人 | 截止日期 | 交付标准\n"
           "渠道调研 | 王喆 | 8月5日 | 调研报告\n"
           "合同谈判 | 王喆 | 8月14日 | 合同草案\n"
           "渠道培训 | 赵磊 | 8月20日 | 培训记录\n")
# The guide's template 2, pasted from Excel: three rows, three items, one receipt.
DAILY = ("任务名称\t发起人\t负责人\t优先级(□高□中□低)\t截止日期\t当前进度(□0%□25%□50%□75%□100%)\t"
         "完成情况简述\t反馈时间\n"
         "月度客户满意度报告\t市场部*经理\t王喆\t☑高\t8月14日\t☑0%\t\t8月3日\n"
         "办公设备采购申请\t市场部*经理\t赵磊\t☑中\t8月17日\t☑25%\t报价收集中\t8月3日\n"
         "8月考勤汇总\t市场部*经理\t陈静\t☑低\t8月31日\t☑0%\t\t8月3日\n")


@pytest.fixture
def convo(plus_convo):
    """With plus addressing, and without (conftest.py `plus_convo`)."""
    return plus_convo


def _buttons(message, label: str, ref: str) -> list[tuple[str, str, str]]:
    """(address, subject, body) of each button `label` of `message` that acts on `ref`, as the
    subject of its reply names it: "MD-0001 T-3" in an email that lists tasks, "MD-0002" for an
    item of a receipt and for every button of an email about one task."""
    names = re.compile(r"\[" + re.escape(ref) + r"[\] ]")
    return [(address, subject, body) for lab, address, subject, body in buttons_of(message)
            if lab == label and names.search(subject)]


def _click(convo: Conversation, person: str, message, label: str, ref: str,
           body: str | None = None) -> None:
    """Press the button `label` of `ref` in `person`'s mail client, and send what it wrote
    (or `body`, edited)."""
    (found,) = _buttons(message, label, ref)
    address, subject, text = found
    convo.say(person, subject, text if body is None else body, to=address)
    convo.process()


def _item(convo: Conversation, item_id: str = "MD-0001") -> dict:
    item = convo.service.store.get_item(item_id)
    assert item is not None, item_id
    return item


def _task(convo: Conversation, task_id: str, item_id: str = "MD-0001") -> dict:
    return next(t for t in _item(convo, item_id)["tasks"] if t["id"] == task_id)


def _refused(convo: Conversation, person: str, why: str) -> bool:
    """Whether `person` was told that nothing changed, and why (a phrase of the refusal)."""
    return any("无法执行" in str(m["Subject"]) and why in text_of(m) for m in convo.inbox(person))


def _start_project(convo: Conversation) -> None:
    """李娜's project; 王喆 confirms both his tasks, then asks to move T-2; 赵磊 is silent."""
    convo.say(LI, "[项目] 渠道拓展项目", PROJECT)
    convo.process()
    requests = convo.inbox(WANG)
    for message in requests:
        _click(convo, WANG, message, "确认", "MD-0001")
    ack = next(m for m in convo.inbox(WANG) if m["X-Maild-Kind"] == "command_ack"
               and "任务 T-2「合同谈判」" in text_of(m).split("==")[0])
    convo.reply(WANG, ack, "延期至 8月25日，原因：等法务审批")
    convo.process()
    assert _task(convo, "T-2")["requested_deadline"].startswith("2026-08-25")
    for person in PEOPLE:
        convo.inbox(person)


def _digest(convo: Conversation):
    (digest,) = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "digest"]
    return digest


def test_the_initiator_acts_from_the_rows_of_her_digest(convo):
    _start_project(convo)
    convo.clock.now = datetime(2026, 8, 6, 9, 5, tzinfo=TZ)  # Thursday: T-1 is overdue
    convo.service.tick()
    digest = _digest(convo)
    labels = {ref: [lab for lab, _a, subject, _b in buttons_of(digest) if f"[{ref}" in subject]
              for ref in ("MD-0001 T-1", "MD-0001 T-2", "MD-0001 T-3")}
    # overdue: 改期 and 转派 (and its escalation's 查看状态); a delay asked for: 同意延期 and 改期;
    # unconfirmed past 16 working hours: 转派 and 查看状态
    assert labels == {"MD-0001 T-1": ["改期", "转派", "查看状态"],
                      "MD-0001 T-2": ["同意延期", "改期"],
                      "MD-0001 T-3": ["转派", "查看状态"]}
    # each button its own token, for her, that task and that action
    addresses = {(address, subject) for _l, address, subject, _b in buttons_of(digest)}
    assert len(addresses) == len(buttons_of(digest))

    _click(convo, LI, digest, "同意延期", "MD-0001 T-2")
    t2 = _task(convo, "T-2")
    assert t2["deadline"].startswith("2026-08-25") and "requested_deadline" not in t2
    _click(convo, LI, digest, "改期", "MD-0001 T-1", "改期至 8月12日")
    assert _task(convo, "T-1")["deadline"].startswith("2026-08-12")
    _click(convo, LI, digest, "转派", "MD-0001 T-3", f"转派 T-3 给 {CHEN}")
    assert _task(convo, "T-3")["owner"] == CHEN
    assert [m["X-Maild-Kind"] for m in convo.inbox(CHEN)] == ["confirm_request"]
    before = [(t["owner"], t["deadline"]) for t in _item(convo)["tasks"]]
    audit = len(_item(convo)["audit"])
    convo.inbox(LI)

    # each button works once: T-1's 改期 again (a replay with a new Message-ID)
    _click(convo, LI, digest, "改期", "MD-0001 T-1", "改期至 9月30日")
    assert _refused(convo, LI, "已经用过一次")
    # a row's button acts on its own task only: T-1's unused 转派 for T-2
    _click(convo, LI, digest, "转派", "MD-0001 T-1", f"转派 T-2 给 {ZHAO}")
    assert _refused(convo, LI, "只对应它所讲的那项任务")
    # and only for her: 王喆 presses T-2's unused 改期 of her digest (a copy reached him)
    _click(convo, WANG, digest, "改期", "MD-0001 T-2", "改期至 9月30日")
    assert _refused(convo, WANG, "发给别人的")
    assert [(t["owner"], t["deadline"]) for t in _item(convo)["tasks"]] == before
    assert len(_item(convo)["audit"]) == audit


def test_the_initiator_acts_from_the_escalation_that_reaches_her(convo):
    _start_project(convo)
    request = next(m for m in convo.folder(ZHAO) if "T-3" in str(m["Subject"]))
    _click(convo, ZHAO, request, "确认", "MD-0001")
    convo.clock.now = datetime(2026, 8, 5, 9, 5, tzinfo=TZ)  # Wednesday: the day's digests
    convo.service.tick()
    for person in PEOPLE:
        convo.inbox(person)
    convo.clock.now = datetime(2026, 8, 5, 18, 0, tzinfo=TZ)  # 18:00: T-1 is due
    convo.service.tick()
    wang = [m for m in convo.inbox(WANG) if m["X-Maild-Kind"] in ("reminder", "escalation")]
    (hers,) = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] in ("reminder", "escalation")]
    # her own email, not a Cc on his: its buttons are signed for her
    assert wang and all(m["Cc"] is None for m in wang) and str(hers["To"]) == LI
    assert [lab for lab, *_ in buttons_of(hers)] == ["改期", "转派", "查看状态"]
    assert "改期" not in [lab for m in wang for lab, *_ in buttons_of(m)]

    _click(convo, LI, hers, "改期", "MD-0001", "改期至 8月7日")
    assert _task(convo, "T-1")["deadline"].startswith("2026-08-07")
    _click(convo, LI, hers, "改期", "MD-0001", "改期至 8月10日")  # the same button again
    assert _refused(convo, LI, "已经用过一次")
    assert _task(convo, "T-1")["deadline"].startswith("2026-08-07")
    # its 转派 is for T-1 alone
    _click(convo, LI, hers, "转派", "MD-0001", f"转派 T-2 给 {CHEN}")
    assert _refused(convo, LI, "只对应它所讲的那项任务")
    assert _task(convo, "T-2")["owner"] == WANG
    _click(convo, LI, hers, "转派", "MD-0001", f"转派 T-1 给 {CHEN}")
    assert _task(convo, "T-1")["owner"] == CHEN


def test_a_finished_item_is_closed_from_the_digest(convo):
    convo.say(LI, "[任务] 展会物料", "任务名称：展会物料\n负责人：王喆\n截止日期：8月7日\n")
    convo.process()
    (request,) = convo.inbox(WANG)
    _click(convo, WANG, request, "确认", "MD-0001")
    ack = next(m for m in convo.inbox(WANG) if m["X-Maild-Kind"] == "command_ack")
    _click(convo, WANG, ack, "标记完成", "MD-0001")
    assert _task(convo, "T-1")["state"] == "done"
    convo.inbox(LI), convo.inbox(WANG)
    convo.clock.now = datetime(2026, 8, 4, 9, 5, tzinfo=TZ)
    convo.service.tick()
    digest = _digest(convo)
    (close,) = _buttons(digest, "结项", "MD-0001")
    assert close[2].startswith("结项\n是否达成目标：")
    _click(convo, LI, digest, "结项", "MD-0001",
           "结项\n是否达成目标：是\n未达目标原因：无\n可优化点：物料清单提前一周定稿")
    assert convo.service.store.get_item("MD-0001") is None  # closed and archived
    (told,) = convo.inbox(WANG)
    assert told["X-Maild-Kind"] == "command_ack" and "物料清单提前一周定稿" in text_of(told)


def test_one_item_of_a_receipt_that_lists_several_is_withdrawn(convo):
    convo.say(LI, "日常任务同步跟进表", DAILY)
    convo.process()
    (receipt,) = convo.inbox(LI)
    assert receipt["X-Maild-Kind"] == "receipt" and "已登记 3 项日常任务" in text_of(receipt)
    ids = ("MD-0001", "MD-0002", "MD-0003")
    assert {ref: [lab for lab, _a, subject, _b in buttons_of(receipt) if f"[{ref}" in subject]
            for ref in ids} == {ref: ["撤销", "转派"] for ref in ids}
    for person in PEOPLE:
        convo.inbox(person)

    _click(convo, LI, receipt, "撤销", "MD-0002")
    assert convo.service.store.get_item("MD-0002") is None  # withdrawn and archived
    assert [i["id"] for i in convo.service.store.open_items()] == ["MD-0001", "MD-0003"]
    assert [m["X-Maild-Kind"] for m in convo.inbox(ZHAO)] == ["command_ack"]
    # each item's 转派 reaches that item only
    _click(convo, LI, receipt, "转派", "MD-0003", f"转派 T-1 给 {ZHAO}")
    assert _task(convo, "T-1", "MD-0003")["owner"] == ZHAO
    convo.inbox(LI)

    # used twice: nothing more
    _click(convo, LI, receipt, "转派", "MD-0003", f"转派 T-1 给 {CHEN}")
    assert _refused(convo, LI, "已经用过一次")
    assert _task(convo, "T-1", "MD-0003")["owner"] == ZHAO
    # a 转派 button cannot withdraw, and another person cannot use hers
    _click(convo, LI, receipt, "转派", "MD-0001", "撤销")
    assert _refused(convo, LI, "只能执行它上面写的操作")
    _click(convo, ZHAO, receipt, "撤销", "MD-0001")
    assert _refused(convo, ZHAO, "发给别人的")
    assert [i["id"] for i in convo.service.store.open_items()] == ["MD-0001", "MD-0003"]

