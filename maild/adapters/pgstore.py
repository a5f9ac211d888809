"""The store's documents in PostgreSQL (psycopg 3), for companies that outgrow one file or one
machine: the same `DocEngine` as the embedded journal, chosen by `[store] url = "postgresql://…"`.

Each maild table is an SQL table `maild_<name>(inbox, key, seq, doc)` with PRIMARY KEY
(inbox, key): intake idempotence (`maild_processed`) and outbox rows (`maild_outbox`) are unique
by Message-ID per inbox in the database itself, and several daemons (one per inbox, on different
machines) share one database, each seeing only its inbox's rows. Documents are the same compact
JSON bytes as in the embedded store (`bytea`), in insertion order (`seq`).

Surprises:
- Writes wait in memory until `commit()`, which makes them ONE transaction (pipelined upserts and
  deletes); reads see them meanwhile. `rollback()` forgets them. Reads run outside transactions.
- One daemon per inbox: a session advisory lock on the inbox's name, held by the connection.
  With `wait=True` a second daemon for the same inbox queues for it (logged) and takes over
  when the first dies (its connection closes: the server frees the lock). Without, it raises
  `LockError`. If the connection is lost, so is the lock: the next commit fails and the daemon
  stops rather than run beside a successor.
- Tables are created on first use (`CREATE TABLE IF NOT EXISTS`); `maild migrate` copies a
  TinyDB store in and out.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import psycopg

from maild.adapters.journalstore import STORE_TABLE, ReadOnlyError

log = logging.getLogger("maild.pgstore")  # the name logs have always shown

_NAME = re.compile(r"[^a-z0-9_]")


def sql_table(name: str) -> str:
    """The SQL table of a maild table (`items` → `maild_items`)."""
    return "maild_" + _NAME.sub("_", name.lower())


class PgEngine:
    """`DocEngine` over PostgreSQL for one inbox; see the module doc."""

    def __init__(self, url: str, *, inbox: str, keys: Mapping[str, str], readonly: bool = False,
                 wait: bool = False, connect: Callable[..., Any] = psycopg.connect) -> None:
        self.url, self.inbox, self.readonly = url, inbox, readonly
        self.keys = dict(keys)
        self.keys.setdefault(STORE_TABLE, "key")
        self.crash_hook: Callable[[str], None] | None = None
        self._pending: dict[tuple[str, str], bytes | None] = {}
        self._created: set[str] = set()
        self.conn = connect(url, autocommit=True, keepalives=1, keepalives_idle=10,
                            keepalives_interval=5, keepalives_count=3)
        try:
            if not readonly:
                self._lock(wait)
            for name in self.keys:
                self._create(name)
        except BaseException:
            self.conn.close()
            raise

    # -- the inbox's lock ----------------------------------------------------------------------

    def _lock(self, wait: bool) -> None:
        from maild.adapters.storeapi import LockError

        key = f"maild:{self.inbox}"
        got = self.conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
        if got and got[0]:
            return
        if not wait:
            raise LockError(f"inbox {self.inbox} is in use by another maild on this database; "
                            f"stop that process first")
        log.warning("event=store_lock_wait inbox=%s: another maild runs for this inbox; waiting "
                    "to take over when it stops", self.inbox)
        self.conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (key,))
        log.info("event=store_lock_taken inbox=%s", self.inbox)

    # -- tables ---------------------------------------------------------------------------------

    def _create(self, name: str) -> None:
        if name in self._created or self.readonly:
            return
        table = sql_table(name)
        with self.conn.transaction():
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (inbox text NOT NULL, "
                              f"key text NOT NULL, seq bigserial, doc bytea NOT NULL, "
                              f"PRIMARY KEY (inbox, key))")
            self.conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_order ON {table} "
                              f"(inbox, seq)")
        self._created.add(name)

    def _exists(self, name: str) -> bool:
        if name in self._created:
            return True
        row = self.conn.execute("SELECT to_regclass(%s)", (sql_table(name),)).fetchone()
        if row and row[0]:
            self._created.add(name)
            return True
        return False

    def table_names(self) -> list[str]:
        names = [n for n in self.keys if n != STORE_TABLE]
        rows = self.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = ANY(current_schemas(false)) "
            "AND tablename LIKE 'maild\\_%%'").fetchall()
        known = {sql_table(n) for n in names} | {sql_table(STORE_TABLE)}
        names += [r[0][len("maild_"):] for r in rows if r[0] not in known]
        return names

    # -- documents -------------------------------------------------------------------------------

    def get(self, table: str, key: str) -> bytes | None:
        if (table, key) in self._pending:
            return self._pending[(table, key)]
        if not self._exists(table):
            return None
        row = self.conn.execute(f"SELECT doc FROM {sql_table(table)} WHERE inbox = %s AND "
                                f"key = %s", (self.inbox, key)).fetchone()
        return bytes(row[0]) if row else None

    def contains(self, table: str, key: str) -> bool:
        if (table, key) in self._pending:
            return self._pending[(table, key)] is not None
        if not self._exists(table):
            return False
        return self.conn.execute(f"SELECT 1 FROM {sql_table(table)} WHERE inbox = %s AND "
                                 f"key = %s", (self.inbox, key)).fetchone() is not None

    def scan(self, table: str, needle: bytes | None = None) -> list[tuple[str, bytes]]:
        rows: list[tuple[str, bytes]] = []
        if self._exists(table):
            query = f"SELECT key, doc FROM {sql_table(table)} WHERE inbox = %s"
            args: tuple[Any, ...] = (self.inbox,)
            if needle is not None:
                query += " AND position(%s IN doc) > 0"
                args += (needle,)
            rows = [(k, bytes(d)) for k, d in self.conn.execute(query + " ORDER BY seq", args)]
        if not any(t == table for t, _k in self._pending):
            return rows
        pending = {k: v for (t, k), v in self._pending.items() if t == table}
        out = []
        for key, text in rows:
            if key in pending:
                text = pending.pop(key)  # type: ignore[assignment]
                if text is None:
                    continue
            if needle is None or needle in text:
                out.append((key, text))
        out += [(k, v) for k, v in pending.items()
                if v is not None and (needle is None or needle in v)]
        return out

    def scan_chunks(self, table: str, size: int) -> Iterator[list[tuple[str, bytes]]]:
        """`scan` a chunk of `size` rows at a time, through a server-side cursor (a result of
        50,000 summaries is never held whole)."""
        if any(t == table for t, _k in self._pending) or not self._exists(table):
            rows = self.scan(table)
            for start in range(0, len(rows), size):
                yield rows[start:start + size]
            return
        with self.conn.transaction(), self.conn.cursor(name=f"scan_{table}") as cursor:
            cursor.itersize = size
            cursor.execute(f"SELECT key, doc FROM {sql_table(table)} WHERE inbox = %s "
                           f"ORDER BY seq", (self.inbox,))
            while rows := cursor.fetchmany(size):
                yield [(k, bytes(d)) for k, d in rows]

    def keys_of(self, table: str) -> list[str]:
        return [key for key, _text in self.scan(table)] if self._pending else (
            [r[0] for r in self.conn.execute(f"SELECT key FROM {sql_table(table)} WHERE "
                                             f"inbox = %s ORDER BY seq", (self.inbox,))]
            if self._exists(table) else [])

    def count(self, table: str) -> int:
        if any(t == table for t, _k in self._pending):
            return len(self.keys_of(table))
        if not self._exists(table):
            return 0
        row = self.conn.execute(f"SELECT count(*) FROM {sql_table(table)} WHERE inbox = %s",
                                (self.inbox,)).fetchone()
        return int(row[0]) if row else 0

    def put(self, table: str, key: str, text: bytes) -> None:
        """Not read back first (a round trip each): an unchanged document is written again."""
        if self.readonly:
            raise ReadOnlyError(f"the store is read-only (table {table!r})")
        self._pending[(table, key)] = text

    def remove(self, table: str, key: str) -> None:
        if self.readonly:
            raise ReadOnlyError(f"the store is read-only (table {table!r})")
        self._pending[(table, key)] = None

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def rollback(self) -> None:
        self._pending.clear()

    def commit(self) -> None:
        """Everything changed since the last commit, in one transaction."""
        if not self._pending:
            return
        if self.readonly:
            raise ReadOnlyError("the store was opened read-only")
        puts: dict[str, list[tuple[str, str, bytes]]] = {}
        removals: dict[str, list[tuple[str, str]]] = {}
        for (table, key), text in self._pending.items():
            if text is None:
                removals.setdefault(table, []).append((self.inbox, key))
            else:
                puts.setdefault(table, []).append((self.inbox, key, text))
        for table in puts:
            self._create(table)
        with self.conn.transaction(), self.conn.cursor() as cursor:
            for table, rows in removals.items():
                cursor.executemany(f"DELETE FROM {sql_table(table)} WHERE inbox = %s AND "
                                   f"key = %s", rows)
            for table, rows in puts.items():
                cursor.executemany(f"INSERT INTO {sql_table(table)} (inbox, key, doc) VALUES "
                                   f"(%s, %s, %s) ON CONFLICT (inbox, key) DO UPDATE SET doc = "
                                   f"EXCLUDED.doc", rows)
            if self.crash_hook is not None:  # tests: a kill inside the transaction
                self.crash_hook("mid_db_write")
        self._pending.clear()

    def close(self) -> None:
        """Does not commit. Closing the connection frees the inbox's lock."""
        self._pending.clear()
        self.conn.close()
