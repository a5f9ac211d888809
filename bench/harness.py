"""Shared plumbing: spawned children, temp dirs, medians."""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

CTX = multiprocessing.get_context("spawn")


def run_child(target: Callable, *args, timeout: float = 900) -> dict:
    """Run `target(out, *args)` in a fresh interpreter; return the dict it put on `out`."""
    out = CTX.Queue()
    proc = CTX.Process(target=target, args=(out, *args))
    proc.start()
    try:
        result = out.get(timeout=timeout)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    return result


def stop_child(proc, stop, timeout: float = 20) -> None:
    """Ask a child started with a `stop` event to end, then make sure it has."""
    stop.set()
    proc.join(timeout=timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()


@contextmanager
def tempdir(prefix: str = "maild-bench-"):
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
