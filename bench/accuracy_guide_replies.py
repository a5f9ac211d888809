"""How well maild reads the guide's replies: what owners and initiators write back in their own words.

`make accuracy` runs this after the project's own corpus (one line in `bench/accuracy.py`). Every
reply in `tests/data/guide/replies/` goes through `maild inspect --json`'s reading at the fixed
`now` of `bench/accuracy.py`, and is compared with its entry in `expected.toml`: the commands it
gives, in order, with the arguments that must be read (progress in a sentence or as a ticked box,
blockers as the guide's sentence, delays by date or by duration, compound replies), what maild
must say it did not act on, and — for a reply that gives no clear command — that nothing is read.
Prints correct/total per reply kind and per language, and each miss. Measures, never fails:
`tests/mail/test_guide_replies.py` enforces.

Surprise: text arguments are compared without their final full stop (。 or .), which is the
writer's punctuation, not part of a reason or a note.
"""

from __future__ import annotations

import sys
import tomllib
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "guide" / "replies"


def load_cases(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """The manifest's cases, in file order."""
    with (corpus / "expected.toml").open("rb") as handle:
        return list(tomllib.load(handle)["case"])


def commands_of(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every command a reading gives (`commands`; a reading with only `command` gives that one)."""
    if "commands" in result:
        return list(result["commands"] or ())
    return [result["command"]] if result.get("command") else []


def _same(expected: Any, got: Any) -> bool:
    if isinstance(expected, str) and isinstance(got, str):
        return expected.strip().rstrip("。.") == got.strip().rstrip("。.")
    return bool(expected == got)


def check_case(case: Mapping[str, Any], result: Mapping[str, Any]) -> list[str]:
    """What differs between a case's expectations and inspect's reading ([] when all agree)."""
    problems: list[str] = []
    if result.get("kind") != "reply":
        problems.append(f"kind: expected 'reply', got {result.get('kind')!r}")
    if result.get("language") != case["language"]:
        problems.append(f"language: expected {case['language']!r}, got {result.get('language')!r}")
    wanted, got = list(case["commands"]), commands_of(result)
    if [c["name"] for c in wanted] != [c.get("name") for c in got]:
        problems.append(f"commands: expected {[c['name'] for c in wanted]}, got "
                        f"{[dict(c) for c in got]}")
    else:
        for want, have in zip(wanted, got, strict=True):
            problems += [f"{want['name']}.{key}: expected {value!r}, got {have.get(key)!r}"
                         for key, value in want.items() if not _same(value, have.get(key))]
    unread = " | ".join(result.get("unread") or ())
    problems += [f"unread: {part!r} not reported (unread: {unread!r})"
                 for part in case.get("unread", ()) if part not in unread]
    if "attachments" in case and result.get("_attachments") != case["attachments"]:
        problems.append(f"attachments: expected {case['attachments']}, "
                        f"got {result.get('_attachments')}")
    return problems


def run(config: Any = None) -> dict[str, Any]:
    """Score the guide's replies; print the tables and misses; return the figures."""
    sys.path.insert(0, str(ROOT))
    from bench.accuracy import _table, read_case
    from maild.core.config import load_config

    config = config or load_config(ROOT / "config.toml")
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_language: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: dict[str, list[str]] = {}
    cases = load_cases()
    for case in cases:
        problems = check_case(case, read_case(case, config, CORPUS))
        for bucket in (by_kind[case["reply"]], by_language[case["language"]]):
            bucket[0] += not problems
            bucket[1] += 1
        if problems:
            misses[case["file"]] = problems
    correct = len(cases) - len(misses)
    print("\nthe guide's replies (tests/data/guide/replies/)")
    print("\n".join(_table("reply kind", by_kind)))
    print()
    print("\n".join(_table("language", by_language)))
    print()
    print(f"overall: {correct} / {len(cases)} replies read correctly "
          f"({100 * correct / len(cases):.1f} %)")
    if misses:
        print("\nmisses:\n  " + "\n  ".join(f"{file}:\n    " + "\n    ".join(problems)
                                           for file, problems in misses.items()))
    return {"correct": correct, "total": len(cases),
            "by_kind": {k: tuple(v) for k, v in by_kind.items()},
            "by_language": {k: tuple(v) for k, v in by_language.items()}, "misses": misses}


if __name__ == "__main__":
    run()
