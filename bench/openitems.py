"""Phase 8: the cost of OPEN work — a live store of 0, 1k, 10k and 50k open items (1–5 tasks,
2,000 people: `opendb`), in the embedded store and in PostgreSQL.

Per size and engine, with the daemon (`Service.run`, IDLE) on that store:
- start-up to first IDLE: from the child's spawn to its first wait on the inbox;
- added latency of one new project (3 tasks): APPEND → the sink's 250 for its 4th email, minus
  the floor (an IDLE client sending 4 raw emails), p50 and p99;
- a tick with nothing due (the store's due index), median of 20;
- the daemon's peak RSS (with its sender child's);
- one commit of a new project's writes (`child.commit_cost`), alternated round by round with
  a commit to a copy of the 1k store, so that the 50k/1k ratio compares the same seconds of disk;
- `maild items`, `maild status`, `maild show ID` as an operator runs them (a new process each).
Floors and sizes alternate per block so drift hits all alike.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import child, corpus, opendb
from .harness import CTX, median, percentile, run_child, stop_child, tempdir
from .latency import OUT_SIZE, _rounds
from .progress import note


def _daemon(servers, folder: Path, url: str, rounds: int, label: str, mails) -> dict:
    stop, out = CTX.Event(), CTX.Queue()
    t0 = time.monotonic()
    proc = CTX.Process(target=child.maild_open_daemon,
                       args=(out, stop, servers.imap_port, servers.smtp_port, str(folder), url))
    proc.start()
    try:
        ready = out.get(timeout=300)
        startup = ready["at"] - t0
        time.sleep(0.3)
        times = _rounds(servers, rounds, label, mails)
        stop.set()
        end = out.get(timeout=60)
    finally:
        stop_child(proc, stop, 30)
    return {"startup_s": startup, "ms": times, "tick_ms": ready["tick_ms"],
            "peak_rss_mb": end["peak_rss_mb"], "due_next": ready.get("due_next")}


def _floor(servers, rounds: int, rng, now, tag: str) -> list[float]:
    stop, out = CTX.Event(), CTX.Queue()
    proc = CTX.Process(target=child.floor_idle,
                       args=(out, stop, servers.imap_port, servers.smtp_port, OUT_SIZE))
    proc.start()
    try:
        out.get(timeout=60)
        time.sleep(0.3)
        mails = [corpus.make("project_zh", i, rng, now, tasks=3, tag=tag)
                 for i in range(rounds + 1)]
        return _rounds(servers, rounds, f"open floor {tag}", mails)
    finally:
        stop_child(proc, stop, 20)


def _cli(config: Path, *argv: str, repeat: int = 3) -> float:
    """Median wall time of the command as an installed maild runs it: with its modules' bytecode
    (pip compiles it at install; a checkout under PYTHONDONTWRITEBYTECODE would compile ~40
    modules at every run, ~0.15 s), cached in a folder of the bench's own, warmed by one
    untimed run."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(config.parent / "pycache")
    command = [str(Path(sys.executable).parent / "maild"), "-c", str(config), *argv]
    spent = []
    for n in range(repeat + 1):
        t0 = time.monotonic()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=False, env=env)
        if n:
            spent.append(time.monotonic() - t0)
    return median(spent) or 0.0


def _config(folder: Path, url: str) -> Path:
    path = folder.parent / f"{folder.name}.toml"
    path.write_text(f'[maild]\ndata_dir = "{folder}"\n[mail]\nembedded = false\n'
                    f'[imap]\nhost = "127.0.0.1"\n[smtp]\nhost = "127.0.0.1"\n'
                    f'[store]\nurl = "{url}"\n[rules]\ndir = "{child.ROOT / "rules"}"\n'
                    f'[templates]\ndir = "{child.ROOT / "templates"}"\n', encoding="utf-8")
    return path


def run(servers, sizes: tuple[int, ...], rounds: int, pg=None) -> dict:
    """`pg`: a started `PgServer` (tests/pgserver.py) for the PostgreSQL engine, or None."""
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    rng = random.Random(8)
    results: dict = {"tinydb": {}, "postgresql": {}}
    floors: list[float] = []
    reference: Path | None = None
    with tempdir("maild-bench-open-") as root:
        for size in sizes:
            built = root / f"built-{size}"
            note(f"open items: building a store of {size} open items")
            info = run_child(opendb.build_child, str(built), size, timeout=1800)
            engines = [("tinydb", "")]
            if pg is not None:
                engines.append(("postgresql", pg.url(f"open_{size}")))
            for engine, url in engines:
                folder = root / f"{engine}-{size}"
                shutil.copytree(built, folder)
                if url:
                    run_child(opendb.copy_child, str(folder), url, timeout=1800)
                os.sync()  # the copy's dirty pages are not the daemon's fsyncs to wait behind
                servers.restart_imap()
                floors += _floor(servers, max(3, rounds // 3), rng, now, f"of{size}{engine}")
                servers.restart_imap()
                mails = [corpus.make("project_zh" if i % 2 else "project_en", i, rng, now,
                                     tasks=3, tag=f"o{size}{engine}") for i in range(rounds + 1)]
                res = _daemon(servers, folder, url, rounds, f"open {size} {engine}", mails)
                os.sync()  # the daemon's writes are not the commits' fdatasyncs to wait behind
                cost = run_child(child.commit_cost, str(folder), url, 100,
                                 str(reference) if reference and not url else "")
                res["commit_ms"] = cost["commit_ms"]
                res["reference_commit_ms"] = cost["reference_commit_ms"]
                config = _config(folder, url)
                res["items_s"] = _cli(config, "items")
                res["items_all_s"] = _cli(config, "items", "--limit", "0", repeat=1)
                res["status_s"] = _cli(config, "status")
                res["show_s"] = _cli(config, "show", f"MD-{max(1, size // 2):05d}")
                res["live_mb"] = info["live_mb"]
                results[engine][size] = res
                shutil.rmtree(folder, ignore_errors=True)
            if reference is None and size >= 1000:  # the 1k store the bigger ones commit beside
                reference = root / "commit-reference"
                shutil.copytree(built, reference)
            shutil.rmtree(built, ignore_errors=True)
    floor50 = median(floors) or 0.0
    for by_size in results.values():
        for res in by_size.values():
            added = [m - floor50 for m in res.pop("ms")]
            res["added_p50_ms"] = percentile(added, 50)
            res["added_p99_ms"] = percentile(added, 99)
    return {"floor_p50_ms": floor50, "by_engine": results, "sizes": list(sizes)}
