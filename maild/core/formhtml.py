"""Fields and task rows from an email's HTML tables, and which of HTML and text to believe.

`read_html(html, rules, with_text)` reads the tables (`htmltables`: spans expanded, an
emphasised option ticked) as forms' reader reads text rows: a header row decides the columns,
label | value tables (2 or 4 columns) give fields, and a second header row naming a choice's
options under its merged cell ("完成状态" over 未开始 | 进行中 | 已完成 | 延期) is folded back
into that cell ("√" under 进行中 → "☑进行中"). `merge_html` then keeps the more complete rows:
the HTML's when they are more complete, or when the text was made from the HTML and the table
merges cells (its text rendering misplaces them). Pure.
"""

from __future__ import annotations

from dataclasses import replace

from maild.core.checkboxes import choose, percent_of, picked
from maild.core.formreader import Reader
from maild.core.formrules import FormRules, norm
from maild.core.formtables import Slot, header, unfold
from maild.core.model import TaskDraft
from maild.mail.htmltables import html_tables_spans


def read_html(html: str, rules: FormRules, with_text: bool) -> Reader:
    """Fields and task rows from an HTML body (its text lines too when `with_text`)."""
    grids, lines, spans = html_tables_spans(html)
    reader = Reader(rules)
    if with_text:
        for line in unfold(lines, rules):
            reader.line(line)
    for grid, spanned in zip(grids, spans, strict=True):
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
            options = _option_columns(grid[at], body[0], slots, rules) if body else {}
            if options:  # 完成状态 split into 未开始 | 进行中 | 已完成 | 延期 columns
                body = [_ticked_options(row, options) for row in body[1:]]
        reader.header, reader.above = slots, {}
        rows_before = len(reader.rows)
        for row in body:
            reader.row(row, " | ".join(row))
        reader.merged = reader.merged or (spanned and len(reader.rows) > rows_before)
    return reader


def _option_columns(head: list[str], sub: list[str], slots: list[Slot], rules: FormRules
                    ) -> dict[int, tuple[int, str]]:
    """A second header row naming a choice's options under its merged cell ("完成状态" over
    未开始 | 进行中 | 已完成 | 延期): column → (the choice's column, option)."""
    options: dict[int, tuple[int, str]] = {}
    owner: int | None = None
    for index, (title, name) in enumerate(zip(head, sub, strict=False)):
        slot = slots[index] if index < len(slots) else None
        if slot is not None:
            owner = index if slot[1] in rules.choices or slot[1] == "progress" else None
        if owner is None or not name:
            continue
        key = slots[owner][1]  # type: ignore[index]
        known = percent_of(name) if key == "progress" else choose(name, rules.choices[key])
        if known:
            options[index] = (owner, name)
        elif name != title:
            return {}
    return options if len({o for o, _ in options.values()}) == 1 and len(options) >= 2 else {}


def _ticked_options(row: list[str], options: dict[int, tuple[int, str]]) -> list[str]:
    """A data row with its option columns folded into the choice's cell ("√" under 进行中 →
    "☑进行中")."""
    row = list(row)
    ticked = [name for index, (_, name) in options.items()
              if index < len(row) and row[index].strip()]
    target = next(iter(options.values()))[0]
    for index in options:
        if index < len(row) and index != target:
            row[index] = ""
    if target < len(row):
        row[target] = "".join("☑" + name for name in ticked)
    return row


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



def merge_html(reader: Reader, page: Reader, rules: FormRules, derived: bool) -> None:
    """Take the HTML's rows when they are more complete than the text's, or when the text was
    made from the HTML and the table merges cells (only the grid has them in place); its
    fields fill gaps, and a choice the text left unresolved (a tick by emphasis)."""
    text_ok, page_ok = _complete(reader.rows), _complete(page.rows)
    if page_ok[0] and page.merged and derived and page_ok >= text_ok:
        # the text rendering of a table with merged cells misplaces them, its fields too
        reader.rows = page.rows
        reader.fields.update(page.fields)
    elif page_ok[0] and page_ok > text_ok:
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
