"""The guide corpus: new items written from the guide's own templates, read as `maild inspect`
reads them.

Each email in tests/data/guide/new/ (written by tools/guide_corpus.py from the guide's three
tables, its step-3 kickoff and step-4 owners, filled in the ways office workers and their mail
clients do) has its expected reading in expected.toml; `bench.accuracy_guide_new.check_guide_case`
judges a reading, the same judge `make accuracy` uses. A case marked `known_issue` is an
expected failure (strict: it fails loudly once fixed).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

from corpuscases import each_case, listed_files_are_the_corpus

from bench.accuracy_guide_new import CORPUS, NOW, check_guide_case, load_cases, read_case

CASES = load_cases()


def test_the_corpus_covers_every_template_shape_and_language() -> None:
    templates = Counter(case["template"] for case in CASES)
    shapes = {case["shape"] for case in CASES}
    clients = {case["client"] for case in CASES}
    assert len(CASES) >= 90
    assert all(templates[t] >= 6 for t in ("t1", "t2", "t3", "kickoff"))
    assert {"word_cells", "excel_tabs", "html_table", "two_row", "label_lines",
            "label_value_table", "kickoff_lines", "reply_corrected"} <= shapes
    assert {"outlook", "wps", "foxmail", "qq", "163"} <= clients
    languages = Counter(case["language"] for case in CASES)
    assert languages["zh"] >= 60 and languages["en"] >= 12
    assert len({case["checkbox"] for case in CASES if case.get("checkbox")}) >= 15
    assert len({case["owner_form"] for case in CASES if case.get("owner_form")}) >= 8
    assert len({case["date_form"] for case in CASES if case.get("date_form")}) >= 15
    # Test functions alike in shape to test_corpus's (duplicates): each corpus has its own checks.
    assert listed_files_are_the_corpus(CORPUS, CASES)


@each_case(CASES)
def test_each_email_is_read_as_expected(case, shipped_config) -> None:
    assert check_guide_case(case, read_case(case, shipped_config)) == []


def test_inspect_now_email_reads_dates_as_of_the_emails_date(shipped_config_path) -> None:
    """`maild inspect --now email`: 两周内 and 下周三 as of the email's own Date (27 July)."""
    case = next(c for c in CASES if c["file"] == "t1/163_html_rowspan_br.eml")
    out = subprocess.run(
        [sys.executable, "-m", "maild", "-c", str(shipped_config_path), "inspect",
         str(CORPUS / case["file"]), "--json", "--now", "email"], capture_output=True,
        check=True)
    result = json.loads(out.stdout)
    assert [t["deadline_at"] for t in result["item"]["tasks"]] == [
        t["deadline_at"] for t in case["tasks"]]
    at_noon = subprocess.run(
        [sys.executable, "-m", "maild", "-c", str(shipped_config_path), "inspect",
         str(CORPUS / case["file"]), "--json", "--now", NOW.replace(day=29).isoformat()],
        capture_output=True, check=True)
    later = json.loads(at_noon.stdout)["item"]["tasks"]
    assert later[0]["deadline_at"] == "2026-08-12T18:00:00+08:00"  # 两周内 from Wednesday


def test_inspect_refuses_a_bad_now(shipped_config_path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "maild", "-c", str(shipped_config_path), "inspect",
         str(CORPUS / CASES[0]["file"]), "--now", "next tuesday"], capture_output=True)
    assert out.returncode == 64 and b"--now" in out.stderr
