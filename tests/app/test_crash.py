"""The daemon killed with SIGKILL between commit and IMAP move, and between commit and sending.

The daemon runs as a real process (`python -m maild run`) against the mail system of the test
process (embedded or Dovecot), and kills itself at a named point (MAILD_CRASH_AT). After a
restart, every email must have had its effect exactly once: nothing lost, nothing sent twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import make_mail_system
from conversation import Conversation, FakeClock, make_config
from daemonproc import write_daemon_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
OWNERS = ("wang.zhe@corp.example", "zhao.lei@corp.example", "chen.jing@corp.example")
INITIATOR = "li.na@corp.example"


def _daemon_config(tmp_path: Path, mail_system, store_url: str = "") -> Path:
    return write_daemon_config(tmp_path, host=mail_system.host, imap_port=mail_system.imap_port,
                               smtp_port=mail_system.smtp_port, store_url=store_url)


def _start(config: Path, crash_at: str = "") -> subprocess.Popen:
    env = {**os.environ, "TEST_IMAP_PASSWORD": "collab-demo", "MAILD_SECRET": "crash-test",
           "MAILD_CRASH_AT": crash_at, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "maild", "-c", str(config), "run"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_until(condition, daemon: subprocess.Popen, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time; daemon log:\n" + _stop(daemon))


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode("utf-8", "replace")


@pytest.fixture
def reader(mail_system, tmp_path):
    """A Conversation used only to send and read mail (its own service is never run)."""
    clock = FakeClock(__import__("datetime").datetime.now(__import__("zoneinfo").ZoneInfo("Asia/Shanghai")))
    convo = Conversation(mail_system, make_config(mail_system, tmp_path / "reader-var"), clock)
    yield convo
    convo.close()


def _counts(reader: Conversation) -> dict[str, int]:
    return {a: len(reader.folder(a)) for a in (INITIATOR, *OWNERS)}


CRASHES = pytest.mark.parametrize(
    "crash_at", ["after_commit", "before_move", "mid_db_write"],
    ids=["commit-then-kill-before-send", "sent-then-kill-before-move", "kill-inside-the-commit"])


@CRASHES
def test_kill_and_restart_loses_nothing_and_repeats_nothing(mail_system, tmp_path, reader,
                                                            crash_at):
    _kill_and_restart(_daemon_config(tmp_path, mail_system), tmp_path / "var", reader, crash_at)


@CRASHES
def test_the_same_with_the_state_in_postgresql(shipped_config, tmp_path, pg_url, crash_at):
    emb = shipped_config.embedded_system
    mail = make_mail_system("embedded", dict(emb.accounts), emb.host)
    reader = Conversation(mail, make_config(mail, tmp_path / "reader-var"),
                          FakeClock(datetime.now(ZoneInfo("Asia/Shanghai"))))
    try:
        _kill_and_restart(_daemon_config(tmp_path, mail, pg_url), pg_url, reader, crash_at)
    finally:
        reader.close()
        mail.stop()


def _kill_and_restart(config: Path, store: str | Path, reader: Conversation,
                      crash_at: str) -> None:
    reader.send_raw(INITIATOR, ["collab@corp.example"], (DATA / "new_project_zh.eml").read_bytes())

    crashed = _start(config, crash_at)
    assert crashed.wait(timeout=30) == -signal.SIGKILL, _stop(crashed)
    # Killed before the IMAP move: the email is still in INBOX.
    assert len(reader.folder("collab@corp.example")) == 1
    before = _counts(reader)
    if crash_at in ("after_commit", "mid_db_write"):
        assert before == {a: 0 for a in before}  # committed (or not quite), nothing sent yet
    else:
        assert before == {a: 1 for a in before}  # sent, not yet moved

    daemon = _start(config)
    try:
        _wait_until(lambda: _counts(reader) == {a: 1 for a in (INITIATOR, *OWNERS)}
                    and not reader.folder("collab@corp.example"), daemon)
        time.sleep(1.0)  # room for a duplicate to show up, if the daemon were to send one
    finally:
        log = _stop(daemon)
    assert daemon.returncode == 0, log
    assert _counts(reader) == {a: 1 for a in (INITIATOR, *OWNERS)}, log
    assert len(reader.folder("collab@corp.example", "Processed")) == 1

    # An owner's confirmation survives the same kind of crash exactly once as well.
    request = reader.folder("wang.zhe@corp.example")[0]
    reader.reply("wang.zhe@corp.example", request, "确认")
    crashed = _start(config, crash_at)
    assert crashed.wait(timeout=30) == -signal.SIGKILL, _stop(crashed)
    daemon = _start(config)
    try:
        _wait_until(lambda: len(reader.folder(INITIATOR)) == 2
                    and not reader.folder("collab@corp.example"), daemon)
        time.sleep(1.0)
    finally:
        log = _stop(daemon)
    assert len(reader.folder(INITIATOR)) == 2, log
    assert len(reader.folder("wang.zhe@corp.example")) == 2, log  # request + acknowledgement

    from maild.adapters.store import open_store
    store = open_store(store, inbox="collab@corp.example")
    try:
        item = store.get_item("MD-0001")
        assert item["tasks"][0]["state"] == "not_started"
        assert [a["action"] for a in item["audit"]] == ["created", "confirm"]
        assert {e.status for e in store.outbox_entries()} == {"sent"}
        assert len(store.outbox_entries()) == 6
    finally:
        store.close()
