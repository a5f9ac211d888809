"""The planner: which reminders, escalations and digests are due, each once, from stored times."""

from __future__ import annotations

import copy
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maild.model import Person
from maild.people import Directory
from maild.planner import Planned, ScheduleRules, load_schedule_rules, plan
from maild.workcal import load_calendar

TZ = ZoneInfo("Asia/Shanghai")
RULES_DATA = tomllib.loads(
    (Path(__file__).resolve().parent.parent / "rules" / "schedules.toml").read_text("utf-8"))
RULES = load_schedule_rules(RULES_DATA)
CAL = load_calendar(RULES_DATA, "Asia/Shanghai")
PEOPLE = Directory((
    Person("李娜", "li.na@corp.example", "市场部", manager="alex.morgan@corp.example"),
    Person("王喆", "wang.zhe@corp.example", "产品部", manager="alex.morgan@corp.example"),
    Person("赵磊", "zhao.lei@corp.example", "销售部"),  # no manager on file
    Person("Alex Morgan", "alex.morgan@corp.example", "总经办"),
))
INITIATOR, OWNER, CONTACT = "li.na@corp.example", "wang.zhe@corp.example", "alex.morgan@corp.example"


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


CREATED, DUE, ETA = at(2026, 9, 30, 14), at(2026, 10, 9, 18), at(2026, 10, 4, 2)


def task(n: int = 1, owner: str = OWNER, state: str = "awaiting_confirmation", progress: int = 0,
         deadline: datetime = DUE, updated: datetime = CREATED,
         **extra: Any) -> dict[str, Any]:
    return {"id": f"T-{n}", "name": f"任务{n}", "owner": owner, "owner_name": "王喆",
            "deadline": deadline.isoformat(), "state": state, "progress": progress,
            "confirmed_at": None if state == "awaiting_confirmation" else updated.isoformat(),
            "updated_at": updated.isoformat(), "round": 1, **extra}


def item(*tasks: dict[str, Any], kind: str = "project", created: datetime = CREATED,
         item_id: str = "MD-0001", initiator: str = INITIATOR) -> dict[str, Any]:
    return {"id": item_id, "kind": kind, "title": "Q3新品推广项目", "language": "zh", "state": "open",
            "initiator": initiator, "initiator_name": "李娜", "created_at": created.isoformat(),
            "root_message_id": f"{item_id}@corp.example", "tasks": list(tasks or (task(),))}


LEVELS = ScheduleRules(digest=RULES.digest, owner_digest=type(RULES.owner_digest)("off"),
                       levels=RULES.levels, emergency_contact=RULES.emergency_contact)


def keys(planned: list[Planned]) -> list[str]:
    return sorted(p.record[2].split("@")[0] for p in planned
                  if p.record[0] not in ("digest", "owner_digest"))


def record(items: list[dict[str, Any]], planned: list[Planned], now: datetime) -> None:
    """What the service does after enqueueing: write each record into the task's `sent` map."""
    for p in planned:
        item_id, task_id, key = p.record
        for it in items:
            for t in it["tasks"]:
                if it["id"] == item_id and t["id"] == task_id:
                    t.setdefault("sent", {})[key] = now.isoformat()


def run(items: list[dict[str, Any]], now: datetime, rules: ScheduleRules = LEVELS,
        state: dict[str, Any] | None = None) -> tuple[list[Planned], dict[str, Any]]:
    return plan(items, now, rules, CAL, PEOPLE, state or {})


# Task created Wed 2026-09-30 14:00, due Fri 2026-10-09 18:00; National Day is Oct 1–7 and
# Sat Oct 10 is a make-up workday. 8 working hours later is Thu Oct 8 13:00, not Oct 1 13:00.
@pytest.mark.parametrize("state, progress, now, expected", [
    ("awaiting_confirmation", 0, at(2026, 10, 3, 10), []),
    ("awaiting_confirmation", 0, at(2026, 10, 8, 12, 59), []),
    ("awaiting_confirmation", 0, at(2026, 10, 8, 13), ["unconfirmed_owner"]),
    ("awaiting_confirmation", 0, at(2026, 10, 8, 17), ["unconfirmed_owner"]),
    ("awaiting_confirmation", 0, at(2026, 10, 9, 12), ["deadline_near", "unconfirmed_initiator",
                                                       "unconfirmed_owner"]),
    ("not_started", 0, at(2026, 10, 8, 18), []),
    ("in_progress", 50, at(2026, 10, 9, 9), ["deadline_near"]),   # 9 working hours before
    ("in_progress", 80, at(2026, 10, 9, 9), []),
    ("in_progress", 50, at(2026, 10, 9, 18), ["overdue"]),
    ("in_progress", 50, at(2026, 10, 12, 17, 59), ["overdue"]),
    ("in_progress", 50, at(2026, 10, 12, 18), ["overdue", "overdue_manager"]),
    ("done", 100, at(2026, 10, 20, 10), []),
    ("declined", 0, at(2026, 10, 20, 10), []),
], ids=["holiday-not-working-time", "one-minute-early", "owner-at-8h", "owner-only",
        "initiator-at-16h", "confirmed-no-reminder", "deadline-near-low-progress",
        "deadline-near-enough-progress", "overdue-at-deadline", "manager-not-yet",
        "manager-after-2-working-days-incl-makeup-saturday", "done", "declined"])
def test_levels_fire_at_their_time(state: str, progress: int, now: datetime,
                                   expected: list[str]) -> None:
    planned, _ = run([item(task(state=state, progress=progress))], now)
    assert keys(planned) == expected


def test_recipients_threading_and_context() -> None:
    items = [item(task(state="in_progress", progress=10))]
    planned, _ = run(items, at(2026, 10, 12, 18))
    by_key = {p.record[2].split("@")[0]: p.notice for p in planned}
    overdue, manager = by_key["overdue"], by_key["overdue_manager"]
    assert (overdue.template, overdue.to, overdue.cc) == ("reminder", (OWNER,), (INITIATOR,))
    assert (manager.template, manager.to, manager.cc) == ("escalation", (CONTACT,), (INITIATOR,))
    assert manager.context["overdue_days"] == 2
    assert manager.context["recipient_role"] == "manager"
    assert manager.item_id == "MD-0001" and manager.task_id == "T-1"
    assert manager.in_reply_to == "MD-0001@corp.example"
    assert manager.language == "zh"


def test_no_manager_on_file_goes_to_the_initiator() -> None:
    items = [item(task(owner="zhao.lei@corp.example", state="in_progress"))]
    planned, _ = run(items, at(2026, 10, 12, 18))
    manager = next(p.notice for p in planned if p.record[2].startswith("overdue_manager"))
    assert manager.to == (INITIATOR,) and manager.cc == ()
    assert manager.context["missing_role"] == "manager"


def test_each_level_once_then_recorded() -> None:
    items = [item(task())]
    first, _ = run(items, at(2026, 10, 8, 13))
    assert keys(first) == ["unconfirmed_owner"]
    record(items, first, at(2026, 10, 8, 13))
    assert keys(run(items, at(2026, 10, 8, 15))[0]) == []
    assert keys(run(items, at(2026, 10, 9, 12))[0]) == ["deadline_near", "unconfirmed_initiator"]


def test_reassignment_and_new_deadline_rearm_levels() -> None:
    items = [item(task(state="in_progress"))]
    planned, _ = run(items, at(2026, 10, 9, 18))
    record(items, planned, at(2026, 10, 9, 18))
    items[0]["tasks"][0]["deadline"] = at(2026, 10, 13, 18).isoformat()  # a delay was granted
    assert keys(run(items, at(2026, 10, 13, 18))[0]) == ["overdue"]
    t = items[0]["tasks"][0]
    t.update(state="awaiting_confirmation", round=2, updated_at=at(2026, 10, 13, 9).isoformat())
    t["sent"]["unconfirmed_owner@r1"] = "2026-10-01T00:00:00+08:00"
    assert "unconfirmed_owner" in keys(run(items, at(2026, 10, 13, 17))[0])


def test_quiet_hours_and_holidays_defer_but_do_not_drop() -> None:
    items = [item(task(state="in_progress", progress=90, deadline=at(2026, 9, 30, 22)))]
    assert keys(run(items, at(2026, 9, 30, 22, 30))[0]) == []          # quiet hours
    assert keys(run(items, at(2026, 10, 2, 10))[0]) == []              # National Day
    assert keys(run(items, at(2026, 10, 8, 9))[0]) == ["overdue"]      # first allowed moment


def emergency(state: str = "awaiting_confirmation", confirmed: datetime | None = None,
              eta: datetime = ETA) -> dict[str, Any]:
    t = task(state=state, deadline=eta, updated=confirmed or at(2026, 10, 3, 22))
    return item(t, kind="emergency", created=at(2026, 10, 3, 22))


@pytest.mark.parametrize("state, confirmed, now, expected", [
    ("awaiting_confirmation", None, at(2026, 10, 3, 22, 14), []),
    ("awaiting_confirmation", None, at(2026, 10, 3, 22, 15), ["emergency_unconfirmed"]),
    ("not_started", at(2026, 10, 3, 22, 20), at(2026, 10, 4, 0, 19), []),
    ("not_started", at(2026, 10, 3, 22, 20), at(2026, 10, 4, 0, 20), ["emergency_update"]),
    ("in_progress", at(2026, 10, 3, 22, 20), at(2026, 10, 4, 2), ["emergency_past_eta",
                                                                   "emergency_update"]),
], ids=["14-minutes", "15-minutes-on-a-holiday-night", "update-not-yet", "update-after-2h",
        "past-eta"])
def test_emergencies_run_on_minutes_and_ignore_quiet_hours(
        state: str, confirmed: datetime | None, now: datetime, expected: list[str]) -> None:
    assert keys(run([emergency(state, confirmed)], now)[0]) == expected


def test_emergency_recipients_and_repeating_updates() -> None:
    items = [emergency("awaiting_confirmation")]
    planned, _ = run(items, at(2026, 10, 3, 22, 15))
    notice = planned[0].notice
    assert (notice.template, notice.to, notice.cc) == ("escalation", (INITIATOR,), (CONTACT,))
    items = [emergency("in_progress", at(2026, 10, 3, 22, 20), eta=at(2026, 10, 5, 12))]
    first, _ = run(items, at(2026, 10, 4, 0, 20))
    record(items, first, at(2026, 10, 4, 0, 20))
    assert keys(run(items, at(2026, 10, 4, 1))[0]) == []
    second, _ = run(items, at(2026, 10, 4, 2, 20))
    assert keys(second) == ["emergency_update"] and second[0].record != first[0].record
    record(items, second, at(2026, 10, 4, 2, 20))
    # down for six hours: one reminder, not three
    assert keys(run(items, at(2026, 10, 4, 8, 30))[0]) == ["emergency_update"]


def test_three_days_down_catch_up_once() -> None:
    items = [item(task(1, state="in_progress", progress=10, deadline=at(2026, 8, 5, 18)),
                  task(2, owner="zhao.lei@corp.example", deadline=at(2026, 8, 20, 18)),
                  created=at(2026, 8, 3, 10))]
    for t in items[0]["tasks"]:
        t["updated_at"] = at(2026, 8, 3, 10).isoformat()
    first, state = run(items, at(2026, 8, 3, 11), RULES)          # Mon: the first digest
    assert [p.record[0] for p in first] == ["digest", "owner_digest", "owner_digest"]
    planned, state = run(items, at(2026, 8, 10, 9, 5), RULES, state)  # down until next Monday
    digests = [p for p in planned if p.record[0] == "digest"]
    assert len(digests) == 1
    # deadline_near fell due on Wed 09:00 but the deadline has passed since: overdue replaces it
    assert keys(planned) == ["overdue", "overdue_manager", "unconfirmed_initiator",
                             "unconfirmed_owner"]
    record(items, planned, at(2026, 8, 10, 9, 5))
    again, _ = run(items, at(2026, 8, 10, 9, 30), RULES, state)
    assert again == []


def digest_of(planned: list[Planned]) -> dict[str, Any]:
    (notice,) = [p.notice for p in planned if p.notice.template == "digest"]
    return dict(notice.context)


def test_digest_marks_rows_orders_sections_and_reports_changes() -> None:
    items = [item(task(1, state="in_progress", progress=40, deadline=at(2026, 8, 5, 18)),
                  task(2, deadline=at(2026, 8, 20, 18)),
                  task(3, state="blocked", progress=20, deadline=at(2026, 8, 21, 18)),
                  task(4, state="in_progress", progress=10, deadline=at(2026, 8, 28, 18)),
                  created=at(2026, 8, 3, 10))]
    planned, state = run(items, at(2026, 8, 6, 9), RULES)
    ctx = digest_of(planned)
    sections = {s["key"]: [r["task_id"] for r in s["rows"]] for s in ctx["sections"]}
    assert list(sections) == ["action", "overdue", "rest"]
    assert sections == {"action": ["T-3"], "overdue": ["T-1"], "rest": ["T-2", "T-4"]}
    rows = {r["task_id"]: r for s in ctx["sections"] for r in s["rows"]}
    assert rows["T-1"]["flags"] == ["overdue"] and rows["T-2"]["flags"] == ["unconfirmed"]
    assert rows["T-3"]["flags"] == ["blocked"] and rows["T-3"]["action"] == "blocked"
    assert ctx["counts"] | {} == {"action": 1, "overdue": 1, "unconfirmed": 1, "blocked": 1,
                                  "changed": 0, "total": 4}
    assert ctx["since"] is None and ctx["title"] == "Q3新品推广项目"

    items[0]["tasks"][3]["progress"] = 60
    items[0]["tasks"].append(task(5, state="not_started", deadline=at(2026, 9, 1, 18)))
    planned, state = run(items, at(2026, 8, 7, 9), RULES, state)
    ctx = digest_of(planned)
    changed = next(s for s in ctx["sections"] if s["key"] == "changed")["rows"]
    assert [(r["task_id"], r["changes"]) for r in changed] == [
        ("T-4", [{"field": "progress", "old": "10", "new": "60"}]),
        ("T-5", [{"field": "new", "old": "", "new": ""}])]
    assert ctx["since"] == at(2026, 8, 6, 9).isoformat()


def test_no_digest_when_nothing_to_report_and_one_per_slot() -> None:
    items = [item(task(state="in_progress", progress=30, deadline=at(2026, 8, 28, 18)),
                  created=at(2026, 8, 3, 10))]
    planned, state = run(items, at(2026, 8, 6, 9), RULES)
    assert [p for p in planned if p.record[0] == "digest"] == []
    assert state["digest"][INITIATOR]["done"] == "2026-08-06"
    items[0]["tasks"][0]["progress"] = 50
    planned, state = run(items, at(2026, 8, 6, 15), RULES, state)   # slot used up today
    assert [p for p in planned if p.record[0] == "digest"] == []
    assert run(items, at(2026, 8, 7, 8, 59), RULES, state)[0] == []   # before the digest time
    planned, _ = run(items, at(2026, 8, 7, 9), RULES, state)
    assert [p.record for p in planned] == [("digest", INITIATOR, "2026-08-07")]


@pytest.mark.parametrize("cadence, days", [("daily", 1), ("every_2_days", 2)],
                         ids=["daily", "every-2-days"])
def test_digest_cadence_and_no_digest_on_holidays(cadence: str, days: int) -> None:
    rules = load_schedule_rules({**RULES_DATA, "digest": {"time": "09:00", "cadence": cadence}})
    items = [item(task(deadline=at(2026, 10, 30, 18)), created=at(2026, 9, 28, 10))]
    _, state = run(items, at(2026, 9, 28, 9), rules)
    sent = []
    for day in range(29, 31):
        planned, state = run(items, at(2026, 9, day, 9, 1), rules, state)
        sent += [p.record[2] for p in planned if p.record[0] == "digest"]
    for day in range(1, 8):  # National Day: nothing
        planned, state = run(items, at(2026, 10, day, 9, 1), rules, state)
        assert planned == []
    assert sent == (["2026-09-29", "2026-09-30"] if days == 1 else ["2026-09-30"])


def test_owner_digest_soonest_first_across_items() -> None:
    rules = load_schedule_rules({**RULES_DATA, "owner_digest": {"cadence": "daily"}})
    items = [item(task(1, deadline=at(2026, 8, 20, 18)), task(2, state="done", progress=100),
                  created=at(2026, 8, 3, 10)),
             item(task(1, deadline=at(2026, 8, 12, 18)), task(2, owner="zhao.lei@corp.example"),
                  item_id="MD-0002", created=at(2026, 8, 3, 10))]
    planned, state = run(items, at(2026, 8, 10, 9), rules)
    mine = next(p.notice for p in planned if p.notice.template == "owner_digest"
                and p.notice.to == (OWNER,))
    assert [(r["item_id"], r["task_id"]) for r in mine.context["rows"]] == [
        ("MD-0002", "T-1"), ("MD-0001", "T-1")]
    assert mine.context["counts"] == {"total": 2, "overdue": 0, "unconfirmed": 2}
    planned, _ = run(items, at(2026, 8, 10, 15), rules, state)
    assert [p for p in planned if p.notice.template == "owner_digest"] == []


def test_weekly_owner_digest_waits_for_its_weekday() -> None:
    items = [item(task(deadline=at(2026, 8, 20, 18)), created=at(2026, 8, 3, 10))]
    _, state = run(items, at(2026, 8, 3, 9), RULES)          # Monday: sent
    for day in range(4, 8):
        planned, state = run(items, at(2026, 8, day, 9), RULES, state)
        assert not [p for p in planned if p.notice.template == "owner_digest"]
    planned, _ = run(items, at(2026, 8, 10, 9), RULES, state)
    assert [p for p in planned if p.notice.template == "owner_digest"]


@pytest.mark.parametrize("entry, message", [
    ({"key": "x", "when": "sometime", "to": "owner"}, "when must be"),
    ({"key": "x", "when": "overdue", "to": "boss"}, "to and cc"),
    ({"key": "x", "when": "unconfirmed_hours", "to": "owner"}, "threshold"),
    ({"key": "x", "when": "overdue", "to": "owner", "applies_to": "emergency"}, "applies to"),
    ({"when": "overdue", "to": "owner"}, "key"),
], ids=["bad-when", "bad-role", "no-threshold", "wrong-kind", "no-key"])
def test_bad_rules_are_named(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_schedule_rules({"escalation": [entry]})


def test_closed_items_and_the_input_are_left_alone() -> None:
    items = [item(task(state="in_progress"))]
    items[0]["state"] = "closed"
    before = copy.deepcopy(items)
    assert run(items, at(2026, 10, 20, 10), RULES)[0] == []
    assert items == before
