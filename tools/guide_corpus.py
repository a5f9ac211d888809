"""Write tests/data/guide/new/: new-item emails written from the guide's templates, as office
workers fill them in and as their mail clients send them, and expected.toml, their readings.

Run: .venv/bin/python tools/guide_corpus.py   (rewrites the folder; the output is committed)

The bodies follow the guide (/work/shared/seed-guide.md): its three tables, its step-3 kickoff
and step-4 owners ("产品部*经理"), filled in the ways people do: the table copied from Word one
cell per line (as the guide itself prints it), pasted from Excel (tabs, merged cells left
blank), as HTML tables from Outlook, WPS, Foxmail/QQ and 163 webmail (rowspan, colspan, a bold
or highlighted option), as two-row tables and as label/value lines; boxes ticked in every way
people tick them; owners as department + role, department, name + title; dates as people write
them. Each case states its expected reading by hand (owners, deadlines, states): nothing here
asks maild what it reads. `now` for every case is NOW in bench/accuracy_guide_new.py, a Monday
morning; the emails are dated just before it.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "guide" / "new"

# The shipped directory (rules/people.toml)
WANG, ZHAO, CHEN = "wang.zhe@corp.example", "zhao.lei@corp.example", "chen.jing@corp.example"
LI, WU, SUN = "li.na@corp.example", "wu.fang@corp.example", "sun.yue@corp.example"
ZHOU, ZHENG = "zhou.min@corp.example", "zheng.tao@corp.example"
NAMES = {LI: "李娜", WU: "吴芳", CHEN: "陈静", ZHENG: "郑涛", WANG: "王喆"}


def at(month: int, day: int, hour: int = 18, minute: int = 0) -> str:
    return f"2026-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00+08:00"


# --------------------------------------------------------------------------------------------
# Mail clients: how each one wraps a body


@dataclass
class Email:
    sender: str
    subject: str
    text: str | None  # text/plain part, None for HTML-only
    html: str | None = None
    in_reply_to: str = ""
    references: str = ""


def _b64(data: bytes) -> str:
    raw = base64.b64encode(data).decode()
    return "\n".join(raw[i:i + 76] for i in range(0, len(raw), 76))


def _encoded_word(text: str, charset: str) -> str:
    if text.isascii():
        return text
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def _part(content_type: str, charset: str, body: str, encoding: str) -> str:
    try:
        data = body.encode(charset)
    except UnicodeEncodeError:  # as clients do: a text GBK cannot hold (☑ ✔) goes as UTF-8
        charset, data = "utf-8", body.encode("utf-8")
    payload = _b64(data) if encoding == "base64" else body
    return (f"Content-Type: {content_type}; charset=\"{charset}\"\n"
            f"Content-Transfer-Encoding: {encoding}\n\n{payload}\n")


@dataclass(frozen=True)
class Client:
    name: str
    charset: str
    encoding: str  # base64 | 8bit
    headers: Callable[[str], list[str]]  # message-id stem → extra headers
    message_id: Callable[[str], str]


CLIENTS: dict[str, Client] = {
    "outlook": Client("outlook", "gb2312", "base64", lambda n: [
        "X-Mailer: Microsoft Outlook 16.0", "Thread-Index: AQHa" + n[:8].ljust(8, "Q") + "w==",
        "Content-Language: zh-CN", "X-MS-Has-Attach: ", "X-MS-TNEF-Correlator: "],
        lambda n: f"<TYZPR06MB{n.upper()}@TYZPR06MB0054.apcprd06.prod.outlook.com>"),
    "wps": Client("wps", "utf-8", "base64", lambda n: [
        "X-Mailer: WPS Mail 12.1.0", "Content-Language: zh-CN"],
        lambda n: f"<{n}.wps@corp.example>"),
    "foxmail": Client("foxmail", "gb18030", "base64", lambda n: [
        "X-Mailer: Foxmail 7.2.25.228[cn]", "X-Priority: 3"],
        lambda n: f"<2026072708{n}@corp.example>"),
    "qq": Client("qq", "gb18030", "base64", lambda n: [
        "X-QQ-MIME: TCMime 1.0 by Tencent", "X-Mailer: QQMail 2.x", "X-QQ-Mailer: QQMail 2.x"],
        lambda n: f"<tencent_{n.upper()}@qq.com>"),
    "163": Client("163", "gbk", "base64", lambda n: [
        "X-Mailer: Coremail Webmail Server Version XT5.0.14 build 20230109(dcb5de15) "
        "Copyright (c) 2002-2026 www.mailtech.cn 163com", "X-Originating-IP: [10.12.3.4]",
        "X-CM-TRANSID: " + n.upper()],
        lambda n: f"<{n}.3a2f.18c.{n}@163.com>"),
    "gmail": Client("gmail", "utf-8", "base64", lambda n: [],
                    lambda n: f"<CAF{n}xq3LzP+gmail@mail.gmail.com>"),
    "thunderbird": Client("thunderbird", "utf-8", "8bit", lambda n: [
        "User-Agent: Mozilla Thunderbird", "Content-Language: zh-CN"],
        lambda n: f"<{n}-4b1e-9c3d@corp.example>"),
    "apple": Client("apple", "utf-8", "base64", lambda n: ["X-Mailer: iPhone Mail (21F90)"],
                    lambda n: f"<{n.upper()}-7E2C-4F1B@corp.example>"),
}


def render_email(client: Client, email: Email, stem: str, minute: int) -> bytes:
    name = NAMES.get(email.sender, "")
    sender = f"{_encoded_word(name, client.charset)} <{email.sender}>" if name else email.sender
    lines = [f"Return-Path: <{email.sender}>", f"Message-ID: {client.message_id(stem)}",
             f"Date: Mon, 27 Jul 2026 08:{minute:02d}:00 +0800", f"From: {sender}",
             "To: collab@corp.example", f"Subject: {_encoded_word(email.subject, client.charset)}"]
    if email.in_reply_to:
        lines += [f"In-Reply-To: {email.in_reply_to}",
                  f"References: {email.references or email.in_reply_to}"]
    lines += client.headers(stem) + ["MIME-Version: 1.0"]
    charset = client.charset if not (email.text or email.html or "").isascii() else "us-ascii"
    encoding = client.encoding
    if email.text is not None and email.html is None:
        lines.append(_part("text/plain", charset, email.text, encoding).rstrip("\n"))
    elif email.text is None:
        assert email.html is not None
        lines.append(_part("text/html", charset, email.html, encoding).rstrip("\n"))
    else:
        boundary = f"----=_Part_{stem}_{minute:02d}"
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\n')
        lines.append(f"--{boundary}")
        lines.append(_part("text/plain", charset, email.text, encoding))
        lines.append(f"--{boundary}")
        lines.append(_part("text/html", charset, email.html or "", encoding))
        lines.append(f"--{boundary}--")
    return ("\r\n".join("\n".join(lines).split("\n")) + "\r\n").encode("utf-8")


# --------------------------------------------------------------------------------------------
# Table shapes


def word_cells(header: Sequence[str], rows: Sequence[Sequence[str]], *, spaced: bool,
               merged: int = 0) -> str:
    """One cell per line, as Word copies a table (and the guide prints it): merged item-level
    cells only in the first row; `spaced` puts a blank line between cells, as the guide does."""
    cells = list(header)
    for n, row in enumerate(rows):
        cells += list(row[merged:] if n and merged else row)
    return ("\n\n" if spaced else "\n").join(cells)


def tabs(header: Sequence[str], rows: Sequence[Sequence[str]], merged: int = 0) -> str:
    """An Excel paste: tab-separated, merged cells left empty below their first row."""
    lines = ["\t".join(header)]
    for n, row in enumerate(rows):
        lines.append("\t".join([""] * merged + list(row[merged:]) if n and merged else row))
    return "\n".join(lines)


def pipes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return "\n".join(" | ".join(r) for r in [header, *rows])


def html_table(style: str, header: Sequence[str], rows: Sequence[Sequence[str]], *,
               merged: int = 0, title: str = "") -> str:
    """A table as `style` writes it (outlook | wps | foxmail | 163 | gmail), merged cells as
    rowspan, an optional title row as colspan. Cells may hold inline HTML (<b>, <br>)."""
    cell_open = {
        "outlook": '<td width="96" valign="top" style="border:solid windowtext 1.0pt;padding:0cm '
                   '5.4pt 0cm 5.4pt"{span}><p class="MsoNormal"><span style="font-family:'
                   '&quot;微软雅黑&quot;,sans-serif">',
        "wps": '<td class="et2" height="22" width="96" x:str{span} style="height:16.50pt;'
               'width:72.00pt;border:.5pt solid #000000;">',
        "foxmail": '<td style="border:1px solid #000000;padding:4px;"{span}>',
        "163": '<td style="border:1px solid #999;padding:2px 6px;word-break:break-all;"{span}>',
        "gmail": '<td style="border:1px solid rgb(204,204,204);padding:3px"{span}>',
    }[style]
    cell_close = "</span></p></td>" if style == "outlook" else "</td>"
    table_open = {
        "outlook": '<table class="MsoTableGrid" border="1" cellspacing="0" cellpadding="0" '
                   'style="border-collapse:collapse;border:none">',
        "wps": '<table width="768" border="0" cellpadding="0" cellspacing="0" style="width:'
               '576.00pt;border-collapse:collapse;table-layout:fixed;"><col width="96" span="8" '
               'style="width:72.00pt;">',
        "foxmail": '<table border="1" cellspacing="0" cellpadding="0" style="border-collapse:'
                   'collapse;font-size:14px;">',
        "163": '<table style="border-collapse:collapse;" border="1" cellpadding="0" '
               'cellspacing="0"><tbody>',
        "gmail": '<table cellspacing="0" cellpadding="0" dir="ltr" border="1" style="table-layout'
                 ':fixed;font-size:10pt;font-family:Arial;width:0px;border-collapse:collapse;'
                 'border:none"><tbody>',
    }[style]
    out = [table_open]
    if title:
        out.append("<tr>" + cell_open.format(span=f' colspan="{len(header)}"') + f"<b>{title}</b>"
                   + cell_close + "</tr>")
    out.append("<tr>" + "".join(cell_open.format(span="") + f"<b>{c}</b>" + cell_close
                                for c in header) + "</tr>")
    for n, row in enumerate(rows):
        cells = []
        for k, cell in enumerate(row):
            if merged and k < merged and n:
                continue
            span = f' rowspan="{len(rows)}"' if merged and k < merged else ""
            cells.append(cell_open.format(span=span) + cell + cell_close)
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>" if style in ("163", "gmail") else "</table>")
    return "".join(out)


def html_page(style: str, before: str, table: str, after: str = "") -> str:
    def paras(text: str) -> str:
        if style == "outlook":
            return "".join(f'<p class="MsoNormal"><span>{line or "&nbsp;"}<o:p></o:p></span></p>'
                           for line in text.split("\n"))
        if style == "163":
            return "".join(f"<div>{line or '<br>'}</div>" for line in text.split("\n"))
        return "".join(f"<div>{line or '<br>'}</div>" for line in text.split("\n"))
    if style == "outlook":
        return ('<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta '
                'http-equiv="Content-Type" content="text/html; charset=gb2312"><meta name='
                '"Generator" content="Microsoft Word 15 (filtered medium)"><style><!-- p.MsoNormal'
                ' {margin:0cm;font-size:10.5pt;} --></style></head><body lang="ZH-CN"><div class='
                f'"WordSection1">{paras(before)}{table}{paras(after)}</div></body></html>')
    if style == "wps":
        return ('<html><head><meta charset="utf-8"><meta name="Generator" content="WPS Office">'
                '</head><body><div>' + paras(before) + "<!--StartFragment-->" + table
                + "<!--EndFragment-->" + paras(after) + "</div></body></html>")
    if style == "foxmail":
        return ('<html><head><meta http-equiv="content-type" content="text/html; charset='
                'GB18030"><style>body { line-height: 1.5; }</style></head><body>'
                + paras(before) + table + paras(after) + "<div><br></div><hr style=\"width: 210px;"
                " height: 1px;\" color=\"#b5c4df\" size=\"1\" align=\"left\"></body></html>")
    if style == "163":
        return ('<div style="line-height:1.7;color:#000000;font-size:14px;font-family:Arial">'
                + paras(before) + table + paras(after) + "</div>")
    return '<div dir="ltr">' + paras(before) + table + paras(after) + "</div>"


# --------------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    file: str
    client: str
    template: str  # t1 | t2 | t3 | kickoff | none
    shape: str
    language: str
    email: Email
    expect: dict[str, Any]
    checkbox: str = ""
    owner_form: str = ""
    date_form: str = ""
    note: str = ""


CASES: list[Case] = []


def case(file: str, client: str, template: str, shape: str, language: str, email: Email,
         *, checkbox: str = "", owner_form: str = "", date_form: str = "", note: str = "",
         **expect: Any) -> None:
    CASES.append(Case(file, client, template, shape, language, email, expect, checkbox,
                      owner_form, date_form, note))


def task(name: str, owner: str, due: str, state: str = "awaiting_confirmation",
         **more: Any) -> dict[str, Any]:
    return {"name": name, "owner_address": owner, "deadline_at": due, "state": state, **more}


@dataclass
class Variant:
    """One way to fill template 1's three rows: owners, dates and 完成状态 as written, and what
    they mean."""

    owners: tuple[str, str, str]
    dates: tuple[str, str, str]
    statuses: tuple[str, str, str]
    due: tuple[str, str, str]
    states: tuple[str, str, str]
    owner_form: str
    date_form: str
    checkbox: str
    addresses: tuple[str, str, str] = (WANG, ZHAO, CHEN)
    extra: dict[str, Any] = field(default_factory=dict)


T1_NAMES = ("新品核心卖点提炼", "渠道推广方案制定", "客诉应对流程培训")
T1_NOTES = ("需结合用户调研数据", "预算上限待财务部确认", "需产品部提供FAQ文档")
T1_HEADER = ("项目名称", "发起人/部门", "参与人/部门", "沟通事项", "时间节点", "负责人",
             "完成状态(□未开始□进行中□已完成□延期)", "备注/问题反馈")
AWAIT, WIP, DONE, LATE = "awaiting_confirmation", "in_progress", "done", "delayed"
GUIDE = Variant(("产品部*经理", "销售部*主管", "客服部*专员"), ("8月10日前", "8月15日前", "8月20日前"),
                ("□未开始", "□未开始", "□未开始"), (at(8, 10), at(8, 15), at(8, 20)),
                (AWAIT, AWAIT, AWAIT), "department*title", "M月D日前", "one option left")


def t1_rows(v: Variant, title: str = "Q3新品推广项目") -> list[list[str]]:
    item = [title, "市场部*经理", "产品部、销售部、客服部"]
    return [item + [T1_NAMES[n], v.dates[n], v.owners[n], v.statuses[n], T1_NOTES[n]]
            for n in range(3)]


def t1_tasks(v: Variant) -> list[dict[str, Any]]:
    return [task(T1_NAMES[n], v.addresses[n], v.due[n], v.states[n]) for n in range(3)]


def t1_case(file: str, client: str, shape: str, subject: str, body: Email, v: Variant,
            **more: Any) -> None:
    expect = {"kind": "new_item",
              "item": {"kind": "project", "title": "Q3新品推广项目", "participants": "产品部、销售部、客服部"},
              "tasks": t1_tasks(v), "items": 1, "errors": [], **v.extra, **more}
    case(file, client, "t1", shape, "zh", body, checkbox=v.checkbox, owner_form=v.owner_form,
         date_form=v.date_form, **expect)


def build_t1() -> None:
    greet, thanks = "各位好：\n\nQ3新品推广项目的分工如下，请各位负责人确认。\n", "\n谢谢！\n李娜\n市场部"
    v = GUIDE
    t1_case("t1/guide_print_word_cells_foxmail.eml", "foxmail", "word_cells",
            "跨部门项目协作沟通记录表：Q3新品推广项目",
            Email(LI, "跨部门项目协作沟通记录表：Q3新品推广项目",
                  greet + "\n" + word_cells(T1_HEADER, t1_rows(v), spaced=True, merged=3)
                  + "\n" + thanks), v, notes=["owner", "owner", "workday", "owner"])
    v2 = Variant(("王喆", "赵磊", "陈静"), ("8.10", "8.14", "8.20"), ("☑进行中", "□未开始", "✔已完成"),
                 (at(8, 10), at(8, 14), at(8, 20)), (WIP, AWAIT, DONE), "name", "M.D",
                 "ticked before")
    t1_case("t1/word_compact_thunderbird.eml", "thunderbird", "word_cells", "",
            Email(LI, "[项目] Q3新品推广项目",
                  "项目分工表（从Word复制）：\n\n" + word_cells(T1_HEADER, t1_rows(v2), spaced=False,
                                                       merged=3) + "\n\n李娜"), v2)
    v3 = Variant(("王喆经理", "赵磊主管", "陈静专员"), ("08/10", "08/14", "08/20"),
                 ("进行中☑", "未开始", "已完成 √"), (at(8, 10), at(8, 14), at(8, 20)),
                 (WIP, AWAIT, DONE), "name+title", "MM/DD", "ticked after")
    t1_case("t1/excel_tabs_merged_foxmail.eml", "foxmail", "excel_tabs", "",
            Email(LI, "Q3新品推广项目 跨部门协作记录", "各位：\n\n" + tabs(T1_HEADER, t1_rows(v3), merged=3)
                  + "\n\n请查收，有问题随时沟通。\n李娜"), v3)
    v4 = Variant(("产品部", "销售部", "客服部"), ("8月上旬", "8月中旬", "8月下旬"),
                 ("□未开始□<b>进行中</b>□已完成□延期", "□<b>未开始</b>□进行中□已完成□延期",
                  "□未开始□进行中□已完成□<b>延期</b>"),
                 (at(8, 10), at(8, 20), at(8, 31)), (WIP, AWAIT, LATE), "department", "上中下旬",
                 "bold option (HTML)")
    rows4 = t1_rows(v4)
    text4 = [[c.replace("<b>", "").replace("</b>", "") for c in r] for r in rows4]
    t1_case("t1/outlook_html_rowspan.eml", "outlook", "html_table", "",
            Email(LI, "[项目] Q3新品推广项目",
                  "各位好：\n\n分工见下表。\n\n" + tabs(T1_HEADER, text4, merged=3) + "\n\n李娜",
                  html_page("outlook", "各位好：\n\n分工见下表。\n",
                            html_table("outlook", T1_HEADER, rows4, merged=3), "\n李娜")), v4)
    v5 = Variant((WANG, ZHAO, CHEN), ("2026-08-10", "2026-08-14", "2026-08-20"),
                 ("■进行中", "□未开始", "□未开始"), (at(8, 10), at(8, 14), at(8, 20)),
                 (WIP, AWAIT, AWAIT), "address", "ISO", "filled square")
    t1_case("t1/wps_html_rowspan.eml", "wps", "html_table", "",
            Email(LI, "跨部门项目协作沟通记录表", None,
                  html_page("wps", "各位好，Q3新品推广项目分工如下（WPS表格）：\n",
                            html_table("wps", T1_HEADER, t1_rows(v5), merged=3))), v5,
            item={"kind": "project", "title": "Q3新品推广项目"})
    v6 = Variant(("产品部*经理", "销售部*主管", "客服部*专员"), ("Q3末", "本季度末", "季度末"),
                 ("[x]进行中", "[ ]未开始", "(x)已完成"), (at(9, 30), at(9, 30), at(9, 30)),
                 (WIP, AWAIT, DONE), "department*title", "quarter end", "[x] and (x)")
    t1_case("t1/foxmail_html_title_colspan.eml", "foxmail", "html_table", "",
            Email(LI, "Q3新品推广项目", word_cells(T1_HEADER, t1_rows(v6), spaced=False, merged=3),
                  html_page("foxmail", "各位好：\n",
                            html_table("foxmail", T1_HEADER, t1_rows(v6), merged=3,
                                       title="跨部门项目协作沟通记录表"), "\n李娜 市场部")), v6)
    v7 = Variant(("王经理", "赵主管", "陈专员"), ("两周内", "下周三", "月底"),
                 ("●进行中", "○未开始", "○未开始"), (at(8, 10), at(8, 5), at(7, 31)),
                 (WIP, AWAIT, AWAIT), "surname+title", "relative", "filled circle")
    rows7 = t1_rows(v7)
    rows7[0][3] = "新品核心卖点<br>提炼"
    t1_case("t1/163_html_rowspan_br.eml", "163", "html_table", "",
            Email(LI, "[项目] Q3新品推广项目", None,
                  html_page("163", "各位好：\n下面是Q3新品推广项目的协作记录表，请确认。\n",
                            html_table("163", T1_HEADER, rows7, merged=3), "\n李娜")), v7,
            notes=["owner", "owner", "owner"])
    v8 = Variant(("产品部*经理", "赵磊", "陈静"), ("８月１０日前", "８月１４日", "８月２０日"),
                 ("□未开始", "□未开始", "☒延期"), (at(8, 10), at(8, 14), at(8, 20)),
                 (AWAIT, AWAIT, LATE), "mixed", "full-width", "ballot x")
    rows8 = t1_rows(v8)
    t1_case("t1/lines_guide_columns_gmail.eml", "gmail", "label_lines+pipes", "",
            Email(LI, "[项目] Q3新品推广项目",
                  "项目名称：Q3新品推广项目\n发起人/部门：市场部*经理\n参与人/部门：产品部、销售部、客服部\n"
                  "任务分配：\n" + pipes(T1_HEADER[3:], [r[3:] for r in rows8]) + "\n\n谢谢\n"), v8)
    v9 = Variant(("产品部经理", "销售部主管", "客服部专员"), ("8-10", "8-14", "8-20"),
                 ("▣进行中", "□未开始", "未开始 ✓"), (at(8, 10), at(8, 14), at(8, 20)),
                 (WIP, AWAIT, AWAIT), "department+title", "M-D", "▣ and ✓ after")
    t1_case("t1/excel_tabs_qq.eml", "qq", "excel_tabs", "",
            Email(LI, "Q3新品推广项目协作记录表", tabs(T1_HEADER, t1_rows(v9), merged=3)), v9)
    # the guide's table pasted from Excel into Outlook: HTML with the text part Outlook makes
    t1_case("t1/guide_excel_outlook_html.eml", "outlook", "html_table", "",
            Email(LI, "跨部门项目协作沟通记录表 - Q3新品推广项目",
                  tabs(T1_HEADER, t1_rows(GUIDE), merged=3),
                  html_page("outlook", "", html_table("outlook", T1_HEADER, t1_rows(GUIDE),
                                                      merged=3))), GUIDE,
            notes=["owner", "owner", "workday", "owner"])
    t1_case("t1/guide_print_word_cells_163.eml", "163", "word_cells", "",
            Email(LI, "Q3新品推广项目", word_cells(T1_HEADER, t1_rows(GUIDE), spaced=True, merged=3),
                  html_page("163", word_cells(T1_HEADER, t1_rows(GUIDE), spaced=True, merged=3),
                            "")), GUIDE)
    # English
    en_header = ("Project name", "Initiator/Dept", "Participants/Depts", "Matter", "Deadline",
                 "Owner", "Status", "Notes/Issues")
    en_rows = [["Q3 product launch", "Marketing, Li Na", "Product, Sales, Support",
                "Key selling points", "Aug 10", "Wang Zhe", "[x] In progress", "Use survey data"],
               ["", "", "", "Channel plan", "mid-August", "Zhao Lei", "[ ] Not started",
                "Budget cap to confirm"],
               ["", "", "", "Complaint FAQ training", "end of Q3", "chen.jing@corp.example",
                "Not started", "Needs the FAQ"]]
    en_tasks = [task("Key selling points", WANG, at(8, 10), WIP),
                task("Channel plan", ZHAO, at(8, 20)), task("Complaint FAQ training", CHEN,
                                                            at(9, 30))]
    case("t1/en_excel_tabs_gmail.eml", "gmail", "t1", "excel_tabs", "en",
         Email(LI, "Q3 product launch - cross-department record",
               "Hi all,\n\nHere is the split of work:\n\n" + tabs(en_header, en_rows)
               + "\n\nThanks,\nLi Na"),
         checkbox="[x]", owner_form="name/address", date_form="English", kind="new_item",
         item={"kind": "project", "title": "Q3 product launch"}, tasks=en_tasks, items=1,
         errors=[])
    case("t1/en_word_cells_outlook.eml", "outlook", "t1", "word_cells", "en",
         Email(LI, "[Project] Q3 product launch",
               word_cells(en_header, [[c for c in r] for r in en_rows], spaced=False, merged=3)
               .replace("\n\n\n\n", "\n") + "\n\nLi Na"),
         checkbox="[x]", owner_form="name/address", date_form="English", kind="new_item",
         item={"kind": "project", "title": "Q3 product launch"}, tasks=en_tasks, items=1,
         errors=[])
    # checkbox and owner variety on the guide's own rows, as label lines + an Excel table
    for n, (statuses, states, mark) in enumerate((
            (("进行中", "未开始", "延期"), (WIP, AWAIT, LATE), "option kept, others deleted"),
            (("✓进行中", "✗未开始", "□未开始"), (WIP, AWAIT, AWAIT), "✓ (one ticked)"),
            (("☑ 已完成", "☐ 未开始", "☐ 未开始"), (DONE, AWAIT, AWAIT), "☑ ☐ with spaces"),
    ), start=1):
        v = Variant(GUIDE.owners, ("8月10日", "8月14日", "8月20日"), statuses,
                    (at(8, 10), at(8, 14), at(8, 20)), states, "department*title", "M月D日", mark)
        rows = t1_rows(v)
        t1_case(f"t1/label_lines_excel_{n}.eml", ("gmail", "foxmail", "apple")[n - 1],
                "label_lines+excel", "",
                Email(LI, "[项目] Q3新品推广项目",
                      "项目名称：Q3新品推广项目\n发起人/部门：市场部 李娜\n参与人/部门：产品部、销售部、客服部\n"
                      "目标/背景：新品8月上市，3个月内用户增长50%\n\n"
                      + tabs(T1_HEADER[3:], [r[3:] for r in rows]) + "\n"), v,
                item={"kind": "project", "title": "Q3新品推广项目", "goal": "新品8月上市，3个月内用户增长50%"})


T2_HEADER = ("任务名称", "发起人", "负责人", "优先级(□高□中□低)", "截止日期",
             "当前进度(□0%□25%□50%□75%□100%)", "完成情况简述", "反馈时间")
T2_GUIDE = [["月度客户满意度报告", "运营部*专员", "数据部*分析师", "□高", "7月30日", "□75%",
             "数据收集已完成,待分析", "7月28日"],
            ["办公设备采购申请", "行政部*主管", "财务部*经理", "□中", "8月5日", "□50%", "预算审批中",
             "8月3日"]]
T2_TASKS = [task("月度客户满意度报告", SUN, at(7, 30), WIP, progress=75, priority="high"),
            task("办公设备采购申请", ZHOU, at(8, 5), WIP, progress=50, priority="medium")]


def t2_case(file: str, client: str, shape: str, email: Email, tasks: list[dict[str, Any]],
            *, language: str = "zh", **more: Any) -> None:
    item = {"kind": "task", "title": tasks[0]["name"]}
    case(file, client, "t2", shape, language, email, kind="new_item", item=item, tasks=tasks,
         items=len(tasks), errors=[], **more)


def build_t2() -> None:
    guide_rows = [list(r) for r in T2_GUIDE]
    t2_case("t2/guide_print_word_cells_outlook.eml", "outlook", "word_cells",
            Email(WU, "日常任务同步跟进表", "本周跟进如下：\n\n"
                  + word_cells(T2_HEADER, guide_rows, spaced=True) + "\n\n吴芳 运营部"), T2_TASKS,
            checkbox="one option left", owner_form="department*title", date_form="M月D日",
            notes=["owner", "owner"])
    t2_case("t2/guide_excel_tabs_foxmail.eml", "foxmail", "excel_tabs",
            Email(WU, "[任务] 本周任务跟进", tabs(T2_HEADER, guide_rows)), T2_TASKS,
            checkbox="one option left", owner_form="department*title", date_form="M月D日")
    three = [["月度客户满意度报告", "运营部 吴芳", "孙悦", "☑高 □中 □低", "7.30", "□50% ☑75%",
              "数据收集已完成，待分析", "7.28"],
             ["办公设备采购申请", "", "周敏", "□高 ☑中 □低", "8.5", "☑50%", "预算审批中", "8.3"],
             ["Q3培训场地预订", "", "郑涛主管", "□高 □中 ☑低", "下周三", "☑0%", "", ""]]
    three_tasks = [task("月度客户满意度报告", SUN, at(7, 30), WIP, progress=75, priority="high"),
                   task("办公设备采购申请", ZHOU, at(8, 5), WIP, progress=50, priority="medium"),
                   task("Q3培训场地预订", ZHENG, at(8, 5), AWAIT, progress=0, priority="low")]
    t2_case("t2/excel_three_rows_merged_initiator_gmail.eml", "gmail", "excel_tabs",
            Email(WU, "日常任务同步跟进表（本周）", "各位好，本周任务如下：\n\n" + tabs(T2_HEADER, three)
                  + "\n\n吴芳"), three_tasks, checkbox="☑ before", owner_form="name",
            date_form="M.D / 下周三")
    bold = [["月度客户满意度报告", "运营部*专员", "数据部*分析师", "<b>高</b>/中/低", "7月30日",
             "0%/25%/50%/<b>75%</b>/100%", "数据收集已完成,待分析", "7月28日"],
            ["办公设备采购申请", "行政部*主管", "财务部*经理",
             '高/<span style="background:yellow">中</span>/低', "8月5日",
             '0%/25%/<span style="background:yellow">50%</span>/75%/100%', "预算审批中", "8月3日"]]
    plain = [[c.replace("<b>", "").replace("</b>", "").replace(
        '<span style="background:yellow">', "").replace("</span>", "") for c in r] for r in bold]
    t2_case("t2/outlook_html_bold_and_highlight.eml", "outlook", "html_table",
            Email(WU, "[任务] 本周跟进", tabs(T2_HEADER, plain),
                  html_page("outlook", "本周跟进：\n", html_table("outlook", T2_HEADER, bold))),
            T2_TASKS, checkbox="bold / highlighted option", owner_form="department*title",
            date_form="M月D日")
    t2_case("t2/wps_html_rows.eml", "wps", "html_table",
            Email(WU, "日常任务同步跟进表", None,
                  html_page("wps", "", html_table("wps", T2_HEADER, guide_rows))), T2_TASKS,
            checkbox="one option left", owner_form="department*title", date_form="M月D日")
    t2_case("t2/163_html_rows.eml", "163", "html_table",
            Email(WU, "日常任务同步跟进", None,
                  html_page("163", "本周任务跟进如下：\n",
                            html_table("163", T2_HEADER, [[c.replace("□", "☑", 1) if k in (3, 5)
                                                           else c for k, c in enumerate(r)]
                                                          for r in guide_rows]))),
            T2_TASKS, checkbox="☑ one option", owner_form="department*title",
            date_form="M月D日")
    t2_case("t2/qq_html_rows.eml", "qq", "html_table",
            Email(WU, "[任务] 跟进表", None,
                  html_page("foxmail", "", html_table("foxmail", T2_HEADER, guide_rows))),
            T2_TASKS, checkbox="one option left", owner_form="department*title",
            date_form="M月D日")
    # one task as label/value lines, boxes ticked every way
    single = [
        ("t2/label_lines_hint_ticked_apple.eml", "apple", "hint ticked in the label",
         "任务名称：月度客户满意度报告\n发起人：运营部 吴芳\n负责人：孙悦\n优先级（□高☑中□低）：\n"
         "截止日期：8月14日\n当前进度（□0%□25%☑50%□75%□100%）：\n完成情况简述：数据收集已完成，待分析\n",
         task("月度客户满意度报告", SUN, at(8, 14), WIP, progress=50, priority="medium"), "name",
         "M月D日"),
        ("t2/label_lines_boxes_after_foxmail.eml", "foxmail", "ticks after",
         "任务名称：办公设备采购申请\n发起人：行政部*主管\n负责人：财务部*经理\n优先级：高☑ 中□ 低□\n"
         "截止日期：08/14\n当前进度：0%□ 25%□ 50%☑ 75%□ 100%□\n完成情况简述：预算审批中\n反馈时间：8月3日\n",
         task("办公设备采购申请", ZHOU, at(8, 14), WIP, progress=50, priority="high"),
         "department*title", "MM/DD"),
        ("t2/label_lines_one_left_thunderbird.eml", "thunderbird", "one option left",
         "任务名称：Q3培训场地预订\n发起人：吴芳\n负责人：郑涛主管\n优先级：中\n截止日期：8月中旬\n"
         "当前进度：25%\n",
         task("Q3培训场地预订", ZHENG, at(8, 20), WIP, progress=25, priority="medium"),
         "name+title", "上中下旬"),
        ("t2/label_lines_x_brackets_gmail.eml", "gmail", "[x] and ( )",
         "任务名称：客户回访名单整理\n发起人：运营部 吴芳\n负责人：客服部\n优先级：[x]高 [ ]中 [ ]低\n"
         "截止日期：两周内\n当前进度：(x)0% ( )25% ( )50%\n",
         task("客户回访名单整理", CHEN, at(8, 10), AWAIT, progress=0, priority="high"),
         "department", "两周内"),
        ("t2/label_lines_checkmarks_qq.eml", "qq", "√ and ✔",
         "任务名称：月度客户满意度报告\n负责人：数据部*分析师\n优先级：√高\n截止日期：月底\n"
         "当前进度：✔75%\n完成情况简述：数据收集已完成，待分析\n",
         task("月度客户满意度报告", SUN, at(7, 31), WIP, progress=75, priority="high"),
         "department*title", "月底"),
        ("t2/label_lines_fullwidth_163.eml", "163", "● and ○",
         "任务名称：供应商对账\n发起人：运营部 吴芳\n负责人：周敏经理\n优先级：○高 ●中 ○低\n截止日期：８月１２日\n"
         "当前进度：○0% ●25% ○50% ○75% ○100%\n",
         task("供应商对账", ZHOU, at(8, 12), WIP, progress=25, priority="medium"), "name+title",
         "full-width"),
        ("t2/label_lines_done_outlook.eml", "outlook", "■ 100%",
         "任务名称：7月考勤汇总\n发起人：行政部 郑涛\n负责人：孙悦\n优先级：□高 ■中 □低\n截止日期：下周三\n"
         "当前进度：□0% □25% □50% □75% ■100%\n完成情况简述：已提交人事\n",
         task("7月考勤汇总", SUN, at(8, 5), DONE, progress=100, priority="medium"), "name",
         "下周三"),
        ("t2/label_lines_quarter_end_wps.eml", "wps", "▣",
         "任务名称：Q3销售数据复盘\n发起人：运营部 吴芳\n负责人：赵磊主管\n优先级：▣高 □中 □低\n"
         "截止日期：Q3末\n当前进度：▣0%\n",
         task("Q3销售数据复盘", ZHAO, at(9, 30), AWAIT, progress=0, priority="high"),
         "name+title", "Q3末"),
    ]
    for file, client, mark, body, expected, owner_form, date_form in single:
        html = None
        if client in ("outlook", "wps"):
            html = html_page(client, body.strip(), "")
        t2_case(file, client, "label_lines", Email(WU, "[任务] " + expected["name"], body, html),
                [expected], checkbox=mark, owner_form=owner_form, date_form=date_form)
    # one task as a two-row table (header row + value row) and as a label/value table
    row = ["月度客户满意度报告", "运营部 吴芳", "孙悦", "☑高□中□低", "8.10", "□50%☑75%", "数据收集已完成，待分析",
           "7月28日"]
    one = [task("月度客户满意度报告", SUN, at(8, 10), WIP, progress=75, priority="high")]
    t2_case("t2/two_row_tabs_foxmail.eml", "foxmail", "two_row",
            Email(WU, "日常任务同步跟进表", tabs(T2_HEADER, [row])), one, checkbox="☑ before",
            owner_form="name", date_form="M.D")
    t2_case("t2/two_row_pipes_thunderbird.eml", "thunderbird", "two_row",
            Email(WU, "[任务] 月度报告", pipes(T2_HEADER, [row])), one, checkbox="☑ before",
            owner_form="name", date_form="M.D")
    lv = [(T2_HEADER[n], v) for n, v in enumerate(
        ["月度客户满意度报告", "运营部*专员", "数据部*分析师",
         '□高 <span style="mso-highlight:yellow">□中</span> □低', "8月10日前",
         "□0% □25% <b>□50%</b> □75% □100%", "数据收集已完成,待分析", "7月28日"])]
    lv_table = ('<table class="MsoTableGrid" border="1" cellspacing="0" cellpadding="0">'
                + "".join(f"<tr><td><p class=\"MsoNormal\">{a}</p></td><td><p class=\"MsoNormal\">"
                          f"{b}</p></td></tr>" for a, b in lv) + "</table>")
    t2_case("t2/label_value_table_outlook.eml", "outlook", "label_value_table",
            Email(WU, "[任务] 月度客户满意度报告", None, html_page("outlook", "", lv_table)),
            [task("月度客户满意度报告", SUN, at(8, 10), WIP, progress=50, priority="medium")],
            checkbox="highlight / bold (HTML)", owner_form="department*title",
            date_form="M月D日前")
    t2_case("t2/label_value_word_cells_gmail.eml", "gmail", "label_value_cells",
            Email(WU, "[任务] 办公设备采购申请",
                  "任务名称\n办公设备采购申请\n发起人\n行政部*主管\n负责人\n财务部*经理\n优先级\n☑中\n"
                  "截止日期\n8-14\n当前进度\n☑50%\n完成情况简述\n预算审批中\n"),
            [task("办公设备采购申请", ZHOU, at(8, 14), WIP, progress=50, priority="medium")],
            checkbox="☑ one option", owner_form="department*title", date_form="M-D")
    # English
    en = ("Task", "Initiator", "Owner", "Priority", "Due date", "Progress", "Progress summary",
          "Feedback date")
    en_rows = [["Monthly customer satisfaction report", "Wu Fang", "Sun Yue",
                "[x] High [ ] Medium [ ] Low", "Jul 30", "75%", "Data collected, analysing",
                "Jul 28"],
               ["Office equipment purchase", "Zheng Tao", "zhou.min@corp.example", "Medium",
                "Aug 5", "50%", "Budget under review", "Aug 3"]]
    t2_case("t2/en_excel_two_rows_gmail.eml", "gmail", "excel_tabs",
            Email(WU, "Daily task follow-up", tabs(en, en_rows)),
            [task("Monthly customer satisfaction report", SUN, at(7, 30), WIP, progress=75,
                  priority="high"),
             task("Office equipment purchase", ZHOU, at(8, 5), WIP, progress=50,
                  priority="medium")], language="en", checkbox="[x]", owner_form="name/address",
            date_form="English")
    t2_case("t2/en_label_lines_thunderbird.eml", "thunderbird", "label_lines",
            Email(WU, "[Task] Supplier reconciliation",
                  "Task: Supplier reconciliation\nInitiator: Wu Fang / Operations\nOwner: Zhou Min\n"
                  "Priority: High [ ] Medium [x] Low [ ]\nDue date: late August\n"
                  "Progress: 25%\nProgress summary: July statements received\n"),
            [task("Supplier reconciliation", ZHOU, at(8, 31), WIP, progress=25,
                  priority="medium")], language="en", checkbox="[x] after",
            owner_form="name", date_form="English late-month")
    t2_case("t2/en_two_row_outlook_html.eml", "outlook", "two_row",
            Email(WU, "Task follow-up", None,
                  html_page("outlook", "Hi,\n", html_table("outlook", en, [[
                      "Training room booking", "Wu Fang", "Zheng Tao", "<b>High</b> / Medium / Low",
                      "next Wednesday", "0%", "", ""]]))),
            [task("Training room booking", ZHENG, at(8, 5), AWAIT, progress=0, priority="high")],
            language="en", checkbox="bold (HTML)", owner_form="name", date_form="next weekday")


T3_HEADER = ("紧急事务类型(□客诉□系统故障□舆情□其他)", "发起人", "事务描述(含影响范围)", "响应人",
             "处理方案(含步骤、责任人、时间)", "预计完成时间")


def t3_case(file: str, client: str, shape: str, email: Email, title: str, owner: str, eta: str,
            etype: str, *, language: str = "zh", **more: Any) -> None:
    case(file, client, "t3", shape, language, email, kind="new_item",
         item={"kind": "emergency", "title": title, "emergency_type": etype},
         tasks=[task(title, owner, eta)], items=1, errors=[], **more)


def build_t3() -> None:
    row = ["☑系统故障", "客服部*专员", "支付接口超时，影响全部线上订单（约30%用户下单失败）", "产品部*经理",
           "1.切换备用通道（王喆，30分钟内）2.排查根因（赵磊，今天18点前）3.发用户公告（陈静）", "今天18点"]
    t3_case("t3/guide_print_word_cells_foxmail.eml", "foxmail", "word_cells",
            Email(CHEN, "紧急：支付系统故障", word_cells(T3_HEADER, [row], spaced=True) + "\n\n陈静 客服部"),
            "支付系统故障", WANG, at(7, 27, 18), "system_outage", checkbox="☑ before",
            owner_form="department*title", date_form="今天N点")
    t3_case("t3/excel_two_row_tabs_qq.eml", "qq", "two_row",
            Email(CHEN, "[紧急] 支付系统故障", tabs(T3_HEADER, [row])), "支付系统故障", WANG,
            at(7, 27, 18), "system_outage", checkbox="☑ before", owner_form="department*title",
            date_form="今天N点")
    variants = [
        ("outlook", "<b>□系统故障</b>", "system_outage", "bold (HTML)", "王喆", WANG, "2小时内",
         at(7, 27, 11), "name", "N小时内", "订单系统故障"),
        ("wps", "□客诉 ☑系统故障 □舆情 □其他", "system_outage", "☑ among options", "产品部",
         WANG, "今晚8点", at(7, 27, 20), "department", "今晚N点", "官网无法访问"),
        ("foxmail", '□客诉<span style="background-color:#ffff00">□舆情</span>□其他',
         "public_opinion", "highlight (HTML)", "市场部*经理", LI, "明天上午10点", at(7, 28, 10),
         "department*title", "明天上午N点", "微博差评扩散"),
        ("163", "客诉☑", "customer_complaint", "ticked after", "陈静专员", CHEN, "今天下午5点",
         at(7, 27, 17), "name+title", "今天下午N点", "VIP客户投诉退款"),
        ("gmail", "[x]系统故障", "system_outage", "[x]", "王经理", WANG, "今天18:30",
         at(7, 27, 18, 30), "surname+title", "HH:MM", "支付回调丢失"),
    ]
    for style, etype_cell, etype, mark, owner_text, owner, eta_text, eta, owner_form, date_form, \
            title in variants:
        cells = [etype_cell, "客服部 陈静", f"{title}，影响部分用户", owner_text, "1.定位问题 2.恢复服务 3.复盘",
                 eta_text]
        plain = [c.replace("<b>", "").replace("</b>", "").replace(
            '<span style="background-color:#ffff00">', "").replace("</span>", "") for c in cells]
        text = tabs(T3_HEADER, [plain]) if style in ("outlook", "foxmail") else None
        t3_case(f"t3/{style}_html_two_row.eml", style, "html_table",
                Email(CHEN, f"[紧急] {title}", text,
                      html_page(style, "", html_table(style, T3_HEADER, [cells]))),
                title, owner, eta, etype, checkbox=mark, owner_form=owner_form,
                date_form=date_form)
    lines = [
        ("thunderbird", "紧急事务类型（□客诉☑系统故障□舆情□其他）：\n", "system_outage", "hint ticked",
         "王喆", WANG, "今天下午5点", at(7, 27, 17), "订单系统故障"),
        ("apple", "紧急事务类型：系统故障 ✔\n", "system_outage", "✔ after", "产品部*经理", WANG,
         "3小时内", at(7, 27, 12), "库存同步失败"),
        ("outlook", "紧急事务类型：□客诉 □系统故障 ■舆情 □其他\n", "public_opinion", "■",
         "李娜经理", LI, "明天中午", at(7, 28, 12), "短视频负面评论"),
        ("qq", "紧急事务类型：☒客诉\n", "customer_complaint", "☒", "客服部", CHEN, "今晚9点",
         at(7, 27, 21), "大客户集体投诉"),
    ]
    for client, type_line, etype, mark, owner_text, owner, eta_text, eta, title in lines:
        body = (type_line + "发起人：客服部 陈静\n事务描述（含影响范围）：" + title + "，华东区约2000名用户受影响\n"
                f"响应人：{owner_text}\n处理方案（含步骤、责任人、时间）：1. 止损 2. 排查 3. 通报\n"
                f"预计完成时间：{eta_text}\n")
        t3_case(f"t3/label_lines_{client}.eml", client, "label_lines",
                Email(CHEN, f"[紧急] {title}", body,
                      html_page(client, body.strip(), "") if client == "outlook" else None),
                title, owner, eta, etype, checkbox=mark, owner_form="various",
                date_form="relative time")
    lv = ('<table border="1" cellspacing="0" cellpadding="0" style="border-collapse:collapse;">'
          + "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in (
              ("紧急事务类型", "□客诉 <b>□系统故障</b> □舆情 □其他"), ("发起人", "客服部 陈静"),
              ("事务描述（含影响范围）", "短信验证码发不出，新用户无法注册"), ("响应人", "王喆"),
              ("处理方案（含步骤、责任人、时间）", "1.切换短信通道 2.补发验证码"),
              ("预计完成时间", "今天16:00"))) + "</table>")
    t3_case("t3/label_value_table_foxmail.eml", "foxmail", "label_value_table",
            Email(CHEN, "[紧急] 短信验证码故障", None, html_page("foxmail", "", lv)),
            "短信验证码故障", WANG, at(7, 27, 16), "system_outage", checkbox="bold (HTML)",
            owner_form="name", date_form="HH:MM")
    en = ("Emergency type", "Initiator", "Description (with impact)", "Responder",
          "Plan (steps, who, when)", "ETA")
    t3_case("t3/en_label_lines_gmail.eml", "gmail", "label_lines",
            Email(CHEN, "[Urgent] Payment gateway down",
                  "Emergency type: [x] System outage [ ] Customer complaint\nInitiator: Chen Jing\n"
                  "Description: card payments time out, about 30% of orders fail\nResponder: Wang Zhe\n"
                  "Plan: 1. switch to the backup gateway 2. find the root cause\nETA: within 2 hours\n"),
            "Payment gateway down", WANG, at(7, 27, 11), "system_outage", language="en",
            checkbox="[x]", owner_form="name", date_form="within N hours")
    t3_case("t3/en_two_row_html_outlook.eml", "outlook", "two_row",
            Email(CHEN, "Urgent: login failures", None,
                  html_page("outlook", "", html_table("outlook", en, [[
                      "<b>System outage</b> / Customer complaint / Other", "Chen Jing",
                      "Users cannot log in on iOS", "zhao.lei@corp.example", "Roll back 3.2.1",
                      "today 5pm"]]))),
            "login failures", ZHAO, at(7, 27, 17), "system_outage", language="en",
            checkbox="bold (HTML)", owner_form="address", date_form="today 5pm")
    t3_case("t3/en_word_cells_thunderbird.eml", "thunderbird", "word_cells",
            Email(CHEN, "[Urgent] Refund complaint from a VIP",
                  word_cells(en, [["Customer complaint", "Chen Jing", "VIP threatens to go public",
                                   "Chen Jing", "Call back within 1 hour, offer refund",
                                   "tomorrow 10am"]], spaced=False)),
            "Refund complaint from a VIP", CHEN, at(7, 28, 10), "customer_complaint",
            language="en", checkbox="plain option", owner_form="name",
            date_form="tomorrow 10am")


KICKOFF = """各位好：

事项：Q3新品推广项目启动会
发起人：市场部*经理
参与人：产品部总监、销售部主管、客服部*专员
背景：新品“{name}”计划8月上市，需协同各部门制定推广方案
需配合：{clauses}

请各位按时间节点配合，谢谢！
李娜"""


def build_kickoff() -> None:
    guide = "产品部8月10日前输出核心卖点；销售部8月14日前提交渠道需求"
    tasks = [task("输出核心卖点", WANG, at(8, 10)), task("提交渠道需求", ZHAO, at(8, 14))]
    common = {"kind": "new_item", "item": {"kind": "project", "title": "Q3新品推广项目启动会"}}
    case("kickoff/guide_example_foxmail.eml", "foxmail", "kickoff", "kickoff_lines", "zh",
         Email(LI, "Q3新品推广项目启动会", KICKOFF.format(name="", clauses=guide)),
         owner_form="department", date_form="M月D日前", tasks=tasks, items=1, confirm=True,
         errors=[], notes=["owner", "owner"], **common)
    case("kickoff/guide_example_outlook_html.eml", "outlook", "kickoff", "kickoff_html", "zh",
         Email(LI, "【项目】Q3新品推广项目启动会", KICKOFF.format(name="星耀", clauses=guide),
               html_page("outlook", KICKOFF.format(name="星耀", clauses=guide), "")),
         owner_form="department", date_form="M月D日前", tasks=tasks, items=1, confirm=True,
         errors=[], **common)
    named = "王喆8月10日前输出核心卖点；赵磊8月14日前提交渠道需求"
    case("kickoff/names_certain_gmail.eml", "gmail", "kickoff", "kickoff_lines", "zh",
         Email(LI, "Q3新品推广项目启动会", KICKOFF.format(name="星耀", clauses=named)),
         owner_form="name", date_form="M月D日前", tasks=tasks, items=1, confirm=False,
         errors=[], **common)
    unread = ("产品部下周三前给出卖点初稿；销售部8月14日前提交渠道需求；设计部尽快出图")
    case("kickoff/unread_clause_163.eml", "163", "kickoff", "kickoff_lines", "zh",
         Email(LI, "Q3新品推广项目启动会", KICKOFF.format(name="星耀", clauses=unread)),
         owner_form="department", date_form="下周三 / M月D日前",
         tasks=[task("给出卖点初稿", WANG, at(8, 5)), task("提交渠道需求", ZHAO, at(8, 14))],
         items=1, confirm=True, errors=[], unread=["设计部尽快出图"], **common)
    numbered = ("\n1. 产品部负责核心卖点提炼，8月10日前完成\n2. 销售部负责渠道推广方案，8月中旬前完成\n"
                "3. 客服部在8月20日前完成客诉应对培训")
    case("kickoff/numbered_clauses_thunderbird.eml", "thunderbird", "kickoff", "kickoff_lines",
         "zh", Email(LI, "Q3新品推广项目启动会", KICKOFF.format(name="星耀", clauses=numbered)),
         owner_form="department", date_form="mixed",
         tasks=[task("核心卖点提炼", WANG, at(8, 10)), task("渠道推广方案", ZHAO, at(8, 20)),
                task("客诉应对培训", CHEN, at(8, 20))], items=1, confirm=True, errors=[], **common)
    case("kickoff/en_names_gmail.eml", "gmail", "kickoff", "kickoff_lines", "en",
         Email(LI, "Q3 launch kickoff",
               "Hi all,\n\nMatter: Q3 launch kickoff\nInitiator: Li Na, Marketing\n"
               "Participants: Wang Zhe, Zhao Lei, Chen Jing\n"
               "Background: the new product launches in August\n"
               "Support needed: Wang Zhe to deliver the key selling points by Aug 10; Zhao Lei to "
               "submit the channel needs by Aug 14\n\nThanks,\nLi Na"),
         owner_form="name", date_form="English", kind="new_item",
         item={"kind": "project", "title": "Q3 launch kickoff"},
         tasks=[task("deliver the key selling points", WANG, at(8, 10)),
                task("submit the channel needs", ZHAO, at(8, 14))], items=1, confirm=False,
         errors=[])


def build_bad() -> None:
    case("bad/unknown_owner_foxmail.eml", "foxmail", "t2", "label_lines", "zh",
         Email(WU, "[任务] 月度客户满意度报告",
               "任务名称：月度客户满意度报告\n负责人：张伟\n截止日期：7月30日\n"),
         owner_form="unknown name", kind="new_item", item={"kind": "task"}, errors=["owner_unknown"])
    case("bad/several_owners_outlook.eml", "outlook", "t1", "label_lines+pipes", "zh",
         Email(LI, "[项目] 渠道拓展",
               "项目名称：渠道拓展\n任务分配：\n沟通事项 | 时间节点 | 负责人\n渠道调研 | 8月10日前 | 王喆、赵磊\n"),
         owner_form="two people", kind="new_item", item={"kind": "project"},
         errors=["owner_many"])
    case("bad/title_only_matches_three_qq.eml", "qq", "t2", "label_lines", "zh",
         Email(WU, "[任务] 季度预算汇总", "任务名称：季度预算汇总\n负责人：经理\n截止日期：8月14日\n"),
         owner_form="title alone", kind="new_item", item={"kind": "task"}, errors=["owner_many"])
    case("bad/vague_date_gmail.eml", "gmail", "t2", "label_lines", "zh",
         Email(WU, "[任务] 供应商对账", "任务名称：供应商对账\n负责人：周敏\n截止日期：尽快\n"),
         date_form="vague", kind="new_item", item={"kind": "task"}, errors=["date_unparseable"])
    case("bad/past_date_163.eml", "163", "t3", "label_lines", "zh",
         Email(CHEN, "[紧急] 数据库告警",
               "紧急事务类型：系统故障\n事务描述：主库磁盘告警\n响应人：王喆\n预计完成时间：2026-07-20\n"),
         date_form="past", kind="new_item", item={"kind": "emergency"}, errors=["date_past"])
    case("bad/no_owner_thunderbird.eml", "thunderbird", "t2", "label_lines", "zh",
         Email(WU, "[任务] 会议纪要整理", "任务名称：会议纪要整理\n截止日期：8月5日\n优先级：低\n"),
         kind="new_item", item={"kind": "task"}, errors=["missing"])
    case("bad/chat_not_a_form_apple.eml", "apple", "none", "prose", "zh",
         Email(LI, "周五对一下进度？", "王喆你好，周五下午有空吗？想对一下卖点提炼的进度。\n\n发自我的iPhone"),
         kind="unrecognized")
    case("bad/fields_without_form_outlook.eml", "outlook", "none", "label_lines", "zh",
         Email(LI, "下周安排", "发起人：李娜\n备注：下周二开会，具体再通知\n会议室: 3楼\n"),
         kind="unrecognized")
    case("bad/en_unknown_owner_gmail.eml", "gmail", "t2", "label_lines", "en",
         Email(WU, "[Task] Vendor onboarding",
               "Task: Vendor onboarding\nOwner: Bob Smith\nDue date: Aug 14\n"),
         owner_form="unknown name", kind="new_item", item={"kind": "task"},
         errors=["owner_unknown"])


def _quote(text: str, prefix: str = "> ") -> str:
    return "\n".join(prefix + line if line else prefix.rstrip() for line in text.split("\n"))


def build_replies() -> None:
    rejected = ("你的邮件还没有登记：有 2 处需要修改。\n\n== 需要修改的地方 ==\n  1. 第 1 个任务：负责人“张伟”不在通讯录中。\n"
                "  2. 第 1 个任务：「截止日期」里的日期“下下下周”无法识别。\n\n已把你的内容填回模板：\n"
                "----------------------------------------\n日常任务同步跟进表\n\n任务名称：月度客户满意度报告\n"
                "发起人：\n负责人：张伟\n优先级（□高□中□低）：\n截止日期：下下下周\n当前进度（□0%□25%□50%□75%□100%）：\n"
                "----------------------------------------")
    corrected = "任务名称：月度客户满意度报告\n负责人：孙悦\n优先级：☑高\n截止日期：8月14日\n"
    case("reply/corrected_form_foxmail.eml", "foxmail", "t2", "reply_corrected", "zh",
         Email(WU, "Re: 请修改后重发：[任务] 月度报告 [D-QK7TZ3WA]",
               corrected + "\n\n------------------ 原始邮件 ------------------\n发件人: \"maild\" "
               "<collab@corp.example>\n发送时间: 2026年7月27日(星期一) 上午8:10\n收件人: \"吴芳\""
               "<wu.fang@corp.example>\n主题: 请修改后重发：[任务] 月度报告 [D-QK7TZ3WA]\n\n" + rejected,
               in_reply_to="<maild.3f2a9c01d2e4b5a6c7d8e9f0@corp.example>"),
         checkbox="☑ one option", owner_form="name", date_form="M月D日", kind="new_item",
         item={"kind": "task", "title": "月度客户满意度报告"},
         tasks=[task("月度客户满意度报告", SUN, at(8, 14), priority="high")], items=1, errors=[],
         note="quoted history holds the rejected form: never read")
    table_fix = ("沟通事项 | 时间节点 | 负责人\n新品核心卖点提炼 | 8月10日前 | 王喆\n"
                 "渠道推广方案制定 | 8月14日前 | 赵磊")
    old = ("项目名称：Q3新品推广项目\n任务分配：\n沟通事项 | 时间节点 | 负责人\n新品核心卖点提炼 | 8月10日前 | 张伟\n"
           "渠道推广方案制定 | 尽快 | 赵磊\n客诉应对流程培训 | 8月20日前 | 陈静")
    case("reply/corrected_table_outlook.eml", "outlook", "t1", "reply_corrected", "zh",
         Email(LI, "答复: 请修改后重发：[项目] Q3新品推广项目 [D-M2XQ7BLE]",
               "项目名称：Q3新品推广项目\n任务分配：\n" + table_fix + "\n\n李娜\n\n-----邮件原件-----\n"
               "发件人: maild <collab@corp.example>\n发送时间: 2026年7月27日 8:05\n收件人: 李娜 "
               "<li.na@corp.example>\n主题: 请修改后重发：[项目] Q3新品推广项目 [D-M2XQ7BLE]\n\n" + old,
               in_reply_to="<maild.9b8a7c6d5e4f3a2b1c0d9e8f@corp.example>"),
         owner_form="name", date_form="M月D日前", kind="new_item",
         item={"kind": "project", "title": "Q3新品推广项目"},
         tasks=[task("新品核心卖点提炼", WANG, at(8, 10)), task("渠道推广方案制定", ZHAO, at(8, 14))],
         items=1, errors=[], note="three rows quoted, two in the new text")
    case("reply/corrected_en_gmail.eml", "gmail", "t3", "reply_corrected", "en",
         Email(CHEN, "Re: Please fix and resend: [Urgent] Checkout errors [D-B4NW6PQS]",
               "Emergency type: System outage\nResponder: Wang Zhe\nETA: today 6pm\n\n"
               "On Mon, Jul 27, 2026 at 8:12 AM maild <collab@corp.example> wrote:\n"
               + _quote("Your email was not registered yet: 1 thing(s) to fix.\n\nEmergency type:\n"
                        "Responder: Bob\nETA: soon"),
               in_reply_to="<maild.0a1b2c3d4e5f6a7b8c9d0e1f@corp.example>"),
         owner_form="name", date_form="today 6pm", kind="new_item",
         item={"kind": "emergency", "title": "Checkout errors"},
         tasks=[task("Checkout errors", WANG, at(7, 27, 18))], items=1, errors=[])
    fresh = "任务名称：供应商对账\n负责人：周敏\n截止日期：8月12日\n"
    case("reply/new_form_in_reply_163.eml", "163", "t2", "reply_new_text", "zh",
         Email(WU, "Re: 上周的对账", fresh + "\n\n在 2026-07-24 17:02:11，\"周敏\" <zhou.min@corp.example> 写道：\n"
               + _quote("任务名称：旧的对账任务\n负责人：郑涛\n截止日期：7月24日\n这周先不做了。"),
               in_reply_to="<1a2b3c4d.5e6f@corp.example>"),
         owner_form="name", date_form="M月D日", kind="new_item",
         item={"kind": "task", "title": "供应商对账"},
         tasks=[task("供应商对账", ZHOU, at(8, 12))], items=1, errors=[],
         note="a form in a reply to a person's email: the quoted one is not read")


def build_more() -> None:
    """A second batch, written before it was ever run: its first score is in the README."""
    # template 1: 完成状态 as four tick columns under one merged header cell (an Excel form)
    head1 = ('<tr><td rowspan="2"><b>项目名称</b></td><td rowspan="2"><b>发起人/部门</b></td>'
             '<td rowspan="2"><b>参与人/部门</b></td><td rowspan="2"><b>沟通事项</b></td>'
             '<td rowspan="2"><b>时间节点</b></td><td rowspan="2"><b>负责人</b></td>'
             '<td colspan="4"><b>完成状态</b></td><td rowspan="2"><b>备注/问题反馈</b></td></tr>'
             '<tr><td>未开始</td><td>进行中</td><td>已完成</td><td>延期</td></tr>')
    body_rows = ('<tr><td rowspan="3">Q3新品推广项目</td><td rowspan="3">市场部*经理</td>'
                 '<td rowspan="3">产品部、销售部、客服部</td><td>新品核心卖点提炼</td><td>8月10日前</td>'
                 '<td>产品部*经理</td><td></td><td>√</td><td></td><td></td><td>需结合用户调研数据</td></tr>'
                 '<tr><td>渠道推广方案制定</td><td>8月14日前</td><td>销售部*主管</td><td>√</td><td></td>'
                 '<td></td><td></td><td>预算上限待财务部确认</td></tr>'
                 '<tr><td>客诉应对流程培训</td><td>8月20日前</td><td>客服部*专员</td><td>√</td><td></td>'
                 '<td></td><td></td><td>需产品部提供FAQ文档</td></tr>')
    table = ('<table border="1" cellspacing="0" cellpadding="0" style="border-collapse:collapse">'
             + head1 + body_rows + "</table>")
    v = Variant(GUIDE.owners, ("8月10日前", "8月14日前", "8月20日前"), ("", "", ""),
                (at(8, 10), at(8, 14), at(8, 20)), (WIP, AWAIT, AWAIT), "department*title",
                "M月D日前", "√ in one of four status columns")
    t1_case("t1/status_tick_columns_wps_html.eml", "wps", "html_table", "",
            Email(LI, "跨部门项目协作沟通记录表", None, html_page("wps", "各位好：\n", table)), v)
    # template 1 as the guide prints it, then a signature with a phone number
    t1_case("t1/guide_print_signature_qq.eml", "qq", "word_cells", "",
            Email(LI, "Q3新品推广项目 协作记录",
                  word_cells(T1_HEADER, t1_rows(GUIDE), spaced=True, merged=3)
                  + "\n\n\n谢谢！\n\n李娜\n市场部 经理\n电话：010-6255 8899"), GUIDE)
    # template 1 in a markdown table with a separator row, goal line and one owner for two rows
    v = Variant(("王喆", "王喆", "陈静"), ("8月10日前", "8月14日前", "8月20日前"),
                ("☑未开始", "☑未开始", "☑未开始"), (at(8, 10), at(8, 14), at(8, 20)),
                (AWAIT, AWAIT, AWAIT), "name", "M月D日前", "☑ one option",
                addresses=(WANG, WANG, CHEN))
    rows = t1_rows(v)
    t1_case("t1/markdown_pipes_gmail.eml", "gmail", "label_lines+pipes", "",
            Email(LI, "[项目] Q3新品推广项目",
                  "**项目名称：** Q3新品推广项目\n**参与人/部门：** 产品部、销售部、客服部\n\n"
                  "| 沟通事项 | 时间节点 | 负责人 | 完成状态 | 备注/问题反馈 |\n|---|---|---|---|---|\n"
                  + "\n".join("| " + " | ".join(r[3:]) + " |" for r in rows) + "\n"), v)
    # template 1 from Outlook with the owner column merged over two rows
    own = ('<table class="MsoTableGrid" border="1" cellspacing="0" cellpadding="0">'
           '<tr><td><b>沟通事项</b></td><td><b>时间节点</b></td><td><b>负责人</b></td>'
           '<td><b>完成状态</b></td></tr>'
           '<tr><td>新品核心卖点提炼</td><td>8月10日前</td><td rowspan="2">产品部*经理</td><td>□未开始</td></tr>'
           '<tr><td>用户场景图</td><td>8月12日前</td><td>□未开始</td></tr>'
           '<tr><td>渠道推广方案制定</td><td>8月14日前</td><td>销售部*主管</td><td>□未开始</td></tr></table>')
    case("t1/outlook_html_owner_rowspan.eml", "outlook", "t1", "html_table", "zh",
         Email(LI, "[项目] Q3新品推广项目", None,
               html_page("outlook", "项目名称：Q3新品推广项目\n参与人/部门：产品部、销售部\n", own)),
         checkbox="one option left", owner_form="department*title", date_form="M月D日前",
         kind="new_item", item={"kind": "project", "title": "Q3新品推广项目"},
         tasks=[task("新品核心卖点提炼", WANG, at(8, 10)), task("用户场景图", WANG, at(8, 12)),
                task("渠道推广方案制定", ZHAO, at(8, 14))], items=1, errors=[])
    # template 1, English, WPS HTML with merged cells
    en_header = ("Project name", "Initiator/Dept", "Participants/Depts", "Matter", "Deadline",
                 "Owner", "Status", "Notes/Issues")
    en_rows = [["Q3 launch", "Li Na, Marketing", "Product, Sales", "Key selling points", "8/10",
                "Wang Zhe", "In progress", ""],
               ["Q3 launch", "Li Na, Marketing", "Product, Sales", "Channel plan", "8/14",
                "Zhao Lei", "Not started", "budget tbc"]]
    case("t1/en_wps_html_rowspan.eml", "wps", "t1", "html_table", "en",
         Email(LI, "Q3 launch - project record", None,
               html_page("wps", "Hi team,\n", html_table("wps", en_header, en_rows, merged=3))),
         checkbox="plain option", owner_form="name", date_form="M/D", kind="new_item",
         item={"kind": "project", "title": "Q3 launch"},
         tasks=[task("Key selling points", WANG, at(8, 10), WIP),
                task("Channel plan", ZHAO, at(8, 14))], items=1, errors=[])
    # template 2: progress in words, name with title in brackets, an address
    t2_case("t2/label_lines_progress_in_words_outlook.eml", "outlook", "label_lines",
            Email(WU, "[任务] 月度客户满意度报告",
                  "任务名称：月度客户满意度报告\n发起人：运营部 吴芳\n负责人：孙悦（数据部分析师）\n优先级：高\n"
                  "截止日期：8月10日\n当前进度：已经做了一大半，大约70%\n完成情况简述：数据收集已完成，待分析\n"),
            [task("月度客户满意度报告", SUN, at(8, 10), WIP, progress=70, priority="high")],
            checkbox="none (words)", owner_form="name (dept title)", date_form="M月D日")
    t2_case("t2/two_row_163_html.eml", "163", "two_row",
            Email(WU, "日常任务同步跟进表", None,
                  html_page("163", "", html_table("163", T2_HEADER, [[
                      "供应商对账", "运营部 吴芳", "zhou.min@corp.example", "□高☑中□低", "8月12日",
                      "☑25%", "7月对账单已收齐", "7月27日"]]))),
            [task("供应商对账", ZHOU, at(8, 12), WIP, progress=25, priority="medium")],
            checkbox="☑ before", owner_form="address", date_form="M月D日")
    merged_initiator = ('<table border="1" cellspacing="0" cellpadding="0">'
                        '<tr><td>任务名称</td><td>发起人</td><td>负责人</td><td>优先级</td><td>截止日期</td>'
                        '<td>当前进度</td></tr>'
                        '<tr><td>7月考勤汇总</td><td rowspan="2">行政部*主管</td><td>孙悦</td><td>中</td>'
                        '<td>7月31日</td><td>50%</td></tr>'
                        '<tr><td>工位调整通知</td><td>郑涛</td><td>低</td><td>8月3日</td><td>0%</td></tr>'
                        '</table>')
    t2_case("t2/foxmail_html_initiator_rowspan.eml", "foxmail", "html_table",
            Email(ZHENG, "日常任务同步跟进表", None, html_page("foxmail", "", merged_initiator)),
            [task("7月考勤汇总", SUN, at(7, 31), WIP, progress=50, priority="medium"),
             task("工位调整通知", ZHENG, at(8, 3), AWAIT, progress=0, priority="low")],
            checkbox="plain option", owner_form="name", date_form="M月D日")
    t2_case("t2/en_label_lines_ticks_after_apple.eml", "apple", "label_lines",
            Email(WU, "[Task] Update the supplier list",
                  "Task: Update the supplier list\nOwner: Zheng Tao\nPriority: High ☐ Medium ☑ Low ☐\n"
                  "Due date: Aug 12\nProgress: 0% ☑\n"),
            [task("Update the supplier list", ZHENG, at(8, 12), AWAIT, progress=0,
                  priority="medium")], language="en", checkbox="☑ after",
            owner_form="name", date_form="English")
    t2_case("t2/word_cells_guide_compact_thunderbird.eml", "thunderbird", "word_cells",
            Email(WU, "日常任务同步跟进表", word_cells(T2_HEADER, [list(r) for r in T2_GUIDE],
                                                        spaced=False)), T2_TASKS,
            checkbox="one option left", owner_form="department*title", date_form="M月D日")
    t2_case("t2/excel_fullwidth_dates_qq.eml", "qq", "excel_tabs",
            Email(WU, "[任务] 本周", tabs(T2_HEADER, [
                ["月度客户满意度报告", "运营部*专员", "孙悦", "高", "７月３０日", "７５％", "", ""],
                ["办公设备采购申请", "行政部*主管", "周敏", "中", "８月５日", "５０％", "", ""]])),
            [task("月度客户满意度报告", SUN, at(7, 30), WIP, progress=75, priority="high"),
             task("办公设备采购申请", ZHOU, at(8, 5), WIP, progress=50, priority="medium")],
            checkbox="plain option", owner_form="name", date_form="full-width")
    # template 3: more ETAs and layouts
    t3_case("t3/label_lines_eod_163.eml", "163", "label_lines",
            Email(CHEN, "紧急：客服热线排队过长",
                  "紧急事务类型：□客诉 □系统故障 □舆情 ☑其他\n发起人：客服部 陈静\n"
                  "事务描述（含影响范围）：热线排队超过20分钟，全国用户\n响应人：赵磊\n"
                  "处理方案（含步骤、责任人、时间）：临时增加坐席（赵磊，1小时内）\n预计完成时间：今天下班前\n"),
            "客服热线排队过长", ZHAO, at(7, 27, 18), "other", checkbox="☑ among options",
            owner_form="name", date_form="今天下班前")
    t3_case("t3/word_cells_spaced_outlook.eml", "outlook", "word_cells",
            Email(CHEN, "[紧急] 优惠券被刷",
                  word_cells(T3_HEADER, [["☑其他", "客服部*专员", "优惠券接口被批量刷取，已损失约2万元",
                                          "王喆", "1.下线接口 2.核查订单", "30分钟内"]], spaced=True)),
            "优惠券被刷", WANG, at(7, 27, 9, 30), "other", checkbox="☑ before",
            owner_form="name", date_form="N分钟内")
    t3_case("t3/excel_two_row_wps_html.eml", "wps", "two_row",
            Email(CHEN, "紧急事务处理快速响应表 - 物流延迟", None,
                  html_page("wps", "", html_table("wps", T3_HEADER, [[
                      "客诉", "客服部*专员", "华南仓发货延迟，约500单超时", "客服部", "逐一致电安抚，补发优惠券",
                      "明天18点"]]))),
            "物流延迟", CHEN, at(7, 28, 18), "customer_complaint", checkbox="plain option",
            owner_form="department", date_form="明天N点")
    # kickoff: bullet lines with a colon after the department, dates as 8.10
    case("kickoff/bullets_colon_dates_qq.eml", "qq", "kickoff", "kickoff_lines", "zh",
         Email(LI, "Q3新品推广项目启动会",
               "事项：Q3新品推广项目启动会\n发起人：市场部 李娜\n参与人：产品部、销售部、客服部\n"
               "背景：新品8月上市\n需配合：\n- 产品部：8.10前输出核心卖点\n- 销售部：8.14前提交渠道需求\n"
               "- 客服部：8.20前准备FAQ\n"),
         owner_form="department", date_form="M.D前", kind="new_item",
         item={"kind": "project", "title": "Q3新品推广项目启动会"},
         tasks=[task("输出核心卖点", WANG, at(8, 10)), task("提交渠道需求", ZHAO, at(8, 14)),
                task("准备FAQ", CHEN, at(8, 20))], items=1, confirm=True, errors=[])
    case("kickoff/163_html.eml", "163", "kickoff", "kickoff_html", "zh",
         Email(LI, "启动会：Q3新品推广项目", None,
               html_page("163", KICKOFF.format(name="星耀", clauses="产品部8月10日前输出核心卖点；"
                                                                  "销售部两周内提交渠道需求"), "")),
         owner_form="department", date_form="M月D日前 / 两周内", kind="new_item",
         item={"kind": "project", "title": "Q3新品推广项目启动会"},
         tasks=[task("输出核心卖点", WANG, at(8, 10)), task("提交渠道需求", ZHAO, at(8, 10))],
         items=1, confirm=True, errors=[])
    # bad input
    case("bad/row_without_owner_foxmail.eml", "foxmail", "t1", "excel_tabs", "zh",
         Email(LI, "[项目] Q3新品推广项目",
               "项目名称：Q3新品推广项目\n" + tabs(T1_HEADER[3:6], [["新品核心卖点提炼", "8月10日前", "王喆"],
                                                         ["渠道推广方案制定", "8月14日前", ""]])),
         # Deliberately alike (duplicates): each case spells its email out in full; the table is the data.
         owner_form="missing", kind="new_item", item={"kind": "project"},
         errors=["task_malformed"])
    case("bad/two_owners_slash_qq.eml", "qq", "t2", "label_lines", "zh",
         Email(WU, "[任务] 月度报告", "任务名称：月度报告\n负责人：孙悦/周敏\n截止日期：8月10日\n"),
         owner_form="two people", kind="new_item", item={"kind": "task"}, errors=["owner_many"])
    case("bad/en_asap_gmail.eml", "gmail", "t3", "label_lines", "en",
         Email(CHEN, "[Urgent] Mail server down",
               "Emergency type: System outage\nResponder: Wang Zhe\nETA: ASAP\n"),
         date_form="vague", kind="new_item", item={"kind": "emergency"},
         errors=["date_unparseable"])
    case("bad/unknown_department_role_outlook.eml", "outlook", "t1", "label_lines+pipes", "zh",
         Email(LI, "[项目] 合同归档",
               "项目名称：合同归档\n任务分配：\n沟通事项 | 时间节点 | 负责人\n合同扫描 | 8月14日前 | 法务部*经理\n"),
         owner_form="unknown department", kind="new_item", item={"kind": "project"},
         errors=["owner_unknown"])
    # a form forwarded: it is in the forwarded part, and read
    fwd = ("转给协作邮箱登记一下。\n\n-------- 转发的邮件 --------\n主题：日常任务\n日期：2026-07-24 17:00\n"
           "发件人：郑涛 <zheng.tao@corp.example>\n\n任务名称：工位调整通知\n负责人：郑涛\n截止日期：8月3日\n")
    case("reply/forwarded_form_thunderbird.eml", "thunderbird", "t2", "forwarded", "zh",
         Email(WU, "Fwd: 日常任务", fwd), owner_form="name", date_form="M月D日", kind="new_item",
         item={"kind": "task", "title": "工位调整通知"}, tasks=[task("工位调整通知", ZHENG, at(8, 3))],
         items=1, errors=[])


# --------------------------------------------------------------------------------------------
# Output


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


HEADER = """# The expected reading of every email in this corpus (tests/data/guide/new/), checked by
# tests/mail/test_guide_corpus.py and scored by bench/accuracy_guide_new.py (`make accuracy`).
# Written by tools/guide_corpus.py from the guide's templates; each expectation is stated by
# hand there. Fixed now: 2026-07-27 09:00 Asia/Shanghai (a Monday). Keys per case:
#   file, client, template (t1 | t2 | t3 | kickoff | none), shape, kind, language   required
#   checkbox, owner_form, date_form, note     what the case exercises (for the per-* figures)
#   item        fields of the reading (subset)
#   tasks       per task (subset): name, owner_address, deadline_at, state, progress, priority
#   items       how many items the email makes (a daily-task table: one per row)
#   confirm     whether the reading waits for the initiator's one-word confirmation
#   errors      validation error codes, in order
#   notes       the receipt's note kinds, in order (owner | workday | buffer)
#   unread      what could not be read (kickoff clauses)
"""


def main() -> int:
    build_t1()
    build_t2()
    build_t3()
    build_kickoff()
    build_bad()
    build_replies()
    build_more()
    if OUT.exists():
        shutil.rmtree(OUT)
    blocks = [HEADER]
    for minute, item in enumerate(CASES):
        client = CLIENTS[item.client]
        stem = hashlib.sha1(item.file.encode()).hexdigest()[:14]
        path = OUT / item.file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(render_email(client, item.email, stem, minute % 60))
        lines = ["", "[[case]]", f"file = {_toml_value(item.file)}",
                 f"client = {_toml_value(item.client)}",
                 f"template = {_toml_value(item.template)}", f"shape = {_toml_value(item.shape)}",
                 f"language = {_toml_value(item.language)}"]
        for key in ("checkbox", "owner_form", "date_form", "note"):
            if getattr(item, key):
                lines.append(f"{key} = {_toml_value(getattr(item, key))}")
        for key, value in item.expect.items():
            lines.append(f"{key} = {_toml_value(value)}")
        blocks.append("\n".join(lines))
    (OUT / "expected.toml").write_text("\n".join(blocks) + "\n", encoding="utf-8")
    print(f"wrote {len(CASES)} emails to {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
