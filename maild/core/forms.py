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

from collections.abc import Mapping
from dataclasses import replace

from maild.core.checkboxes import choose, or_raw, percent_of
from maild.core.formhtml import merge_html, read_html
from maild.core.formkind import detect_kind, strip_subject
from maild.core.formprint import blank_form, refill_form
from maild.core.formreader import Reader
from maild.core.formrules import LANGUAGES, Choice, FormRules, Template, load_form_rules
from maild.core.formtables import unfold
from maild.core.kickoff import read_kickoff
from maild.core.model import FieldError, FormResult, ItemKind, TaskDraft
from maild.mail.htmltext import html_to_text

__all__ = ["LANGUAGES", "Choice", "FormRules", "Template", "blank_form", "detect_kind",
           "load_form_rules", "read_form", "refill_form", "strip_subject"]

# Columns whose value is a choice, and the choice list that normalises them.
_CHOICE_COLUMNS = {"status": "status", "priority": "priority"}


def read_form(subject: str, text: str, rules: FormRules, html: str | None = None) -> FormResult:
    """The form in one email: kind, raw fields, task rows and what is missing or malformed."""
    reader = Reader(rules)
    for line in unfold(text.splitlines(), rules):
        reader.line(line)
    if html:
        # An HTML-only email's text is made from its HTML, tables merged cells and all.
        derived = bool(text.strip()) and text.strip() == html_to_text(html).strip()
        merge_html(reader, read_html(html, rules, with_text=not text.strip()), rules,
                    derived or not text.strip())
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
