"""Phase 1: a project email (3 tasks) APPENDed while the daemon idles → receipt + 3 requests accepted.

Floor, same servers: an IDLE client that sends 4 raw SMTP emails on the push. Both timed from
just before the APPEND to the sink's 250 for the 4th email. Rounds of maild and of the floor
alternate in blocks so drift on a shared machine hits both.
"""

from __future__ import annotations

import random
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from imapclient import IMAPClient

from . import child, corpus
from .harness import CTX, median, percentile, stop_child, tempdir
from .progress import Progress, note

OUT_SIZE = 9000  # about what maild's receipt/request emails weigh (text + HTML)


def _rounds(servers, n: int, label: str, mails: list[corpus.Mail]) -> list[float]:
    times = []
    client = IMAPClient("127.0.0.1", port=servers.imap_port, ssl=False, timeout=30)
    client.login("collab@corp.example", "collab-demo")
    bar = Progress(label, n)
    for i, mail in enumerate(mails[: n + 1]):
        start = servers.count()
        t0 = time.monotonic()
        client.append("INBOX", mail.raw)
        if not servers.wait_count(start + 4, 10):
            note(f"{label}: round {i} timed out ({servers.count() - start}/4 emails)")
            break
        t_end = servers.since(start)[3].at
        if i:  # round 0 warms up (first connection, template caches)
            times.append((t_end - t0) * 1000)
            bar.update(i)
        time.sleep(0.15)
        while servers.count() > start + 4:  # stray output would shift the next round
            start = servers.count()
            time.sleep(0.05)
    bar.close()
    client.logout()
    return times


def _with_daemon(servers, target, args, n, label, mails) -> list[float]:
    stop, out = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=target, args=(out, stop, *args))
    proc.start()
    try:
        out.get(timeout=60)
        time.sleep(0.5)
        return _rounds(servers, n, label, mails)
    finally:
        stop_child(proc, stop, 20)


def run(servers, rounds: int, blocks: int) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    rng = random.Random(1)
    maild_ms: list[float] = []
    floor_ms: list[float] = []
    per_block = max(1, rounds // blocks)
    for block in range(blocks):
        servers.restart_imap()
        floor_ms += _with_daemon(servers, child.floor_idle,
                                 (servers.imap_port, servers.smtp_port, OUT_SIZE), per_block,
                                 f"latency floor {block + 1}/{blocks}",
                                 [corpus.make("project_zh", block * 1000 + i, rng, now, tasks=3,
                                              tag="lf") for i in range(per_block + 1)])
        servers.restart_imap()
        with tempdir() as data:
            maild_ms += _with_daemon(servers, child.maild_daemon,
                                     (servers.imap_port, servers.smtp_port, str(data)), per_block,
                                     f"latency maild {block + 1}/{blocks}",
                                     [corpus.make("project_zh" if i % 2 else "project_en",
                                                  block * 1000 + i, rng, now, tasks=3, tag="lm")
                                      for i in range(per_block + 1)])
    floor50 = median(floor_ms)
    added = [m - floor50 for m in maild_ms] if floor50 is not None else []
    return {"maild_p50_ms": median(maild_ms), "maild_p99_ms": percentile(maild_ms, 99),
            "floor_p50_ms": floor50, "floor_p99_ms": percentile(floor_ms, 99),
            "added_p50_ms": percentile(added, 50), "added_p99_ms": percentile(added, 99),
            "rounds": len(maild_ms)}
