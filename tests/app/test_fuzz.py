"""The atheris fuzz targets (fuzz/): a short run on every `make test`, a long one with `make reliability` (pytest -m slow).

Each target runs as its own process (libFuzzer takes over the interpreter); a crash, an
unexpected exception or one input over 2 s (`-timeout`) fails the test, with libFuzzer's report.
The decode target starts from the .eml corpus of tests/data.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

try:
    import atheris  # noqa: F401
except ImportError:  # pragma: no cover - atheris is in the test extras; wheels cover CPython 3.11+
    pytest.skip("atheris is not installed (pip install -e '.[test]')", allow_module_level=True)


def _fuzz(target: str, runs: int, tmp_path: Path, seeds: bool) -> int:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    if seeds:
        for index, path in enumerate(sorted((ROOT / "tests" / "data").rglob("*.eml"))):
            shutil.copy(path, corpus / f"seed{index:03d}.eml")
    args = [sys.executable, str(ROOT / "fuzz" / target), f"-runs={runs}", "-timeout=2",
            "-max_len=16384", "-rss_limit_mb=2048", "-seed=6", f"-artifact_prefix={tmp_path}/",
            str(corpus)]
    done = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=3600)
    log = done.stderr[-6000:]
    assert done.returncode == 0, f"{target} found something:\n{log}"
    match = re.search(r"Done (\d+) runs", done.stderr)
    assert match, log
    print(f"\n{target}: {match.group(1)} executions, no findings")
    return int(match.group(1))


@pytest.mark.parametrize(("target", "runs", "seeds"), [
    ("fuzz_decode.py", 2500, True),
    ("fuzz_render.py", 2000, False),
], ids=["decode", "render"])
def test_short_fuzz_run(target, runs, seeds, tmp_path):
    assert _fuzz(target, runs, tmp_path, seeds) >= runs


@pytest.mark.slow
@pytest.mark.parametrize(("target", "seeds"), [("fuzz_decode.py", True), ("fuzz_render.py", False)],
                         ids=["decode", "render"])
def test_long_fuzz_run(target, seeds, tmp_path):
    assert _fuzz(target, 100_000, tmp_path, seeds) >= 100_000
