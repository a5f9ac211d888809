"""Schedules start quietly: a person's first digest comes at its time after they joined, never
on the tick that first sees them (baseline.py), and a daemon that was down still catches up once."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from conversation import TZ, Conversation, FakeClock, kinds, make_config

from maild.core import baseline
from maild.core.planner import Cadence

LI, WANG, ZHAO = "li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example"
PROJECT = """项目名称：渠道拓展项目
目标/背景：两个新渠道
任务：
渠道调研 | 王喆 | 8月20日 | 调研报告
合同谈判 | 赵磊 | 8月21日 | 合同草案
"""


@pytest.mark.integration
def test_a_fresh_daemon_sends_no_digest_on_friday_evening_and_both_on_monday(mail_system,
                                                                            tmp_path):
    """The issue's evening: a project arrives at 19:27 on a Friday at a daemon that has just
    started. Receipt and confirmation requests go out; the daily digest (09:00) and the owners'
    weekly digests (Monday 09:00) wait for their time: Saturday is no working day, so Monday."""
    clock = FakeClock(datetime(2026, 8, 7, 19, 27, tzinfo=TZ))  # a Friday
    convo = Conversation(mail_system, make_config(mail_system, tmp_path / "var"), clock)
    try:
        convo.say(LI, "[项目] 渠道拓展项目", PROJECT)
        convo.process()
        convo.service.tick()
        clock.advance(seconds=30)
        convo.service.tick()
        assert kinds(convo.inbox(LI)) == ["receipt"]
        assert kinds(convo.inbox(WANG)) == kinds(convo.inbox(ZHAO)) == ["confirm_request"]
        for moment in (datetime(2026, 8, 8, 10, 0, tzinfo=TZ), datetime(2026, 8, 9, 10, 0, tzinfo=TZ),
                       datetime(2026, 8, 10, 8, 59, tzinfo=TZ)):
            clock.now = moment
            convo.service.tick()
            got = [kinds(convo.inbox(a)) for a in (LI, WANG, ZHAO)]
            assert got == [[], [], []], (moment, got)
        clock.now = datetime(2026, 8, 10, 9, 0, 30, tzinfo=TZ)  # Monday 09:00
        convo.service.tick()
        assert "digest" in kinds(convo.inbox(LI))
        assert "owner_digest" in kinds(convo.inbox(WANG))
        assert "owner_digest" in kinds(convo.inbox(ZHAO))
    finally:
        convo.close()


@pytest.mark.integration
def test_a_new_owner_mid_week_waits_for_the_weekly_digest(mail_system, tmp_path):
    """Reassigned on a Wednesday afternoon, the new owner gets the confirmation request, and
    their first weekly digest the Monday after: not one within 30 s of the request."""
    clock = FakeClock(datetime(2026, 8, 3, 8, 30, tzinfo=TZ))  # Monday morning
    convo = Conversation(mail_system, make_config(mail_system, tmp_path / "var"), clock)
    try:
        convo.say(LI, "[项目] 渠道拓展项目", PROJECT)
        convo.process()
        clock.now = datetime(2026, 8, 5, 14, 0, tzinfo=TZ)  # Wednesday
        convo.service.tick()
        receipt = next(m for m in convo.inbox(LI) if m["Subject"].startswith("[MD-0001]"))
        for address in (WANG, ZHAO):
            convo.inbox(address)
        # The initiator answers her receipt, as a mail client does: through its reply address.
        convo.reply(LI, receipt, "转派 T-2 给 chen.jing@corp.example")
        convo.process()
        convo.service.tick()
        clock.advance(seconds=30)
        convo.service.tick()
        assert kinds(convo.inbox("chen.jing@corp.example")) == ["confirm_request"]
        clock.now = datetime(2026, 8, 10, 9, 0, 30, tzinfo=TZ)
        convo.service.tick()
        assert "owner_digest" in kinds(convo.inbox("chen.jing@corp.example"))
    finally:
        convo.close()


# -- pure ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cadence, moment, done, first_slot", [
    (Cadence("daily"), datetime(2026, 8, 5, 19, 27), date(2026, 8, 5), date(2026, 8, 6)),
    (Cadence("daily"), datetime(2026, 8, 7, 19, 27), date(2026, 8, 9), date(2026, 8, 10)),
    (Cadence("daily"), datetime(2026, 8, 7, 8, 0), date(2026, 8, 6), date(2026, 8, 7)),
    (Cadence("every_2_days"), datetime(2026, 8, 7, 8, 0), date(2026, 8, 5), date(2026, 8, 7)),
    (Cadence("weekly", weekday=0), datetime(2026, 8, 5, 14, 0), date(2026, 8, 3),
     date(2026, 8, 10)),
    (Cadence("weekly", weekday=0), datetime(2026, 8, 3, 8, 30), date(2026, 7, 27),
     date(2026, 8, 3)),
    (Cadence("weekly", weekday=0), datetime(2026, 8, 3, 9, 0), date(2026, 8, 3),
     date(2026, 8, 10)),
], ids=["daily-evening", "daily-friday-evening", "daily-morning", "every-2-days", "weekly-midweek",
        "weekly-monday-early", "weekly-monday-at-nine"])
def test_the_first_slot_is_the_next_one_after_joining(rules, cadence, moment, done, first_slot):
    from maild.core.digests import digest_slot as _slot

    cal = rules.calendar
    joined = moment.replace(tzinfo=TZ)
    assert baseline.last_slot(cadence, joined, cal) == done
    assert _slot(cadence, done.isoformat(), joined, cal).date() == first_slot


def _item(initiator: str, created: str, *tasks: tuple[str, str, str], state: str = "open") -> dict:
    return {"initiator": initiator, "created_at": created, "state": state,
            "tasks": [{"owner": o, "assigned_at": a, "state": s} for o, a, s in tasks]}


def test_seed_meets_newcomers_keeps_known_people_and_forgets_the_departed(rules):
    now = datetime(2026, 8, 5, 14, 0, tzinfo=TZ)  # Wednesday
    items = [_item(LI, "2026-08-05T10:00:00+08:00",
                   (WANG, "2026-08-05T10:00:00+08:00", "awaiting_confirmation"),
                   (ZHAO, "2026-08-05T10:00:00+08:00", "done")),
             _item("old@corp.example", "2026-07-01T10:00:00+08:00", state="closed")]
    known = {"done": "2026-08-04", "snap": {"MD-0001/T-1": "x"}}
    state = {"digest": {LI: known, "gone@corp.example": {"done": "2026-06-01"}},
             "owner_digest": {}, "next_at": None}
    seeded = baseline.seed(items, state, now, rules.schedules, rules.calendar)
    assert seeded["digest"] == {LI: known}  # known: untouched; the departed: forgotten
    assert seeded["owner_digest"] == {WANG: {"done": "2026-08-03"}}  # his next: Monday 10th
    assert ZHAO not in seeded["owner_digest"]  # his only task is done
    assert seeded["next_at"] is None and state["digest"]["gone@corp.example"]  # input kept


def test_seed_uses_the_earliest_open_item_and_never_a_time_after_now(rules):
    now = datetime(2026, 8, 4, 8, 0, tzinfo=TZ)  # Tuesday, before the 09:00 digest
    items = [_item(LI, "2026-08-03T08:00:00+08:00"), _item(LI, "2026-08-04T07:00:00+08:00"),
             _item(ZHAO, "2026-08-09T07:00:00+08:00")]  # a clock that went back: at most now
    seeded = baseline.seed(items, {}, now, rules.schedules, rules.calendar)
    assert seeded["digest"][LI] == {"done": "2026-08-02"}  # her first slot: Monday 09:00
    assert seeded["digest"][ZHAO] == {"done": "2026-08-03"}  # his: today 09:00
