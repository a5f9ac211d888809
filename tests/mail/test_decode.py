"""decode: real .eml bytes from tests/data/decode/ in, exact Unicode fields out."""

from __future__ import annotations

import hashlib
import random
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from maild.core.model import Attachment
from maild.mail.decode import DecodeError, decode, decode_bytes, decode_header, html_to_text
from maild.mail.headers import normalize_message_id

DATA = Path(__file__).parents[1] / "data" / "decode"
CST = timezone(timedelta(hours=8))


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


FIXTURES = [
    (
        "gb2312_over_gbk.eml",
        {
            "from_addr": "wang.zhe@corp.example",
            "from_name": "王喆",
            "to": ("li.kun@corp.example", "zhu.rong@corp.example"),
            "cc": ("collab@corp.example",),
            "delivered_to": ("collab@corp.example", "collab+tk7q@corp.example"),
            "subject": "回复：[任务] 李堃负责的渠道投放方案",
            "text": "确认。\n王喆、李堃、朱镕三人本周五前交付渠道投放方案。\n",
            "message_id": "20260801100000.4Z1x2Y3@corp.example",
            "in_reply_to": "item-P2026-0007.task-3@collab.corp.example",
            "references": (
                "item-P2026-0007@collab.corp.example",
                "item-P2026-0007.task-3@collab.corp.example",
            ),
            "date": datetime(2026, 8, 1, 10, 0, tzinfo=CST),
            "content_type": "text/plain",
            "defects": (),
        },
    ),
    (
        "raw_gbk_subject.eml",
        {
            "subject": "进度 50% — 李堃",
            "from_name": "李堃",
            "from_addr": "li.kun@corp.example",
            "text": "progress 50%\n",
        },
    ),
    (
        "big5_body.eml",
        {
            "subject": "專案進度確認",
            "text": "確認，本週五前完成推廣素材。\n碁銹裏\n",
            "from_name": "Chan Tai Man",
        },
    ),
    (
        "utf8_base64.eml",
        {
            "subject": "Re: [Task] Q3 launch — confirm",
            "text": "Confirm, will deliver by Friday.\n确认，周五前交付。\n",
            "message_id": "CAF=utf8b64@mail.gmail.com",
            "date": datetime(2026, 8, 5, 8, 0, tzinfo=UTC),  # "-0000": unknown zone, taken as UTC
        },
    ),
    (
        "qp_gb18030.eml",
        {
            "subject": "进度",
            "from_name": "朱镕",
            "text": "进度：８０％，已完成素材初稿。䶮 😀\n" + "很长的一行" * 20 + "\n",
        },
    ),
    (
        "html_only_outlook.eml",
        {
            "subject": "[项目] Q3新品推广项目",
            "from_name": "朱镕",
            "content_type": "text/html",
            "text": "项目名称：Q3新品推广项目\n"
            "目标：新品3个月内用户增长50% & 复购率>20%\n"
            "\n"
            "任务名称 | 负责人 | 截止日期\n"
            "产品卖点提炼 | 王喆 | 2026-08-10\n"
            "推广素材制作 | 李堃 | 8月15日前\n"
            "谢谢\n"
            "市场部 朱镕",
        },
    ),
    (
        "alternative.eml",
        {
            "content_type": "multipart/alternative",
            "text": "Progress 60%, 进度正常。\n\n"
            "On Fri, Aug 7, 2026 at 9:30 AM Zhu Rong <zhu.rong@corp.example> wrote:\n"
            "> Please confirm.\n",
            "html": '<div dir="ltr">Progress 60%, 进度正常。</div>\n',
        },
    ),
    (
        "attachments.eml",
        {
            "text": "见附件。\n",
            "content_type": "multipart/mixed",
            "attachments": (
                Attachment(
                    "进度报告-李堃.xlsx",
                    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    10,
                ),
                Attachment("项目计划.pdf", "application/pdf", 19),
                Attachment("王喆的周报.docx", "application/msword", 8),
                Attachment("", "image/png", 8),
            ),
        },
    ),
    (
        "no_message_id.eml",
        {
            "message_id": "sha256:" + hashlib.sha256(load("no_message_id.eml")).hexdigest(),
            "text": "确认\n",
            "defects": ("missing_message_id",),
        },
    ),
    (
        "bounce_report.eml",
        {
            "content_type": "multipart/report",
            "from_addr": "mailer-daemon@mx.corp.example",
            "from_name": "Mail Delivery System",
            "message_id": "20260810020500.5A6B7C8@mx.corp.example",
            "text": "This is the mail system at host mx.corp.example.\n\n"
            "<nobody@corp.example>: host lmtp.corp.example said: 550 5.1.1 User unknown\n",
            "attachments": (),
        },
    ),
    (
        "cve_2023_27043_from.eml",
        {"from_addr": "", "from_name": "", "defects": ("unusable_from",), "text": "close\n"},
    ),
    (
        "nested_50.eml",
        {"text": "50 levels down", "content_type": "multipart/mixed", "defects": ()},
    ),
    (
        "semicolon_header.eml",
        {"text": "still readable", "from_addr": "zhang.wei@corp.example", "subject": "stuffed"},
    ),
]


@pytest.mark.parametrize(("name", "expected"), FIXTURES, ids=[f[0] for f in FIXTURES])
def test_fixture_fields(name: str, expected: dict) -> None:
    inbound = decode(load(name))
    assert {key: getattr(inbound, key) for key in expected} == expected
    assert inbound.raw_size == len(load(name))


def test_headers_hold_every_occurrence_decoded() -> None:
    inbound = decode(load("gb2312_over_gbk.eml"))
    assert inbound.headers["from"] == ("王喆 <Wang.Zhe@Corp.Example>",)
    assert inbound.header("Subject") == "回复：[任务] 李堃负责的渠道投放方案"
    assert inbound.header("X-Mailer") == "Foxmail 7.2.25.228[cn]"
    assert len(inbound.headers["received"]) == 1
    assert "\n" not in inbound.headers["received"][0]


def test_semicolon_stuffed_header_is_fast() -> None:
    started = time.perf_counter()
    decode(load("semicolon_header.eml"))
    assert time.perf_counter() - started < 5  # ~0.15 s here; policy.default takes minutes


@pytest.mark.parametrize(
    ("raw", "kwargs", "reason"),
    [
        (b"", {}, "empty"),
        (b"\r\n\r\n  \n", {}, "empty"),
        (load("utf8_base64.eml"), {"max_bytes": 200}, "too_large"),
        (load("semicolon_header.eml"), {"max_header_bytes": 16 * 1024}, "header_too_large"),
        (b"X-Pad: " + b"a" * 300_000 + b"\r\n\r\nbody", {}, "header_too_large"),
        (b"From: a@b.example\r\n" + b"X: y\r\n" * 60_000, {}, "header_too_large"),  # no blank line
        (load("garbage.bin"), {}, "not_email"),
    ],
    ids=["empty", "blank", "too_large", "header_over_cap", "header_300k", "no_body", "garbage"],
)
def test_decode_errors(raw: bytes, kwargs: dict, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(raw, **kwargs)
    assert caught.value.reason == reason


def test_very_deep_nesting_does_not_crash() -> None:
    head = "From: a@b.example\r\nMessage-ID: <deep@b.example>\r\n"
    opens = "".join(
        f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n' for i in range(2000)
    )
    closes = "".join(f"--b{i}--\r\n" for i in reversed(range(2000)))
    inbound = decode((head + opens + "Content-Type: text/plain\r\n\r\ndeep\r\n" + closes).encode())
    assert inbound.message_id == "deep@b.example"
    assert "nesting_too_deep" in inbound.defects


def test_mangled_emails_never_raise_anything_but_decode_error() -> None:
    rng = random.Random(20260801)
    sources = [load(p.name) for p in sorted(DATA.glob("*.eml")) if p.stat().st_size < 10_000]
    inserts = (b"=?gb2312?B?", b"?=", b"\r\n", b";", b"<", b"\x00", b"=?x?q?", b"\r\n\r\n", b"--")
    for _ in range(300):
        raw = bytearray(rng.choice(sources))
        pos = rng.randrange(len(raw))
        if rng.random() < 0.3:
            del raw[pos:]
        elif rng.random() < 0.5:
            raw[pos] = rng.randrange(256)
        else:
            raw[pos:pos] = rng.choice(inserts) * rng.randrange(1, 4)
        try:
            decode(bytes(raw))
        except DecodeError:
            pass


@pytest.mark.parametrize(
    ("data", "declared", "expected"),
    [
        ("王喆 李堃 朱镕".encode("gbk"), "gb2312", "王喆 李堃 朱镕"),
        ("王喆".encode("gbk"), "GB_2312-80", "王喆"),
        ("李堃".encode("gbk"), "x-gbk", "李堃"),
        ("李堃".encode("gbk"), None, "李堃"),
        ("確認碁銹".encode("cp950"), "big5", "確認碁銹"),
        ("確認".encode(), "iso-8859-1x", "確認"),
        ("確認".encode(), "us-ascii", "確認"),
        ("確認".encode(), "base64", "確認"),
        (b"plain", "unknown-8bit", "plain"),
        (b"\x81\x30", "gb2312", "\ufffd"),
        (b"\xff\xfe\xfd", "utf-8", "\ufffd\ufffd\ufffd"),
    ],
    ids=[
        "gb2312_label_gbk_bytes", "gb_2312-80", "x-gbk", "undeclared_gbk", "big5_as_hkscs",
        "unknown_label_utf8", "ascii_label_utf8", "non_text_codec", "unknown_8bit",
        "truncated_gb18030", "utf8_garbage",
    ],
)  # fmt: skip
def test_decode_bytes(data: bytes, declared: str | None, expected: str) -> None:
    assert decode_bytes(data, declared) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("=?gb2312?B?zfWGtA==?=", "王喆"),
        ("=?GBK?B?wO6I0g==?= <li.kun@corp.example>", "李堃 <li.kun@corp.example>"),
        ("=?utf-8?B?56Gu?= =?utf-8?B?6K6k?=", "确认"),
        ("=?utf-8?B?56Gu6A==?=\r\n =?utf-8?B?rqQ=?=", "确认"),  # one character split over two words
        ("=?utf-8?B?56Gu\r\n 6K6k?=", "确认"),  # folded inside the word
        ("Re: =?utf-8?Q?=E7=A1=AE=E8=AE=A4_ok?= [Task]", "Re: 确认 ok [Task]"),
        ("=?utf-8?B?5L2g?= =?gb2312?B?usM=?=", "你好"),
        ("=?utf-8?B?###?= tail", "=?utf-8?B?###?= tail"),
        ("=?bogus-charset?Q?abc?=", "abc"),
        ("=?big5?B?vVS7ew==?=", "確認"),
        ("=?utf-8*zh?Q?=E5=A5=BD?=", "好"),
    ],
    ids=[
        "gb2312_gbk_name", "gbk_with_address", "adjacent", "split_character", "crlf_inside",
        "q_mixed_text", "mixed_charsets", "undecodable_kept", "unknown_charset", "big5",
        "rfc2231_language",
    ],
)  # fmt: skip
def test_decode_header(raw: str, expected: str) -> None:
    assert decode_header(raw) == expected


@pytest.mark.parametrize(
    ("header", "from_addr", "from_name"),
    [
        # A parametrized table like test_render's (duplicates): the shape of pytest tables, not shared logic.
        ("alice@allowed.org)<attacker@evil.test>", "", ""),
        ("alice@allowed.org, bob@allowed.org", "", ""),
        ('"alice@allowed.org" <bob@allowed.org>', "bob@allowed.org", "alice@allowed.org"),
        ("Alice <alice@allowed.org> <bob@evil.test>", "", ""),
        ("Alice <alice@allowed.org", "", ""),
        ("=?utf-8?Q?a=40allowed.org?= <bob@evil.test>", "bob@evil.test", "a@allowed.org"),
        ("=?utf-8?B?546L5ZaGLCDlpKfkuJo=?= <Wang.Zhe@Corp.Example>", "wang.zhe@corp.example", "王喆, 大业"),
        ("undisclosed-recipients:;", "", ""),
        ("Alice <alice@@allowed.org>", "", ""),
        ("alice@allowed.org (Alice)", "alice@allowed.org", "Alice"),
    ],
    ids=[
        "cve_2023_27043", "two_mailboxes", "quoted_name_with_at", "two_angles", "unclosed",
        "encoded_name_with_at", "encoded_name_with_comma", "group", "double_at", "comment_name",
    ],
)  # fmt: skip
def test_from_must_be_one_clean_mailbox(header: str, from_addr: str, from_name: str) -> None:
    inbound = decode(f"From: {header}\r\nSubject: x\r\n\r\nbody\r\n".encode())
    assert (inbound.from_addr, inbound.from_name) == (from_addr, from_name)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@x.example>", "abc@x.example"),
        ("  < abc@x.example >  ", "abc@x.example"),
        ("abc@x.example", "abc@x.example"),
        ("<abc@x.example> (added by relay)", "abc@x.example"),
        ("<>", None),
        ("   ", None),
        (None, None),
    ],
    ids=["angled", "spaces", "bare", "comment", "empty_angles", "blank", "none"],
)
def test_normalize_message_id(value: str | None, expected: str | None) -> None:
    assert normalize_message_id(value) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>a</p><p>b</p>", "a\nb"),
        ("a<br>b<br/><br>c", "a\nb\n\nc"),
        ("<div>x &amp; y &lt;z&gt; &nbsp;&#20320;</div>", "x & y <z>  你"),
        (
            "<table><tr><th>任务名称</th><th>负责人</th></tr>"
            "<tr><td><p>卖点提炼</p></td><td>王喆</td></tr></table>",
            "任务名称 | 负责人\n卖点提炼 | 王喆",
        ),
        ("<table><tr><td>a<td>b<tr><td>c</table>after", "a | b\nc\nafter"),
        ("<style>p{color:red}</style><script>alert(1)</script><p>shown</p>", "shown"),
        ("<p>one</p><p>&nbsp;</p><p>two</p>", "one\n\ntwo"),
        ("<ul><li>first</li><li>second</li></ul>", "first\nsecond"),
        ("<pre>a\n b</pre>", "a\nb"),
        ("<p>  spread \n  over\tlines </p>", "spread over lines"),
        ("<html><head><title>T</title><meta charset=utf-8><body><p>shown", "shown"),
    ],
    ids=[
        "paragraphs", "br", "entities", "table", "unclosed_cells", "script_style",
        "blank_paragraph", "list", "pre", "whitespace", "unclosed_head",
    ],
)  # fmt: skip
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_first_text_part_not_attachment_and_crlf_bom() -> None:
    raw = (
        b"From: a@b.example\r\nMessage-ID: <m@b.example>\r\n"
        b'Content-Type: multipart/mixed; boundary="x"\r\n\r\n'
        b"--x\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b'Content-Disposition: attachment; filename="notes.txt"\r\n\r\nnot the body\r\n'
        b"--x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xef\xbb\xbfline 1\r\nline 2\r\n"
        b"--x--\r\n"
    )
    inbound = decode(raw)
    assert inbound.text == "line 1\nline 2"  # the CRLF before a boundary is the boundary's
    assert inbound.attachments == (Attachment("notes.txt", "text/plain", 12),)


CORPUS = Path(__file__).parents[1] / "data" / "corpus"


@pytest.mark.parametrize(("name", "expected"), [
    ("bounce/postfix_dsn_en.eml", ("ghost@corp.example",)),
    ("bounce/gmail_dsn_two_recipients.eml", ("ghost@corp.example", "old.li@corp.example")),
    ("bounce/dsn_delayed_only.eml", ()),
    ("bounce/qq_text_bounce_zh.eml", ("ghost@qq.com",)),
    ("bounce/163_text_bounce_zh.eml", ("zhang.san@corp.example",)),
    ("bounce/text_ndr_user_unknown_en.eml", ("nobody@partner.example",)),
    ("outlook/reply_confirm_zh.eml", ()),
], ids=lambda value: value if isinstance(value, str) else None)
def test_failed_recipients_of_bounces(name: str, expected: tuple[str, ...]) -> None:
    assert decode((CORPUS / name).read_bytes()).failed_recipients == expected


def test_ndr_words_in_an_ordinary_email_name_nobody() -> None:
    raw = (b"From: a@corp.example\r\nTo: collab@corp.example\r\nSubject: hi\r\n\r\n"
           b"<ghost@corp.example>: 550 User unknown, says the old log\r\n")
    assert decode(raw).failed_recipients == ()


@pytest.mark.parametrize(("html", "expected"), [
    ("<table><tr><td>客诉应对流程<br>培训</td><td>陈静</td></tr></table>", "客诉应对流程培训 | 陈静"),
    ("<p>新品核心\n卖点提炼</p>", "新品核心卖点提炼"),
    ("<p>Key selling\npoints</p>", "Key selling points"),
], ids=["cjk-br-in-cell", "cjk-source-wrap", "latin-source-wrap"])
def test_a_break_between_cjk_characters_is_no_space(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(("disposition", "expected"), [
    ("attachment; filename*=utf-8''%E6%8A%A5%E5%91%8A.pdf; filename*0*=utf-8''%E6%8A; "
     "filename*1*=%A5.pdf", "报告.pdf"),
    ("attachment; filename*0*=utf-8''%E6%8A; filename*1*=%A5%E5%91%8A.pdf; filename=report.pdf",
     "report.pdf"),
    ("attachment; filename*0*=utf-8''%E6%8A%A5; filename*1*=%E5%91%8A.pdf", "报告.pdf"),
], ids=["whole-then-continuations", "continuations-then-whole", "continuations-only"])
def test_a_filename_given_whole_and_in_continuations(disposition: str, expected: str) -> None:
    """RFC 2231 continuations mixed with a whole value raised TypeError inside the stdlib
    (found by the long decode fuzz run); the whole value wins, and continuations alone still
    join."""
    raw = (b"From: a@corp.example\r\nMessage-ID: <att@corp.example>\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xe5\xae\x8c\xe6\x88\x90\r\n"
           b"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
           + f"Content-Disposition: {disposition}\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n".encode())
    inbound = decode(raw)
    assert inbound.text == "完成"
    assert inbound.attachments == (Attachment(expected, "application/pdf", 9),)
