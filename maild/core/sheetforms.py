"""A new item's form from an attached table file, read exactly as a pasted table is read.

The one job is `read_file_form(subject, text, files, rules, words)` → `FileForm`: the attached
files (`sheets.read_table_file`) become the same grid of cells an HTML table gives, written out
as an HTML table and handed to `forms.read_form` with the email's text, so a file meets the
same reader, the same validation and the same reply as a paste. `problem_cells` says which cells
of the file each validation error is about, for the copy sent back with them marked. Pure.

Surprises worth knowing:
- Which form: maild's hidden marker in its own templates names it; else a sheet named like one
  of the forms (日常任务同步跟进表); else the subject marker and the fields, as for any email.
  The marker or sheet name stands in for a missing subject marker.
- The example row maild's templates carry is dropped when it is left in, word for word.
- A horizontal form (template 3: one header row of field labels over one row of values) is given
  to the reader as "label | value" rows, the shape it reads fields from.
- Only files whose grid has a header row maild knows (or maild's marker) count as forms: an
  unrelated spreadsheet attached to a pasted form leaves the pasted form in charge.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from maild.core.formrules import FormRules, norm
from maild.core.forms import detect_kind, read_form
from maild.core.formtables import slot_of
from maild.core.model import Attachment, FieldError, FormResult, ItemKind
from maild.mail.sheets import (
    LEGACY,
    FileTable,
    Grid,
    Limits,
    TableFileError,
    kind_of,
    read_table_file,
)
from maild.mail.workbooks import SheetWords


@dataclass(frozen=True)
class FileForm:
    """The form read from one file, and where in the file its rows were."""

    form: FormResult
    file: FileTable
    grid: Grid
    header_row: int  # index into grid.rows; -1 when there is no header row
    task_rows: tuple[int, ...]  # index into grid.rows of each task row, in order
    columns: Mapping[str, int]  # field or column key → 0-based column in the grid


def examples(words: SheetWords) -> frozenset[tuple[str, ...]]:
    """Every example row maild's templates carry, in every language."""
    return frozenset(tuple(words.by_language[lang][kind.value]["example"])
                     for lang in words.by_language for kind in ItemKind)


def read_file_form(subject: str, text: str, files: Sequence[FileTable], rules: FormRules,
                   words: SheetWords) -> FileForm | None:
    """The form in the first file that holds one (a known header row or maild's marker)."""
    skip = examples(words)
    for file in files:
        for grid in file.grids:
            rows = tuple(row for row in grid.rows if tuple(row) not in skip)
            at = tuple(n for row, n in zip(grid.rows, grid.at or range(1, len(grid.rows) + 1),
                                           strict=True) if tuple(row) not in skip)
            grid = Grid(rows, at, grid.sheet)
            head = _header_row(grid.rows, rules)
            kind = _kind(file, grid, rules, words)
            if head < 0 and kind is None:
                continue
            slots = _slots(grid.rows[head], rules) if head >= 0 else []
            marked = _with_marker(subject, kind, rules)
            body = "\n".join([text, *file.lines]) if file.lines else text
            form = read_form(marked, body, rules, _as_html(grid, head, slots))
            columns = {key: index for index, slot in enumerate(slots) if slot
                       for key in (slot[1],)}
            task_rows = tuple(i for i in range(head + 1, len(grid.rows))
                              if any(grid.rows[i][c] for c, s in enumerate(slots[:len(
                                  grid.rows[i])]) if s and s[0] == "column"))
            return FileForm(form, file, grid, head, task_rows, columns)
    return None


def problem_cells(found: FileForm, errors: Iterable[FieldError]) -> list[tuple[int, int, str]]:
    """(file row, file column, error code) for each error, 1-based, for `marked_workbook`."""
    grid, cells = found.grid, []
    numbers = grid.at or tuple(range(1, len(grid.rows) + 1))
    for error in errors:
        key = {"title": "name"}.get(error.field, error.field) if error.task else error.field
        column = found.columns.get(key, found.columns.get(error.field))
        if error.task and error.task <= len(found.task_rows):
            row = found.task_rows[error.task - 1]
        elif found.task_rows and column is not None:
            row = found.task_rows[0]
        else:
            row = max(found.header_row, 0)
        if column is None:
            column = 0
        if row < len(numbers):
            cells.append((numbers[row], column + 1, error.code))
    return cells


# ── pieces ───────────────────────────────────────────────────────────────────────────────────



def _slots(row: Sequence[str], rules: FormRules) -> list[tuple[str, str] | None]:
    return [slot_of(cell, rules) if cell else None for cell in row]


def _header_row(rows: Sequence[Sequence[str]], rules: FormRules) -> int:
    """The first of the top rows with 2+ cells that are labels maild knows; -1 when none."""
    for index, row in enumerate(rows[:5]):
        if sum(1 for slot in _slots(row, rules) if slot) >= 2:
            return index
    return -1


def _kind(file: FileTable, grid: Grid, rules: FormRules, words: SheetWords) -> ItemKind | None:
    if file.marker.get("kind") in {k.value for k in ItemKind}:
        return ItemKind(file.marker["kind"])
    sheet = norm(grid.sheet) if grid.sheet else ""
    if not sheet:
        return None
    for kind, template in rules.templates.items():
        names = {norm(n) for n in template.names.values()}
        names |= {norm(words.by_language[lang][kind.value]["sheet"]) for lang in words.by_language}
        if sheet in names or any(name and name in sheet for name in names):
            return kind
    return None


def _with_marker(subject: str, kind: ItemKind | None, rules: FormRules) -> str:
    """The subject with the file's form as a marker, when the subject has none of its own."""
    if kind is None or detect_kind(subject, {}, rules) is not None:
        return subject
    return f"[{rules.templates[kind].markers[0]}] {subject}"


def _as_html(grid: Grid, head: int, slots: Sequence[tuple[str, str] | None]) -> str:
    """The grid as an HTML table; a header of field labels only (a horizontal form) becomes
    "label | value" rows."""
    rows: list[Sequence[str]] = list(grid.rows)
    if head >= 0 and not any(s and s[0] == "column" for s in slots) and head + 1 < len(rows):
        labels, values = rows[head], rows[head + 1]
        rows = [*rows[:head], *([label, value] for label, value in zip(labels, values,
                                                                         strict=False) if label)]
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table>{body}</table>"


def form_sheet_names(rules: FormRules, words: SheetWords) -> list[str]:
    """The sheet names that pick a workbook's sheet: every form's name, in every language."""
    names = [name for template in rules.templates.values() for name in template.names.values()]
    names += [words.by_language[lang][kind.value]["sheet"] for lang in words.by_language
              for kind in ItemKind]
    return list(dict.fromkeys(names))


def email_tables(attachments: Iterable[Attachment], limits: Limits,
                 sheet_names: Sequence[str] = ()
                 ) -> tuple[list[FileTable], list[tuple[str, str]]]:
    """The table files of an email, read; and (file name, problem code) of those that cannot be
    (an old .xls/.doc, over a limit, damaged). `sheet_names` pick a workbook's sheet."""
    tables: list[FileTable] = []
    problems: list[tuple[str, str]] = []
    for attachment in attachments:
        kind = kind_of(attachment.filename, attachment.content_type)
        if kind is None:
            continue
        if kind in LEGACY:
            problems.append((attachment.filename, "legacy"))
        elif attachment.data is None:
            too_big = attachment.size > limits.max_bytes
            problems.append((attachment.filename, "too_large" if too_big else "unreadable"))
        else:
            try:
                tables.append(read_table_file(attachment.filename, attachment.data, limits,
                                              content_type=attachment.content_type,
                                              sheet_names=sheet_names))
            except TableFileError as exc:
                problems.append((attachment.filename, exc.code))
    return tables, problems
