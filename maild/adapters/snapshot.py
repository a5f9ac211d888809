"""The embedded store's snapshot file: a valid TinyDB database (`{table: {doc_id: document}}`)
written one document per line, key first, with a directory of its keys beside it.

`write` writes a snapshot and its directory (`live.json.keys`: per table, every key and where its
document is, or the document itself when small) as temp files, fsyncs and renames them. `read`
loads a snapshot into `{table: {key: value}}` (a value is the document's bytes, or a reference
`ref(file, offset, length)` for documents over `INLINE_MAX`) by the fastest way that is safe:
1. the directory, when it belongs to this snapshot (the same random token in both, the same
   size): a few bulk JSON decodes, no per-document work;
2. else a scan of the lines (a renamed snapshot whose directory did not land, or a reader that
   wants a few tables: it stops once it has them);
3. else (stock TinyDB, an older maild) the slow path that parses any layout.

Surprises:
- The snapshot is registered as file number 1 by its reader, so the directory holds finished
  references (see `ref`).
- A torn or stale directory is never trusted: it only ever speeds things up.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from maild.adapters.files import fsync_dir

INLINE_MAX = 512
STORE_TABLE = "_store"  # the store's own facts: format version, journal, this snapshot's token
# tables whose documents are never held in memory, whatever their size: read once at start-up
# (due moments), by the operator's listings (summaries) or by a schedule run (its memory)
NOT_HELD = frozenset({"index", "due", "schedule"})


def inline_max(table: str) -> int:
    """The largest document of `table` held in memory once committed (larger: a reference)."""
    return -1 if table in NOT_HELD else INLINE_MAX
DIRECTORY_SUFFIX = ".keys"
DIRECTORY_CHUNK = 10_000  # entries per line of the directory: a reader decodes one at a time
HEADER_MAX = 1 << 20  # the directory's last line (its header) is read from this much of its end
SNAPSHOT_NUMBER = 1  # the file number a reader gives the snapshot (its first file)
LAST_TABLES = frozenset({"items", "outbox", "messages"})  # big tables go last, so a reader that
# wants only small ones stops early
_DECODER = json.JSONDecoder()
_REF_LEN, _REF_OFF = 32, 40
_JSTR = rb'"((?:[^"\\]|\\.)*)"'
_FIRST = re.compile(rb'\{' + _JSTR + rb':\{\n\Z')
_NEXT = re.compile(rb'\},' + _JSTR + rb':\{\n\Z')
_DOC = re.compile(rb'"(\d+)":')

Value = bytes | int  # a document's JSON held in memory, or a reference to it in a file
Tables = dict[str, dict[str, Value]]


class NotTables(ValueError):
    """Valid JSON, but not `{table: {doc_id: {document}}}`."""


def ref(file: int, offset: int, length: int) -> int:
    """A reference to a document: (file << 72) | (offset << 32) | length."""
    return (file << (_REF_OFF + _REF_LEN)) | (offset << _REF_LEN) | length


def ref_parts(value: int) -> tuple[int, int, int]:
    """(file, offset, length) of a reference."""
    return (value >> (_REF_OFF + _REF_LEN), (value >> _REF_LEN) & ((1 << _REF_OFF) - 1),
            value & ((1 << _REF_LEN) - 1))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode_doc(doc: Mapping[str, Any], key_field: str | None) -> bytes:
    """A document as stored: compact UTF-8 JSON, its key field first (TypeError for non-JSON)."""
    if key_field is not None and next(iter(doc), key_field) != key_field and key_field in doc:
        doc = {key_field: doc[key_field], **doc}
    return dumps(doc).encode("utf-8")


def unquote(raw: bytes) -> str:
    return json.loads(b'"' + raw + b'"') if b"\\" in raw else raw.decode("utf-8")


# -- writing -----------------------------------------------------------------------------------


def write(path: Path, frozen: Mapping[str, Mapping[str, Value]], read: Callable[[Value], bytes],
          keys: Mapping[str, str], first: str, token: str,
          crash_hook: Callable[[str], None] | None = None
          ) -> tuple[int, dict[str, list[tuple[str, Value, int]]]]:
    """Write `frozen` (table `first` first, the big ones last) as the snapshot at `path`, and its
    directory; returns the snapshot's size and, per table, (key, value, offset) of each document
    over `INLINE_MAX` (so the writer can point references at the new file)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    side = path.with_name(path.name + DIRECTORY_SUFFIX)
    side_tmp = path.with_name(f"{side.name}.{os.getpid()}.tmp")
    moved: dict[str, list[tuple[str, Value, int]]] = {}
    where: dict[str, list[list[int]]] = {}  # table -> [offset, length] of its directory lines
    try:
        with open(tmp, "wb") as fh, open(side_tmp, "wb") as side_fh:
            offset = 0
            block: list[bytes] = []
            names = [first] + sorted((n for n in frozen if n != first),
                                     key=lambda n: n in LAST_TABLES)

            def chunk(name: str, keys_of: list[str], values: list[Any]) -> None:
                line = dumps([keys_of, values]).encode()
                where.setdefault(name, []).append([side_fh.tell(), len(line)])
                side_fh.write(line + b"\n")

            for t, name in enumerate(names):
                docs = frozen.get(name, {})
                opener = (b"{" if t == 0 else b"},") + dumps(name).encode() + b":{\n"
                block.append(opener)
                offset += len(opener)
                field = keys.get(name)
                prefix = None if field is None else b'{"' + field.encode() + b'":'
                entries = list(docs.items())
                limit = inline_max(name)
                keys_of: list[str] = []
                values: list[Any] = []
                for n, (key, value) in enumerate(entries, 1):
                    text = read(value)
                    if prefix is not None and not text.startswith(prefix):
                        text = encode_doc(json.loads(text), field)
                    head = b'"%d":' % n
                    tail = b",\n" if n < len(entries) else b"\n"
                    keys_of.append(key)
                    if len(text) > limit:
                        moved.setdefault(name, []).append((key, value, offset + len(head)))
                        values.append(ref(SNAPSHOT_NUMBER, offset + len(head), len(text)))
                    else:
                        values.append(text.decode("utf-8"))
                    block += (head, text, tail)
                    offset += len(head) + len(text) + len(tail)
                    if len(block) > 3000:
                        fh.write(b"".join(block))
                        block.clear()
                    if len(values) >= DIRECTORY_CHUNK:  # a chunk at a time: no list of all
                        chunk(name, keys_of, values)
                        keys_of, values = [], []
                chunk(name, keys_of, values)
            block.append(b"}}\n")
            offset += len(block[-1])
            fh.write(b"".join(block))
            fh.flush()
            os.fsync(fh.fileno())
            # the header goes last: the directory is written as the snapshot is
            side_fh.write(dumps({"snapshot": token, "size": offset, "tables": where}).encode()
                          + b"\n")
            side_fh.flush()
            os.fsync(side_fh.fileno())
        if crash_hook is not None:
            crash_hook("mid_compaction")
        os.replace(tmp, path)
        os.replace(side_tmp, side)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        side_tmp.unlink(missing_ok=True)
        raise
    return offset, moved


# -- reading -----------------------------------------------------------------------------------


def read(path: Path, fd: int, keys: Mapping[str, str], wanted: set[str] | None,
         store_table: str) -> Tables:
    """The snapshot open on `fd` (file number `SNAPSHOT_NUMBER`) as tables; see the module doc.
    Raises `NotTables`, `UnicodeDecodeError` or `ValueError` for what it cannot read."""
    size = os.fstat(fd).st_size
    with os.fdopen(os.dup(fd), "rb") as fh:
        found = _read_directory(path, fh, size, wanted, store_table)
        if found is not None:
            return found
        fh.seek(0)
        try:
            return scan_lines(fh, SNAPSHOT_NUMBER, keys, wanted)
        except NotTables:
            pass
        fh.seek(0)
        raw = fh.read()
    if not raw.strip():
        raise NotTables(f"empty ({len(raw)} bytes)")
    text = raw.decode("utf-8")
    del raw
    tables = parse_tables(text, keys)
    return {name: docs for name, docs in tables.items() if wanted is None or name in wanted}


def _read_directory(path: Path, fh: Any, size: int, wanted: set[str] | None,
                    store_table: str) -> Tables | None:
    side = path.with_name(path.name + DIRECTORY_SUFFIX)
    try:
        directory = open(side, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with directory:
        end = directory.seek(0, os.SEEK_END)
        directory.seek(max(0, end - HEADER_MAX))
        tail = directory.read()
        if not tail.endswith(b"\n"):
            return None  # torn: never trusted
        try:
            head = json.loads(tail[:-1].rsplit(b"\n", 1)[-1])
        except ValueError:
            return None
        if (not isinstance(head, dict) or head.get("size") != size
                or store_table not in head.get("tables", {})):
            return None  # another snapshot's, or another format's: never trusted
        token = None
        first = fh.readline()
        if first != b'{"' + store_table.encode() + b'":{\n':
            return None
        for line in fh:  # the store's own table comes first and is short
            if not line.startswith(b'"'):
                break
            doc = json.loads(line[_DOC.match(line).end():].rstrip(b",\n"))  # type: ignore[union-attr]
            if doc.get("key") == "snapshot":
                token = doc.get("value")
        if token is None or token != head.get("snapshot"):
            return None
        tables: Tables = {}
        for name, chunks in head.get("tables", {}).items():
            if wanted is not None and name not in wanted:
                continue
            docs = tables.setdefault(name, {})
            for at, length in chunks:
                directory.seek(at)
                line = directory.read(length + 1)
                if len(line) != length + 1 or not line.endswith(b"\n"):
                    return None  # torn: never trusted
                names, values = json.loads(line)
                docs.update(zip(names, [v.encode("utf-8") if type(v) is str else v
                                        for v in values], strict=True))
        return tables


def scan_lines(fh: Any, number: int, keys: Mapping[str, str], wanted: set[str] | None) -> Tables:
    """The fast path: one document per line, key first (anything else raises `NotTables`)."""
    tables: Tables = {}
    offset = 0
    first = fh.readline()
    offset += len(first)
    if first == b"{}\n":
        if fh.readline():
            raise NotTables("data after the end")
        return tables
    match = _FIRST.match(first)
    if match is None:
        raise NotTables("not written one document per line")
    name = unquote(match.group(1))
    wanted_left = None if wanted is None else set(wanted)
    while True:
        if wanted_left is not None:
            if not wanted_left:
                return tables  # a reader has all it asked for: the rest is not read
            wanted_left.discard(name)
        docs: dict[str, Value] | None = None
        if wanted is None or name in wanted:
            docs = tables.setdefault(name, {})
        field = keys.get(name)
        limit = inline_max(name)
        pattern = (re.compile(rb'\{"' + re.escape(field.encode()) + rb'":' + _JSTR)
                   if field is not None else None)
        ended = False
        for line in fh:
            start = offset
            offset += len(line)
            if line[:1] == b'"':
                if docs is None:
                    continue
                head = _DOC.match(line)
                if head is None:
                    raise NotTables("a document line without its id")
                end = len(line) - (2 if line.endswith(b",\n") else 1)
                begin = head.end()
                if pattern is None:
                    key = head.group(1).decode()
                else:
                    found = pattern.match(line, begin)
                    if found is None:
                        raise NotTables("a document without its key first")
                    key = unquote(found.group(1))
                if end - begin > limit:
                    docs[key] = ref(number, start + begin, end - begin)
                else:
                    docs[key] = line[begin:end]
                continue
            if line == b"}}\n":
                ended = True
                break
            match = _NEXT.match(line)
            if match is None:
                raise NotTables("an unexpected line")
            name = unquote(match.group(1))
            break
        else:
            raise NotTables("the file ends early")
        if ended:
            if fh.read(1):
                raise NotTables("data after the end")
            return tables


# -- the slow path: any TinyDB layout -------------------------------------------------------



def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def _expect(text: str, pos: int, wanted: str) -> int:
    if text[pos:pos + 1] != wanted:
        if pos >= len(text):
            raise json.JSONDecodeError(f"expected {wanted!r}", text, pos)
        raise NotTables(f"expected {wanted!r} at offset {pos}")
    return pos + 1


def _object(text: str, pos: int, member: Callable[[str, int], int]) -> int:
    pos = _skip(text, _expect(text, _skip(text, pos), "{"))
    if text[pos:pos + 1] == "}":
        return pos + 1
    while True:
        name, pos = json.decoder.scanstring(text, _expect(text, pos, '"'))
        pos = _skip(text, _expect(text, _skip(text, pos), ":"))
        pos = _skip(text, member(name, pos))
        if text[pos:pos + 1] == "}":
            return pos + 1
        pos = _skip(text, _expect(text, pos, ","))


def parse_tables(text: str, keys: Mapping[str, str]) -> dict[str, dict[str, Value]]:
    """Any `{table: {doc_id: {document}}}` → `{table: {key: document bytes}}`, one document at a
    time. Raises `json.JSONDecodeError` for invalid JSON and `NotTables` for another shape."""
    tables: dict[str, dict[str, Value]] = {}

    def table(name: str, pos: int) -> int:
        docs: dict[str, Value] = {}
        field = keys.get(name)

        def document(doc_id: str, pos: int) -> int:
            doc, end = _DECODER.raw_decode(text, pos)
            if not isinstance(doc, dict):
                raise NotTables(f"document {doc_id} of table {name!r} is not an object")
            key = doc_id if field is None else doc.get(field)
            if not isinstance(key, str):
                raise NotTables(f"document {doc_id} of table {name!r} has no {field!r}")
            docs[key] = encode_doc(doc, field)
            return end

        end = _object(text, pos, document)
        tables[name] = docs
        return end

    end = _skip(text, _object(text, 0, table))
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return tables


# -- the engine ---------------------------------------------------------------------------------

