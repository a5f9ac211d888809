"""Phase 3: per-email cost with 0, 10k and 50k archived emails' history plus 2,000 open items.

What archived history leaves in the live store: see `child.preload_store`.

The store is filled in one child (`child.preload_store`), then a second child (the one measured)
starts maild on it and handles a batch of new emails; cost = batch time / emails, start-up and
the IMAP login excluded.
"""

from __future__ import annotations

import importlib.util
from datetime import datetime
from zoneinfo import ZoneInfo

from . import child, corpus
from .harness import median, run_child, tempdir


def archive_available() -> bool:
    return importlib.util.find_spec("maild.archive") is not None


def run(servers, sizes: tuple[int, ...], open_items: int, batch: int, repeats: int) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    sample = [m.raw for m in corpus.backlog(6, now, seed=11, tag="gs")]
    results = {}
    for size in sizes:
        costs, peaks, live = [], [], None
        with tempdir() as data:
            servers.restart_imap()
            pre = run_child(child.preload_store, servers.imap_port, servers.smtp_port, str(data),
                            size, open_items, sample)
            live = pre["live_json_mb"]
            for rep in range(repeats):
                mails = corpus.backlog(batch, now, seed=100 + rep, tag=f"g{size}-{rep}")
                servers.restart_imap()
                servers.inject([m.raw for m in mails])
                res = run_child(child.maild_backlog, servers.imap_port, servers.smtp_port,
                                str(data), batch, f"growth {size // 1000}k {rep + 1}/{repeats}",
                                True)
                costs.append(res["elapsed"] * 1000 / batch)
                peaks.append(res["peak_rss_mb"])
        results[size] = {"ms_per_email": median(costs), "peak_rss_mb": max(peaks),
                         "live_json_mb": live, "counts": pre.get("counts"),
                         "pruned": pre.get("pruned")}
    base = results[sizes[0]]["ms_per_email"]
    return {"by_size": results, "open_items": open_items, "batch": batch,
            "ratio": {s: r["ms_per_email"] / base for s, r in results.items()},
            "archive": archive_available(),
            "note": (f"archived = items in the archive; the live store keeps 4 thread links per "
                     f"archived email, and processed ids / sent entries of the last 30 / 7 of "
                     f"{child.HISTORY_DAYS} days (the rest pruned as Service.tick does)"),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results.values())}
