"""Phase 5b: memory while maild handles one 20 MB email (peak RSS above a warmed-up baseline)."""

from __future__ import annotations

import random
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from . import child, corpus
from .harness import CTX, median, tempdir


def _once(servers, size: int, raw: bytes) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    servers.restart_imap()
    servers.inject([corpus.make("task_en", 1, random.Random(3), now, tag="warm").raw])
    out, go = CTX.Queue(), CTX.Event()
    with tempdir() as data:
        proc = CTX.Process(target=child.maild_big,
                           args=(out, go, servers.imap_port, servers.smtp_port, str(data), size))
        proc.start()
        try:
            out.get(timeout=60)
            servers.inject([raw])
            time.sleep(0.05)
            go.set()
            res = out.get(timeout=300)
        finally:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    return res


def run(servers, size: int, repeats: int) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    raw = corpus.big(size, now)
    runs = [_once(servers, len(raw), raw) for _ in range(repeats)]
    added = [max(0.0, r["peak_mb"] - r["base_mb"]) for r in runs]
    return {"bytes": len(raw), "added_mb": median(added),
            "ratio": median(added) * 2**20 / len(raw), "base_mb": median([r["base_mb"] for r in runs]),
            "elapsed_s": median([r["elapsed"] for r in runs]), "outcome": runs[-1]["outcomes"]}
