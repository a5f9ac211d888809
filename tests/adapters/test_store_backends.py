"""The same store behaviour on both engines (the embedded journal and PostgreSQL), what only
PostgreSQL does (unique constraints, several inboxes in one database, a second daemon waiting
for the inbox and taking over when the first is killed), and `maild migrate` between them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maild.adapters.outboxstore import decode_entry
from maild.adapters.store import FORMAT_VERSION, ReadOnlyError, open_store
from maild.adapters.storeapi import LockError
from maild.app import migrate
from maild.core.model import Outgoing

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 8, 1, 9, 0, tzinfo=UTC)
INBOX = "collab@corp.example"


def item(n: int, **extra: object) -> dict:
    tasks = [{"id": "T-1", "state": "awaiting_confirmation", "owner": "wang.zhe@corp.example",
              "owner_name": "王喆", "deadline": T0.isoformat()}]
    return {"id": f"MD-{n:04d}", "title": f"项目 {n}", "state": "open", "tasks": tasks, **extra}


def email(n: int) -> Outgoing:
    return Outgoing(message_id=f"m{n}@maild.test", to=(f"u{n}@example.com",), subject=f"s{n}",
                    text="正文" * 300, html="<p>t</p>", item_id="MD-0001")


def test_committed_state_survives_and_uncommitted_does_not(store_backend):
    with open_store(store_backend, inbox=INBOX) as store:
        assert store.format_version == FORMAT_VERSION
        store.put_item(item(1))
        store.link_message("a@x", "MD-0001", "T-1")
        store.mark_processed("in1@x", {"folder": "Processed", "at": T0.isoformat()})
        store.enqueue(email(1), now=T0)
        pending = store.outbox_document("m1@maild.test")  # uncommitted: read from memory
        assert pending is not None and decode_entry(pending) == store.outbox_entry("m1@maild.test")
        assert store.outbox_document("m9@maild.test") is None
        store.set_due("MD-0001", T0 + timedelta(hours=8))
        store.put_schedule_entry("digest", "li.na@x", {"done": "2026-08-01"})
        assert store.next_item_id() == "MD-0001"
        store.commit()
        store.put_item(item(2))
        store.put_item(item(1, title="uncommitted"))
        store.mark_processed("in2@x", {})
        # closed without commit: as after a crash
    with open_store(store_backend, inbox=INBOX) as store:
        assert [i["title"] for i in store.open_items()] == ["项目 1"]
        assert [s["id"] for s in store.summaries()] == ["MD-0001"]
        assert store.summaries()[0]["tasks"] == [["T-1", "awaiting_confirmation",
                                                   "wang.zhe@corp.example", "王喆",
                                                   T0.isoformat()]]
        assert store.lookup_message("a@x") == ("MD-0001", "T-1")
        assert store.processed("in1@x") is not None and store.processed("in2@x") is None
        assert [e.out.message_id for e in store.outbox_due(T0)] == ["m1@maild.test"]
        assert store.outbox_due(T0)[0].out.text == "正文" * 300
        assert store.outbox_document("m1@maild.test") == pending  # the stored bytes, undecoded
        assert store.dues() == {"MD-0001": T0 + timedelta(hours=8)}
        assert store.schedule_state()["digest"] == {"li.na@x": {"done": "2026-08-01"}}
        assert store.next_item_id() == "MD-0002"
        assert store.counts() == {"items": 1, "processed": 1, "messages": 1, "outbox": 1,
                                  "meta": 1}


def test_rollback_outbox_lifecycle_and_removal(store_backend):
    with open_store(store_backend, inbox=INBOX) as store:
        store.put_item(item(1))
        for n in (1, 2):
            store.enqueue(email(n), now=T0 + timedelta(seconds=n))
        store.link_message("b@x", "MD-0001", None)
        store.link_message("c@x", "MD-00012", None)
        store.commit()
        store.put_item(item(2))
        store.outbox_mark_sent("m1@maild.test", T0)
        store.rollback()
        assert not store.dirty and not store.has_item("MD-0002")
        assert store.outbox_due_ids(T0 + timedelta(minutes=1)) == ["m1@maild.test",
                                                                   "m2@maild.test"]
        store.outbox_mark_sent("m1@maild.test", T0 + timedelta(seconds=5))
        store.outbox_mark_failed("m2@maild.test", now=T0, code=550, error="550 no")
        store.enqueue(email(1), now=T0)  # sent already: idempotent by Message-ID
        store.remove_item("MD-0001")
        store.commit()
        assert store.outbox_next_due() is None
        assert [e.status for e in store.outbox_entries()] == ["sent", "failed"]
        assert [e.out.message_id for e in store.outbox_entries(item_id="MD-0001")] == [
            "m1@maild.test", "m2@maild.test"]
        assert store.lookup_message("b@x") is None and store.lookup_message("c@x") is not None
        assert store.summaries() == [] and store.dues() == {}
        assert store.prune_outbox(T0 + timedelta(days=31)) == 2
        store.commit()
    with open_store(store_backend, inbox=INBOX, readonly=True) as reader:
        assert reader.outbox_entries() == []
        with pytest.raises(ReadOnlyError):
            reader.put_item(item(3))


# -- PostgreSQL only ----------------------------------------------------------------------------


def test_intake_marks_and_outbox_rows_are_unique_in_the_database(pg_url):
    import psycopg

    with open_store(pg_url, inbox=INBOX) as store:
        store.mark_processed("in@x", {"at": T0.isoformat()})
        store.enqueue(email(1), now=T0)
        store.commit()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        for table, key in (("maild_processed", "in@x"), ("maild_outbox", "m1@maild.test")):
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(f"INSERT INTO {table} (inbox, key, doc) VALUES (%s, %s, %s)",
                             (INBOX, key, b"{}"))


def test_several_inboxes_share_one_database(pg_url):
    first = open_store(pg_url, inbox=INBOX)
    second = open_store(pg_url, inbox="projects@corp.example")
    try:
        first.put_item(item(1))
        first.mark_processed("same@x", {"at": T0.isoformat()})
        first.commit()
        second.put_item(item(1, title="another inbox's MD-0001"))
        second.mark_processed("same@x", {"at": T0.isoformat()})  # its own idempotence
        second.commit()
        assert first.get_item("MD-0001")["title"] == "项目 1"
        assert second.get_item("MD-0001")["title"] == "another inbox's MD-0001"
        assert first.counts()["items"] == second.counts()["items"] == 1
    finally:
        first.close()
        second.close()


HOLDER = """
import sys, time, logging
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
from maild.adapters.store import open_store
store = open_store(sys.argv[1], inbox=sys.argv[2], wait=True)
store.meta_set("holder", sys.argv[3])
store.commit()
print("serving", sys.argv[3], flush=True)
time.sleep(60)
"""


def _holder(url: str, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLDER, url, INBOX, name],
                            stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_second_daemon_waits_for_the_inbox_and_takes_over_when_the_first_dies(pg_url):
    first = _holder(pg_url, "first")
    second = None
    try:
        assert first.stdout.readline().strip() == "serving first"
        with pytest.raises(LockError, match="in use by another maild"):
            open_store(pg_url, inbox=INBOX)  # `maild outbox --retry`: no waiting
        second = _holder(pg_url, "second")
        assert "waiting to take over" in second.stdout.readline()
        time.sleep(0.5)
        assert second.poll() is None  # still waiting
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert "store_lock_taken" in second.stdout.readline()
        assert second.stdout.readline().strip() == "serving second"
        with open_store(pg_url, inbox=INBOX, readonly=True) as reader:
            assert reader.meta_get("holder") == "second"
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_migrate_copies_tinydb_to_postgresql_and_back(tmp_path, pg_url):
    source = tmp_path / "var"
    with open_store(source, inbox=INBOX) as store:
        for n in range(1, 51):
            store.put_item(item(n, pad="x" * 700))
            store.link_message(f"l{n}@x", f"MD-{n:04d}", "T-1")
            store.enqueue(email(n), now=T0)
        store.outbox_mark_sent("m1@maild.test", T0)
        store.meta_set("item_seq", 50)
        store.commit()
        original = sorted(store.export())
    config = tmp_path / "config.toml"
    config.write_text(f'[maild]\ndata_dir = "{source}"\n[mail]\nembedded = false\n'
                      f'[imap]\nhost = "imap.corp.example"\n[smtp]\nhost = "smtp.corp.example"\n',
                      encoding="utf-8")

    def maild_migrate(*argv: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "maild", "-c", str(config), "migrate",
                              "--json", *argv], capture_output=True, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    report = maild_migrate("--to", pg_url)
    assert report["copied"]["items"] == 50 and report["copied"]["outbox"] == 50
    with open_store(pg_url, inbox=INBOX) as store:
        assert sorted(store.export()) == original
        assert store.outbox_due_ids(T0) == [f"m{n}@maild.test" for n in range(2, 51)]
    back = tmp_path / "back"
    maild_migrate("--from", pg_url, "--to", str(back))
    with open_store(back, inbox=INBOX) as store:
        assert sorted(store.export()) == original
    again = subprocess.run([sys.executable, "-m", "maild", "-c", str(config), "migrate", "--to",
                            str(back)], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert again.returncode == 1 and "only into an empty store" in again.stderr
    assert migrate.upgrade(open_store(back, inbox=INBOX)) == []  # already current
