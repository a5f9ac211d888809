"""`maild check`: is the config right and are the servers reachable. `run_checks` returns every
check in order as a `Check` (name, ok, detail; `checkreport.py`, which also prints them); the
IMAP and SMTP checks are in `serverchecks.py`.

Surprises:
- `check` talks to the real servers: IMAP login, folder creation, IDLE; SMTP EHLO, TLS, AUTH. It
  sends an email only with `--send-test ADDRESS`, and, where `[security]
  trust_authentication_results` is set, a probe to the inbox carrying a forged
  Authentication-Results field (read back over IMAP and deleted): the stamp may be trusted only
  if the forged field does not arrive. Passwords are used, never printed.
- A server whose password cannot be had is not contacted: its password check fails instead.
- With OAuth2 (`auth = "oauth2"`) the "oauth token" check asks the token endpoint first and
  says which permissions the token carries; IMAP and SMTP then sign in with XOAUTH2, and a
  refusal names the missing permission (`signin.explain_refusal`). The token cache is used and
  updated as the daemon would.
- A check can pass with a warning (`warn`): the calendar's gap in the next 90 days is one. It is
  printed loudly but does not fail `check` (the daemon runs; escalations to managers wait).
- The terminal-width helpers `_width`/`_pad` live here, not in ops.py (which imports them), so
  that format_checks can use them without a circular import.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from maild.adapters.store import Store
from maild.app.checkreport import Check
from maild.app.serverchecks import check_imap, check_smtp
from maild.app.wiring import run_command
from maild.core import calgaps
from maild.core.config import Config, ServerConfig, resolve_password
from maild.core.signin import SignInError
from maild.core.workcal import WorkCalendar


def run_checks(config: Config, *, environ: Mapping[str, str], send_test: str | None = None,
               timeout: float = 15.0,
               run_command: Callable[[str], str] = run_command,
               today: date | None = None, config_source: str = "-c") -> list[Check]:
    """Every check in order; network checks are skipped (failed) when their password is missing.
    `today` is where the calendar's 90 days start (default: today in the configured zone)."""
    checks = [Check("config", True, f"{config.path} is valid (from {config_source})")]
    checks += check_local(config, environ, today)
    from maild.adapters.oauth import token_sources

    oauth = token_sources(config, environ, run_command, time.time)
    checks += check_tokens(oauth)
    passwords: dict[str, str | None] = {}
    for name, server in (("imap", config.imap), ("smtp", config.smtp)):
        if name in oauth:
            passwords[name] = ""
            continue
        password, problem = _password(name, server, environ, run_command)
        passwords[name] = password
        if problem:
            checks.append(Check(f"{name} password", False, problem))
    if passwords["imap"] is not None:
        checks += check_imap(config.imap, passwords["imap"],
                             (config.processed_folder, config.quarantine_folder), timeout=timeout,
                             oauth=oauth.get("imap"))
    if passwords["smtp"] is not None:
        # the daemon does not AUTH to the embedded system (it has no TLS); neither does check
        checks += check_smtp(config.smtp, passwords["smtp"], auth=not config.embedded,
                             sender=config.inbox_address, send_test=send_test, timeout=timeout,
                             oauth=oauth.get("smtp"))
    if config.trust_authentication_results and passwords["imap"] is not None \
            and passwords["smtp"] is not None:
        # Trusting the stamp is safe only if forged copies never arrive: send one and look.
        from maild.app.authprobe import check_authentication_stamp
        checks.append(check_authentication_stamp(config, passwords["imap"], passwords["smtp"],
                                                 timeout=timeout))
    if config.embedded and not all(c.ok for c in checks if c.name.endswith("connect")):
        checks.append(Check("embedded", False,
                            "[mail] embedded = true: the mail system runs inside `maild run`; "
                            "start `maild mailserver -c ...` to check it on its own"))
    return checks


def check_tokens(sources: Mapping[str, Any]) -> list[Check]:
    """One "oauth token" check per mailbox signing in with OAuth2: can a token be had, for how
    long, and which permissions it carries."""
    checks = []
    seen: set[int] = set()
    for source in sources.values():
        if id(source) in seen:
            continue
        seen.add(id(source))
        who = source.who
        try:
            token = source.current()
        except SignInError as exc:
            checks.append(Check("oauth token", False, str(exc)))
            continue
        minutes = max(0, int((token.expires_at - source.clock()) // 60))
        grants = ", ".join(sorted(p for p in token.granted if "/" not in p)) or "not shown"
        checks.append(Check("oauth token", True, f"{who.provider} {who.flow} for {who.mailbox}: "
                            f"valid {minutes} min; grants {grants}"))
    return checks


def _password(name: str, server: ServerConfig, environ: Mapping[str, str],
              run_command: Callable[[str], str]) -> tuple[str | None, str]:
    """(password, problem): None and a message saying what to set when it cannot be had."""
    try:
        password = resolve_password(server, environ, run_command)
    except (subprocess.SubprocessError, OSError, IndexError) as exc:
        kind = type(exc).__name__  # never the output: it would be the password
        return None, (f"[{name}] password_command failed ({kind}); run it by hand "
                      f"(example: password_command = \"pass show mail/collab\")")
    if password:
        return password, ""
    if server.password_env:
        return None, (f"[{name}] password_env: ${server.password_env} is not set "
                      f"(example: export {server.password_env}=... or set password_command)")
    return None, (f"[{name}] no password: set password_env or password_command "
                  f"(example: password_env = \"MAILD_{name.upper()}_PASSWORD\")")


def check_local(config: Config, environ: Mapping[str, str],
                today: date | None = None) -> list[Check]:
    """Templates, rules, calendar, secret and the folders maild writes: what `maild run` needs
    before the
    network."""
    from maild.app.wiring import Rules
    from maild.mail.render import Renderer

    checks = []
    try:
        renderer = Renderer(config.templates_dir, timezone=config.timezone,
                            inbox_address=config.inbox_address, from_name=config.from_name)
        checks.append(Check("templates", True, f"{len(renderer.kinds)} templates in "
                            f"{', '.join(renderer.languages)} from {config.templates_dir}"))
    except Exception as exc:  # any template error: report it, keep checking
        checks.append(Check("templates", False, f"[templates] dir {config.templates_dir}: {exc}"))
    try:
        rules = Rules.from_config(config)
        checks.append(Check("rules", True, f"{len(rules.people.people)} people in "
                            f"{config.rules_dir}"))
        checks.append(check_calendar(rules.calendar, config.rules_dir / "schedules.toml",
                                     today or datetime.now(config.tz).date()))
        if config.directory.source or config.directory.file.exists():
            checks.append(check_directory(config))
    except Exception as exc:
        checks.append(Check("rules", False, f"[rules] dir {config.rules_dir}: {exc}"))
    checks.append(_check_secret(config, environ))
    checks += check_folders(config)
    return checks


def check_calendar(calendar: WorkCalendar, rules_file: Path, today: date) -> Check:
    """Does a holiday source vouch for each of the next 90 days? A warning (not a failure)
    naming the table to add when not; the days where the rules overrule the package, if any."""
    text = rules_file.read_text(encoding="utf-8") if rules_file.exists() else ""
    gap = calgaps.warning(calendar, today, rules_file=str(rules_file),
                          after_line=calgaps.insert_after(text))
    notes = [f"  {rules_file} overrules chinese-calendar on {day} (the package: "
             f"{'workday' if work else 'day off'})" for day, work in calgaps.disagreements(calendar)]
    if gap:
        return Check("calendar", True, "\n".join([gap, *notes]), warn=True)
    detail = (f"{calgaps.sources(calendar)}: the next {calgaps.HORIZON_DAYS} days from {today} "
              f"are covered")
    return Check("calendar", True, "\n".join([detail, *notes]), warn=bool(notes))


def check_directory(config: Config) -> Check:
    """The synced people directory: when and from where, and its problems (a warning: the
    people that could be used are in use). `maild directory sync --dry-run` tests the source."""
    from maild.app import dirsync

    facts, problems = dirsync.check(config)
    where = (f"{facts['synced']} synced from {facts['source']} at {facts['synced_at']}"
             if facts["source"] else f"not synced yet ({config.directory.file}); run `maild "
             f"directory sync --dry-run`")
    serious = [p for p in problems if p.kind != "self_manager"]
    detail = f"{facts['people']} people: {where}" + (
        f"; {len(serious)} problems, see `maild directory check`" if serious else "")
    return Check("directory", True, detail, warn=bool(serious) or not facts["source"])
# Under the systemd unit (ProtectSystem=strict) these are read-only, whatever their mode says.
READ_ONLY_UNDER_SYSTEMD = (Path("/etc"), Path("/usr"), Path("/boot"))


def check_folders(config: Config, *, euid: int | None = None) -> list[Check]:
    """Every folder maild writes to, tried for real (a temporary file or folder is made and
    removed): data, archive and, when set, logs. A folder not made yet is judged by its
    nearest existing parent, where maild will make it."""
    euid = os.geteuid() if euid is None else euid
    places = [("data dir", "data_dir", config.data_dir, "/var/lib/maild"),
              ("archive dir", "archive_dir", config.archive_dir, "/var/lib/maild/archive")]
    if config.log_dir is not None:
        places.append(("log dir", "log_dir", config.log_dir, "/var/log/maild"))
    checks = []
    for name, key, folder, example in places:
        problem = writable_problem(folder)
        if problem:
            checks.append(Check(name, False, f"[maild] {key}: {problem} (example: {key} = "
                                f"\"{example}\")"))
            continue
        detail = str(folder)
        if name == "data dir" and folder.exists():
            holder = Store.lock_holder(folder)
            detail += f" (in use by maild pid {holder})" if holder else ""
        if euid == 0 and not checks:
            detail += " (tried as root; run as the service's user: runuser -u maild -- maild check)"
        checks.append(Check(name, True, detail))
    return checks


def writable_problem(folder: Path) -> str:
    """Why maild could not write in `folder` ("" when it can)."""
    folder = folder.absolute()
    for system in READ_ONLY_UNDER_SYSTEMD:
        if folder == system or system in folder.parents:
            return (f"{folder} is under {system}, which the systemd unit keeps read-only "
                    f"(ProtectSystem=strict); use an absolute path under /var/lib/maild")
    if folder.exists():
        if not folder.is_dir():
            return f"{folder} is not a folder"
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".maild-check-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            return f"cannot write in {folder} ({exc.strerror})"
        return ""
    parent = _existing_parent(folder)
    try:
        os.rmdir(tempfile.mkdtemp(dir=parent, prefix=".maild-check-"))
    except OSError as exc:
        return f"cannot create {folder}: {parent} is not writable ({exc.strerror})"
    return ""


def _check_secret(config: Config, environ: Mapping[str, str]) -> Check:
    if environ.get(config.secret_env):
        return Check("secret", True, f"from ${config.secret_env}")
    if config.secret_file.exists():
        ok = os.access(config.secret_file, os.R_OK)
        return Check("secret", ok, f"{config.secret_file}"
                     + ("" if ok else " is not readable by this user"))
    problem = writable_problem(config.secret_file.parent)
    if problem:
        return Check("secret", False, f"[maild] secret_file: cannot create "
                     f"{config.secret_file}: {problem}; or set ${config.secret_env}")
    return Check("secret", True, f"{config.secret_file} will be created on first start")


def _existing_parent(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path("/")


# ---------------------------------------------------------------------------------------------
# terminal width (shared with ops.py)


