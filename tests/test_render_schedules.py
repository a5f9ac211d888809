"""Rendering the schedule emails (digest, owner_digest, reminder, escalation) in both languages."""

from __future__ import annotations

import email
import email.policy
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maild.model import Notice, Person
from maild.people import Directory
from maild.planner import load_schedule_rules, plan
from maild.render import Renderer, to_mime
from maild.workcal import load_calendar

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 8, 12, 9, 0, tzinfo=TZ)
SCRIPT = "<script>alert(1)</script>"
JINJA = "{{ 7*7 }}"
DATA = tomllib.loads((ROOT / "rules" / "schedules.toml").read_text("utf-8"))
RULES = load_schedule_rules({**DATA, "owner_digest": {"cadence": "daily"}})
CAL = load_calendar(DATA, "Asia/Shanghai")
PEOPLE = Directory((Person("王喆", "wang.zhe@corp.example", "产品部",
                           manager="alex.morgan@corp.example"),))
STATES = ("awaiting_confirmation", "in_progress", "blocked", "declined", "delayed", "done",
          "not_started")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(ROOT / "templates", timezone="Asia/Shanghai",
                    inbox_address="collab@corp.example", from_name="maild 协作助手")


def items(language: str, rows: int = 30) -> list[dict[str, Any]]:
    tasks = []
    for n in range(1, rows + 1):
        state = STATES[n % len(STATES)]
        tasks.append({
            "id": f"T-{n}", "name": f"新品核心卖点提炼 {n} {SCRIPT} {JINJA}",
            "owner": "wang.zhe@corp.example", "owner_name": f"王喆 {SCRIPT}",
            "owner_department": "产品部", "deadline": f"2026-08-{(n % 20) + 1:02d}T18:00:00+08:00",
            "state": state, "progress": (n * 7) % 100, "round": 1,
            "confirmed_at": None if state == "awaiting_confirmation" else "2026-08-03T10:00:00+08:00",
            "updated_at": "2026-08-03T10:00:00+08:00", "deliverable": f"说明 {SCRIPT}",
        })
    item = {"id": "MD-0012", "kind": "project", "title": f"Q3新品推广项目 {SCRIPT} {JINJA}",
            "language": language, "state": "open", "initiator": "li.na@corp.example",
            "initiator_name": f"李娜 {SCRIPT}", "created_at": "2026-08-03T10:00:00+08:00",
            "root_message_id": "root.1@corp.example", "tasks": tasks}
    urgent = {**item, "id": "MD-0013", "initiator": "ops@corp.example", "kind": "emergency", "title": "支付系统故障",
              "created_at": "2026-08-12T08:30:00+08:00",
              "tasks": [{**tasks[0], "state": "awaiting_confirmation",
                         "deadline": "2026-08-12T17:00:00+08:00",
                         "updated_at": "2026-08-12T08:30:00+08:00"}]}
    return [item, urgent]


def planned_notices(language: str) -> list[Notice]:
    data = items(language)
    _, state = plan(data, datetime(2026, 8, 11, 9, 0, tzinfo=TZ), RULES, CAL, PEOPLE, {})
    data[0]["tasks"][14]["progress"] = 99  # a change since the last digest
    data[0]["tasks"][2]["state"] = "blocked"
    out, _ = plan(data, NOW, RULES, CAL, PEOPLE, state)
    return [p.notice for p in out]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_schedule_template_renders_safely(renderer: Renderer, language: str) -> None:
    notices = planned_notices(language)
    kinds = {n.template for n in notices}
    assert kinds == {"digest", "owner_digest", "reminder", "escalation"}
    for n, notice in enumerate(notices):
        out = renderer.render(notice, message_id=f"m{n}@corp.example", date=NOW,
                              reply_address=None)
        assert SCRIPT not in out.html and "&lt;script&gt;" in out.html
        assert "49" not in out.subject and JINJA in out.text or notice.template == "escalation"
        assert "\n" not in out.subject and out.text.endswith("\n")
        raw = to_mime(out, from_address="collab@corp.example", from_name="maild")
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        # stdlib folds a long ASCII subject as "Subject:\r\n [maild] …": unfolded, a space leads
        assert parsed["Subject"].strip() == out.subject
        assert parsed["Auto-Submitted"] == "auto-generated"


@pytest.mark.parametrize("language, subject, words", [
    ("zh", "[maild] Q3新品推广项目", ["需要你处理", "已逾期", "上次摘要以来有变化", "其余任务", "逾期",
                                   "未确认", "受阻", "进度 5% → 99%"]),
    ("en", "[maild] Q3新品推广项目", ["Needs your action", "Overdue", "Changed since the last digest",
                                   "Everything else", "Unconfirmed", "Blocked",
                                   "progress 5% → 99%"]),
], ids=["zh", "en"])
def test_digest_reads_at_a_glance(renderer: Renderer, language: str, subject: str,
                                  words: list[str]) -> None:
    notice = next(n for n in planned_notices(language) if n.template == "digest")
    assert len([r for s in notice.context["sections"] for r in s["rows"]]) == 30
    out = renderer.render(notice, message_id="d@corp.example", date=NOW, reply_address=None)
    assert out.subject.startswith(subject)
    assert ("逾期" if language == "zh" else "overdue") in out.subject
    for word in words:
        assert word in out.text, word
    order = [out.text.index(w) for w in words[:4]]
    assert order == sorted(order)
    assert out.html.count("<tr>") >= 30


@pytest.mark.parametrize("language", ["zh", "en"])
def test_owner_digest_lists_soonest_first(renderer: Renderer, language: str) -> None:
    notice = next(n for n in planned_notices(language) if n.template == "owner_digest")
    out = renderer.render(notice, message_id="o@corp.example", date=NOW, reply_address=None)
    rows = notice.context["rows"]
    positions = [out.text.index(f"{r['item_id']} {r['task_id']} ") for r in rows]
    assert positions == sorted(positions)


@pytest.mark.parametrize("reason", ["unconfirmed_hours", "before_deadline_hours", "overdue",
                                    "overdue_working_days", "emergency_unconfirmed_minutes",
                                    "emergency_update_hours", "emergency_past_eta"])
@pytest.mark.parametrize("role", ["owner", "initiator", "manager"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_reason_and_audience(renderer: Renderer, reason: str, role: str,
                                   language: str) -> None:
    item = items(language, rows=3)[0]
    context = {"item": item, "task": item["tasks"][0], "level": f"x@{reason}", "rule": "x",
               "reason": reason, "threshold": 8, "due_at": NOW.isoformat(),
               "since": NOW.isoformat(), "recipient_role": role,
               "missing_role": "manager" if role == "initiator" else "",
               "owner": {"name": "王喆", "address": "wang.zhe@corp.example"},
               "overdue_days": 2, "progress_below": 80, "emergency": reason.startswith("em")}
    template = "reminder" if role == "owner" else "escalation"
    notice = Notice(template=template, to=("a@corp.example",), language=language,
                    context=context, item_id="MD-0012", task_id="T-1")
    out = renderer.render(notice, message_id="r@corp.example", date=NOW,
                          reply_address="collab+tok@corp.example")
    assert out.subject.startswith("[MD-0012] ")
    assert SCRIPT not in out.html
    summary = out.text.splitlines()[0]
    assert "T-1" in summary or "新品" in summary
    if role == "initiator":
        assert ("上级" in out.text) if language == "zh" else ("manager" in out.text)
