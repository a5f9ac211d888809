"""The new text of a reply: cut the quoted history and the signature, keep what the sender wrote.

Quoted history is found with an ordered tuple of marker rules, `MARKERS` (name, regex), covering
the forms Chinese and English mail clients actually produce; the earliest match cuts, ties go to
the earlier rule. `>`-quoted lines are then dropped wherever they are.

Surprises, all deliberate:

- Bottom-posting: when the text *starts* with an attribution line (`On … wrote:`, `… 写道：`)
  followed by `>`-quoted lines, the attribution is dropped instead of cutting there, so the
  unquoted text below the quotes is kept.
- The generic `… wrote:` / `… 写道：` rules only fire when a `>`-quoted line follows, because a
  line ending in "wrote:" can be ordinary prose.
- HTML-only replies (empty `text`, or `text` that is just the HTML rendered) are cut in the HTML
  first — Gmail/Thunderbird quote blocks and blockquotes removed, everything from Outlook's or QQ's
  reply header on dropped — then rendered with `decode.html_to_text` and cut again as text.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser
from typing import NamedTuple

from maild.htmltext import feed_html, html_to_text

_H = r"[ \t\u3000\xa0]"  # horizontal space, including full-width space and NBSP
_C = r"[:：]"  # ASCII or full-width colon
_M = re.MULTILINE
_I = re.MULTILINE | re.IGNORECASE
_QUOTE_FOLLOWS = rf"(?=\n(?:{_H}*\n)*{_H}*>)"  # the next non-blank line is `>`-quoted

# Order matters only for ties; every rule is anchored at the start of a line.
MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "outlook_original_message",
        re.compile(
            rf"^{_H}*-{{2,}}{_H}*(?:Original Message|邮件原件|郵件原件){_H}*-{{2,}}{_H}*$", _I
        ),
    ),
    ("qq_original_mail", re.compile(rf"^{_H}*-{{6,}}{_H}*原始邮件{_H}*-{{6,}}{_H}*$", _M)),
    ("coremail_original_mail", re.compile(rf"^{_H}*-{{2,}}{_H}*原始邮件{_H}*-{{2,}}{_H}*$", _M)),
    (
        "mailmaster_divider",
        re.compile(rf"^{_H}*-{{2,}}{_H}*(?:回复的原邮件|回覆的原郵件|Replied Message){_H}*-{{2,}}{_H}*$", _I),
    ),
    ("mailmaster_table", re.compile(rf"^{_H}*\|{_H}*(?:发件人|發件人|From){_H}*\|", _I)),
    (
        "forwarded_message",
        re.compile(
            rf"^{_H}*-{{3,}}{_H}*(?:Forwarded message|转发的邮件|轉寄的郵件){_H}*-{{3,}}", _I
        ),
    ),
    (
        "outlook_rule_line",
        re.compile(rf"^{_H}*_{{10,}}{_H}*\n(?:{_H}*\n)*{_H}*(?:From|发件人|寄件者){_H}*{_C}", _I),
    ),
    (
        "header_block_en",  # Outlook, Outlook for Mac, Alimail/DingTalk, Feishu (en UI)
        re.compile(
            rf"^{_H}*\*?From{_H}*{_C}[^\n]*\n(?:[^\n]{{0,300}}\n){{0,3}}?"
            rf"{_H}*\*?(?:Sent|Date|Send Time|To|Subject){_H}*{_C}",
            _I,
        ),
    ),
    (
        "header_block_zh",  # Outlook, QQ/Foxmail, Coremail, Alimail/DingTalk, Feishu (zh UI)
        re.compile(
            rf"^{_H}*(?:发件人|寄件者|發件人){_H}*{_C}[^\n]*\n(?:[^\n]{{0,300}}\n){{0,3}}?"
            rf"{_H}*(?:发送时间|發送時間|寄件日期|发送日期|日期|时间|時間|收件人|收件者|主{_H}*题|主旨)"
            rf"{_H}*{_C}",
            _M,
        ),
    ),
    (
        "gmail_en",  # also Apple Mail / iOS and Thunderbird in English; may wrap over two lines
        re.compile(
            rf"^{_H}*On\s(?=[^\n]{{0,300}}\d)(?:[^\n]{{0,300}}\n)?[^\n]{{0,300}}\swrote{_H}*:{_H}*$",
            _I,
        ),
    ),
    (
        "gmail_zh",  # `Name <a@b> 于2026年8月1日周六 10:00写道：`, the name may sit on its own line
        re.compile(
            rf"^(?:[^\n<>]{{0,80}}<[^\s<>@]+@[^\s<>]+>{_H}*\n)?[^\n]{{0,200}}?于{_H}*\d{{4}}年\d{{1,2}}月"
            rf"\d{{1,2}}日(?:[^\n]{{0,200}}\n)?[^\n]{{0,200}}[写寫]道{_H}*{_C}?{_H}*$",
            _M,
        ),
    ),
    (
        "apple_zh",  # `在 2026年8月1日，10:00，Name <a@b> 写道：`
        re.compile(
            rf"^{_H}*在{_H}*\d{{4}}年\d{{1,2}}月\d{{1,2}}日(?:[^\n]{{0,200}}\n)?[^\n]{{0,200}}[写寫]道{_H}*{_C}{_H}*$",
            _M,
        ),
    ),
    (
        "thunderbird_coremail_zh",  # `在 2026/8/1 9:57, Name 写道:` / `在 2026-08-01 00:16:35，"N" <a@b> 写道：`
        re.compile(
            rf"^{_H}*在{_H}*\d{{4}}[/-]\d{{1,2}}[/-]\d{{1,2}}(?:[^\n]{{0,200}}\n)?[^\n]{{0,200}}[写寫]道{_H}*{_C}{_H}*$",
            _M,
        ),
    ),
    ("wrote_en", re.compile(rf"^[^\n>][^\n]{{0,200}}\swrote{_H}*:{_H}*${_QUOTE_FOLLOWS}", _I)),
    ("wrote_zh", re.compile(rf"^[^\n>][^\n]{{0,200}}[写寫]道{_H}*{_C}{_H}*${_QUOTE_FOLLOWS}", _M)),
    ("signature_dashes", re.compile(r"^--[ \xa0]?$", _M)),
    (
        "mobile_signature",
        re.compile(
            rf"^{_H}*(?:发自我的{_H}?(?:iPhone|iPad|华为手机|荣耀手机|小米手机|手机)|从我的(?:iPhone|iPad)发送"
            rf"|Sent from my (?:iPhone|iPad|Android|Huawei|Samsung|Xiaomi)[^\n]*"
            rf"|(?:Get|Sent from) Outlook for (?:iOS|Android)(?:<[^>\n]*>)?"
            rf"|发自网易邮箱大师|发自(?:网易|QQ)邮箱[^\n]{{0,10}}|发自钉钉[^\n]{{0,10}}|发自飞书[^\n]{{0,10}})"
            rf"{_H}*$",
            _I,
        ),
    ),
)

# Attribution rules: at the very top and followed by quotes, they mean bottom-posting.
ATTRIBUTIONS = frozenset(
    {"gmail_en", "gmail_zh", "apple_zh", "thunderbird_coremail_zh", "wrote_en", "wrote_zh"}
)

_QUOTED_LINE = re.compile(rf"^{_H}*>")
_DECORATION_LINE = re.compile(r"^[\s\-_=*~]*$")


class Cut(NamedTuple):
    rule: str
    start: int  # where the quoted history begins (start of its line)
    end: int  # end of the marker itself


def find_cut(text: str, pos: int = 0) -> Cut | None:
    """The earliest marker at or after `pos` (a line start), or None."""
    best: Cut | None = None
    for name, pattern in MARKERS:
        match = pattern.search(text, pos)
        if match and (best is None or match.start() < best.start):
            best = Cut(name, match.start(), match.end())
    return best


def new_text(text: str, html: str | None = None) -> str:
    """What the sender wrote in this reply, without quoted history or signature."""
    if html and (not text.strip() or text.strip() == html_to_text(html).strip()):
        text = html_to_text(strip_html_quotes(html))
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    cut = find_cut(text)
    if (
        cut
        and cut.rule in ATTRIBUTIONS
        and not text[: cut.start].strip()
        and re.match(_QUOTE_FOLLOWS, text[cut.end :])
    ):
        text = text[cut.end :]  # bottom-posting: the new text is below the quotes
        cut = find_cut(text)
    if cut:
        text = text[: cut.start]
    lines = [line.rstrip() for line in text.split("\n") if not _QUOTED_LINE.match(line)]
    while lines and _DECORATION_LINE.match(lines[-1]):
        lines.pop()
    return "\n".join(lines).strip()


# ── HTML ─────────────────────────────────────────────────────────────────────────────────────

# (name, tag or None for any, attribute or "" for none, pattern on the attribute's value)
HtmlRule = tuple[str, str | None, str, re.Pattern[str]]

# The element is removed with its content; what follows it is kept.
HTML_REMOVE: tuple[HtmlRule, ...] = (
    ("gmail_quote", "div", "class", re.compile(r"(?:^|\s)gmail_quote(?:\s|$)")),
    ("thunderbird_cite_prefix", "div", "class", re.compile(r"(?:^|\s)moz-cite-prefix(?:\s|$)")),
    ("blockquote", "blockquote", "", re.compile("")),
)
# The element and everything after it is dropped.
HTML_CUT: tuple[HtmlRule, ...] = (
    ("outlook_reply_header", None, "id", re.compile(r"^(?:x_)*(?:divRplyFwdMsg|appendonsend)$")),
    (
        "outlook_border_block",
        "div",
        "style",
        re.compile(
            r"border:\s*none;\s*border-top:\s*solid|border-top:\s*solid\s+#(?:E1E1E1|B5C4DF)", re.I
        ),
    ),
    ("outlook_web_stop", "hr", "id", re.compile(r"^(?:x_)*stopSpelling$")),
    (
        "outlook_mobile_reference",
        "div",
        "id",
        re.compile(r"^mail-editor-reference-message-container$"),
    ),
    ("yahoo_quoted", "div", "class", re.compile(r"(?:^|\s)yahoo_quoted(?:\s|$)")),
)
# Text that starts the quoted history when it appears in the HTML (QQ's divider).
HTML_CUT_TEXT = re.compile(
    r"-{3,}[\s\xa0]*(?:原始邮件|回复的原邮件|Original Message|Replied Message)[\s\xa0]*-{3,}", re.I
)


def _matches(rules: tuple[HtmlRule, ...], tag: str, attrs: list[tuple[str, str | None]]) -> bool:
    values = {key: value or "" for key, value in attrs}
    return any(
        (rule_tag is None or rule_tag == tag)
        and (not attr or (attr in values and bool(pattern.search(values[attr]))))
        for _name, rule_tag, attr, pattern in rules
    )


class _QuoteStripper(HTMLParser):
    """Re-emits the HTML without quote elements and without anything after a reply header."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.done = False
        self.skip_tag: str | None = None
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        if self.skip_tag:
            self.skip_depth += tag == self.skip_tag
        elif _matches(HTML_CUT, tag, attrs):
            self.done = True
        elif _matches(HTML_REMOVE, tag, attrs):
            self.skip_tag, self.skip_depth = tag, 1
        else:
            self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done or self.skip_tag:
            return
        if _matches(HTML_CUT, tag, attrs):
            self.done = True
        elif not _matches(HTML_REMOVE, tag, attrs):
            self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if self.done:
            return
        if self.skip_tag:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.done or self.skip_tag:
            return
        match = HTML_CUT_TEXT.search(data)
        if match:
            data = data[: match.start()]
            self.done = True
        self.out.append(escape(data, quote=False))


def strip_html_quotes(html: str) -> str:
    """The HTML with quoted history removed (see HTML_REMOVE, HTML_CUT, HTML_CUT_TEXT)."""
    parser = _QuoteStripper()
    feed_html(parser, html)
    return "".join(parser.out)
