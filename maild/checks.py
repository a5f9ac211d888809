"""`maild check`: is the config right and are the servers reachable. `run_checks` returns every
check in order as a `Check` (name, ok, detail); `format_checks` prints them as a green/red summary.

Surprises:
- `check` talks to the real servers: IMAP login, folder creation, IDLE; SMTP EHLO, TLS, AUTH. It
  sends an email only with `--send-test ADDRESS`, and, where `[security]
  trust_authentication_results` is set, a probe to the inbox carrying a forged
  Authentication-Results field (read back over IMAP and deleted): the stamp may be trusted only
  if the forged field does not arrive. Passwords are used, never printed.
- A server whose password cannot be had is not contacted: its password check fails instead.
- The terminal-width helpers `_width`/`_pad` live here, not in ops.py (which imports them), so
  that format_checks can use them without a circular import.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Config, ServerConfig, resolve_password
from .store import Store


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _run_command(command: str) -> str:
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True,
                          timeout=30).stdout


def run_checks(config: Config, *, environ: Mapping[str, str], send_test: str | None = None,
               timeout: float = 15.0,
               run_command: Callable[[str], str] = _run_command) -> list[Check]:
    """Every check in order; network checks are skipped (failed) when their password is missing."""
    checks = [Check("config", True, f"{config.path} is valid")]
    checks += check_local(config, environ)
    passwords: dict[str, str | None] = {}
    for name, server in (("imap", config.imap), ("smtp", config.smtp)):
        password, problem = _password(name, server, environ, run_command)
        passwords[name] = password
        if problem:
            checks.append(Check(f"{name} password", False, problem))
    if passwords["imap"] is not None:
        checks += check_imap(config.imap, passwords["imap"],
                             (config.processed_folder, config.quarantine_folder), timeout=timeout)
    if passwords["smtp"] is not None:
        # the daemon does not AUTH to the embedded system (it has no TLS); neither does check
        checks += check_smtp(config.smtp, passwords["smtp"], auth=not config.embedded,
                             sender=config.inbox_address, send_test=send_test, timeout=timeout)
    if config.trust_authentication_results and passwords["imap"] is not None \
            and passwords["smtp"] is not None:
        # Trusting the stamp is safe only if forged copies never arrive: send one and look.
        from .authprobe import check_authentication_stamp
        checks.append(check_authentication_stamp(config, passwords["imap"], passwords["smtp"],
                                                 timeout=timeout))
    if config.embedded and not all(c.ok for c in checks if c.name.endswith("connect")):
        checks.append(Check("embedded", False,
                            "[mail] embedded = true: the mail system runs inside `maild run`; "
                            "start `maild mailserver -c ...` to check it on its own"))
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


def check_local(config: Config, environ: Mapping[str, str]) -> list[Check]:
    """Templates, rules, secret and data directory: what `maild run` needs before the network."""
    from .render import Renderer
    from .service import Rules

    checks = []
    try:
        renderer = Renderer(config.templates_dir, timezone=config.timezone,
                            inbox_address=config.inbox_address, from_name=config.from_name)
        checks.append(Check("templates", True, f"{len(renderer.kinds)} templates in "
                            f"{', '.join(renderer.languages)} from {config.templates_dir}"))
    except Exception as exc:  # any template error: report it, keep checking
        checks.append(Check("templates", False, f"[templates] dir {config.templates_dir}: {exc}"))
    try:
        rules = Rules.load(config.rules_dir)
        checks.append(Check("rules", True, f"{len(rules.people.people)} people in "
                            f"{config.rules_dir}"))
    except Exception as exc:
        checks.append(Check("rules", False, f"[rules] dir {config.rules_dir}: {exc}"))
    if environ.get(config.secret_env):
        checks.append(Check("secret", True, f"from ${config.secret_env}"))
    elif config.secret_file.exists():
        ok = os.access(config.secret_file, os.R_OK)
        checks.append(Check("secret", ok, f"{config.secret_file}"
                            + ("" if ok else " is not readable by this user")))
    else:
        parent = _existing_parent(config.secret_file)
        ok = os.access(parent, os.W_OK)
        checks.append(Check("secret", ok, f"{config.secret_file} will be created on first start"
                            if ok else f"[maild] secret_file: cannot create {config.secret_file} "
                            f"({parent} is not writable); set ${config.secret_env} instead"))
    data_dir = config.data_dir
    target = data_dir if data_dir.exists() else _existing_parent(data_dir)
    if not os.access(target, os.W_OK):
        checks.append(Check("data dir", False, f"[maild] data_dir: {target} is not writable "
                            f"(example: data_dir = \"/var/lib/maild\")"))
    else:
        holder = Store.lock_holder(data_dir) if data_dir.exists() else None
        checks.append(Check("data dir", True, f"{data_dir}" + (
            f" (in use by maild pid {holder})" if holder else "")))
    return checks


def _existing_parent(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path("/")


def check_imap(server: ServerConfig, password: str, folders: Sequence[str], *,
               timeout: float = 15.0, ssl_context: ssl.SSLContext | None = None) -> list[Check]:
    """Connect (TLS/STARTTLS as configured), log in, create or find `folders`, look for IDLE."""
    from imapclient import IMAPClient
    from imapclient.exceptions import IMAPClientError, LoginError

    where = f"{server.host}:{server.port} ({server.security})"
    context = ssl_context or ssl.create_default_context()
    checks: list[Check] = []
    try:
        client = IMAPClient(server.host, port=server.port, ssl=server.security == "tls",
                            ssl_context=context if server.security == "tls" else None,
                            timeout=timeout)
        if server.security == "starttls":
            client.starttls(context)
    except (OSError, ssl.SSLError, IMAPClientError) as exc:
        return [Check("imap connect", False, f"{where}: {_reason(exc)}; check [imap] host, port "
                      f"and security (example: port = 993, security = \"tls\")")]
    checks.append(Check("imap connect", True, where))
    try:
        try:
            client.login(server.username, password)
        except LoginError as exc:
            checks.append(Check("imap login", False, f"{server.username}: {_reason(exc)}; check "
                                "[imap] username and the password (app password for Gmail)"))
            return checks
        checks.append(Check("imap login", True, server.username))
        for folder in folders:
            try:
                if client.folder_exists(folder):
                    checks.append(Check(f"imap folder {folder}", True, "exists"))
                else:
                    client.create_folder(folder)
                    checks.append(Check(f"imap folder {folder}", True, "created"))
            except IMAPClientError as exc:
                checks.append(Check(f"imap folder {folder}", False, f"cannot create: "
                                    f"{_reason(exc)}; create it by hand or set [mail] "
                                    f"processed_folder/quarantine_folder to an existing folder"))
        idle = client.has_capability("IDLE")
        checks.append(Check("imap idle", idle, "IDLE supported: new mail arrives at once" if idle
                            else "no IDLE: maild polls every [mail] poll_interval_s seconds"))
    except (OSError, ssl.SSLError, IMAPClientError) as exc:
        checks.append(Check("imap session", False, f"{where}: {_reason(exc)}"))
    finally:
        try:
            client.logout()
        except (OSError, ssl.SSLError, IMAPClientError):
            pass
    return checks


def check_smtp(server: ServerConfig, password: str, *, sender: str, auth: bool = True,
               send_test: str | None = None, timeout: float = 15.0,
               ssl_context: ssl.SSLContext | None = None) -> list[Check]:
    """EHLO, STARTTLS or implicit TLS as configured, AUTH when offered, optionally one email."""
    import smtplib

    where = f"{server.host}:{server.port} ({server.security})"
    context = ssl_context or ssl.create_default_context()
    checks: list[Check] = []
    try:
        if server.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port, timeout=timeout,
                                                  context=context)
        else:
            smtp = smtplib.SMTP(server.host, server.port, timeout=timeout)
    except (OSError, smtplib.SMTPException) as exc:
        return [Check("smtp connect", False, f"{where}: {_reason(exc)}; check [smtp] host, port "
                      f"and security (example: port = 587, security = \"starttls\")")]
    checks.append(Check("smtp connect", True, where))
    try:
        code, _ = smtp.ehlo()
        checks.append(Check("smtp ehlo", code == 250, f"{code}"))
        if server.security == "starttls":
            if not smtp.has_extn("starttls"):
                checks.append(Check("smtp starttls", False, "the server does not offer STARTTLS; "
                                    "use security = \"tls\" on port 465"))
                return checks
            smtp.starttls(context=context)
            smtp.ehlo()
            checks.append(Check("smtp starttls", True, "TLS established"))
        if auth and server.username and password:
            if not smtp.has_extn("auth"):
                checks.append(Check("smtp auth", False, "the server offers no AUTH"
                                    + (" before TLS" if server.security == "plain" else "")))
            else:
                try:
                    smtp.login(server.username, password)
                    checks.append(Check("smtp auth", True, server.username))
                except smtplib.SMTPAuthenticationError as exc:
                    checks.append(Check("smtp auth", False, f"{server.username}: "
                                        f"{_reason(exc)}; check [smtp] username and password"))
                    return checks
        if send_test:
            checks.append(_send_test(smtp, sender, send_test))
    except (OSError, smtplib.SMTPException) as exc:
        checks.append(Check("smtp session", False, f"{where}: {_reason(exc)}"))
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return checks


def _send_test(smtp: Any, sender: str, to: str) -> Check:
    import smtplib
    from email.message import EmailMessage
    from email.utils import format_datetime, make_msgid

    msg = EmailMessage()
    msg["From"], msg["To"] = sender, to
    msg["Subject"] = "maild check: test message / 测试邮件"
    msg["Date"] = format_datetime(datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content("maild check sent this to test SMTP submission. No reply needed.\n"
                    "maild check 发送此邮件以测试 SMTP 提交，无需回复。\n")
    try:
        refused = smtp.send_message(msg, from_addr=sender, to_addrs=[to])
    except smtplib.SMTPException as exc:
        return Check("smtp send", False, f"to {to}: {_reason(exc)}")
    return Check("smtp send", not refused, f"accepted for {to}" if not refused
                 else f"refused: {refused}")


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, bytes | bytearray):  # pragma: no cover
        text = exc.decode("utf-8", "replace")
    args = getattr(exc, "args", ())
    if args and isinstance(args[-1], bytes):
        text = args[-1].decode("utf-8", "replace")
    return f"{type(exc).__name__}: {text}".strip().rstrip(":")


def format_checks(checks: Sequence[Check], paint: Painter) -> str:
    width = max((_width(c.name) for c in checks), default=0)
    lines = [paint.line(c.ok, _pad(c.name, width), c.detail) for c in checks]
    failed = [c.name for c in checks if not c.ok]
    summary = (f"all {len(checks)} checks passed" if not failed
               else f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")
    lines += ["", paint.line(not failed, summary, "")]
    return "\n".join(line.rstrip() for line in lines)


class Painter:
    """Green/red marks; ANSI colour only for a terminal."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def line(self, ok: bool, name: str, detail: str) -> str:
        mark = "✓ ok  " if ok else "✗ FAIL"
        if self.colour:
            mark = f"\033[{'32' if ok else '31'}m{mark}\033[0m"
        return f"{mark} {name}  {detail}"


# ---------------------------------------------------------------------------------------------
# terminal width (shared with ops.py)


def _width(text: str) -> int:
    """Terminal columns: CJK (wide and full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0
               if unicodedata.combining(c) else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))
