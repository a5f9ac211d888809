"""What the three corpus tests (tests/mail/test_corpus.py, test_guide_corpus.py,
test_guide_replies.py) share: one test per case, a case with a known issue a strict xfail,
and the check that the corpus folder holds exactly the cases listed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest


def each_case(cases: Sequence[Mapping[str, Any]]) -> pytest.MarkDecorator:
    """Parametrize over `case`, named by its file; a `known_issue` must still fail (strict)."""
    return pytest.mark.parametrize(
        "case",
        [pytest.param(case, marks=[pytest.mark.xfail(reason=case["known_issue"], strict=True)])
         if "known_issue" in case else case for case in cases],
        ids=[case["file"] for case in cases])


def listed_files_are_the_corpus(corpus: Path, cases: Sequence[Mapping[str, Any]]) -> bool:
    """Every .eml below `corpus` is a case, and every case's file is there."""
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.eml")) == sorted(
        case["file"] for case in cases)
