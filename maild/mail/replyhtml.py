"""Quoted history out of an HTML reply, by the elements mail clients wrap it in. Pure.

Two kinds of rule, as data: `HTML_REMOVE` drops an element with its content and keeps what
follows (a quote block, an attribution, a client signature: the sender may answer below or
between them), `HTML_CUT` drops the element and everything after it (Outlook's reply header,
Feishu's history wrapper: top-posting clients put nothing new below). `HTML_CUT_TEXT` is the
same for text dividers inside the HTML (QQ's "原始邮件", NetEase's "回复的原邮件").

Surprises, all deliberate:

- Gmail's `gmail_quote` container is not removed whole: inline answers live inside it, between
  its blockquotes; only its `gmail_attr` line and the blockquotes go.
- The result is HTML again; `reply.py` renders it with `htmltext.html_to_text` and then cuts
  what only the text shows (a "Sent from my iPhone" line, an attribution outside any element).
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

from maild.mail.htmltext import feed_html

# (name, tag or None for any, attribute or "" for none, pattern on the attribute's value)
HtmlRule = tuple[str, str | None, str, re.Pattern[str]]


def _class(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?:^|\s){re.escape(name)}(?:\s|$)")


# The element is removed with its content; what follows it is kept.
HTML_REMOVE: tuple[HtmlRule, ...] = (
    ("gmail_attribution", "div", "class", _class("gmail_attr")),
    ("gmail_signature", None, "class", _class("gmail_signature")),
    ("gmail_signature_prefix", None, "class", _class("gmail_signature_prefix")),
    ("thunderbird_cite_prefix", "div", "class", _class("moz-cite-prefix")),
    ("thunderbird_signature", None, "class", _class("moz-signature")),
    ("outlook_mobile_signature", None, "id", re.compile(r"^(?:x_)*ms-outlook-(?:mobile|ios|android)-signature$")),
    ("apple_signature_break", "br", "id", re.compile(r"^lineBreakAtBeginningOfSignature$")),
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
    ("outlook_mobile_reference", "div", "id", re.compile(r"^mail-editor-reference-message-container$")),
    ("yahoo_quoted", "div", "class", _class("yahoo_quoted")),
    ("feishu_history", "div", "class", _class("history-quote-wrapper")),
)
# Text that starts the quoted history when it appears in the HTML (QQ's and NetEase's dividers).
HTML_CUT_TEXT = re.compile(
    r"-{3,}[\s\xa0]*(?:原始邮件|原始郵件|回复的原邮件|Original Message|Original|Replied Message)[\s\xa0]*-{3,}",
    re.I,
)
_VOID_TAGS = frozenset("area base br col embed hr img input link meta param source track wbr".split())


def _matching(rules: tuple[HtmlRule, ...], tag: str, attrs: list[tuple[str, str | None]]) -> str:
    """The name of the first rule the element matches, or ""."""
    values = {key: value or "" for key, value in attrs}
    for name, rule_tag, attr, pattern in rules:
        if (rule_tag is None or rule_tag == tag) and (
            not attr or (attr in values and bool(pattern.search(values[attr])))
        ):
            return name
    return ""


class _QuoteStripper(HTMLParser):
    """Re-emits the HTML without quote elements and without anything after a reply header."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.rules: list[str] = []  # the rules that removed or cut something, in order
        self.done = False
        self.skip_tag: str | None = None
        self.skip_depth = 0

    def _start(self, tag: str, attrs: list[tuple[str, str | None]], void: bool) -> None:
        if self.done:
            return
        if self.skip_tag:
            self.skip_depth += tag == self.skip_tag and not void
            return
        cut = _matching(HTML_CUT, tag, attrs)
        if cut:
            self.done = True
            self.rules.append(cut)
            return
        removed = _matching(HTML_REMOVE, tag, attrs)
        if removed:
            self.rules.append(removed)
            if not void:
                self.skip_tag, self.skip_depth = tag, 1
            return
        self.out.append(self.get_starttag_text() or "")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, tag in _VOID_TAGS)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, attrs, True)

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
            self.rules.append("html_divider")
        self.out.append(escape(data, quote=False))


def strip_html_quotes(html: str) -> str:
    """The HTML with quoted history removed (see HTML_REMOVE, HTML_CUT, HTML_CUT_TEXT)."""
    return strip_html_quotes_with_rules(html)[0]


def strip_html_quotes_with_rules(html: str) -> tuple[str, tuple[str, ...]]:
    """The HTML without its quoted history, and the names of the rules that removed something."""
    parser = _QuoteStripper()
    feed_html(parser, html)
    return "".join(parser.out), tuple(parser.rules)
