"""Phase 3: per-email cost with 0, 10k and 50k archived emails' history plus 2,000 open items.

What archived history leaves in the live store: see `child.preload_store`.

The store is filled in one child (`child.preload_store`), then a second child (the one measured)
starts maild on it and handles a batch of new emails; cost = batch time / emails, start-up and
the IMAP login excluded. The sizes take turns, one batch each per round, and each size's cost is
the median of its rounds.
"""

from __future__ import annotations

import importlib.util
from contextlib import ExitStack
from datetime import datetime
from zoneinfo import ZoneInfo

from . import child, corpus
from .harness import median, run_child, tempdir


def archive_available() -> bool:
    return importlib.util.find_spec("maild.adapters.archive") is not None


def run(servers, sizes: tuple[int, ...], open_items: int, batch: int, repeats: int) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    sample = [m.raw for m in corpus.backlog(6, now, seed=11, tag="gs")]
    costs: dict[int, list[float]] = {size: [] for size in sizes}
    peaks: dict[int, list[float]] = {size: [] for size in sizes}
    pre: dict[int, dict] = {}
    with ExitStack() as stack:
        dirs = {size: stack.enter_context(tempdir()) for size in sizes}
        for size in sizes:
            servers.restart_imap()
            pre[size] = run_child(child.preload_store, servers.imap_port, servers.smtp_port,
                                  str(dirs[size]), size, open_items, sample)
        # Sizes take turns (in alternating order) rather than running one after the other: on a
        # shared machine a load change then lands on every size alike, not on the ratio.
        for rep in range(repeats):
            for size in (sizes if rep % 2 == 0 else sizes[::-1]):
                mails = corpus.backlog(batch, now, seed=100 + rep, tag=f"g{size}-{rep}")
                servers.restart_imap()
                servers.inject([m.raw for m in mails])
                res = run_child(child.maild_backlog, servers.imap_port, servers.smtp_port,
                                str(dirs[size]), batch, f"growth {size // 1000}k {rep + 1}/{repeats}",
                                True)
                costs[size].append(res["elapsed"] * 1000 / batch)
                peaks[size].append(res["peak_rss_mb"])
    results = {size: {"ms_per_email": median(costs[size]), "ms_per_email_all": costs[size],
                      "peak_rss_mb": max(peaks[size]), "live_json_mb": pre[size]["live_json_mb"],
                      "counts": pre[size].get("counts"), "pruned": pre[size].get("pruned")}
               for size in sizes}
    base = results[sizes[0]]["ms_per_email"]
    return {"by_size": results, "open_items": open_items, "batch": batch,
            "ratio": {s: r["ms_per_email"] / base for s, r in results.items()},
            "archive": archive_available(),
            "note": (f"archived = items in the archive, their thread links dropped with them "
                     f"(Store.remove_item); the live store keeps the open items with their links, "
                     f"and processed ids / sent entries of the last 30 / 7 of "
                     f"{child.HISTORY_DAYS} days (the rest pruned as Service.tick does)"),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in results.values())}
