"""Tables in an HTML body as grids of cell texts, spans expanded; and the text lines outside them.

The one job is `html_tables(html)` → (grids, lines). Excel, Word and Outlook paste tasks as
tables; `forms` reads the grids like text rows. Pure. Surprises: rowspan/colspan are expanded
(capped at 50) so every row has its cells under the header's columns; unclosed tables still
count; a break inside a cell between two CJK characters is no space ("客诉应对流程<br>培训").

People pick an option in a table by emphasis too: in a choice cell ("□高 □中 □低", "高/中/低")
an option in bold (<b>, <strong>, font-weight:bold) or highlighted (<mark>, a background colour,
mso-highlight) is written "☑option", the way `checkboxes` reads a tick. A cell that is bold as a
whole (a header) is left as it is.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from maild.mail.htmltext import feed_html, squash

_MAX_SPAN = 50
_ON, _OFF = "\ue000", "\ue001"  # around emphasised text inside a cell, until the cell closes
_EMPHASIS_TAGS = frozenset({"b", "strong", "mark"})
_EMPHASIS_STYLE = re.compile(r"font-weight\s*:\s*(?:bold|[6-9]00)|background(?:-color)?\s*:\s*"
                             r"(?!\s*(?:transparent|none|white|#fff\b|#ffffff|inherit|initial))"
                             r"|mso-highlight\s*:", re.IGNORECASE)
_EMPHASISED = re.compile(f"{_ON}([^{_ON}{_OFF}]*){_OFF}")
# Two to eight short options, boxed or divided by / 、 |: "□高 □中 □低", "高/中/低".
_CHOICE_CELL = re.compile(r"^(?=.*[□☐/／、|])(?:[□☐]?\s*[^\s/／、,，|□☐]{1,8}\s*[/／、|]?\s*){2,8}$")


class _HTMLTables(HTMLParser):
    """Tables as lists of rows of (text, rowspan, colspan), and the text lines outside them."""

    _SKIP = frozenset({"script", "style", "head", "title"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "table", "blockquote", "pre", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[tuple[str, int, int]]]] = []
        self.open: list[dict[str, Any]] = []  # open tables: rows, the open cell and its spans
        self.lines: list[str] = [""]
        self.skip = 0
        self.emphasis: list[tuple[str, bool]] = []  # open inline tags inside a cell: (tag, emphasis)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "table":
            self.open.append({"rows": [], "cell": None, "span": (1, 1)})
        elif tag == "tr" and self.open:
            self._close_cell()
            self.open[-1]["rows"].append([])
        elif tag in ("td", "th") and self.open:
            self._close_cell()
            spans = dict(attrs)
            self.open[-1]["cell"] = []
            self.open[-1]["span"] = (_span(spans.get("rowspan")), _span(spans.get("colspan")))
        elif tag in self._BLOCK:
            self._break()
        elif self.open and self.open[-1]["cell"] is not None and tag in (
                "b", "strong", "mark", "span", "font"):
            emphasis = tag in _EMPHASIS_TAGS or bool(
                _EMPHASIS_STYLE.search(dict(attrs).get("style") or ""))
            self.emphasis.append((tag, emphasis))
            if emphasis:
                self.open[-1]["cell"].append(_ON)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in ("td", "th") and self.open:
            self._close_cell()
        elif tag == "table" and self.open:
            self._close_cell()
            self.tables.append(self.open.pop()["rows"])
        elif tag in self._BLOCK:
            self._break()
        elif self.emphasis and self.emphasis[-1][0] == tag:
            _, emphasis = self.emphasis.pop()
            if emphasis and self.open and self.open[-1]["cell"] is not None:
                self.open[-1]["cell"].append(_OFF)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.open and self.open[-1]["cell"] is not None:
            self.open[-1]["cell"].append(data)
        elif not self.open:
            self.lines[-1] += data.replace("\xa0", " ")

    def _break(self) -> None:
        if self.open and self.open[-1]["cell"] is not None:
            self.open[-1]["cell"].append("\n")
        elif not self.open:
            self.lines.append("")

    def _close_cell(self) -> None:
        table = self.open[-1]
        if table["cell"] is None:
            return
        text = _ticked_by_emphasis(squash("".join(table["cell"])))
        self.emphasis.clear()
        if not table["rows"]:
            table["rows"].append([])
        table["rows"][-1].append((text, *table["span"]))
        table["cell"] = None


def _ticked_by_emphasis(text: str) -> str:
    """A choice cell's emphasised option as "☑option"; other cells lose the emphasis marks."""
    plain = text.replace(_ON, "").replace(_OFF, "")
    chosen = [m.strip(" □☐") for m in _EMPHASISED.findall(text) if m.strip(" □☐")]
    if not chosen or not _CHOICE_CELL.match(plain) or "".join(chosen) == plain.replace(" ", ""):
        return plain
    marked = _EMPHASISED.sub(lambda m: "☑" + m[1].strip(" □☐") if m[1].strip(" □☐") else m[1],
                             text)
    marked = re.sub(r"[□☐]\s*☑", "☑", marked)
    return squash(marked.replace(_ON, "").replace(_OFF, ""))


def _span(value: str | None) -> int:
    return min(int(value), _MAX_SPAN) if value and value.strip().isdecimal() and int(value) else 1


def _grid(rows: list[list[tuple[str, int, int]]]) -> list[list[str]]:
    """Rows of cell texts with rowspan/colspan expanded, so columns line up with the header."""
    grid: list[list[str]] = []
    carry: dict[int, tuple[str, int]] = {}  # column → (text, rows below it still covers)
    for row in rows:
        out: dict[int, str] = {}
        col = 0
        for text, rowspan, colspan in row:
            while col in carry:
                out[col] = _take(carry, col)
                col += 1
            for k in range(colspan):
                out[col + k] = text if k == 0 else ""
            col += colspan
            for k in range(colspan if rowspan > 1 else 0):
                carry[col - colspan + k] = (out[col - colspan + k], rowspan - 1)
        for c in sorted(set(carry) - set(out)):
            out[c] = _take(carry, c)
        grid.append([out.get(i, "") for i in range(max(out) + 1)] if out else [])
    return grid


def _take(carry: dict[int, tuple[str, int]], col: int) -> str:
    text, left = carry[col]
    if left <= 1:
        del carry[col]
    else:
        carry[col] = (text, left - 1)
    return text


def html_tables(html: str) -> tuple[list[list[list[str]]], list[str]]:
    """Every table as rows of cell texts (spans expanded, empty rows dropped), and the lines of
    text outside the tables."""
    grids, lines, _ = html_tables_spans(html)
    return grids, lines


def html_tables_spans(html: str) -> tuple[list[list[list[str]]], list[str], list[bool]]:
    """`html_tables`, and for each table whether it merges cells (a rowspan or colspan): its
    text rendering (`htmltext`) then misaligns the cells, and only the grid is right."""
    parser = _HTMLTables()
    feed_html(parser, html)
    while parser.open:  # unclosed tables still count
        parser.handle_endtag("table")
    grids = [[cells for cells in _grid(table) if any(cells)] for table in parser.tables]
    spans = [any(r > 1 or c > 1 for row in table for _, r, c in row) for table in parser.tables]
    return grids, parser.lines, spans
