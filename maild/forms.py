"""Structured fields from an email's text or tables: which form it is, its fields, its task rows.

The one job is `read_form(subject, text, rules, html)` → `FormResult`. `blank_form` and
`refill_form` print the forms back for help and validation replies. Labels, aliases, choices and
required fields come from `rules/forms.toml` (`load_form_rules` takes the parsed dict). Pure.

Surprises worth knowing:
- Values are returned raw and trimmed: owners and dates are resolved later by intake (people
  directory, `dates.parse_deadline`). Only fields with `[choices]` ("priority", "emergency_type")
  are normalised to their canonical value (e.g. "高" → "high") when recognised.
- A line is a field only when its label is known; unknown "Foo: bar" lines are prose. The first
  occurrence of a label wins; its value continues on following lines until a blank line or the
  next label, and always on lines indented deeper than its label line.
- Task rows: `|`/`｜`/tab separated lines anywhere (3+ filled cells), and also 2+-space aligned
  columns after the tasks label or a header row. A header row (2+ cells that are column labels, in
  either language) decides the column order, else name | owner | deadline | deliverable | note.
  In the tasks section, a blank line after the rows ends the table unless the next line is a
  `|`/tab row. HTML tables (rowspan/colspan expanded) are used when the text has no valid row.
- Errors: "missing" per absent required field, "task_malformed" (field "tasks", task = 1-based
  row, value = the raw line) for a row without name, owner or deadline, "no_tasks" for a project
  without rows (value = any text written after the tasks label).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from .formprint import blank_form, refill_form
from .formrules import LANGUAGES, ROW_KEYS, Choice, FormRules, Template, load_form_rules, norm
from .htmltables import html_tables
from .model import FieldError, FormResult, ItemKind, TaskDraft

__all__ = ["LANGUAGES", "Choice", "FormRules", "Template", "blank_form", "detect_kind",
           "load_form_rules", "read_form", "refill_form"]

# --------------------------------------------------------------------------------------------
# Reading

_LABEL_LINE = re.compile(
    r"^\s*(?:[-*+•·●○■▪◦>]\s*|(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*[.、)）]\s*|[(（]\d{1,2}[)）]\s*)?"
    r"(?:【(?P<bracket>[^】]{1,80})】\s*[:：]?|(?P<plain>[^:：|｜\t]{1,80}?)\s*[:：])\s*(?P<value>.*)$")
_NUMBERED = re.compile(r"^\s*(?:\d{1,3}\s*[.、)）]|[(（]\d{1,3}[)）]|[-*•·●▪◦])\s*")
_SEPARATOR = re.compile(r"^[\s|:+=-]*-{3,}[\s|:+=-]*$")
_PROSE_END = re.compile(r"[。！？!?…:：]\s*$")
_CHECKED = re.compile(r"(?:[☑☒✓✔√■▣●]|\[[xX✓]\])\s*([^\s☐□☑☒✓✔√■▣●\[\]/|,，、]+)")


def _label(line: str, rules: FormRules) -> tuple[str, str] | None:
    m = _LABEL_LINE.match(line)
    if not m:
        return None
    key = rules.field_index.get(norm(m["bracket"] or m["plain"]))
    return (key, m["value"].lstrip("*").strip()) if key else None


def _cells(line: str) -> tuple[list[str], bool]:
    """Split a line into cells; the flag says the separator was `|` or a tab (a strong sign)."""
    s = line.strip().replace("｜", "|")
    if "|" in s:
        s = s[1:] if s.startswith("|") else s
        s = s[:-1] if s.endswith("|") else s
        return [c.strip() for c in s.split("|")], True
    if "\t" in s:
        return [c.strip() for c in s.split("\t")], True
    return [c.strip() for c in re.split(r"[ \xa0]{2,}|\u3000+", s)], False


def _header(cells: list[str], rules: FormRules) -> list[tuple[str, str] | None] | None:
    slots: list[tuple[str, str] | None] = []
    for cell in cells:
        normed = norm(cell)
        if normed in rules.column_index:
            slots.append(("column", rules.column_index[normed]))
        elif normed in rules.field_index:
            slots.append(("field", rules.field_index[normed]))
        else:
            slots.append(None)
    return slots if sum(1 for s in slots if s and s[0] == "column") >= 2 else None


@dataclass
class _Reader:
    """The state of one pass over the lines of a body (local to one `read_form` call)."""

    rules: FormRules
    fields: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[TaskDraft | None, str]] = field(default_factory=list)  # None: malformed
    tasks_label: bool = False
    tasks_inline: str = ""
    current: str | None = None  # the field whose value continues on the next line
    indent: int = 0  # of the current field's label line; deeper lines always continue it
    in_tasks: bool = False  # after the tasks label
    table: bool = False  # inside a table outside the tasks section
    header: list[tuple[str, str] | None] | None = None
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
            self.field(*label)
            self.indent = indent
            return
        cells, strong = _cells(text)
        if _SEPARATOR.match(text):
            return
        header = _header(cells, self.rules)
        if header:
            self.header, self.table, self.current = header, not self.in_tasks, None
            return
        if self.in_tasks or self.table:
            if len(cells) >= 2 and (strong or not self.strict):
                self.row(cells, text)
            elif self.in_tasks and not self.strict and (
                    _NUMBERED.match(text) or (self.block_rows and not _PROSE_END.search(text))):
                self.rows.append((None, text))
            elif self.strict or self.table:
                self.in_tasks = self.table = False  # the table is over; prose follows
            return
        if strong and sum(1 for c in cells if c) >= 3:
            self.table, self.current = True, None
            self.row(cells, text)
        elif strong and len(cells) == 2 and norm(cells[0]) in self.rules.field_index:
            self.fields.setdefault(self.rules.field_index[norm(cells[0])], cells[1])
        elif self.current:
            self.fields[self.current] += "\n" + text

    def field(self, key: str, value: str) -> None:
        self.in_tasks = self.table = self.strict = self.block_rows = False
        self.header, self.current = None, None
        if key == "tasks":
            self.tasks_label = self.in_tasks = True
            cells, _ = _cells(value)
            if len(cells) >= 2:
                self.row(cells, value)
            else:
                self.tasks_inline = value
        elif key not in self.fields:
            self.fields[key], self.current = value, key

    def row(self, cells: list[str], raw: str) -> None:
        self.block_rows = True
        draft, form_fields, is_task = _task_row(cells, self.header, self.rules)
        for key, value in form_fields.items():
            self.fields.setdefault(key, value)
        if is_task:
            self.rows.append((draft, raw))


def _task_row(cells: list[str], header: list[tuple[str, str] | None] | None,
              rules: FormRules) -> tuple[TaskDraft | None, dict[str, str], bool]:
    """A row's task (None when malformed), the form fields its header columns carry, and
    whether it has any task cell at all (a row of form fields only is no task)."""
    if header is None:
        cells = cells[1:] if cells and cells[0].isdecimal() else cells  # an index column
        header = [("column", name) for name in rules.column_order]
    values: dict[str, dict[str, str]] = {"column": {}, "field": {}}
    for cell, slot in zip(cells, header, strict=False):
        if slot and cell:
            values[slot[0]].setdefault(slot[1], cell)
    columns = values["column"]
    if "name" in columns:
        columns["name"] = _NUMBERED.sub("", columns["name"]).strip()
    if not all(columns.get(k) for k in ROW_KEYS):
        return None, values["field"], any(columns.values())
    draft = TaskDraft(columns["name"], columns["owner"], columns["deadline"],
                      columns.get("deliverable", ""), columns.get("note", ""))
    return draft, values["field"], True


def _read_html(html: str, rules: FormRules, with_text: bool) -> _Reader:
    """Fields and task rows from an HTML body (its text lines too when `with_text`)."""
    grids, lines = html_tables(html)
    reader = _Reader(rules)
    if with_text:
        for line in lines:
            reader.line(line)
    for grid in grids:
        at = next((i for i, cells in enumerate(grid[:3]) if _header(cells, rules)), None)
        header = None if at is None else _header(grid[at], rules)
        above, body = (grid, []) if at is None else (grid[:at], grid[at + 1:])
        if header is None and any(sum(1 for c in cells if c) >= 3 for cells in grid):
            above, body = [], grid
        for cells in above:  # a two-column "label | value" table, a title row, or layout
            key = rules.field_index.get(norm(cells[0])) if len(cells) >= 2 else None
            if key and key != "tasks":
                reader.fields.setdefault(key, cells[1])
        reader.header = header
        for cells in body:
            reader.row(cells, " | ".join(cells))
    return reader


# --------------------------------------------------------------------------------------------
# Kind and result


def detect_kind(subject: str, fields: Mapping[str, str], rules: FormRules) -> ItemKind | None:
    """The subject marker ([项目], 【任务】, [Urgent] …) first, else what the fields suggest.

    `fields` may carry a "tasks" key (any value) when the body had a tasks label or task rows.
    """
    subject = unicodedata.normalize("NFKC", subject).casefold()
    found: list[tuple[int, ItemKind]] = []
    for kind, template in rules.templates.items():
        for marker in template.markers:
            m = re.search(r"[\[【]\s*" + re.escape(marker.casefold()) + r"\s*[\]】]", subject)
            if m:
                found.append((m.start(), kind))
    if found:
        return min(found, key=lambda hit: hit[0])[1]
    if fields.get("emergency_type") or fields.get("responder"):
        return ItemKind.EMERGENCY
    if "tasks" in fields or fields.get("participants"):
        return ItemKind.PROJECT
    if fields.get("owner") and fields.get("deadline"):
        return ItemKind.TASK
    return None


def read_form(subject: str, text: str, rules: FormRules, html: str | None = None) -> FormResult:
    """The form in one email: kind, raw fields, task rows and what is missing or malformed."""
    reader = _Reader(rules)
    for line in text.splitlines():
        reader.line(line)
    if html and not any(draft for draft, _ in reader.rows):
        page = _read_html(html, rules, with_text=not text.strip())
        if page.rows:
            reader.rows = page.rows
        for key, value in page.fields.items():
            reader.fields.setdefault(key, value)
        reader.tasks_label = reader.tasks_label or page.tasks_label
        reader.tasks_inline = reader.tasks_inline or page.tasks_inline
    fields = {k: v.strip() for k, v in reader.fields.items() if v.strip()}
    probe = {**fields, "tasks": "yes"} if reader.rows or reader.tasks_label else fields
    kind = detect_kind(subject, probe, rules)
    for key, choices in rules.choices.items():
        if key in fields:
            fields[key] = _choose(fields[key], choices) or fields[key]

    drafts = tuple(draft for draft, _ in reader.rows if draft)
    row_errors = [FieldError("tasks", "task_malformed", raw, number)
                  for number, (draft, raw) in enumerate(reader.rows, start=1) if draft is None]
    if kind is ItemKind.TASK and drafts and not fields.get("owner"):
        first = drafts[0]  # a follow-up table instead of fields: its rows are the tasks
        for key, value in (("title", first.name), ("owner", first.owner),
                           ("deadline", first.deadline), ("deliverable", first.deliverable)):
            if value:
                fields.setdefault(key, value)
    elif kind is ItemKind.TASK:
        if reader.tasks_inline:
            fields.setdefault("title", reader.tasks_inline.strip())
        drafts, row_errors = (TaskDraft(fields.get("title", ""), fields.get("owner", ""),
                                        fields.get("deadline", ""), fields.get("deliverable", ""),
                                        fields.get("note", "")),), []
    elif kind is ItemKind.EMERGENCY:
        name = fields.get("title") or fields.get("description", "").split("\n")[0].strip()
        drafts, row_errors = (TaskDraft(name, fields.get("responder", ""), fields.get("eta", ""),
                                        fields.get("plan", ""), fields.get("note", "")),), []
    if kind is None:
        return FormResult(None, fields, drafts)
    template = rules.templates[kind]
    errors = [FieldError(key, "missing") for key in template.required
              if key != "tasks" and not fields.get(key)]
    errors += row_errors
    if kind is ItemKind.PROJECT and not reader.rows:
        errors.append(FieldError("tasks", "no_tasks", reader.tasks_inline.strip()))
    return FormResult(kind, fields, drafts, tuple(errors))


def _choose(value: str, choices: tuple[Choice, ...]) -> str | None:
    """The canonical value of a choice ("高", "High", "☑高 □中 □低" → "high"), else None."""
    lookup = {norm(name): c.value for c in choices
              for name in (c.value, *c.names.values(), *c.aliases)}
    if norm(value) in lookup:
        return lookup[norm(value)]
    checked = {lookup.get(norm(word)) for word in _CHECKED.findall(value)} - {None}
    return checked.pop() if len(checked) == 1 else None
