"""The workflow over time, through the real service and real mail, with a fake clock.

A project is kicked off, then days pass: digests list exactly the right rows, an overdue task is
chased once per level, a daemon that was down for three days catches up once, and the full
simulated-week demo (`maild demo --once --scenario full`) runs to its archive.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest
from conversation import TZ, Conversation, FakeClock, make_config, text_of

from maild.service import Service

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
LI, WANG, ZHAO, CHEN = ("li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example",
                        "chen.jing@corp.example")
PROJECT = """项目名称：渠道拓展项目
目标/背景：两个新渠道
任务：
渠道调研 | 王喆 | 8月5日 | 调研报告
合同谈判 | 赵磊 | 8月20日 | 合同草案
"""


def kinds(messages) -> list[str]:
    return sorted(str(m["X-Maild-Kind"]) for m in messages)


@pytest.fixture
def convo(mail_system, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 8, 30, tzinfo=TZ))  # Monday, before the digests
    conversation = Conversation(mail_system, make_config(mail_system, tmp_path / "var"), clock)
    yield conversation
    conversation.close()


def _kickoff(convo: Conversation) -> None:
    convo.say(LI, "[项目] 渠道拓展项目", PROJECT)
    convo.process()
    request = convo.inbox(WANG)[0]
    convo.reply(WANG, request, "确认")
    convo.process()
    for address in (LI, WANG, ZHAO):
        convo.inbox(address)


def test_digest_lists_exactly_the_right_rows(convo):
    _kickoff(convo)
    convo.clock.advance(hours=2)  # Monday 10:30: the 09:00 slot has passed
    convo.service.tick()
    digest = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "digest"]
    assert len(digest) == 1
    body = text_of(digest[0])
    assert "合同谈判" in body and "渠道调研" in body  # T-2 unconfirmed: needs attention
    assert "待确认" in body
    assert "1" in str(digest[0]["Subject"]) and "渠道拓展项目" in str(digest[0]["Subject"])
    convo.service.tick()  # the same slot again: nothing more
    assert [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "digest"] == []


def test_overdue_task_is_chased_once_per_level_and_escalated_to_the_manager(convo):
    _kickoff(convo)
    convo.clock.now = datetime(2026, 8, 6, 9, 5, tzinfo=TZ)  # T-1 due Wed 18:00: overdue
    convo.service.tick()
    assert "reminder" in kinds(convo.inbox(WANG))
    convo.service.tick()
    assert "reminder" not in kinds(convo.inbox(WANG))
    convo.clock.now = datetime(2026, 8, 10, 9, 5, tzinfo=TZ)  # two working days later
    convo.service.tick()
    manager = convo.inbox("alex.morgan@corp.example")
    assert kinds(manager) == ["escalation"]
    assert LI in str(manager[0]["Cc"])
    convo.service.tick()
    assert convo.inbox("alex.morgan@corp.example") == []


def test_restart_after_three_days_down_sends_each_due_thing_once(convo, mail_system, tmp_path):
    _kickoff(convo)
    convo.service.close()
    # Down from Monday morning to Thursday: the unconfirmed reminders (owner, then initiator),
    # the overdue reminder and the day's digest are all due; each must go out exactly once.
    clock = FakeClock(datetime(2026, 8, 6, 10, 0, tzinfo=TZ))
    convo.service = Service.from_config(convo.config, environ={"MAILD_SECRET": "conversation-test"},
                                        clock=clock)
    for _ in range(3):
        convo.service.tick()
    zhao, wang, li = kinds(convo.inbox(ZHAO)), kinds(convo.inbox(WANG)), kinds(convo.inbox(LI))
    # The weekly owner digest slot (Monday 09:00) was missed: it is sent once, late.
    assert zhao == ["owner_digest", "reminder"]      # unconfirmed T-2: reminded once
    assert wang == ["owner_digest", "reminder"]      # overdue T-1: once
    assert li.count("digest") == 1                   # one digest, not three
    assert li.count("reminder") == 1                 # T-2 still unconfirmed: the initiator hears
    for _ in range(2):
        convo.service.tick()
    assert [convo.inbox(a) for a in (LI, WANG, ZHAO)] == [[], [], []]


def test_full_demo_runs_a_simulated_week_to_the_archive():
    from maild.demo_full import run_full_demo
    out = io.StringIO()
    status = run_full_demo(ROOT / "config.toml", out)
    transcript = out.getvalue()
    assert status == 0, transcript[-3000:]
    assert "2026-Q3-Q3新品推广项目" in transcript
    for moment in ("李娜 reassigns T-2", "blocker", "escalated to the manager", "archived"):
        assert moment in transcript


def test_digest_preview_shows_what_is_due_without_sending_or_recording(convo):
    from maild.reports import digest_preview

    _kickoff(convo)
    convo.service.store.commit()
    at = datetime(2026, 8, 6, 9, 5, tzinfo=TZ)  # T-1 overdue, T-2 unconfirmed
    first = digest_preview(convo.config, at)
    assert {(p["kind"], p["to"][0]) for p in first} >= {("reminder", WANG), ("digest", LI)}
    assert digest_preview(convo.config, at) == first  # nothing was recorded
    assert [convo.inbox(a) for a in (LI, WANG, ZHAO)] == [[], [], []]  # nothing was sent


def test_lessons_page_collects_improvements_of_closed_projects(convo):
    from maild import archive

    _kickoff(convo)
    receipt = convo.folder(LI)[0]
    convo.reply(LI, receipt, "结项\n是否达成目标：否\n未达目标原因：合同未签\n可优化点：谈判前先确认预算上限")
    convo.process()
    assert convo.service.store.open_items() == []
    assert convo.service.store.counts()["messages"] == 0  # no links to archived work stay live
    folder = next(p for p in convo.config.archive_dir.iterdir() if p.name.startswith("2026-Q3"))
    assert folder.name == "2026-Q3-渠道拓展项目"
    assert {"record.md", "record.html", "item.json"} <= {p.name for p in folder.iterdir()}
    assert any(p.suffix == ".eml" for p in folder.iterdir())
    md, html = archive.lessons(convo.config.archive_dir, language="zh")
    assert "谈判前先确认预算上限" in md and "渠道拓展项目" in md and "谈判前先确认预算上限" in html
