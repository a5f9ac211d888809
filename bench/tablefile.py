"""Phase 10: what an attached table costs. The pure per-email work (decode + classify, which
reads the form) for the guide's Q3 project pasted as an HTML table, against the same email with
the table in a 1 MB .xlsx instead: (a) the filled template with a pasted screenshot in it (the
picture makes the megabyte), (b) the template with a second sheet of ~12,000 data rows. The
issue's figure: the added latency of a 1 MB .xlsx, at most 50 ms. Median of many runs; the
first run (openpyxl's import, ~150 ms once per process) is reported apart."""

from __future__ import annotations

import html
import io
import os
import random
import time
import zipfile
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from zoneinfo import ZoneInfo

ROWS = [["Q3新品推广项目", "李娜 / 市场部", "产品部、销售部、客服部", "新品核心卖点提炼", "8月10日前", "王喆",
         "未开始", "需结合用户调研数据"],
        ["Q3新品推广项目", "李娜 / 市场部", "产品部、销售部、客服部", "渠道推广方案制定", "8月15日前", "赵磊",
         "未开始", "预算上限待财务部确认"],
        ["Q3新品推广项目", "李娜 / 市场部", "产品部、销售部、客服部", "客诉应对流程培训", "8月20日前", "陈静",
         "未开始", "需产品部提供FAQ文档"]]
BODY = "目标/背景：新品计划8月上市，3个月内用户增长50%\n交付标准：见表\n\n谢谢\n李娜"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _email(body: str, html_body: str | None = None, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"] = "li.na@corp.example", "collab@corp.example"
    msg["Subject"], msg["Message-ID"] = "[项目] Q3新品推广项目", "<bench-table@corp.example>"
    msg["Date"] = "Mon, 03 Aug 2026 09:15:00 +0800"
    msg.set_content(body)
    if html_body:
        msg.add_alternative(html_body, subtype="html")
    if attachment:
        msg.add_attachment(attachment, maintype=XLSX[0], subtype=XLSX[1],
                           filename="Q3新品推广项目.xlsx", cte="base64")
    return msg.as_bytes(policy=SMTP)


def _workbook(size: int, kind: str, header: list[str]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "跨部门项目协作沟通记录表"
    sheet.append(header)
    for row in ROWS:
        sheet.append(row)
    rng = random.Random(7)
    if kind == "rows":
        data = book.create_sheet("数据")
        while True:
            for _ in range(2000):
                data.append([f"客户{rng.randint(1, 10**6)}", rng.randint(1, 10**9),
                             f"{rng.random():.6f}", f"华东区{rng.randint(1, 99)}",
                             rng.choice("高中低"), f"备注{rng.randint(1, 10**6)}"])
            out = io.BytesIO()
            book.save(out)
            if len(out.getvalue()) >= size:
                return out.getvalue()
    out = io.BytesIO()
    book.save(out)
    # A screenshot pasted into the sheet: an incompressible picture part brings it to `size`.
    with zipfile.ZipFile(out, "a", zipfile.ZIP_STORED) as archive:
        archive.writestr("xl/media/image1.png", rng.randbytes(size - len(out.getvalue())))
    return out.getvalue()


def run(out, iterations: int) -> None:
    from maild.app.wiring import Rules
    from maild.core.classify import ClassifyContext, NewItem, classify
    from maild.mail.decode import decode
    from maild.mail.workbooks import load_sheet_words

    from .child import ROOT, config

    cfg = config(1, 1, "/tmp/maild-bench-table-unused")
    rules = Rules.load(cfg.rules_dir)
    words = load_sheet_words(Path(ROOT) / "templates" / "sheets.toml")
    header = list(words.get("zh")["project"]["columns"])
    table = "<table>" + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row)
                                + "</tr>" for row in [header, *ROWS]) + "</table>"
    pasted_text = BODY + "\n\n" + "\n".join("\t".join(row) for row in [header, *ROWS])
    samples = {
        "pasted": _email(pasted_text, f"<p>{BODY}</p>{table}"),
        "xlsx_1mb_picture": _email(BODY, attachment=_workbook(2**20, "picture", header)),
        "xlsx_1mb_rows": _email(BODY, attachment=_workbook(2**20, "rows", header)),
    }
    ctx = ClassifyContext(inbox_address=cfg.inbox_address, secret=b"bench",
                          allowed_domains=cfg.allowed_domains, form_rules=rules.form_rules,
                          lookup_message=lambda mid: None, item_exists=lambda item_id: False,
                          sheet_words=words, file_limits=cfg.files_chat.limits,
                          today=datetime.now(ZoneInfo("Asia/Shanghai")).date())
    result = {}
    for name, raw in samples.items():
        times, first = [], None
        for n in range(iterations):
            t0 = time.perf_counter()
            msg = decode(raw, max_bytes=cfg.max_message_bytes,
                         max_header_bytes=cfg.max_header_bytes,
                         max_table_bytes=cfg.files_chat.limits.max_bytes)
            decision = classify(msg, ctx)
            elapsed = (time.perf_counter() - t0) * 1000
            if n == 0:
                first = elapsed
                assert isinstance(decision, NewItem) and len(decision.form.tasks) == 3, decision
            else:
                times.append(elapsed)
        times.sort()
        result[name] = {"ms": times[len(times) // 2], "first_ms": first, "bytes": len(raw),
                        "attachment": max((len(a.data or b"") for a in msg.attachments),
                                          default=0)}
    pasted = result["pasted"]["ms"]
    for name in ("xlsx_1mb_picture", "xlsx_1mb_rows"):
        result[name]["added_ms"] = result[name]["ms"] - pasted
    result["pid"] = os.getpid()
    out.put(result)
