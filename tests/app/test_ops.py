"""ops.py: `maild check/status/items/show/outbox` on a real store and a real mail system, with the
exit codes scripts rely on; and the read-only store they use next to a running daemon."""

from __future__ import annotations

import argparse
import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from maild.adapters.store import ReadOnlyError, Store
from maild.app import cli, ops
from maild.core.model import Outgoing

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 8, 5, 9, 30, tzinfo=TZ)
SECRET = "collab-demo"  # the shipped config's inbox password, which the mail_system fixture uses


def write_config(tmp_path: Path, *, embedded: bool = True, imap_port: int = 14143,
                 smtp_port: int = 14025, extra: str = "") -> Path:
    mail = ("embedded = true" if embedded else "embedded = false")
    servers = "" if embedded else f"""
[imap]
host = "127.0.0.1"
port = {imap_port}
security = "plain"
password_env = "TEST_IMAP_PW"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "plain"
password_env = "TEST_SMTP_PW"
"""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[maild]
data_dir = "{tmp_path / 'var'}"
secret_file = "{tmp_path / 'var' / 'secret.key'}"
{extra}
[mail]
{mail}
inbox_address = "collab@corp.example"
{servers}
[embedded]
host = "127.0.0.1"
imap_port = {imap_port}
smtp_port = {smtp_port}
[[embedded.account]]
address = "collab@corp.example"
password = "{SECRET}"
[[embedded.account]]
address = "li.na@corp.example"
password = "demo"
[rules]
dir = "{ROOT / 'rules'}"
[templates]
dir = "{ROOT / 'templates'}"
""", encoding="utf-8")
    return path


def item(item_id: str, states: list[str], owner: str = "wang.zhe@corp.example") -> dict:
    tasks = [{"id": f"T-{n}", "name": f"任务{n}", "owner": owner, "owner_name": "王喆",
              "deadline": (NOW + timedelta(days=n - 2)).isoformat(), "state": state,
              "progress": 0} for n, state in enumerate(states, start=1)]
    return {"id": item_id, "kind": "project", "state": "open", "title": f"Q3新品推广项目 {item_id}",
            "initiator": "li.na@corp.example", "initiator_name": "李娜",
            "created_at": NOW.isoformat(), "updated_at": NOW.isoformat(), "tasks": tasks,
            "audit": [{"at": NOW.isoformat(), "who": "li.na@corp.example", "action": "created",
                       "task": None, "message_id": "m1@x", "detail": {"tasks": len(tasks)}}]}


def outgoing(n: int, item_id: str = "MD-0001") -> Outgoing:
    return Outgoing(message_id=f"maild.{n}@corp.example", to=("wang.zhe@corp.example",),
                    subject=f"[{item_id}] 请确认任务 T-{n}", text="t", html="<p>t</p>",
                    item_id=item_id, kind="confirm_request", date="Wed, 05 Aug 2026 09:30 +0800")


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    """A config whose data dir holds 2 items, 3 outbox entries (sent, queued, failed), meta."""
    config = write_config(tmp_path)
    with Store(tmp_path / "var") as store:
        store.put_item(item("MD-0001", ["awaiting_confirmation", "in_progress", "done"]))
        store.put_item(item("MD-0002", ["delayed"], owner="zhao.lei@corp.example"))
        for n in (1, 2, 3):
            store.enqueue(outgoing(n), now=NOW - timedelta(minutes=10))
        store.outbox_mark_sent("maild.1@corp.example", NOW)
        store.outbox_mark_failed("maild.3@corp.example", now=NOW, code=550,
                                 error="550 5.1.1 User unknown")
        store.meta_set("last_imap_contact", (NOW - timedelta(seconds=40)).isoformat())
        store.meta_set("next_runs", {"digest": (NOW + timedelta(hours=8)).isoformat()})
        store.commit()
    return config


def run(config: Path, *argv: str, environ: dict | None = None) -> tuple[int, str, str]:
    args = cli.build_parser().parse_args(["-c", str(config), *argv])
    out, err = io.StringIO(), io.StringIO()
    code = ops.run_ops_command(args, out=out, err=err, environ=environ or {})
    return code, out.getvalue(), err.getvalue()


# -- read-only store ------------------------------------------------------------------------


def test_readonly_store_reads_while_the_daemon_holds_the_lock(populated: Path, tmp_path: Path):
    with Store(tmp_path / "var"):  # the "daemon"
        assert Store.lock_holder(tmp_path / "var") is not None
        with Store.open_readonly(tmp_path / "var") as reader:
            assert reader.get_item("MD-0001")["title"].startswith("Q3")
            assert reader.counts()["items"] == 2
            with pytest.raises(ReadOnlyError):
                reader.put_item(item("MD-0009", []))
            with pytest.raises(ReadOnlyError):
                reader.meta_set("x", 1)
            with pytest.raises(ReadOnlyError):
                reader.outbox_requeue("maild.3@corp.example", NOW)
    assert Store.lock_holder(tmp_path / "var") is None


def test_readonly_store_of_a_missing_dir_is_empty_and_creates_nothing(tmp_path: Path):
    with Store.open_readonly(tmp_path / "nowhere") as store:
        assert store.all_items() == [] and store.outbox_entries() == []
    assert not (tmp_path / "nowhere").exists()


# -- status / items / show / outbox ------------------------------------------------------------


def test_status_data(populated: Path, tmp_path: Path):
    from maild.core.config import load_config
    config = load_config(populated)
    with Store.open_readonly(tmp_path / "var") as store:
        data = ops.status(store, config, NOW)
    assert data["queue_depth"] == 1 and data["outbox"]["due_now"] == 1
    assert data["outbox"]["failed"] == 1 and data["outbox"]["sent_kept"] == 1
    assert data["items"] == {"open": 2}
    assert data["tasks"] == {"awaiting_confirmation": 1, "delayed": 1, "done": 1,
                             "in_progress": 1}
    assert data["overdue_tasks"] == 2  # the T-1s were due yesterday
    assert data["last_imap_contact"].startswith("2026-08-05T09:29:20")
    assert set(data["next_runs"]) == {"digest"}
    assert data["daemon"] == {"running": False, "pid": None}


def test_status_human_and_json(populated: Path):
    code, out, _ = run(populated, "status")
    assert code == 0
    for label in ("queue depth", "outbox backlog", "outbox failures", "last IMAP contact",
                  "next runs", "items", "tasks"):
        assert label in out
    assert "digest 2026-08-05 17:30" in out and "open 2" in out
    code, out, _ = run(populated, "status", "--json")
    assert code == 0 and json.loads(out)["outbox"]["failed"] == 1


def test_status_says_unknown_without_meta(tmp_path: Path):
    code, out, _ = run(write_config(tmp_path), "status")
    assert code == 0
    assert "last IMAP contact  unknown" in out and "next runs          unknown" in out


@pytest.mark.parametrize("argv, ids", [
    ((), ["MD-0001", "MD-0002"]),
    (("--state", "delayed"), ["MD-0002"]),
    (("--state", "open"), ["MD-0001", "MD-0002"]),
    (("--state", "closed"), []),
    (("--owner", "zhao.lei@corp.example"), ["MD-0002"]),
    (("--owner", "王喆", "--state", "done"), ["MD-0001"]),
], ids=["all", "task-state", "item-state", "none", "owner-address", "owner-name-and-state"])
def test_items_filters(populated: Path, argv, ids):
    code, out, _ = run(populated, "items", *argv, "--json")
    assert code == 0
    assert [row["id"] for row in json.loads(out)] == ids


def test_items_human_table_aligns_chinese(populated: Path):
    code, out, _ = run(populated, "items")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("ID") and "2 item(s)" in out
    # the STATE column starts at the same terminal column in every row despite wide characters
    assert len({ops._width(line[:line.index("open")]) for line in lines[2:4]}) == 1


def test_show_item_tasks_audit_and_emails(populated: Path):
    code, out, _ = run(populated, "show", "md-0001")
    assert code == 0
    assert "T-1" in out and "OVERDUE" in out and "audit trail" in out and "created" in out
    assert "maild.3@corp.example" in out and "failed after 1: 550 5.1.1 User unknown" in out
    code, out, _ = run(populated, "show", "MD-0001", "--json")
    detail = json.loads(out)
    assert [t["id"] for t in detail["tasks"]] == ["T-1", "T-2", "T-3"]
    assert len(detail["audit"]) == 1 and len(detail["emails"]) == 3


def test_show_unknown_item_exits_66(populated: Path):
    code, out, err = run(populated, "show", "MD-0404")
    assert code == ops.EX_NOINPUT and "no item 'MD-0404'" in err and out == ""


def test_outbox_lists_failed_first_and_filters(populated: Path):
    code, out, _ = run(populated, "outbox", "--json")
    assert [r["status"] for r in json.loads(out)] == ["failed", "queued", "sent"]
    code, out, _ = run(populated, "outbox", "--failed")
    assert code == 0 and "maild.3@corp.example" in out and "maild.2@" not in out


def test_outbox_rows_of_a_compacted_sent_email(populated: Path):
    """A sent entry keeps no bodies or threading headers, but its row is complete."""
    code, out, _ = run(populated, "outbox", "--json")
    (sent,) = [r for r in json.loads(out) if r["status"] == "sent"]
    assert sent == {"message_id": "maild.1@corp.example", "status": "sent",
                    "to": ["wang.zhe@corp.example"], "subject": "[MD-0001] 请确认任务 T-1",
                    "kind": "confirm_request", "item_id": "MD-0001", "attempts": 1,
                    "next_attempt_at": None, "sent_at": NOW.isoformat(), "code": 250,
                    "last_error": ""}
    code, out, _ = run(populated, "outbox")
    assert "[MD-0001] 请确认任务 T-1" in out and "sent" in out


def test_outbox_retry_needs_the_lock(populated: Path, tmp_path: Path):
    with Store(tmp_path / "var"):
        code, _, err = run(populated, "outbox", "--retry", "maild.3@corp.example")
    assert code == ops.EX_TEMPFAIL and "cannot retry while the daemon runs" in err


def test_outbox_retry_requeues_a_failed_email(populated: Path, tmp_path: Path):
    code, out, _ = run(populated, "outbox", "--retry", "<maild.3@corp.example>")
    assert code == 0 and "queued again" in out
    with Store.open_readonly(tmp_path / "var") as store:
        entry = store.outbox_entry("maild.3@corp.example")
    assert entry.status == "queued" and entry.attempts == 0 and entry.next_attempt_at
    assert run(populated, "outbox", "--retry", "maild.3@corp.example")[0] == 1  # not failed now
    assert run(populated, "outbox", "--retry", "nope@x")[0] == ops.EX_NOINPUT


# -- check ---------------------------------------------------------------------------------------


@pytest.mark.integration
def test_check_passes_against_the_embedded_mail_system(mail_system, tmp_path: Path):
    config = write_config(tmp_path, imap_port=mail_system.imap_port,
                          smtp_port=mail_system.smtp_port)
    code, out, err = run(config, "check", "--send-test", "li.na@corp.example")
    assert code == 0, out + err
    for line in ("config", "templates", "rules", "imap connect", "imap login",
                 "imap folder Processed", "imap folder Quarantine", "imap idle", "smtp connect",
                 "smtp ehlo", "smtp send"):
        assert f"✓ ok   {line}" in out, line
    assert "created" in out and "all " in out and "checks passed" in out
    assert "\033[" not in out  # not a terminal: no colour
    assert SECRET not in out + err
    code, out, _ = run(config, "check", "--json")  # the folders exist now
    checks = {c["name"]: c for c in json.loads(out)}
    assert code == 0 and checks["imap folder Processed"]["detail"] == "exists"


@pytest.mark.integration
def test_check_reports_a_wrong_password(mail_system, tmp_path: Path):
    config = write_config(tmp_path, embedded=False, imap_port=mail_system.imap_port,
                          smtp_port=mail_system.smtp_port)
    env = {"TEST_IMAP_PW": "wrong-one", "TEST_SMTP_PW": "wrong-two"}
    code, out, err = run(config, "check", environ=env)
    assert code == 1
    assert "✗ FAIL imap login" in out and "✗ FAIL smtp auth" in out
    assert "wrong-one" not in out + err and "wrong-two" not in out + err


def test_check_missing_password_and_refused_connection(tmp_path: Path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    config = write_config(tmp_path, embedded=False, imap_port=port, smtp_port=port)
    code, out, _ = run(config, "check", "--timeout", "3", environ={"TEST_SMTP_PW": "x"})
    assert code == 1
    assert "✗ FAIL imap password" in out and "$TEST_IMAP_PW is not set" in out
    assert "✗ FAIL smtp connect" in out and "check [smtp] host, port" in out
    assert "checks failed" in out


@pytest.mark.parametrize("extra, key, example", [
    ('timezone = "Mars/Olympus"', "maild.timezone", 'timezone = "Asia/Shanghai"'),
    ('log_format = "xml"', "maild.log_format", 'log_format = "kv"'),
], ids=["timezone", "log-format"])
def test_check_bad_config_exits_78_naming_file_key_and_example(tmp_path: Path, extra, key,
                                                                example):
    config = write_config(tmp_path, extra=extra)
    code, out, err = run(config, "check")
    assert code == ops.EX_CONFIG
    assert str(config) in err and f"[{key}]" in err and example in err
    assert "✗ FAIL config" in out


def test_check_bad_port_type(tmp_path: Path):
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("imap_port = 14143", 'imap_port = "x"'))
    code, _, err = run(config, "check")
    assert code == 78 and "[embedded.imap_port] must be a whole number" in err


def test_colour_only_on_a_terminal():
    assert "\033[32m" in ops.Painter(True).line(True, "x", "")
    assert "\033[" not in ops.Painter(False).line(False, "x", "")


# -- wiring --------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(ops.OPS_EXAMPLES))
def test_every_ops_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"maild {command}" in out and "--json" in out


def test_add_ops_commands_plugs_into_an_add_helper():
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command")
    ops.add_ops_commands(lambda name, help_text: commands.add_parser(name, help=help_text))
    args = parser.parse_args(["outbox", "--retry", "m@x"])
    assert args.command == "outbox" and args.retry == "m@x" and not args.failed


@pytest.mark.integration
def test_check_logs_in_with_the_right_password(mail_system, tmp_path: Path):
    config = write_config(tmp_path, embedded=False, imap_port=mail_system.imap_port,
                          smtp_port=mail_system.smtp_port)
    code, out, _ = run(config, "check", environ={"TEST_IMAP_PW": SECRET, "TEST_SMTP_PW": SECRET})
    assert "✓ ok   imap login" in out
    if type(mail_system).__name__ == "EmbeddedMailSystem":  # aiosmtpd offers AUTH without TLS
        assert code == 0 and "✓ ok   smtp auth" in out
    else:  # Dovecot's test front door offers no AUTH: a real config would fail to send
        assert code == 1 and "the server offers no AUTH" in out


def _stamp_config(tmp_path: Path, system) -> Path:
    config = write_config(tmp_path, imap_port=system.imap_port, smtp_port=system.smtp_port)
    config.write_text(config.read_text(encoding="utf-8") + '\n[security]\nauthserv_id = '
                      '"mx.corp.example"\ntrust_authentication_results = true\n', encoding="utf-8")
    return config


@pytest.mark.integration
def test_check_refuses_a_stamp_the_server_does_not_strip(tmp_path: Path):
    """The embedded mail system adds no Authentication-Results and strips none: declaring the
    stamp trustworthy there is the attack of issue #15 (an outsider writes dmarc=pass on top of
    their own email), and `maild check` says so."""
    from conftest import make_mail_system

    system = make_mail_system("embedded", {"collab@corp.example": SECRET,
                                           "li.na@corp.example": "demo"})
    try:
        code, out, _ = run(_stamp_config(tmp_path, system), "check")
    finally:
        system.stop()
    assert code == 1
    assert "✗ FAIL auth stamp" in out and "arrived untouched" in out


@pytest.mark.integration
def test_check_accepts_a_server_that_stamps_and_strips(tmp_path: Path):
    """Dovecot behind a front door that stamps and strips like an MTA with a DMARC milter."""
    import os

    from mailservers import DovecotMailSystem, dovecot_available
    if not dovecot_available():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and dovecot is not installed: in CI none may skip")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd)")
    with DovecotMailSystem("127.0.0.1", 0, 0, {"collab@corp.example": SECRET},
                           authserv_id="mx.corp.example") as system:
        code, out, _ = run(_stamp_config(tmp_path, system), "check")
        leftovers = _count_inbox(system)
    assert "✓ ok   auth stamp" in out and "mx.corp.example; dmarc=none" in out, out
    assert code == 0 and leftovers == 0  # the probe was read and deleted


def _count_inbox(system) -> int:
    from imapclient import IMAPClient
    with IMAPClient(system.host, port=system.imap_port, ssl=False, timeout=10) as client:
        client.login("collab@corp.example", SECRET)
        return client.select_folder("INBOX")[b"EXISTS"]
