"""The guide's replies: how owners and initiators answer in their own words, read as
`maild inspect --json` reads them.

Each reply in tests/data/guide/replies/ has its expected reading in expected.toml (every command
and the arguments that must be read, what maild must say it did not act on);
`bench.accuracy_guide_replies.check_case` judges a reading, the same judge `make accuracy` uses.
A case marked `known_issue` is an expected failure (strict: it fails loudly once fixed).
"""

from __future__ import annotations

from collections import Counter

from corpuscases import each_case, listed_files_are_the_corpus

from bench.accuracy import read_case
from bench.accuracy_guide_replies import CORPUS, check_case, load_cases

CASES = load_cases()


def test_the_corpus_is_broad() -> None:
    kinds = Counter(case["reply"] for case in CASES)
    languages = Counter(case["language"] for case in CASES)
    assert len(CASES) >= 50
    assert {"outlook", "foxmail", "qq", "163", "gmail", "apple"} == {c["client"] for c in CASES}
    assert all(kinds[k] >= 2 for k in ("confirm", "decline", "progress", "status", "blocker",
                                        "delay", "done", "compound", "accept", "ambiguous"))
    assert languages["zh"] >= 20 and languages["en"] >= 15
    assert listed_files_are_the_corpus(CORPUS, CASES)


def test_the_corpus_holds_the_guides_own_forms() -> None:
    names = [c["name"] for case in CASES for c in case["commands"]]
    forms = " ".join(case["file"] for case in CASES)
    assert names.count("blocker") >= 7 and "guide_sentence" in forms and "checkbox" in forms
    assert any(c.get("days") for case in CASES for c in case["commands"])  # "延期两天"
    assert sum(len(case["commands"]) > 1 for case in CASES) >= 6
    assert sum(not case["commands"] for case in CASES) >= 3  # must be asked about


@each_case(CASES)
def test_each_reply_is_read_as_expected(case, shipped_config) -> None:
    assert check_case(case, read_case(case, shipped_config, CORPUS)) == []


def test_the_judge_sees_a_lost_intent() -> None:
    """A reading that drops the delay of a compound reply is a miss, not a pass."""
    case = next(c for c in CASES if c["file"] == "outlook/compound_confirm_delay_zh.eml")
    lost = {"kind": "reply", "language": "zh", "command": {"name": "confirm"}}
    assert check_case(case, lost) == ["commands: expected ['confirm', 'delay'], "
                                      "got [{'name': 'confirm'}]"]
