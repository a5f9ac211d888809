"""The embedded store's journal file format: records of changed documents, checksummed.

A record is a 12-byte header (`MDJ1`, payload length, CRC-32 of the payload) and a payload of
lines `["table","key",DOCUMENT]` (`null` for a removal; table and key ASCII-escaped, the document
as stored). `write_record` writes one with `pwritev` (no joined copy of its lines); `records`
reads them back and raises `Damaged` at the first that does not check out, saying whether it is
a torn tail (no valid record after it: a write that never finished) or damage in the middle.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from collections.abc import Iterator

from maild.adapters.snapshot import unquote


class CorruptDatabaseError(Exception):
    """The database cannot be read; maild refuses to start empty over it."""


HEADER = struct.Struct("<4sII")  # magic, payload length, crc32 of the payload
MAGIC = b"MDJ1"
_JSTR = rb'"((?:[^"\\]|\\.)*)"'
_RECORD_LINE = re.compile(rb'\[' + _JSTR + rb',' + _JSTR + rb',')


class Damaged(Exception):
    """A record that does not check out, at `offset`; `torn` when nothing valid follows it."""

    def __init__(self, offset: int, torn: bool) -> None:
        super().__init__(f"damaged journal record at offset {offset}")
        self.offset, self.torn = offset, torn


def line_prefix(table: str, key: str) -> bytes:
    """What goes before a document in its record line."""
    return b"[%s,%s," % (json.dumps(table).encode(), json.dumps(key).encode())


def write_record(fd: int, lines: list[bytes], size: int, crc: int, offset: int) -> None:
    """One record of `lines` (`size` bytes together, CRC-32 `crc`) at `offset` of `fd`."""
    _write_all(fd, [HEADER.pack(MAGIC, size, crc), *lines], offset)


def _write_all(fd: int, buffers: list[bytes], offset: int) -> None:
    """`pwritev` of all `buffers` at `offset` (in groups the kernel accepts, partial writes
    continued)."""
    group = 512
    for at in range(0, len(buffers), group):
        part = buffers[at:at + group]
        expected = sum(map(len, part))
        done = os.pwritev(fd, part, offset)
        if done < expected:
            rest = b"".join(part)[done:]
            while rest:
                written = os.pwrite(fd, rest, offset + done)
                done += written
                rest = rest[written:]
        offset += expected


def records(fd: int, size: int) -> Iterator[tuple[int, bytes]]:
    """(offset of its payload, payload) of each record in the first `size` bytes of `fd`."""
    pos = 0
    while pos < size:
        head = os.pread(fd, HEADER.size, pos)
        ok = len(head) == HEADER.size
        magic, length, crc = HEADER.unpack(head) if ok else (b"", 0, 0)
        payload = os.pread(fd, length, pos + HEADER.size) if ok and magic == MAGIC else b""
        if not (ok and magic == MAGIC and len(payload) == length
                and zlib.crc32(payload) == crc):
            raise Damaged(pos, _tail_is_torn(fd, pos, size))
        yield pos + HEADER.size, payload
        pos += HEADER.size + length


def _tail_is_torn(fd: int, pos: int, size: int) -> bool:
    """A damaged record is a torn write only when no valid record follows it."""
    data = os.pread(fd, size - pos, pos)
    at = data.find(MAGIC, 1)
    while at != -1:
        head = data[at:at + HEADER.size]
        if len(head) == HEADER.size:
            _m, length, crc = HEADER.unpack(head)
            body = data[at + HEADER.size:at + HEADER.size + length]
            if len(body) == length and zlib.crc32(body) == crc:
                return False
        at = data.find(MAGIC, at + 1)
    return True


def entries(payload: bytes) -> Iterator[tuple[str, str, bytes, int]]:
    """(table, key, document or b"null", the document's offset in the payload) of each line;
    ValueError for a line that cannot be read."""
    pos = 0
    for line in payload.splitlines(keepends=True):
        match = _RECORD_LINE.match(line)
        if match is None or not line.endswith(b"]\n"):
            raise ValueError("a journal record line cannot be read")
        yield (unquote(match.group(1)), unquote(match.group(2)), line[match.end():-2],
               pos + match.end())
        pos += len(line)
