"""demo.py: `maild demo --once` plays the Q3 kickoff on the embedded mail system and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent


def test_demo_once_plays_the_kickoff_and_every_confirmation():
    proc = subprocess.run([sys.executable, "-m", "maild", "-c", str(ROOT / "config.toml"), "demo",
                           "--once", "--free-ports"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert out.count(" IN ") == 4  # the project and three replies
    assert out.count(" OUT ") == 10  # receipt, 3 requests, 3 notices to 李娜, 3 acknowledgements
    assert "MD-0001/T-1=not_started, MD-0001/T-2=not_started, MD-0001/T-3=not_started" in out
    assert "✔ demo scenario complete" in out
