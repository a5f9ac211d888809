"""Schedule runs carried out in slices between intake batches, as the daemon's loop does: email
that arrives during a run is handled before the run ends, each reader gets their digest once,
and a daemon killed between two slices sends the rest after a restart, repeating nothing."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from conftest import make_mail_system
from conversation import TZ, Conversation, FakeClock, make_config

from maild.app.scheduling import RULES_KEY
from maild.app.service import Service

pytestmark = pytest.mark.integration

LI, ALEX = "li.na@corp.example", "alex.morgan@corp.example"
OWNERS = ("wang.zhe@corp.example", "zhao.lei@corp.example", "chen.jing@corp.example")
PROJECT = """项目名称：{title}
目标/背景：切片测试
任务：
渠道调研 | 王喆 | 8月20日 | 调研报告
合同谈判 | 赵磊 | 8月20日 | 合同草案
客诉培训 | 陈静 | 8月20日 | FAQ文档
"""
MONDAY_0900 = datetime(2026, 8, 3, 9, 0, tzinfo=TZ)


@pytest.fixture
def convo(shipped_config, tmp_path):
    # A mail system of its own: the runs' Message-IDs repeat from test to test (same items,
    # same day), and a reader tells new mail by its Message-ID.
    emb = shipped_config.embedded_system
    mail = make_mail_system("embedded", dict(emb.accounts), emb.host)
    clock = FakeClock(datetime(2026, 8, 3, 8, 30, tzinfo=TZ))  # Monday, before the digests
    conversation = Conversation(mail, make_config(mail, tmp_path / "var"), clock)
    for address in (LI, ALEX, *OWNERS):
        conversation.inbox(address)  # what earlier tests of the module left
    conversation.say(LI, "[项目] 渠道拓展项目", PROJECT.format(title="渠道拓展项目"))
    conversation.say(ALEX, "[项目] 售后流程优化", PROJECT.format(title="售后流程优化"))
    conversation.process()
    for address in (LI, ALEX, *OWNERS):
        conversation.inbox(address)  # receipts and confirmation requests
    yield conversation
    conversation.close()
    mail.stop()


def _digests(convo: Conversation) -> Counter[str]:
    got: Counter[str] = Counter()
    for address in (LI, ALEX, *OWNERS):
        for message in convo.inbox(address):
            got[f"{address} {message['X-Maild-Kind']}"] += 1
    return got


EXPECTED = Counter({f"{LI} digest": 1, f"{ALEX} digest": 1,
                    **{f"{owner} owner_digest": 1 for owner in OWNERS}})


def test_intake_goes_on_between_the_slices_of_a_run(convo):
    service = convo.service
    service.slicing = True  # as in `Service.run`
    convo.clock.now = MONDAY_0900
    service.tick()
    run = service.schedule_run
    assert run is not None and not run.done  # started, nothing planned yet
    run.slice_emails = 1  # one email per slice: five slices
    request = convo.folder(OWNERS[0])[0]
    slices = 0
    while service.schedule_run is not None:
        service.run_slice(budget_s=0.0)  # one step at a time
        slices += 1
        if slices == 2:  # mid-run: an owner confirms, and is answered before the run ends
            convo.reply(OWNERS[0], request, "确认")
            report = service.process_batch()
            assert report.processed == 1 and not run.done
        service.process_batch()  # the loop's next turn: settles the sent slice, polls the inbox
    service.drain()
    assert slices >= 5 and not service._run_ids
    assert _digests(convo) == EXPECTED + Counter({f"{LI} confirmed": 1,
                                                  f"{OWNERS[0]} command_ack": 1})
    convo.clock.advance(seconds=30)
    service.tick()
    assert service.schedule_run is None and _digests(convo) == Counter()


def test_a_crash_between_slices_sends_the_rest_once(convo):
    service = convo.service
    convo.clock.now = MONDAY_0900
    run = service.start_schedule_run(convo.clock())
    run.slice_emails = 2
    steps = run.steps()
    committed = 0
    while committed < 1:  # until the first slice is committed
        next(steps)
        committed = len(run.queued)
    assert service.drain() == (2, 0)
    first = _digests(convo)
    assert sum(first.values()) == 2
    # Killed here: what is not committed is lost (nothing is), the process is gone.
    service.store.rollback()
    service.store.close()
    service.sender.close()
    convo.service = Service.from_config(convo.config, environ={"MAILD_SECRET": "conversation-test"},
                                        clock=convo.clock)
    convo.service.tick()
    assert first + _digests(convo) == EXPECTED
    convo.service.tick()
    assert _digests(convo) == Counter()


def test_the_first_tick_runs_what_is_due_at_its_own_moment(convo):
    # A daemon starts on a store whose due moments it must compute (rules changed, a migrated
    # store): the index is built during the first tick while the real clock moves on, and what
    # is due at that tick must start then, not at the next tick 30 s later.
    convo.clock.now = MONDAY_0900
    convo.service.tick()  # the digests, at once
    assert _digests(convo) == EXPECTED
    convo.clock.now = datetime(2026, 8, 3, 17, 30, tzinfo=TZ)  # 8 working hours unconfirmed
    convo.service.store.meta_set(RULES_KEY, "the rules of an older version")
    convo.service.store.commit()
    convo.service.close()
    moving = convo.clock

    def clock() -> datetime:  # each reading a millisecond later, as a real clock's would be
        moving.advance(milliseconds=1)
        return moving.now

    convo.service = Service.from_config(convo.config, environ={"MAILD_SECRET": "conversation-test"},
                                        clock=clock)
    convo.service.slicing = True
    convo.service.tick()
    assert convo.service.schedule_run is not None
    while convo.service.schedule_run is not None:
        convo.service.run_slice(budget_s=0.0)
        convo.service.process_batch()
    convo.service.drain()
    got = _digests(convo)
    assert got == Counter({f"{owner} reminder": 1 for owner in OWNERS})
