"""Conversations over real SMTP and IMAP about files: the templates as .xlsx, a filled-in table
sent back as an attachment, a table with problems returned marked, an old .xls refused, and the
deadline as a calendar entry through confirm, a moved deadline and a reassignment.

People send by SMTP; maild handles its inbox over IMAP and sends by SMTP; each test reads what
arrived over IMAP and opens the attached files as the people would (openpyxl, icalendar).
"""

from __future__ import annotations

import email.policy
import io
import uuid
from datetime import date, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest
from conversation import TZ, Conversation, FakeClock, make_config, text_of
from icalendar import Calendar
from openpyxl import load_workbook

pytestmark = pytest.mark.integration

INITIATOR = "li.na@corp.example"
# The helpers test_conversation imports too (duplicates): both are conversations over real mail.
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"



@pytest.fixture
def quick(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    conversation = Conversation(embedded_mail, make_config(embedded_mail, tmp_path / "var"), clock)
    for address in conversation.config.embedded_system.accounts:  # the module shares mailboxes
        conversation.inbox(address)
    yield conversation
    conversation.close()


def send_with_file(convo: Conversation, sender: str, subject: str, body: str,
                   filename: str, data: bytes, content_type: str = XLSX) -> str:
    """An email with one attached file, as Outlook or Foxmail sends it."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, convo.config.inbox_address, subject
    msg["Date"] = format_datetime(convo.clock())
    msg["Message-ID"] = message_id = f"<{uuid.uuid4().hex}@corp.example>"
    msg.set_content(body)
    maintype, subtype = content_type.split("/", 1)
    msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename, cte="base64")
    convo.send_raw(sender, [convo.config.inbox_address], msg.as_bytes(policy=email.policy.SMTP))
    return message_id


def files_of(msg: EmailMessage) -> dict[str, tuple[str, bytes]]:
    """file name → (content type, bytes) of an email's attachments."""
    return {part.get_filename(): (part.get_content_type(), part.get_payload(decode=True))
            for part in msg.iter_attachments()}


def calendars_of(msg: EmailMessage) -> list[Calendar]:
    """The text/calendar parts inside the email's alternative (what Outlook and Gmail read)."""
    found = []
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            found.append(Calendar.from_ical(part.get_payload(decode=True)))
    return found


def fill_project(template: bytes, rows: list[list[str | None]], *, merge: bool = True) -> bytes:
    """Template 1 filled as a person does in Excel: the example row overwritten, more rows
    below it, 项目名称 / 发起人 / 参与人 merged down the rows."""
    book = load_workbook(io.BytesIO(template))
    sheet = book.worksheets[0]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            sheet.cell(row=r, column=c, value=value)
    if merge and len(rows) > 1:
        for column in "ABC":
            sheet.merge_cells(f"{column}2:{column}{len(rows) + 1}")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


Q3_ROWS = [["Q3新品推广项目", "李娜 / 市场部", "产品部、销售部、客服部", "新品核心卖点提炼", "8月10日前",
            "王喆", "未开始", "需结合用户调研数据"],
           [None, None, None, "渠道推广方案制定", "8月15日前", "赵磊", "未开始", "预算上限待财务部确认"],
           [None, None, None, "客诉应对流程培训", "8月20日前", "陈静", "未开始", "需产品部提供FAQ文档"]]
GOAL = "目标/背景：新品计划8月上市，3个月内用户增长50%\n交付标准：见附件\n"


def _templates(convo: Conversation) -> dict[str, tuple[str, bytes]]:
    convo.say(INITIATOR, "模板", "模板")
    convo.process()
    (answer,) = convo.inbox(INITIATOR)
    return files_of(answer)


def test_templates_come_as_xlsx_and_a_filled_one_comes_back_as_the_project(convo):
    files = _templates(convo)
    assert sorted(files) == ["模板1-跨部门项目协作沟通记录表.xlsx", "模板2-日常任务同步跟进表.xlsx",
                             "模板3-紧急事务处理快速响应表.xlsx"]
    assert {ctype for ctype, _ in files.values()} == {XLSX}
    template = files["模板1-跨部门项目协作沟通记录表.xlsx"][1]
    header = [c.value for c in load_workbook(io.BytesIO(template)).worksheets[0][1]]
    assert header[:6] == ["项目名称", "发起人/部门", "参与人/部门", "沟通事项", "时间节点", "负责人"]

    filled = fill_project(template, Q3_ROWS)
    send_with_file(convo, INITIATOR, "Q3新品推广项目（见附件）", GOAL + "\n谢谢", "Q3推广.xlsx", filled)
    convo.process()

    item = convo.service.store.get_item("MD-0001")
    assert item is not None and item["kind"] == "project" and item["title"] == "Q3新品推广项目"
    assert [(t["name"], t["owner"], t["deadline"][:10]) for t in item["tasks"]] == [
        ("新品核心卖点提炼", "wang.zhe@corp.example", "2026-08-10"),
        ("渠道推广方案制定", "zhao.lei@corp.example", "2026-08-15"),
        ("客诉应对流程培训", "chen.jing@corp.example", "2026-08-20")]
    assert item["tasks"][1]["note"] == "预算上限待财务部确认"
    (receipt,) = convo.inbox(INITIATOR)
    assert "MD-0001" in str(receipt["Subject"])
    assert len(convo.inbox("wang.zhe@corp.example")) == 1


def test_a_table_with_problems_comes_back_marked(quick):
    template = _templates(quick)["模板1-跨部门项目协作沟通记录表.xlsx"][1]
    rows = [list(r) for r in Q3_ROWS]
    rows[1][5] = "孙悟空"  # nobody in the directory
    rows[2][4] = "尽快"  # no date
    send_with_file(quick, INITIATOR, "Q3新品推广项目", GOAL, "Q3推广.xlsx",
                   fill_project(template, rows))
    quick.process()

    assert quick.service.store.get_item("MD-0001") is None
    (reply,) = quick.inbox(INITIATOR)
    assert "孙悟空" in text_of(reply) and "尽快" in text_of(reply)
    assert "Q3推广-待修改.xlsx" in text_of(reply)
    ((name, (ctype, data)),) = files_of(reply).items()
    assert name == "Q3推广-待修改.xlsx" and ctype == XLSX
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    red = {c.coordinate: c.comment.text for row in sheet.iter_rows() for c in row
           if c.fill.fgColor.rgb.endswith("FFC7CE")}
    assert set(red) == {"F3", "E4"}
    assert "通讯录" in red["F3"] and "日期" in red["E4"]
    assert sheet["D2"].value == "新品核心卖点提炼"  # the sender's own file, everything kept


def test_a_gbk_csv_and_a_word_table_are_read_like_the_xlsx(quick):
    csv_text = ("任务名称,发起人,负责人,优先级,截止日期,当前进度,完成情况简述,反馈时间\r\n"
                "月度客户满意度报告,李娜,王喆,高,8月30日,0%,,\r\n")
    send_with_file(quick, INITIATOR, "[任务] 月度客户满意度报告", "交付标准：PDF报告\n",
                   "跟进表.csv", csv_text.encode("gbk"), "text/csv")
    quick.process()
    item = quick.service.store.get_item("MD-0001")
    assert item is not None and item["kind"] == "task"
    assert (item["tasks"][0]["name"], item["tasks"][0]["owner"]) == (
        "月度客户满意度报告", "wang.zhe@corp.example")

    from docx import Document
    document = Document()
    document.add_paragraph("目标/背景：渠道拓展")
    table = document.add_table(rows=3, cols=4)
    for r, row in enumerate([["任务名称", "负责人", "截止日期", "交付标准"],
                             ["渠道推广方案", "赵磊", "8月15日前", "预算与投放节奏"],
                             ["销售培训", "陈静", "8月20日前", "培训签到记录"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    out = io.BytesIO()
    document.save(out)
    send_with_file(quick, INITIATOR, "[项目] 渠道拓展", "项目名称：渠道拓展\n", "分工.docx",
                   out.getvalue(),
                   "application/vnd.openxmlformats-officedocument.wordprocessingml.document")
    quick.process()
    item = quick.service.store.get_item("MD-0002")
    assert item is not None and [t["owner"] for t in item["tasks"]] == [
        "zhao.lei@corp.example", "chen.jing@corp.example"]


def test_an_old_xls_is_answered_with_how_to_send_it(quick):
    ole2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000)
    send_with_file(quick, INITIATOR, "项目表", "请看附件", "项目表.xls", ole2,
                   "application/vnd.ms-excel")
    quick.process()
    (reply,) = quick.inbox(INITIATOR)
    assert ".xlsx" in text_of(reply) and "项目表.xls" in str(reply["Subject"])
    assert len(files_of(reply)) == 3  # the templates, to fill in instead


def _confirmed_project(convo: Conversation) -> EmailMessage:
    send_with_file(convo, INITIATOR, "Q3新品推广项目", GOAL, "Q3推广.xlsx",
                   fill_project(_templates(convo)["模板1-跨部门项目协作沟通记录表.xlsx"][1],
                                Q3_ROWS))
    convo.process()
    convo.inbox(INITIATOR)
    (request,) = convo.inbox("wang.zhe@corp.example")
    convo.clock.advance(minutes=20)
    convo.reply("wang.zhe@corp.example", request, "确认")
    convo.process()
    (ack,) = convo.inbox("wang.zhe@corp.example")
    return ack


def test_confirming_brings_a_calendar_entry_that_moves_and_is_cancelled(convo):
    ack = _confirmed_project(convo)
    assert ack.get_content_type() == "multipart/mixed"
    (calendar,) = calendars_of(ack)
    assert calendar["METHOD"] == "REQUEST"
    (event,) = calendar.walk("VEVENT")
    uid = str(event["UID"])
    assert uid == "md-0001-t-1@corp.example"
    assert int(event["SEQUENCE"]) == 0
    assert event.decoded("DTSTART") == date(2026, 8, 10)  # "8月10日前": an all-day entry
    assert "新品核心卖点提炼" in str(event["SUMMARY"])
    assert "wang.zhe@corp.example" in str(event["ATTENDEE"])
    assert "collab+" in str(event["DESCRIPTION"])  # the owner's own reply address
    assert files_of(ack)["MD-0001-T-1.ics"][0] == "application/ics"

    # The initiator moves the deadline: the same entry, SEQUENCE 1, the new date.
    (told,) = convo.inbox(INITIATOR)
    convo.reply(INITIATOR, told, "延期至 8月12日")
    convo.process()
    (moved,) = calendars_of(convo.inbox("wang.zhe@corp.example")[0])
    (event,) = moved.walk("VEVENT")
    assert (str(event["UID"]), int(event["SEQUENCE"])) == (uid, 1)
    assert event.decoded("DTSTART") == date(2026, 8, 12)

    # Reassigned to 赵磊: 王喆's entry is cancelled (a newer SEQUENCE), 赵磊 is asked first.
    convo.inbox(INITIATOR)
    convo.reply(INITIATOR, told, "转派 T-1 给 zhao.lei@corp.example")
    convo.process()
    cancelled = [c for m in convo.inbox("wang.zhe@corp.example") for c in calendars_of(m)]
    assert [c["METHOD"] for c in cancelled] == ["CANCEL"]
    (event,) = cancelled[0].walk("VEVENT")
    assert (str(event["UID"]), str(event["STATUS"])) == (uid, "CANCELLED")
    assert int(event["SEQUENCE"]) == 2
    assert all(not calendars_of(m) for m in convo.inbox("zhao.lei@corp.example"))


def test_the_initiators_digest_carries_the_project_as_the_guides_table(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    config = make_config(embedded_mail, tmp_path / "var", **{"digest.attach_table": True})
    convo = Conversation(embedded_mail, config, clock)
    try:
        for address in config.embedded_system.accounts:
            convo.inbox(address)
        send_with_file(convo, INITIATOR, "Q3新品推广项目", GOAL, "Q3推广.xlsx",
                       fill_project(_templates(convo)["模板1-跨部门项目协作沟通记录表.xlsx"][1],
                                    Q3_ROWS))
        convo.process()
        convo.inbox(INITIATOR)
        clock.now = datetime(2026, 8, 4, 9, 5, tzinfo=TZ)
        convo.service.run_schedules(clock.now)
        convo.service.store.commit()
        convo.service.drain()
        digests = [m for m in convo.inbox(INITIATOR) if files_of(m)]
        assert len(digests) == 1
        ((name, (ctype, data)),) = files_of(digests[0]).items()
        assert name == "跨部门项目协作沟通记录表-MD-0001.xlsx" and ctype == XLSX
        book = load_workbook(io.BytesIO(data))
        sheet = book["跨部门项目协作沟通记录表"]
        assert [c.value for c in sheet[1]][:6] == ["项目名称", "发起人/部门", "参与人/部门", "沟通事项",
                                                  "时间节点", "负责人"]
        assert [sheet.cell(row=r, column=4).value for r in (2, 3, 4)] == [
            "新品核心卖点提炼", "渠道推广方案制定", "客诉应对流程培训"]
        assert sheet["G2"].value == "未开始" and "A2:A4" in {str(r) for r in sheet.merged_cells.ranges}
        assert "审计记录" in book.sheetnames
    finally:
        convo.close()


def test_the_archive_keeps_the_record_as_the_guides_table(quick):
    csv_text = "任务名称,负责人,截止日期,交付标准\r\n月度客户满意度报告,王喆,8月30日,PDF报告\r\n"
    send_with_file(quick, INITIATOR, "[任务] 月度客户满意度报告", "请按附件执行",
                   "任务.csv", csv_text.encode("gbk"), "text/csv")
    quick.process()
    (request,) = quick.inbox("wang.zhe@corp.example")
    quick.reply("wang.zhe@corp.example", request, "确认")
    quick.process()
    quick.reply("wang.zhe@corp.example", request, "完成：报告已发")
    quick.process()
    retro = [m for m in quick.inbox(INITIATOR) if "结项" in text_of(m)][-1]
    quick.reply(INITIATOR, retro, "结项\n是否达成目标：是\n未达目标原因：无\n可优化点：提前收集数据")
    quick.process()
    (folder,) = [p for p in quick.config.archive_dir.iterdir() if p.name.startswith("2026-Q3")]
    book = load_workbook(folder / "记录表.xlsx")
    sheet = book["日常任务同步跟进表"]
    assert [c.value for c in sheet[2]][:3] == ["月度客户满意度报告", "市场部 李娜", "产品部 王喆"]
    assert sheet["F2"].value == "100%"
    assert [row[0].value for row in book["复盘"].iter_rows()] == ["是否达成目标", "未达目标原因",
                                                                  "可优化点"]
    actions = [row[2].value for row in book["审计记录"].iter_rows(min_row=2)]
    assert actions[:1] == ["created"] and "confirm" in actions and actions[-1] == "close"
