"""The reply corpus (tests/data/reply_suite/): every case's new text, exactly.

`make accuracy` scores the same corpus against email-reply-parser and mail-parser-reply
(bench/accuracy_replies.py); this test holds maild to it case by case.
"""

from __future__ import annotations

from collections import Counter

import pytest

from bench.accuracy_replies import case_input, first_line, load_cases, normalise, score
from maild.mail.reply import new_text

CASES = load_cases()


def test_the_corpus_covers_every_client_language_and_layout() -> None:
    assert len(CASES) >= 200
    assert len({case["id"] for case in CASES}) == len(CASES)
    languages = Counter(case["lang"] for case in CASES)
    assert set(languages) == {"zh", "zh-Hant", "en", "de", "fr", "es", "pt", "it", "nl", "ru", "ja", "ko"}
    layouts = Counter(case["layout"] for case in CASES)
    assert min(layouts[layout] for layout in ("top", "bottom", "inline")) >= 10
    assert Counter(case["format"] for case in CASES)["html"] >= 30


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_new_text_of_each_case(case: dict) -> None:
    text, html = case_input(case)
    got = normalise(new_text(text, html))
    want = normalise(case["expected"])
    assert first_line(got) == first_line(want)
    assert got == want


def test_score_counts_exact_and_first_line_hits() -> None:
    cases = [{"client": "c", "lang": "en", "id": "a", "text": "x\n\n> q", "expected": "x"},
             {"client": "c", "lang": "zh", "id": "b", "text": "y\nz", "expected": "y"}]
    result = score(lambda text, _html: text.split("\n\n")[0], cases)
    assert (result["cases"], result["exact"], result["first_line"]) == (2, 1, 2)
    assert result["by_lang"]["zh"] == {"cases": 1, "exact": 0, "first_line": 1}
    assert [miss["id"] for miss in result["misses"]] == ["b"]
