"""reply: one real-looking reply per client and UI language in, exactly the new text out.

Each quoted history in tests/data/reply/ itself says "确认"/"confirm"/"进度" …, so a cut in the
wrong place shows up as a wrong command.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.decode import html_to_text
from maild.reply import ATTRIBUTIONS, MARKERS, find_cut, new_text, strip_html_quotes

DATA = Path(__file__).parent / "data" / "reply"

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
    ("interleaved.txt", "确认\n可行"),
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
        ("a\n-----Original Message-----\nFrom: x", "outlook_original_message"),
        ("a\n------------------\xa0原始邮件\xa0------------------\n", "qq_original_mail"),
        ("a\n-----原始邮件-----\n", "coremail_original_mail"),
        ("a\n---- 回复的原邮件 ----\n", "mailmaster_divider"),
        ("a\n发件人：x\n发送时间：y\n", "header_block_zh"),
        ("a\nFrom: x\nSent: y\n", "header_block_en"),
        ("a\nOn Sat, Aug 1, 2026 at 10:00 AM X <x@y.z> wrote:\n", "gmail_en"),
        ("a\nX <x@y.z> 于2026年8月1日周六 10:00写道：\n", "gmail_zh"),
        ("a\n在 2026年8月1日，10:00，X <x@y.z> 写道：\n", "apple_zh"),
        ("a\n在 2026/8/1 9:57, X 写道:\n", "thunderbird_coremail_zh"),
        ("a\nX wrote:\n> q\n", "wrote_en"),
        ("a\n张伟 写道：\n> q\n", "wrote_zh"),
        ("a\n-- \nsig", "signature_dashes"),
        ("a\n发自我的iPhone\n", "mobile_signature"),
    ],
    ids=[
        "outlook_en", "qq", "coremail", "mailmaster", "header_zh", "header_en", "gmail_en",
        "gmail_zh", "apple_zh", "thunderbird_zh", "wrote_en", "wrote_zh", "dashes", "mobile",
    ],
)  # fmt: skip
def test_find_cut_names_the_rule(text: str, rule: str) -> None:
    cut = find_cut(text)
    assert cut is not None
    assert (cut.rule, cut.start) == (rule, 2)


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
    assert "gmail_quote" not in gmail
    assert "schrieb" not in gmail


def test_empty_inputs() -> None:
    assert new_text("") == ""
    assert new_text("  \n\u3000\n") == ""
    assert new_text("", "<p>&nbsp;</p>") == ""


def test_rules_are_named_once_and_attributions_exist() -> None:
    names = [name for name, _pattern in MARKERS]
    assert len(names) == len(set(names))
    assert ATTRIBUTIONS <= set(names)


@pytest.mark.parametrize(("text", "expected"), [
    ("Progress 75%\n\n---- Replied Message ----\n| From | maild<collab@corp.example> |\nconfirm\n",
     "Progress 75%"),
    ("完成\n\n| From | maild<collab@corp.example> |\n| Date | 08/03/2026 |\nconfirm\n", "完成"),
    ("无法承担：出差\n\n发自我的 iPad\n", "无法承担：出差"),
], ids=["mailmaster-en-divider", "mailmaster-en-table", "ipad-zh-with-space"])
def test_more_client_markers(text: str, expected: str) -> None:
    assert new_text(text) == expected
