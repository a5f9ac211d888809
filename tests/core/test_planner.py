"""The planner: which reminders, escalations and digests are due, each once, from stored times."""

from __future__ import annotations

import copy
import tomllib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maild.core.model import Person
from maild.core.people import Directory
from maild.core.planner import Planned, ScheduleRules, load_schedule_rules, plan
from maild.core.workcal import load_calendar

TZ = ZoneInfo("Asia/Shanghai")
RULES_DATA = tomllib.loads(
    (Path(__file__).resolve().parents[2] / "rules" / "schedules.toml").read_text("utf-8"))
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
LEVELS_ONLY = ScheduleRules(digest=type(RULES.digest)("off"), owner_digest=LEVELS.owner_digest,
                            levels=RULES.levels, emergency_contact=RULES.emergency_contact)


def levels(planned: list[Planned]) -> list[tuple[str, str | None, str]]:
    """Every level record planned (one level may ride in more than one email), sorted."""
    return sorted({r for p in planned for r in p.records if r[0] not in ("digest", "owner_digest")})


def keys(planned: list[Planned]) -> list[str]:
    return sorted(r[2].split("@")[0] for r in levels(planned))


def record(items: list[dict[str, Any]], planned: list[Planned], now: datetime) -> None:
    """What the service does after enqueueing: write each record into the task's `sent` map."""
    for item_id, task_id, key in levels(planned):
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
    planned, _ = run(items, at(2026, 10, 9, 18), LEVELS_ONLY)  # one level due, for two people
    # as declared (owner, initiator in Cc), but the initiator hears in an email of her own: its
    # buttons (改期, 转派) are signed for her, which a shared email's cannot be
    overdue, hers = [p.notice for p in planned]
    assert (overdue.template, overdue.to, overdue.cc) == ("reminder", (OWNER,), ())
    assert overdue.context["recipient_role"] == "owner" and overdue.context["overdue_days"] == 0
    assert overdue.context["manage"] == ()
    assert (hers.template, hers.to, hers.cc) == ("reminder", (INITIATOR,), ())
    assert hers.context["recipient_role"] == "initiator"
    assert hers.context["manage"] == ("reschedule", "reassign")
    assert [p.records for p in planned][0] == [p.records for p in planned][1]
    record(items, planned, at(2026, 10, 9, 18))
    planned, _ = run(items, at(2026, 10, 12, 18), LEVELS_ONLY)
    manager, hers = [p.notice for p in planned]
    assert (manager.template, manager.to, manager.cc) == ("escalation", (CONTACT,), ())
    assert (hers.template, hers.to, hers.cc) == ("escalation", (INITIATOR,), ())
    assert manager.context["overdue_days"] == 2
    assert manager.context["recipient_role"] == "manager"
    assert manager.item_id == "MD-0001" and manager.task_id == "T-1"
    assert manager.in_reply_to == "MD-0001@corp.example"
    assert manager.language == "zh"


def test_no_manager_on_file_goes_to_the_initiator() -> None:
    items = [item(task(owner="zhao.lei@corp.example", state="in_progress"))]
    record(items, run(items, at(2026, 10, 9, 18), LEVELS_ONLY)[0], at(2026, 10, 9, 18))
    planned, _ = run(items, at(2026, 10, 12, 18), LEVELS_ONLY)
    (manager,) = [p.notice for p in planned if p.records[0][2].startswith("overdue_manager")]
    assert manager.to == (INITIATOR,) and manager.cc == ()
    assert manager.context["missing_role"] == "manager"


# -- several levels for one person in one run: one email ---------------------------------------


def bundle_for(planned: list[Planned], address: str) -> Planned:
    (found,) = [p for p in planned if p.notice.to == (address,) and "entries" in p.notice.context]
    return found


def test_an_owner_with_several_levels_due_gets_one_email_listing_them() -> None:
    items = [item(task(1, state="in_progress", progress=10, deadline=at(2026, 10, 9, 18)),
                  task(2, state="in_progress", progress=30, deadline=at(2026, 10, 8, 18)),
                  task(3, deadline=at(2026, 10, 20, 18)))]
    planned, _ = run(items, at(2026, 10, 9, 18), LEVELS_ONLY)
    mine = bundle_for(planned, OWNER)
    assert mine.notice.template == "reminder" and mine.notice.cc == ()
    entries = mine.notice.context["entries"]
    # soonest deadline first; each task once, with each of its levels
    assert [e["task"]["id"] for e in entries] == ["T-2", "T-1", "T-3"]
    assert [[lv["rule"] for lv in e["levels"]] for e in entries] == [
        ["overdue"], ["overdue"], ["unconfirmed_owner"]]
    assert [e["actions"] for e in entries] == [("progress", "done"), ("progress", "done"),
                                               ("confirm", "decline")]
    assert mine.notice.context["counts"] == {"mine": 3, "others": 0}
    # one item: the email threads under it; every level it carries is recorded with it
    assert mine.notice.item_id == "MD-0001" and mine.notice.task_id is None
    assert mine.notice.in_reply_to == "MD-0001@corp.example"
    assert sorted(r[2].split("@")[0] for r in mine.records) == [
        "overdue", "overdue", "unconfirmed_owner"]
    # the initiator, in Cc of both overdue reminders and due the unconfirmed one, gets one too
    theirs = bundle_for(planned, INITIATOR)
    assert theirs.notice.template == "escalation"
    # her buttons for each (overdue: 改期 and 转派; unconfirmed: 转派), then 查看状态
    assert [(e["task"]["id"], e["recipient_role"], e["actions"])
            for e in theirs.notice.context["entries"]] == [
        ("T-2", "initiator", ("reschedule", "reassign", "status")),
        ("T-1", "initiator", ("reschedule", "reassign", "status")),
        ("T-3", "initiator", ("reassign", "status"))]
    assert [p.notice.to for p in planned] == [(OWNER,), (INITIATOR,)]  # nothing else


def test_someone_with_one_level_keeps_the_single_email_others_get_it_listed() -> None:
    items = [item(task(state="in_progress", progress=10))]
    planned, _ = run(items, at(2026, 10, 12, 18), LEVELS_ONLY)  # overdue and overdue_manager at once
    by_to = {p.notice.to: p for p in planned}
    owner, manager = by_to[(OWNER,)].notice, by_to[(CONTACT,)].notice
    # the initiator, due in both, hears of them in one email: not in their Cc
    assert (owner.template, owner.cc, owner.task_id) == ("reminder", (), "T-1")
    assert (manager.template, manager.cc) == ("escalation", ())
    (entry,) = bundle_for(planned, INITIATOR).notice.context["entries"]
    assert [lv["rule"] for lv in entry["levels"]] == ["overdue", "overdue_manager"]
    assert levels(planned) == sorted({(r[0], r[1], r[2]) for p in planned for r in p.records})
    assert keys(planned) == ["overdue", "overdue_manager"]


def test_a_person_owning_one_task_and_following_another_gets_theirs_first() -> None:
    items = [item(task(1, state="in_progress", progress=10, deadline=at(2026, 10, 9, 18))),
             item(task(1, owner=INITIATOR, state="in_progress", progress=10,
                       deadline=at(2026, 10, 9, 18)), item_id="MD-0002",
                  initiator=OWNER)]
    planned, _ = run(items, at(2026, 10, 9, 18), LEVELS_ONLY)
    notice = bundle_for(planned, INITIATOR).notice
    assert notice.template == "reminder" and notice.context["counts"] == {"mine": 1, "others": 1}
    assert [(e["item"]["id"], e["recipient_role"]) for e in notice.context["entries"]] == [
        ("MD-0002", "owner"), ("MD-0001", "initiator")]
    # two items: no single thread to join
    assert notice.item_id is None and notice.in_reply_to is None and notice.references == ()


def test_emergencies_are_never_combined() -> None:
    items = [emergency("awaiting_confirmation"),
             item(task(2, state="awaiting_confirmation"), kind="emergency", item_id="MD-0002",
                  created=at(2026, 10, 3, 22))]
    items[1]["tasks"][0]["updated_at"] = at(2026, 10, 3, 22).isoformat()
    planned, _ = run(items, at(2026, 10, 3, 22, 15), LEVELS_ONLY)
    # one email each (the initiator's with her 转派 button apart from the contact's)
    assert [(p.notice.template, p.notice.to, p.notice.cc) for p in planned] == [
        ("escalation", (INITIATOR,), ()), ("escalation", (CONTACT,), ())] * 2
    assert [p.notice.context["manage"] for p in planned] == [("reassign",), ()] * 2


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
    notice, contact = planned[0].notice, planned[1].notice
    assert (notice.template, notice.to, notice.cc) == ("escalation", (INITIATOR,), ())
    assert (contact.to, contact.context["recipient_role"]) == ((CONTACT,), "emergency_contact")
    items = [emergency("in_progress", at(2026, 10, 3, 22, 20), eta=at(2026, 10, 5, 12))]
    first, _ = run(items, at(2026, 10, 4, 0, 20))
    record(items, first, at(2026, 10, 4, 0, 20))
    assert keys(run(items, at(2026, 10, 4, 1))[0]) == []
    second, _ = run(items, at(2026, 10, 4, 2, 20))
    assert keys(second) == ["emergency_update"] and second[0].records != first[0].records
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
    assert [p.records[0][0] for p in first] == ["digest", "owner_digest", "owner_digest"]
    planned, state = run(items, at(2026, 8, 10, 9, 5), RULES, state)  # down until next Monday
    digests = [p for p in planned if p.records[0][0] == "digest"]
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


def digest_record(planned: list[Planned]) -> tuple[tuple[str, str | None, str], ...]:
    (found,) = [p.records for p in planned if p.notice.template == "digest"]
    return found


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
    assert rows["T-1"]["flags"] == ("overdue",) and rows["T-2"]["flags"] == ("unconfirmed",)
    assert rows["T-3"]["flags"] == ("blocked",) and rows["T-3"]["action"] == "blocked"
    assert ctx["counts"] | {} == {"action": 1, "overdue": 1, "unconfirmed": 1, "blocked": 1,
                                  "changed": 0, "total": 4, "reminded": 1}
    assert ctx["since"] is None and ctx["title"] == "Q3新品推广项目"
    # T-1's overdue reminder has the initiator in Cc: her digest of this run carries it
    assert [lv["rule"] for lv in rows["T-1"]["levels"]] == ["overdue"]
    assert "levels" not in rows["T-2"]
    # her buttons on each row that needs her, a ridden level's 查看状态 after them
    assert {t: r.get("actions") for t, r in rows.items()} == {
        "T-1": ("reschedule", "reassign", "status"), "T-2": ("reassign",),
        "T-3": ("reschedule", "reassign"), "T-4": None}
    assert ("MD-0001", "T-1", "overdue@2026-08-05T18:00:00+08:00") in digest_record(planned)

    items[0]["tasks"][3]["progress"] = 60
    items[0]["tasks"].append(task(5, state="not_started", deadline=at(2026, 9, 1, 18)))
    planned, state = run(items, at(2026, 8, 7, 9), RULES, state)
    ctx = digest_of(planned)
    changed = next(s for s in ctx["sections"] if s["key"] == "changed")["rows"]
    assert [(r["task_id"], r["changes"]) for r in changed] == [
        ("T-4", ({"field": "progress", "old": "10", "new": "60"},)),
        ("T-5", ({"field": "new", "old": "", "new": ""},))]
    assert ctx["since"] == at(2026, 8, 6, 9).isoformat()


def test_no_digest_when_nothing_to_report_and_one_per_slot() -> None:
    items = [item(task(state="in_progress", progress=30, deadline=at(2026, 8, 28, 18)),
                  created=at(2026, 8, 3, 10))]
    planned, state = run(items, at(2026, 8, 6, 9), RULES)
    assert [p for p in planned if p.records[0][0] == "digest"] == []
    assert state["digest"][INITIATOR]["done"] == "2026-08-06"
    items[0]["tasks"][0]["progress"] = 50
    planned, state = run(items, at(2026, 8, 6, 15), RULES, state)   # slot used up today
    assert [p for p in planned if p.records[0][0] == "digest"] == []
    assert run(items, at(2026, 8, 7, 8, 59), RULES, state)[0] == []   # before the digest time
    planned, _ = run(items, at(2026, 8, 7, 9), RULES, state)
    assert [p.records for p in planned] == [(("digest", INITIATOR, "2026-08-07"),)]


@pytest.mark.parametrize("cadence, days", [("daily", 1), ("every_2_days", 2)],
                         ids=["daily", "every-2-days"])
def test_digest_cadence_and_no_digest_on_holidays(cadence: str, days: int) -> None:
    rules = load_schedule_rules({**RULES_DATA, "digest": {"time": "09:00", "cadence": cadence}})
    items = [item(task(deadline=at(2026, 10, 30, 18)), created=at(2026, 9, 28, 10))]
    _, state = run(items, at(2026, 9, 28, 9), rules)
    sent = []
    for day in range(29, 31):
        planned, state = run(items, at(2026, 9, day, 9, 1), rules, state)
        sent += [p.records[0][2] for p in planned if p.records[0][0] == "digest"]
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
    assert mine.context["counts"] == {"total": 2, "overdue": 0, "unconfirmed": 2, "reminded": 0}
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


def test_nothing_falls_due_before_next_at() -> None:
    """Planning only when `next_at` has come (as the service's tick does) sends the same emails
    at the same ticks as planning on every tick, over a week of levels, digests and an
    emergency."""
    def scenario() -> list[dict[str, Any]]:
        start = at(2026, 8, 3, 10)
        urgent = item(task(1, state="in_progress", deadline=at(2026, 8, 5, 2),
                           updated=at(2026, 8, 4, 22)),
                      kind="emergency", item_id="MD-0003", created=at(2026, 8, 4, 21))
        return [item(task(1, state="in_progress", progress=10, deadline=at(2026, 8, 5, 18)),
                     task(2, deadline=at(2026, 8, 20, 18), updated=start),
                     task(3, owner="zhao.lei@corp.example", state="in_progress", progress=50,
                          deadline=at(2026, 8, 6, 12)), created=start),
                item(task(1, owner=INITIATOR, state="in_progress", progress=90,
                          deadline=at(2026, 8, 7, 18)), item_id="MD-0002", created=start),
                urgent]

    rules = load_schedule_rules({**RULES_DATA, "owner_digest": {"cadence": "daily"}})

    def simulate(skip: bool) -> list[tuple[datetime, list[tuple[str, ...]]]]:
        items, state, sent, now = scenario(), {}, [], at(2026, 8, 3, 8)
        while now < at(2026, 8, 10, 20):
            next_at = state.get("next_at")
            if not skip or next_at is None or now >= datetime.fromisoformat(next_at):
                planned, state = run(items, now, rules, state)
                record(items, planned, now)
                if planned:
                    sent.append((now, sorted(r for p in planned for r in p.records)))
            now += timedelta(minutes=15)
        return sent

    every_tick = simulate(skip=False)
    assert len(every_tick) > 10
    assert simulate(skip=True) == every_tick


def test_levels_due_with_a_digest_ride_in_that_digest() -> None:
    """At 09:00 the owner's weekly digest lists every open task of theirs, and the initiator's
    digest every task of their items: the reminders and escalations due to them in the same run
    are in those rows (recorded with the digest), not in a second email about the same tasks."""
    zhao = "zhao.lei@corp.example"
    items = [item(task(1, state="in_progress", progress=10, deadline=at(2026, 8, 5, 18)),
                  task(2, owner=zhao, deadline=at(2026, 8, 20, 18), updated=at(2026, 8, 3, 10)),
                  created=at(2026, 8, 3, 10))]
    planned, _ = run(items, at(2026, 8, 10, 9), RULES)  # Monday: every digest is due
    by_to = {(p.notice.template, p.notice.to[0]): p for p in planned}
    assert sorted(by_to) == [("digest", INITIATOR), ("escalation", CONTACT),
                             ("owner_digest", OWNER), ("owner_digest", zhao)]
    owner = by_to[("owner_digest", OWNER)]
    (row,) = owner.notice.context["rows"]
    assert [lv["rule"] for lv in row["levels"]] == ["overdue"]
    assert row["actions"] == ("progress", "done") and owner.notice.context["counts"]["reminded"] == 1
    assert [r[2].split("@")[0] for r in owner.records[1:]] == ["overdue"]
    (row,) = by_to[("owner_digest", zhao)].notice.context["rows"]
    assert [lv["rule"] for lv in row["levels"]] == ["unconfirmed_owner"]
    assert row["actions"] == ("confirm", "decline")
    digest = by_to[("digest", INITIATOR)]
    assert sorted(r[2].split("@")[0] for r in digest.records[1:]) == [
        "overdue", "overdue_manager", "unconfirmed_initiator"]
    rows = {r["task_id"]: r for s in digest.notice.context["sections"] for r in s["rows"]}
    assert [lv["rule"] for lv in rows["T-1"]["levels"]] == ["overdue", "overdue_manager"]
    assert rows["T-1"]["levels"][1]["missing_role"] == ""  # 王喆 has a manager: he hears too
    # the manager has no digest of these: the escalation comes on its own, as declared
    assert by_to[("escalation", CONTACT)].notice.cc == ()
    # every level due went out once, somewhere
    assert keys(planned) == ["overdue", "overdue_manager", "unconfirmed_initiator",
                             "unconfirmed_owner"]


# -- one digest per person: the initiator's and the owner's, merged ------------------------------


def two_hats() -> list[dict[str, Any]]:
    """李娜 starts MD-0001 and owns one of its tasks and one of 王喆's MD-0002; 王喆 owns one of
    hers. On Monday 2026-08-10 09:00 both digests are due for both of them, with levels."""
    start = at(2026, 8, 3, 10)
    return [item(task(1, state="in_progress", progress=10, deadline=at(2026, 8, 5, 18)),
                 task(2, owner=INITIATOR, deadline=at(2026, 8, 20, 18), updated=start),
                 created=start),
            item(task(1, owner=INITIATOR, state="in_progress", progress=40,
                      deadline=at(2026, 8, 12, 18), updated=start),
                 item_id="MD-0002", initiator=OWNER, created=start)]


def rules_with(digest: str = "daily", owner_digest: str = "weekly") -> ScheduleRules:
    return load_schedule_rules({**RULES_DATA, "digest": {"cadence": digest},
                                "owner_digest": {"cadence": owner_digest}})


NO_DIGESTS = ScheduleRules(digest=type(RULES.digest)("off"), owner_digest=LEVELS.owner_digest,
                           levels=RULES.levels, emergency_contact=RULES.emergency_contact)


@pytest.mark.parametrize("rules, kinds, own", [
    (RULES, ["digest"], ["MD-0002/T-1", "MD-0001/T-2"]),
    (rules_with(owner_digest="off"), ["digest", "reminder"], None),
    (NO_DIGESTS, ["reminder"], None),
], ids=["both-due-one-email", "owner-digest-off", "no-digests"])
def test_one_digest_per_person_when_both_go_out(rules: ScheduleRules, kinds: list[str],
                                                own: list[str] | None) -> None:
    planned, state = run(two_hats(), at(2026, 8, 10, 9), rules)
    mine = sorted((p for p in planned if p.notice.to == (INITIATOR,)),
                  key=lambda p: p.notice.template)
    assert [p.notice.template for p in mine] == kinds
    context = mine[0].notice.context
    got = context.get("own")
    assert ([f"{r['item_id']}/{r['task_id']}" for r in got["rows"]]
            if got else None) == own
    # merging moves levels between emails, never adds or drops one
    assert levels(planned) == levels(run(two_hats(), at(2026, 8, 10, 9), NO_DIGESTS)[0])
    for p in planned:
        assert len(set(p.records)) == len(p.records)
    if own:
        # both slots are used up and recorded with the one email
        records = mine[0].records
        assert ("digest", INITIATOR, "2026-08-10") in records
        assert ("owner_digest", INITIATOR, "2026-08-10") in records
        assert state["digest"][INITIATOR]["done"] == state["owner_digest"][INITIATOR]["done"]
        assert context["counts"]["reminded"] == (
            got["counts"]["reminded"]
            + sum("levels" in r for s in context["sections"] for r in s["rows"]))


def test_a_merged_digest_lists_the_readers_own_tasks_with_their_own_buttons() -> None:
    from maild.core.planner import actionable

    planned, _ = run(two_hats(), at(2026, 8, 10, 9), RULES)
    (digest,) = [p for p in planned if p.notice.to == (INITIATOR,)]
    own = digest.notice.context["own"]
    assert own["counts"] == {"total": 2, "overdue": 0, "unconfirmed": 1, "reminded": 1}
    rows = {f"{r['item_id']}/{r['task_id']}": r for r in own["rows"]}
    assert [lv["rule"] for lv in rows["MD-0001/T-2"]["levels"]] == ["unconfirmed_owner"]
    assert rows["MD-0001/T-2"]["actions"] == ("confirm", "decline")
    theirs = {f"{r['item_id']}/{r['task_id']}": r
              for s in digest.notice.context["sections"] for r in s["rows"]}
    assert [lv["rule"] for lv in theirs["MD-0001/T-2"]["levels"]] == ["unconfirmed_initiator"]
    assert [lv["rule"] for lv in theirs["MD-0001/T-1"]["levels"]] == ["overdue",
                                                                       "overdue_manager"]
    # T-2 is listed twice (hers, and in her item): one set of addresses serves both rows
    # (T-2 is hers: the owner's buttons, not the initiator's; T-1 is overdue: 改期, 转派)
    assert {e["ref"]: e["actions"] for e in actionable(digest.notice.context)} == {
        "MD-0001/T-2": ("confirm", "decline", "status"),
        "MD-0001/T-1": ("reschedule", "reassign", "status")}
    # 王喆's item has nothing to report yet: his owner digest goes on its own, with his T-1
    (his,) = [p.notice for p in planned if p.notice.to == (OWNER,)]
    assert his.template == "owner_digest" and "own" not in his.context
    assert [(r["task_id"], r["actions"]) for r in his.context["rows"]] == [
        ("T-1", ("progress", "done"))]


def test_an_owner_digest_goes_alone_when_the_initiator_digest_has_nothing_to_report() -> None:
    items = [item(task(1, owner=INITIATOR, state="in_progress", progress=30,
                       deadline=at(2026, 8, 28, 18)), created=at(2026, 8, 3, 10))]
    planned, state = run(items, at(2026, 8, 10, 9), RULES)
    assert [(p.notice.template, p.records) for p in planned] == [
        ("owner_digest", (("owner_digest", INITIATOR, "2026-08-10"),))]
    assert state["digest"][INITIATOR]["done"] == "2026-08-10"  # the slot is used up all the same


# -- the initiator's buttons on the rows she sees (initiatorbuttons.py) --------------------------


@pytest.mark.parametrize(("state", "asked", "overdue", "buttons"), [
    ("awaiting_confirmation", False, False, ("reassign",)),
    ("declined", False, False, ("reassign",)),
    ("delayed", True, False, ("accept", "reschedule")),
    ("in_progress", False, True, ("reschedule", "reassign")),
    ("awaiting_confirmation", False, True, ("reschedule", "reassign")),
    ("delayed", True, True, ("accept", "reschedule", "reassign")),
    ("blocked", False, False, ("reschedule", "reassign")),
    ("in_progress", False, False, ()),
    ("not_started", False, False, ()),
    ("delayed", False, False, ()),  # delayed, and the new deadline agreed: nothing to decide
    ("done", False, True, ()),
    ("submitted", False, False, ("approve", "return")),  # handed in for 验收
    ("submitted", False, True, ("approve", "return", "reschedule", "reassign")),
    ("returned", False, False, ()),  # back with its owner
], ids=["unconfirmed", "declined", "delay-asked", "overdue", "unconfirmed-overdue",
        "delay-asked-overdue", "blocked", "in-progress", "not-started", "delay-agreed", "done",
        "handed-in", "handed-in-late", "returned"])
def test_the_initiator_gets_the_buttons_a_task_needs(state: str, asked: bool, overdue: bool,
                                                     buttons: tuple[str, ...]) -> None:
    from maild.core.initiatorbuttons import task_buttons

    t = task(state=state, **({"requested_deadline": "2026-10-20T18:00:00+08:00"} if asked else {}))
    assert task_buttons(t, overdue) == buttons


def test_every_digest_row_that_needs_her_has_her_buttons_and_a_finished_item_its_close() -> None:
    from maild.core.planner import actionable

    asked = {"requested_deadline": at(2026, 8, 28, 18).isoformat()}
    items = [item(task(1, state="in_progress", progress=40, deadline=at(2026, 8, 5, 18)),
                  task(2, deadline=at(2026, 8, 20, 18)),
                  task(3, state="delayed", progress=20, deadline=at(2026, 8, 21, 18), **asked),
                  task(4, state="declined", deadline=at(2026, 8, 22, 18)),
                  task(5, state="in_progress", progress=10, deadline=at(2026, 8, 28, 18)),
                  task(6, owner=INITIATOR, deadline=at(2026, 8, 28, 18)),
                  created=at(2026, 8, 3, 10)),
             item(task(1, state="done", progress=100, deadline=at(2026, 8, 4, 18)),
                  item_id="MD-0002", created=at(2026, 8, 3, 10))]
    planned, _ = run(items, at(2026, 8, 6, 9), LEVELS)
    ctx = digest_of(planned)
    rows = {f"{r['item_id']}/{r['task_id']}": r for s in ctx["sections"] for r in s["rows"]}
    assert {ref: r.get("actions") for ref, r in rows.items()} == {
        "MD-0001/T-1": ("reschedule", "reassign", "status"),  # overdue, its level rides along
        "MD-0001/T-2": ("reassign",), "MD-0001/T-3": ("accept", "reschedule"),
        "MD-0001/T-4": ("reassign",), "MD-0001/T-5": None,
        "MD-0001/T-6": None,  # her own task: the owner's buttons are hers elsewhere
        "MD-0002/T-1": None}
    assert all(r["ref"] == ref for ref, r in rows.items() if "actions" in r)
    # MD-0002 is done: its 结项, bound to the item itself (no task)
    assert ctx["item_buttons"] == [{"ref": "MD-0002", "actions": ("close",)}]
    assert [(e["ref"], e["actions"]) for e in actionable(ctx)] == [
        (ref, r["actions"]) for ref, r in rows.items() if "actions" in r] + [
        ("MD-0002", ("close",))]
