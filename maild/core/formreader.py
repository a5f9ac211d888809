"""One pass over a body's lines: its `Label: value` fields and its task rows (forms' reader).

`Reader(rules)` takes lines one by one (`line`), or rows from an HTML grid (`row`), and keeps
the fields, task rows (None for a malformed one), the labels it met (for the form's signature)
and "Foo: bar" lines whose label it does not know. Pure; one reader per `read_form` call. The
rules of reading are in forms.py's docstring.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from maild.core.checkboxes import has_marks, picked
from maild.core.formrules import ROW_KEYS, FormRules, norm
from maild.core.formtables import Slot, cells, header
from maild.core.model import TaskDraft

_LABEL_LINE = re.compile(
    r"^\s*(?:[-*+•·●○■▪◦>]\s*|(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*[.、)）]\s*|[(（]\d{1,2}[)）]\s*)?"
    r"(?:【(?P<bracket>[^】]{1,80})】\s*[:：]?|(?P<plain>[^:：|｜\t]{1,80}?)\s*[:：])\s*(?P<value>.*)$")
_HINT = re.compile(r"[(（]([^)）]*)[)）]")
NUMBERED = re.compile(r"^\s*(?:\d{1,3}\s*[.、)）]|[(（]\d{1,3}[)）]|[-*•·●▪◦])\s*")
_SEPARATOR = re.compile(r"^[\s|:+=-]*-{3,}[\s|:+=-]*$")
_PROSE_END = re.compile(r"[。！？!?…:：]\s*$")
_UNKNOWN_LABEL = re.compile(r"^[\w\u3400-\u9fff/（）() ]{1,12}$")


def _label(line: str, rules: FormRules) -> tuple[str, str, str] | None:
    """(field, value, label as written) of a `Label: value` line with a known label."""
    m = _LABEL_LINE.match(line)
    if not m:
        return None
    written = m["bracket"] or m["plain"]
    key = rules.field_index.get(norm(written))
    if not key:
        return None
    value = m["value"].lstrip("*").strip()
    hint = _HINT.search(written)
    if not value and hint and has_marks(hint[1]) and picked(hint[1]):
        value = hint[1]  # "优先级（□高☑中□低）：" ticked in the label itself
    return key, value, written


# Fields whose value is one line: a "Foo: bar" line after them is not their continuation.
_ONE_LINE = frozenset({"title", "initiator", "owner", "priority", "deadline", "progress",
                       "status", "feedback", "emergency_type", "responder", "eta"})


def _unknown_label(line: str) -> bool:
    """Whether a line reads "Label: value" with a short label this form does not know."""
    m = _LABEL_LINE.match(line)
    return bool(m and m["plain"] and _UNKNOWN_LABEL.match(m["plain"]) and m["value"].strip())


@dataclass
class Reader:
    """The state of one pass over the lines of a body (local to one `read_form` call)."""

    rules: FormRules
    fields: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[TaskDraft | None, str]] = field(default_factory=list)  # None: malformed
    merged: bool = False  # rows from an HTML table with merged cells (only its grid is right)
    seen: set[str] = field(default_factory=set)  # normalised labels met (for the signature)
    unknown: list[str] = field(default_factory=list)  # "Foo: bar" lines with unknown labels
    tasks_label: bool = False
    tasks_inline: str = ""
    current: str | None = None  # the field whose value continues on the next line
    indent: int = 0  # of the current field's label line; deeper lines always continue it
    in_tasks: bool = False  # after the tasks label
    table: bool = False  # inside a table outside the tasks section
    header: list[Slot] | None = None
    above: dict[str, str] = field(default_factory=dict)  # the last row's item-level cells
    block_rows: bool = False  # a row since the last blank line
    strict: bool = False  # tasks section, after a blank line that followed rows

    def line(self, raw: str) -> None:
        text = raw.strip()
        if not text:
            self.current = None
            self.strict = self.strict or (self.in_tasks and self.block_rows)
            self.block_rows = False
            if not self.in_tasks:
                self.table, self.header = False, None
            return
        indent = len(raw) - len(raw.lstrip())
        if self.current and indent > self.indent:
            self.fields[self.current] += "\n" + text
            return
        label = _label(raw, self.rules)
        if label:
            self.seen.add(norm(label[2]))
            self.field(label[0], label[1])
            self.indent = indent
            return
        row, strong = cells(raw)
        if _SEPARATOR.match(text):
            return
        slots = header(row, self.rules)
        if slots:
            self.seen.update(norm(c) for c, s in zip(row, slots, strict=True) if s)
            self.header, self.table, self.current = slots, not self.in_tasks, None
            self.above = {}
            return
        if self.in_tasks or self.table:
            if len(row) >= 2 and (strong or not self.strict):
                self.row(row, text)
            elif self.in_tasks and not self.strict and (
                    NUMBERED.match(text) or (self.block_rows and not _PROSE_END.search(text))):
                self.rows.append((None, text))
            elif self.strict or self.table:
                self.in_tasks = self.table = False  # the table is over; prose follows
            return
        if strong and sum(1 for c in row if c) >= 3:
            self.table, self.current = True, None
            self.row(row, text)
        elif strong and len(row) == 2 and norm(row[0]) in self.rules.field_index:
            self.seen.add(norm(row[0]))
            self.fields.setdefault(self.rules.field_index[norm(row[0])], row[1])
        elif self.current and not (self.current in _ONE_LINE and _unknown_label(raw)):
            self.fields[self.current] += "\n" + text
        elif _unknown_label(raw):
            self.current = None  # "会议室: 3楼" after 优先级：高 is not part of the priority
            self.unknown.append(text)

    def field(self, key: str, value: str) -> None:
        self.in_tasks = self.table = self.strict = self.block_rows = False
        self.header, self.current = None, None
        if key == "tasks":
            self.tasks_label = self.in_tasks = True
            row, _ = cells(value)
            if len(row) >= 2:
                self.row(row, value)
            else:
                self.tasks_inline = value
        elif key not in self.fields:
            self.fields[key], self.current = value, key

    def row(self, row: list[str], raw: str) -> None:
        self.block_rows = True
        draft, row_fields, is_task = task_row(row, self.header, self.rules, self.above)
        self.above = row_fields
        for key, value in row_fields.items():
            self.fields.setdefault(key, value)
        if is_task:
            self.rows.append((draft, raw))


def task_row(row: list[str], slots: list[Slot] | None, rules: FormRules,
              above: Mapping[str, str]) -> tuple[TaskDraft | None, dict[str, str], bool]:
    """A row's task (None when malformed), the item-level cells it carries (empty ones repeat
    `above`, the row before: Excel's merged cells), and whether it has any task cell at all (a
    row of form fields only is no task)."""
    if slots is None:
        row = row[1:] if row and row[0].isdecimal() else row  # an index column
        slots = [("column", name) for name in rules.column_order]
    values: dict[str, dict[str, str]] = {"column": {}, "field": {}}
    for cell, slot in zip(row, slots, strict=False):
        if slot and cell:
            values[slot[0]].setdefault(slot[1], cell)
    row_fields = {**{k: v for k, v in above.items() if k != "title"}, **values["field"]}
    columns = values["column"]
    if "name" in columns:
        columns["name"] = NUMBERED.sub("", columns["name"]).strip()
    if not all(columns.get(k) for k in ROW_KEYS):
        return None, row_fields, any(columns.values())
    draft = TaskDraft(columns["name"], columns["owner"], columns["deadline"],
                      columns.get("deliverable", ""), columns.get("note", ""),
                      status=columns.get("status", ""), progress=columns.get("progress", ""),
                      priority=columns.get("priority", ""), feedback=columns.get("feedback", ""),
                      depends=columns.get("depends", ""),
                      row={k: v for k, v in row_fields.items() if k != "title"})
    return draft, row_fields, True
