"""Render every email template (zh and en) with realistic data and screenshot it with headless
Chromium at desktop and mobile widths, so a person can look and a test can measure.

    .venv/bin/python tools/screenshots.py --out screenshots      # what `make screenshots` runs

Writes `OUT/<kind>-<lang>-<width>.png`, the email's HTML as `OUT/html/<kind>-<lang>.html` and
`OUT/report.json` (per page: scroll width at each width, the links). Exit 1 when a page overflows
480 px or has a link that is not a valid mailto:, 2 when Chromium is missing and cannot be installed.

Surprises:
- Headless Chromium will not make a window narrower than 500 px, so each email is shown in an
  `<iframe srcdoc>` of exactly the target width; media queries see that width.
- The data is deliberately unkind: long Chinese names and departments, a 30-task project, markup and
  Jinja syntax in user text, a long unbroken URL.
- When Chromium or a Chinese font is missing and we are root, Debian's `chromium` and
  `fonts-noto-cjk` are installed with apt-get (without a CJK font Chinese shows as boxes).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maild.core.initiatorbuttons import (  # noqa: E402
    ITEM_CLOSE_ACTIONS,
    RECEIPT_ITEM_ACTIONS,
    item_rows,
    task_buttons,
)
from maild.core.model import Notice  # noqa: E402
from maild.mail.render import Renderer  # noqa: E402

WIDTHS = (1024, 480)
MOBILE = 480
INBOX = "collab@corp.example"
REPLY = "collab+md0012-t2-k3j5h2m9qa@corp.example"
SENT = datetime(2026, 8, 2, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
HOSTILE = "<script>alert(1)</script> {{ 7*7 }} <img src=https://evil.example/x.png>"
LONG_URL = "https://share.corp.example/drive/" + "a1b2c3d4e5" * 9
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio", "--disable-extensions", "--force-device-scale-factor=1",
)
PEOPLE = (
    ("wang.zhe@corp.example", "王喆", "产品部"),
    ("ouyang.mingyue@corp.example", "欧阳明月·阿依古丽·买买提江", "华东区大客户销售与渠道拓展管理部"),
    ("zhao.lei@corp.example", "赵磊", "销售部"),
    ("chen.jing@corp.example", "陈静", "客服部"),
    ("alex.morgan@corp.example", "Alexandra Montgomery-Fitzgerald", "International Partnerships"),
)
STATES = ("in_progress", "awaiting_confirmation", "done", "delayed", "blocked", "declined",
          "not_started")


def make_item(n_tasks: int = 30) -> dict[str, Any]:
    tasks = []
    for n in range(1, n_tasks + 1):
        address, name, dept = PEOPLE[(n - 1) % len(PEOPLE)]
        state = STATES[(n - 1) % len(STATES)]
        tasks.append({
            "id": f"T-{n}", "owner": address, "owner_name": name, "owner_department": dept,
            "name": (f"新品核心卖点提炼与用户场景图设计（第{n}轮，含竞品对比与渠道反馈汇总）"
                     if n % 3 else f"Channel plan {n}: budget, cadence {HOSTILE}"),
            "deadline": f"2026-08-{(n % 28) + 1:02d}T18:00:00+08:00",
            "deliverable": "500字以内卖点说明+用户场景图" + (f" {LONG_URL}" if n == 2 else ""),
            "state": state, "progress": 60 if state == "in_progress" else 0,
            "confirmed_at": None if state == "awaiting_confirmation" else "2026-08-01T10:15:00+08:00",
            "note": "需结合用户调研数据",
        })
    return {
        "id": "MD-0012", "kind": "project",
        "title": f"Q3新品推广项目——华东华南双区域联合上市与全渠道用户增长计划 {HOSTILE}",
        "initiator": "li.na@corp.example", "initiator_name": "李娜", "initiator_department": "市场部",
        "participants": ["产品部", "销售部", "客服部", {"name": "欧阳明月·阿依古丽·买买提江",
                                                       "address": "ouyang.mingyue@corp.example"}],
        "goal": f"新品计划8月上市，3个月内用户增长50%\n资料：{LONG_URL}",
        "scope": "产品卖点提炼、推广素材制作、渠道投放、销售培训、客诉应对",
        "created_at": "2026-08-01T09:00:00+08:00", "tasks": tasks,
    }


def sample_context(kind: str) -> dict[str, Any]:
    """Realistic, hostile data for `kind`; unknown kinds get every key the contract names."""
    item = make_item()
    task = item["tasks"][1]
    owner = {"name": task["owner_name"], "address": task["owner"]}
    common: dict[str, Any] = {
        "item": item, "task": task, "actor": owner,
        "reason": f"本周出差，{HOSTILE}\n建议转给销售部欧阳明月·阿依古丽·买买提江",
        "notes": [{"item": "MD-0012", "task": "T-2", "kind": "owner", "how": "department+title",
                   "text": f"销售部*主管 {HOSTILE}", "name": "欧阳明月·阿依古丽·买买提江"},
                  {"item": "MD-0012", "task": "T-2", "kind": "workday",
                   "deadline": "2026-08-15T18:00:00+08:00", "before": "2026-08-14T18:00:00+08:00"},
                  {"item": "MD-0012", "task": "T-3", "kind": "buffer", "days": 1}],
        "suggestions": ["goal", "deliverable"],
        "recognised": {"form": "日常任务同步跟进表", "fields": [["任务名称", f"季度预算汇总 {HOSTILE}"],
                                                          ["负责人", "经理"]],
                       "tasks": [f"季度预算汇总 | 经理 | 下下下周 {LONG_URL}"]},
        "unread": [f"会议室: 3楼 {HOSTILE}"],
        "draft": {"id": "D-7K3F9QAB", "kind": "project", "title": f"Q3新品推广项目启动会 {HOSTILE}",
                  "participants": ["产品部总监", "销售部主管", "客服部*专员"],
                  "tasks": item["tasks"][:3], "unread": [f"设计部尽快出图 {HOSTILE}"]},
        "situation": "used", "item_ids": ["MD-0012", "MD-0013"], "draft_id": "D-7K3F9QAB",
        "command": {"name": "progress", "percent": 75, "note": f"素材已完成 {HOSTILE}"},
        "errors": [
            {"field": "title", "code": "missing", "value": "", "task": None},
            {"field": "deadline", "code": "date_past", "value": "7月1日", "task": 2},
            {"field": "owner", "code": "owner_unknown", "value": f"张三 {HOSTILE}", "task": 1},
            {"field": "owner", "code": "owner_many", "value": "王喆、赵磊", "task": 3},
        ],
        "field_labels": {"title": "项目名称", "deadline": "截止日期", "owner": "负责人"},
        "accepted_dates": ["8月10日", "8月10日前", "下周五", "2026-08-10", "Aug 10"],
        "refilled_form": (f"项目名称：\n目标：{HOSTILE}\n任务：\n卖点 | 张三 | 7月1日 | 说明\n"
                          f"渠道 | 王喆、赵磊 | 8月15日 | {LONG_URL}"),
        "original_subject": "[项目] Q3新品推广",
        "forms": [
            {"name": "跨部门项目", "subject": "[项目] ",
             "text": "项目名称：\n发起人/部门：\n目标/背景：\n任务：\n任务名称 | 负责人 | 截止日期 | 交付标准"},
            {"name": "紧急事务", "subject": "[紧急] ", "text": f"事务类型：□客诉□系统故障 {HOSTILE}"},
        ],
        "recipient": "ouyang.mingyue@corp.example", "code": 550,
        "server_message": f"5.1.1 <ouyang.mingyue@corp.example>: User unknown {HOSTILE}",
        "failed_subject": "[MD-0012] 请确认任务 T-2",
        "action": "转派 T-2",
        "allowed": ["李娜 <li.na@corp.example>", "admin@corp.example"],
        "excerpt": f"这个怎么弄？{HOSTILE}",
        # the workflow's own kinds (maild/core/workflow.py)
        "blocker": {"at": "2026-08-04T10:00:00+08:00", "situation": f"FAQ完成一半 {HOSTILE}",
                    "cause": "产品部卖点未定稿", "support": "请产品部先给出卖点初稿"},
        "requested_deadline": "2026-08-20T18:00:00+08:00",
        "retro_form": "结项\n是否达成目标：\n未达目标原因：\n可优化点：",
        "ask": "blocker_fields", "missing": ["cause", "support"], "value": "",
        "tasks": [task], "addresses": [task["owner"]],
        # not_handled (maild/core/admission.py): an email over the size cap
        "problem": "too_large", "size_mb": "27.4", "limit_mb": "25",
        # closing the loop (maild/core/closeloop.py): a hand-in, a return before it, what was waited on
        "submission": {"n": 2, "note": f"已按要求补充移动端场景图 {HOSTILE}", "attachments": [
            {"filename": f"新品核心卖点说明（第二版，含用户场景图）{HOSTILE}.docx",
             "content_type": "application/octet-stream", "size": 1_834_221}]},
        "returns": [{"n": 1, "reason": f"场景图缺少移动端，{HOSTILE}"}], "forwarded": True,
        "waited_on": [{"id": "T-1", "name": item["tasks"][0]["name"]}],
    }
    recipient = {"address": "li.na@corp.example", "name": "李娜", "department": "市场部"}
    rows = [_row(item, t) for t in item["tasks"]]
    counts = {f: sum(f in r["flags"] for r in rows) for f in ("overdue", "unconfirmed", "blocked")}
    common.update(  # digests, reminders and escalations (see maild/core/planner.py)
        recipient=recipient, since="2026-08-01T09:00:00+08:00", title=item["title"], n_items=1,
        counts={**counts, "action": sum(bool(r["action"]) for r in rows), "changed": 4,
                "total": len(rows)},
        projects=[{"id": item["id"], "title": item["title"], "kind": "project",
                   "total": len(rows), "closable": False, **counts,
                   "chains": [[f"{t['id']} {t['name']}" for t in item["tasks"][:3]]]},
                  {"id": "MD-0013", "title": "月度客户满意度报告", "kind": "task", "total": 1,
                   "closable": True, "overdue": 0, "unconfirmed": 0, "blocked": 0,
                   "series": {"text": "每月5日", "count": 4, "done": 3, "on_time": 2,
                              "declined": 0, "open": 1, "next_due": "2026-09-30",
                              "stopped": False}}],
        item_buttons=item_rows(["MD-0013"], ITEM_CLOSE_ACTIONS),
        sections=[{"key": key, "rows": [r for r in rows if _section(r) == key]}
                  for key in ("action", "overdue", "changed", "rest")],
        rows=rows, level="overdue_1", rule="overdue_1", reason="overdue", threshold=1,
        due_at="2026-08-02T09:00:00+08:00", recipient_role="manager", missing_role="",
        owner={"address": task["owner"], "name": task["owner_name"],
               "department": task["owner_department"]},
        overdue_days=2, progress_below=None, emergency=False,
    )
    common["sections"] = [s for s in common["sections"] if s["rows"]]
    if kind == "owner_digest":
        common["counts"] = {"total": len(rows), **{f: counts[f] for f in ("overdue", "unconfirmed")}}
    if kind == "reminder":
        common["recipient_role"] = "owner"
    if kind == "escalation":  # to the initiator alone: her buttons for the task
        common.update(recipient_role="initiator", manage=task_buttons(task, overdue=True))
    if kind in ("validation_error", "templates", "draft_confirm", "draft_answer", "not_handled"):
        common["item"] = common["task"] = None
    if kind == "confirmed":
        common["task"] = item["tasks"][0]
    return common


def _row(item: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """A digest row as planner.py builds it."""
    state = task["state"]
    flags = (["overdue"] if task["deadline"] < "2026-08-02" and state not in ("done", "declined")
             else []) + (["unconfirmed"] if state == "awaiting_confirmation" else []) + (
             ["blocked"] if state == "blocked" else [])
    n = int(task["id"][2:])
    return {
        "item_id": item["id"], "item_title": item["title"], "item_kind": item["kind"],
        "initiator_name": item["initiator_name"], "task_id": task["id"], "name": task["name"],
        "owner": task["owner"], "owner_name": task["owner_name"],
        "owner_department": task["owner_department"], "deadline": task["deadline"],
        "state": state, "progress": task["progress"], "updated_at": "2026-08-01T17:45:00+08:00",
        "flags": flags, "action": state if state in ("declined", "blocked", "delayed") else "",
        "changes": [{"field": "state", "old": "not_started", "new": state}] if n % 7 == 1 else [],
        **_initiator_buttons(item, task, "overdue" in flags),
    }


def _initiator_buttons(item: Mapping[str, Any], task: Mapping[str, Any],
                       overdue: bool) -> dict[str, Any]:
    """A row's `ref` and `actions` when it needs the initiator (digests.py), else nothing."""
    actions = task_buttons({**task, "requested_deadline": "x" if task["state"] == "delayed"
                            else None}, overdue)
    return {"ref": f"{item['id']}/{task['id']}", "actions": actions} if actions else {}


def _section(row: Mapping[str, Any]) -> str:
    return ("action" if row["action"] else "overdue" if "overdue" in row["flags"]
            else "changed" if row["changes"] else "rest")


# Pages beyond one per template, with the unkind data: name → (template, its context).
VARIANTS: Mapping[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "receipt_several": ("receipt", lambda: several_items_receipt()),
}


def several_items_receipt() -> dict[str, Any]:
    """A receipt listing three daily tasks (the guide's template 2), each with its buttons."""
    ctx = sample_context("receipt")
    base = make_item(3)
    items = [{**base, "id": f"MD-00{12 + n}", "kind": "task", "title": task["name"],
              "tasks": [{**task, "id": "T-1"}]} for n, task in enumerate(base["tasks"])]
    ctx.update(item=None, task=None, items=items,
               item_buttons=item_rows([i["id"] for i in items], RECEIPT_ITEM_ACTIONS))
    return ctx


def render_all(templates_dir: Path = ROOT / "templates", *, showcase: bool = False,
               kinds: Iterable[str] | None = None) -> dict[tuple[str, str], Any]:
    """{(kind, lang): Outgoing} for every template and language: with the unkind test data, or
    (`showcase`) with the guide's Q3 project as the README shows it; without `kinds`, the
    unkind data's `VARIANTS` too."""
    renderer = Renderer(templates_dir, timezone="Asia/Shanghai", inbox_address=INBOX,
                        from_name="maild 协作助手")
    out = {}
    pages = {kind: (kind, None) for kind in sorted(kinds or renderer.kinds)}
    if not (kinds or showcase):
        pages |= {name: (template, make) for name, (template, make) in VARIANTS.items()}
    for kind, (template, make) in pages.items():
        for lang in renderer.languages:
            ctx = (showcase_context(kind, lang) if showcase else
                   make() if make else sample_context(kind))
            item = ctx.get("item")
            notice = Notice(template=template, to=("wang.zhe@corp.example",), language=lang,
                            context=ctx,
                            item_id=item["id"] if item and "digest" not in kind else None)
            out[(kind, lang)] = renderer.render(
                notice, message_id=f"maild.shot.{kind}.{lang}@corp.example",
                date=SHOWCASE_SENT if showcase else SENT, reply_address=REPLY)
    return out


# The guide's example project, twelve days in: 王喆's selling points are two days overdue at 80 %,
# 赵磊's channel plan is under way, 陈静 has confirmed the training. For the README's pictures.
SHOWCASE_SENT = datetime(2026, 8, 12, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
SHOWCASE_TASKS = {
    "zh": (("T-1", "wang.zhe@corp.example", "王喆", "产品部", "新品核心卖点提炼", "2026-08-10",
            "500字以内卖点说明+用户场景图", "in_progress", 80),
           ("T-2", "zhao.lei@corp.example", "赵磊", "销售部", "渠道推广方案制定", "2026-08-15",
            "包含预算、渠道选择、投放节奏", "in_progress", 40),
           ("T-3", "chen.jing@corp.example", "陈静", "客服部", "客诉应对流程培训", "2026-08-20",
            "FAQ文档+培训签到记录", "not_started", 0)),
    "en": (("T-1", "wang.zhe@corp.example", "Wang Zhe", "Product", "Core selling points",
            "2026-08-10", "Selling points (≤ 500 words) + user scenarios", "in_progress", 80),
           ("T-2", "zhao.lei@corp.example", "Zhao Lei", "Sales", "Channel plan", "2026-08-15",
            "Budget, channels, cadence", "in_progress", 40),
           ("T-3", "chen.jing@corp.example", "Chen Jing", "Customer service",
            "Complaint handling training", "2026-08-20", "FAQ + training sign-in sheet",
            "not_started", 0)),
}


def showcase_item(lang: str) -> dict[str, Any]:
    tasks = [{"id": tid, "owner": address, "owner_name": name, "owner_department": dept,
              "name": title, "deadline": f"{due}T18:00:00+08:00", "deliverable": deliverable,
              "state": state, "progress": progress, "assigned_at": "2026-08-01T09:00:00+08:00",
              "confirmed_at": "2026-08-01T10:15:00+08:00", "note": ""}
             for tid, address, name, dept, title, due, deliverable, state, progress
             in SHOWCASE_TASKS[lang]]
    zh = lang == "zh"
    return {
        "id": "MD-0001", "kind": "project",
        "title": "Q3新品推广项目" if zh else "Q3 product launch",
        "initiator": "li.na@corp.example", "initiator_name": "李娜" if zh else "Li Na",
        "initiator_department": "市场部" if zh else "Marketing",
        "participants": ["产品部", "销售部", "客服部"] if zh else ["Product", "Sales",
                                                              "Customer service"],
        "goal": "新品计划8月上市，3个月内用户增长50%" if zh else
                "Launch in August; +50 % users within 3 months",
        "scope": "产品卖点提炼、推广素材制作、渠道投放、销售培训、客诉应对" if zh else
                 "Selling points, materials, channels, sales training, complaints",
        "created_at": "2026-08-01T09:00:00+08:00", "tasks": tasks,
    }


def showcase_context(kind: str, lang: str) -> dict[str, Any]:
    """The unkind context with the guide's Q3 project and plain words in place of the hostile
    text: every key a template may read is still there."""
    ctx = sample_context(kind)
    item = showcase_item(lang)
    task = item["tasks"][0]
    zh = lang == "zh"
    ctx.update(
        item=None if ctx.get("item") is None else item,
        task=None if ctx.get("task") is None else task,
        actor={"name": task["owner_name"], "address": task["owner"]},
        warnings=[], command={"name": "progress", "percent": 80,
                              "note": "卖点初稿已完成，场景图进行中" if zh else "Draft done"},
        excerpt="这个怎么弄？" if zh else "How does this work?",
        blocker={"at": "2026-08-11T10:00:00+08:00",
                 "situation": "推广素材制作延迟" if zh else "Materials are late",
                 "cause": "设计部人手不足" if zh else "Design is short of people",
                 "support": "需市场部协调1名设计师临时支援" if zh else "One designer for a week"},
        server_message="5.1.1 User unknown", title=item["title"],
    )
    if kind in ("declined", "delay_request", "refused"):  # elsewhere "reason" is a level's key
        ctx["reason"] = "本周在外地出差，建议转给销售部其他同事" if zh else "Travelling this week"
    rows = [_row(item, t) for t in item["tasks"]]
    for row, task_ in zip(rows, item["tasks"], strict=True):
        row["flags"] = ["overdue"] if row["deadline"] < "2026-08-12" else []
        row["action"], row["changes"] = "", []
        row.pop("actions", None)
        row.update(_initiator_buttons(item, task_, bool(row["flags"])))
    counts = {"overdue": 1, "unconfirmed": 0, "blocked": 0}
    ctx.update(rows=rows, counts={**counts, "action": 0, "changed": 1, "total": len(rows)},
               projects=[{"id": item["id"], "title": item["title"], "kind": "project",
                          "total": len(rows), "closable": False, **counts}],
               sections=[{"key": "overdue", "rows": rows[:1]}, {"key": "rest", "rows": rows[1:]}],
               recipient={"address": "li.na@corp.example", "name": item["initiator_name"],
                          "department": item["initiator_department"]})
    if kind == "owner_digest":
        ctx["counts"] = {"total": len(rows), "overdue": 1, "unconfirmed": 0}
    if kind == "confirmed":
        ctx["task"] = task
    return ctx


# ---------------------------------------------------------------------------------------------
# links


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.remote: list[str] = []  # external images, scripts, stylesheets

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href") is not None:
            self.hrefs.append(values["href"] or "")
        if tag in ("img", "script", "link", "iframe") or (tag == "source" and "src" in values):
            self.remote.append(f"<{tag} {values.get('src') or values.get('href') or ''}>")


def link_problems(page: str, reply_address: str = REPLY) -> list[str]:
    """Every <a href> must be a mailto: to one plain address with only subject/body, UTF-8."""
    parser = _Links()
    parser.feed(page)
    problems = [f"remote or active content: {r}" for r in parser.remote]
    for href in parser.hrefs:
        parts = urlsplit(href)
        if parts.scheme.lower() != "mailto":
            problems.append(f"not mailto: {href[:80]}")
            continue
        address = unquote(parts.path)
        local, at, domain = address.partition("@")
        if not (local and at and "." in domain) or any(c in address for c in " <>,;\"\r\n"):
            problems.append(f"bad address in {href[:80]}")
        if address not in (reply_address, INBOX) and not address.endswith("@corp.example"):
            problems.append(f"mailto to an unexpected address {address}")
        try:
            query = parse_qs(parts.query, strict_parsing=bool(parts.query), errors="strict")
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"bad query in {href[:80]}: {exc}")
            continue
        if set(query) - {"subject", "body"}:
            problems.append(f"unexpected mailto fields {sorted(set(query))} in {href[:80]}")
        if len(href) > 2000:
            problems.append(f"mailto longer than 2000 characters: {href[:80]}")
    return problems


# ---------------------------------------------------------------------------------------------
# chromium


def _apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=False, env=env)
    subprocess.run(["apt-get", "install", "-y", *packages], check=False, env=env)


def _can_install() -> bool:
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def has_cjk_font() -> bool:
    if not shutil.which("fc-list"):
        return False
    proc = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True)
    return bool(proc.stdout.strip())


def find_chromium(install: bool = True) -> str | None:
    """Chromium's path; as root, installs Debian's chromium (and a CJK font) when missing."""
    path = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                 "google-chrome"))), None)
    missing = ([] if path else ["chromium"]) + ([] if has_cjk_font() else ["fonts-noto-cjk"])
    if missing and install and _can_install():
        print(f"installing {' '.join(missing)} with apt-get", file=sys.stderr)
        _apt_install(*missing)
        path = path or shutil.which("chromium")
    elif "fonts-noto-cjk" in missing:
        print("no Chinese font: Chinese text will show as boxes (apt-get install fonts-noto-cjk)",
              file=sys.stderr)
    return path


def _frame(page: str, width: int, height: int, frame_id: str = "f") -> str:
    return (f"<iframe id='{frame_id}' scrolling='no' style='display:block;width:{width}px;"
            f"height:{height}px;border:0' srcdoc=\"{html.escape(page, quote=True)}\"></iframe>")


def _shell(body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'></head>"
            f"<body style='margin:0;background:#fff'>{body}</body></html>")


MEASURE_JS = """<pre id='m'></pre><script>window.addEventListener('load', function () {
  var out = {};
  document.querySelectorAll('iframe').forEach(function (f) {
    var d = f.contentDocument.documentElement;
    var bars = [];  // progress bars: [declared %, drawn share %, right edge px]
    f.contentDocument.querySelectorAll('td[bgcolor][width$="%"]').forEach(function (td) {
      var row = td.parentElement.getBoundingClientRect();
      var box = td.getBoundingClientRect();
      if (!td.previousElementSibling && row.width > 0) {
        bars.push([parseInt(td.getAttribute('width'), 10), 100 * box.width / row.width,
                   row.right, box.height]);
      }
    });
    out[f.id] = {scroll_width: d.scrollWidth, scroll_height: d.scrollHeight,
                 inner_width: f.contentWindow.innerWidth, bars: bars};
  });
  document.getElementById('m').textContent = JSON.stringify(out);
});</script>"""


def _chromium(binary: str, args: Iterable[str], timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="maild-chromium-") as profile:
        return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)


def measure(binary: str, frames: Mapping[str, tuple[str, int]], work: Path) -> dict[str, Any]:
    """{id: (page, width)} → {id: {scroll_width, scroll_height, inner_width}}, in one Chromium run."""
    path = work / "measure.html"
    body = "".join(_frame(page, width, 800, frame_id) for frame_id, (page, width) in frames.items())
    path.write_text(_shell(body + MEASURE_JS), encoding="utf-8")
    widest = max(width for _, width in frames.values())
    proc = _chromium(binary, [f"--window-size={max(widest, 500)},800",
                              "--virtual-time-budget=10000", "--dump-dom", path.as_uri()])
    start = proc.stdout.find('<pre id="m">')
    end = proc.stdout.find("</pre>", start)
    if start < 0 or end < 0 or start + 12 == end:
        raise RuntimeError(f"chromium measured nothing for {path}: {proc.stderr[-500:]}")
    return json.loads(html.unescape(proc.stdout[start + 12:end]))


def screenshot(binary: str, page: str, width: int, height: int, png: Path, work: Path) -> None:
    path = work / f"{png.stem}.html"
    path.write_text(_shell(_frame(page, width, height)), encoding="utf-8")
    proc = _chromium(binary, [f"--window-size={width},{height}", f"--screenshot={png}",
                              path.as_uri()])
    if not png.exists():
        raise RuntimeError(f"chromium wrote no {png}: {proc.stderr[-500:]}")


def shoot_all(out_dir: Path, binary: str, *, widths: Iterable[int] = WIDTHS,
              workers: int = max(2, os.cpu_count() or 2),
              shoot: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Render and measure everything, screenshot the pages `shoot(name)` accepts (default all);
    returns the report (also in report.json). Chromium runs take ~1.5 s each, one at a time in
    practice here, so the tests shoot a subset."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "html").mkdir(exist_ok=True)
    rendered = render_all()
    report: dict[str, Any] = {}
    jobs = []
    with tempfile.TemporaryDirectory(prefix="maild-shots-") as tmp:
        work = Path(tmp)
        for (kind, lang), email in rendered.items():
            name = f"{kind}-{lang}"
            (out_dir / "html" / f"{name}.html").write_text(email.html, encoding="utf-8")
            report[name] = {"subject": email.subject, "links": link_problems(email.html),
                            "widths": {}}
            jobs += [(name, email.html, width) for width in widths]

        frames = {f"{name}-{width}": (page, width) for name, page, width in jobs}
        metrics = measure(binary, frames, work)

        for name, _, width in jobs:
            report[name]["widths"][str(width)] = metrics[f"{name}-{width}"]

        def run(job: tuple[str, str, int]) -> None:
            name, page, width = job
            height = min(max(metrics[f"{name}-{width}"]["scroll_height"], 200), 16000)
            png = out_dir / f"{name}-{width}.png"
            screenshot(binary, page, width, height, png, work)
            report[name]["widths"][str(width)] = {**metrics[f"{name}-{width}"], "png": str(png)}

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run, [j for j in jobs if shoot is None or shoot(j[0])]))
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2),
                                         encoding="utf-8")
    return report


# The README's pictures: (kind, language, width), with the guide's Q3 project.
SHOWCASE = (("confirm_request", "zh", 1024), ("command_ack", "zh", 480), ("digest", "zh", 480),
            ("receipt", "en", 1024))


def shoot_showcase(out_dir: Path, binary: str) -> list[Path]:
    """The README's pictures (docs/*.png): realistic data only, no test strings."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = render_all(showcase=True, kinds={kind for kind, _, _ in SHOWCASE})
    written = []
    with tempfile.TemporaryDirectory(prefix="maild-showcase-") as tmp:
        work = Path(tmp)
        frames = {f"{k}-{lang}-{w}": (rendered[(k, lang)].html, w) for k, lang, w in SHOWCASE}
        metrics = measure(binary, frames, work)
        for name, (page, width) in frames.items():
            png = out_dir / f"{name}.png"
            height = min(max(metrics[name]["scroll_height"], 200), 16000)
            screenshot(binary, page, width, height, png, work)
            written.append(png)
    return written


def problems(report: Mapping[str, Any]) -> list[str]:
    found = []
    for name, page in sorted(report.items()):
        found += [f"{name}: {p}" for p in page["links"]]
        mobile = page["widths"].get(str(MOBILE))
        if mobile and mobile["scroll_width"] > MOBILE:
            found.append(f"{name}: overflows {MOBILE}px (scroll width {mobile['scroll_width']})")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "screenshots",
                        help="folder for the PNGs (default: screenshots/)")
    parser.add_argument("--no-install", action="store_true", help="never apt-get chromium")
    parser.add_argument("--showcase", type=Path, default=None, metavar="DIR",
                        help="also write the README's pictures (the guide's Q3 project) to DIR")
    args = parser.parse_args(argv)
    binary = find_chromium(install=not args.no_install)
    if binary is None:
        print("chromium is missing: apt-get install -y chromium (as root)", file=sys.stderr)
        return 2
    if args.showcase is not None:
        pictures = shoot_showcase(args.showcase, binary)
        print(f"{len(pictures)} README pictures in {args.showcase}/")
    report = shoot_all(args.out, binary)
    shots = sorted(args.out.glob("*.png"))
    print(f"{len(shots)} screenshots in {args.out}/ ({len(report)} emails × {len(WIDTHS)} widths)")
    found = problems(report)
    for problem in found:
        print(f"PROBLEM {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
