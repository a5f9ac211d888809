"""The pieces the reply reader stands on: ticked boxes, sentences and clauses, delays counted on the
work calendar. Pure functions, no I/O."""

from __future__ import annotations

from datetime import datetime, time

import pytest
from conversation import TZ

from maild.core.checkboxes import ticked
from maild.core.delays import after_working_days, requested_deadline
from maild.core.sentences import body, sentences
from maild.core.workcal import WorkCalendar


@pytest.mark.parametrize("value, chosen", [
    ("□0% □25% □50% ☑75% □100%", ("75%",)),
    ("□50% ■75% □100%", ("75%",)),
    ("□0%□25%√50%□75%□100%", ("50%",)),
    ("[ ]25% [x]50% [ ]75%", ("50%",)),
    ("[ ] 25% [X] 50%", ("50%",)),
    ("( ) 25%  (x) 75%", ("75%",)),
    # Rows alike in shape (duplicates) by design: one ticked-box line and its pick per row.
    ("25%□ 50%✔ 75%□ 100%□", ("50%",)),
    ("☐0% ☒50% ☐100%", ("50%",)),
    (" □ 25%   □ 50%   ● 75%", ("75%",)),
    ("□未开始 ▣进行中 □已完成 □延期", ("进行中",)),
    ("✓进行中", ("进行中",)),
    ("进行中 ✔", ("进行中",)),
    ("□未开始□进行中□已完成□延期", ()),
    ("□高 ☑中 ☑低", ("中", "低")),
], ids=["ballot-box-check", "black-square", "root-no-spaces", "brackets-x", "brackets-X",
        "parens-x", "mark-after", "ballot-x", "spaced-circle", "square-in-square", "one-tick",
        "tick-after-one", "template-unticked", "two-ticked"])
def test_ticked_options(value, chosen):
    choice = ticked(value)
    assert choice is not None and choice.ticked == chosen


def test_a_line_without_marks_is_no_choice():
    assert ticked("75%") is None and ticked("进行中") is None


@pytest.mark.parametrize("text, kept", [
    ("李经理好，\n\n收到。\n\n谢谢！\n王喆\n产品部", "收到。"),
    ("王总好，这个我先看看。", "这个我先看看。"),
    ("娜姐，渠道方案完成一半了。", "渠道方案完成一半了。"),
    ("Hi Li Na,\n\nSure.\n\nBest regards,\nZhao Lei", "Sure."),
    ("收到，\n进度 50%", "收到，\n进度 50%"),
    ("好的李经理，我这边安排。", "好的李经理，我这边安排。"),
    ("谢谢", "谢谢"),
], ids=["greeting-closing-signature", "inline-greeting", "vocative", "english", "answer-not-greeting",
        "yes-before-a-name", "thanks-alone"])
def test_body_drops_greeting_and_sign_off(text, kept):
    assert body(text) == kept


def test_sentences_and_clauses_keep_their_offsets():
    text = "没问题，不过得延后三天左右。Progress is at 40%. I'll need until Aug 20 - legal is slow."
    said = sentences(text)
    assert [[c.text for c in s.clauses] for s in said] == [
        ["没问题", "得延后三天左右"], ["Progress is at 40%"],
        ["I'll need until Aug 20", "legal is slow"]]
    for sentence in said:
        for clause in sentence.clauses:
            assert text[clause.start:clause.end] == clause.text


CALENDAR = WorkCalendar(tz=TZ)
FRIDAY = datetime(2026, 8, 14, 18, 0, tzinfo=TZ)
BEFORE_NATIONAL_DAY = datetime(2026, 9, 30, 18, 0, tzinfo=TZ)


@pytest.mark.parametrize("args, current, expected", [
    ({"days": 2}, FRIDAY, datetime(2026, 8, 18, 18, 0, tzinfo=TZ)),
    ({"days": 1}, BEFORE_NATIONAL_DAY, datetime(2026, 10, 8, 18, 0, tzinfo=TZ)),
    ({"days": 3}, BEFORE_NATIONAL_DAY, datetime(2026, 10, 10, 18, 0, tzinfo=TZ)),  # 调休 Saturday
    ({"weeks": 1}, FRIDAY, datetime(2026, 8, 21, 18, 0, tzinfo=TZ)),
    ({"weeks": 1}, datetime(2026, 9, 25, 12, 0, tzinfo=TZ), datetime(2026, 10, 8, 12, 0, tzinfo=TZ)),
    ({"date": "8月20日"}, FRIDAY, datetime(2026, 8, 20, 18, 0, tzinfo=TZ)),
], ids=["two-days-over-a-weekend", "one-day-over-national-day", "make-up-saturday-counts",
        "a-week", "a-week-into-the-holiday", "a-date"])
def test_a_delay_counts_working_days_from_the_current_deadline(args, current, expected):
    now = datetime(2026, 8, 3, 9, 0, tzinfo=TZ)
    asked = requested_deadline(args, current, now, workday_end=time(18, 0),
                               workdays=CALENDAR.is_workday)
    assert asked.ok and asked.value == expected


def test_a_delay_that_lands_in_the_past_is_reported():
    now = datetime(2026, 8, 20, 9, 0, tzinfo=TZ)
    asked = requested_deadline({"days": 2}, FRIDAY, now, workdays=CALENDAR.is_workday)
    assert asked.error == "past"


def test_without_a_calendar_weekends_are_the_rest_days():
    assert after_working_days(FRIDAY.date(), 1).isoformat() == "2026-08-17"
