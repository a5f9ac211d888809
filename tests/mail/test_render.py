"""Rendering: every template in both languages, MIME output, mailto links, escaping, injection."""

from __future__ import annotations

import email
import email.policy
import html
import re
import shutil
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from maild.core.model import Notice, Outgoing
from maild.mail.mailto import mailto
from maild.mail.mime import to_mime
from maild.mail.render import Renderer
from maild.mail.templatetools import format_deadline

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INBOX = "collab@corp.example"
REPLY = "collab+c3f9a1b2.MD-0012@corp.example"
FROM_NAME = "maild 协作助手"
SENT = datetime(2026, 8, 2, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
SCRIPT = "<script>alert(1)</script>"
JINJA = "{{ 7*7 }}"
LANGS = ("zh", "en")
STATES = {
    "awaiting_confirmation": ("待确认", "Awaiting confirmation"),
    "not_started": ("未开始", "Not started"),
    "in_progress": ("进行中", "In progress"),
    "done": ("已完成", "Done"),
    "delayed": ("延期", "Delayed"),
    "declined": ("已拒绝", "Declined"),
    "blocked": ("受阻", "Blocked"),
}


def make_item(states: tuple[str, ...] = ("in_progress", "awaiting_confirmation", "done")) -> dict:
    people = [
        ("wang.zhe@corp.example", "王喆", "产品部"),
        ("ouyang.mingyue@corp.example", "欧阳明月·阿依古丽·买买提", "华东区大客户销售与渠道拓展部"),
        ("zhao.lei@corp.example", "", ""),
        ("chen.jing@corp.example", "陈静", "客服部"),
    ]
    tasks = []
    for n, state in enumerate(states, start=1):
        address, name, dept = people[(n - 1) % len(people)]
        tasks.append(
            {
                "id": f"T-{n}",
                "name": f"新品核心卖点提炼与用户场景图设计（第{n}轮） {SCRIPT}",
                "owner": address,
                "owner_name": name,
                "owner_department": dept,
                "deadline": f"2026-08-{9 + n:02d}T18:00:00+08:00",
                "deliverable": "500字以内卖点说明+用户场景图",
                "state": state,
                "progress": 50 if state == "in_progress" else 0,
                "confirmed_at": "2026-08-01T10:15:00+08:00"
                if state != "awaiting_confirmation"
                else None,
                "note": "需结合用户调研数据",
            }
        )
    return {
        "id": "MD-0012",
        "kind": "project",
        "title": f"Q3新品推广项目 {SCRIPT} {JINJA}",
        "initiator": "li.na@corp.example",
        "initiator_name": "李娜",
        "initiator_department": "市场部",
        "participants": ["产品部总监", {"name": "销售部主管", "address": "x@corp.example"}],
        "goal": f"新品3个月内用户增长50%\n第二行目标 {JINJA}",
        "scope": "市场部、产品部、销售部、客服部",
        "created_at": "2026-08-01T09:00:00+08:00",
        "tasks": tasks,
    }


def context_for(kind: str) -> dict[str, Any]:
    item = make_item()
    task = item["tasks"][1]
    owner = {"name": task["owner_name"], "address": task["owner"]}
    initiator = {"name": "李娜", "address": "li.na@corp.example"}
    contexts: dict[str, dict[str, Any]] = {
        "receipt": {"item": item, "items": [item], "suggestions": ["goal"], "notes": [
            {"item": "MD-0012", "task": "T-2", "kind": "owner", "text": f"销售部*主管 {SCRIPT}",
             "name": "赵磊", "how": "department+title"},
            {"item": "MD-0012", "task": "T-2", "kind": "workday",
             "deadline": "2026-08-15T18:00:00+08:00", "before": "2026-08-14T18:00:00+08:00"},
            {"item": "MD-0012", "task": "T-1", "kind": "buffer", "days": 1}]},
        "confirm_request": {"item": item, "task": task},
        "confirmed": {"item": item, "task": item["tasks"][0], "actor": owner},
        "declined": {
            "item": item,
            "task": task,
            "actor": owner,
            "reason": f"本周出差 {SCRIPT} {JINJA}\n建议由李娜负责",
        },
        "command_ack": {
            "item": item,
            "task": item["tasks"][0],
            "actor": {"name": "王喆", "address": "wang.zhe@corp.example"},
            "command": {"name": "progress", "percent": 75, "note": f"素材已完成 {SCRIPT}"},
        },
        "validation_error": {
            "errors": [
                {"field": "title", "code": "missing", "value": "", "task": None},
                {"field": "deadline", "code": "date_past", "value": "7月1日", "task": 2},
                {"field": "owner", "code": "owner_unknown", "value": f"张三 {SCRIPT}", "task": 1},
            ],
            "field_labels": {"title": "项目名称", "deadline": "截止日期", "owner": "负责人"},
            "accepted_dates": ["8月10日", "8月10日前", "下周五", "2026-08-10", "Aug 10"],
            "refilled_form": f"项目名称：\n目标：{JINJA}\n任务：卖点 | 张三 {SCRIPT} | 7月1日 | 说明",
            "original_subject": "[项目] Q3新品推广",
        },
        "templates": {
            "forms": [
                {
                    "name": "跨部门项目",
                    "subject": "[项目] ",
                    "text": f"项目名称：\n目标：\n任务：{JINJA}",
                },
                {"name": "紧急事务", "text": f"事务类型：□客诉□系统故障 {SCRIPT}"},
            ]
        },
        "delivery_failed": {
            "item": item,
            "task": task,
            "recipient": "ouyang.mingyue@corp.example",
            "code": 550,
            "server_message": f"5.1.1 User unknown {SCRIPT}",
            "failed_subject": "[MD-0012] 请确认任务",
        },
        "refused": {
            "item": item,
            "action": "转派 T-2",
            "reason": f"只有发起人可以转派 {SCRIPT} {JINJA}",
            "allowed": ["李娜 <li.na@corp.example>", "admin@corp.example"],
            "actor": initiator,
        },
        "not_understood": {"item": item, "excerpt": f"这个怎么弄？{SCRIPT} {JINJA}"},
        "draft_confirm": {
            "draft": {"id": "D-7K3F9QAB", "kind": "project", "title": f"Q3启动会 {SCRIPT} {JINJA}",
                      "participants": ["产品部总监", "客服部*专员"], "tasks": item["tasks"][:2],
                      "unread": [f"设计部尽快出图 {SCRIPT}"]},
            "notes": [{"task": "T-1", "kind": "owner", "text": "产品部", "name": "王喆",
                       "how": "department head", "group": 0}],
            "original_subject": "Q3启动会"},
        "draft_answer": {"situation": "used", "item_ids": ["MD-0012"], "draft_id": "D-7K3F9QAB",
                         "original_subject": f"Q3启动会 {SCRIPT} {JINJA}"},
        "file_problem": {"filename": f"项目表{SCRIPT}{JINJA}.xls", "code": "legacy"},
    }
    return contexts[kind]


SCHEDULE_KINDS = frozenset({"digest", "owner_digest", "reminder", "escalation"})
WORKFLOW_KINDS = frozenset({"blocker_alert", "delay_request", "retrospective_request", "question",
                            "owner_unreachable"})
ADMISSION_KINDS = frozenset({"not_handled"})  # maild/core/admission.py
# Acceptance, recurring tasks and dependencies: rendered from real outcomes in test_closeloop.py.
LOOP_KINDS = frozenset({"review_request", "accepted", "returned", "unblocked", "occurrence"})
KINDS = (
    "receipt",
    "confirm_request",
    "confirmed",
    "declined",
    "command_ack",
    "validation_error",
    "templates",
    "delivery_failed",
    "refused",
    "not_understood",
    "draft_confirm",
    "draft_answer",
    "file_problem",
)
NO_ITEM = {"validation_error", "templates", "draft_confirm", "draft_answer", "file_problem"}
CASES = [(kind, lang) for kind in KINDS for lang in LANGS]
CASE_IDS = [f"{kind}-{lang}" for kind, lang in CASES]


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)


def notice(kind: str, lang: str, context: dict[str, Any] | None = None) -> Notice:
    ctx = context_for(kind) if context is None else context
    return Notice(
        template=kind,
        to=("wang.zhe@corp.example",),
        cc=("li.na@corp.example",),
        language=lang,
        context=ctx,
        item_id=None if kind in NO_ITEM else "MD-0012",
        in_reply_to="orig-1@mail.corp.example",
        references=("root@mail.corp.example", "orig-1@mail.corp.example"),
    )


def render(renderer: Renderer, kind: str, lang: str, **kw: Any) -> Outgoing:
    reply = None if kind in NO_ITEM else REPLY
    return renderer.render(
        notice(kind, lang, **kw), message_id="out-1@corp.example", date=SENT, reply_address=reply
    )


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs += [v or "" for k, v in attrs if k == "href"]


def parse_html(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(("kind", "lang"), CASES, ids=CASE_IDS)
def test_every_template_renders_escaped_and_complete(
    renderer: Renderer, kind: str, lang: str
) -> None:
    out = render(renderer, kind, lang)
    assert out.kind == kind and out.language == lang
    assert "\n" not in out.subject and "\r" not in out.subject
    # hostile text is shown, escaped in HTML, and never evaluated as a template
    assert SCRIPT not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert SCRIPT in out.text
    assert JINJA in out.text + out.subject and JINJA in out.html
    # footer names the inbox in both parts
    assert INBOX in out.text and INBOX in out.html
    # HTML is self-contained and fluid
    links = parse_html(out.html)
    assert not links.tags & {"script", "style", "img", "link", "iframe", "form"}
    assert "max-width:640px" in out.html and "width:100%" in out.html
    assert "Microsoft YaHei" in out.html and "PingFang SC" in out.html
    assert f'<html lang="{"zh-CN" if lang == "zh" else "en"}">' in out.html
    if kind in NO_ITEM:
        assert out.item_id is None and not out.subject.startswith("[")
    else:
        assert out.subject.startswith("[MD-0012] ") and out.item_id == "MD-0012"
        for task in make_item()["tasks"]:  # the one-glance status table, in both parts
            assert task["id"] in out.text and task["id"] in out.html
        assert ("状态一览" if lang == "zh" else "Status at a glance") in out.text


@pytest.mark.parametrize(("kind", "lang"), CASES, ids=CASE_IDS)
def test_to_mime_reparses_as_multipart_alternative(
    renderer: Renderer, kind: str, lang: str
) -> None:
    out = render(renderer, kind, lang)
    raw = to_mime(out, from_address=INBOX, from_name=FROM_NAME)
    raw.decode("ascii")  # 7-bit clean: no 8BITMIME needed
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n") == out.text
    assert html.get_content().replace("\r\n", "\n") == out.html
    for part in (plain, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert msg["Subject"] == out.subject
    assert msg["From"].addresses[0].display_name == FROM_NAME
    assert msg["From"].addresses[0].addr_spec == INBOX
    assert msg["To"] == "wang.zhe@corp.example" and msg["Cc"] == "li.na@corp.example"
    assert msg["Message-ID"] == "<out-1@corp.example>"
    assert msg["In-Reply-To"] == "<orig-1@mail.corp.example>"
    assert msg["References"] == "<root@mail.corp.example> <orig-1@mail.corp.example>"
    assert msg["Date"] == "Sun, 02 Aug 2026 09:30:00 +0800"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Maild-Kind"] == kind
    assert msg["MIME-Version"] == "1.0" and len(msg.get_all("MIME-Version")) == 1
    assert "Precedence" not in msg
    if kind in NO_ITEM:
        assert "X-Maild-Item" not in msg and "Reply-To" not in msg
    else:
        assert msg["X-Maild-Item"] == "MD-0012" and msg["Reply-To"] == REPLY


def test_to_mime_is_byte_identical_on_resend(renderer: Renderer) -> None:
    out = render(renderer, "receipt", "zh")
    again = Outgoing.from_dict(out.to_dict())
    assert to_mime(out, from_address=INBOX, from_name=FROM_NAME) == to_mime(
        again, from_address=INBOX, from_name=FROM_NAME
    )


def test_chinese_subject_is_rfc2047_encoded_and_decodes(renderer: Renderer) -> None:
    out = render(renderer, "confirm_request", "zh")
    raw = to_mime(out, from_address=INBOX, from_name=FROM_NAME)
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert b"=?utf-8?" in header_block
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg["Subject"] == out.subject and "请确认任务 T-2" in msg["Subject"]


@pytest.mark.parametrize("lang", LANGS, ids=LANGS)
def test_subject_injection_adds_no_header(renderer: Renderer, lang: str) -> None:
    ctx = context_for("receipt")
    ctx["item"]["title"] = "Q3 推广\r\nBcc: victim@x\r\n\r\nbody"
    out = renderer.render(
        notice("receipt", lang, ctx), message_id="inj@corp.example", date=SENT, reply_address=REPLY
    )
    assert "\r" not in out.subject and "\n" not in out.subject
    raw = to_mime(out, from_address=INBOX, from_name=FROM_NAME)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert "Bcc" not in msg
    assert [k for k in msg.keys() if k.lower() == "bcc"] == []
    assert "Bcc: victim@x" in msg["Subject"]  # kept as harmless subject text


@pytest.mark.parametrize(
    "change",
    [
        {"subject": "a\r\nBcc: victim@x"},
        {"subject": "a\nb"},
        {"to": ("a@x\r\nBcc: v@x",)},
        {"reply_to": "r@x\nBcc: v@x"},
        {"in_reply_to": "a@x\r\nX: y"},
        {"item_id": "MD-1\rX: y"},
        {"kind": "receipt\nX: y"},
        {"date": "Sun, 02 Aug 2026 09:30:00 +0800\r\nBcc: v@x"},
        {"message_id": "a@x> <b@x"},
        {"to": ()},
        # found by the long render fuzz run: a group ("name: ...;") where one mailbox belongs
        {"to": ("  9` 333:3333333333;@corp.example",)},
        {"reply_to": "collab+x:y;@corp.example"},
        {"cc": ("a@corp.example, b@corp.example",)},
    ],
    ids=[
        "subject-crlf",
        "subject-lf",
        "to",
        "reply-to",
        "in-reply-to",
        "item",
        "kind",
        "date",
        "message-id",
        "no-recipient",
        "to-group",
        "reply-to-group",
        "cc-two-in-one",
    ],
)
def test_to_mime_rejects_unsafe_headers(change: dict[str, Any]) -> None:
    base = Outgoing(
        message_id="m@x",
        to=("a@corp.example",),
        subject="s",
        text="t\n",
        html="<p>t</p>\n",
        date="Sun, 02 Aug 2026 09:30:00 +0800",
    )
    out = Outgoing.from_dict({**base.to_dict(), **change})
    with pytest.raises(ValueError):
        to_mime(out, from_address=INBOX, from_name=FROM_NAME)


def test_to_mime_rejects_newline_in_from_name() -> None:
    out = Outgoing(
        message_id="m@x",
        to=("a@corp.example",),
        subject="s",
        text="t\n",
        html="<p>t</p>\n",
        date="Sun, 02 Aug 2026 09:30:00 +0800",
    )
    with pytest.raises(ValueError):
        to_mime(out, from_address=INBOX, from_name="maild\r\nBcc: v@x")


def test_to_mime_skips_stand_in_message_ids() -> None:
    out = Outgoing(
        message_id="m@x",
        # Alike on purpose (duplicates): each to_mime test builds its own Outgoing, so the field under test shows.
        to=("a@corp.example",),
        subject="s",
        text="t\n",
        html="<p>t</p>\n",
        date="Sun, 02 Aug 2026 09:30:00 +0800",
        in_reply_to="sha256:abc",
        references=("sha256:abc", "real@x"),
    )
    msg = email.message_from_bytes(
        to_mime(out, from_address=INBOX, from_name="m"), policy=email.policy.default
    )
    assert "In-Reply-To" not in msg and msg["References"] == "<real@x>"


MAILTO_URL = re.compile(r"mailto:[A-Za-z0-9._~!$'()*+;:@%-]+(\?[A-Za-z0-9._~%=&-]*)?\Z")


@pytest.mark.parametrize(("kind", "lang"), CASES, ids=CASE_IDS)
def test_mailto_links_are_valid_prefilled_replies(renderer: Renderer, kind: str, lang: str) -> None:
    out = render(renderer, kind, lang)
    hrefs = [h for h in parse_html(out.html).hrefs if h.lower().startswith("mailto:")]
    assert hrefs, "every email offers at least one pre-filled reply"
    for href in hrefs:
        assert MAILTO_URL.match(href), href
        url = urlsplit(href)
        query = parse_qs(url.query, keep_blank_values=True, strict_parsing=True)
        assert query["body"][0].strip()
        if kind in NO_ITEM:  # new items go to the inbox, not into a thread
            assert unquote(url.path) == INBOX
        else:
            assert unquote(url.path) == REPLY
            assert query["subject"] == [f"Re: {out.subject}"]


@pytest.mark.parametrize(
    ("lang", "bodies"), [("zh", ["确认", "拒绝: "]), ("en", ["confirm", "decline: "])], ids=LANGS
)
def test_confirm_request_offers_confirm_and_decline(
    renderer: Renderer, lang: str, bodies: list[str]
) -> None:
    out = render(renderer, "confirm_request", lang)
    hrefs = [h for h in parse_html(out.html).hrefs if h.startswith("mailto:")]
    assert [parse_qs(urlsplit(h).query)["body"][0] for h in hrefs] == bodies
    assert ("确认" if lang == "zh" else "confirm") in out.text
    assert ("拒绝: 原因" if lang == "zh" else "decline: reason") in out.text


@pytest.mark.parametrize("lang", LANGS, ids=LANGS)
def test_each_action_button_gets_its_own_address(renderer: Renderer, lang: str) -> None:
    addresses = {action: f"collab+md1-t1-{action[0]}@corp.example"
                 for action in ("confirm", "decline", "progress", "done", "status", "close")}
    for kind, expected in (("confirm_request", ["confirm", "decline"]),
                           ("command_ack", ["progress", "done", None])):
        context = context_for(kind)
        if kind == "command_ack":  # the owner's own acknowledgement shows the owner's buttons
            context["actor"] = {"address": context["task"]["owner"], "name": "x"}
        out = renderer.render(notice(kind, lang, context), message_id="out-1@corp.example",
                              date=SENT, reply_address=REPLY, action_addresses=addresses)
        hrefs = [h for h in parse_html(out.html).hrefs if h.startswith("mailto:")]
        # The status button asks a question: it goes to the email's plain reply address.
        assert [unquote(urlsplit(h).path) for h in hrefs] == [
            addresses[a] if a else REPLY for a in expected]
        assert out.reply_to == REPLY


@pytest.mark.parametrize("lang", LANGS, ids=LANGS)
def test_declined_gives_the_exact_reassign_reply(renderer: Renderer, lang: str) -> None:
    out = render(renderer, "declined", lang)
    line = (
        "转派 T-2 给 someone@corp.example"
        if lang == "zh"
        else "reassign T-2 to someone@corp.example"
    )
    assert line in out.text and line in out.html
    assert "本周出差" in out.text and "建议由李娜负责" in out.html


def test_validation_error_names_each_problem_and_refills_the_form(renderer: Renderer) -> None:
    out = render(renderer, "validation_error", "zh")
    assert "缺少「项目名称」" in out.text
    assert "第 2 个任务：「截止日期」的日期“7月1日”已经过去" in out.text
    assert "第 1 个任务：负责人“张三 <script>" in out.text
    assert "下周五" in out.text
    assert "<pre" in out.html and "项目名称：\n目标：{{ 7*7 }}" in out.html
    href = next(h for h in parse_html(out.html).hrefs if h.startswith("mailto:"))
    query = parse_qs(urlsplit(href).query)
    assert query["subject"] == ["[项目] Q3新品推广"]
    assert (
        query["body"][0].replace("\r\n", "\n") == context_for("validation_error")["refilled_form"]
    )


CODES = [
    "missing",
    "date_unparseable",
    "date_past",
    "owner_unknown",
    "owner_many",
    "owner_missing",
    "task_malformed",
    "no_tasks",
    "unknown_kind",
    "something_new",
]


def error_message(renderer: Renderer, code: str, lang: str) -> str:
    ctx = {
        "errors": [{"field": "deadline", "code": code, "value": "明天下班前", "task": None}],
        "field_labels": {"deadline": "截止日期"},
    }
    out = renderer.render(
        notice("validation_error", lang, ctx), message_id="e@x", date=SENT, reply_address=None
    )
    return out.text.split("1. ", 1)[1].split("\n", 1)[0]


@pytest.mark.parametrize("lang", LANGS, ids=LANGS)
@pytest.mark.parametrize("code", CODES, ids=CODES)
def test_every_error_code_has_its_own_message(renderer: Renderer, code: str, lang: str) -> None:
    message = error_message(renderer, code, lang)
    fallback = error_message(renderer, "something_new", lang)
    assert (message == fallback) == (code == "something_new")
    assert "error." not in message and "{" not in message
    if code in (
        "date_unparseable",
        "date_past",
        "owner_unknown",
        "owner_many",
        "task_malformed",
        "something_new",
    ):
        assert "明天下班前" in message


@pytest.mark.parametrize("lang", LANGS, ids=LANGS)
def test_state_labels_appear_as_text_and_colour_in_both_parts(
    renderer: Renderer, lang: str
) -> None:
    item = make_item(tuple(STATES))
    out = renderer.render(
        notice("receipt", lang, {"item": item}), message_id="s@x", date=SENT, reply_address=REPLY
    )
    for zh, en in STATES.values():
        label = zh if lang == "zh" else en
        assert f"[{label}" in out.text
        assert re.search(
            r"background-color:#[0-9a-f]{6};color:#[0-9a-f]{6};[^>]*>&#9679; " + re.escape(label),
            out.html,
        )


@pytest.mark.parametrize(
    ("value", "lang", "expected"),
    [
        ("2026-08-10T18:00:00+08:00", "zh", "8月10日 周一 18:00"),
        ("2026-08-10T18:00:00+08:00", "en", "Mon Aug 10, 18:00"),
        ("2026-08-10T10:00:00+00:00", "zh", "8月10日 周一 18:00"),
        ("2026-08-10T18:00:00", "en", "Mon Aug 10, 18:00"),
        ("2026-08-10", "zh", "8月10日 周一"),
        ("2027-01-05T09:00:00+08:00", "zh", "2027年1月5日 周二 09:00"),
        ("2027-01-05T09:00:00+08:00", "en", "Tue Jan 5 2027, 09:00"),
        (None, "zh", "未定"),
        (None, "en", "not set"),
        ("下周五", "zh", "下周五"),
    ],
    ids=[
        "zh",
        "en",
        "utc-to-local",
        "naive-is-local",
        "date-only",
        "other-year-zh",
        "other-year-en",
        "none-zh",
        "none-en",
        "unparsed-kept",
    ],
)
def test_deadline_format(renderer: Renderer, value: Any, lang: str, expected: str) -> None:
    from zoneinfo import ZoneInfo

    catalog = renderer._catalog[lang]  # noqa: SLF001 - the catalog the filter reads
    assert (
        format_deadline(value, catalog=catalog, tz=ZoneInfo("Asia/Shanghai"), now=SENT) == expected
    )


def test_mailto_percent_encodes_per_rfc6068() -> None:
    url = mailto("collab+tok.MD-1@corp.example", "Re: [MD-1] 任务 & 50%", "进度 50%\n第二行 a+b=c")
    assert url.startswith("mailto:collab+tok.MD-1@corp.example?subject=Re%3A%20%5BMD-1%5D%20")
    assert "%0D%0A" in url and "%2B" in url and " " not in url
    query = parse_qs(urlsplit(url).query)
    assert query["subject"] == ["Re: [MD-1] 任务 & 50%"]
    assert query["body"] == ["进度 50%\r\n第二行 a+b=c"]
    assert mailto("a@x", "", "") == "mailto:a@x"


@pytest.mark.parametrize(
    "address",
    ["", "no-at", "a@x?cc=v@x", "a b@x", "a@x\r\nBcc: v", "a@x,v@x"],
    ids=["empty", "no-at", "query", "space", "crlf", "comma"],
)
def test_mailto_rejects_unsafe_addresses(address: str) -> None:
    with pytest.raises(ValueError):
        mailto(address, "s", "b")


def test_outgoing_copies_threading_and_metadata(renderer: Renderer) -> None:
    out = render(renderer, "confirm_request", "en")
    assert out.message_id == "out-1@corp.example"
    assert out.to == ("wang.zhe@corp.example",) and out.cc == ("li.na@corp.example",)
    assert out.in_reply_to == "orig-1@mail.corp.example"
    assert out.references == ("root@mail.corp.example", "orig-1@mail.corp.example")
    assert out.reply_to == REPLY and out.kind == "confirm_request" and out.item_id == "MD-0012"
    assert out.date == "Sun, 02 Aug 2026 09:30:00 +0800"


@pytest.mark.parametrize(
    ("given", "used"),
    [("zh-CN", "zh"), ("EN_us", "en"), ("fr", "zh"), ("", "zh")],
    ids=["zh-CN", "en-US", "unknown", "empty"],
)
def test_language_is_normalised(renderer: Renderer, given: str, used: str) -> None:
    assert render(renderer, "refused", given).language == used


def test_unknown_template_is_an_error(renderer: Renderer) -> None:
    for name in ("_layout", "nonexistent", "../etc/passwd"):
        with pytest.raises(ValueError):
            renderer.render(
                Notice(template=name, to=("a@x",), language="zh", context={}),
                message_id="u@x",
                date=SENT,
                reply_address=None,
            )
    # The kinds tested here, plus the schedule kinds (test_render_schedules.py) and the workflow
    # kinds rendered from real workflow outcomes (test_workflow.py).
    assert renderer.kinds == (frozenset(KINDS) | SCHEDULE_KINDS | WORKFLOW_KINDS | ADMISSION_KINDS
                              | LOOP_KINDS)


def test_render_reads_no_files_after_construction(tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    renderer = Renderer(copy, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)
    shutil.rmtree(copy)
    assert render(renderer, "receipt", "en").subject.startswith("[MD-0012] Registered:")


def test_catalog_languages_must_have_the_same_keys(tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    toml = copy / "i18n.toml"
    toml.write_text(
        toml.read_text(encoding="utf-8").replace('done = "Done"\n', "", 1), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="state.done"):
        Renderer(copy, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)


def test_unknown_timezone_is_an_error() -> None:
    with pytest.raises(ValueError):
        Renderer(TEMPLATES, timezone="Mars/Olympus", inbox_address=INBOX, from_name=FROM_NAME)


def test_per_language_override_wins(tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    (copy / "refused.en.subject.j2").write_text("Nope", encoding="utf-8")
    renderer = Renderer(copy, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)
    assert render(renderer, "refused", "en").subject == "[MD-0012] Nope"
    assert render(renderer, "refused", "zh").subject == "[MD-0012] 无法执行你的请求"


def test_minimal_item_with_enums_renders(renderer: Renderer) -> None:
    from maild.core.model import ItemKind, TaskState

    item = {
        "id": "MD-0001",
        "kind": ItemKind.TASK,
        "title": "月度客户满意度报告",
        "initiator": "li.na@corp.example",
        "tasks": [
            {
                "id": "T-1",
                "name": "数据分析",
                "owner": "chen.jing@corp.example",
                "state": TaskState.DONE,
            }
        ],
    }
    out = renderer.render(
        Notice(
            template="receipt", to=("li.na@corp.example",), language="zh", context={"item": item}
        ),
        message_id="min@x",
        date=SENT,
        reply_address=None,
    )
    assert out.subject == "[MD-0001] 已登记：月度客户满意度报告"
    assert "[已完成]" in out.text and "chen.jing@corp.example" in out.text and "未定" in out.text
    hrefs = [h for h in parse_html(out.html).hrefs if h.startswith("mailto:")]
    assert hrefs and all(unquote(urlsplit(h).path) == INBOX for h in hrefs)  # no token: the inbox


def test_deadlines_are_shown_in_the_readers_timezone(renderer: Renderer) -> None:
    item = {"id": "MD-0007", "title": "t", "initiator": "li.na@corp.example",
            "tasks": [{"id": "T-1", "name": "n", "owner": "alex.morgan@corp.example",
                       "state": "not_started", "deadline": "2026-08-10T18:00:00+08:00"}]}
    notice = Notice(template="confirm_request", to=("alex.morgan@corp.example",), language="en",
                    context={"item": item, "task": item["tasks"][0]}, item_id="MD-0007")
    shanghai = renderer.render(notice, message_id="a@x", date=SENT, reply_address=None)
    london = renderer.render(Notice(**{**notice.__dict__, "context": {
        **notice.context, "reader_timezone": "Europe/London"}}), message_id="b@x", date=SENT,
        reply_address=None)
    assert "18:00" in shanghai.text and "11:00" in london.text and "11:00" not in shanghai.text


# -- digest rows: written in Python (`digest_rows`), as the Jinja macros wrote them ---------------

# The rows of digest.{html,txt}.j2 as macros, before `digest_rows` replaced them for speed
# (2026-11-27): the reference the Python rows must match byte for byte.
_REFERENCE_CHANGE_LINE = r"""{% macro change_line(ch) -%}
{% if ch.field == 'new' %}{{ t('schedule.change.new') }}
{%- elif ch.field == 'state' %}{{ t('schedule.change.state', old=ch.old|state_label, new=ch.new|state_label) }}
{%- elif ch.field == 'deadline' %}{{ t('schedule.change.deadline', old=ch.old|deadline, new=ch.new|deadline) }}
{%- else %}{{ t('schedule.change.' ~ ch.field, old=ch.old|oneline, new=ch.new|oneline) }}{% endif %}
{%- endmacro %}
"""
REFERENCE_ROWS = {
    "html": _REFERENCE_CHANGE_LINE + r"""{% macro digest_rows(rows, show_owner=true) %}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;border-collapse:collapse;font-size:14px;line-height:1.45;margin:0 0 8px;">
<tr>
<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;color:#57606a;font-size:13px;font-weight:600;text-align:left;">{{ L.label.task }}</th>
<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;color:#57606a;font-size:13px;font-weight:600;text-align:left;">{{ L.label.owner if show_owner else L.schedule.project }}</th>
<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;color:#57606a;font-size:13px;font-weight:600;text-align:left;">{{ L.label.deadline }}</th>
<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;color:#57606a;font-size:13px;font-weight:600;text-align:left;">{{ L.label.state }}</th>
<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;color:#57606a;font-size:13px;font-weight:600;text-align:left;padding-right:0;">{{ L.schedule.last_update }}</th>
</tr>
{% for r in rows %}
<tr>
<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;word-break:break-word;{% if r.flags %}border-left:3px solid {{ '#a3111f' if 'overdue' in r.flags else '#8a0f55' if 'blocked' in r.flags else '#7a5200' }};padding-left:6px;{% endif %}"><span style="font-family:Consolas,Menlo,monospace;font-size:12px;color:#57606a;">{{ r.item_id }} {{ r.task_id }}</span><br><strong>{{ r.name|oneline }}</strong>
{% if r.flags %}<br><span style="color:#a3111f;font-size:13px;font-weight:600;">{% for f in r.flags %}{% if f != r.flags[0] %}{{ L.list_sep }}{% endif %}{{ L.schedule.flag[f] }}{% endfor %}</span>{% endif %}
{% if r.action and show_owner %}<br><span style="color:#1f2328;font-size:13px;">&#8594; {{ L.schedule.row_action[r.action] }}</span>{% endif %}
{% if r.changes %}<br><span style="color:#57606a;font-size:13px;">{% for ch in r.changes %}{{ change_line(ch) }}{{ L.schedule.list_sep if not loop.last else '' }}{% endfor %}</span>{% endif %}
{% if 'levels' in r %}
{% for lv in r.levels %}<br><span style="color:#1f2328;font-size:13px;font-weight:600;">{{ t('level.' ~ ('owner' if lv.recipient_role == 'owner' else 'other') ~ '.' ~ lv.reason, task_id=r.task_id, task=r.name|oneline, owner=(t('person_dept', name=r.owner_name|oneline, dept=r.owner_department|oneline) if r.owner_department else r.owner_name|oneline), threshold=lv.threshold, deadline=r.deadline|deadline, progress=r.progress, days=r.overdue_days) }}</span>{% if lv.missing_role %}<br><span style="color:#57606a;font-size:13px;">{{ t('schedule.missing', role=L.schedule.role[lv.missing_role]) }}</span>{% endif %}{% endfor %}
<br>{% with tag_subject = 'Re: [' ~ r.item_id ~ ' ' ~ r.task_id ~ '] ' ~ r.name|oneline %}{% for action in r.actions %}{% with url = mailto(r.buttons[action], tag_subject, L.body[action]) %}{% if url|length <= mailto_max %}<a href="{{ url }}" style="display:inline-block;margin:6px 6px 0 0;padding:4px 10px;border:1px solid #0b5cad;border-radius:4px;background-color:{{ '#ffffff' if action in ('decline', 'done', 'status') else '#0b5cad' }};color:{{ '#0b5cad' if action in ('decline', 'done', 'status') else '#ffffff' }};font-size:13px;font-weight:600;line-height:1.2;text-decoration:none;">{{ L.action[action] }}</a>{% endif %}{% endwith %}{% endfor %}{% endwith %}
{% endif %}
</td>
<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;word-break:break-word;">{% if show_owner %}{{ r.owner_name|oneline }}{% if r.owner_department %}<br><span style="color:#57606a;font-size:13px;">{{ r.owner_department|oneline }}</span>{% endif %}{% else %}{{ r.item_title|oneline }}<br><span style="color:#57606a;font-size:13px;">{{ r.initiator_name|oneline }}</span>{% endif %}</td>
<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;">{{ r.deadline|deadline }}</td>
{% set lbl = r.state|state_label %}
<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;"><span style="display:inline-block;padding:2px 8px;border-radius:10px;background-color:{{ lbl.background }};color:{{ lbl.colour }};font-size:13px;font-weight:600;line-height:1.5;">&#9679; {{ lbl.text }}{% if r.progress and r.state != 'done' %} {{ r.progress }}%{% endif %}</span>{{ task_bar(r.state, r.progress) }}</td>
<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;padding-right:0;color:#57606a;font-size:13px;">{{ r.updated_at|deadline }}</td>
</tr>
{% endfor %}
</table>
{% endmacro %}
""",
    "txt": _REFERENCE_CHANGE_LINE + r"""{% macro digest_rows(rows, show_owner=true) %}
{% for r in rows %}
{{ '!' if r.flags else '-' }} {{ r.item_id }} {{ r.task_id }}  [{{ L.state.get(r.state, r.state) }}{% if r.progress and r.state != 'done' %} {{ r.progress }}%{% endif %}]  {{ r.name|oneline }}
{% if show_owner %}
    {{ L.label.owner }}{{ L.colon }}{{ r.owner_name|oneline }}{% if r.owner_department %} · {{ r.owner_department|oneline }}{% endif %}

{% else %}
    {{ L.schedule.project }}{{ L.colon }}{{ r.item_title|oneline }} · {{ r.initiator_name|oneline }}
{% endif %}
    {{ L.label.deadline }}{{ L.colon }}{{ r.deadline|deadline }} · {{ L.schedule.last_update }}{{ L.colon }}{{ r.updated_at|deadline }}
{% if r.flags %}
    {{ L.schedule.marks }}{{ L.colon }}{% for f in r.flags %}{% if f != r.flags[0] %}{{ L.list_sep }}{% endif %}{{ L.schedule.flag[f] }}{% endfor %}

{% endif %}
{% if r.action and show_owner %}
    → {{ L.schedule.row_action[r.action] }}
{% endif %}
{% if r.changes %}
    ~ {% for ch in r.changes %}{{ change_line(ch) }}{{ L.schedule.list_sep if not loop.last else '' }}{% endfor %}

{% endif %}
{% if 'levels' in r %}
{% for lv in r.levels %}
    ! {{ t('level.' ~ ('owner' if lv.recipient_role == 'owner' else 'other') ~ '.' ~ lv.reason, task_id=r.task_id, task=r.name|oneline, owner=(t('person_dept', name=r.owner_name|oneline, dept=r.owner_department|oneline) if r.owner_department else r.owner_name|oneline), threshold=lv.threshold, deadline=r.deadline|deadline, progress=r.progress, days=r.overdue_days) }}
{% if lv.missing_role %}
    {{ t('schedule.missing', role=L.schedule.role[lv.missing_role]) }}
{% endif %}
{% endfor %}
{% if r.reply_to %}
    {{ t('reminders.reply_to', address=r.reply_to, commands=t('reminders.commands.' ~ r.actions[0])) }}
{% else %}
    {{ t('reminders.reply_tag', address=inbox_address, tag='[' ~ r.item_id ~ ' ' ~ r.task_id ~ ']', commands=t('reminders.commands.' ~ r.actions[0])) }}
{% endif %}
{% endif %}

{% endfor %}
{% endmacro %}
""",
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Renderer:
    """A renderer whose digest templates define `digest_rows` as the reference macros (a macro
    of the template hides the global of the same name)."""
    copy = tmp_path_factory.mktemp("reference") / "templates"
    shutil.copytree(TEMPLATES, copy)
    for part, macros in REFERENCE_ROWS.items():
        path = copy / f"digest.{part}.j2"
        path.write_text(macros + path.read_text(encoding="utf-8"), encoding="utf-8")
    return Renderer(copy, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)


def level(reason: str, role: str, missing: str = "", threshold: float = 8) -> dict[str, Any]:
    return {"level": f"x@{reason}", "rule": "x", "reason": reason, "threshold": threshold,
            "due_at": "2026-08-01T09:00:00+08:00", "since": "2026-07-31T09:00:00+08:00",
            "progress_below": None, "recipient_role": role, "missing_role": missing}


def digest_row(n: int, **changes: Any) -> dict[str, Any]:
    row = {"item_id": "MD-0012", "item_title": f"Q3新品推广项目 {SCRIPT}", "item_kind": "project",
           "initiator_name": "李娜", "task_id": f"T-{n}", "name": f"卖点提炼 {n}  {JINJA}",
           "owner": "wang.zhe@corp.example", "owner_name": "王喆", "owner_department": "",
           "deadline": f"2026-08-{n:02d}T18:00:00+08:00", "state": "in_progress",
           "progress": 10 * n, "updated_at": "2026-07-30T10:00:00+08:00", "flags": (),
           "action": "", "changes": ()}
    row.update(changes)
    if "levels" in row:
        row.update(ref=f"MD-0012/T-{n}", overdue_days=n % 3)
    return row


ROWS = [
    digest_row(1, state="awaiting_confirmation", flags=("overdue", "unconfirmed"), progress=0,
               levels=(level("unconfirmed_hours", "owner"), level("overdue", "owner", threshold=0)),
               actions=("confirm", "decline")),
    digest_row(2, state="blocked", flags=("blocked",), action="blocked",
               owner_department=f"产品部 & {SCRIPT}",
               changes=({"field": "state", "old": "in_progress", "new": "blocked"},
                        {"field": "progress", "old": "5", "new": "20"})),
    digest_row(3, state="done", progress=100, changes=({"field": "new", "old": "", "new": ""},)),
    digest_row(4, name=f"  {SCRIPT}\n{JINJA}  ", owner_name="O'Brien \"<b>\"", deadline=None,
               updated_at="2026-08-04",
               changes=({"field": "deadline", "old": "2026-08-01T18:00:00+08:00",
                         "new": "2026-08-09"},
                        {"field": "owner", "old": "a@corp.example", "new": "b@corp.example"})),
    digest_row(5, flags=("overdue",), owner_department="市场部",
               levels=(level("overdue", "initiator", threshold=0),
                       level("overdue_working_days", "initiator", "manager", threshold=1.5)),
               actions=("status",)),
    digest_row(6, state="declined", flags=("overdue",), action="declined", progress=0),
    digest_row(7, state="delayed", action="delayed",
               levels=(level("before_deadline_hours", "owner"),), actions=("progress", "done")),
]


def digest_notice(kind: str, lang: str, rows: list[dict[str, Any]], **extra: Any) -> Notice:
    counts = {"action": 3, "overdue": 3, "unconfirmed": 1, "blocked": 1, "changed": 2,
              "total": len(rows), "reminded": sum("levels" in r for r in rows)}
    if kind == "owner_digest":
        context: dict[str, Any] = {"rows": rows, "counts": counts}
    else:
        context = {"since": "2026-07-31T09:00:00+08:00", "title": "", "n_items": 1,
                   "counts": counts, "projects": [{"id": "MD-0012", "title": SCRIPT,
                                                   "kind": "project", "total": len(rows),
                                                   "overdue": 3, "unconfirmed": 1, "blocked": 1,
                                                   "closable": False}],
                   "sections": [{"key": "action", "rows": rows[:3]},
                                {"key": "rest", "rows": rows[3:]}]}
    context |= {"recipient": {"name": "李娜", "address": "li.na@corp.example"}, **extra}
    return Notice(template=kind, to=("li.na@corp.example",), language=lang, context=context)


def mailto_links(html: str) -> list[tuple[str, str, str]]:
    """(address, subject, body) of every mailto: link, in order."""
    found = []
    for href in parse_html(html).hrefs:
        if href.startswith("mailto:"):
            url = urlsplit(href)
            query = parse_qs(url.query)
            found.append((unquote(url.path), query["subject"][0], query["body"][0]))
    return found


def row_addresses(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {r["ref"]: {a: f"collab+{r['task_id'].lower()}-{a}@corp.example"
                       for a in ("reply", *r["actions"])} for r in rows if "actions" in r}


@pytest.mark.parametrize("kind", ["digest", "owner_digest"])
@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("variant", ["plain", "addresses", "reader-zone"])
def test_digest_rows_write_what_the_macros_wrote(renderer: Renderer, reference: Renderer,
                                                kind: str, lang: str, variant: str) -> None:
    extra = {"reader_timezone": "America/New_York"} if variant == "reader-zone" else {}
    notice = digest_notice(kind, lang, ROWS, **extra)
    addresses = row_addresses(ROWS) if variant == "addresses" else None
    got, expected = (r.render(notice, message_id="d@corp.example", date=SENT,
                              reply_address=REPLY if addresses else None,
                              task_addresses=addresses)
                     for r in (renderer, reference))
    assert got == expected
    assert SCRIPT not in got.html and JINJA in got.text


@pytest.mark.parametrize("lang", LANGS)
def test_a_merged_digest_lists_the_readers_own_tasks_first(renderer: Renderer,
                                                           reference: Renderer,
                                                           lang: str) -> None:
    own = [digest_row(8, owner="li.na@corp.example", owner_name="李娜", flags=("unconfirmed",),
                      state="awaiting_confirmation", progress=0,
                      levels=(level("unconfirmed_hours", "owner"),),
                      actions=("confirm", "decline")),
           digest_row(9, owner="li.na@corp.example", owner_name="李娜")]
    counts = {"total": 2, "overdue": 0, "unconfirmed": 1, "reminded": 1}
    notice = digest_notice("digest", lang, ROWS, own={"rows": own, "counts": counts})
    addresses = row_addresses(ROWS + own)
    out = renderer.render(notice, message_id="m@corp.example", date=SENT, reply_address=None,
                          task_addresses=addresses)
    assert out == reference.render(notice, message_id="m@corp.example", date=SENT,
                                   reply_address=None, task_addresses=addresses)
    alone = renderer.render(digest_notice("digest", lang, ROWS), message_id="a@corp.example",
                            date=SENT, reply_address=None, task_addresses=addresses)
    heading = "你负责的未完成任务" if lang == "zh" else "Your open tasks"
    for part in (out.text, out.html):
        # their own tasks come before the items they started, each with the task's own buttons
        assert part.index(heading) < part.index("MD-0012 T-8") < part.index("MD-0012 T-1")
    assert heading not in alone.text
    mine = "你的任务" if lang == "zh" else "your tasks"
    assert out.subject.startswith(alone.subject) and mine in out.subject
    assert ("共 2 项" if lang == "zh" else "2 open") in out.subject
    links = [address for address, _subject, _body in mailto_links(out.html)]
    assert links == [addresses[r["ref"]]["reply" if a == "status" else a]
                     for r in own + ROWS if "actions" in r for a in r["actions"]]
    assert addresses["MD-0012/T-8"]["reply"] in out.text


def test_without_plus_addressing_tokens_ride_in_subject_tags() -> None:
    """`subject_tokens`: no Reply-To (replies go to the inbox itself); the email's subject
    carries its reply token, and each button writes to the inbox with its own token's tag."""
    from datetime import date

    from maild.core import tokens
    tagged = Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address=INBOX,
                      from_name=FROM_NAME, subject_tokens=True)
    addresses = tokens.action_addresses(b"s", INBOX, "MD-0012", "T-2", "wang.zhe@corp.example",
                                        date(2026, 8, 3), "out-1@corp.example")
    reply = addresses["reply"]
    out = tagged.render(notice("confirm_request", "zh"), message_id="out-1@corp.example",
                        date=SENT, reply_address=reply, action_addresses=addresses)
    assert out.reply_to is None
    assert out.subject.startswith(tokens.subject_tag_for(reply))
    buttons = [urlsplit(h) for h in parse_html(out.html).hrefs if h.startswith("mailto:")]
    assert [unquote(b.path) for b in buttons] == [INBOX, INBOX]
    subjects = [parse_qs(b.query)["subject"][0] for b in buttons]
    assert [tokens.find(b"s", tokens.subject_addresses(s), "wang.zhe@corp.example").action
            for s in subjects] == ["confirm", "decline"]
    assert "collab+" not in out.text and "collab+" not in out.html


@pytest.mark.parametrize(("kind", "labels"), [
    ("receipt", ["查看状态", "转派", "结项", "撤销"]),
    ("confirmed", ["查看状态", "转派", "改期"]),
    ("declined", ["转派", "改期", "查看状态"]),
    ("delay_request", ["同意延期", "改期", "转派"]),
], ids=["receipt", "confirmed", "declined", "delay_request"])
def test_the_initiators_emails_carry_her_buttons(renderer: Renderer, kind: str,
                                                 labels: list[str]) -> None:
    addresses = {action: f"collab+md1-{action}@corp.example"
                 for action in ("reassign", "close", "accept", "reschedule", "withdraw")}
    context = (context_for(kind) if kind != "delay_request" else
               {**context_for("declined"), "requested_deadline": "2026-08-20T18:00:00+08:00"})
    out = renderer.render(notice(kind, "zh", context), message_id="out-2@corp.example",
                          date=SENT, reply_address=REPLY, action_addresses=addresses)
    found = re.findall(r'<a href="(mailto:[^"]+)"[^>]*>([^<]+)</a>', out.html)
    assert [label for _href, label in found][:len(labels)] == labels
    by_label = {label: unquote(urlsplit(html.unescape(href)).path) for href, label in found}
    action_of = {"转派": "reassign", "结项": "close", "同意延期": "accept", "改期": "reschedule",
                 "撤销": "withdraw"}
    for label in labels:
        assert by_label[label] == addresses.get(action_of.get(label, ""), REPLY), label


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("action", ["confirm", "decline", "progress", "status", "done", "blocker",
                                    "delay", "reassign", "close", "withdraw", "accept",
                                    "reschedule"])
def test_a_refusal_names_the_command_in_words_not_its_key(renderer: Renderer, action: str,
                                                          lang: str) -> None:
    out = render(renderer, "refused", lang,
                 context={"action": action, "allowed": ["李娜 <li.na@corp.example>"]})
    asked = next(line for line in out.text.splitlines()
                 if line.startswith(("你请求的操作", "What you asked for")))
    said = asked.split("：" if lang == "zh" else ":", 1)[1].strip()
    assert said and said != action and said != action.replace("_", " "), asked
    if lang == "zh":
        assert not any("a" <= ch.lower() <= "z" for ch in said), asked
