"""Files in and out of an email without I/O: decode keeps a table file's bytes (and no other
attachment's), even in a big email; an outgoing email with files is multipart/mixed with the
calendar entry beside the text and HTML, stored and rebuilt byte for byte; the calendar entry's
UID, SEQUENCE, all-day or timed shape."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from maild.core.model import FileAttachment, Outgoing
from maild.mail.decode import decode
from maild.mail.ics import CANCEL, REQUEST, calendar_sequence, deadline_event
from maild.mail.mime import to_mime

TZ = ZoneInfo("Asia/Shanghai")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _email_with(files: list[tuple[str, str, bytes]]) -> bytes:
    parts = []
    for name, ctype, data in files:
        body = base64.encodebytes(data).decode("ascii")
        parts.append(f'--b\r\nContent-Type: {ctype}; name="{name}"\r\n'
                     f'Content-Disposition: attachment; filename="{name}"\r\n'
                     f"Content-Transfer-Encoding: base64\r\n\r\n{body}")
    head = ("From: li.na@corp.example\r\nTo: collab@corp.example\r\nSubject: t\r\n"
            "Message-ID: <m1@corp.example>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n见附件\r\n")
    return (head + "".join(parts) + "--b--\r\n").encode("utf-8")  # raw UTF-8 names, as Gmail


@pytest.mark.parametrize("size", [2_000, 1_200_000], ids=["small", "big-email"])
def test_decode_keeps_the_bytes_of_table_files_only(size):
    table = bytes(range(256)) * (size // 256)
    raw = _email_with([("项目表.xlsx", XLSX, table), ("photo.png", "image/png", table),
                       ("notes.csv", "text/csv", b"a,b\r\n1,2\r\n")])
    msg = decode(raw)
    by_name = {a.filename: a for a in msg.attachments}
    assert by_name["项目表.xlsx"].data == table and by_name["项目表.xlsx"].size == len(table)
    assert by_name["photo.png"].data is None and by_name["photo.png"].size == len(table)
    assert by_name["notes.csv"].data == b"a,b\r\n1,2\r\n"


def test_decode_drops_table_files_over_the_limit():
    raw = _email_with([("big.xlsx", XLSX, bytes(300_000))])
    (attachment,) = decode(raw, max_table_bytes=100_000).attachments
    assert attachment.data is None and attachment.size == 300_000


def _outgoing(files: tuple[FileAttachment, ...]) -> Outgoing:
    return Outgoing(message_id="maild.1@corp.example", to=("wang.zhe@corp.example",),
                    subject="[MD-0001] 已确认", text="文字", html="<p>网页</p>",
                    date="Mon, 03 Aug 2026 09:35:00 +0800", attachments=files)


def test_an_email_with_files_is_mixed_with_the_calendar_beside_the_text():
    ics = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"
    out = _outgoing((FileAttachment("MD-0001-T-1.ics", 'text/calendar; charset="utf-8"; '
                                    "method=REQUEST", ics, inline=True),
                     FileAttachment("模板1-跨部门项目协作沟通记录表.xlsx", XLSX, b"PK\x03\x04xlsx")))
    raw = to_mime(out, from_address="collab@corp.example", from_name="maild")
    assert raw == to_mime(Outgoing.from_dict(out.to_dict()), from_address="collab@corp.example",
                          from_name="maild")  # stored and rebuilt: the same bytes
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998 and raw.isascii()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/mixed"
    alternative = next(msg.iter_parts())
    assert [p.get_content_type() for p in alternative.iter_parts()] == [
        "text/plain", "text/html", "text/calendar"]
    calendar = list(alternative.iter_parts())[2]
    assert calendar.get_param("method") == "REQUEST" and calendar.get_content() == ics.decode()
    files = {p.get_filename(): (p.get_content_type(), p.get_content())
             for p in msg.iter_attachments()}
    assert files == {"MD-0001-T-1.ics": ("application/ics", ics),
                     "模板1-跨部门项目协作沟通记录表.xlsx": (XLSX, b"PK\x03\x04xlsx")}


def test_an_email_without_files_is_stored_and_built_as_before():
    out = _outgoing(())
    assert "attachments" not in out.to_dict()
    raw = to_mime(out, from_address="collab@corp.example", from_name="maild")
    assert b"multipart/alternative" in raw and b"multipart/mixed" not in raw


ITEM = {"id": "MD-0001", "title": "Q3新品推广项目", "language": "zh", "kind": "project",
        "tasks": [{"id": "T-1", "name": "新品核心卖点提炼", "owner": "wang.zhe@corp.example",
                   "owner_name": "王喆", "deliverable": "500字以内卖点说明",
                   "deadline": "2026-08-10T18:00:00+08:00"}],
        "audit": [{"action": "confirm", "task": "T-1"}]}


def _event(item, method=REQUEST, **kw):
    data = deadline_event(item, item["tasks"][0], method, owner="wang.zhe@corp.example",
                          organizer="collab@corp.example", organizer_name="maild 协作助手",
                          now=datetime(2026, 8, 3, 9, 35, tzinfo=TZ), tz="Asia/Shanghai",
                          workday_end=time(18, 0), **kw)
    calendar = Calendar.from_ical(data)
    return calendar, next(iter(calendar.walk("VEVENT")))


def test_a_deadline_without_a_time_is_an_all_day_entry_with_the_reply_links():
    calendar, event = _event(ITEM, reply_address="collab+md0001-t1-abc@corp.example")
    assert (calendar["METHOD"], str(event["UID"]), int(event["SEQUENCE"])) == (
        "REQUEST", "md-0001-t-1@corp.example", 0)
    assert event.decoded("DTSTART") == date(2026, 8, 10)
    assert event.decoded("DTEND") == date(2026, 8, 11)
    description = str(event["DESCRIPTION"])
    assert "500字以内卖点说明" in description
    assert "mailto:collab+md0001-t1-abc@corp.example?subject=%5BMD-0001%20T-1%5D" in description
    assert event["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"


def test_a_timed_deadline_ends_at_its_time_in_utc_and_moves_bump_the_sequence():
    item = {**ITEM, "tasks": [{**ITEM["tasks"][0], "deadline": "2026-08-10T15:00:00+08:00"}],
            "audit": [*ITEM["audit"], {"action": "deadline", "task": "T-1"},
                      {"action": "progress", "task": "T-1"}, {"action": "deadline", "task": "T-2"}]}
    _calendar, event = _event(item)
    assert event.decoded("DTEND") == datetime(2026, 8, 10, 7, 0, tzinfo=ZoneInfo("UTC"))
    assert int(event["SEQUENCE"]) == calendar_sequence(item, "T-1") == 1
    closed = {**item, "audit": [*item["audit"], {"action": "close", "task": None}]}
    calendar, event = _event(closed, CANCEL)
    assert (calendar["METHOD"], str(event["STATUS"]), int(event["SEQUENCE"])) == (
        "CANCEL", "CANCELLED", 2)
