"""Phase 2: N structured emails wait when the daemon starts; emails/s until processed and all sent.

Floor, same servers, same messages: raw UID FETCH (chunks of 200) + raw aiosmtplib sending of as
many emails, of the same mean size, as maild sent. No parsing, no storage.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from . import child, corpus
from .harness import median, run_child, tempdir
from .progress import note


def run(servers, count: int, repeats: int, one_core: bool = False) -> dict:
    """`one_core`: maild (daemon and sender child) pinned to one CPU; the floor is not."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    mails = corpus.backlog(count, now)
    expected = sum(1 + m.tasks for m in mails)
    raws = [m.raw for m in mails]
    maild_rates, floor_rates, peaks, sizes = [], [], [], []
    for rep in range(repeats):
        servers.restart_imap()
        servers.inject(raws)
        start = servers.count()
        with tempdir() as data:
            res = run_child(child.maild_backlog, servers.imap_port, servers.smtp_port, str(data),
                            count, f"backlog maild {rep + 1}/{repeats}"
                            + (" (1 core)" if one_core else ""), False, one_core)
        accepted = servers.since(start)
        if len(accepted) != expected or res["processed"] != count:
            note(f"backlog: maild processed {res['processed']}/{count}, sent {len(accepted)}"
                 f"/{expected} expected emails")
        maild_rates.append(count / res["elapsed"])
        peaks.append(res["peak_rss_mb"])
        mean_size = sum(a.size for a in accepted) // max(1, len(accepted))
        sizes.append(mean_size)
        servers.restart_imap()
        servers.inject(raws)
        floor = run_child(child.floor_backlog, servers.imap_port, servers.smtp_port,
                          len(accepted), mean_size)
        floor_rates.append(count / floor["elapsed"])
    m, f = median(maild_rates), median(floor_rates)
    return {"emails": count, "outgoing": expected, "maild_emails_per_s": m,
            "floor_emails_per_s": f, "ratio_to_floor": m / f if m and f else None,
            "peak_rss_mb": max(peaks), "mean_out_bytes": median(sizes),
            "maild_ms_per_email": 1000 / m if m else None,
            "floor_ms_per_email": 1000 / f if f else None, "one_core": one_core}
