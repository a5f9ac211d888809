"""What acceptance, dependencies and recurring tasks change in the schedules: handed-in work is
the initiator's to review (and they are reminded), an overdue task that holds others up is
escalated sooner, reminders say what a task waits on, digests group a series and show chains."""

from __future__ import annotations

from datetime import datetime

import pytest
from test_planner import (
    CAL,
    INITIATOR,
    LEVELS,
    LEVELS_ONLY,
    at,
    item,
    keys,
    record,
    run,
    task,
)

from maild.core import recurrence
from maild.core.planner import load_schedule_rules
from maild.core.series import create_due, start_series

SUBMITTED_AT = at(2026, 10, 9, 14)  # Friday; the task is due 18:00 that day


def handed_in(**extra) -> dict:
    return task(state="submitted", progress=100, submitted_at=SUBMITTED_AT.isoformat(), **extra)


@pytest.mark.parametrize("now, expected", [
    (at(2026, 10, 9, 17), []),
    (at(2026, 10, 10, 12, 59), []),  # deadline passed: the owner delivered, nobody chases them
    (at(2026, 10, 10, 13), ["unreviewed_initiator"]),  # 8 working hours (Sat 10-10 is 调休)
    (at(2026, 10, 20, 10), ["unreviewed_initiator"]),  # never the owner's deadline levels
], ids=["same-day", "past-deadline", "after-8-working-hours", "days-later"])
def test_handed_in_work_waits_on_the_initiator_not_the_owner(now: datetime, expected) -> None:
    planned, _ = run([item(handed_in())], now, LEVELS_ONLY)
    assert keys(planned) == expected
    for p in planned:
        assert p.notice.to == (INITIATOR,) and p.notice.context["recipient_role"] == "initiator"


def test_each_hand_in_reminds_the_initiator_once() -> None:
    items = [item(handed_in())]
    now = at(2026, 10, 10, 13)
    record(items, run(items, now, LEVELS_ONLY)[0], now)
    assert keys(run(items, at(2026, 10, 12, 10), LEVELS_ONLY)[0]) == []
    # Returned and handed in again: a new clock for the initiator.
    items[0]["tasks"][0]["submitted_at"] = at(2026, 10, 12, 10).isoformat()
    assert keys(run(items, at(2026, 10, 12, 17, 59), LEVELS_ONLY)[0]) == []
    assert keys(run(items, at(2026, 10, 12, 18), LEVELS_ONLY)[0]) == ["unreviewed_initiator"]


def test_an_overdue_task_others_wait_on_reaches_the_manager_a_day_sooner() -> None:
    late = task(1, state="in_progress", progress=30)
    waiting = task(2, state="not_started", depends_on=["T-1"])
    alone = [item(task(1, state="in_progress", progress=30))]
    held_up = [item(late, waiting)]
    for items in (alone, held_up):
        record(items, run(items, at(2026, 10, 9, 18), LEVELS_ONLY)[0], at(2026, 10, 9, 18))
    one_day = at(2026, 10, 10, 18)  # Saturday 10-10 is a make-up workday
    assert "overdue_manager" not in keys(run(alone, one_day, LEVELS_ONLY)[0])
    # the manager's email, and the initiator's own (she is never a Cc: her buttons are hers)
    escalations = [p.notice for p in run(held_up, one_day, LEVELS_ONLY)[0]
                   if p.records[0][2].startswith("overdue_manager")]
    assert len(escalations) == 2
    for escalation in escalations:
        assert [b["id"] for b in escalation.context["blocks"]] == ["T-2"]
    # Once T-2 no longer waits (declined, say), the usual two days apply again.
    held_up[0]["tasks"][1]["state"] = "declined"
    assert "overdue_manager" not in keys(run(held_up, one_day, LEVELS_ONLY)[0])


def test_a_reminder_for_a_waiting_task_says_what_it_waits_on() -> None:
    first = task(1, state="in_progress", progress=20, deadline=at(2026, 10, 20, 18))
    second = task(2, state="not_started", depends_on=["T-1"])
    planned, _ = run([item(first, second)], at(2026, 10, 9, 9), LEVELS_ONLY)
    (near,) = [p.notice for p in planned]
    assert near.task_id == "T-2" and near.context["rule"] == "deadline_near"
    assert [(w["id"], w["state"]) for w in near.context["waits_on"]] == [("T-1", "in_progress")]


def test_blocking_threshold_is_checked_where_it_is_declared() -> None:
    with pytest.raises(ValueError, match="blocking_threshold"):
        load_schedule_rules({"escalation": [{"key": "x", "when": "overdue", "to": "owner",
                                             "blocking_threshold": 1}]})


def test_a_digest_marks_handed_in_work_for_review_and_groups_a_series() -> None:
    series = item(task(1, state="done", done_at=at(2026, 8, 5, 17).isoformat(),
                       deadline=at(2026, 8, 5, 18)), kind="task", created=at(2026, 8, 3, 10),
                  item_id="MD-0002")
    start_series(series, recurrence.parse_rule("每月5日"), "每月5日", CAL)
    series, _new = create_due(series, at(2026, 9, 2, 9), CAL)
    project = item(handed_in(), task(2, state="not_started", depends_on=["T-1"]),
                   task(3, state="not_started", depends_on=["T-2"]))
    planned, _ = run([project, series], at(2026, 10, 9, 9), LEVELS)
    (digest,) = [p.notice for p in planned if p.notice.template == "digest"]
    action = [s for s in digest.context["sections"] if s["key"] == "action"][0]["rows"]
    assert [(r["item_id"], r["task_id"], r["action"]) for r in action] == [
        ("MD-0001", "T-1", "review")]
    assert "overdue" not in action[0]["flags"]
    projects = {p["id"]: p for p in digest.context["projects"]}
    assert projects["MD-0001"]["chains"] == [["T-1 任务1", "T-2 任务2", "T-3 任务3"]]
    assert projects["MD-0002"]["series"] == {
        "text": "每月5日", "count": 2, "done": 1, "on_time": 1, "declined": 0, "open": 1,
        "next_due": "2026-09-30", "stopped": False}
    assert not projects["MD-0002"]["closable"]


def test_the_next_occurrence_is_on_the_planners_horizon() -> None:
    series = item(task(1, state="not_started", deadline=at(2026, 8, 5, 18)), kind="task",
                  created=at(2026, 8, 3, 10))
    start_series(series, recurrence.parse_rule("每月5日"), "每月5日", CAL)
    _planned, state = run([series], at(2026, 8, 20, 10), LEVELS_ONLY)
    assert state["next_at"] == "2026-09-02T09:00:00+08:00"


def test_the_due_index_wakes_a_series_on_the_day_its_next_occurrence_is_created() -> None:
    from maild.core.planner import next_level_due

    item_ = item(task(1, state="done", deadline=at(2026, 8, 5, 18)), kind="task",
                 created=at(2026, 8, 3, 10))
    start_series(item_, recurrence.parse_rule("每月5日"), "每月5日", CAL)
    assert next_level_due(item_, at(2026, 8, 20, 10), LEVELS, CAL) == \
        at(2026, 9, 2, 9)
    assert next_level_due(item_, at(2026, 9, 2, 9, 30), LEVELS, CAL) == at(2026, 9, 2, 9, 30)
