"""deploy/maild.service works as documented: its hardening rates an exposure of at most 3.0 in
`systemd-analyze security`, it reloads on SIGHUP, the folders it lets maild write are the ones
`maild init --system` configures, and a real daemon run stays inside its sandbox (every system
call within its SystemCallFilter, no writable+executable memory, writes only under its state
folder). `maild check` fails clearly for a folder maild could not write.

No systemd runs as PID 1 here or in CI, so the unit is judged by systemd's own analyzer and by
tracing the daemon (strace) against the unit's rules, not by starting it under systemd. Without
systemd-analyze or strace the tests skip with the reason (and fail under CI=true).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
from pathlib import Path

import pytest
from daemonproc import inbox_count, wait_for
from mailservers import free_port

from maild.app.checks import check_folders, writable_problem
from maild.app.shipped import SYSTEM_VALUES, system_config
from maild.core.config import parse_config

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "maild.service"


def need(program: str, package: str) -> str:
    found = shutil.which(program)
    if found:
        return found
    reason = f"{program} is not installed (apt-get install {package}; .ci/run does it)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}: in CI none may skip")
    pytest.skip(reason)


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        key, eq, value = line.partition("=")
        if eq and not line.startswith(("#", ";", "[")):
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_unit_rates_an_exposure_of_at_most_3():
    tool = need("systemd-analyze", "systemd")
    done = subprocess.run([tool, "security", "--offline=yes", "--no-pager", str(UNIT)],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert found, done.stdout[-2000:] + done.stderr[-2000:]
    assert float(found.group(1)) <= 3.0, done.stdout


def test_the_unit_reloads_runs_the_system_config_and_writes_only_its_own_folders():
    unit = unit_settings()
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # SIGHUP: tests/app/test_daemon.py
    (start,) = unit["ExecStart"]
    assert start.split()[0].startswith("/") and start.endswith("-c /etc/maild/config.toml run")
    assert unit["StateDirectory"] == ["maild"] and unit["LogsDirectory"] == ["maild"]
    assert unit["ProtectSystem"] == ["strict"] and "ReadWritePaths" not in unit
    # what `maild init --system` writes lands in those two folders, by absolute paths
    text = system_config((ROOT / "config.toml").read_text(encoding="utf-8"))
    import tomllib
    config = parse_config(tomllib.loads(text), Path("/etc/maild/config.toml"))
    assert not config.embedded
    for folder in (config.data_dir, config.archive_dir, config.secret_file.parent):
        assert folder.is_relative_to("/var/lib/maild"), folder
    assert config.log_dir == Path("/var/log/maild")
    assert config.rules_dir == Path("/etc/maild/rules")  # read only: fine under /etc
    assert SYSTEM_VALUES["maild"]["data_dir"] == "/var/lib/maild"


def test_check_refuses_a_relative_archive_under_etc_and_an_unwritable_folder(tmp_path):
    """The crash-loop of the old install: archive_dir = "archive" in /etc/maild/config.toml is
    /etc/maild/archive, read-only under the unit. `check` says so instead of passing."""
    config = parse_config({"maild": {"data_dir": str(tmp_path / "var")},
                           "mail": {"embedded": False},
                           "imap": {"host": "imap.corp.example"},
                           "smtp": {"host": "smtp.corp.example"}},
                          Path("/etc/maild/config.toml"))
    checks = {c.name: c for c in check_folders(config, euid=1000)}
    assert checks["data dir"].ok
    archive = checks["archive dir"]
    assert not archive.ok and "/etc/maild/archive is under /etc" in archive.detail
    assert "[maild] archive_dir" in archive.detail and "/var/lib/maild" in archive.detail
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "cannot create" in writable_problem(blocker / "logs")
    assert "is not a folder" in writable_problem(blocker)
    assert writable_problem(tmp_path / "new" / "folder") == ""  # made on first start
    assert not (tmp_path / "new").exists()  # the probe leaves nothing behind


def test_check_names_every_folder_it_will_write(tmp_path):
    config = parse_config({"maild": {"data_dir": "var", "archive_dir": "archive",
                                     "log_dir": "logs"},
                           "mail": {"embedded": False}, "imap": {"host": "h"},
                           "smtp": {"host": "h"}}, tmp_path / "config.toml")
    checks = check_folders(config, euid=0)
    assert [c.name for c in checks] == ["data dir", "archive dir", "log dir"]
    assert all(c.ok for c in checks) and "runuser -u maild" in checks[0].detail
    assert str(tmp_path / "logs") == checks[2].detail


# -- a real daemon, traced ------------------------------------------------------------------------


def syscall_groups(tool: str) -> dict[str, list[str]]:
    out = subprocess.run([tool, "syscall-filter", "--no-pager"], capture_output=True, text=True,
                         timeout=60).stdout
    groups: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("@"):
            current = line.strip()
            groups[current] = []
        elif line.startswith("    ") and current and not line.strip().startswith("#"):
            groups[current].append(line.strip())
        elif not line.strip():
            current = None
    return groups


def allowed_syscalls(tool: str) -> set[str]:
    """The unit's SystemCallFilter lines: the first allows, each `~` line then denies."""
    groups = syscall_groups(tool)

    def expand(names: list[str]) -> set[str]:
        found: set[str] = set()
        for name in names:
            found |= expand(groups[name]) if name.startswith("@") else {name}
        return found

    lines = unit_settings()["SystemCallFilter"]
    allowed = expand(lines[0].split())
    for line in lines[1:]:
        assert line.startswith("~")
        allowed -= expand(line[1:].split())
    return allowed


WRITE_OPEN = re.compile(r'^\d+\s+openat\([^,]+, "([^"]+)", [^)]*O_(?:WRONLY|RDWR|CREAT)')
PATH_CHANGE = re.compile(r'^\d+\s+(?:mkdir|mkdirat|rename|renameat2?|unlink|unlinkat|rmdir)'
                         r'\((?:[^,]+, )?"([^"]+)"')


@pytest.mark.integration
def test_a_traced_daemon_stays_inside_the_units_sandbox(tmp_path):
    """`maild run` (batch_size 1, so its sender child runs too) handles a project against a
    `maild mailserver`, under strace: each system call is one the unit's filter allows, no
    memory is mapped writable and executable (MemoryDenyWriteExecute), and every file it
    writes is in its data folder (the unit's StateDirectory) or its private /tmp."""
    analyze = need("systemd-analyze", "systemd")
    strace = need("strace", "strace")
    allowed = allowed_syscalls(analyze)
    imap_port, smtp_port = free_port(), free_port()
    state = tmp_path / "state"
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    from maild.app.shipped import set_value
    for section, key, value in (
            ("maild", "data_dir", str(state)), ("maild", "archive_dir", str(state / "archive")),
            ("maild", "secret_file", str(state / "secret.key")), ("mail", "batch_size", 1),
            ("embedded", "imap_port", imap_port), ("embedded", "smtp_port", smtp_port),
            ("rules", "dir", str(ROOT / "rules")), ("templates", "dir", str(ROOT / "templates"))):
        text = set_value(text, section, key, value)
    config = tmp_path / "config.toml"
    config.write_text(text, encoding="utf-8")
    # HOME as under the unit: the service user's home is its StateDirectory (/var/lib/maild),
    # where the compiled templates are cached (templatecache.py); systemd sets no XDG_CACHE_HOME
    env = {**{k: v for k, v in os.environ.items() if k != "XDG_CACHE_HOME"},
           "PYTHONPATH": str(ROOT), "HOME": str(state)}
    maild = [sys.executable, "-m", "maild", "-c", str(config)]
    server = subprocess.Popen([*maild, "mailserver"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    trace = tmp_path / "trace.txt"
    daemon = None
    try:
        wait_for(lambda: inbox_count(imap_port, "li.na@corp.example") == 0, timeout_s=60)
        daemon = subprocess.Popen([strace, "-f", "-qq", "-s", "256", "-o", str(trace),
                                   *maild, "run", "--attach"], env=env, cwd=state.parent,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        project = (ROOT / "tests" / "data" / "new_project_zh.eml").read_bytes()
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as smtp:
            smtp.sendmail("li.na@corp.example", ["collab@corp.example"], project)
        wait_for(lambda: inbox_count(imap_port, "wang.zhe@corp.example") == 1, timeout_s=60)
        traced = int(trace.read_text(encoding="utf-8").split(None, 1)[0])  # the daemon's pid
        os.kill(traced, signal.SIGTERM)  # strace itself would not pass the signal on
        log, _ = daemon.communicate(timeout=60)
        assert daemon.returncode == 0, log[-3000:]
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    used, writable_exec, written = set(), [], set()
    for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
        call = re.match(r"^\d+\s+([a-z0-9_]+)\(", line)
        if not call:
            continue
        used.add(call.group(1))
        if call.group(1) in ("mmap", "mprotect", "pkey_mprotect") and (
                "PROT_WRITE" in line and "PROT_EXEC" in line):
            writable_exec.append(line)
        target = WRITE_OPEN.match(line) or PATH_CHANGE.match(line)
        if target:
            written.add(target.group(1))
    assert "execve" in used and len(used) > 30  # the trace saw the daemon at work
    assert used <= allowed, f"outside SystemCallFilter: {sorted(used - allowed)}"
    assert writable_exec == []
    outside = sorted(p for p in written if not (
        Path(p).is_absolute() and (Path(p).is_relative_to(state) or p.startswith(
            ("/tmp/", "/dev/null", "/dev/shm/", "/proc/self/")))))
    assert outside == [], outside
    assert any(Path(p).is_relative_to(state) for p in written)
    assert any(Path(p).is_relative_to(state / ".cache" / "maild") for p in written)


def test_log_dir_gets_the_same_lines_as_stdout(tmp_path, capsys):
    import logging

    from maild.app.cli import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("kv", log_dir=tmp_path / "logs")
        logging.getLogger("maild.test").info("event=started inbox=collab@corp.example")
        for handler in root.handlers:
            handler.flush()
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)
    line = (tmp_path / "logs" / "maild.log").read_text(encoding="utf-8").strip()
    assert line.endswith("logger=maild.test event=started inbox=collab@corp.example")
    assert line in capsys.readouterr().out
