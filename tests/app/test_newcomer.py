"""The newcomer's path, as the README writes it: `maild init`, then `maild mailserver` and
`maild run --attach` side by side, `maild status` finding ./config.toml, and Ctrl-C stopping
each cleanly. The commands are read from the README's recipe block, so the README stays true."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from daemonproc import inbox_count, wait_for
from mailservers import free_port

from maild.app.shipped import set_value

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("MAILD_CONFIG", None)
PROJECT = (ROOT / "tests" / "data" / "new_project_zh.eml").read_bytes()
LONG_RUNNING = ("mailserver", "run")


def recipe() -> list[list[str]]:
    """The README's two-process recipe: each `maild …` command, as argv, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- recipe: two-process.*?-->\s*```\n(.*?)```", text, re.S)
    assert block, "README.md lost its two-process recipe"
    commands = []
    for line in block.group(1).splitlines():
        for part in line.split("#")[0].split("&&"):
            argv = shlex.split(part)
            if argv and argv[0] == "maild":
                commands.append(argv)
    return commands


def _maild(argv: list[str], cwd: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "maild", *argv[1:]], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **kw)


def _interrupt(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    return out


def test_the_readme_recipe_runs_as_written(tmp_path):
    steps = recipe()
    assert [argv[1] for argv in steps] == ["init", "mailserver", "run", "status"]
    home = tmp_path / "home"
    home.mkdir()
    init = [arg.replace("~", str(home)) for arg in steps[0]]
    done = subprocess.run([sys.executable, "-m", "maild", *init[1:]], capture_output=True,
                          text=True, env=ENV, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    folder = Path(init[-1])
    # this test's own ports: other test runs may hold the shipped ones
    imap_port, smtp_port = free_port(), free_port()
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    for key, port in (("imap_port", imap_port), ("smtp_port", smtp_port)):
        text = set_value(text, "embedded", key, port)
    config.write_text(text, encoding="utf-8")

    server = _maild(steps[1], folder)
    daemon = None
    try:
        wait_for(lambda: inbox_count(imap_port, "li.na@corp.example") == 0, timeout_s=60)
        clash = subprocess.run([sys.executable, "-m", "maild", "run"], capture_output=True,
                               text=True, env=ENV, cwd=folder, timeout=60)
        assert clash.returncode == 69 and "maild run --attach" in clash.stderr
        daemon = _maild(steps[2], folder)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail("li.na@corp.example", ["collab@corp.example"], PROJECT)
        wait_for(lambda: inbox_count(imap_port, "li.na@corp.example") == 1)  # the receipt
        wait_for(lambda: inbox_count(imap_port, "wang.zhe@corp.example") == 1, timeout_s=60)
        status = subprocess.run([sys.executable, "-m", "maild", *steps[3][1:], "--json"],
                                capture_output=True, text=True, env=ENV, cwd=folder, timeout=60)
        assert status.returncode == 0, status.stderr
        assert f"using {config} (from ./config.toml)" in status.stderr
        data = json.loads(status.stdout)
        assert data["daemon"]["running"] and data["items"] == {"open": 1}
        assert data["config"] == str(config)
        log = _interrupt(daemon)
        assert daemon.returncode == 0, log
        assert "event=config" in log and "from=./config.toml" in log
        assert "event=stopped" in log
        # The one warning allowed: the work calendar's gap (2027 is in no installed source yet).
        warnings = [line for line in log.splitlines()
                    if "level=warning" in line and "event=calendar_gap" not in line]
        assert not warnings and "level=error" not in log, log
        assert "Traceback" not in log
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        server_log = _interrupt(server)
    assert server.returncode == 0, server_log
    assert "Traceback" not in server_log


def test_attach_needs_the_embedded_system(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8").replace(
        "embedded = true ", "embedded = false"), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "maild", "-c", str(config), "run", "--attach"],
                          capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=60)
    assert done.returncode == 64 and "--attach is for [mail] embedded = true" in done.stderr
