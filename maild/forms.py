"""Structured fields from an email's text or tables: which form it is, its fields, its task rows.

The one job is `read_form(subject, text, rules, html)` → `FormResult`. `blank_form` and
`refill_form` print the forms back for help and validation replies. Labels, aliases, choices and
required fields come from `rules/forms.toml` (`load_form_rules` takes the parsed dict). Pure.

Surprises worth knowing:
- Values are returned raw and trimmed: owners and dates are resolved later by intake (people
  directory, `dates.parse_deadline`). Choice fields and columns (优先级, 紧急事务类型, 完成状态)
  are normalised to their canonical value ("高" → "high", "□未开始" → "not_started") when
  recognised, ticked boxes included (`checkboxes`); 当前进度 to "N%".
- A line is a field only when its label is known; unknown "Foo: bar" lines are prose (and listed
  in `unread`). The first occurrence of a label wins; its value continues on following lines
  until a blank line or the next label, and always on lines indented deeper than its label line.
  A box ticked in a label's own hint ("优先级（□高☑中□低）：") is its value when none is written.
- Task rows: `|`/`｜`/tab separated lines anywhere (3+ filled cells), and also 2+-space aligned
  columns after the tasks label or a header row. A header row (2+ cells that are column labels, in
  either language) decides the column order, else name | owner | deadline | deliverable | note.
  Item-level columns in a header (项目名称, 发起人/部门 …) fill fields; their empty cells in
  later rows repeat the row above (Excel's merged cells). Word's one-cell-per-line copies are
  unfolded into rows first (`formtables.unfold`). In the tasks section, a blank line after the
  rows ends the table unless the next line is a `|`/tab row. HTML tables (rowspan/colspan
  expanded) are read too; they win when they give more complete rows than the text.
- The form: the subject marker ([项目], 【任务】, [Urgent] …), else the form's own name in the
  subject (日常任务同步跟进表), else the labels only one form uses (its `signature`), else what
  the fields suggest. The title, when no field gives it, is the subject without markers.
- A daily-task table with several rows is several tasks (intake makes one item of each); an
  emergency is one task: the responder owns it, due at the ETA.
- A project without rows but with the guide's step-3 "需配合" sentences is a kickoff: its tasks
  are read from the sentences (`kickoff`), source "kickoff".
- Errors: "missing" per absent required field, "task_malformed" (field "tasks", task = 1-based
  row, value = the raw line) for a row without name, owner or deadline, "no_tasks" for a project
  without rows (value = any text written after the tasks label).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from .checkboxes import choose, has_marks, or_raw, percent_of, picked
from .formkind import detect_kind, strip_subject
from .formprint import blank_form, refill_form
from .formrules import LANGUAGES, ROW_KEYS, Choice, FormRules, Template, load_form_rules, norm
from .formtables import Slot, cells, header, unfold
from .htmltables import html_tables
from .kickoff import read_kickoff
from .model import FieldError, FormResult, ItemKind, TaskDraft

__all__ = ["LANGUAGES", "Choice", "FormRules", "Template", "blank_form", "detect_kind",
           "load_form_rules", "read_form", "refill_form", "strip_subject"]

# --------------------------------------------------------------------------------------------
# Reading

_LABEL_LINE = re.compile(
    r"^\s*(?:[-*+•·●○■▪◦>]\s*|(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*[.、)）]\s*|[(（]\d{1,2}[)）]\s*)?"
    r"(?:【(?P<bracket>[^】]{1,80})】\s*[:：]?|(?P<plain>[^:：|｜\t]{1,80}?)\s*[:：])\s*(?P<value>.*)$")
_HINT = re.compile(r"[(（]([^)）]*)[)）]")
_NUMBERED = re.compile(r"^\s*(?:\d{1,3}\s*[.、)）]|[(（]\d{1,3}[)）]|[-*•·●▪◦])\s*")
_SEPARATOR = re.compile(r"^[\s|:+=-]*-{3,}[\s|:+=-]*$")
_PROSE_END = re.compile(r"[。！？!?…:：]\s*$")
_UNKNOWN_LABEL = re.compile(r"^[\w\u3400-\u9fff/（）() ]{1,12}$")
# Columns whose value is a choice, and the choice list that normalises them.
_CHOICE_COLUMNS = {"status": "status", "priority": "priority"}


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


@dataclass
class _Reader:
    """The state of one pass over the lines of a body (local to one `read_form` call)."""

    rules: FormRules
    fields: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[TaskDraft | None, str]] = field(default_factory=list)  # None: malformed
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
                    _NUMBERED.match(text) or (self.block_rows and not _PROSE_END.search(text))):
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
        elif self.current:
            self.fields[self.current] += "\n" + text
        else:
            m = _LABEL_LINE.match(raw)
            if m and m["plain"] and _UNKNOWN_LABEL.match(m["plain"]) and m["value"].strip():
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
        draft, row_fields, is_task = _task_row(row, self.header, self.rules, self.above)
        self.above = row_fields
        for key, value in row_fields.items():
            self.fields.setdefault(key, value)
        if is_task:
            self.rows.append((draft, raw))


def _task_row(row: list[str], slots: list[Slot] | None, rules: FormRules,
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
        columns["name"] = _NUMBERED.sub("", columns["name"]).strip()
    if not all(columns.get(k) for k in ROW_KEYS):
        return None, row_fields, any(columns.values())
    draft = TaskDraft(columns["name"], columns["owner"], columns["deadline"],
                      columns.get("deliverable", ""), columns.get("note", ""),
                      status=columns.get("status", ""), progress=columns.get("progress", ""),
                      priority=columns.get("priority", ""), feedback=columns.get("feedback", ""),
                      row={k: v for k, v in row_fields.items() if k != "title"})
    return draft, row_fields, True


def _read_html(html: str, rules: FormRules, with_text: bool) -> _Reader:
    """Fields and task rows from an HTML body (its text lines too when `with_text`)."""
    grids, lines = html_tables(html)
    reader = _Reader(rules)
    if with_text:
        for line in unfold(lines, rules):
            reader.line(line)
    for grid in grids:
        at = next((i for i, row in enumerate(grid[:3]) if header(row, rules)), None)
        slots = None if at is None else header(grid[at], rules)
        above, body = (grid, []) if at is None else (grid[:at], grid[at + 1:])
        if slots is None and any(sum(1 for c in row if c) >= 3 for row in grid) and not any(
                _pairs(row, rules) for row in grid):
            above, body = [], grid
        for row in above:  # "label | value" tables (2 or 4 columns), a title row, or layout
            for key, value, written in _pairs(row, rules):
                reader.seen.add(norm(written))
                reader.fields.setdefault(key, value)
        if slots is not None:
            reader.seen.update(norm(c) for c, s in zip(grid[at], slots, strict=True) if s)
        reader.header, reader.above = slots, {}
        for row in body:
            reader.row(row, " | ".join(row))
    return reader


def _pairs(row: list[str], rules: FormRules) -> list[tuple[str, str, str]]:
    """(field, value, label) of a row laid out label | value [| label | value]."""
    found = []
    for at in range(0, len(row) - 1, 2):
        key = rules.field_index.get(norm(row[at]))
        if key is not None and key != "tasks":
            found.append((key, row[at + 1], row[at]))
        elif row[at]:
            break
    return found


# --------------------------------------------------------------------------------------------
# The result


def read_form(subject: str, text: str, rules: FormRules, html: str | None = None) -> FormResult:
    """The form in one email: kind, raw fields, task rows and what is missing or malformed."""
    reader = _Reader(rules)
    for line in unfold(text.splitlines(), rules):
        reader.line(line)
    if html:
        _merge_html(reader, _read_html(html, rules, with_text=not text.strip()), rules)
    fields = {k: v.strip() for k, v in reader.fields.items() if v.strip()}
    probe = {**fields, "tasks": "yes"} if reader.rows or reader.tasks_label else fields
    kind = detect_kind(subject, probe, rules, reader.seen)
    for key, choices in rules.choices.items():
        if key in fields:
            fields[key] = or_raw(choose(fields[key], choices), fields[key])
    if "progress" in fields:
        fields["progress"] = or_raw(percent_of(fields["progress"]), fields["progress"])
    fields = {k: v for k, v in fields.items() if v}  # a row of unticked boxes says nothing
    if not fields.get("title") and kind is not None:
        title = strip_subject(subject, rules)
        if kind is ItemKind.EMERGENCY:
            title = title or fields.get("description", "").split("\n")[0].strip()
        if title:
            fields["title"] = title

    drafts = tuple(_normalised(draft, rules) for draft, _ in reader.rows if draft)
    if kind is not ItemKind.TASK:  # a row's item-level cells are the item's (one 项目名称)
        drafts = tuple(replace(d, row={}) if d.row else d for d in drafts)
    row_errors = [FieldError("tasks", "task_malformed", raw, number)
                  for number, (draft, raw) in enumerate(reader.rows, start=1) if draft is None]
    source = "table"
    if kind is ItemKind.TASK and drafts and not fields.get("owner"):
        first = drafts[0]  # a follow-up table instead of fields: its rows are the tasks
        fields["title"] = first.name
        for key, value in (("owner", first.owner), ("deadline", first.deadline),
                           ("deliverable", first.deliverable)):
            if value:
                fields.setdefault(key, value)
    elif kind is ItemKind.TASK:
        if reader.tasks_inline:
            fields.setdefault("title", reader.tasks_inline.strip())
        drafts, row_errors = (draft_from_fields(kind, fields),), []
    elif kind is ItemKind.EMERGENCY:
        drafts, row_errors = (draft_from_fields(kind, fields),), []
    elif kind is ItemKind.PROJECT and not reader.rows and fields.get("cooperation"):
        kickoff = read_kickoff(fields["cooperation"], fields.get("participants", ""))
        drafts, source = kickoff.tasks, "kickoff"
        reader.unknown.extend(kickoff.unread)
    unread = tuple(reader.unknown)
    if kind is None:
        return FormResult(None, fields, drafts, unread=unread)
    errors = form_errors(kind, fields, drafts, tuple(row_errors), rules,
                         reader.tasks_inline.strip())
    return FormResult(kind, fields, drafts, errors, source, unread)


def draft_from_fields(kind: ItemKind, fields: Mapping[str, str]) -> TaskDraft:
    """The one task of a daily-task form written as fields, or of an emergency (the responder
    owns it, due at the ETA, the plan is what it delivers)."""
    if kind is ItemKind.EMERGENCY:
        return TaskDraft(fields.get("title", ""), fields.get("responder", ""),
                         fields.get("eta", ""), fields.get("plan", ""), fields.get("note", ""),
                         status=fields.get("status", ""))
    return TaskDraft(fields.get("title", ""), fields.get("owner", ""), fields.get("deadline", ""),
                     fields.get("deliverable", ""), fields.get("note", ""),
                     status=fields.get("status", ""), progress=fields.get("progress", ""),
                     priority=fields.get("priority", ""), feedback=fields.get("feedback", ""))


def form_errors(kind: ItemKind, fields: Mapping[str, str], drafts: tuple[TaskDraft, ...],
                row_errors: tuple[FieldError, ...], rules: FormRules,
                tasks_inline: str = "") -> tuple[FieldError, ...]:
    """What a form of `kind` lacks: each required field, malformed rows, a project's tasks."""
    template = rules.templates[kind]
    errors = [FieldError(key, "missing") for key in template.required
              if key != "tasks" and not fields.get(key)]
    errors += row_errors
    if kind is ItemKind.PROJECT and not drafts and not row_errors:
        errors.append(FieldError("tasks", "no_tasks", tasks_inline))
    return tuple(errors)


def _merge_html(reader: _Reader, page: _Reader, rules: FormRules) -> None:
    """Take the HTML's rows when they are more complete than the text's (spans expanded, ticks by
    emphasis); its fields fill gaps, and a choice the text left unresolved."""
    text_ok, page_ok = _complete(reader.rows), _complete(page.rows)
    if page_ok[0] and page_ok > text_ok:
        reader.rows = page.rows
    elif page_ok == text_ok:  # the same table: a box ticked by emphasis is only in the HTML
        reader.rows = [(_choices_from(mine, theirs), raw) for (mine, raw), (theirs, _)
                       in zip(reader.rows, page.rows, strict=True)]
    for key, value in page.fields.items():
        mine = reader.fields.get(key)
        if mine is None or (not _answered(key, mine, rules) and _answered(key, value, rules)):
            reader.fields[key] = value
    reader.seen |= page.seen
    reader.tasks_label = reader.tasks_label or page.tasks_label
    reader.tasks_inline = reader.tasks_inline or page.tasks_inline


def _answered(key: str, value: str, rules: FormRules) -> bool:
    """Whether a choice field's text chooses something (当前进度 included)."""
    if key == "progress":
        return bool(percent_of(value))
    return key in rules.choices and bool(choose(value, rules.choices[key]))


def _complete(rows: list[tuple[TaskDraft | None, str]]) -> tuple[int, int]:
    """How complete a reading of the rows is: valid rows, then fewer malformed ones."""
    valid = sum(1 for draft, _ in rows if draft)
    return valid, valid - len(rows)


def _choices_from(mine: TaskDraft | None, theirs: TaskDraft | None) -> TaskDraft | None:
    """`mine`, with the choice cells it leaves unticked taken from the same row in `theirs`."""
    if mine is None or theirs is None or mine.name != theirs.name:
        return mine
    changes = {key: getattr(theirs, key) for key in ("status", "priority", "progress")
               if not picked(getattr(mine, key)) and picked(getattr(theirs, key))}
    return replace(mine, **changes) if changes else mine


def _normalised(draft: TaskDraft, rules: FormRules) -> TaskDraft:
    """A row's choice cells as canonical values (完成状态 → a state, 优先级 → high/…, 进度 → N%)."""
    changes: dict[str, str] = {}
    for column, choice_key in _CHOICE_COLUMNS.items():
        value = getattr(draft, column)
        if value and choice_key in rules.choices:
            changes[column] = or_raw(choose(value, rules.choices[choice_key]), value)
    if draft.progress:
        changes["progress"] = or_raw(percent_of(draft.progress), draft.progress)
    return replace(draft, **changes) if changes else draft
