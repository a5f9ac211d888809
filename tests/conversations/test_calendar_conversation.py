"""Over New Year into a year no holiday source knows, through the real service and real mail.

A task is due on the last day of the last year chinese-calendar knows and is not done. Two
working days later (by weekends alone) the escalation to the owner's manager would go out; the
calendar cannot vouch for the day, so it waits, and the initiator's digest says why. The
operator adds the year's 元旦 to the rules, the daemon reloads, and the escalation goes out on
the day the declared calendar makes it due.
"""

from __future__ import annotations

import logging
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from conversation import TZ, Conversation, FakeClock, make_config, text_of

from maild.core.workcal import PACKAGE_YEARS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LI, WANG, ALEX = "li.na@corp.example", "wang.zhe@corp.example", "alex.morgan@corp.example"
YEAR = PACKAGE_YEARS[-1]
NEXT = YEAR + 1
TASK = """任务名称：年度数据汇总
发起人：李娜 / 市场部
负责人：王喆
优先级：高
截止日期：{year}年12月31日
交付标准：全年销售数据汇总表
"""


def kinds(messages) -> list[str]:
    return sorted(str(m["X-Maild-Kind"]) for m in messages)


@pytest.fixture
def convo(embedded_mail, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    clock = FakeClock(datetime(YEAR, 12, 28, 10, 0, tzinfo=TZ))  # Monday
    config = make_config(embedded_mail, tmp_path / "var", **{"rules.dir": str(rules)})
    conversation = Conversation(embedded_mail, config, clock)
    yield conversation
    conversation.close()


def test_an_escalation_waits_for_a_calendar_that_knows_the_day(convo, caplog):
    convo.say(LI, "[任务] 年度数据汇总", TASK.format(year=YEAR))
    convo.process()
    convo.reply(WANG, convo.inbox(WANG)[0], "确认，进度 40%")
    convo.process()
    convo.clock.now = datetime(YEAR, 12, 31, 18, 30, tzinfo=TZ)
    convo.service.tick()  # overdue: the owner hears, the initiator in Cc
    for address in (LI, WANG, ALEX):
        convo.inbox(address)

    convo.clock.now = datetime(NEXT, 1, 5, 9, 30, tzinfo=TZ)  # 2 working days by weekends alone
    with caplog.at_level(logging.WARNING, logger="maild.service"):
        convo.service.tick()
    assert any(f"event=calendar_gap first={NEXT}-01-01" in r.getMessage() for r in caplog.records)
    assert convo.inbox(ALEX) == []  # the manager is not written to on a day nobody vouches for
    (digest,) = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "digest"]
    assert f"工作日历还没有 {NEXT} 年的法定节假日安排" in text_of(digest)
    assert "1 条给经理的升级提醒暂缓发送" in text_of(digest)

    # The operator enters the notice's 元旦 (three days off) and reloads (SIGHUP).
    schedules = convo.config.rules_dir / "schedules.toml"
    schedules.write_text(schedules.read_text("utf-8").replace(
        "\n[quiet_hours]", f'\n[calendar.{NEXT}]\nworkdays = []\n[calendar.{NEXT}.holidays]\n'
        f'"{NEXT}-01-01..{NEXT}-01-03" = "元旦"\n\n[quiet_hours]'), "utf-8")
    convo.service.request_reload()
    convo.service._reload()
    assert convo.service.rules.calendar.vouches_for(datetime(NEXT, 1, 5).date())
    convo.clock.now = datetime(NEXT, 1, 5, 17, 0, tzinfo=TZ)
    convo.service.tick()
    assert convo.inbox(ALEX) == []  # with 元旦 off, the second working day ends at 18:00
    convo.clock.now = datetime(NEXT, 1, 5, 18, 0, tzinfo=TZ)
    convo.service.tick()
    (escalation,) = convo.inbox(ALEX)
    assert kinds([escalation]) == ["escalation"] and "年度数据汇总" in text_of(escalation)
    convo.service.tick()
    assert convo.inbox(ALEX) == []  # once
