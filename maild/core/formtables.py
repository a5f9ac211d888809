"""Table shapes in a text body: cells of one line, header rows, and Word's one-cell-per-line copies.

`cells` splits one line, `header` says which form label each cell of a header row is, and
`unfold` rewrites the two shapes that spread a table over many lines into what `forms` reads
line by line. Pure. Surprises worth knowing:

- A tab line keeps its leading empty cells: Excel writes a merged cell once and leaves the cells
  below it empty ("\t\t\t渠道推广方案\t8月15日前…"), so stripping the line would shift every column.
- A table copied from Word (and the guide itself, as printed) has one cell per line: N header
  lines, then the values. Vertically merged cells appear once, in the first row: later rows are
  N − k cells long, where k is the number of item-level columns the header starts with (项目名称,
  发起人/部门, 参与人/部门). `unfold` turns such a block into tab rows with those k cells empty,
  exactly as Excel would have pasted it. Rows are taken while their deadline cell looks like a
  date; what is left (a signature, "谢谢") stays prose.
- A bare label line followed by a value line (a two-column table copied from Word) becomes
  "label：value".
- A header is a row of ≥ 2 task columns (任务名称 | 负责人 …), or a row whose cells are all form
  labels (the value row of template 3 below 紧急事务类型 | 发起人 | 事务描述 …).
"""

from __future__ import annotations

import re

from maild.core.formrules import FormRules, norm

Slot = tuple[str, str] | None  # ("column", key) | ("field", key) | None (not a label)

_SPACES = " \xa0\u3000"
_DATE_LIKE = re.compile(
    r"[0-9０-９]|[月日号號周週旬季底末内內前今明后後]|[一二三四五六七八九十两兩]\s*[天周週]|"
    r"\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|mon|tue|wed|thu|fri|sat|sun|today|"
    r"tomorrow|tonight|eod|eow|eom|end|next|this|within|by|noon|asap)", re.IGNORECASE)
_MAX_HEADER = 12  # no form has more columns; a longer run of labels is a list, not a header


def cells(line: str) -> tuple[list[str], bool]:
    """Split a line into cells; the flag says the separator was `|` or a tab (a strong sign)."""
    s = line.rstrip("\r\n").replace("｜", "|")
    if "|" in s:
        s = s.strip(_SPACES + "\t")
        s = s[1:] if s.startswith("|") else s
        s = s[:-1] if s.endswith("|") else s
        return [c.strip(_SPACES) for c in s.split("|")], True
    if "\t" in s:
        s = s.strip(_SPACES)
        return [c.strip(_SPACES) for c in s.split("\t")], True
    return [c.strip() for c in re.split(r"[ \xa0]{2,}|\u3000+", s.strip())], False


def slot_of(cell: str, rules: FormRules) -> Slot:
    normed = norm(cell)
    if normed in rules.column_index:
        return ("column", rules.column_index[normed])
    if normed in rules.field_index:
        return ("field", rules.field_index[normed])
    return None


def header(row: list[str], rules: FormRules) -> list[Slot] | None:
    """The slots of a header row, or None when the row is not one."""
    slots = [slot_of(cell, rules) for cell in row]
    labelled = [s for s in slots if s]
    filled = [c for c in row if c.strip()]
    if sum(1 for s in labelled if s[0] == "column") >= 2:
        return slots
    if len(labelled) >= 2 and len(labelled) == len(filled):
        return slots
    return None


def looks_like_date(text: str) -> bool:
    """Whether a cell could hold a date or time ("8月10日前", "7/30", "今天18点", "Q3末")."""
    return bool(_DATE_LIKE.search(text))


def _bare_label(line: str, rules: FormRules) -> Slot:
    """The label a line is when it holds nothing else ("负责人", "完成状态(□未开始□进行中)")."""
    text = line.strip(_SPACES + "\t")
    if not text or len(text) > 60 or re.search(r"[\t|｜:：]", text):
        return None
    return slot_of(text, rules)


def unfold(lines: list[str], rules: FormRules) -> list[str]:
    """Word's one-cell-per-line tables as tab rows, and label-then-value lines as `label：value`."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if _bare_label(lines[i], rules) is None:
            out.append(lines[i])
            i += 1
            continue
        labels, end = _label_run(lines, i, rules)
        if len(labels) >= 2:
            slots = header(labels, rules)
            if slots is not None:
                rows, leftover, i = _values(lines, end, labels, slots)
                out.append("\t".join(labels))
                out.extend("\t".join([""] * (len(labels) - len(row)) + row) for row in rows)
                out.append("")
                out.extend(leftover)
                continue
        value_at = _next_filled(lines, i + 1)
        if (len(labels) == 1 and value_at is not None and _pair_value(lines[value_at], rules)
                and _bare_label(lines[i], rules) != ("field", "tasks")):
            out.append(f"{labels[0].strip(_SPACES)}：{lines[value_at].strip()}")
            i = value_at + 1
            continue
        out.append(lines[i])
        i += 1
    return out


def _pair_value(line: str, rules: FormRules) -> bool:
    """Whether a line can be the value under a bare label (not a label, row or labelled line)."""
    text = line.strip(_SPACES + "\t")
    return (_bare_label(text, rules) is None and not re.search(r"[\t|｜]", text)
            and not re.match(r"^[^:：]{1,20}[:：]", text))


def _next_filled(lines: list[str], start: int) -> int | None:
    for j in range(start, len(lines)):
        if lines[j].strip(_SPACES + "\t"):
            return j
    return None


def _label_run(lines: list[str], start: int, rules: FormRules) -> tuple[list[str], int]:
    """The consecutive bare label lines from `start` (blank lines between them allowed)."""
    labels: list[str] = []
    j = start
    while j < len(lines) and len(labels) < _MAX_HEADER:
        text = lines[j].strip(_SPACES + "\t")
        if not text:
            j += 1
            continue
        if _bare_label(text, rules) is None:
            break
        labels.append(text)
        j += 1
    return labels, j


def _values(lines: list[str], start: int, labels: list[str], slots: list[Slot]
            ) -> tuple[list[list[str]], list[str], int]:
    """Rows of cells after a one-cell-per-line header: (rows, lines left as prose, next index)."""
    values: list[str] = []
    j = start
    gap = 0
    while j < len(lines):
        text = lines[j].strip(_SPACES + "\t")
        if not text:
            gap += 1
            j += 1
            if gap >= 3:
                break
            continue
        if re.match(r"^[^:：]{1,20}[:：]\s*\S", text) and not looks_like_date(text):
            break  # a "Label: value" line: the table is over
        gap = 0
        values.append(text)
        j += 1
    width = len(labels)
    merged = 0
    for slot in slots:  # item-level columns at the start: merged down in later rows
        if slot is None or slot[0] != "field":
            break
        merged += 1
    if merged == width or not any(s and s[0] == "column" for s in slots):
        merged = 0
    due = next((n for n, s in enumerate(slots) if s in (("column", "deadline"),
                                                         ("field", "eta"), ("field", "deadline"))),
               None)
    rows: list[list[str]] = []
    pos = 0
    while pos < len(values):
        sizes = (width,) if not rows else ((width - merged, width) if merged else (width,))
        for size in sizes:
            row = values[pos:pos + size]
            offset = width - size
            if len(row) == size and (due is None or due < offset
                                     or looks_like_date(row[due - offset])):
                rows.append(row)
                pos += size
                break
        else:
            break
    leftover = values[pos:]
    # Lines not taken go back as prose after the table, in their order (blank lines dropped).
    return rows, leftover, j
