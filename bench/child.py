"""What runs inside spawned child processes: maild itself, and the raw-protocol floors.

Each worker gets plain arguments, puts one result dict on `out` and exits, so its
`ru_maxrss` is its own peak (maild's, without the mail servers or the bench's corpus).
"""

from __future__ import annotations

import os
import resource
import signal
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = {"MAILD_SECRET": "bench-secret"}


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's own peak RSS (this one's by default): VmHWM of its memory map. Not
    `ru_maxrss`: on Linux that survives exec, so a spawned child would report the bench parent's
    peak (servers, corpus)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0.0


def maild_peak_rss_mb(svc) -> tuple[float, float]:
    """(peak RSS of the daemon's processes, of its sender child alone): the daemon's own peak
    plus its sender's (the two peaks need not coincide, so the sum is an upper bound)."""
    sender = svc.sender.pid if svc.sender is not None else None
    child = peak_rss_mb(sender) if sender else 0.0
    return peak_rss_mb() + child, child


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def config(imap_port: int, smtp_port: int, data_dir: str, **extra):
    from maild.core.config import load_config
    values = {"mail.embedded": True, "embedded.imap_port": imap_port,
              "embedded.smtp_port": smtp_port, "maild.data_dir": data_dir,
              "maild.secret_file": str(Path(data_dir).parent / "bench-secret.key")}
    values.update(extra)
    return load_config(ROOT / "config.toml", values)


def service(cfg):
    import logging
    logging.disable(logging.WARNING)  # maild's per-email info/warning lines are not the bench
    from maild.app.service import Service
    return Service.from_config(cfg, environ=dict(SECRET))


# -- maild ---------------------------------------------------------------------------------------

def maild_backlog(out, imap_port: int, smtp_port: int, data_dir: str, total: int,
                  label: str = "maild backlog", connect_first: bool = False,
                  one_core: bool = False) -> None:
    """Start the daemon over a waiting backlog; time until INBOX is empty and every resulting
    email is sent (a batch that fetched nothing still drains: the outbox may lag the intake).
    `one_core`: the daemon and its sender child pinned to one CPU (the loaded case)."""
    from .progress import Progress
    if one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # the sender child inherits it
    t0 = time.monotonic()
    svc = service(config(imap_port, smtp_port, data_dir))
    if connect_first:  # growth: per-email cost without start-up
        svc.inbox.connect()
        t0 = time.monotonic()
    bar = Progress(label, total)
    processed = sent = 0
    svc.drain()
    while True:
        report = svc.process_batch()
        processed += report.processed + report.quarantined
        sent += report.sent
        bar.update(processed)
        if not report.fetched and not report.sent:
            break
    elapsed = time.monotonic() - t0
    bar.close()
    peak, sender_peak = maild_peak_rss_mb(svc)
    svc.close()
    out.put({"elapsed": elapsed, "processed": processed, "sent": sent,
             "peak_rss_mb": peak, "sender_rss_mb": sender_peak})


def maild_daemon(out, stop, imap_port: int, smtp_port: int, data_dir: str) -> None:
    """The real loop (`Service.run`, IDLE) until `stop` is set."""
    import threading
    svc = service(config(imap_port, smtp_port, data_dir))
    signal.signal(signal.SIGTERM, lambda *_: svc.stop_event.set())
    threading.Thread(target=lambda: (stop.wait(), svc.stop_event.set()), daemon=True).start()
    svc.inbox.connect()
    out.put({"ready": True})
    svc.run()
    svc.close()
    out.put({"peak_rss_mb": peak_rss_mb()})


def maild_big(out, go, imap_port: int, smtp_port: int, data_dir: str, size: int) -> None:
    """Warm up on a small email, then handle one `size`-byte email; peak RSS above the baseline."""
    import gc
    svc = service(config(imap_port, smtp_port, data_dir, **{"security.max_message_bytes": 64 * 2**20}))
    while svc.process_batch().fetched:
        pass
    gc.collect()
    base, peak_before = rss_mb(), peak_rss_mb()
    out.put({"warm": True})
    go.wait(60)
    t0 = time.monotonic()
    report = svc.process_batch()
    elapsed = time.monotonic() - t0
    peak = peak_rss_mb()
    svc.close()
    out.put({"base_mb": base, "peak_before_mb": peak_before, "peak_mb": peak,
             "elapsed": elapsed, "fetched": report.fetched, "sent": report.sent,
             "outcomes": [o.get("reason") for o in report.outcomes]})


HISTORY_DAYS = 365  # archived emails are spread evenly over this many past days


def preload_store(out, imap_port: int, smtp_port: int, data_dir: str, archived: int,
                  open_items: int, sample: list[bytes]) -> None:
    """Fill a live store with `open_items` open items and what `archived` emails leave in it once
    their items are closed and archived: what the service itself keeps, document for document.

    - An open item keeps the item and its thread links (its email, the receipt, one request per
      task: as many as maild stored for the sample item cloned). Its intake mark and sent
      entries are older than the 30 / 7 days the daemon keeps them (open work predates them).
    - An archived email's item is in the archive (files the intake path never reads) and its
      thread links are gone: `Service.archive_closed` calls `Store.remove_item`, which drops the
      item's links with it. What stays is its processed Message-ID and its sent outbox entries
      (as many per email as `sample` caused), until the daemon's housekeeping prunes them
      (`Service.tick`: `prune_processed` after 30 days, `prune_outbox` 7 days after sending).
      The emails are dated evenly over the past `HISTORY_DAYS`, and the prunes are applied.

    Documents are clones of what maild itself stored for `sample` (bench-only use of the store's
    internal tables).
    """
    from datetime import datetime, timedelta

    from maild.adapters.imap import MemoryInbox
    svc = service(config(imap_port, smtp_port, data_dir))
    svc.inbox = MemoryInbox()
    for raw in sample:
        svc.inbox.deliver(raw)
    while svc.process_batch().fetched:
        pass
    store = svc.store
    items = [it for it in store.open_items() if len(it.get("tasks", [])) >= 1]
    template_item = max(items, key=lambda it: len(it.get("tasks", [])))
    template_links = [d for d in store._messages.values() if d["item_id"] == template_item["id"]]
    sent_docs = [d for d in store._outbox.values() if d["status"] == "sent"]
    template_sent = sent_docs[0]
    sent_per_email = len(sent_docs) / len(store._processed)
    processed_doc = next(iter(store._processed.values()))
    now = datetime.now(svc.config.tz)
    for i in range(open_items):
        item = {**template_item, "id": f"MD-O{i:05d}"}
        store._items.put(item)
        for k, link in enumerate(template_links):
            store._messages.put({**link, "message_id": f"<open-{i}-{k}@corp.example>",
                                 "item_id": item["id"]})
    for i in range(archived):
        when = (now - timedelta(days=HISTORY_DAYS * (archived - i) / max(archived, 1))).isoformat()
        mid = f"<archived-{i}@corp.example>"
        store._processed.put({"message_id": mid, "outcome": {**processed_doc["outcome"],
                                                              "at": when}})
        for k in range(round((i + 1) * sent_per_email) - round(i * sent_per_email)):
            sent_id = f"maild.archived-{i}-{k}@corp.example"
            store._outbox.put({**template_sent, "message_id": sent_id, "item_id": f"MD-A{i:05d}",
                               "sent_at": when})
    pruned = {"outbox": store.prune_outbox(now), "processed": store.prune_processed(now)}
    store.meta_set("item_seq", 900000)
    store.commit()
    store.engine.compact()  # the state as a snapshot (and its key directory), as a daemon finds it
    size = sum(p.stat().st_size for p in Path(data_dir).glob("live.*"))
    counts = store.counts()
    svc.close()
    out.put({"live_json_mb": size / 2**20, "counts": counts, "pruned": pruned,
             "sent_per_email": sent_per_email, "links_per_open_item": len(template_links)})


def _filler(size: int) -> bytes:
    line = b"x" * 76 + b"\r\n"
    return line * max(1, size // len(line))


# -- floors --------------------------------------------------------------------------------------

def floor_backlog(out, imap_port: int, smtp_port: int, n_out: int, out_size: int) -> None:
    """Raw UID FETCH of the waiting emails (chunks of 200) + raw sending of `n_out` emails."""
    import asyncio

    import aiosmtplib
    from imapclient import IMAPClient
    t0 = time.monotonic()
    client = IMAPClient("127.0.0.1", port=imap_port, ssl=False, timeout=60)
    client.login("collab@corp.example", "collab-demo")
    client.select_folder("INBOX")
    uids = sorted(client.search(["ALL"]))
    fetched = 0
    for start in range(0, len(uids), 200):
        data = client.fetch(uids[start:start + 200], ["BODY.PEEK[]"])
        fetched += sum(1 for v in data.values() if b"BODY[]" in v)
    client.logout()
    t_fetch = time.monotonic() - t0
    body = _filler(out_size - 400)

    async def send() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp_port)
        await smtp.connect()
        for i in range(n_out):
            msg = (f"From: collab@corp.example\r\nTo: wang.zhe@corp.example\r\n"
                   f"Subject: floor {i}\r\nMessage-ID: <floor-{i}@bench>\r\n\r\n").encode() + body
            await smtp.sendmail("collab@corp.example", ["wang.zhe@corp.example"], msg)
        await smtp.quit()

    asyncio.run(send())
    out.put({"elapsed": time.monotonic() - t0, "fetch_s": t_fetch, "fetched": fetched})


def floor_idle(out, stop, imap_port: int, smtp_port: int, out_size: int) -> None:
    """IDLE on INBOX; on each new email, send 4 emails over one new SMTP connection."""
    import smtplib

    from imapclient import IMAPClient
    client = IMAPClient("127.0.0.1", port=imap_port, ssl=False, timeout=60)
    client.login("collab@corp.example", "collab-demo")
    client.select_folder("INBOX")
    body = _filler(out_size - 400)
    client.idle()
    out.put({"ready": True})
    n = 0
    while not stop.is_set():
        responses = client.idle_check(timeout=0.5)
        if not any(isinstance(r, tuple) and len(r) > 1 and r[1] == b"EXISTS" for r in responses):
            continue
        with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
            for k in range(4):
                n += 1
                msg = (f"From: collab@corp.example\r\nTo: wang.zhe@corp.example\r\nSubject: f{n}"
                       f"\r\nMessage-ID: <floor-idle-{n}@bench>\r\n\r\n").encode() + body
                smtp.sendmail("collab@corp.example", ["wang.zhe@corp.example"], msg)
                del k
    client.idle_done()
    client.logout()
    out.put({"done": True})


def maild_open_daemon(out, stop, imap_port: int, smtp_port: int, data_dir: str, store_url: str,
                      ticks: int = 20) -> None:
    """The real loop over a preloaded store: reports when it first waits on the inbox (start-up
    to first IDLE), the cost of idle ticks (nothing due), then serves until `stop`; its peak RSS
    (with its sender child's) at the end."""
    import statistics
    import threading
    svc = service(config(imap_port, smtp_port, data_dir, **{"store.url": store_url}))
    signal.signal(signal.SIGTERM, lambda *_: svc.stop_event.set())
    threading.Thread(target=lambda: (stop.wait(), svc.stop_event.set()), daemon=True).start()
    wait = svc.inbox.wait
    first = {"done": False}

    def first_wait(*args, **kwargs):
        if not first["done"]:  # on the loop's own thread, between two turns
            first["done"] = True
            at = time.monotonic()
            svc.tick()  # loads the due index, as the first scheduled tick does
            spent = []
            for _ in range(ticks):
                t0 = time.perf_counter()
                svc.tick()
                spent.append((time.perf_counter() - t0) * 1000)
            out.put({"ready": True, "at": at, "tick_ms": statistics.median(spent),
                     "tick_ms_all": spent, "due_next": str(svc.due_index.next_at())})
        return wait(*args, **kwargs)

    svc.inbox.wait = first_wait
    svc.run()
    peak, sender = maild_peak_rss_mb(svc)
    svc.close()
    out.put({"peak_rss_mb": peak, "sender_rss_mb": sender})


def commit_cost(out, data_dir: str, store_url: str, rounds: int = 100,
                reference_dir: str = "") -> None:
    """The store's commit for one new project's writes (an item of 3 tasks and its summary and
    due moment, 5 thread links, the intake mark, 4 queued emails): median ms.

    With `reference_dir` (an embedded store of 1k open items), the rounds alternate between the
    two stores, so that both medians come from the same seconds of the same disk: a commit is one
    fdatasync of ~0.4 ms, and 30 rounds on one empty store gave medians 0.36-0.51 ms run to run,
    more than the 1.2x the 50k/1k target allows; alternated, the ratio compares like with like."""
    import statistics
    from datetime import datetime

    from maild.adapters.store import open_store
    stores = [open_store(store_url or data_dir, inbox="collab@corp.example")]
    if reference_dir:
        stores.append(open_store(reference_dir, inbox="collab@corp.example"))
    template = _commit_template(stores[0])
    spent: list[list[float]] = [[] for _ in stores]
    now = datetime.now().astimezone()
    for n in range(rounds):
        for which, store in enumerate(stores):
            spent[which].append(_one_commit(store, template, f"{which}-{n:04d}", now))
    for store in stores:
        store.close()
    out.put({"commit_ms": statistics.median(spent[0]), "commit_ms_all": spent[0],
             "reference_commit_ms": statistics.median(spent[1]) if reference_dir else None})


def _commit_template(store) -> dict:
    """A 3-task item of the store (or a made-up one) to clone for each commit."""
    import json
    template = next((i for i in map(store.get_item, store.item_ids()[:50])
                     if i and len(i.get("tasks", ())) == 3), None) or {
        "id": "", "state": "open", "title": "项目", "initiator": "li.na@corp.example",
        "tasks": [{"id": f"T-{k}", "name": "任务" * 10, "owner": "wang.zhe@corp.example",
                   "state": "awaiting_confirmation", "deadline": "2027-01-01T18:00:00+08:00",
                   "deliverable": "交付" * 20} for k in range(1, 4)],
        "audit": [{"at": "2026-12-01T10:00:00+08:00", "who": "li.na@corp.example",
                   "action": "created"}], "pad": "x" * 800}
    return json.loads(json.dumps(template))


def _one_commit(store, template: dict, tag: str, now) -> float:
    """Write one new project's documents to `store`, then time its commit (ms)."""
    from datetime import timedelta

    from maild.core.model import Outgoing
    body = "x" * 5000
    item = {**template, "id": f"MD-C{tag}"}
    store.put_item(item)
    store.set_due(item["id"], now + timedelta(hours=8))
    store.mark_processed(f"<commit-{tag}@bench>", {"folder": "Processed", "at": now.isoformat()})
    for k in range(5):
        store.link_message(f"<commit-{tag}-{k}@bench>", item["id"], None)
    for k in range(4):
        store.enqueue(Outgoing(message_id=f"commit-{tag}-{k}@bench", to=("a@corp.example",),
                               subject="s", text=body, html=body), now=now)
    t0 = time.perf_counter()
    store.commit()
    return (time.perf_counter() - t0) * 1000
