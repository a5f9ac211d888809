"""Phase 9: a schedule run in the real daemon, and intake during it.

The store holds phase 4's world (2,000 owners, 20,000 open tasks, everyone's digest due: Monday
09:00); the daemon (`Service.run`, its clock set to that Monday morning) starts the run at once
and carries it out in slices between intake batches, its sender's child sending each slice. Meanwhile
the bench APPENDs a new 3-task project every 150 ms and times each until the sink has its 4
answers (matched by In-Reply-To). Reported: the run's time from the tick to its last email
planned, rendered and enqueued (`enqueued_s`), to its end (`run_s`: the run ends once its last
email is sent) and to the outbox's last email sent (`sent_s`), the emails sent (the run's and
intake's), the intake latencies during it (p50/p99), and the floor: the same number of emails of
the same mean size sent raw over one connection to the same sink right after (`floor_s`).
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import child, corpus
from .harness import CTX, percentile, run_child, stop_child, tempdir
from .progress import note


def build_child(out, folder: str, owners: int, tasks: int) -> None:
    """The scenario's items in an embedded store (nothing sent yet: every digest is due)."""
    from maild.adapters.store import Store

    from .schedules import scenario

    items = scenario(owners, tasks)[0]
    store = Store(Path(folder))
    for n, item in enumerate(items, 1):
        store.put_item(item)
        if n % 2000 == 0:
            store.commit()
    store.meta_set("item_seq", len(items))
    store.commit()
    store.engine.compact()
    store.close()
    out.put({"items": len(items)})


def daemon_child(out, stop, imap_port: int, smtp_port: int, folder: str, owners: int) -> None:
    import dataclasses
    import threading
    from datetime import timedelta

    from maild.core.people import Directory

    from . import child
    from .schedules import scenario

    _items, monday, _rules, _cal, people, _renderer = scenario(owners, 0)
    offset = monday - datetime.now(monday.tzinfo) + timedelta(seconds=1)
    svc = child.service(child.config(imap_port, smtp_port, folder))
    svc.clock = lambda: datetime.now(monday.tzinfo) + offset
    svc.rules = dataclasses.replace(
        svc.rules, people=Directory(tuple(svc.rules.people.people) + tuple(people.people)))
    threading.Thread(target=lambda: (stop.wait(), svc.stop_event.set()), daemon=True).start()
    svc.inbox.connect()
    svc.slicing = True
    marks: dict[str, float] = {}
    run_slice, wait = svc.run_slice, svc.inbox.wait

    def watched_slice(*args, **kwargs):
        run_slice(*args, **kwargs)
        if "enqueued" not in marks and (svc.schedule_run is None or svc.schedule_run.done):
            marks["enqueued"] = time.monotonic()
        if svc.schedule_run is None and "run" not in marks:
            marks["run"] = time.monotonic()

    def watched_wait(*args, **kwargs):
        if ("run" in marks and "sent" not in marks and not svc._sending
                and svc.store.outbox_next_due() is None):
            marks["sent"] = time.monotonic()
            out.put({"run_s": marks["run"] - marks["tick"], "sent_s": marks["sent"] - marks["tick"],
                     "enqueued_s": marks["enqueued"] - marks["tick"],
                     "queued": len(getattr(svc, "_last_run_queued", ()))})
        return wait(*args, **kwargs)

    svc.run_slice, svc.inbox.wait = watched_slice, watched_wait
    marks["tick"] = time.monotonic()
    svc.tick()  # the due index says everyone's digest is due: the run starts
    out.put({"ready": True})
    svc.run()
    svc.close()
    out.put({"peak_rss_mb": child.peak_rss_mb()})


def run(servers, owners: int, tasks: int) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    rng = random.Random(9)
    with tempdir("maild-bench-sched-") as root:
        folder = root / "store"
        note(f"schedule intake: building {owners} owners / {tasks} tasks")
        run_child(build_child, str(folder), owners, tasks, timeout=900)
        servers.restart_imap()
        stop, out = CTX.Event(), CTX.Queue()
        proc = CTX.Process(target=daemon_child, args=(out, stop, servers.imap_port,
                                                      servers.smtp_port, str(folder), owners))
        start = servers.count()
        proc.start()
        latencies: list[float] = []
        result: dict = {}
        got: list = []
        try:
            out.get(timeout=300)
            from imapclient import IMAPClient
            client = IMAPClient("127.0.0.1", port=servers.imap_port, ssl=False, timeout=30)
            client.login("collab@corp.example", "collab-demo")
            sent: list[tuple[str, float]] = []
            deadline = time.monotonic() + 120
            n = 0
            while time.monotonic() < deadline:
                if out.empty():
                    mail = corpus.make("project_zh", n, rng, now, tasks=3, tag="si")
                    n += 1
                    sent.append((mail.message_id, time.monotonic()))
                    client.append("INBOX", mail.raw)
                    time.sleep(0.15)
                    continue
                result = out.get()
                break
            client.logout()
            time.sleep(1.0)
            answers: dict[str, list[float]] = {}
            for got in servers.since(start):
                answers.setdefault(got.in_reply_to, []).append(got.at)
            for message_id, at in sent:
                times = sorted(answers.get(message_id, ()))
                if len(times) >= 4:
                    latencies.append((times[3] - at) * 1000)
            got = servers.since(start)
            result["emails_sent"] = len(got)
        finally:
            stop_child(proc, stop, 60)
        if got:
            floor = run_child(child.floor_backlog, servers.imap_port, servers.smtp_port, len(got),
                              sum(a.size for a in got) // len(got))
            result["floor_s"] = floor["elapsed"] - floor["fetch_s"]
    return {**result, "intake_emails": len(latencies), "owners": owners, "tasks": tasks,
            "intake_p50_ms": percentile(latencies, 50), "intake_p99_ms": percentile(latencies, 99),
            "intake_ms": latencies}
