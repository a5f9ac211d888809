"""How well maild reads what people really write: the share of the corpus read correctly.

`make accuracy` runs this file. Every email in `tests/data/corpus/` goes through
`maild.app.cli.inspect_email` (the `maild inspect --json` reading) at a fixed `now`, and is compared
with its entry in `tests/data/corpus/expected.toml`: kind, language, command and its arguments,
first line of the new text, item fields, tasks, validation error codes, and — for bounces — the
failed recipients `decode` found. Prints correct/total per client and per kind, the overall share,
and each miss with what differed. Always exits 0: it measures, `tests/mail/test_corpus.py` enforces.

`check_case` is shared with the test, so both judge a reading the same way.
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
CORPUS = ROOT / "tests" / "data" / "corpus"
NOW = datetime(2026, 8, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))  # a Monday


def load_cases(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """The manifest's cases, in file order."""
    with (corpus / "expected.toml").open("rb") as handle:
        return list(tomllib.load(handle)["case"])


def read_case(case: Mapping[str, Any], config: Any, corpus: Path = CORPUS) -> dict[str, Any]:
    """inspect's reading of one case's email, plus what decode itself found (recipients, files)."""
    from maild.app.inspectmail import inspect_email
    from maild.mail.decode import decode

    raw = (corpus / case["file"]).read_bytes()
    result = inspect_email(raw, config, NOW)
    msg = decode(raw)
    result["_failed_recipients"] = list(getattr(msg, "failed_recipients", ()))
    result["_attachments"] = len(msg.attachments)
    result["_subject"] = msg.subject
    result["_from_name"] = msg.from_name
    return result


def category(case: Mapping[str, Any]) -> str:
    """The kind bucket a case is scored under ("help" for a help request outside a thread)."""
    command = case.get("command")
    if case["kind"] == "unrecognized" and isinstance(command, dict) and command["name"] == "help":
        return "help"
    return str(case["kind"])


def _subset(expected: Mapping[str, Any], actual: Mapping[str, Any] | None, where: str) -> list[str]:
    actual = actual or {}
    wanted = {key: None if value == "none" else value for key, value in expected.items()}
    return [f"{where}.{key}: expected {value!r}, got {actual.get(key)!r}"
            for key, value in wanted.items() if actual.get(key) != value]


def check_case(case: Mapping[str, Any], result: Mapping[str, Any]) -> list[str]:
    """What differs between a case's expectations and inspect's reading ([] when all agree)."""
    problems: list[str] = []
    for key in ("kind", "language"):
        if result.get(key) != case[key]:
            problems.append(f"{key}: expected {case[key]!r}, got {result.get(key)!r}")
    command = case.get("command", "none")
    got = result.get("command")
    if command == "none":
        if got is not None:
            problems.append(f"command: expected none, got {got!r}")
    elif got is None:
        problems.append(f"command: expected {command!r}, got none")
    else:
        problems += _subset(command, got, "command")
        problems += [f"command.{key}: expected absent, got {got.get(key)!r}"
                     for key in case.get("missing_args", ()) if got.get(key)]
    if "first_line" in case:
        first = (result.get("new_text") or "").split("\n")[0]
        if first != case["first_line"]:
            problems.append(f"first_line: expected {case['first_line']!r}, got {first!r}")
    if "item" in case:
        problems += _subset(case["item"], result.get("item"), "item")
    if "tasks" in case:
        tasks = (result.get("item") or {}).get("tasks") or []
        if len(tasks) != len(case["tasks"]):
            problems.append(f"tasks: expected {len(case['tasks'])}, got {len(tasks)}")
        for number, (want, task) in enumerate(zip(case["tasks"], tasks, strict=False), start=1):
            problems += _subset(want, task, f"task{number}")
    if "errors" in case:
        codes = [e["code"] if isinstance(e, Mapping) else str(e) for e in result.get("errors", ())]
        if codes != list(case["errors"]):
            problems.append(f"errors: expected {case['errors']!r}, got {codes!r}")
    if "failed_recipients" in case and result.get("_failed_recipients") != case["failed_recipients"]:
        problems.append(f"failed_recipients: expected {case['failed_recipients']!r}, "
                        f"got {result.get('_failed_recipients')!r}")
    if "attachments" in case and result.get("_attachments") != case["attachments"]:
        problems.append(f"attachments: expected {case['attachments']}, got {result.get('_attachments')}")
    if "from_name" in case and result.get("_from_name") != case["from_name"]:
        problems.append(f"from_name: expected {case['from_name']!r}, got {result.get('_from_name')!r}")
    if "subject_contains" in case and case["subject_contains"] not in result.get("_subject", ""):
        problems.append(f"subject: {case['subject_contains']!r} not in {result.get('_subject')!r}")
    return problems


def _table(title: str, counts: Mapping[str, list[int]]) -> list[str]:
    lines = [f"{title:<14} correct / total"]
    for name in sorted(counts):
        ok, total = counts[name]
        lines.append(f"  {name:<12} {ok:>3} / {total:<3} {100 * ok / total:5.1f} %")
    return lines


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from maild.core.config import load_config

    config = load_config(ROOT / "config.toml")
    by_client: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    cases = load_cases()
    for case in cases:
        problems = check_case(case, read_case(case, config))
        for bucket in (by_client[case["client"]], by_kind[category(case)]):
            bucket[0] += not problems
            bucket[1] += 1
        if problems:
            misses.append(f"{case['file']}:\n    " + "\n    ".join(problems))
    correct = sum(ok for ok, _ in by_kind.values())
    print("\n".join(_table("client", by_client)))
    print()
    print("\n".join(_table("kind", by_kind)))
    print()
    print(f"overall: {correct} / {len(cases)} read correctly ({100 * correct / len(cases):.1f} %)")
    if misses:
        print("\nmisses:\n  " + "\n  ".join(misses))
    __import__("bench.accuracy_replies", fromlist=["run"]).run()  # the reply new-text corpus
    __import__("bench.accuracy_guide_replies", fromlist=["run"]).run(config)
    print()
    __import__("bench.accuracy_guide_new", fromlist=["run"]).run(config)  # the guide corpus
    return 0


if __name__ == "__main__":
    sys.exit(main())
