"""The archive: safe folder names, the readable record, atomic and idempotent writes, the index
and the lessons page."""

from __future__ import annotations

import copy
import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maild.adapters import archive
from maild.mail.record import RecordRenderer, achieved_mark, improvement_lines, md

TZ = "Asia/Shanghai"
SH = ZoneInfo(TZ)
CLOSED = datetime(2026, 9, 20, 17, 0, tzinfo=SH)


@pytest.fixture(scope="module")
def renderer() -> RecordRenderer:
    return RecordRenderer()


def _entry(at: str, who: str, action: str, task: str | None, **detail: object) -> dict:
    return {"at": at, "who": who, "action": action, "task": task,
            "message_id": f"{action}-{at}@corp.example", "detail": detail}


def make_item(item_id: str = "MD-0012", title: str = "Q3新品推广项目", **extra: object) -> dict:
    lina, wang, zhao = "lina@corp.example", "wangzhe@corp.example", "zhaolei@corp.example"
    item = {
        "id": item_id, "kind": "project", "title": title, "language": "zh", "state": "closed",
        "initiator": lina, "initiator_name": "李娜", "initiator_department": "市场部",
        "participants": ["产品部", "销售部", "客服部"],
        "goal": "新品计划8月上市，3个月内用户增长50%", "scope": "产品卖点提炼、推广素材制作",
        "created_at": "2026-08-01T09:00:00+08:00", "closed_at": CLOSED.isoformat(),
        "closed_by": lina,
        "tasks": [
            {"id": "T-1", "name": "新品核心卖点提炼", "owner": wang, "owner_name": "王喆",
             "owner_department": "产品部", "deadline": "2026-08-10T18:00:00+08:00",
             "deliverable": "500字以内卖点说明+用户场景图", "state": "done", "progress": 100,
             "confirmed_at": "2026-08-01T10:00:00+08:00"},
            {"id": "T-2", "name": "渠道推广方案", "owner": zhao, "owner_name": "赵磊",
             "owner_department": "销售部", "deadline": "2026-08-15T18:00:00+08:00",
             "deliverable": "包含预算、渠道选择、投放节奏", "state": "delayed", "progress": 80,
             "confirmed_at": None},
        ],
        "audit": [
            _entry("2026-08-01T09:00:00+08:00", lina, "created", None, tasks=2),
            _entry("2026-08-01T10:00:00+08:00", wang, "confirm", "T-1"),
            _entry("2026-08-03T11:00:00+08:00", zhao, "progress", "T-2", percent=50),
            _entry("2026-08-05T10:00:00+08:00", zhao, "blocker", "T-2",
                   situation="推广素材制作延迟", cause="设计部人手不足",
                   support="需市场部协调1名设计师临时支援"),
            _entry("2026-08-06T10:00:00+08:00", zhao, "delay", "T-2",
                   deadline="2026-08-20T18:00:00+08:00", reason="等设计支援"),
            _entry("2026-08-09T16:30:00+08:00", wang, "done", "T-1", note="见附件"),
            _entry(CLOSED.isoformat(), lina, "close", None),
        ],
        "retrospective": {"achieved": "部分达成", "shortfall": "销售培训参与率仅60%",
                          "improvements": "后续需提前3天同步培训时间\n纳入部门考核"},
    }
    item.update(extra)
    return item


EMAILS = [("[项目] Q3新品推广项目", b"From: lina@corp.example\r\nSubject: x\r\n\r\nhello\r\n"),
          ("Re: 确认", b"From: wangzhe@corp.example\r\n\r\n\xe7\xa1\xae\xe8\xae\xa4\r\n")]


# --------------------------------------------------------------------------------------------
# Names

FOLDER_CASES = [
    ("Q3新品推广项目", "2026-Q3-Q3新品推广项目"),
    ("Monthly customer report", "2026-Q3-Monthly customer report"),
    ("../../etc/passwd", "2026-Q3-etc_passwd"),
    ("a/b\\c", "2026-Q3-a_b_c"),
    ("CON", "2026-Q3-_CON"),
    ("名字:带*非法?字符", "2026-Q3-名字_带_非法_字符"),
    ("x" * 300, "2026-Q3-" + "x" * 80),
    ("项" * 300, "2026-Q3-" + "项" * 53),
    ("发布🚀会 👩\u200d💻", "2026-Q3-发布🚀会 👩\u200d💻"),
    ("", "2026-Q3-MD-0012"),
    ("../..", "2026-Q3-MD-0012"),
    ("结项报告...  ", "2026-Q3-结项报告"),
    ("line\nbreak\x00\u202eevil", "2026-Q3-line breakevil"),
]


@pytest.mark.parametrize(("title", "expected"), FOLDER_CASES, ids=[
    "zh", "en", "traversal", "separators", "reserved", "illegal-chars", "300-ascii",
    "300-cjk-bytes", "emoji", "empty", "only-dots", "trailing-dots", "control-bidi"])
def test_folder_name(title: str, expected: str) -> None:
    name = archive.folder_name({"id": "MD-0012", "title": title}, CLOSED)
    assert name == expected
    assert "/" not in name and "\\" not in name and ".." not in name
    assert len(name.encode("utf-8")) <= 200  # room for "-MD-0012" under 255 bytes
    name.encode("utf-8")  # no lone surrogate


@pytest.mark.parametrize(("month", "quarter"), [(1, "Q1"), (3, "Q1"), (4, "Q2"), (9, "Q3"),
                                                (10, "Q4"), (12, "Q4")],
                         ids=["jan", "mar", "apr", "sep", "oct", "dec"])
def test_quarter_of(month: int, quarter: str) -> None:
    assert archive.quarter_of(datetime(2026, month, 15)) == quarter


def test_folder_name_uses_the_items_timezone() -> None:
    late_utc = datetime(2026, 9, 30, 20, 0, tzinfo=ZoneInfo("UTC"))  # Oct 1, 04:00 in Shanghai
    assert archive.folder_name({"id": "MD-1", "title": "t"}, late_utc, tz=TZ) == "2026-Q4-t"
    assert archive.folder_name({"id": "MD-1", "title": "t"}, late_utc) == "2026-Q3-t"


def test_email_file_names_are_numbered_and_safe() -> None:
    emails = [("Re: a/b", b""), ("", b""), ("x.eml", b"")]
    assert archive.email_file_names(emails) == ["01-Re_ a_b.eml", "02-email.eml", "03-x.eml"]
    assert archive.email_file_names([("s", b"")] * 100)[-1] == "100-s.eml"


# --------------------------------------------------------------------------------------------
# The record


def test_record_shows_every_task_history_blocker_delay_and_retrospective(renderer) -> None:
    markdown, html = renderer.record(make_item(), tz=TZ)
    for text in (markdown, html):
        for expected in ("Q3新品推广项目", "李娜", "市场部", "产品部、销售部、客服部",
                         "新品计划8月上市", "新品核心卖点提炼", "渠道推广方案", "王喆", "赵磊",
                         "500字以内卖点说明+用户场景图", "2026-08-10 18:00", "已完成", "延期",
                         "推广素材制作延迟", "设计部人手不足", "需市场部协调1名设计师临时支援",
                         "2026-08-20 18:00", "等设计支援", "部分达成", "销售培训参与率仅60%",
                         "后续需提前3天同步培训时间", "纳入部门考核", "2026-08-09 16:30",
                         "见附件", "反馈问题", "申请延期"):
            assert expected in text, expected
    assert "### T-1 新品核心卖点提炼" in markdown and "### T-2 渠道推广方案" in markdown
    assert "- 纳入部门考核" in markdown
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html


def test_record_in_english(renderer) -> None:
    markdown, html = renderer.record(make_item(language="en"), tz=TZ)
    assert "## Blockers" in markdown and "Goal achieved" in html and "Delays" in html


def test_record_escapes_hostile_text(renderer) -> None:
    evil = '<script>alert(1)</script> | **x** [a](javascript:1)\n# h'
    item = make_item(title=evil, goal=evil)
    item["tasks"][0]["name"] = evil
    item["audit"][3]["detail"]["cause"] = evil
    item["retrospective"]["improvements"] = [evil]
    markdown, html = renderer.record(item, tz=TZ)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in markdown and "\\<script\\>" in markdown
    assert "\\| \\*\\*x\\*\\* \\[a\\](javascript:1)<br>\\# h" in markdown
    for line in markdown.splitlines():  # no table row gained or lost a column
        if line.startswith("| 2026-08-05 10:00 | T-2"):
            assert line.replace("\\|", "").count("|") == 7


def test_record_tolerates_a_bare_item(renderer) -> None:
    markdown, html = renderer.record({"id": "MD-9", "title": "t"}, tz=TZ, language="en")
    assert "MD-9" in markdown and "None" in markdown and "MD-9" in html


@pytest.mark.parametrize(("text", "mark"), [("是", "yes"), ("Yes", "yes"), ("否", "no"),
                                            ("部分达成", "partial"), ("否，差一点", "no"),
                                            ("", ""), ("看情况", ""), (True, "yes")],
                         ids=["shi", "yes", "fou", "partial", "fou-reason", "empty", "unknown",
                              "bool"])
def test_achieved_mark(text: object, mark: str) -> None:
    assert achieved_mark(text) == mark


def test_improvement_lines_drop_bullets() -> None:
    assert improvement_lines("1. 提前3天\n- 纳入考核\n\n（3）复盘会") == ["提前3天", "纳入考核", "复盘会"]
    assert improvement_lines(["a", " "]) == ["a"]
    assert md("a|b\nc") == "a\\|b<br>c"


# --------------------------------------------------------------------------------------------
# Writing


def _archive(root: Path, item: dict | None = None, **kwargs: object) -> Path:
    item = item or make_item()
    return archive.write_archive(root, item, EMAILS, closed_at=CLOSED, tz=TZ, **kwargs)


def test_write_archive_creates_the_tree(tmp_path: Path, renderer) -> None:
    item = make_item()
    folder = _archive(tmp_path, item, renderer=renderer)
    assert folder == tmp_path / "2026-Q3-Q3新品推广项目"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".ids", ".tmp", "2026-Q3-Q3新品推广项目", "index.jsonl"]
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert sorted(p.name for p in folder.iterdir()) == [
        "01-[项目] Q3新品推广项目.eml", "02-Re_ 确认.eml", "item.json", "record.html", "record.md"]
    assert (folder / "02-Re_ 确认.eml").read_bytes() == EMAILS[1][1]
    stored_text = (folder / "item.json").read_text(encoding="utf-8")
    assert json.loads(stored_text) == item and "新品核心卖点提炼" in stored_text  # not \\u escapes
    assert "渠道推广方案" in (folder / "record.md").read_text(encoding="utf-8")
    assert 'href="02-Re_%20%E7%A1%AE%E8%AE%A4.eml"' in (folder / "record.html").read_text()
    [entry] = archive.load_index(tmp_path)
    assert entry["id"] == "MD-0012" and entry["folder"] == folder.name
    assert entry["quarter"] == "2026-Q3" and entry["achieved"] == "部分达成"
    assert entry["closed_at"] == "2026-09-20T17:00:00+08:00"
    assert archive.archived_folder(tmp_path, "MD-0012") == folder
    assert archive.read_archived_item(tmp_path, "MD-0012") == item
    assert archive.read_archived_item(tmp_path, "MD-0404") is None


def test_write_archive_is_idempotent(tmp_path: Path, renderer, monkeypatch) -> None:
    first = _archive(tmp_path, renderer=renderer)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    monkeypatch.setattr(archive, "_write_folder", lambda *a: pytest.fail("wrote again"))
    changed = make_item(title="renamed later")  # the id decides, not the title
    assert _archive(tmp_path, changed, renderer=renderer) == first
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 1


def test_same_title_gets_the_id_as_suffix(tmp_path: Path, renderer) -> None:
    one = _archive(tmp_path, make_item("MD-0001"), renderer=renderer)
    two = _archive(tmp_path, make_item("MD-0002"), renderer=renderer)
    assert (one.name, two.name) == ("2026-Q3-Q3新品推广项目", "2026-Q3-Q3新品推广项目-MD-0002")
    assert [e["folder"] for e in archive.load_index(tmp_path)] == [one.name, two.name]


def test_failed_rename_leaves_no_folder(tmp_path: Path, renderer, monkeypatch) -> None:
    def broken_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError):
        _archive(tmp_path, renderer=renderer)
    assert [p.name for p in tmp_path.iterdir()] == [".tmp"]  # no folder, index or marker
    assert list((tmp_path / ".tmp").iterdir()) == []  # the half-built folder was removed
    monkeypatch.undo()
    assert _archive(tmp_path, renderer=renderer).is_dir()


def test_crash_before_rename_leaves_only_a_tmp_that_clean_partial_removes(
        tmp_path: Path, renderer) -> None:
    pid = os.fork()
    if pid == 0:  # the child "crashes" (no cleanup, no atexit) where the rename would be
        try:
            os.rename = lambda *a: os._exit(9)  # type: ignore[assignment]
            _archive(tmp_path, renderer=renderer)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert [p.name for p in tmp_path.iterdir()] == [".tmp"]
    leftovers = list((tmp_path / ".tmp").iterdir())
    assert len(leftovers) == 1 and leftovers[0].name.startswith("MD-0012-")
    assert (leftovers[0] / "item.json").exists()  # complete, but never published
    assert archive.load_index(tmp_path) == [] and archive.archived_folder(tmp_path, "MD-0012") is None
    assert archive.clean_partial(tmp_path) == leftovers
    assert list((tmp_path / ".tmp").iterdir()) == []
    assert _archive(tmp_path, renderer=renderer).name == "2026-Q3-Q3新品推广项目"


def test_crash_after_rename_is_completed_by_the_retry(tmp_path: Path, renderer) -> None:
    folder = _archive(tmp_path, renderer=renderer)
    (tmp_path / ".ids" / "MD-0012").unlink()  # as if killed after the index line, before marker
    assert _archive(tmp_path, renderer=renderer) == folder  # found by name, not written twice
    assert len(list(tmp_path.glob("2026-*"))) == 1
    assert len((tmp_path / "index.jsonl").read_text().splitlines()) == 2
    assert [e["id"] for e in archive.load_index(tmp_path)] == ["MD-0012"]
    assert archive.archived_folder(tmp_path, "MD-0012") == folder


def test_clean_partial_never_touches_records(tmp_path: Path, renderer) -> None:
    folder = _archive(tmp_path, make_item(title=".tmp-looks-like-a-tmp"), renderer=renderer)
    assert folder.name == "2026-Q3-tmp-looks-like-a-tmp"
    assert archive.clean_partial(tmp_path) == [] and folder.is_dir()
    assert archive.clean_partial(tmp_path / "missing") == []


# --------------------------------------------------------------------------------------------
# Index and lessons


def test_load_index_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    archive.append_index(tmp_path, {"id": "MD-1", "title": "one"})
    with open(tmp_path / "index.jsonl", "ab") as fh:
        fh.write(b'{"id": "MD-2", "tit')  # killed mid-append
    assert [e["id"] for e in archive.load_index(tmp_path)] == ["MD-1"]
    archive.append_index(tmp_path, {"id": "MD-3", "title": "three"})
    assert [e["id"] for e in archive.load_index(tmp_path)] == ["MD-1", "MD-3"]
    assert archive.load_index(tmp_path / "none") == []


def _closed(item_id: str, title: str, closed: datetime, improvements: str, **retro: str) -> dict:
    return make_item(item_id, title, closed_at=closed.isoformat(),
                     retrospective={"achieved": "是", "improvements": improvements, **retro})


def test_lessons_lists_improvements_newest_first(tmp_path: Path, renderer) -> None:
    items = [
        _closed("MD-0001", "春季促销", datetime(2026, 3, 20, tzinfo=SH), "提前锁定预算"),
        _closed("MD-0003", "Q3新品推广项目", datetime(2026, 9, 20, tzinfo=SH), "提前3天同步培训时间"),
        _closed("MD-0002", "客服系统升级", datetime(2026, 6, 1, tzinfo=SH), ""),  # nothing to learn
        _closed("MD-0004", "年中盘点", datetime(2026, 6, 30, tzinfo=SH), "", shortfall="数据晚到"),
    ]
    for item in items:
        archive.write_archive(tmp_path, item, [], closed_at=datetime.fromisoformat(
            item["closed_at"]), tz=TZ, renderer=renderer)
    markdown, html = archive.lessons(tmp_path, language="zh", renderer=renderer)
    order = [markdown.index(t) for t in ("Q3新品推广项目", "年中盘点", "春季促销")]
    assert order == sorted(order) and "客服系统升级" not in markdown
    assert "提前3天同步培训时间" in html and "2026-Q1" in markdown and "共 3 项" in markdown
    since = datetime(2026, 6, 15, tzinfo=SH)
    recent, _ = archive.lessons(tmp_path, language="en", since=since, renderer=renderer)
    assert "Q3新品推广项目" in recent and "春季促销" not in recent and "3 items" not in recent
    assert [e["id"] for e in archive.lessons_entries(tmp_path, limit=1)] == ["MD-0003"]


def test_lessons_of_an_empty_archive(tmp_path: Path, renderer) -> None:
    markdown, html = archive.lessons(tmp_path, language="en", renderer=renderer)
    assert "No closed item with a retrospective yet." in markdown and "</html>" in html


def test_lessons_escape_hostile_improvements(tmp_path: Path, renderer) -> None:
    item = copy.deepcopy(make_item())
    item["retrospective"]["improvements"] = "<img src=x onerror=alert(1)>"
    archive.write_archive(tmp_path, item, [], closed_at=CLOSED, tz=TZ, renderer=renderer)
    markdown, html = archive.lessons(tmp_path, language="zh", renderer=renderer)
    assert "<img" not in html and "&lt;img" in html and "\\<img" in markdown


def test_index_entry_is_small_and_local(renderer) -> None:
    entry = archive.index_entry(make_item(), "f", CLOSED - timedelta(hours=9), tz=TZ)
    assert entry["closed_at"] == "2026-09-20T08:00:00+08:00" and "audit" not in entry
