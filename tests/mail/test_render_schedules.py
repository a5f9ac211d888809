"""Rendering the schedule emails (digest, owner_digest, reminder, escalation) in both languages."""

from __future__ import annotations

import email
import email.policy
import re
import tomllib
from datetime import datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

import pytest

from maild.core.model import Notice, Person
from maild.core.people import Directory
from maild.core.planner import Cadence, ScheduleRules, load_schedule_rules, plan
from maild.core.workcal import load_calendar
from maild.mail.mime import to_mime
from maild.mail.render import Renderer

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 8, 12, 9, 0, tzinfo=TZ)
SCRIPT = "<script>alert(1)</script>"
JINJA = "{{ 7*7 }}"
DATA = tomllib.loads((ROOT / "rules" / "schedules.toml").read_text("utf-8"))
RULES = load_schedule_rules({**DATA, "owner_digest": {"cadence": "daily"}})
# Reminders and escalations only: at 09:00 the digests would carry those of their readers.
LEVELS_ONLY = ScheduleRules(digest=Cadence("off"), owner_digest=Cadence("off"),
                            levels=RULES.levels, emergency_contact=RULES.emergency_contact)
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


def planned_notices(language: str, rules: ScheduleRules = RULES) -> list[Notice]:
    data = items(language)
    _, state = plan(data, datetime(2026, 8, 11, 9, 0, tzinfo=TZ), rules, CAL, PEOPLE, {})
    data[0]["tasks"][14]["progress"] = 99  # a change since the last digest
    data[0]["tasks"][2]["state"] = "blocked"
    out, _ = plan(data, NOW, rules, CAL, PEOPLE, state)
    return [p.notice for p in out]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_schedule_template_renders_safely(renderer: Renderer, language: str) -> None:
    notices = planned_notices(language) + planned_notices(language, LEVELS_ONLY)
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


def mailto_links(html: str) -> list[tuple[str, str, str]]:
    """(address, subject, body) of every mailto: link, in order."""
    found = []
    for href in re.findall(r'href="(mailto:[^"]+)"', html):
        url = urlsplit(unescape(href))
        query = parse_qs(url.query)
        found.append((unquote(url.path), query["subject"][0], query["body"][0]))
    return found


@pytest.mark.parametrize("language", ["zh", "en"])
def test_one_email_for_several_levels_gives_each_task_its_own_buttons(
        renderer: Renderer, language: str) -> None:
    notices = planned_notices(language, LEVELS_ONLY)
    for notice in (n for n in notices if n.context.get("entries")):
        entries = notice.context["entries"]
        addresses = {e["ref"]: {a: f"collab+{e['task']['id'].lower()}-{a}@corp.example"
                                for a in ("reply", *e["actions"])} for e in entries}
        out = renderer.render(notice, message_id="b@corp.example", date=NOW, reply_address=None,
                              task_addresses=addresses)
        assert SCRIPT not in out.html and "&lt;script&gt;" in out.html
        assert JINJA in out.text and "\n" not in out.subject
        # one button per action of each task, bound to that task (status: its reply address)
        links = mailto_links(out.html)
        assert [address for address, _, _ in links] == [
            addresses[e["ref"]]["reply" if a == "status" else a]
            for e in entries for a in e["actions"]]
        assert [subject.split("] ")[0] for _, subject, _ in links] == [
            f"Re: [{e['item']['id']} {e['task']['id']}" for e in entries for _a in e["actions"]]
        # the text part gives each task's reply address, in the same order
        positions = [out.text.index(addresses[e["ref"]]["reply"]) for e in entries]
        assert positions == sorted(positions)
        for e in entries:
            assert f"{e['item']['id']} {e['task']['id']}" in out.text


@pytest.mark.parametrize("language", ["zh", "en"])
def test_without_reply_addresses_each_task_is_named_by_its_tag(renderer: Renderer,
                                                               language: str) -> None:
    notice = next(n for n in planned_notices(language, LEVELS_ONLY) if n.template == "reminder")
    assert notice.item_id == "MD-0012"  # all of one item: the subject carries its tag
    out = renderer.render(notice, message_id="b@corp.example", date=NOW, reply_address=None)
    assert out.subject.startswith("[MD-0012] ")
    assert {address for address, _, _ in mailto_links(out.html)} == {"collab@corp.example"}
    for e in notice.context["entries"]:
        assert f"[{e['item']['id']} {e['task']['id']}]" in out.text


def test_owner_and_follower_see_what_is_theirs_to_do(renderer: Renderer) -> None:
    notices = planned_notices("en", LEVELS_ONLY)
    mine = next(n for n in notices if n.template == "reminder")
    theirs = next(n for n in notices if n.template == "escalation" and n.context.get("entries")
                  and n.to == ("li.na@corp.example",))
    out = renderer.render(mine, message_id="m@corp.example", date=NOW, reply_address=None)
    assert out.text.startswith(f"{mine.context['counts']['mine']} of your tasks need you.")
    assert {body for _, _, body in mailto_links(out.html)} <= {"progress 50%", "done", "confirm",
                                                              "decline: "}
    out = renderer.render(theirs, message_id="t@corp.example", date=NOW, reply_address=None)
    # the initiator's own buttons for each task she follows, then its status (initiatorbuttons)
    bodies = [(subject.split("]")[0].split()[-1], body)
              for _, subject, body in mailto_links(out.html)]
    assert bodies == [(e["task"]["id"], {"reassign": f"reassign {e['task']['id']} to ",
                                         "reschedule": "reschedule to ", "accept": "accept",
                                         "status": "status"}[a])
                      for e in theirs.context["entries"] for a in e["actions"]]
    assert {e["actions"][-1] for e in theirs.context["entries"]} == {"status"}
    assert "Tasks you follow" in out.text and "Your tasks" not in out.text
    # the manager's level sentence for the same task follows the overdue one
    first = theirs.context["entries"][0]
    assert [lv["rule"] for lv in first["levels"]] == ["overdue", "overdue_manager"]


@pytest.mark.parametrize("language", ["zh", "en"])
def test_digest_rows_carry_the_levels_due_with_their_buttons(renderer: Renderer,
                                                             language: str) -> None:
    notices = planned_notices(language)
    owner = next(n for n in notices if n.template == "owner_digest")
    marked = [r for r in owner.context["rows"] if "levels" in r]
    assert marked and owner.context["counts"]["reminded"] == len(marked)
    addresses = {r["ref"]: {a: f"collab+{r['task_id'].lower()}-{a}@corp.example"
                            for a in ("reply", *r["actions"])} for r in marked}
    out = renderer.render(owner, message_id="o@corp.example", date=NOW, reply_address=None,
                          task_addresses=addresses)
    assert [address for address, _, _ in mailto_links(out.html)] == [
        addresses[r["ref"]][a] for r in marked for a in r["actions"]]
    for r in marked:
        assert addresses[r["ref"]]["reply"] in out.text
    assert SCRIPT not in out.html and "&lt;script&gt;" in out.html
    digest = next(n for n in notices if n.template == "digest" and n.to == ("li.na@corp.example",))
    out = renderer.render(digest, message_id="d@corp.example", date=NOW, reply_address=None)
    shown = [r for s in digest.context["sections"] for r in s["rows"] if "actions" in r]
    assert [(subject.split("]")[0].split()[-1], body)
            for _, subject, body in mailto_links(out.html)] == [
        (r["task_id"], _body(language, a, r["task_id"])) for r in shown for a in r["actions"]]
    # a row with levels ends with 查看状态; the others only have what needs the initiator
    assert all(r["actions"][-1] == "status" for r in shown if "levels" in r)
    assert any("levels" not in r for r in shown)
    assert ("按提醒规则" if language == "zh" else "By the reminder rules") in out.text


def _body(language: str, action: str, task_id: str) -> str:
    """The pre-filled body of a row's button."""
    words = {"zh": {"reassign": f"转派 {task_id} 给 ", "reschedule": "改期至 ", "accept": "同意",
                    "status": "状态"},
             "en": {"reassign": f"reassign {task_id} to ", "reschedule": "reschedule to ",
                    "accept": "accept", "status": "status"}}
    return words[language][action]


# -- the initiator's buttons, signed as the service signs them -----------------------------------

SECRET = b"render-test"
LABELS = {"zh": {"reassign": "转派", "reschedule": "改期", "accept": "同意延期", "close": "结项",
                 "withdraw": "撤销", "status": "查看状态"},
          "en": {"reassign": "Reassign", "reschedule": "Move deadline", "accept": "Accept delay",
                 "close": "Close", "withdraw": "Withdraw", "status": "Status"}}


def initiator_items(language: str) -> list[dict[str, Any]]:
    """李娜's project on Thursday 2026-08-06: T-1 overdue, T-2 unconfirmed, T-3 a delay asked
    for, T-4 declined, T-5 going to plan; and a task of hers all done."""
    def t(n: int, state: str, deadline: str, **extra: Any) -> dict[str, Any]:
        return {"id": f"T-{n}", "name": f"渠道任务 {n} {SCRIPT}", "owner": "wang.zhe@corp.example",
                "owner_name": "王喆", "state": state, "progress": 0, "round": 1,
                "deadline": f"2026-08-{deadline}T18:00:00+08:00",
                "confirmed_at": None if state == "awaiting_confirmation" else
                "2026-08-03T10:00:00+08:00", "updated_at": "2026-08-03T10:00:00+08:00", **extra}
    project = {"id": "MD-0021", "kind": "project", "title": f"渠道拓展 {SCRIPT}",
               "language": language, "state": "open", "initiator": "li.na@corp.example",
               "initiator_name": "李娜", "created_at": "2026-08-03T10:00:00+08:00",
               "root_message_id": "root.21@corp.example",
               "tasks": [t(1, "in_progress", "05"), t(2, "awaiting_confirmation", "20"),
                         t(3, "delayed", "21", requested_deadline="2026-08-28T18:00:00+08:00"),
                         t(4, "declined", "22"), t(5, "in_progress", "28")]}
    done = {**project, "id": "MD-0022", "title": "展会物料", "root_message_id": "root.22@x",
            "tasks": [t(1, "done", "05")]}
    return [project, done]


def signed(renderer: Renderer, notice: Notice) -> Any:
    """`notice` rendered for its reader with the addresses the service signs for it."""
    from datetime import date

    from maild.app.wiring import notice_addresses
    message_id = f"maild.{notice.template}@corp.example"
    reply, actions, per_task = notice_addresses(SECRET, "collab@corp.example", notice,
                                                notice.to[0], date(2026, 8, 6), message_id)
    return renderer.render(notice, message_id=message_id, date=NOW, reply_address=reply,
                           action_addresses=actions, task_addresses=per_task)


def button_tokens(out: Any, reader: str) -> list[tuple[str, str, str | None, str]]:
    """(label, item, task, action) of each button, read back from its token as maild reads a
    reply: from its address, or (no plus addressing) from its subject's tag."""
    from maild.core import tokens
    found = []
    for href in re.findall(r'<a href="(mailto:[^"]+)"[^>]*>([^<]+)</a>', out.html):
        url = urlsplit(unescape(href[0]))
        subject = parse_qs(url.query)["subject"][0]
        token = tokens.find(SECRET, [unquote(url.path), *tokens.subject_addresses(subject)], reader)
        assert token is not None, href
        found.append((unescape(href[1]), token.item_id, token.task_id, token.action))
    return found


@pytest.fixture(scope="module")
def tagging() -> Renderer:
    """A server without plus addressing: tokens ride in subject tags."""
    return Renderer(ROOT / "templates", timezone="Asia/Shanghai",
                    inbox_address="collab@corp.example", from_name="maild 协作助手",
                    subject_tokens=True)


@pytest.mark.parametrize("plus", [True, False], ids=["plus", "subject-tags"])
@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_row_of_the_initiators_digest_has_her_buttons(renderer: Renderer,
                                                            tagging: Renderer, language: str,
                                                            plus: bool) -> None:
    rules = ScheduleRules(digest=RULES.digest, owner_digest=Cadence("off"), levels=(),
                          emergency_contact="")
    planned, _ = plan(initiator_items(language), datetime(2026, 8, 6, 9, 0, tzinfo=TZ), rules,
                      CAL, PEOPLE, {})
    (notice,) = [p.notice for p in planned]
    out = signed(renderer if plus else tagging, notice)
    label = LABELS[language]
    assert button_tokens(out, "li.na@corp.example") == [
        (label["close"], "MD-0022", None, "close"),  # all its tasks done
        (label["accept"], "MD-0021", "T-3", "accept"),  # a delay asked for
        (label["reschedule"], "MD-0021", "T-3", "reschedule"),
        (label["reassign"], "MD-0021", "T-4", "reassign"),  # declined
        (label["reschedule"], "MD-0021", "T-1", "reschedule"),  # overdue
        (label["reassign"], "MD-0021", "T-1", "reassign"),
        (label["reassign"], "MD-0021", "T-2", "reassign")]  # unconfirmed
    bodies = [parse_qs(urlsplit(unescape(h)).query)["body"][0].replace("\r\n", "\n")
              for h in re.findall(r'href="(mailto:[^"]+)"', out.html)]
    zh = language == "zh"
    assert bodies[0].startswith("结项\n是否达成目标：" if zh else "close\nGoal achieved:")
    assert bodies[1:4] == (["同意", "改期至 ", "转派 T-4 给 "] if zh else
                           ["accept", "reschedule to ", "reassign T-4 to "])
    # the text part: under each such row (and the finished item), where to write and what
    said = [line.strip() for line in out.text.splitlines()
            if line.strip().startswith(("回复到：", "写信到：", "Reply to:", "Write to:"))]
    assert len(said) == 5 and all(("@" in line) for line in said)
    if plus:
        assert all("collab+md002" in line for line in said)
    else:
        assert all("collab@corp.example" in line and "#" in line for line in said)
        assert "collab+" not in out.text and "collab+" not in out.html
    assert ("改期至 日期 / 转派 给 新负责人" if language == "zh"
            else "reschedule to DATE / reassign to NEW OWNER") in out.text
    assert SCRIPT not in out.html


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_initiators_own_reminders_carry_her_buttons(renderer: Renderer,
                                                        language: str) -> None:
    items = initiator_items(language)
    items[0]["tasks"][1]["assigned_at"] = "2026-08-05T10:00:00+08:00"  # T-2 given this morning
    at_deadline = datetime(2026, 8, 5, 18, 0, tzinfo=TZ)  # T-1's overdue level: owner, cc her
    planned, _ = plan(items, at_deadline, LEVELS_ONLY, CAL, PEOPLE, {})
    hers = [p.notice for p in planned if p.notice.to == ("li.na@corp.example",)]
    (single,) = [n for n in hers if not n.context.get("entries")]
    assert single.cc == () and all("li.na@corp.example" not in p.notice.cc for p in planned)
    label = LABELS[language]
    assert button_tokens(signed(renderer, single), "li.na@corp.example") == [
        (label["reschedule"], "MD-0021", "T-1", "reschedule"),
        (label["reassign"], "MD-0021", "T-1", "reassign"),
        (label["status"], "MD-0021", "T-1", "reply")]
    # several levels for her in one run: one email, each task with its own buttons
    items[0]["tasks"][1]["assigned_at"] = "2026-08-03T10:00:00+08:00"  # over 16 working hours
    planned, _ = plan(items, datetime(2026, 8, 5, 18, 0, tzinfo=TZ), LEVELS_ONLY, CAL, PEOPLE, {})
    (bundle,) = [p.notice for p in planned if p.notice.to == ("li.na@corp.example",)]
    assert [e["task"]["id"] for e in bundle.context["entries"]] == ["T-1", "T-2"]
    assert button_tokens(signed(renderer, bundle), "li.na@corp.example") == [
        (label["reschedule"], "MD-0021", "T-1", "reschedule"),
        (label["reassign"], "MD-0021", "T-1", "reassign"),
        (label["status"], "MD-0021", "T-1", "reply"),
        (label["reassign"], "MD-0021", "T-2", "reassign"),
        (label["status"], "MD-0021", "T-2", "reply")]
