"""demo.py: `maild demo --once` plays the Q3 kickoff on the embedded mail system and exits 0,
keeps its data where `maild status -c …` finds it (and says so), and stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from maild.app.demo import DemoFailed, demo_config
from maild.core.config import load_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def maild(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "maild", *args], capture_output=True, text=True,
                          timeout=120, env=ENV, cwd=cwd)


def test_demo_once_plays_the_kickoff_and_keeps_its_data_for_status(own_config):
    folder = own_config.parent
    for _run in range(2):  # the second run starts afresh: MD-0001 again, not MD-0002
        proc = maild("-c", str(own_config), "demo", "--once", "--free-ports", cwd=folder)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        out = proc.stdout
        assert out.count(" IN ") == 4  # the project and three replies
        assert out.count(" OUT ") == 10  # receipt, 3 requests, 3 notices to 李娜, 3 acks
        assert "MD-0001/T-1=not_started, MD-0001/T-2=not_started, MD-0001/T-3=not_started" in out
        assert "✔ demo scenario complete" in out
        assert "maild status -c var/demo/config.toml" in out  # relative to where it was run
    status = maild("status", "-c", "var/demo/config.toml", "--json", cwd=folder)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["items"] == {"open": 1} and data["tasks"] == {"not_started": 3}
    assert data["data_dir"] == str(folder / "var" / "demo")
    shown = maild("show", "-c", "var/demo/config.toml", "MD-0001", cwd=folder)
    assert shown.returncode == 0 and "Q3新品推广项目" in shown.stdout
    assert not (folder / "var" / "live.json").exists()  # the config's own store is untouched


def test_the_demo_empties_only_a_folder_it_wrote(own_config):
    source = load_config(own_config)
    folder = source.data_dir / "demo"
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text("[maild]\n", encoding="utf-8")  # someone else's
    with pytest.raises(DemoFailed, match="maild demo did not write"):
        demo_config(own_config, source, 1, 2)
    assert (folder / "config.toml").read_text(encoding="utf-8") == "[maild]\n"
    (folder / "config.toml").unlink()
    written = demo_config(own_config, source, 14999, 15999)
    demo = load_config(written)
    assert (demo.data_dir, demo.archive_dir) == (folder, folder / "archive")
    assert (demo.embedded_system.imap_port, demo.embedded_system.smtp_port) == (14999, 15999)
    assert demo.rules_dir == source.rules_dir and demo.templates_dir == source.templates_dir
    (folder / "leftover").write_text("x")
    demo_config(own_config, source, 14999, 15999)  # its own folder: emptied
    assert not (folder / "leftover").exists()


def test_ctrl_c_stops_the_serving_demo_cleanly(own_config):
    """Ctrl-C while the demo keeps serving: exit 0, no IMAP "Bad file descriptor" warning (the
    daemon's thread used to lose its socket to the shutdown), no traceback."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "maild", "-c", str(own_config), "demo", "--free-ports"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV,
        cwd=own_config.parent,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as a terminal has it
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C stops" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(lines) + rest
    assert proc.returncode == 0, out[-3000:]
    assert "stopping…" in out
    assert "Bad file descriptor" not in out and "Traceback" not in out
    # The one warning allowed: the work calendar's gap (2027 is in no installed source yet).
    warnings = [line for line in out.splitlines()
                if "level=warning" in line and "event=calendar_gap" not in line]
    assert not warnings and "level=error" not in out
