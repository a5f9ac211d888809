"""Table files without I/O: the templates maild sends, files filled the way people fill them
(openpyxl, merged cells, WPS-saved OOXML, GBK CSV, Word tables) read exactly like the same table
pasted into an email, the limits that refuse a file before it is opened, and the marked copy."""

from __future__ import annotations

import html
import io
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from maild.core.formrules import norm
from maild.core.forms import read_form
from maild.core.model import FieldError, ItemKind
from maild.core.sheetforms import form_sheet_names, problem_cells, read_file_form
from maild.mail.sheets import Limits, TableFileError, check_limits, kind_of, read_table_file
from maild.mail.workbooks import LAYOUTS, load_sheet_words, marked_workbook, template_workbook

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 8, 1, 9, 0)


@pytest.fixture(scope="module")
def words():
    return load_sheet_words(ROOT / "templates" / "sheets.toml")


@pytest.fixture(scope="module")
def form_rules(rules):
    return rules.form_rules


def _save(book) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _fill(template: bytes, rows, merges=()) -> bytes:
    book = load_workbook(io.BytesIO(template))
    sheet = book.worksheets[0]
    for r, row in enumerate(rows, start=2):
        for c, value in enumerate(row, start=1):
            sheet.cell(row=r, column=c, value=value)
    for merged in merges:
        sheet.merge_cells(merged)
    return _save(book)


def _pasted(header, rows) -> str:
    """The same table as Excel pastes it into an email: HTML, merged cells as rowspans."""
    cells = "".join(f"<td>{html.escape(h)}</td>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v or ''))}</td>" for v in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{cells}</tr>{body}</table>"


# ── the templates ────────────────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", list(ItemKind), ids=[k.value for k in ItemKind])
def test_every_template_header_is_a_label_maild_reads_back(kind, language, words, form_rules):
    columns = words.get(language)[kind.value]["columns"]
    assert len(columns) == len(LAYOUTS[kind])
    for label, (_role, key) in zip(columns, LAYOUTS[kind], strict=True):
        if key in form_rules.labels or key in form_rules.column_labels:
            assert norm(label) in form_rules.field_index or norm(label) in form_rules.column_index, (
                label)


def test_the_guide_columns_drop_downs_example_and_hidden_marker(words):
    book = load_workbook(io.BytesIO(template_workbook(ItemKind.TASK, "zh", words, NOW)))
    sheet = book["日常任务同步跟进表"]
    assert [c.value for c in sheet[1]] == [
        "任务名称", "发起人", "负责人", "优先级(□高□中□低)", "截止日期",
        "当前进度(□0%□25%□50%□75%□100%)", "完成情况简述", "反馈时间"]
    assert sheet["A2"].value == "月度客户满意度报告" and sheet["A2"].font.i
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    assert lists == {"D2:D200": '"高,中,低"', "F2:F200": '"0%,25%,50%,75%,100%"'}
    assert book["maild"].sheet_state == "hidden"
    assert [c.value for c in book["maild"][1]] == ["maild-template", "task", "zh", "1",
                                                   "日常任务同步跟进表"]
    project = load_workbook(io.BytesIO(template_workbook(ItemKind.PROJECT, "en", words, NOW)))
    assert [v.formula1 for v in project.worksheets[0].data_validations.dataValidation] == [
        '"Not started,In progress,Done,Delayed"']
    emergency = load_workbook(io.BytesIO(template_workbook(ItemKind.EMERGENCY, "zh", words, NOW)))
    assert [v.formula1 for v in emergency.worksheets[0].data_validations.dataValidation] == [
        '"客诉,系统故障,舆情,其他"']


def test_templates_are_byte_identical_when_rendered_again(words):
    assert template_workbook(ItemKind.PROJECT, "zh", words, NOW) == template_workbook(
        ItemKind.PROJECT, "zh", words, NOW)


# ── round trips: filled as people fill them, read like the same table pasted ─────────────────

FILLED = {
    ItemKind.PROJECT: [["Q3新品推广项目", "李娜 / 市场部", "产品部、销售部、客服部", "新品核心卖点提炼",
                        "8月10日前", "王喆", "未开始", "需结合用户调研数据"],
                       [None, None, None, "渠道推广方案制定", "8月15日前", "赵磊", "进行中", ""]],
    ItemKind.TASK: [["月度客户满意度报告", "李娜", "王喆", "高", "8月30日", "25%", "数据收集中",
                     "8月3日"]],
    ItemKind.EMERGENCY: [["系统故障", "李娜", "支付接口超时，影响全部线上订单", "王喆",
                          "1. 切换备用通道 2. 排查根因", "今天下午5点"]],
}
BODY = "目标/背景：新品3个月内用户增长50%\n交付标准：见附件"


@pytest.mark.parametrize("language", ["zh", "en"])
@pytest.mark.parametrize("kind", list(ItemKind), ids=[k.value for k in ItemKind])
def test_a_filled_template_reads_as_the_same_table_pasted(kind, language, words, form_rules):
    rows = FILLED[kind]
    merges = ["A2:A3", "B2:B3", "C2:C3"] if kind is ItemKind.PROJECT else []
    data = _fill(template_workbook(kind, language, words, NOW), rows, merges)
    found = read_file_form("见附件", BODY, [read_table_file("f.xlsx", data)], form_rules, words)
    assert found is not None and found.form.kind is kind
    header = words.get(language)[kind.value]["columns"]
    marker = form_rules.templates[kind].markers[0]
    if kind is ItemKind.EMERGENCY:  # a horizontal form: the paste is label | value rows
        pasted = _pasted(["x", "y"], list(zip(header, rows[0], strict=True)))[
            len("<table><tr><td>x</td><td>y</td></tr>"):]
        pasted = "<table>" + pasted
    else:  # Excel's paste repeats a merged cell's text down the rows it covers
        pasted = _pasted(header, [[v if v is not None else rows[0][i] for i, v in enumerate(row)]
                                  for row in rows])
    by_paste = read_form(f"[{marker}] 见附件", BODY, form_rules, pasted)
    assert found.form == by_paste
    assert len(found.form.tasks) == len(rows)


def test_the_example_row_left_in_is_not_a_task(words, form_rules):
    mine = ["Q3新品推广项目", "李娜", "产品部", "渠道推广方案制定", "8月15日前", "赵磊", "", ""]
    data = _fill(template_workbook(ItemKind.PROJECT, "zh", words, NOW),
                 [words.get("zh")["project"]["example"], mine])  # typed below the example
    found = read_file_form("x", BODY, [read_table_file("f.xlsx", data)], form_rules, words)
    assert [t.name for t in found.form.tasks] == ["渠道推广方案制定"]


def test_the_named_sheet_wins_over_the_first(words, form_rules):
    from openpyxl import Workbook
    book = Workbook()
    book.active.title = "说明"
    book.active.append(["请在第二页填写"])
    sheet = book.create_sheet("日常任务同步跟进表")
    sheet.append(["任务名称", "负责人", "截止日期", "交付标准"])
    sheet.append(["月度报告", "王喆", "8月30日", "PDF"])
    table = read_table_file("f.xlsx", _save(book), sheet_names=form_sheet_names(form_rules, words))
    assert table.grids[0].sheet == "日常任务同步跟进表"
    found = read_file_form("报告", "", [table], form_rules, words)
    assert found.form.kind is ItemKind.TASK and found.form.tasks[0].owner == "王喆"


def test_merged_cells_repeat_down_and_stay_empty_across():
    from openpyxl import Workbook
    book = Workbook()
    sheet = book.active
    sheet.append(["项目名称", "沟通事项", "负责人", "时间节点"])
    sheet.append(["Q3", "卖点", "王喆", "8月10日"])
    sheet.append([None, "渠道", "赵磊", "8月15日"])
    sheet.append([None, "合并说明", None, None])
    sheet.merge_cells("A2:A3")
    sheet.merge_cells("B4:D4")
    (grid,) = read_table_file("m.xlsx", _save(book)).grids
    assert grid.rows == (("项目名称", "沟通事项", "负责人", "时间节点"), ("Q3", "卖点", "王喆", "8月10日"),
                         ("Q3", "渠道", "赵磊", "8月15日"), ("", "合并说明", "", ""))
    assert grid.at == (1, 2, 3, 4)


def _wps_like() -> bytes:
    """An .xlsx written the way WPS Office writes one: inline strings, a cached formula string
    (t="str"), a date serial with a date format, a percentage, no shared strings part."""
    files = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="日常任务同步跟进表" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>',
        "xl/styles.xml": '<?xml version="1.0" encoding="UTF-8"?><styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><numFmts count="1"><numFmt numFmtId="176" formatCode="yyyy/m/d;@"/></numFmts><fonts count="1"><font><sz val="11"/><name val="宋体"/></font></fonts><fills count="1"><fill><patternFill patternType="none"/></fill></fills><borders count="1"><border/></borders><cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs><cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="176" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="9" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs></styleSheet>',
        "xl/worksheets/sheet1.xml": '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>任务名称</t></is></c><c r="B1" t="inlineStr"><is><t>负责人</t></is></c><c r="C1" t="inlineStr"><is><t>截止日期</t></is></c><c r="D1" t="inlineStr"><is><t>当前进度</t></is></c><c r="E1" t="inlineStr"><is><t>交付标准</t></is></c></row>'
        '<row r="2"><c r="A2" t="str"><f>"月度"&amp;"报告"</f><v>月度报告</v></c><c r="B2" t="inlineStr"><is><t>王喆</t></is></c><c r="C2" s="1"><v>46264</v></c><c r="D2" s="2"><v>0.25</v></c><c r="E2" t="inlineStr"><is><r><t>PDF</t></r><r><rPr><b/></rPr><t>报告</t></r></is></c></row>'
        "</sheetData></worksheet>",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def test_a_wps_saved_file_reads_dates_percentages_formulas_and_rich_text(words, form_rules):
    (grid,) = read_table_file("wps.xlsx", _wps_like()).grids
    assert grid.rows[1] == ("月度报告", "王喆", "2026-08-30", "25%", "PDF报告")
    found = read_file_form("报告", "", [read_table_file("wps.xlsx", _wps_like())], form_rules, words)
    assert found.form.kind is ItemKind.TASK
    assert (found.form.tasks[0].deadline, found.form.tasks[0].progress) == ("2026-08-30", "25%")


@pytest.mark.parametrize("encoding,delimiter", [("utf-8-sig", ","), ("gbk", ","), ("utf-8", "\t"),
                                               ("gb18030", ";")],
                         ids=["utf8-bom", "gbk", "utf8-tab", "gb18030-semicolon"])
def test_csv_in_the_encodings_excel_saves(encoding, delimiter):
    text = delimiter.join(["任务名称", "负责人", "截止日期"]) + "\r\n" + delimiter.join(
        ["客诉应对流程培训", "陈静", "8月20日前"]) + "\r\n\r\n"
    (grid,) = read_table_file("t.csv", text.encode(encoding)).grids
    assert grid.rows == (("任务名称", "负责人", "截止日期"), ("客诉应对流程培训", "陈静", "8月20日前"))


def test_a_word_table_with_merged_cells():
    from docx import Document
    document = Document()
    document.add_paragraph("项目名称：Q3新品推广项目")
    table = document.add_table(rows=4, cols=3)
    for r, row in enumerate([["沟通事项", "负责人", "时间节点"], ["卖点", "王喆", "8月10日"],
                             ["渠道", "赵磊", "8月15日"], ["说明", "", ""]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    table.cell(1, 2).merge(table.cell(2, 2))  # one deadline for two rows
    table.cell(3, 0).merge(table.cell(3, 2))
    out = io.BytesIO()
    document.save(out)
    found = read_table_file("w.docx", out.getvalue())
    assert found.lines == ("项目名称：Q3新品推广项目",)
    assert found.grids[0].rows[1:] == (("卖点", "王喆", "8月10日 8月15日"),
                                       ("渠道", "赵磊", "8月10日 8月15日"), ("说明", "", ""))


# ── limits, before any parser sees the bytes ─────────────────────────────────────────────────

def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize("name,data,code", [
    ("big.xlsx", b"PK" + bytes(6 * 2**20), "too_large"),
    ("bomb.xlsx", _zip({"xl/worksheets/sheet1.xml": b"0" * (20 * 2**20)}), "zip_bomb"),
    ("many.xlsx", _zip({f"m{i}.xml": b"x" for i in range(600)}), "zip_bomb"),
    ("wide.docx", _zip({f"m{i}.xml": bytes(range(256)) * 1200 for i in range(200)}), "zip_bomb"),
    ("old.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512), "legacy"),
    ("plain.xls", b"anything", "legacy"),
    ("text.xlsx", b"this is not a zip file", "unreadable"),
    ("broken.xlsx", _zip({"[Content_Types].xml": b"<nope"}), "unreadable"),
], ids=["too-large", "ratio", "members", "unpacked-total", "ole2-named-xlsx", "xls", "not-zip",
        "not-ooxml"])
def test_files_over_a_limit_or_not_tables_are_refused_unopened(name, data, code):
    with pytest.raises(TableFileError) as raised:
        read_table_file(name, data, Limits(max_unpacked=40 * 2**20))
    assert raised.value.code == code


def test_a_bomb_is_refused_by_its_directory_alone(monkeypatch):
    bomb = _zip({"xl/worksheets/sheet1.xml": b"0" * (30 * 2**20)})
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda *a, **k: pytest.fail("inflated"))
    with pytest.raises(TableFileError):
        check_limits("xlsx", bomb, Limits())


@pytest.mark.parametrize("filename,ctype,kind", [
    ("a.XLSX", "", "xlsx"), ("表.csv", "application/octet-stream", "csv"),
    ("noname", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    ("x.doc", "", "doc"), ("photo.png", "image/png", None)],
    ids=["upper", "csv", "by-type", "doc", "not-a-table"])
def test_kind_of_a_file(filename, ctype, kind):
    assert kind_of(filename, ctype) == kind


# ── marking the problems ─────────────────────────────────────────────────────────────────────

def test_problem_cells_are_the_cells_of_the_file(words, form_rules):
    rows = [list(r) for r in FILLED[ItemKind.PROJECT]]
    rows[1][5] = "孙悟空"
    data = _fill(template_workbook(ItemKind.PROJECT, "zh", words, NOW), rows)
    found = read_file_form("x", BODY, [read_table_file("f.xlsx", data)], form_rules, words)
    cells = problem_cells(found, [FieldError("owner", "owner_unknown", "孙悟空", 2),
                                  FieldError("deadline", "date_past", "8月10日前", 1)])
    assert cells == [(3, 6, "owner_unknown"), (2, 5, "date_past")]
    marked = load_workbook(io.BytesIO(marked_workbook(
        found.grid.rows, [(3, 6, "不在通讯录中")], words, "zh", NOW, original=data,
        sheet=found.grid.sheet))).worksheets[0]
    assert marked["F3"].fill.fgColor.rgb.endswith("FFC7CE")
    assert "不在通讯录中" in marked["F3"].comment.text
    assert marked.title == "跨部门项目协作沟通记录表"


def test_a_csv_comes_back_as_a_marked_workbook(words):
    data = marked_workbook([("任务名称", "负责人"), ("报告", "孙悟空")], [(2, 2, "x")], words, "en",
                           NOW)
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    assert sheet["B2"].value == "孙悟空" and "Fix this cell" in sheet["B2"].comment.text
