"""How well maild reads new items written from the guide: the share of tests/data/guide/new/ read
correctly, per template, per table shape, per language (and per checkbox style, owner form and
date form).

`run()` reads every email through `maild.app.cli.inspect_email` (the `maild inspect --json`
reading) at a fixed `now` and compares it with its entry in tests/data/guide/new/expected.toml:
kind, language, item fields, each task's owner, deadline, state, progress and priority, how many
items it makes, whether it waits for a one-word confirmation, validation error codes, the
receipt's notes and what could not be read. It prints the tables and each miss, and returns
{"correct", "total", "by": {dimension: {name: [correct, total]}}, "misses"}. bench/accuracy.py
calls it after the old corpus (`make accuracy`); tests/mail/test_guide_corpus.py enforces it with
`check_guide_case`, the same judge.
"""

from __future__ import annotations

import sys
import tomllib
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "guide" / "new"
NOW = datetime(2026, 7, 27, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday
DIMENSIONS = ("template", "shape", "language", "client", "checkbox", "owner_form", "date_form")


def load_cases(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    with (corpus / "expected.toml").open("rb") as handle:
        return list(tomllib.load(handle)["case"])


def read_case(case: Mapping[str, Any], config: Any, corpus: Path = CORPUS) -> dict[str, Any]:
    """inspect's reading of one case's email, as of NOW."""
    from maild.app.inspectmail import inspect_email

    return inspect_email((corpus / case["file"]).read_bytes(), config, NOW)


def check_guide_case(case: Mapping[str, Any], result: Mapping[str, Any]) -> list[str]:
    """What differs between a case's expectations and inspect's reading ([] when all agree)."""
    sys.path.insert(0, str(ROOT))
    from bench.accuracy import check_case

    problems = check_case(case, result)
    for key in ("items", "confirm"):
        if key in case and result.get(key, 0 if key == "items" else False) != case[key]:
            problems.append(f"{key}: expected {case[key]!r}, got {result.get(key)!r}")
    if "notes" in case:
        kinds = [note.get("kind") for note in result.get("notes", ())]
        if kinds != list(case["notes"]):
            problems.append(f"notes: expected {case['notes']!r}, got {kinds!r}")
    if "unread" in case and list(result.get("unread", ())) != list(case["unread"]):
        problems.append(f"unread: expected {case['unread']!r}, got {result.get('unread')!r}")
    return problems


def run(config: Any | None = None, *, quiet: bool = False) -> dict[str, Any]:
    """Score the corpus; print per template, shape, language (… date form) unless `quiet`."""
    sys.path.insert(0, str(ROOT))
    if config is None:
        from maild.core.config import load_config

        config = load_config(ROOT / "config.toml")
    by: dict[str, dict[str, list[int]]] = {d: defaultdict(lambda: [0, 0]) for d in DIMENSIONS}
    misses: list[str] = []
    cases = load_cases()
    for case in cases:
        problems = check_guide_case(case, read_case(case, config))
        for dimension in DIMENSIONS:
            if case.get(dimension):
                bucket = by[dimension][str(case[dimension])]
                bucket[0] += not problems
                bucket[1] += 1
        if problems:
            misses.append(f"{case['file']}:\n    " + "\n    ".join(problems))
    correct = len(cases) - len(misses)
    if not quiet:
        print("guide corpus: new items (tests/data/guide/new/)")
        from bench.accuracy import _table

        for dimension in DIMENSIONS:
            print("\n".join(_table(dimension.replace("_", " "), by[dimension])))
            print()
        print(f"overall: {correct} / {len(cases)} read correctly "
              f"({100 * correct / len(cases):.1f} %)")
        if misses:
            print("\nmisses:\n  " + "\n  ".join(misses))
    return {"correct": correct, "total": len(cases),
            "by": {d: {k: list(v) for k, v in by[d].items()} for d in DIMENSIONS},
            "misses": misses}


if __name__ == "__main__":
    run()
