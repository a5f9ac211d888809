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
from conversation import TZ, Conversation, FakeClock, buttons_of, kinds, make_config, text_of

from maild.app import scheduling
from maild.app.service import Service

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LI, WANG, ZHAO, CHEN = ("li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example",
                        "chen.jing@corp.example")
PROJECT = """项目名称：渠道拓展项目
目标/背景：两个新渠道
任务：
渠道调研 | 王喆 | 8月5日 | 调研报告
合同谈判 | 赵磊 | 8月20日 | 合同草案
"""


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


def test_a_schedule_run_pauses_the_cycle_collector_and_restores_it(convo, monkeypatch):
    import gc
    _kickoff(convo)
    convo.clock.advance(hours=2)
    seen = []
    plan_steps = scheduling.planner.plan_steps

    def watched(*args, **kwargs):
        seen.append(gc.isenabled())
        return (yield from plan_steps(*args, **kwargs))

    monkeypatch.setattr(scheduling.planner, "plan_steps", watched)
    assert convo.service.run_schedules(convo.clock())  # the digest is due: something queued
    assert seen == [False] and gc.isenabled()
    gc.disable()
    try:
        convo.clock.advance(days=1)
        convo.service.run_schedules(convo.clock())
        assert not gc.isenabled()  # a caller that had it off keeps it off
    finally:
        gc.enable()


def test_overdue_task_is_chased_once_per_level_and_escalated_to_the_manager(convo):
    _kickoff(convo)
    convo.clock.now = datetime(2026, 8, 6, 9, 5, tzinfo=TZ)  # T-1 due Wed 18:00: overdue
    convo.service.tick()
    # Monday's weekly digest to 王喆 was missed: it goes now, and carries the overdue reminder
    # (his task's row says so, with its buttons) instead of a second email about the same task.
    (digest,) = convo.inbox(WANG)
    assert digest["X-Maild-Kind"] == "owner_digest"
    assert "已于 8月5日 周三 18:00 到期" in text_of(digest) and "回复到：" in text_of(digest)
    li = convo.inbox(LI)
    assert kinds(li) == ["digest"] and "王喆（产品部） 的任务 T-1" in text_of(li[0])
    convo.service.tick()
    assert convo.inbox(WANG) == [] and convo.inbox(LI) == []
    convo.clock.now = datetime(2026, 8, 10, 9, 5, tzinfo=TZ)  # two working days later
    convo.service.tick()
    manager = convo.inbox("alex.morgan@corp.example")
    assert kinds(manager) == ["escalation"]
    assert manager[0]["Cc"] is None  # 李娜 hears in her digest of the same run
    (li_digest,) = [m for m in convo.inbox(LI) if m["X-Maild-Kind"] == "digest"]
    assert "已逾期 2 个工作日" in text_of(li_digest)
    convo.service.tick()
    assert convo.inbox("alex.morgan@corp.example") == []


def test_the_tick_plans_only_when_something_can_fall_due(convo, monkeypatch):
    _kickoff(convo)  # Monday 08:30: nothing is due before the 09:00 digests
    planned_at = []
    plan_steps = scheduling.planner.plan_steps

    def watched(items, now, *args, **kwargs):
        planned_at.append((now, len(items)))
        return (yield from plan_steps(items, now, *args, **kwargs))

    monkeypatch.setattr(scheduling.planner, "plan_steps", watched)
    convo.service.tick()
    for _ in range(3):  # every 30 s, as `schedule` calls it: nothing can be due yet
        convo.clock.advance(seconds=30)
        convo.service.tick()
    assert planned_at == []  # the due index said so: no item was even read
    convo.clock.now = datetime(2026, 8, 3, 9, 0, tzinfo=TZ)
    convo.service.tick()
    assert len(planned_at) == 1 and kinds(convo.inbox(LI)) == ["digest"]
    convo.clock.advance(seconds=30)
    convo.service.tick()
    assert len(planned_at) == 1
    # An email changes an item: only its own next due moment is computed again; nothing of it
    # is due now, so no run.
    convo.reply(WANG, convo.folder(WANG)[0], "进度 30%")
    convo.process()
    convo.clock.advance(seconds=30)
    convo.service.tick()
    assert len(planned_at) == 1
    (item_id,) = convo.service.due_index.levels
    assert convo.service.due_index.levels[item_id] > convo.clock()
    # When that moment comes, the run plans that item alone.
    convo.clock.now = convo.service.due_index.levels[item_id]
    convo.service.tick()
    assert planned_at[-1] == (convo.clock(), 1)


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
    zhao, wang, li = convo.inbox(ZHAO), convo.inbox(WANG), convo.inbox(LI)
    # The weekly owner digest slot (Monday 09:00) was missed: it is sent once, late, and
    # carries each owner's reminder (T-2 unconfirmed, T-1 overdue): one email each, once.
    assert kinds(zhao) == ["owner_digest"] and "还没有确认" in text_of(zhao[0])
    assert kinds(wang) == ["owner_digest"] and "到期，尚未完成" in text_of(wang[0])
    # One digest for 李娜, not three, with both levels due to her (T-1 overdue, T-2 unconfirmed
    # for 16 working hours) in the rows of those tasks.
    assert kinds(li) == ["digest"]
    assert "王喆（产品部） 的任务 T-1" in text_of(li[0]) and "未确认任务 T-2" in text_of(li[0])
    for _ in range(2):
        convo.service.tick()
    assert [convo.inbox(a) for a in (LI, WANG, ZHAO)] == [[], [], []]


def test_one_email_lists_an_owners_reminders_and_each_task_keeps_its_buttons(convo):
    convo.say(LI, "[项目] 渠道拓展项目", PROJECT.replace("赵磊", "王喆"))  # both tasks 王喆's
    convo.process()
    convo.clock.now = datetime(2026, 8, 3, 9, 5, tzinfo=TZ)  # Monday's digests: nothing due yet
    convo.service.tick()
    convo.inbox(WANG)
    convo.clock.now = datetime(2026, 8, 3, 17, 5, tzinfo=TZ)  # 8 working hours: both unconfirmed
    convo.service.tick()
    (reminder,) = [m for m in convo.inbox(WANG) if m["X-Maild-Kind"] == "reminder"]
    assert "[MD-0001]" in str(reminder["Subject"]) and "2" in str(reminder["Subject"])
    buttons = buttons_of(reminder)
    assert [label for label, *_ in buttons] == ["确认", "拒绝", "确认", "拒绝"]
    assert len({address for _, address, _, _ in buttons}) == 4  # each bound to its task
    tasks = [subject.split("]")[0] for _, _, subject, _ in buttons]
    assert tasks == ["Re: [MD-0001 T-1", "Re: [MD-0001 T-1", "Re: [MD-0001 T-2", "Re: [MD-0001 T-2"]

    # The second task's confirm button, as a mail client sends it: only T-2 is confirmed.
    _label, address, subject, body = buttons[2]
    convo.say(WANG, subject, body, to=address)
    convo.process()
    item = convo.service.store.get_item("MD-0001")
    assert [t["state"] for t in item["tasks"]] == ["awaiting_confirmation", "not_started"]
    assert all(any(k.startswith("unconfirmed_owner@") for k in t["sent"]) for t in item["tasks"])
    assert "confirmed" in kinds(convo.inbox(LI))

    # The text part names each task's own reply address: declining T-1 there reaches T-1.
    lines = [line for line in text_of(reminder).splitlines() if "回复到：" in line]
    assert len(lines) == 2 and "md0001-t1-" in lines[0]
    convo.say(WANG, "Re: 渠道调研", "拒绝: 本周出差", to=lines[0].split("：")[1].split("（")[0])
    convo.process()
    item = convo.service.store.get_item("MD-0001")
    assert [t["state"] for t in item["tasks"]] == ["declined", "not_started"]
    convo.service.tick()  # each level once: nothing more for 王喆
    assert "reminder" not in kinds(convo.inbox(WANG))


def test_full_demo_runs_a_simulated_week_to_the_archive(own_config):
    from maild.app.demo_full import run_full_demo
    out = io.StringIO()
    status = run_full_demo(own_config, out)
    transcript = out.getvalue()
    assert status == 0, transcript[-3000:]
    assert "2026-Q3-Q3新品推广项目" in transcript
    for moment in ("李娜 reassigns T-2", "blocker", "escalated to the manager", "archived"):
        assert moment in transcript
    kept = own_config.parent / "var" / "demo"  # where `maild lessons -c` finds it, and says so
    shown = next(line.split("maild lessons -c ", 1)[1].strip()
                 for line in transcript.splitlines() if "maild lessons -c " in line)
    assert (Path.cwd() / shown).resolve() == (kept / "config.toml").resolve()
    assert (kept / "archive" / "index.jsonl").is_file()


def test_digest_preview_shows_what_is_due_without_sending_or_recording(convo):
    from maild.app.reports import digest_preview

    _kickoff(convo)
    convo.service.store.commit()
    at = datetime(2026, 8, 6, 9, 5, tzinfo=TZ)  # T-1 overdue, T-2 unconfirmed
    first = digest_preview(convo.config, at)
    assert {(p["kind"], p["to"][0]) for p in first} >= {("owner_digest", WANG), ("digest", LI)}
    (wang,) = [p for p in first if p["to"] == [WANG]]  # the missed weekly digest, with T-1's reminder
    assert "到期，尚未完成" in wang["text"]
    assert [r[2].split("@")[0] for r in wang["records"][1:]] == ["overdue"]
    assert digest_preview(convo.config, at) == first  # nothing was recorded
    assert [convo.inbox(a) for a in (LI, WANG, ZHAO)] == [[], [], []]  # nothing was sent


def test_lessons_page_collects_improvements_of_closed_projects(convo):
    from maild.adapters import archive

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
