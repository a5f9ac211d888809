"""Store: journaled commits and background compaction, the data-dir lock, indexes, the outbox
queue, format versions, and kill -9 survival (of commits and of compactions)."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maild.adapters.journalstore import JOURNAL_PREFIX, JournalStorage
from maild.adapters.store import (
    DB_FILE,
    FORMAT_VERSION,
    LOCK_FILE,
    TABLE_KEYS,
    CorruptDatabaseError,
    FormatError,
    Store,
)
from maild.adapters.storeapi import LockError
from maild.app import migrate
from maild.core.model import Outgoing

T0 = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def item(n: int, **extra: object) -> dict:
    return {"id": f"MD-{n:04d}", "title": f"项目 {n}", "state": "open", "tasks": [], **extra}


def email(n: int, **extra: object) -> Outgoing:
    fields = {"message_id": f"m{n}@maild.test", "to": (f"u{n}@example.com",), "subject": f"s{n}"}
    return Outgoing(**{**fields, "text": "t", "html": "<p>t</p>", **extra})  # type: ignore[arg-type]


def tmp_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("*.tmp"))


# -- atomic storage -------------------------------------------------------------------------------


def journals(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob(f"{JOURNAL_PREFIX}*"))


def test_compaction_writes_a_valid_tinydb_file_and_no_tmp(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.put_item(item(1))
        store.commit()
        assert [p.name for p in journals(tmp_path)] == [f"{JOURNAL_PREFIX}1"]
        store.engine.compact()
        assert journals(tmp_path) == []  # the snapshot covers them
    data = json.loads((tmp_path / DB_FILE).read_text("utf-8"))
    assert data["items"]["1"]["title"] == "项目 1"
    assert tmp_files(tmp_path) == []
    from tinydb import TinyDB  # the file is plain TinyDB, readable by stock TinyDB for inspection

    with TinyDB(tmp_path / DB_FILE) as db:
        assert db.table("items").all()[0]["id"] == "MD-0001"


def test_stale_tmp_removed_at_open(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.put_item(item(1))
        store.commit()
    (tmp_path / f"{DB_FILE}.99999.tmp").write_text('{"items": {"1": {"id": "half-writ')
    with Store(tmp_path) as store:
        assert tmp_files(tmp_path) == []
        assert store.get_item("MD-0001") is not None


def test_many_writes_one_journal_record_per_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    syncs: list[int] = []
    real_sync = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real_sync(fd))[1])
    with Store(tmp_path) as store:
        syncs.clear()  # a new store commits its format version at once
        for n in range(1, 201):
            store.put_item(item(n))
            store.mark_processed(f"in{n}@x", {"item": f"MD-{n:04d}"})
            store.enqueue(email(n), now=T0)
        assert syncs == []
        store.commit()
        assert len(syncs) == 1
        store.commit()  # nothing changed: no write
        store.get_item("MD-0001")
        store.commit()
        assert len(syncs) == 1


def test_a_commit_costs_what_changed_not_the_store(tmp_path: Path) -> None:
    """The journal grows by the documents a commit changed, whatever the store holds."""
    with Store(tmp_path) as store:
        for n in range(1, 3001):
            store.put_item(item(n, pad="x" * 2000))
        store.commit()
        store.engine.compact()
        for n in (1, 2):
            store.put_item(item(n, title="changed", pad="x" * 2000))
        store.commit()
        (journal,) = journals(tmp_path)
        assert 2 * 2000 < journal.stat().st_size < 3 * 2000 + 1200  # two items and their summaries
    with Store(tmp_path) as store:
        assert store.get_item("MD-0001")["title"] == "changed"
        assert store.get_item("MD-3000")["title"] == "项目 3000"


def test_failed_commit_leaves_the_journal_as_it_was(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    storage = JournalStorage(tmp_path, keys=TABLE_KEYS)
    storage.write({"items": {"1": {"id": "MD-0001"}}})
    storage.commit()
    (journal,) = journals(tmp_path)
    before = journal.read_bytes()
    storage.write({"items": {}})

    def broken_sync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdatasync", broken_sync)
    with pytest.raises(OSError, match="No space"):
        storage.commit()
    assert storage.dirty  # still to be written
    assert journal.read_bytes() == before  # the half-made record is cut off again
    monkeypatch.undo()
    storage.commit()
    storage.close()
    assert JournalStorage(tmp_path, keys=TABLE_KEYS).read() == {"items": {}}


def test_failed_compaction_keeps_the_journal(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(tmp_path) as store:
        store.put_item(item(1))
        store.commit()

        def broken_replace(*args: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", broken_replace)
        store.engine.compact()  # logged, not raised: the journal still holds everything
        monkeypatch.undo()
        assert tmp_files(tmp_path) == [] and not (tmp_path / DB_FILE).exists()
        store.put_item(item(2))
        store.commit()
    with Store(tmp_path) as store:
        assert [i["id"] for i in store.open_items()] == ["MD-0001", "MD-0002"]


def test_reopen_sees_committed_and_not_uncommitted(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.put_item(item(1))
        store.link_message("a@x", "MD-0001", None)
        store.commit()
        store.put_item(item(2))
        store.put_item(item(1, title="changed"))
        store.mark_processed("in@x", {"ok": True})
        store.enqueue(email(1), now=T0)
        store.meta_set("k", 1)
        # closed without commit: as after a crash
    with Store(tmp_path) as store:
        assert [i["id"] for i in store.open_items()] == ["MD-0001"]
        assert store.get_item("MD-0001")["title"] == "项目 1"
        assert store.get_item("MD-0002") is None
        assert store.processed("in@x") is None
        assert store.outbox_entries() == []
        assert store.meta_get("k") is None
        assert store.lookup_message("a@x") == ("MD-0001", None)


def test_rollback_returns_to_last_commit() -> None:
    store = Store(None)
    store.put_item(item(1))
    store.enqueue(email(1), now=T0)
    store.commit()
    store.put_item(item(2))
    store.outbox_mark_sent("m1@maild.test", T0)
    store.rollback()
    assert store.get_item("MD-0002") is None
    assert [e.out.message_id for e in store.outbox_due(T0)] == ["m1@maild.test"]
    assert not store.dirty


@pytest.mark.parametrize(
    "content",
    [b"", b"  \n", b'{"items": {"1": {"id": "MD-0', b"[1, 2]", b"\xff\xfe", b'{"items": [1]}',
     b'{"items": {"1": 5}}', b'{"items": {"1": {"title": "no id"}}}', b'{"items": {}} x',
     b'{"items": {"1": {"id": "MD-0001"},}}'],
    ids=["empty", "blank", "truncated", "array", "not-utf8", "table-not-object",
         "document-not-object", "document-without-key", "trailing-data", "trailing-comma"],
)
def test_corrupt_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    (tmp_path / DB_FILE).write_bytes(content)
    with pytest.raises(
        CorruptDatabaseError, match=r"live\.json.*(empty|not valid JSON|not a TinyDB)"
    ):
        Store(tmp_path)
    assert (tmp_path / DB_FILE).read_bytes() == content  # left alone for the operator
    (tmp_path / DB_FILE).unlink()
    Store(tmp_path).close()  # the failed open released its lock


def test_in_memory_twin_behaves_the_same() -> None:
    store = Store(None)
    assert store.next_item_id() == "MD-0001"
    store.put_item(item(1))
    store.commit()
    assert store.get_item("MD-0001")["state"] == "open"
    store.close()


# -- the lock -------------------------------------------------------------------------------------

HOLD_LOCK = """
import sys, time
from pathlib import Path
from maild.adapters.store import Store
store = Store(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(30)
"""


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"locked"
        with pytest.raises(LockError) as info:
            Store(tmp_path)
        message = str(info.value)
        assert f"pid {child.pid}" in message and str(tmp_path) in message and "stop" in message
    finally:
        child.kill()
        child.wait()
    Store(tmp_path).close()  # the kernel released the dead holder's lock


def test_lock_in_the_same_process(tmp_path: Path) -> None:
    # flock belongs to the open file description, and each Store opens the lock file anew, so a
    # second Store on the same directory fails even within one process.
    first = Store(tmp_path)
    with pytest.raises(LockError, match=f"pid {os.getpid()}"):
        Store(tmp_path)
    first.close()
    second = Store(tmp_path)
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    second.close()


# -- tables and indexes ---------------------------------------------------------------------------


def test_indexes_and_sequence_survive_reopen(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        ids = [store.next_item_id() for _ in range(3)]
        assert ids == ["MD-0001", "MD-0002", "MD-0003"]
        for n in (1, 2, 3):
            store.put_item(item(n))
            store.mark_processed(f"in{n}@x", {"action": "new", "item": f"MD-{n:04d}"})
            store.link_message(f"out{n}@maild", f"MD-{n:04d}", f"T-{n}")
        store.remove_item("MD-0002")
        store.put_item(item(3, state="closed"))
        store.commit()
    with Store(tmp_path) as store:
        assert store.next_item_id() == "MD-0004"
        assert store.get_item("MD-0002") is None
        assert (store.has_item("MD-0001"), store.has_item("MD-0002")) == (True, False)
        assert [i["id"] for i in store.open_items()] == ["MD-0001"]
        assert store.get_item("MD-0003")["state"] == "closed"
        assert store.processed("in2@x") == {"action": "new", "item": "MD-0002"}
        assert store.processed("nope@x") is None
        assert store.lookup_message("out3@maild") == ("MD-0003", "T-3")
        assert store.lookup_message("nope") is None
        store.put_item(item(5))  # doc ids continue after the highest one on disk
        store.commit()
        assert store.counts()["items"] == 3
    with Store(tmp_path) as store:
        assert [i["id"] for i in store.open_items()] == ["MD-0001", "MD-0005"]


def test_documents_are_copies() -> None:
    store = Store(None)
    doc = item(1, tasks=[{"id": "T-1"}])
    store.put_item(doc)
    doc["tasks"].append("leak")
    got = store.get_item("MD-0001")
    got["title"] = "mutated"
    assert store.get_item("MD-0001") == item(1, tasks=[{"id": "T-1"}])
    with pytest.raises(TypeError):
        store.put_item(item(2, when=T0))  # datetimes must be ISO strings


def test_outbox_queue_lifecycle() -> None:
    store = Store(None)
    store.enqueue(email(1), now=T0)
    store.enqueue(email(2), now=T0 + timedelta(seconds=1))
    store.enqueue(email(1, subject="again"), now=T0)  # idempotent by Message-ID
    assert [e.out.message_id for e in store.outbox_due(T0)] == ["m1@maild.test"]
    due = store.outbox_due(T0 + timedelta(seconds=5))
    assert [(e.out.subject, e.status, e.attempts) for e in due] == [
        ("s1", "queued", 0),
        ("s2", "queued", 0),
    ]
    assert store.outbox_due_ids(T0 + timedelta(seconds=5)) == ["m1@maild.test", "m2@maild.test"]
    assert store.outbox_due_ids(T0 + timedelta(seconds=5), limit=1) == ["m1@maild.test"]
    assert store.outbox_next_due() == T0

    store.outbox_mark_retry(
        "m1@maild.test", attempts=1, next_attempt_at=T0 + timedelta(minutes=1), error="451 busy"
    )
    store.outbox_mark_sent("m2@maild.test", T0 + timedelta(seconds=5))
    assert store.outbox_due(T0 + timedelta(seconds=30)) == []
    assert store.outbox_next_due() == T0 + timedelta(minutes=1)
    (retry,) = store.outbox_due(T0 + timedelta(minutes=1))
    assert (retry.attempts, retry.last_error) == (1, "451 busy")

    store.outbox_mark_failed(
        "m1@maild.test", now=T0 + timedelta(minutes=2), code=550, error="550 no"
    )
    assert store.outbox_next_due() is None
    assert [e.out.message_id for e in store.outbox_entries("failed")] == ["m1@maild.test"]
    (sent,) = store.outbox_entries("sent")
    # a sent entry keeps its recipients, subject, kind and item, not its bodies
    assert sent.sent_at == T0 + timedelta(seconds=5)
    assert sent.out == dataclasses.replace(email(2), text="", html="")  # no threading headers set
    store.enqueue(email(2), now=T0 + timedelta(days=1))  # sent already: not queued again
    assert store.outbox_due(T0 + timedelta(days=1)) == []

    assert store.prune_outbox(T0 + timedelta(days=6)) == 0
    assert store.prune_outbox(T0 + timedelta(days=8)) == 1  # the sent one
    assert store.prune_outbox(T0 + timedelta(days=31)) == 1  # the failed one
    assert store.outbox_entries() == []


def test_prune_processed_forgets_only_old_marks() -> None:
    store = Store(None)
    for n, age in enumerate((40, 31, 29, 0)):
        at = (T0 - timedelta(days=age)).isoformat()
        store.mark_processed(f"<p{n}@x>", {"folder": "Processed", "reason": "ok", "at": at})
    store.mark_processed("<no-at@x>", {"folder": "Processed", "reason": "ok"})
    store.commit()
    assert store.prune_processed(T0, keep_days=30) == 2
    assert store.dirty
    assert [store.processed(f"<p{n}@x>") is not None for n in range(4)] == [False, False, True, True]
    assert store.processed("<no-at@x>") is not None
    assert store.prune_processed(T0, keep_days=30) == 0


def test_stock_tinydb_layout_is_upgraded_by_migrate_and_rewritten(tmp_path: Path) -> None:
    """A file in another valid layout (stock TinyDB, an older maild: no format version) is
    refused until `maild migrate` upgrades it; then it loads, each table numbered 1..n, one
    document per line, unknown tables kept, and the old files are kept as a backup."""
    data = {"_default": {}, "items": {"7": item(1), "9": item(2, title="二")},
            "messages": {"3": {"message_id": "a@x", "item_id": "MD-0002", "task_id": "T-1"}},
            "meta": {"1": {"key": "planner", "value": {"digest": {"li.na@x": {"done": "d"}}}}},
            "other": {"5": {"anything": [1, 2]}}}
    (tmp_path / DB_FILE).write_text(json.dumps(data, indent=2), encoding="utf-8")
    with pytest.raises(FormatError, match="format version 1.*maild migrate"):
        Store(tmp_path)
    with Store(tmp_path, upgrading=True) as store:
        assert migrate.upgrade(store) == [f"backup: {tmp_path / 'backup-format-1'}",
                                          "format 1 -> 2: item summaries; the schedule's "
                                          "memory per person"]
    with Store(tmp_path) as store:
        assert store.format_version == FORMAT_VERSION
        assert [i["title"] for i in store.all_items()] == ["项目 1", "二"]
        assert [s["id"] for s in store.summaries()] == ["MD-0001", "MD-0002"]
        assert store.schedule_state()["digest"] == {"li.na@x": {"done": "d"}}
        assert store.meta_get("planner") is None
        assert store.lookup_message("a@x") == ("MD-0002", "T-1")
    written = json.loads((tmp_path / DB_FILE).read_text("utf-8"))
    assert list(written["items"]) == ["1", "2"] and written["items"]["2"]["title"] == "二"
    assert written["other"] == {"1": {"anything": [1, 2]}}
    lines = (tmp_path / DB_FILE).read_bytes().splitlines()
    assert b'"2":{"id":"MD-0002","title":"\xe4\xba\x8c"' in b"\n".join(lines) or any(
        line.startswith(b'"2":{"id":"MD-0002"') for line in lines)
    assert json.loads((tmp_path / "backup-format-1" / DB_FILE).read_text("utf-8")) == data


def test_a_newer_format_is_refused() -> None:
    store = Store(None)
    store.set_format_version(FORMAT_VERSION + 1)
    with pytest.raises(FormatError, match="newer maild"):
        store._check_format(upgrading=False)


def test_unchanged_documents_leave_the_store_clean() -> None:
    store = Store(None)
    store.put_item(item(1))
    store.meta_set("k", [1, 2])
    store.commit()
    store.put_item(item(1))  # the same document again
    store.meta_set("k", (1, 2))  # the same JSON
    assert not store.dirty
    store.put_item(item(1, title="changed"))
    assert store.dirty


def test_remove_item_drops_exactly_its_links() -> None:
    store = Store(None)
    store.link_message("a@x", "MD-0001", None)
    store.link_message("b@x", "MD-0001", "T-2")
    store.link_message("c@x", "MD-00012", None)  # an id that starts like it
    store.link_message('"MD-0001"@x', "MD-0002", None)  # a Message-ID that holds the id's text
    store.put_item(item(1))
    store.remove_item("MD-0001")
    assert [store.lookup_message(m) for m in ("a@x", "b@x", "c@x", '"MD-0001"@x')] == [
        None, None, ("MD-00012", None), ("MD-0002", None)]


def test_committed_items_are_read_back_not_held(tmp_path: Path) -> None:
    """Before its commit an item is held as its JSON bytes (as dicts it was ~3×); once
    committed, a document larger than INLINE_MAX is a reference into the journal, read back on
    demand: the store's memory does not grow with the open work's size."""
    import tracemalloc

    items = [item(n, tasks=[{"id": f"T-{k}", "name": f"任务 {k}", "owner": "wang.zhe@corp.example",
                             "deadline": T0.isoformat(), "state": "in_progress", "progress": 50}
                            for k in range(1, 4)], audit=[{"at": T0.isoformat(), "who": "x@y",
                                                           "action": "created"}])
             for n in range(1, 2001)]
    size = sum(len(json.dumps(i, ensure_ascii=False).encode()) for i in items)
    store = Store(tmp_path)
    tracemalloc.start()
    try:
        for doc in items:
            store._items.put(doc)
        held = tracemalloc.get_traced_memory()[0]
        store.commit()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 1.5 * size, (held, size)
    assert after < 0.4 * size, (after, size)
    assert store.get_item("MD-2000") == items[-1]
    store.close()


def test_sent_entries_are_compact_and_older_ones_still_read(tmp_path: Path) -> None:
    out = email(1, cc=("c@example.com",), kind="receipt", item_id="MD-0001", in_reply_to="in@x",
                references=("in@x",), reply_to="collab+tok@x", language="en", date="Sat, 1 Aug")
    with Store(tmp_path) as store:
        store.enqueue(out, now=T0)
        store.outbox_mark_retry("m1@maild.test", attempts=1, next_attempt_at=T0, error="451 busy")
        store.outbox_mark_sent("m1@maild.test", T0 + timedelta(minutes=1))
        store.commit()
        store.engine.compact()
    doc = json.loads((tmp_path / DB_FILE).read_text("utf-8"))["outbox"]["1"]
    assert doc == {"message_id": "m1@maild.test", "status": "sent", "to": ["u1@example.com"],
                   "cc": ["c@example.com"], "subject": "s1", "kind": "receipt",
                   "item_id": "MD-0001", "attempts": 2, "code": 250, "last_error": "451 busy",
                   "sent_at": (T0 + timedelta(minutes=1)).isoformat()}
    old = {"message_id": "m2@maild.test", "out": {**email(2).to_dict(), "text": "", "html": ""},
           "status": "sent", "attempts": 1, "queued_at": T0.isoformat(), "next_attempt_at": None,
           "last_error": "", "code": 250, "sent_at": T0.isoformat()}  # as an older maild wrote it
    (tmp_path / DB_FILE).write_text(json.dumps({"_store": {"1": {"key": "format_version",
                                                                 "value": FORMAT_VERSION}},
                                                 "outbox": {"1": doc, "2": old}}), "utf-8")
    for journal in journals(tmp_path):
        journal.unlink()
    with Store(tmp_path) as store:
        new, older = store.outbox_entries("sent")
        assert new.out == Outgoing(message_id="m1@maild.test", to=("u1@example.com",),
                                   cc=("c@example.com",), subject="s1", text="", html="",
                                   kind="receipt", item_id="MD-0001")
        assert (new.attempts, new.code, new.sent_at) == (2, 250, T0 + timedelta(minutes=1))
        assert older.out == dataclasses.replace(email(2), text="", html="")
        store.enqueue(out, now=T0)  # both still count for idempotent enqueue
        store.enqueue(email(2), now=T0)
        assert store.outbox_due(T0 + timedelta(days=1)) == []
        assert store.prune_outbox(T0 + timedelta(days=8)) == 2


def test_sent_entries_keep_no_bodies_on_disk(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.enqueue(email(1, text="正文" * 500, html="<p>正文</p>" * 500), now=T0)
        store.commit()
        store.outbox_mark_sent("m1@maild.test", T0)
        store.commit()
        store.engine.compact()  # the journal that held the queued email is gone with it
    assert journals(tmp_path) == []
    raw = (tmp_path / DB_FILE).read_text(encoding="utf-8")
    assert "正文" not in raw and "m1@maild.test" in raw and "u1@example.com" in raw
    with Store(tmp_path) as store:
        (entry,) = store.outbox_entries("sent")
        assert (entry.out.subject, entry.out.to, entry.out.text) == ("s1", ("u1@example.com",), "")
        store.enqueue(email(1), now=T0)  # still idempotent by Message-ID
        assert store.outbox_due(T0) == []


def test_what_a_reopen_reads_is_what_was_committed(tmp_path: Path) -> None:
    """Random writes, commits, rollbacks and compactions (some while commits go on): a store
    opened afresh reads exactly the committed state, and a compacted snapshot is exactly the
    JSON dump of it, one document per line."""
    rng = random.Random(5)
    with Store(tmp_path, compact_bytes=40_000) as store:
        for step in range(80):
            for _ in range(rng.randint(1, 40)):
                n = rng.randint(0, 2000)
                choice = rng.random()
                if choice < 0.4:
                    store.link_message(f"<m{n}@x>", f"MD-{n % 97:04d}", None)
                elif choice < 0.5:
                    store._messages.remove(f"<m{n}@x>")
                elif choice < 0.6:
                    store.put_item(item(n % 50, pad="p" * rng.randint(0, 900), step=step))
                elif choice < 0.8:
                    store.enqueue(email(n, text="正文" * rng.randint(0, 400)), now=T0)
                elif store.outbox_entry(f"m{n}@maild.test") is not None:
                    entry = store.outbox_entry(f"m{n}@maild.test")
                    if entry.status == "queued":
                        store.outbox_mark_sent(f"m{n}@maild.test", T0)  # changed in place
                    store.outbox_note(f"m{n}@maild.test", f"note {step}")
            store.commit()
            expected = store.engine.read()
            with Store.open_readonly(tmp_path) as reader:
                assert reader.engine.read() == expected, step
            if step % 20 == 19:
                store.link_message("<dropped@x>", "MD-9999", None)
                store.rollback()
                assert store.lookup_message("<dropped@x>") is None
            if step % 25 == 24:
                store.engine.compact()
                raw = (tmp_path / DB_FILE).read_text(encoding="utf-8")
                assert json.loads(raw) == {"_store": json.loads(raw)["_store"], **expected}
        store.engine.wait_compaction()
    with Store(tmp_path) as store:
        assert store.engine.read() == expected


@pytest.mark.parametrize("damage", ["none", "stale", "torn", "missing", "other-format"])
def test_the_key_directory_speeds_loading_and_is_never_trusted_blindly(
        tmp_path: Path, damage: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store(tmp_path) as store:
        for n in range(1, 101):
            store.put_item(item(n, pad="x" * (n * 10)))
            store.link_message(f"<l{n}@x>", f"MD-{n:04d}", None)
        store.commit()
        store.engine.compact()
        expected = store.engine.read()
        directory = tmp_path / (DB_FILE + ".keys")
        good = directory.read_bytes()
        if damage == "stale":  # the directory of an older snapshot
            store.put_item(item(1, title="newer"))
            store.commit()
            store.engine.compact()
            expected = store.engine.read()
            directory.write_bytes(good)
        elif damage == "torn":
            directory.write_bytes(good[:-30])
        elif damage == "missing":
            directory.unlink()
        elif damage == "other-format":  # the right token and size, but nothing it can use
            head = json.loads(good.splitlines()[-1])
            directory.write_bytes(json.dumps({"snapshot": head["snapshot"],
                                              "size": head["size"]}).encode() + b"\n")
    if damage == "none":  # the directory alone serves: no line of the snapshot is scanned
        from maild.adapters import snapshot

        monkeypatch.setattr(snapshot, "scan_lines", lambda *a: pytest.fail("scanned"))
    with Store.open_readonly(tmp_path) as reader:
        assert reader.engine.read() == expected


def test_a_torn_last_record_is_dropped_and_damage_elsewhere_refused(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store.put_item(item(1))
        store.commit()
        store.put_item(item(2))
        store.commit()
    (journal,) = journals(tmp_path)
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-7])  # the last commit's fsync never returned: power cut
    with Store(tmp_path) as store:
        assert [i["id"] for i in store.open_items()] == ["MD-0001"]
        store.put_item(item(3))  # appends where the torn record was
        store.commit()
    with Store(tmp_path) as store:
        assert [i["id"] for i in store.open_items()] == ["MD-0001", "MD-0003"]
    damaged = bytearray(journal.read_bytes())
    damaged[40] ^= 0xFF  # inside an early record, with good ones after it
    journal.write_bytes(bytes(damaged))
    with pytest.raises(CorruptDatabaseError, match="damaged record"):
        Store(tmp_path)
    assert journal.read_bytes() == bytes(damaged)  # left alone for the operator


def test_a_reader_keeps_its_view_while_the_daemon_compacts(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for n in range(1, 201):
            store.put_item(item(n, pad="x" * 1000))
        store.commit()
        reader = Store.open_readonly(tmp_path, tables=["items"])
        store.put_item(item(1, title="after"))
        store.commit()
        store.engine.compact()
        assert journals(tmp_path) == []
        assert reader.get_item("MD-0001")["title"] == "项目 1"  # as of its opening
        assert len(reader.open_items()) == 200 and reader.counts()["outbox"] == 0
        reader.close()
    with Store.open_readonly(tmp_path, tables=["items"]) as reader:
        assert reader.get_item("MD-0001")["title"] == "after"


def test_outbox_due_limit_and_order_survive_reopen(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        for n in range(10):
            store.enqueue(email(n), now=T0)
        store.outbox_mark_retry("m0@maild.test", attempts=1, next_attempt_at=T0, error="x")
        store.commit()
    with Store(tmp_path) as store:
        ids = [e.out.message_id for e in store.outbox_due(T0, limit=3)]
        assert ids == ["m0@maild.test", "m1@maild.test", "m2@maild.test"]
        assert len(store.outbox_due(T0)) == 10


# -- kill -9 torture ------------------------------------------------------------------------------


WINDOW = 100  # the writer keeps the newest WINDOW items and emails, so the store stays small
# and compactions come often


def _writer(data_dir: Path) -> None:
    """Child: add an item and an email, drop the oldest, commit; until killed. Compactions run
    in their thread all the while (every ~60 commits)."""
    store = Store(data_dir, compact_bytes=64 * 1024)
    while True:
        item_id = store.next_item_id()
        seq = int(item_id[3:])
        store.put_item({"id": item_id, "state": "open", "pad": "x" * 200})
        store.enqueue(email(seq), now=T0)
        if seq > WINDOW:
            store.remove_item(f"MD-{seq - WINDOW:04d}")
            store._outbox.remove(f"m{seq - WINDOW}@maild.test")
        store.commit()


def test_kill_minus_nine_never_corrupts_nor_loses_a_commit(tmp_path: Path) -> None:
    rng = random.Random(1)
    deadline = time.monotonic() + 60
    iterations = last = 0
    seen = {"tmp": 0, "rotated": 0, "compacted": 0}
    while iterations < 300 and time.monotonic() < deadline:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                _writer(tmp_path)
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.0, 0.08))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        iterations += 1
        seen["tmp"] += bool(tmp_files(tmp_path))  # killed inside a compaction's write
        seen["rotated"] += len(journals(tmp_path)) > 1  # ... or before its rename landed
        with Store(tmp_path) as store:  # loads, lock released, tmp cleaned
            assert tmp_files(tmp_path) == []
            seq = store.meta_get("item_seq", 0)
            assert seq >= last  # nothing committed was lost
            last = seq
            first = max(1, seq - WINDOW + 1)
            expected = [f"MD-{n:04d}" for n in range(first, seq + 1)]
            assert [i["id"] for i in store.open_items()] == expected  # every step, no more
            assert [s["id"] for s in store.summaries()] == expected
            assert sorted(e.out.message_id for e in store.outbox_entries()) == sorted(
                f"m{n}@maild.test" for n in range(first, seq + 1))
            seen["compacted"] += (tmp_path / DB_FILE).exists()
    assert iterations >= 200, iterations  # hundreds of kills, even on a slow, shared machine
    assert last > 2 * WINDOW  # the child did commit, and dropped old documents
    assert seen["compacted"] > 0 and seen["tmp"] + seen["rotated"] > 0, seen
