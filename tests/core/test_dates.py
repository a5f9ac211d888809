"""parse_deadline: the deadline forms people write, in Chinese and English, and what they mean."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from maild.core.dates import Deadline, parse_deadline, previous_workday
from maild.core.datewords import ACCEPTED_FORMS

TZ = ZoneInfo("Asia/Shanghai")
SAT = datetime(2026, 8, 1, 10, 0, tzinfo=TZ)  # a Saturday morning


def at(y: int, m: int, d: int, hh: int = 18, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=TZ)


# text → (value, has_time), all read on Saturday 2026-08-01 10:00
READ_ON_SATURDAY = [
    ("8月10日", at(2026, 8, 10), False),
    ("8月10日前", at(2026, 8, 10), False),
    ("8月10日之前", at(2026, 8, 10), False),
    ("8月10号", at(2026, 8, 10), False),
    ("８月１０日", at(2026, 8, 10), False),
    ("２０２６－０８－１０", at(2026, 8, 10), False),
    ("2026年8月10日", at(2026, 8, 10), False),
    ("二〇二六年八月十日", at(2026, 8, 10), False),
    ("8/10", at(2026, 8, 10), False),
    ("2026/8/10", at(2026, 8, 10), False),
    ("2026-08-10", at(2026, 8, 10), False),
    ("2026.8.10", at(2026, 8, 10), False),
    ("于8月10日前完成", at(2026, 8, 10), False),
    ("8月10日（周一）", at(2026, 8, 10), False),
    ("15号前", at(2026, 8, 15), False),
    ("下月5号", at(2026, 9, 5), False),
    ("Aug 10", at(2026, 8, 10), False),
    ("August 10", at(2026, 8, 10), False),
    ("10 Aug", at(2026, 8, 10), False),
    ("Aug 10, 2026", at(2026, 8, 10), False),
    ("10 August 2026", at(2026, 8, 10), False),
    ("by Aug. 10th", at(2026, 8, 10), False),
    ("Mon, Aug 10", at(2026, 8, 10), False),
    ("明天", at(2026, 8, 2), False),
    ("后天", at(2026, 8, 3), False),
    ("tomorrow", at(2026, 8, 2), False),
    ("明天下午3点", at(2026, 8, 2, 15), True),
    ("明天下午3点前", at(2026, 8, 2, 15), True),
    ("今天下午5点半", at(2026, 8, 1, 17, 30), True),
    ("今晚8点", at(2026, 8, 1, 20), True),
    ("上午11点", at(2026, 8, 1, 11), True),
    ("中午12点", at(2026, 8, 1, 12), True),
    ("15:30", at(2026, 8, 1, 15, 30), True),
    ("tomorrow 3pm", at(2026, 8, 2, 15), True),
    ("3pm tomorrow", at(2026, 8, 2, 15), True),
    ("tomorrow at 3:30 pm", at(2026, 8, 2, 15, 30), True),
    ("2026-08-10 15:00", at(2026, 8, 10, 15), True),
    ("2026-08-10T15:00", at(2026, 8, 10, 15), True),
    ("8月10日 15:30", at(2026, 8, 10, 15, 30), True),
    ("8月10日下午3点", at(2026, 8, 10, 15), True),
    ("周五", at(2026, 8, 7), False),
    ("周五前", at(2026, 8, 7), False),
    ("星期五之前", at(2026, 8, 7), False),
    ("Friday", at(2026, 8, 7), False),
    ("by Friday", at(2026, 8, 7), False),
    ("下周五", at(2026, 8, 7), False),
    ("下星期五", at(2026, 8, 7), False),
    ("下礼拜五", at(2026, 8, 7), False),
    ("下個禮拜五", at(2026, 8, 7), False),
    ("next Friday", at(2026, 8, 7), False),
    ("周一", at(2026, 8, 3), False),
    ("月底前", at(2026, 8, 31), False),
    ("本月底", at(2026, 8, 31), False),
    ("end of month", at(2026, 8, 31), False),
    ("下月底", at(2026, 9, 30), False),
    ("年底前", at(2026, 12, 31), False),
    ("3天内", at(2026, 8, 4), False),
    ("三天内", at(2026, 8, 4), False),
    # The tables are alike in shape (duplicates) by design: one (text, expected, note) row per form.
    ("in 3 days", at(2026, 8, 4), False),
    ("within 3 days", at(2026, 8, 4), False),
    ("3个工作日内", at(2026, 8, 5), False),
    ("3個工作日內", at(2026, 8, 5), False),
    ("within 3 working days", at(2026, 8, 5), False),
    ("2小时内", at(2026, 8, 1, 12), True),
    ("within 2 hours", at(2026, 8, 1, 12), True),
    ("EOD", at(2026, 8, 1), False),
    ("今天下班前", at(2026, 8, 1), False),
]


@pytest.mark.parametrize(("text", "value", "has_time"), READ_ON_SATURDAY,
                         ids=[case[0] for case in READ_ON_SATURDAY])
def test_reads_form(text: str, value: datetime, has_time: bool) -> None:
    assert parse_deadline(text, SAT) == Deadline(value, None, has_time)


UNREADABLE = ["asap", "尽快", "", "   ", "下周", "next week", "8/10/2026", "2月30日", "25:00",
              "晚上12点", "3天前", "13/1", "8月10日（周二）", "sometime in August",
              "明天或后天", "明天3点 4点"]


@pytest.mark.parametrize("text", UNREADABLE, ids=UNREADABLE)
def test_unparseable_is_never_guessed(text: str) -> None:
    assert parse_deadline(text, SAT) == Deadline(None, "unparseable")


PAST = [
    ("2025-01-01", at(2025, 1, 1)),
    ("本周五", at(2026, 7, 31)),  # Saturday: this week's Friday was yesterday
    ("这周五", at(2026, 7, 31)),
    ("this Friday", at(2026, 7, 31)),
    ("上午9点", at(2026, 8, 1, 9)),
]


@pytest.mark.parametrize(("text", "value"), PAST, ids=[c[0] for c in PAST])
def test_past_keeps_its_value(text: str, value: datetime) -> None:
    result = parse_deadline(text, SAT)
    assert (result.value, result.error) == (value, "past")
    assert not result.ok


# (text, now, expected value or error)
ANCHORED = [
    ("8月10日前 in autumn", "8月10日前", at(2026, 11, 27, 9), at(2027, 8, 10)),
    ("8月10日 on the day", "8月10日", at(2026, 8, 10, 9), at(2026, 8, 10)),
    ("8月10日 after work that day", "8月10日", at(2026, 8, 10, 19), "past"),
    ("12/31 on new year's eve", "12/31", at(2026, 12, 31, 9), at(2026, 12, 31)),
    ("12/31 after new year", "12/31", at(2027, 1, 2, 9), at(2027, 12, 31)),
    ("1/5 before new year", "1/5", at(2026, 12, 30, 9), at(2027, 1, 5)),
    ("Feb 29 waits for a leap year", "Feb 29", at(2026, 3, 1, 9), at(2028, 2, 29)),
    ("下周五 on Sunday", "下周五", at(2026, 8, 2, 9), at(2026, 8, 7)),
    ("下周五 on Friday", "下周五", at(2026, 8, 7, 9), at(2026, 8, 14)),
    ("周五 on Friday morning", "周五", at(2026, 8, 7, 9), at(2026, 8, 7)),
    ("周五 on Friday evening", "周五", at(2026, 8, 7, 19), "past"),
    ("本周五 on Monday", "本周五", at(2026, 8, 3, 9), at(2026, 8, 7)),
    ("月底前 on the last day", "月底前", at(2026, 8, 31, 9), at(2026, 8, 31)),
    ("月底前 after work on the last day", "月底前", at(2026, 8, 31, 19), "past"),
    ("月底 in February", "月底", at(2028, 2, 3, 9), at(2028, 2, 29)),
    ("3个工作日内 on Friday", "3个工作日内", at(2026, 8, 7, 9), at(2026, 8, 12)),
    ("15号 after the 15th", "15号", at(2026, 8, 20, 9), at(2026, 9, 15)),
    ("31号 skips short months", "31号", at(2026, 9, 2, 9), at(2026, 10, 31)),
]


@pytest.mark.parametrize(("text", "now", "expected"), [c[1:] for c in ANCHORED],
                         ids=[c[0] for c in ANCHORED])
def test_relative_to_now(text: str, now: datetime, expected: datetime | str) -> None:
    result = parse_deadline(text, now)
    if isinstance(expected, str):
        assert result.error == expected
    else:
        assert (result.value, result.error) == (expected, None)


def test_workday_end_is_a_parameter() -> None:
    result = parse_deadline("明天", SAT, workday_end=time(17, 30))
    assert result == Deadline(at(2026, 8, 2, 17, 30), None, False)


def test_work_calendar_hook_skips_holidays() -> None:
    holidays = {date(2026, 10, d) for d in range(1, 8)}

    def workdays(day: date) -> bool:
        return day.weekday() < 5 and day not in holidays

    now = at(2026, 9, 30, 9)
    assert parse_deadline("3个工作日内", now, workdays=workdays).value == at(2026, 10, 12)
    assert parse_deadline("3个工作日内", now).value == at(2026, 10, 5)


def test_result_is_in_the_timezone_of_now() -> None:
    now = datetime(2026, 8, 1, 10, 0, tzinfo=ZoneInfo("Europe/London"))
    result = parse_deadline("Aug 10", now)
    assert result.value == datetime(2026, 8, 10, 18, 0, tzinfo=ZoneInfo("Europe/London"))
    assert result.value is not None and result.value.tzinfo is now.tzinfo


@pytest.mark.parametrize("language", ["zh", "en"])
def test_every_accepted_example_parses(language: str) -> None:
    for example in ACCEPTED_FORMS[language]:
        result = parse_deadline(example, SAT)
        assert result.value is not None, example
        assert result.error in (None, "past"), example


# The forms the guide's users write (issue 14), as of Monday 2026-07-27 09:00.
GUIDE_NOW = datetime(2026, 7, 27, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
GUIDE_FORMS = [
    ("8.10", "2026-08-10"), ("8.10前", "2026-08-10"), ("08/10", "2026-08-10"),
    ("8-10", "2026-08-10"), ("Q3末", "2026-09-30"), ("三季度末", "2026-09-30"),
    ("本季度末", "2026-09-30"), ("季度末", "2026-09-30"), ("下季度末", "2026-12-31"),
    ("8月上旬", "2026-08-10"), ("8月中旬", "2026-08-20"), ("8月下旬", "2026-08-31"),
    ("下旬", "2026-07-31"), ("中旬", "2026-08-20"), ("下月中旬", "2026-08-20"),
    ("两周内", "2026-08-10"), ("下周三", "2026-08-05"), ("月底", "2026-07-31"),
    ("8月底", "2026-08-31"), ("８月１０日前", "2026-08-10"), ("８．１０", "2026-08-10"),
    ("mid-August", "2026-08-20"), ("late Aug", "2026-08-31"), ("end of Q3", "2026-09-30"),
    ("end of quarter", "2026-09-30"),
]


@pytest.mark.parametrize(("text", "day"), GUIDE_FORMS, ids=[f[0] for f in GUIDE_FORMS])
def test_guide_date_forms(text: str, day: str) -> None:
    deadline = parse_deadline(text, GUIDE_NOW)
    assert deadline.ok and deadline.value is not None
    assert deadline.value.date().isoformat() == day
    assert deadline.value.hour == 18  # no time given: the end of that working day


@pytest.mark.parametrize(("day", "before"), [
    ("2026-08-15", "2026-08-14"), ("2026-08-16", "2026-08-14"), ("2026-08-14", "2026-08-13")],
    ids=["saturday", "sunday", "friday"])
def test_previous_workday(day: str, before: str) -> None:
    assert previous_workday(date.fromisoformat(day)).isoformat() == before


def test_previous_workday_follows_the_calendar() -> None:
    """With a work calendar: the day before National Day week is the last working day."""
    holidays = {date(2026, 10, d) for d in range(1, 9)}
    assert previous_workday(date(2026, 10, 5), lambda d: d.weekday() < 5 and d not in holidays
                            ) == date(2026, 9, 30)
