"""Recurring tasks: rules as people write them, occurrences on the work calendar (春节, 调休),
creation planned from the stored series and `now`, once each."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from maild.core.recurrence import Rule, next_due, parse_rule, upcoming
from maild.core.series import (
    active,
    confirm,
    create_due,
    next_moment,
    reassigned,
    start_series,
    stop,
    summary,
)
from maild.core.workcal import load_calendar

TZ = ZoneInfo("Asia/Shanghai")
CAL = load_calendar({}, "Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


@pytest.mark.parametrize("text, rule", [
    ("每月5日", Rule("month", (), 5)),
    ("每月5号", Rule("month", (), 5)),
    ("每个月的15日", Rule("month", (), 15)),
    ("每月三十日", Rule("month", (), 30)),
    ("每月末", Rule("month", (), -1)),
    ("月底", Rule("month", (), -1)),
    ("每周一", Rule("week", (0,))),
    ("每星期五", Rule("week", (4,))),
    ("每周一、四", Rule("week", (0, 3))),
    ("每个工作日", Rule("workday")),
    ("每天", Rule("workday")),
    ("每季度末", Rule("quarter", (), -1, 3)),
    ("每季末", Rule("quarter", (), -1, 3)),
    ("每年8月1日", Rule("year", (), 1, 8)),
    ("重复：每月５日", Rule("month", (), 5)),
    ("monthly on the 5th", Rule("month", (), 5)),
    ("on the 5th of every month", Rule("month", (), 5)),
    ("end of every month", Rule("month", (), -1)),
    ("every Monday", Rule("week", (0,))),
    ("every Mon and Thu", Rule("week", (0, 3))),
    ("every working day", Rule("workday")),
    ("daily", Rule("workday")),
    ("end of each quarter", Rule("quarter", (), -1, 3)),
    ("every year on Aug 1", Rule("year", (), 1, 8)),
    ("每周", Rule("week")),
    ("monthly", Rule("month")),
    ("quarterly", Rule("quarter")),
], ids=lambda v: v if isinstance(v, str) else "")
def test_rules_as_people_write_them(text: str, rule: Rule) -> None:
    assert parse_rule(text) == rule


@pytest.mark.parametrize("text", ["每两周", "有时候", "每月32日", "every other week", "", "每年2月30日"],
                         ids=["fortnightly", "sometimes", "day-32", "other-week", "empty", "feb-30"])
def test_rules_not_read_exactly_are_refused(text: str) -> None:
    assert parse_rule(text) is None


def test_a_rule_without_its_day_takes_it_from_the_first_deadline() -> None:
    friday = date(2026, 8, 7)
    assert Rule("week").anchor(friday) == Rule("week", (4,))
    assert Rule("month").anchor(friday) == Rule("month", (), 7)
    assert Rule("quarter").anchor(friday) == Rule("quarter", (), 7, 2)
    assert Rule("month", (), 5).anchor(friday) == Rule("month", (), 5)


@pytest.mark.parametrize("rule, after, expected", [
    # 2026-02-20 is inside 春节 (02-15..02-23): the working day before it is Saturday 02-14,
    # a make-up workday (调休).
    (Rule("month", (), 20), date(2026, 1, 20),
     [(date(2026, 2, 20), date(2026, 2, 14)), (date(2026, 3, 20), date(2026, 3, 20))]),
    # Both Mondays of the holiday land on 02-14: one occurrence, then 03-02.
    (Rule("week", (0,)), date(2026, 2, 10),
     [(date(2026, 2, 16), date(2026, 2, 14)), (date(2026, 3, 2), date(2026, 3, 2))]),
    # Every working day: the make-up Saturday counts, the holiday does not.
    (Rule("workday"), date(2026, 2, 12),
     [(date(2026, 2, 13), date(2026, 2, 13)), (date(2026, 2, 14), date(2026, 2, 14)),
      (date(2026, 2, 24), date(2026, 2, 24))]),
    # 2026-09-05 is a Saturday: Friday 09-04.
    (Rule("month", (), 5), date(2026, 8, 5),
     [(date(2026, 9, 5), date(2026, 9, 4)), (date(2026, 10, 5), date(2026, 9, 30))]),
    # Quarter ends: 2026-03-31 Tue, 06-30 Tue, 09-30 Wed, 12-31 Thu; 2027 on weekends only.
    (Rule("quarter", (), -1, 3), date(2026, 1, 5),
     [(date(2026, 3, 31), date(2026, 3, 31)), (date(2026, 6, 30), date(2026, 6, 30)),
      (date(2026, 9, 30), date(2026, 9, 30)), (date(2026, 12, 31), date(2026, 12, 31))]),
    # The 31st of a 30-day month is its last day; 2026-05-31 is a Sunday: Friday 05-29.
    (Rule("month", (), 31), date(2026, 4, 1),
     [(date(2026, 4, 30), date(2026, 4, 30)), (date(2026, 5, 31), date(2026, 5, 29))]),
    # 2026-10-01..07 National Day, Saturday 10-10 a make-up day: a Monday rule skips the week.
    (Rule("week", (0,)), date(2026, 9, 28),
     [(date(2026, 10, 5), date(2026, 9, 30)), (date(2026, 10, 12), date(2026, 10, 12))]),
], ids=["monthly-into-spring-festival", "mondays-in-spring-festival", "workdays-makeup-saturday",
        "saturday-to-friday", "quarter-ends", "31st-in-short-months", "monday-in-golden-week"])
def test_occurrences_follow_the_work_calendar(rule, after, expected) -> None:
    assert upcoming(rule, after, CAL, len(expected)) == expected


def test_the_next_occurrence_never_repeats_a_day_already_due() -> None:
    # The occurrence of 02-16 was due 02-14; the Monday after (02-23) lands there too.
    assert next_due(Rule("week", (0,)), date(2026, 2, 14), CAL) == (date(2026, 3, 2),
                                                                    date(2026, 3, 2))


def series_item(rule_text: str, created: datetime, deadline: datetime) -> dict:
    item = {"id": "MD-0007", "kind": "task", "title": "月度客户满意度报告", "language": "zh",
            "state": "open", "initiator": "li.na@corp.example", "created_at": created.isoformat(),
            "tasks": [{"id": "T-1", "name": "月度客户满意度报告", "owner": "zhao.lei@corp.example",
                       "owner_name": "赵磊", "owner_department": "销售部",
                       "deadline": deadline.isoformat(), "deliverable": "PDF报告",
                       "state": "awaiting_confirmation", "progress": 0, "round": 1}]}
    start_series(item, parse_rule(rule_text), rule_text, CAL)
    return item


def test_a_series_plans_its_next_occurrence_with_the_first_ones_notice() -> None:
    # Sent Monday 08-03, due Wednesday 08-05: two working days of notice.
    item = series_item("每月5日", at(2026, 8, 3, 10), at(2026, 8, 5, 18))
    series = item["series"]
    assert series["lead"] == 2 and series["time"] == "18:00"
    # 09-05 is a Saturday: due Friday 09-04, created two working days before, at 09:00.
    assert series["next"] == {"nominal": "2026-09-05", "due": "2026-09-04",
                              "create_at": "2026-09-02T09:00:00+08:00"}
    assert item["tasks"][0]["occurrence"] == {"n": 1, "due": "2026-08-05"}


def test_occurrences_are_created_once_each_from_the_stored_series() -> None:
    item = series_item("每月5日", at(2026, 8, 3, 10), at(2026, 8, 5, 18))
    assert create_due(item, at(2026, 9, 2, 8, 59), CAL) is None
    item["tasks"][0].update(state="done", done_at=at(2026, 8, 5, 17).isoformat())
    confirm(item, item["tasks"][0], at(2026, 8, 3, 11))
    changed, new = create_due(item, at(2026, 9, 2, 9), CAL)
    (task,) = new
    assert task["id"] == "T-2" and task["name"] == "月度客户满意度报告（9月4日）"
    assert task["deadline"] == "2026-09-04T18:00:00+08:00"
    assert task["state"] == "not_started"  # the owner confirmed the series once
    assert task["owner"] == "zhao.lei@corp.example" and task["deliverable"] == "PDF报告"
    # The done first occurrence left for the history; the item holds the open one only.
    assert [t["id"] for t in changed["tasks"]] == ["T-2"]
    assert changed["series"]["history"][0]["id"] == "T-1"
    assert changed["series"]["history"][0]["on_time"] is True
    # Stored and planned again a minute later: nothing more until October's.
    assert create_due(changed, at(2026, 9, 2, 9, 1), CAL) is None
    assert changed["series"]["next"]["due"] == "2026-09-30"  # 10-05 is in the Golden Week


def test_a_daemon_that_was_down_creates_each_missed_occurrence_once() -> None:
    item = series_item("每周一", at(2026, 8, 3, 9), at(2026, 8, 3, 18))  # lead 0
    changed, new = create_due(item, at(2026, 8, 26, 12), CAL)
    assert [t["occurrence"]["due"] for t in new] == ["2026-08-10", "2026-08-17", "2026-08-24"]
    assert [t["id"] for t in new] == ["T-2", "T-3", "T-4"]
    assert all(t["state"] == "awaiting_confirmation" for t in new)  # series not confirmed yet
    assert changed["series"]["next"]["due"] == "2026-08-31"
    assert create_due(changed, at(2026, 8, 26, 12), CAL) is None


def test_a_stopped_series_creates_nothing_more() -> None:
    item = series_item("每个工作日", at(2026, 8, 3, 9), at(2026, 8, 3, 18))
    assert stop(item, at(2026, 8, 3, 12), "li.na@corp.example")
    assert not active(item) and next_moment(item) is None
    assert create_due(item, at(2026, 8, 10, 12), CAL) is None
    assert not stop(item, at(2026, 8, 3, 13), "li.na@corp.example")


def test_the_series_moves_with_a_reassignment_only_until_it_is_confirmed() -> None:
    item = series_item("每周一", at(2026, 8, 3, 9), at(2026, 8, 3, 18))
    first = item["tasks"][0]
    first.update(owner="chen.jing@corp.example", owner_name="陈静")
    reassigned(item, first)
    assert item["series"]["owner"] == "chen.jing@corp.example"
    confirm(item, first, at(2026, 8, 3, 10))
    other = {**first, "owner": "wang.zhe@corp.example"}
    reassigned(item, other)  # one occurrence covered by someone else
    assert item["series"]["owner"] == "chen.jing@corp.example"


def test_a_series_summary_counts_what_was_done_on_time() -> None:
    item = series_item("每周一", at(2026, 8, 3, 9), at(2026, 8, 3, 18))
    item["tasks"][0].update(state="done", done_at=at(2026, 8, 3, 17).isoformat())
    changed, _ = create_due(item, at(2026, 8, 10, 9), CAL)
    changed["tasks"][0].update(state="done", done_at=at(2026, 8, 11, 9).isoformat())  # late
    changed, _ = create_due(changed, at(2026, 8, 17, 9), CAL)
    assert summary(changed) == {
        "text": "每周一", "count": 3, "done": 2, "on_time": 1, "declined": 0, "open": 1,
        "next_due": "2026-08-24", "stopped": False}
