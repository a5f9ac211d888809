"""Readable text from an HTML body: blocks and `<br>` break lines, table rows become `a | b` lines.

Used for HTML-only email (normal from Outlook, QQ and phones) and by `reply` after it has cut the
quoted history out of the HTML. Pure.

Surprises, all deliberate:

- A line break (in the source or from `<br>`/a block) between two CJK characters is no space, as
  browsers render it (CSS Text 3 segment breaks): Word wraps long Chinese lines anywhere, and
  "客诉应对流程<br>培训" in a table cell is one name.
- Text inside a nested table lands in its outer cell; NBSP reads as a space.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_BREAK = re.compile(rf"(?<=[{_CJK}])[ \t\r\f]*\n\s*(?=[{_CJK}])")
_CELL_BREAK = "\n"  # a break inside a table cell, squashed when the cell ends

_BLOCK_TAGS = frozenset(
    "address article aside blockquote center dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p section summary ul".split()
)
_HIDDEN_TAGS = frozenset("script style title noscript template".split())  # not head: often unclosed
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")


def squash(text: str) -> str:
    """Collapse whitespace; a line break between two CJK characters is no space at all."""
    return _HTML_SPACE.sub(" ", _CJK_BREAK.sub("", text.replace("\xa0", " "))).strip()


class _TextExtractor(HTMLParser):
    """Collects readable lines: blocks break lines, table rows become `cell | cell` lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.tables: list[tuple[list[str], list[str] | None]] = []  # (cells of the row, open cell)

    def _cell(self) -> list[str] | None:
        """The innermost open table cell: text inside a nested table lands in its outer cell."""
        return next((cell for _row, cell in reversed(self.tables) if cell is not None), None)

    def _write(self, text: str) -> None:
        cell = self._cell()
        if cell is not None:
            cell.append(text)
            return
        first, *rest = text.split("\n")
        self.current.append(first)
        for line in rest:
            self._flush(hard=True)
            self.current.append(line)

    def _flush(self, hard: bool = False) -> None:
        cell = self._cell()
        if cell is not None:
            cell.append(_CELL_BREAK)
        elif hard or "".join(self.current).strip(" "):
            self.lines.append("".join(self.current))
            self.current = []

    def _emit_line(self, line: str) -> None:
        self._flush()
        cell = self._cell()
        if cell is not None:
            cell.append(f" {line} ")
        else:
            self.lines.append(line)

    def _end_cell(self) -> None:
        if self.tables and self.tables[-1][1] is not None:
            row, cell = self.tables[-1]
            row.append(squash("".join(cell or ())))
            self.tables[-1] = (row, None)

    def _end_row(self) -> None:
        self._end_cell()
        if self.tables:
            row, _ = self.tables[-1]
            self.tables[-1] = ([], None)
            if any(row):
                self._emit_line(" | ".join(row))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden += 1
        elif self.hidden:
            return
        elif tag == "br":
            self._flush(hard=True)
        elif tag == "table":
            self._flush()
            self.tables.append(([], None))
        elif tag == "tr":
            self._end_row()
        elif tag in ("td", "th") and self.tables:
            self._end_cell()
            self.tables[-1] = (self.tables[-1][0], [])
        elif tag == "pre":
            self.pre += 1
            self._flush()
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self.hidden = max(0, self.hidden - 1)
        elif self.hidden:
            return
        elif tag in ("td", "th"):
            self._end_cell()
        elif tag == "tr":
            self._end_row()
        elif tag == "table" and self.tables:
            self._end_row()
            self.tables.pop()
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self._flush()
        elif tag in _BLOCK_TAGS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self._write(data if self.pre else _HTML_SPACE.sub(" ", _CJK_BREAK.sub("", data)))

    def text(self) -> str:
        while self.tables:
            self._end_row()
            self.tables.pop()
        self._flush()
        lines = [line.replace("\xa0", " ").strip() for line in self.lines]
        out: list[str] = []
        for line in lines:
            if line or (out and out[-1]):
                out.append(line)
        return "\n".join(out).strip("\n")


def feed_html(parser: HTMLParser, html: str) -> None:
    """Run `parser` over `html`; stdlib html.parser gives up on some malformed markup (marked
    sections, bad character references) with AssertionError/ValueError: keep what it read."""
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        pass


def html_to_text(html: str) -> str:
    """Readable text from HTML: blocks and <br> break lines, table rows become `a | b` lines."""
    parser = _TextExtractor()
    feed_html(parser, html)
    return parser.text()
