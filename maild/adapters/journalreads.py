"""Reading the embedded store's documents (a mixin of `JournalStorage`): tables, one document,
counts, keys, and scans, in memory or from the snapshot and journal files, in chunks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from maild.adapters.journalfile import CorruptDatabaseError
from maild.adapters.snapshot import STORE_TABLE, Value, ref_parts


class JournalReads:
    def table_names(self) -> list[str]:
        return [name for name in self._tables if name != STORE_TABLE]

    def get(self, table: str, key: str) -> bytes | None:
        return self._get_raw(table, key)

    def contains(self, table: str, key: str) -> bool:
        return key in self._tables.get(table, ())

    def count(self, table: str) -> int:
        return len(self._tables.get(table, ()))

    def keys_of(self, table: str) -> list[str]:
        return list(self._tables.get(table, ()))

    def scan(self, table: str, needle: bytes | None = None) -> list[tuple[str, bytes]]:
        """(key, document) in table order; with `needle`, only documents that contain it.
        Documents in files are read a window at a time, in file order (few system calls)."""
        entries = list(self._tables.get(table, {}).items())
        texts = self._read_many([value for _key, value in entries])
        return [(key, text) for (key, _value), text in zip(entries, texts, strict=True)
                if needle is None or needle in text]

    def scan_chunks(self, table: str, size: int) -> Iterator[list[tuple[str, bytes]]]:
        """`scan` a chunk of `size` documents at a time (never all of them read at once)."""
        entries = list(self._tables.get(table, {}).items())
        for start in range(0, len(entries), size):
            part = entries[start:start + size]
            texts = self._read_many([value for _key, value in part])
            yield [(key, text) for (key, _value), text in zip(part, texts, strict=True)]

    def _read_many(self, values: list[Value], window: int = 8 * 2**20) -> list[bytes]:
        out: list[bytes] = [v if isinstance(v, bytes) else b"" for v in values]
        # references are ints that sort as (file, offset, length): sorted as they are
        refs = [(ref_parts(v), n) for v, n in
                sorted((v, n) for n, v in enumerate(values) if isinstance(v, int))]
        start = 0
        while start < len(refs):
            (file, first, _length), _n = refs[start]
            end = start + 1
            while end < len(refs):
                (next_file, offset, length), _n = refs[end]
                if next_file != file or offset + length - first > window:
                    break
                end += 1
            _f, offset, length = refs[end - 1][0]
            data = os.pread(self._fd(file), offset + length - first, first)
            for (_f, offset, length), n in refs[start:end]:
                out[n] = data[offset - first:offset - first + length]
                if len(out[n]) != length:
                    raise CorruptDatabaseError(f"maild database in {self.folder}: a document "
                                               f"ends early")
            start = end
        return out
