"""Table files as grids of cell texts: an attached .xlsx, .csv or .docx read like a pasted table.

The one job is `read_table_file(name, data, limits)` → `FileTable`: every table in the file as
rows of cell texts, laid out exactly as `htmltables.html_tables` lays out an HTML table (a
vertically merged cell repeats its text in each row it covers, a horizontally merged one is
empty after its first column, empty rows dropped), so `forms` reads a file and a paste alike.
Pure: bytes in, grids out.

Surprises worth knowing:
- Limits come first, before any parser sees the bytes: the file's size, then (for the zip-based
  .xlsx/.docx) the zip directory alone: member count, total uncompressed size and each member's
  compression ratio. A zip bomb is refused by its directory, never inflated. A directory that
  lies gains nothing: `zipfile` inflates a member only up to its declared size (then fails on
  the CRC), so the checked sizes bound what the parsers can unpack.
- .xlsx: the sheet named like one of the forms (or named by the caller) wins, else the first
  visible sheet. Formulas give their cached value (`data_only`); dates become `2026-08-10`
  (with a time when it has one), percentages `75%`, whole numbers without `.0`. WPS saves the
  same OOXML as Excel (inline strings, `t="str"` cells): openpyxl reads both.
- .csv: BOM, then strict UTF-8, then GB18030 (Excel on Chinese Windows saves GBK); the
  delimiter is the one the first line uses most (comma, tab, semicolon).
- .docx: every table (python-docx); its paragraphs outside tables are kept as text lines
  ("项目名称：…" written above the table).
- Old binary .xls/.doc are recognised (by name or by their OLE2 signature) but never opened:
  `TableFileError("legacy")` says to send .xlsx/.docx.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any

from maild.mail.hrcsv import decode_export
from maild.mail.htmltext import squash

XLSX, CSV, DOCX = "xlsx", "csv", "docx"
LEGACY = ("xls", "doc")
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the signature of .xls / .doc (and .msg)
_TYPES = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": XLSX,
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": DOCX,
    "text/csv": CSV, "application/csv": CSV, "text/comma-separated-values": CSV,
    "application/vnd.ms-excel": "xls", "application/msword": "doc",
}
MAX_ROWS = 500  # of one table: more is no form (and would take long to read)
MAX_COLUMNS = 40


@dataclass(frozen=True)
class Limits:
    """What a table file may be before maild opens it ([files] in the config)."""

    max_bytes: int = 5 * 2**20  # the attachment as sent
    max_members: int = 500  # files inside an .xlsx/.docx
    max_unpacked: int = 50 * 2**20  # all members inflated
    max_ratio: int = 200  # inflated / compressed, per member (a bomb reaches 1000×)


@dataclass(frozen=True)
class Grid:
    """One table: rows of cell texts, and where each came from (for marking cells)."""

    rows: tuple[tuple[str, ...], ...]
    at: tuple[int, ...] = ()  # the file's 1-based row number of each row
    sheet: str = ""  # the sheet's name (.xlsx), or "table N" (.docx)


@dataclass(frozen=True)
class FileTable:
    """What a table file holds."""

    name: str
    kind: str  # xlsx | csv | docx
    grids: tuple[Grid, ...]
    lines: tuple[str, ...] = ()  # text outside the tables (.docx paragraphs)
    marker: dict[str, str] = field(default_factory=dict)  # maild's hidden version marker
    data: bytes = field(default=b"", repr=False)  # the file as sent (to mark it up in reply)


class TableFileError(Exception):
    """A table file maild will not read; `code` says why in one word, `detail` the numbers."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code  # too_large | zip_bomb | legacy | unreadable | empty
        self.detail = detail


def kind_of(filename: str, content_type: str = "") -> str | None:
    """xlsx / csv / docx / xls / doc from the name, else the MIME type; None for other files."""
    suffix = filename.rpartition(".")[2].lower() if "." in filename else ""
    if suffix in (XLSX, CSV, DOCX, *LEGACY):
        return suffix
    if suffix in ("xlsm",):
        return XLSX
    return _TYPES.get(content_type.split(";")[0].strip().lower())


def check_limits(kind: str, data: bytes, limits: Limits) -> None:
    """Raise TableFileError when `data` is over a limit; reads only the zip directory."""
    if len(data) > limits.max_bytes:
        raise TableFileError("too_large", f"{len(data)} bytes > {limits.max_bytes}")
    if data.startswith(_OLE2):
        raise TableFileError("legacy", "an OLE2 (.xls/.doc) file")
    if kind not in (XLSX, DOCX):
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise TableFileError("unreadable", f"not a zip file: {exc}") from None
    if len(members) > limits.max_members:
        raise TableFileError("zip_bomb", f"{len(members)} members > {limits.max_members}")
    total = sum(m.file_size for m in members)
    if total > limits.max_unpacked:
        raise TableFileError("zip_bomb", f"{total} bytes unpacked > {limits.max_unpacked}")
    for member in members:
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size > 64 * 1024 and ratio > limits.max_ratio:
            raise TableFileError("zip_bomb", f"{member.filename}: ratio {ratio:.0f} > "
                                             f"{limits.max_ratio}")


def read_table_file(filename: str, data: bytes, limits: Limits | None = None, *,
                    content_type: str = "", sheet_names: Sequence[str] = ()) -> FileTable:
    """Every table in one attached file. `sheet_names`: names that pick a sheet (the forms'
    names, or one the sender wrote), tried in order before the first visible sheet."""
    limits = limits or Limits()
    kind = kind_of(filename, content_type)
    if kind is None:
        raise TableFileError("unreadable", f"not a table file: {filename}")
    if kind in LEGACY:
        raise TableFileError("legacy", kind)
    check_limits(kind, data, limits)
    if not data.strip():
        raise TableFileError("empty")
    try:
        if kind == XLSX:
            table = _read_xlsx(filename, data, limits, sheet_names)
        elif kind == DOCX:
            table = _read_docx(filename, data, limits)
        else:
            table = _read_csv(filename, data)
        return replace(table, data=data)
    except TableFileError:
        raise
    except Exception as exc:  # a damaged file must be answered, never crash the intake
        raise TableFileError("unreadable", f"{type(exc).__name__}: {exc}"[:200]) from None


# ── cell values ──────────────────────────────────────────────────────────────────────────────


def cell_text(value: Any, number_format: str = "General") -> str:
    """A cell's value as a person reads it in Excel."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, float | int):
        if "%" in (number_format or ""):
            return f"{value * 100:g}%"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return f"{value:g}" if isinstance(value, float) else str(value)
    return squash(str(value))


def _trimmed(rows: list[list[str]], at: list[int]) -> tuple[tuple[tuple[str, ...], ...],
                                                            tuple[int, ...]]:
    """Empty rows dropped and trailing empty columns cut, as `html_tables` does."""
    kept = [(row, number) for row, number in zip(rows, at, strict=True) if any(row)]
    width = max((max((i + 1 for i, c in enumerate(row) if c), default=0) for row, _ in kept),
                default=0)
    return (tuple(tuple(row[:width]) + ("",) * (width - len(row[:width])) for row, _ in kept),
            tuple(number for _, number in kept))


# ── .xlsx ────────────────────────────────────────────────────────────────────────────────────

MARKER_SHEET = "maild"  # maild's templates carry a hidden sheet: A1 "maild-template", B1 kind …


def _read_xlsx(filename: str, data: bytes, limits: Limits,
               sheet_names: Sequence[str]) -> FileTable:
    from openpyxl import load_workbook  # ~150 ms to import: only when a workbook arrives

    # Read-only: only the picked sheet is parsed, streamed, and only its first MAX_ROWS rows
    # (a full load parses every sheet: 1 s for a half-megabyte workbook with a data sheet).
    with warnings.catch_warnings():  # "no default style" from WPS files: harmless
        warnings.simplefilter("ignore", UserWarning)
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True,
                             keep_links=False, keep_vba=False)
    try:
        marker = _marker(book)
        sheet = _pick_sheet(book, [*([marker["sheet"]] if marker.get("sheet") else []),
                                   *sheet_names])
        if sheet is None:
            raise TableFileError("empty", "no visible sheet")
        rows, at = _sheet_rows(sheet, _merged_ranges(book, sheet))
        cells, numbers = _trimmed(rows, at)
        return FileTable(filename, XLSX, (Grid(cells, numbers, sheet.title),), (), marker)
    finally:
        book.close()


def _marker(book: Any) -> dict[str, str]:
    if MARKER_SHEET not in book.sheetnames:
        return {}
    sheet = book[MARKER_SHEET]
    values = [cell_text(c.value) for c in next(sheet.iter_rows(min_row=1, max_row=1), ())]
    if not values or values[0] != "maild-template":
        return {}
    keys = ("tag", "kind", "language", "version", "sheet")
    return {k: v for k, v in zip(keys, values, strict=False) if v}


def _pick_sheet(book: Any, names: Sequence[str]) -> Any:
    visible = [s for s in book.worksheets
               if getattr(s, "sheet_state", "visible") == "visible" and s.title != MARKER_SHEET]
    wanted = [n.strip().casefold() for n in names if n.strip()]
    for name in wanted:
        for sheet in visible:
            if sheet.title.strip().casefold() == name:
                return sheet
    for name in wanted:
        for sheet in visible:
            if name in sheet.title.strip().casefold() or sheet.title.strip().casefold() in name:
                return sheet
    return visible[0] if visible else None


_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s[^>]*?ref="([A-Z]{1,3}[0-9]{1,7}):([A-Z]{1,3}[0-9]{1,7})"')


def _merged_ranges(book: Any, sheet: Any) -> list[tuple[int, int, int, int]]:
    """(min_row, min_col, max_row, max_col) of the sheet's merged cells. A read-only sheet does
    not read them: they are the <mergeCell> elements after its rows, found in its part."""
    from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

    archive, path = getattr(book, "_archive", None), getattr(sheet, "_worksheet_path", None)
    if archive is None or path is None:
        return []
    part = archive.read(path)
    start = part.rfind(b"<mergeCells")
    if start < 0:
        start = part.rfind(b":mergeCells")  # a prefixed namespace (x:mergeCells)
    found = []
    for first, last in _MERGE.findall(part, start) if start >= 0 else ():
        (c1, r1), (c2, r2) = (coordinate_from_string(x.decode()) for x in (first, last))
        found.append((r1, column_index_from_string(c1), r2, column_index_from_string(c2)))
    return found


def _sheet_rows(sheet: Any, merged: Sequence[tuple[int, int, int, int]]
                ) -> tuple[list[list[str]], list[int]]:
    rows: list[list[str]] = []
    for row in sheet.iter_rows(min_row=1, max_row=MAX_ROWS, max_col=MAX_COLUMNS):
        cells = [c for c in row if getattr(c, "column", None) is not None]
        number = next((c.row for c in cells), len(rows) + 1)
        while len(rows) + 1 < number:  # rows the file leaves out are empty
            rows.append([])
        values = [""] * MAX_COLUMNS
        for cell in cells:
            if cell.column <= MAX_COLUMNS:
                values[cell.column - 1] = cell_text(cell.value,
                                                    getattr(cell, "number_format", "General"))
        rows.append(values)
    rows = [r + [""] * (MAX_COLUMNS - len(r)) for r in rows]
    numbers = list(range(1, len(rows) + 1))
    for top, left, bottom, right in merged:
        if top > len(rows) or left > MAX_COLUMNS:
            continue
        text = rows[top - 1][left - 1]
        for r in range(top, min(bottom, len(rows)) + 1):
            for c in range(left, min(right, MAX_COLUMNS) + 1):
                # Down a merged block the text repeats (a rowspan); across it, only the first
                # column has it (a colspan): as `htmltables` expands an HTML table.
                rows[r - 1][c - 1] = text if c == left else ""
    return rows, numbers


# ── .csv ─────────────────────────────────────────────────────────────────────────────────────


def _read_csv(filename: str, data: bytes) -> FileTable:
    text = decode_export(data)
    first = text.split("\n", 1)[0]
    delimiter = max((",", "\t", ";"), key=first.count)
    rows: list[list[str]] = []
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), start=1):
        if number > MAX_ROWS:
            break
        rows.append([squash(cell) for cell in row[:MAX_COLUMNS]])
    cells, numbers = _trimmed(rows, list(range(1, len(rows) + 1)))
    if not cells:
        raise TableFileError("empty", "no rows")
    return FileTable(filename, CSV, (Grid(cells, numbers, ""),))


# ── .docx ────────────────────────────────────────────────────────────────────────────────────


def _read_docx(filename: str, data: bytes, limits: Limits) -> FileTable:
    from docx import Document  # imported only when a Word file arrives

    document = Document(io.BytesIO(data))
    grids = []
    for number, table in enumerate(document.tables, start=1):
        rows: list[list[str]] = []
        for row in table.rows[:MAX_ROWS]:
            texts: list[str] = []
            tcs: list[Any] = []
            for cell in row.cells[:MAX_COLUMNS]:
                # python-docx hands a merged cell back once per grid column it spans, and a
                # vertically merged one in every row: across, only the first keeps its text.
                same_as_left = bool(tcs) and cell._tc is tcs[-1]
                texts.append("" if same_as_left else squash(cell.text))
                tcs.append(cell._tc)
            rows.append(texts)
        cells, at = _trimmed(rows, list(range(1, len(rows) + 1)))
        if cells:
            grids.append(Grid(cells, at, f"table {number}"))
    lines = tuple(p.text for p in document.paragraphs if p.text.strip())
    if not grids and not lines:
        raise TableFileError("empty", "no table and no text")
    return FileTable(filename, DOCX, tuple(grids), lines)
