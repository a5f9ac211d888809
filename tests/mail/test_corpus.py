"""The corpus: 100 realistic emails from every client, read as `maild inspect --json` reads them.

Each email in tests/data/corpus/ has its expected reading in expected.toml (kind, language,
command and arguments, first line of the new text, fields, tasks, errors, failed recipients);
`bench.accuracy.check_case` judges a reading, the same judge `make accuracy` uses. A case marked
`known_issue` is an expected failure (strict: it fails loudly once fixed, so the mark is removed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from corpuscases import each_case, listed_files_are_the_corpus

from bench.accuracy import CORPUS, check_case, load_cases, read_case

CASES = load_cases()


def test_the_corpus_is_broad() -> None:
    kinds = Counter(case["kind"] for case in CASES)
    clients = {case["client"] for case in CASES}
    languages = Counter(case["language"] for case in CASES)
    assert len(CASES) >= 60
    assert all(kinds[k] >= 2 for k in ("new_item", "reply", "auto_reply", "bounce", "unrecognized"))
    assert {"outlook", "gmail", "foxmail", "qq", "coremail", "mailmaster", "apple", "thunderbird",
            "alimail", "feishu"} <= clients
    assert languages["zh"] >= 20 and languages["en"] >= 20
    assert listed_files_are_the_corpus(CORPUS, CASES)


@each_case(CASES)
def test_each_email_is_read_as_expected(case, shipped_config) -> None:
    assert check_case(case, read_case(case, shipped_config)) == []


def test_the_real_cli_gives_the_same_reading(shipped_config_path) -> None:
    case = next(c for c in CASES if c["file"] == "foxmail/reply_decline_zh_gbk.eml")
    out = subprocess.run(
        [sys.executable, "-m", "maild", "-c", str(shipped_config_path), "inspect",
         str(CORPUS / case["file"]), "--json"], capture_output=True, check=True)
    result = json.loads(out.stdout)
    assert result["kind"] == "reply"
    assert result["command"] == {"name": "decline", "reason": "本周出差，建议转给李堃"}
    assert result["new_text"].split("\n")[0] == "拒绝：本周出差，建议转给李堃"
