"""A calendar that never silently goes wrong: years declared in the rules as date ranges, merged
with chinese-calendar; gaps warned about with the exact table to add; escalations to managers
held on days no source vouches for, and the initiator's digest says why."""

from __future__ import annotations

import re
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maild.core import calgaps
from maild.core.model import Person
from maild.core.people import Directory
from maild.core.planner import load_schedule_rules, plan
from maild.core.workcal import PACKAGE_YEARS, load_calendar, package_days
from maild.mail.render import Renderer

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
SHIPPED_TEXT = (ROOT / "rules" / "schedules.toml").read_text("utf-8")
SHIPPED = tomllib.loads(SHIPPED_TEXT)
RULES = load_schedule_rules(SHIPPED)
LAST_KNOWN = PACKAGE_YEARS[-1]  # 2026 with chinese-calendar 1.11.0
NEXT = LAST_KNOWN + 1

# How an operator types a year in, the way the State Council's notice lists it. The dates are
# made up for the test (a year the package does not know has no official dates here).
DECLARED = f"""
[calendar]
holidays = "cn"

[calendar.{NEXT}]
source = "test notice"
workdays = [{NEXT}-02-20, "{NEXT}-02-27"]

[calendar.{NEXT}.holidays]
"{NEXT}-01-01..{NEXT}-01-03" = "元旦"
"{NEXT}-02-06..{NEXT}-02-12" = "春节"
"{NEXT}-10-01 .. {NEXT}-10-07" = "国庆节"
"""


def cal_from(text: str):
    return load_calendar(tomllib.loads(text), "Asia/Shanghai")


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=TZ)


# -- the calendar: sources merged ------------------------------------------------------------


def test_a_declared_year_is_vouched_for_and_its_ranges_are_days_off() -> None:
    cal = cal_from(DECLARED)
    assert cal.covers(NEXT) and cal.vouches_for(date(NEXT, 5, 5))
    assert not cal.covers(NEXT + 1) and not cal.vouches_for(date(NEXT + 1, 1, 4))
    for day in (date(NEXT, 1, 1), date(NEXT, 2, 6), date(NEXT, 2, 12), date(NEXT, 10, 7)):
        assert not cal.is_workday(day), day
    assert cal.is_workday(date(NEXT, 2, 20))  # a make-up Saturday
    assert cal.is_workday(date(NEXT, 2, 13)) is (date(NEXT, 2, 13).weekday() < 5)
    assert cal.vouches_for(date(LAST_KNOWN, 10, 1)) and not cal.is_workday(date(LAST_KNOWN, 10, 1))


def test_without_a_declaration_the_next_year_is_not_vouched_for() -> None:
    cal = load_calendar(SHIPPED, "Asia/Shanghai")
    assert not cal.covers(NEXT) and not cal.vouches_for(date(NEXT, 2, 8))
    assert cal.is_workday(date(NEXT, 2, 8)) is (date(NEXT, 2, 8).weekday() < 5)  # weekends only


def test_a_company_day_is_vouched_for_but_not_its_year() -> None:
    cal = cal_from(f'[calendar]\nextra_holidays = ["{NEXT}-01-04..{NEXT}-01-05"]\n')
    assert cal.vouches_for(date(NEXT, 1, 4)) and not cal.is_workday(date(NEXT, 1, 5))
    assert not cal.vouches_for(date(NEXT, 1, 6)) and not cal.covers(NEXT)


def test_holidays_none_vouches_for_every_day() -> None:
    cal = cal_from('[calendar]\nholidays = "none"\n')
    assert cal.vouches_for(date(2099, 1, 1)) and calgaps.gaps(cal, date(2099, 1, 1)) == []


def test_the_shipped_example_is_2026_as_the_package_has_it() -> None:
    """The commented example in rules/schedules.toml, uncommented, is exactly the package's 2026:
    the format is shown with official dates, and no rule disagrees with the package."""
    block = re.search(r"^# \[calendar\.2026\]\n(?:^#.*\n)+", SHIPPED_TEXT, re.M)
    assert block, "rules/schedules.toml lost its [calendar.2026] example"
    text = "[calendar]\n" + "\n".join(line[2:] for line in block[0].splitlines())
    cal = cal_from(text)
    holidays, workdays = package_days(2026)
    assert cal.declared_years == {2026}
    assert cal.official_holidays == holidays and cal.official_workdays == workdays
    assert calgaps.disagreements(cal) == []


def test_rules_win_over_the_package_and_disagreements_show() -> None:
    cal = cal_from('[calendar]\n[calendar.2026]\nworkdays = [2026-10-07]\n'
                   '[calendar.2026.holidays]\n"2026-09-30" = "公司调整"\n')
    assert cal.is_workday(date(2026, 10, 7)) and not cal.is_workday(date(2026, 9, 30))
    assert calgaps.disagreements(cal) == [(date(2026, 9, 30), True), (date(2026, 10, 7), False)]


@pytest.mark.parametrize("text, message", [
    ("[calendar.2O27]\nworkdays = []", "neither a setting"),
    ("[calendar]\nextra_holiday = []", "neither a setting"),
    ("[calendar.2027]\nholiday = {}", "holidays, workdays and source"),
    ('[calendar.2027.holidays]\n"2027-02-12..2027-02-06" = "春节"', "runs forward"),
    ('[calendar.2027.holidays]\n"2027-02-06..2028-02-12" = "春节"', "at most 31 days"),
    ('[calendar.2027.holidays]\n"2027-02-30" = "x"', "not a date or a range"),
    ('[calendar.2027]\nworkdays = ["2027-02-06"]\n[calendar.2027.holidays]\n'
     '"2027-02-06" = "春节"', "both as a holiday and as a workday"),
], ids=["typo-year", "typo-key", "unknown-year-key", "backwards", "too-long", "no-such-day",
        "both"])
def test_mistakes_in_a_year_are_named(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cal_from(text)


# -- the warning ---------------------------------------------------------------------------------


def test_gaps_are_runs_of_days_no_source_knows() -> None:
    cal = cal_from(f'[calendar]\nextra_workdays = ["{NEXT}-01-09"]\n')
    found = calgaps.gaps(cal, date(LAST_KNOWN, 12, 20), days=30)
    assert [(g.first, g.last) for g in found] == [
        (date(NEXT, 1, 1), date(NEXT, 1, 8)), (date(NEXT, 1, 10), date(NEXT, 1, 18))]
    assert calgaps.missing_years(found) == [NEXT]
    assert calgaps.gaps(cal, date(LAST_KNOWN, 9, 1), days=90) == []


def test_the_warning_names_the_file_the_line_and_the_table_to_add() -> None:
    cal = load_calendar(SHIPPED, "Asia/Shanghai")
    line = calgaps.insert_after(SHIPPED_TEXT)
    text = calgaps.warning(cal, date(LAST_KNOWN, 12, 4), after_line=line)
    assert text is not None
    lines = SHIPPED_TEXT.splitlines()
    assert lines[line - 1].strip() and lines[line].strip() == ""  # the end of the calendar's part
    assert lines[line + 1].startswith("[quiet_hours]")
    assert f"62 of the next 90 days ({NEXT}-01-01..{NEXT}-03-03)" in text
    assert f"rules/schedules.toml after line {line}:" in text
    assert f"    [calendar.{NEXT}]\n" in text and f"[calendar.{NEXT}.holidays]" in text
    assert "escalations to managers wait" in text and "pip install -U chinese-calendar" in text
    to_add = text[text.index("add them"):]
    assert not re.search(rf"{NEXT}-\d\d-\d\d", to_add)  # placeholders, never invented dates
    # what the warning says to add, added (with dates from the notice), ends the warning
    fixed = SHIPPED_TEXT.splitlines()
    fixed[line:line] = ["", f"[calendar.{NEXT}]", "workdays = []",
                        f"[calendar.{NEXT}.holidays]", f'"{NEXT}-01-01" = "元旦"']
    fixed_text = "\n".join(fixed)
    assert calgaps.warning(load_calendar(tomllib.loads(fixed_text), "Asia/Shanghai"),
                           date(LAST_KNOWN, 12, 4)) is None
    fields = calgaps.log_fields(cal, date(LAST_KNOWN, 12, 4))
    assert fields and f"first={NEXT}-01-01" in fields and f"years={NEXT}" in fields


def test_no_warning_while_the_next_90_days_are_known() -> None:
    cal = load_calendar(SHIPPED, "Asia/Shanghai")
    assert calgaps.warning(cal, date(LAST_KNOWN, 10, 1)) is None
    assert calgaps.log_fields(cal, date(LAST_KNOWN, 10, 1)) is None


# -- escalations to managers wait, and the digest says why ------------------------------------

PEOPLE = Directory((
    Person("李娜", "li.na@corp.example", "市场部", manager="alex.morgan@corp.example"),
    Person("王喆", "wang.zhe@corp.example", "产品部", manager="alex.morgan@corp.example"),
    Person("Alex Morgan", "alex.morgan@corp.example", "总经办"),
))


def overdue_item(language: str = "zh") -> dict[str, Any]:
    """A task due on the last day the package knows, still at 40 %."""
    return {"id": "MD-0007", "kind": "project", "title": "年度总结", "language": language,
            "state": "open", "initiator": "li.na@corp.example", "initiator_name": "李娜",
            "created_at": f"{LAST_KNOWN}-12-01T10:00:00+08:00", "root_message_id": "r@corp.example",
            "tasks": [{"id": "T-1", "name": "年度数据汇总", "owner": "wang.zhe@corp.example",
                       "owner_name": "王喆", "deadline": f"{LAST_KNOWN}-12-31T18:00:00+08:00",
                       "state": "in_progress", "progress": 40, "round": 1,
                       "confirmed_at": f"{LAST_KNOWN}-12-01T11:00:00+08:00",
                       "updated_at": f"{LAST_KNOWN}-12-01T11:00:00+08:00",
                       "sent": {f"overdue@{LAST_KNOWN}-12-31T18:00:00+08:00": "x"}}]}


def manager_levels(planned) -> list[str]:
    """The manager levels planned, once each (one rides in the manager's email and in the
    initiator's own)."""
    return list(dict.fromkeys(r[2] for p in planned for r in p.records
                              if r[2].startswith("overdue_manager")))


def test_an_escalation_to_a_manager_waits_on_a_day_no_source_knows() -> None:
    """Two working days after Dec 31 is Jan 4 by weekends alone; without the next year's
    holidays that may be a holiday: the manager is not written to, the initiator is told."""
    cal = load_calendar(SHIPPED, "Asia/Shanghai")
    planned, _ = plan([overdue_item()], at(NEXT, 1, 5, 9), RULES, cal, PEOPLE, {})
    assert manager_levels(planned) == []
    assert all("alex.morgan@corp.example" not in (*p.notice.to, *p.notice.cc) for p in planned)
    (digest,) = [p.notice for p in planned if p.notice.template == "digest"]
    assert digest.to == ("li.na@corp.example",)
    assert digest.context["calendar_hold"] == {"day": f"{NEXT}-01-05", "year": NEXT, "held": 1}


def test_once_the_year_is_declared_the_escalation_goes_on_its_working_day() -> None:
    """With 元旦 declared (Jan 1–3 off), two working days after Dec 31 end on Jan 5 at 18:00."""
    cal = cal_from(DECLARED)
    item = overdue_item()
    planned, _ = plan([item], at(NEXT, 1, 5, 17), RULES, cal, PEOPLE, {"digest": {
        "li.na@corp.example": {"done": f"{NEXT}-01-05"}}})
    assert manager_levels(planned) == []  # not yet: the declared holiday counts
    planned, _ = plan([item], at(NEXT, 1, 5, 18), RULES, cal, PEOPLE, {"digest": {
        "li.na@corp.example": {"done": f"{NEXT}-01-05"}}})
    assert manager_levels(planned) == [f"overdue_manager@{LAST_KNOWN}-12-31T18:00:00+08:00"]
    notice, hers = [p.notice for p in planned if p.notice.template == "escalation"]
    assert notice.to == ("alex.morgan@corp.example",) and "calendar_hold" not in notice.context
    assert hers.to == ("li.na@corp.example",) and not notice.cc  # she hears in her own


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(ROOT / "templates", timezone="Asia/Shanghai",
                    inbox_address="collab@corp.example", from_name="maild 协作助手")


@pytest.mark.parametrize("language, words", [
    ("zh", [f"工作日历还没有 {NEXT} 年的法定节假日安排", f"{NEXT}-01-05", "1 条给经理的升级提醒暂缓发送"]),
    ("en", [f"does not have {NEXT}'s public holidays", f"{NEXT}-01-05",
            "1 escalation(s) to managers for your items are on hold"]),
], ids=["zh", "en"])
def test_the_digest_says_why_in_the_readers_language(renderer: Renderer, language: str,
                                                     words: list[str]) -> None:
    cal = load_calendar(SHIPPED, "Asia/Shanghai")
    planned, _ = plan([overdue_item(language)], at(NEXT, 1, 5, 9), RULES, cal, PEOPLE, {})
    (notice,) = [p.notice for p in planned if p.notice.template == "digest"]
    out = renderer.render(notice, message_id="d@corp.example", date=at(NEXT, 1, 5, 9),
                          reply_address=None)
    for word in words:
        assert word in out.text, word
        assert word.replace("'", "&#39;") in out.html, word
    assert "calendar_hold" not in out.text + out.html


# -- maild check ---------------------------------------------------------------------------------


def test_check_warns_loudly_but_does_not_fail(tmp_path: Path) -> None:
    from maild.app.checkreport import Painter, format_checks
    from maild.app.checks import check_calendar

    rules_file = tmp_path / "schedules.toml"
    rules_file.write_text(SHIPPED_TEXT, "utf-8")
    cal = load_calendar(SHIPPED, "Asia/Shanghai")
    gap = check_calendar(cal, rules_file, date(LAST_KNOWN, 12, 4))
    assert gap.ok and gap.warn
    assert f"{rules_file} after line {calgaps.insert_after(SHIPPED_TEXT)}:" in gap.detail
    out = format_checks([gap], Painter(False))
    assert out.startswith("! WARN calendar") and "all 1 checks passed; 1 warning: calendar" in out
    quiet = check_calendar(cal, rules_file, date(LAST_KNOWN, 9, 1))
    assert quiet.ok and not quiet.warn and "the next 90 days from" in quiet.detail
    overruled = cal_from('[calendar]\n[calendar.2026.holidays]\n"2026-09-30" = "公司调整"\n')
    note = check_calendar(overruled, rules_file, date(LAST_KNOWN, 9, 1))
    assert note.warn and "overrules chinese-calendar on 2026-09-30 (the package: workday)" in note.detail
