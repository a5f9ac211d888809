"""reply: one real-looking reply per client and UI language in, exactly the new text out.

Each quoted history in tests/data/reply/ itself says "确认"/"confirm"/"进度" …, so a cut in the
wrong place shows up as a wrong command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.mail.decode import html_to_text
from maild.mail.reply import find_history, new_text, read_reply, strip_html_quotes

DATA = Path(__file__).parents[1] / "data" / "reply"

DECLINE_ZH = "拒绝：本周人手不足，建议转给销售部"
CONFIRM_EN = "Confirm, will deliver by Friday."

TEXT_CASES = [
    ("outlook_en_separator.txt", CONFIRM_EN),
    ("outlook_en_rule_line.txt", CONFIRM_EN + "\n\nZhang Wei\nSales Department"),
    ("outlook_en_no_separator.txt", "Decline: the team is fully booked this week, suggest Sales."),
    ("outlook_zh_separator.txt", "确认"),
    ("outlook_zh_fullwidth_colon.txt", DECLINE_ZH),
    ("outlook_zh_rule_line.txt", "进度 50%"),
    ("gmail_en.txt", CONFIRM_EN),
    ("gmail_en_wrapped.txt", "Done. Report attached."),
    ("gmail_zh.txt", "确认，周五前交付。"),
    ("gmail_zh_wrapped.txt", "好的"),
    ("ios_zh.txt", "延期到8月20日，原因：供应商延迟"),
    ("ios_zh_attribution.txt", "延期到8月20日，原因：供应商延迟"),
    ("ios_en.txt", "Confirm."),
    ("thunderbird_zh.txt", "进度 ８０％"),
    ("thunderbird_en.txt", "Blocker: waiting for the legal review."),
    ("qq_nbsp.txt", "收到"),
    ("coremail_divider.txt", "确认"),
    ("coremail_attribution.txt", DECLINE_ZH),
    ("mailmaster.txt", "完成"),
    ("mailmaster_table_only.txt", "进度 30%"),
    ("dingtalk_alimail_zh.txt", "确认"),
    ("feishu_en.txt", "Confirm"),
    ("bottom_posting_en.txt", CONFIRM_EN),
    ("bottom_posting_zh.txt", DECLINE_ZH),
    ("interleaved.txt", "确认\n\n可行"),  # blocks a quote separated: one blank line
    ("signature_dashes.txt", "进度 60%，素材已完成初稿"),
    ("signature_huawei.txt", "确认"),
    ("signature_outlook_ios.txt", "Confirm"),
    ("signature_ipad_zh.txt", "好的，收到"),
    ("signature_mail_master.txt", "确认"),
    ("fullwidth_spaces.txt", "确认"),
    ("crlf_outlook_zh.txt", "状态"),
    ("no_history.txt", "On Friday 8/7 I will deliver the materials.\nProgress 40%."),
]

HTML_CASES = [
    ("gmail_de.html", CONFIRM_EN + "\n\nZhang Wei"),  # German UI: only the HTML tells
    ("outlook_desktop_zh.html", DECLINE_ZH),
    ("outlook_web_en.html", CONFIRM_EN),  # Spanish header labels: only the HTML tells
    ("qq.html", "确认"),
    ("apple_blockquote.html", "完成，报告见附件。"),  # Russian attribution: only the HTML tells
]


def read(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "expected"), TEXT_CASES, ids=[c[0].removesuffix(".txt") for c in TEXT_CASES]
)
def test_new_text_plain(name: str, expected: str) -> None:
    raw = (DATA / name).read_bytes().decode("utf-8")  # keeps CRLF where the fixture has it
    assert new_text(raw) == expected


@pytest.mark.parametrize(
    ("name", "expected"), HTML_CASES, ids=[c[0].removesuffix(".html") for c in HTML_CASES]
)
def test_new_text_html_only(name: str, expected: str) -> None:
    html = read(name)
    assert new_text("", html) == expected
    # decode.decode fills `text` from the HTML of an HTML-only email: same result.
    assert new_text(html_to_text(html), html) == expected


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("a\n-----Original Message-----\nFrom: x", "divider"),
        ("a\n------------------\xa0原始邮件\xa0------------------\n", "divider"),
        ("a\n-----原始邮件-----\n", "divider"),
        ("a\n---- 回复的原邮件 ----\n", "divider"),
        ("a\n---- Li Na wrote ----\n", "divider"),
        ("a\n发件人：x\n发送时间：2026年8月1日\n", "header_block"),
        ("a\nFrom: x <x@y.z>\nSent: y\n", "header_block"),
        ("a\nVon: x <x@y.z>\nGesendet: Montag\n", "header_block"),
        ("a\n| 发件人 | x |\n| 日期 | 2026年08月03日 |\n", "header_block"),
        ("a\n________________________________\nFrom: x\n", "rule_line"),
        ("a\nOn Sat, Aug 1, 2026 at 10:00 AM X <x@y.z> wrote:\nq\n", "attribution"),
        ("a\nX <x@y.z> 于2026年8月1日周六 10:00写道：\nq\n", "attribution"),
        ("a\n在 2026年8月1日，10:00，X <x@y.z> 写道：\nq\n", "attribution"),
        ("a\n2016-03-03 17:21 GMT+01:00 X <x@y.z>:\nq\n", "attribution"),
        ("a\n-- \nsig", "signature_dashes"),
        ("a\n发自我的iPhone\n", "signature_line"),
        ("a\nVon meinem iPhone gesendet\n", "signature_line"),
    ],
    ids=[
        "outlook_en", "qq", "coremail", "mailmaster", "android", "header_zh", "header_en",
        "header_de", "mailmaster_table", "outlook_web", "gmail_en", "gmail_zh", "apple_zh",
        "date_first", "dashes", "mobile_zh", "mobile_de",
    ],
)  # fmt: skip
def test_find_history_names_the_rule(text: str, rule: str) -> None:
    marker = find_history(text)
    assert marker is not None
    assert (marker.rule, marker.line) == (rule, 1)


@pytest.mark.parametrize(
    "text",
    [
        "I wrote: the plan is ready.\nPlease review.",  # "wrote:" with no quotes below
        "From now on, progress 50%.",
        "确认\n我写道：见附件",
        "-- see attachment",
    ],
    ids=["wrote_in_prose", "from_in_prose", "xiedao_in_prose", "dashes_in_prose"],
)
def test_prose_is_not_cut(text: str) -> None:
    assert new_text(text) == text


def test_strip_html_quotes_keeps_the_reply_and_drops_the_rest() -> None:
    html = read("outlook_web_en.html")
    stripped = strip_html_quotes(html)
    assert "Confirm, will deliver by Friday." in stripped
    assert "divRplyFwdMsg" not in stripped
    assert "Please confirm" not in stripped
    gmail = strip_html_quotes(read("gmail_de.html"))
    assert "gmail_attr" not in gmail
    assert "schrieb" not in gmail
    assert "Please confirm the task" not in gmail


def test_empty_inputs() -> None:
    assert new_text("") == ""
    assert new_text("  \n\u3000\n") == ""
    assert new_text("", "<p>&nbsp;</p>") == ""


@pytest.mark.parametrize(("text", "expected"), [
    ("Progress 75%\n\n---- Replied Message ----\n| From | maild<collab@corp.example> |\nconfirm\n",
     "Progress 75%"),
    ("完成\n\n| From | maild<collab@corp.example> |\n| Date | 08/03/2026 |\nconfirm\n", "完成"),
    ("无法承担：出差\n\n发自我的 iPad\n", "无法承担：出差"),
], ids=["mailmaster-en-divider", "mailmaster-en-table", "ipad-zh-with-space"])
def test_more_client_markers(text: str, expected: str) -> None:
    assert new_text(text) == expected


def test_inline_answers_are_blocks_in_order() -> None:
    reply = read_reply(
        "Hi,\n\nOn Tue, Aug 4, 2026 at 10:02 AM Li Na <li.na@corp.example> wrote:\n"
        "> Budget approved?\n\nYes, 200k.\n\n> Go-live date?\n\nAug 12.\n"
    )
    assert reply.blocks == ("Hi,", "Yes, 200k.", "Aug 12.")
    assert reply.text == "Hi,\n\nYes, 200k.\n\nAug 12."
    assert [cut.rule for cut in reply.cuts] == ["quote", "quote"]
    assert reply.cuts[0].text.startswith("On Tue, Aug 4, 2026")


def test_what_was_cut_is_summarised_for_the_audit_trail() -> None:
    reply = read_reply(
        "确认\n\n发自我的iPhone\n\n> 在 2026年8月3日，09:15，协作助手 <collab@corp.example> 写道：\n"
        "> 请确认任务\n"
    )
    assert reply.text == "确认"
    assert reply.summary() == {"cut": [{"rule": "signature_line", "lines": 3, "first": "发自我的iPhone"}]}
    assert read_reply("确认").summary() == {}


def test_unsure_markers_keep_the_text_and_say_so() -> None:
    text = "Progress 60%.\nLi Na wrote:\nthe budget is capped, so no outdoor ads."
    reply = read_reply(text)
    assert reply.text == text
    assert reply.summary() == {"kept_unsure": [
        {"rule": "attribution_without_quote", "lines": 1, "first": "Li Na wrote:"}]}


@pytest.mark.parametrize(("text", "expected"), [
    ("Sure, done On Wed, Aug 5, 2026 at 6:02 PM Li Na <li.na@corp.example> wrote:\n> Done?\n",
     "Sure, done"),
    ("Next:\n>>> print run\n>>> shipping\n", "Next:\n>>> print run\n>>> shipping"),
    ("Confirm\n\nOn Mon, Aug 3, 2026 at 9:15 AM Li Na <li.na@corp.example>wrote:\n> ok?\n", "Confirm"),
    ("From: Li Na <li.na@corp.example>\nSent: Tuesday, August 4, 2026 10:02 AM\n\n> Progress?\n\n"
     "Progress 30%\n", "Progress 30%"),
    ("From: Li Na <li.na@corp.example>\nSent: Tuesday, August 4, 2026 10:02 AM\n\n> Progress?\n\n"
     "Progress 30%\n\nSent from my iPhone\n", "Progress 30%"),
    ("------------------ 原始邮件 ------------------\n发件人: \"李娜\"<li.na@corp.example>;\n请确认\n", ""),
], ids=["same-line-attribution", "triple-arrows-are-new", "address-wrote-no-space",
        "bottom-post-under-outlook-header", "bottom-post-with-signature", "all-history-is-no-new-text"])
def test_failure_classes(text: str, expected: str) -> None:
    assert new_text(text) == expected


def test_an_html_reply_that_is_all_quote_says_nothing_new() -> None:
    html = ('<div dir="ltr"><br></div><div class="gmail_quote"><div class="gmail_attr">On Mon, Aug 3, '
            '2026 at 9:15 AM maild &lt;collab@corp.example&gt; wrote:</div><blockquote class="gmail_quote">'
            "请回复「确认」接受</blockquote></div>")
    reply = read_reply("", html)
    assert reply.text == ""
    assert reply.cuts[0].rule == "html:gmail_attribution,blockquote"
