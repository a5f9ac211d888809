"""The `maild run` and `maild mailserver` processes: signals, the embedded system, restarts.

SIGTERM finishes the current batch and exits 0; SIGHUP re-reads rules and templates without a
restart; `maild mailserver` keeps the mail while the daemon is killed and restarted.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemonproc import inbox_count, wait_for, write_daemon_config
from mailservers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROJECT = (ROOT / "tests" / "data" / "new_project_zh.eml").read_bytes()


def _config(tmp_path: Path, *, embedded: bool, imap_port: int, smtp_port: int) -> Path:
    """The shipped accounts and rules, this test's own ports and directories."""
    from maild.core.config import load_config

    accounts = load_config(ROOT / "config.toml").embedded_system.accounts
    return write_daemon_config(tmp_path, host="127.0.0.1", imap_port=imap_port,
                               smtp_port=smtp_port, embedded=embedded, accounts=accounts)


def _spawn(config: Path, command: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TEST_IMAP_PASSWORD": "collab-demo",
           "MAILD_SECRET": "daemon-test"}
    return subprocess.Popen([sys.executable, "-m", "maild", "-c", str(config), command], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _send(port: int) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.sendmail("li.na@corp.example", ["collab@corp.example"], PROJECT)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> str:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=20)
    return out


def test_run_with_embedded_mail_reloads_on_sighup_and_stops_on_sigterm(tmp_path):
    imap_port, smtp_port = free_port(), free_port()
    daemon = _spawn(_config(tmp_path, embedded=True, imap_port=imap_port, smtp_port=smtp_port),
                    "run")
    try:
        wait_for(lambda: inbox_count(imap_port, "li.na@corp.example") == 0)
        _send(smtp_port)
        wait_for(lambda: inbox_count(imap_port, "wang.zhe@corp.example") == 1)
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1.5)
    finally:
        log = _stop(daemon)
    assert daemon.returncode == 0, log
    assert "event=reloaded" in log and "event=stopped" in log


def test_mailserver_keeps_mail_while_the_daemon_is_killed_and_restarted(tmp_path):
    imap_port, smtp_port = free_port(), free_port()
    server_config = _config(tmp_path, embedded=True, imap_port=imap_port, smtp_port=smtp_port)
    server = _spawn(server_config, "mailserver")
    try:
        wait_for(lambda: inbox_count(imap_port, "li.na@corp.example") == 0)
        daemon_dir = tmp_path / "daemon"
        daemon_dir.mkdir()
        config = _config(daemon_dir, embedded=False, imap_port=imap_port, smtp_port=smtp_port)
        daemon = _spawn(config, "run")
        _send(smtp_port)
        wait_for(lambda: inbox_count(imap_port, "wang.zhe@corp.example") == 1)
        daemon.kill()
        daemon.wait(timeout=10)
        _send(smtp_port)  # arrives while the daemon is down: waits in INBOX
        assert inbox_count(imap_port, "collab@corp.example", "collab-demo") == 1
        daemon = _spawn(config, "run")
        wait_for(lambda: inbox_count(imap_port, "collab@corp.example", "collab-demo") == 0)
        log = _stop(daemon)
        assert daemon.returncode == 0, log
        # The second copy has the same Message-ID: handled once, no second request.
        assert inbox_count(imap_port, "wang.zhe@corp.example") == 1
    finally:
        server_log = _stop(server)
    assert server.returncode == 0, server_log


def test_a_second_daemon_on_the_same_data_is_refused_clearly(tmp_path):
    imap_port, smtp_port = free_port(), free_port()
    config = _config(tmp_path, embedded=True, imap_port=imap_port, smtp_port=smtp_port)
    # Starts its own mail server and daemon like the test above (duplicates): each test owns its processes.
    first = _spawn(config, "run")
    try:
        wait_for(lambda: inbox_count(imap_port, "li.na@corp.example") == 0)
        other = tmp_path / "other"
        other.mkdir()
        other_config = _config(other, embedded=True, imap_port=free_port(),
                               smtp_port=free_port())
        other_config.write_text(other_config.read_text().replace(str(other / "var"),
                                                                 str(tmp_path / "var")))
        second = _spawn(other_config, "run")
        out, _ = second.communicate(timeout=20)
        assert second.returncode == 75, out
        assert "lock" in out.lower() and str(first.pid) in out
    finally:
        _stop(first)
