"""The .xlsx files maild sends: the guide's three templates, a sender's table with its problem
cells marked, and an item's record laid out as the guide's table.

The one job is bytes of a workbook from data: `template_workbook(kind, lang, words, now)`,
`marked_workbook(...)` and `record_workbook(item, ...)`. Pure (openpyxl, imported on first use).

Surprises worth knowing:
- Columns are the guide's, exactly (LAYOUTS gives each column's meaning; its words, the
  example row and the drop-down lists live in templates/sheets.toml). Drop-downs are Excel data
  validations that also allow other text (a warning, not a stop): people write "8月10日前" and
  "60%" too, and the reader takes those.
- A hidden sheet "maild" carries the marker ("maild-template", kind, language, version, sheet
  name), so a returned file names its form without a subject marker, and its example row is
  recognised and skipped.
- The bytes are deterministic: the document properties and every zip entry carry `now`, so a
  re-render is byte-identical (the outbox stores the bytes anyway).
"""

from __future__ import annotations

import io
import tomllib
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from maild.core.model import ItemKind
from maild.mail.record import local_time

TEMPLATE_VERSION = "1"
# Each template's columns as the guide prints them: ("field", key) is an item-level field,
# ("column", key) a task column, ("choice", key) a column picked from a drop-down list.
LAYOUTS: Mapping[ItemKind, tuple[tuple[str, str], ...]] = {
    ItemKind.PROJECT: (("field", "title"), ("field", "initiator"), ("field", "participants"),
                       ("column", "name"), ("column", "deadline"), ("column", "owner"),
                       ("choice", "status"), ("column", "note")),
    ItemKind.TASK: (("column", "name"), ("field", "initiator"), ("column", "owner"),
                    ("choice", "priority"), ("column", "deadline"), ("choice", "progress"),
                    ("column", "note"), ("field", "feedback")),
    ItemKind.EMERGENCY: (("choice", "emergency_type"), ("field", "initiator"),
                         ("field", "description"), ("field", "responder"), ("field", "plan"),
                         ("field", "eta")),
}
HEADER_FILL, EXAMPLE_FONT, PROBLEM_FILL = "DDEBF7", "808080", "FFC7CE"


@dataclass(frozen=True)
class SheetWords:
    """templates/sheets.toml, per language."""

    by_language: Mapping[str, Mapping[str, Any]]

    def get(self, language: str) -> Mapping[str, Any]:
        return self.by_language.get(language) or self.by_language["zh"]


def load_sheet_words(path: Path) -> SheetWords:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    for language, words in data.items():
        for kind in ItemKind:
            spec = words[kind.value]
            if len(spec["columns"]) != len(LAYOUTS[kind]) or len(spec["example"]) != len(
                    LAYOUTS[kind]):
                raise ValueError(f"{path}: [{language}.{kind.value}] needs "
                                 f"{len(LAYOUTS[kind])} columns and example cells")
    return SheetWords(data)


def template_files(words: SheetWords, language: str, now: datetime) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the three templates, in the guide's order."""
    return [(words.get(language)[kind.value]["file"], template_workbook(kind, language, words, now))
            for kind in ItemKind]


def template_workbook(kind: ItemKind, language: str, words: SheetWords, now: datetime) -> bytes:
    """One blank template: header, drop-downs, one grey example row, the hidden marker."""
    from openpyxl import Workbook

    lang = words.get(language)
    spec = lang[kind.value]
    book = Workbook()
    sheet = book.active
    sheet.title = spec["sheet"]
    _header(sheet, spec["columns"])
    sheet.append(list(spec["example"]))
    _style_example(sheet, 2, lang["example_note"])
    _dropdowns(sheet, kind, lang, first_row=2, last_row=200)
    _marker(book, kind, language, spec["sheet"], lang["marker_note"])
    return _save(book, now)


def marked_workbook(grid_rows: Sequence[Sequence[str]], problems: Iterable[tuple[int, int, str]],
                    words: SheetWords, language: str, now: datetime, *,
                    original: bytes | None = None, sheet: str = "") -> bytes:
    """The sender's table with each problem cell filled red and its problem as a comment.

    `problems` are (row, column, text) with 1-based row and column numbers of the file. With
    `original` (an .xlsx) the sender's own workbook is marked, everything else kept; else (a
    .csv or .docx) a new workbook holds `grid_rows` (row numbers then count in it)."""
    from openpyxl import Workbook, load_workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import PatternFill

    lang = words.get(language)
    if original is not None:
        book = load_workbook(io.BytesIO(original))
        target = book[sheet] if sheet in book.sheetnames else book.worksheets[0]
    else:
        book = Workbook()
        target = book.active
        for row in grid_rows:
            target.append(list(row))
    fill = PatternFill("solid", start_color=PROBLEM_FILL, end_color=PROBLEM_FILL)
    for row, column, text in problems:
        cell = target.cell(row=max(row, 1), column=max(column, 1))
        if type(cell).__name__ == "MergedCell":  # write to the merged block's first cell
            for merged in target.merged_cells.ranges:
                if cell.coordinate in merged:
                    cell = target.cell(row=merged.min_row, column=merged.min_col)
                    break
        cell.fill = fill
        note = lang["problem_fill"] + text
        cell.comment = Comment(note if not cell.comment else f"{cell.comment.text}\n{note}",
                               "maild")
    return _save(book, now)


def record_workbook(item: Mapping[str, Any], words: SheetWords, now: datetime, tz: str, *,
                    people: Mapping[str, str] | None = None,
                    choice_names: Mapping[str, Mapping[str, str]] | None = None) -> bytes:
    """The item as the guide's table for its kind, filled with its state now; then its
    retrospective and its audit trail on their own sheets."""
    from openpyxl import Workbook

    language = item.get("language", "zh")
    lang = words.get(language)
    kind = ItemKind(item.get("kind", "task"))
    spec, record = lang[kind.value], lang["record"]
    zone = ZoneInfo(tz)
    people = people or {}
    book = Workbook()
    sheet = book.active
    sheet.title = spec["sheet"]
    _header(sheet, spec["columns"])
    for task in item.get("tasks", ()):
        sheet.append([_record_cell(item, task, role, key, lang, zone, people, choice_names or {})
                      for role, key in LAYOUTS[kind]])
    _merge_item_columns(sheet, kind, len(item.get("tasks", ())))
    retro = item.get("retrospective") or {}
    if retro:
        retro_sheet = book.create_sheet(record["retro_sheet"])
        for label, key in zip(record["retro_labels"], ("achieved", "shortfall", "improvements"),
                              strict=True):
            retro_sheet.append([label, retro.get(key, "")])
        retro_sheet.column_dimensions["A"].width = 18
        retro_sheet.column_dimensions["B"].width = 80
    audit = book.create_sheet(record["audit_sheet"])
    _header(audit, record["audit_columns"])
    for entry in item.get("audit", ()):
        detail = {k: v for k, v in (entry.get("detail") or {}).items() if k != "trimmed"}
        audit.append([local_time(entry.get("at", ""), zone), people.get(entry.get("who", ""),
                                                                    entry.get("who", "")),
                      entry.get("action", ""), entry.get("task") or "",
                      "; ".join(f"{k}={_plain(v)}" for k, v in detail.items())])
    return _save(book, now)


# ── pieces ───────────────────────────────────────────────────────────────────────────────────


def _header(sheet: Any, columns: Sequence[str]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    sheet.append(list(columns))
    fill = PatternFill("solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
    for index, cell in enumerate(sheet[1], start=1):
        cell.font = Font(bold=True)
        cell.fill = fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
        width = max(12, min(40, sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(cell.value)) + 4))
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"


def _style_example(sheet: Any, row: int, note: str) -> None:
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    for cell in sheet[row]:
        cell.font = Font(italic=True, color=EXAMPLE_FONT)
    sheet.cell(row=row, column=1).comment = Comment(note, "maild")


def _dropdowns(sheet: Any, kind: ItemKind, lang: Mapping[str, Any], first_row: int,
               last_row: int) -> None:
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    for index, (role, key) in enumerate(LAYOUTS[kind], start=1):
        if role != "choice":
            continue
        options = ",".join(lang["choices"][key])
        # A warning, not a stop: "60%" or "8月10日前（已延期）" are still read.
        rule = DataValidation(type="list", formula1=f'"{options}"', allow_blank=True,
                              showErrorMessage=True, errorStyle="warning")
        column = get_column_letter(index)
        rule.add(f"{column}{first_row}:{column}{last_row}")
        sheet.add_data_validation(rule)


def _marker(book: Any, kind: ItemKind, language: str, sheet_name: str, note: str) -> None:
    marker = book.create_sheet("maild")
    marker.append(["maild-template", kind.value, language, TEMPLATE_VERSION, sheet_name])
    marker.append([note])
    marker.sheet_state = "hidden"


def _merge_item_columns(sheet: Any, kind: ItemKind, rows: int) -> None:
    """The item-level cells (项目名称, 发起人/部门, 参与人/部门) merged down the task rows, as the
    guide prints template 1."""
    if kind is not ItemKind.PROJECT or rows < 2:
        return
    for index, (role, _key) in enumerate(LAYOUTS[kind], start=1):
        if role == "field":
            sheet.merge_cells(start_row=2, start_column=index, end_row=rows + 1,
                              end_column=index)


def _record_cell(item: Mapping[str, Any], task: Mapping[str, Any], role: str, key: str,
                 lang: Mapping[str, Any], zone: ZoneInfo, people: Mapping[str, str],
                 choice_names: Mapping[str, Mapping[str, str]]) -> str:
    record = lang["record"]
    fields = item.get("fields") or {}
    if key == "title":
        return str(item.get("title", ""))
    if key == "initiator":
        name = item.get("initiator_name") or item.get("initiator", "")
        dept = item.get("initiator_department", "")
        return f"{dept} {name}".strip() if dept else str(name)
    if key == "participants":
        return "、".join(item.get("participants") or ())
    if key in ("name",):
        return str(task.get("name", ""))
    if key in ("owner", "responder"):
        name = task.get("owner_name") or people.get(task.get("owner", ""), task.get("owner", ""))
        dept = task.get("owner_department", "")
        return f"{dept} {name}".strip() if dept else str(name)
    if key in ("deadline", "eta"):
        return local_time(task.get("deadline", ""), zone)
    if key == "status":
        state = task.get("state", "")
        word = record["status_words"].get(state, state)
        extra = {"blocked": record["blocked"], "declined": record["declined"]}.get(state)
        return record["status_extra"].format(status=word, extra=extra) if extra else word
    if key == "progress":
        return f"{int(task.get('progress') or 0)}%"
    if key == "priority":
        value = fields.get("priority", "")
        return choice_names.get("priority", {}).get(value, value)
    if key == "emergency_type":
        value = fields.get("emergency_type", "")
        return choice_names.get("emergency_type", {}).get(value, value)
    if key == "note":
        parts = [task.get("note", ""), task.get("done_note", "")]
        parts += ["；".join(filter(None, (b.get("situation"), b.get("cause"), b.get("support"))))
                  for b in task.get("blockers", ())]
        return "\n".join(p for p in parts if p)
    if key == "feedback":
        return local_time(task.get("updated_at", ""), zone)[:10]
    if key == "plan":
        return str(fields.get("plan", task.get("deliverable", "")))
    return str(fields.get(key, ""))



def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _save(book: Any, now: datetime) -> bytes:
    """The workbook's bytes with `now` as its dates, so equal input gives equal bytes."""
    from openpyxl.writer.excel import ExcelWriter

    stamp = now.replace(tzinfo=None, microsecond=0)
    book.properties.created = book.properties.modified = stamp
    book.properties.creator = "maild"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(book, archive).write_data()
    return _stable_zip(buffer.getvalue(), stamp)


def _stable_zip(data: bytes, stamp: datetime) -> bytes:
    when = (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute,
            stamp.second - stamp.second % 2)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.infolist():
            info = zipfile.ZipInfo(member.filename, date_time=when)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            target.writestr(info, source.read(member.filename))
    return out.getvalue()
