"""Write a closed item to the archive on disk, and read the archive's index back (lessons page).

The archive is files, never part of the live database, so its size costs intake nothing:

    ARCHIVE_ROOT/
      index.jsonl                       one JSON line per archived item, append-only
      .ids/MD-0012                      text: the item's folder name (O(1) lookup by id)
      .tmp/                             folders and markers being written (empty when idle)
      2026-Q3-Q3新品推广项目/            year-quarter of closing (item's tz) + safe title
        record.md  record.html  item.json  01-<subject>.eml  02-…eml

Surprises:
- `write_archive` is atomic and idempotent. The folder is built as `.tmp/<id>-<random>`, every
  file and the directory fsynced, then `os.rename`d into place: a crash leaves either no folder or
  a complete one (plus a leftover in `.tmp/` that `clean_partial`, called at start-up, removes;
  it lists only `.tmp/`, never the 50,000 records). The
  index line is appended after the rename, the `.ids` marker written last. A second call for the
  same id returns the existing folder and writes nothing; after a crash between the rename and the
  marker, it finds the complete folder by name, appends the index line again (`load_index` keeps
  one line per id, the last) and writes the marker.
- Idempotence by name needs the same `closed_at` both times: pass the item's stored `closed_at`,
  not "now".
- Folder names are safe on any filesystem: no separators, `..`, control or bidi characters,
  Windows-reserved characters or names, no trailing dots/spaces, at most 80 characters and 160
  UTF-8 bytes for the title. Records always start with a year, so no title can collide with
  `index.jsonl`, `.ids` or `.tmp`.
- `load_index` tolerates a torn last line (a crash mid-append); the next append starts on a new
  line, so it does not glue itself to the torn one.
- Nothing here reads the clock: the closing time and "since" are passed in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from maild.adapters.files import atomic_write_bytes, fsync_dir
from maild.mail.record import RecordRenderer

INDEX_FILE = "index.jsonl"
IDS_DIR = ".ids"
TMP_DIR = ".tmp"
TITLE_MAX_CHARS = 80
TITLE_MAX_BYTES = 160
EMAIL_NAME_MAX_BYTES = 80
LESSONS_LIMIT = 200  # newest items on the lessons page; None for all (50k items: a 70 MB page)
_ILLEGAL = re.compile(r'[<>:"/\\|?*]')
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{p}{n}" for p in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")})


# --------------------------------------------------------------------------------------------
# Names (pure)


def quarter_of(when: datetime) -> str:
    """"Q1" … "Q4" for the calendar quarter of `when` (as given: convert to local time first)."""
    return f"Q{(when.month - 1) // 3 + 1}"


def safe_name(text: str, *, max_chars: int = TITLE_MAX_CHARS,
              max_bytes: int = TITLE_MAX_BYTES) -> str:
    """`text` as one path component safe on Linux, macOS and Windows; "" when nothing is left."""
    text = unicodedata.normalize("NFC", str(text))
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch in _BIDI or category in ("Cs", "Co", "Cn") or (category == "Cc" and ch not in "\t\n\r"):
            continue
        kept.append(" " if ch in "\t\n\r" or category == "Zs" else ch)
    text = _ILLEGAL.sub("_", "".join(kept))
    text = re.sub(r"\.{2,}", ".", text)  # no "..", anywhere
    text = re.sub(r"_{2,}", "_", re.sub(r" {2,}", " ", text))
    text = text.strip(" ._-")
    text = _cut(text, max_chars, max_bytes).rstrip(" ._-")
    if text.split(".")[0].upper().rstrip(" ") in _RESERVED:
        text = f"_{text}"
    return text


def _cut(text: str, max_chars: int, max_bytes: int) -> str:
    """At most `max_chars` characters and `max_bytes` UTF-8 bytes, cut between characters."""
    text = text[:max_chars]
    while len(text.encode("utf-8")) > max_bytes:
        text = text[:-1]
    return text


def folder_name(item: Mapping[str, Any], closed_at: datetime, *, tz: str | None = None) -> str:
    """"2026-Q3-Q3新品推广项目": year and quarter of closing (in `tz` when given), safe title.

    A title with nothing safe left falls back to the item's id. Collisions are resolved by
    `write_archive` (suffix "-<id>"), not here.
    """
    if tz is not None:
        closed_at = closed_at.astimezone(ZoneInfo(tz))
    title = safe_name(str(item.get("title") or "")) or safe_name(str(item.get("id") or "")) or "item"
    return f"{closed_at.year}-{quarter_of(closed_at)}-{title}"


def email_file_names(emails: Sequence[tuple[str, bytes]]) -> list[str]:
    """"01-<safe hint>.eml", "02-…": numbered in the order given, so names never collide."""
    width = max(2, len(str(len(emails))))
    names = []
    for number, (hint, _raw) in enumerate(emails, start=1):
        stem = safe_name(re.sub(r"\.eml$", "", str(hint), flags=re.IGNORECASE),
                         max_chars=60, max_bytes=EMAIL_NAME_MAX_BYTES) or "email"
        names.append(f"{number:0{width}d}-{stem}.eml")
    return names


def index_entry(item: Mapping[str, Any], folder: str, closed_at: datetime, *, tz: str
                ) -> dict[str, Any]:
    """The one line `index.jsonl` keeps for an archived item: what lessons and `show` need."""
    local = closed_at.astimezone(ZoneInfo(tz))
    retro = item.get("retrospective") or {}
    return {
        "id": str(item.get("id", "")), "kind": item.get("kind", ""),
        "title": str(item.get("title", "")), "folder": folder,
        "closed_at": local.isoformat(), "quarter": f"{local.year}-{quarter_of(local)}",
        "initiator": item.get("initiator", ""), "initiator_name": item.get("initiator_name", ""),
        "language": item.get("language", ""),
        "achieved": retro.get("achieved", ""), "shortfall": retro.get("shortfall", ""),
        "improvements": retro.get("improvements", ""),
    }


def archive_files(item: Mapping[str, Any], emails: Sequence[tuple[str, bytes]], *, tz: str,
                  renderer: RecordRenderer, people_names: Mapping[str, str] | None = None,
                  extra_files: Sequence[tuple[str, bytes]] = ()) -> list[tuple[str, bytes]]:
    """Every file of an item's folder, as (name, bytes): the record, `extra_files` (the
    guide's table, 记录表.xlsx), the item and its emails. Pure."""
    names = email_file_names(emails)
    markdown, html = renderer.record(item, tz=tz, people_names=people_names, email_files=names)
    item_json = json.dumps(item, ensure_ascii=False, indent=2) + "\n"
    return [("record.md", markdown.encode("utf-8")), ("record.html", html.encode("utf-8")),
            ("item.json", item_json.encode("utf-8")), *extra_files,
            *((name, bytes(raw)) for name, (_hint, raw) in zip(names, emails, strict=True))]


# --------------------------------------------------------------------------------------------
# Writing (thin I/O)


def write_archive(root: Path, item: Mapping[str, Any], emails: Sequence[tuple[str, bytes]], *,
                  closed_at: datetime, tz: str, renderer: RecordRenderer | None = None,
                  people_names: Mapping[str, str] | None = None,
                  extra_files: Sequence[tuple[str, bytes]] = ()) -> Path:
    """Archive `item` (with its original emails, as (name hint, raw bytes)) under `root`.

    Returns the item's folder. Idempotent by item id; atomic (see the module docstring).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    item_id = str(item["id"])
    existing = archived_folder(root, item_id)
    if existing is not None:
        return existing
    base = folder_name(item, closed_at, tz=tz)
    folder = _recovered(root, base, item_id)
    if folder is None:
        folder = _free_name(root, base, item_id)
        files = archive_files(item, emails, tz=tz, renderer=renderer or RecordRenderer(),
                              people_names=people_names, extra_files=extra_files)
        _write_folder(root, folder, item_id, files)
    append_index(root, index_entry(item, folder, closed_at, tz=tz))
    _write_marker(root, item_id, folder)
    return root / folder


def archived_folder(root: Path, item_id: str) -> Path | None:
    """The folder of an archived item, from its `.ids` marker, or None. O(1) in archive size."""
    marker = Path(root) / IDS_DIR / (safe_name(item_id) or "_")
    try:
        folder = marker.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    path = Path(root) / folder
    return path if folder and "/" not in folder and path.is_dir() else None


def read_archived_item(root: Path, item_id: str) -> dict[str, Any] | None:
    """The stored `item.json` of an archived item (for `maild show`), or None."""
    folder = archived_folder(root, item_id)
    if folder is None:
        return None
    return json.loads((folder / "item.json").read_text(encoding="utf-8"))


def clean_partial(root: Path) -> list[Path]:
    """Remove what a crash left in `root/.tmp/`; returns what was removed. Call at start-up."""
    removed = []
    tmp_dir = Path(root) / TMP_DIR
    for path in sorted(tmp_dir.iterdir()) if tmp_dir.is_dir() else ():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def append_index(root: Path, entry: Mapping[str, Any]) -> None:
    """Append one line to `root/index.jsonl` and fsync it (after a torn line, on a new line)."""
    path = Path(root) / INDEX_FILE
    line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = "\n" + line
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync_dir(path.parent)


def _recovered(root: Path, base: str, item_id: str) -> str | None:
    """A complete folder for `item_id` left by a run that crashed before writing its marker."""
    for name in (base, f"{base}-{safe_name(item_id)}"):
        try:
            stored = json.loads((root / name / "item.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(stored, dict) and str(stored.get("id")) == item_id:
            return name
    return None


def _free_name(root: Path, base: str, item_id: str) -> str:
    candidates = [base, f"{base}-{safe_name(item_id) or 'item'}"]
    number = 2
    while True:
        for name in candidates:
            if not os.path.lexists(root / name):
                return name
        candidates = [f"{base}-{safe_name(item_id) or 'item'}-{number}"]
        number += 1


def _write_folder(root: Path, folder: str, item_id: str, files: Sequence[tuple[str, bytes]]
                  ) -> None:
    (root / TMP_DIR).mkdir(exist_ok=True)
    tmp = root / TMP_DIR / f"{safe_name(item_id, max_chars=40) or 'item'}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for name, data in files:
            with open(tmp / name, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        os.rename(tmp, root / folder)
    except Exception:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(root)


def _write_marker(root: Path, item_id: str, folder: str) -> None:
    ids = root / IDS_DIR
    ids.mkdir(exist_ok=True)
    atomic_write_bytes(ids / (safe_name(item_id) or "_"), folder.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Reading the index


def _scan(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(byte offset, entry) for each readable line of an index file; a torn line is skipped."""
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        return
    with fh:
        offset = 0
        for raw in fh:
            try:
                entry = json.loads(raw)
            except ValueError:
                entry = None
            if isinstance(entry, dict) and entry.get("id"):
                yield offset, entry
            offset += len(raw)


def iter_index(root: Path) -> Iterator[dict[str, Any]]:
    """Index entries in file order, line by line; unreadable lines (a torn last one) skipped."""
    return (entry for _, entry in _scan(Path(root) / INDEX_FILE))


def load_index(root: Path) -> list[dict[str, Any]]:
    """One entry per archived item id (the last line wins), in the order first archived."""
    entries: dict[str, dict[str, Any]] = {}
    for entry in iter_index(root):
        entries[str(entry["id"])] = entry
    return list(entries.values())


def _closed_key(entry: Mapping[str, Any]) -> float:
    try:
        return datetime.fromisoformat(str(entry.get("closed_at"))).timestamp()
    except (TypeError, ValueError):
        return float("-inf")


def lessons_entries(root: Path, *, since: datetime | None = None,
                    limit: int | None = LESSONS_LIMIT) -> list[dict[str, Any]]:
    """Archived items with something to learn from (improvements or a shortfall), newest first:
    those closed at or after `since` (aware), at most `limit` (None: all).

    Memory stays small at any archive size: the scan keeps (closing time, offset) per item id,
    then re-reads only the lines it returns.
    """
    path = Path(root) / INDEX_FILE
    floor = since.timestamp() if since is not None else float("-inf")
    chosen: dict[str, tuple[float, int]] = {}
    for offset, entry in _scan(path):
        key = _closed_key(entry)
        if key >= floor and (entry.get("improvements") or entry.get("shortfall")):
            chosen[str(entry["id"])] = (key, offset)
        else:  # a later line for the same id wins, even when it has nothing to learn
            chosen.pop(str(entry["id"]), None)
    ordered = sorted(chosen.values(), reverse=True)
    entries = []
    with open(path, "rb") if ordered else contextlib.nullcontext() as fh:
        for _, offset in ordered[:limit]:
            fh.seek(offset)
            entries.append(json.loads(fh.readline()))
    return entries


def lessons(root: Path, *, language: str, since: datetime | None = None,
            limit: int | None = LESSONS_LIMIT, renderer: RecordRenderer | None = None
            ) -> tuple[str, str]:
    """(markdown, html) knowledge page of the 可优化点 of closed items, from the index only."""
    entries = lessons_entries(root, since=since, limit=limit)
    return (renderer or RecordRenderer()).lessons(entries, language=language)
