"""Real mail servers as test peers: Dovecot (IMAP + IDLE) behind an aiosmtpd SMTP front door.

`DovecotMailSystem` has the surface the tests use from `maild.adapters.embedded.EmbeddedMailSystem`:
`host`, `imap_port`, `smtp_port`, `start()`, `stop()`, `add_account()`, `accounts`. Dovecot runs
from its own config (`dovecot -F -c FILE`) under a fresh directory in /tmp, never touching the
system service. SMTP is aiosmtpd delivering by LMTP (stdlib `smtplib.LMTP`) to Dovecot's LMTP
TCP port, one LMTP transaction per recipient so that each copy carries its own
`Delivered-To: <exact rcpt>` line, as the embedded system does; `local+tag@domain` is delivered
to `local@domain`; unknown users get 550 at RCPT.

Surprises:
- As root, mail processes run as `nobody` and auth as `dovecot`: the whole directory is made
  traversable for them (pytest's `tmp_path` is 0700, which makes auth fail with "Temporary
  authentication failure"), and the mail directory belongs to `nobody`.
- IDLE pushes arrive ~0.5 s after a change (Dovecot batches notifications by design).
- Free ports are found by binding port 0 and closing: a tiny race, acceptable for tests.
- With `oauth2_introspection_url` (tests/tokenserver.py), Dovecot also takes AUTHENTICATE
  XOAUTH2/OAUTHBEARER through an `oauth2` passdb that introspects each token there (passwords
  still work for the other mechanisms), and the SMTP front door offers AUTH XOAUTH2 checked by
  `smtp_oauth2_check`; `smtp_sessions` records (MAIL FROM, authenticated user) of each email.
- `recreate_inbox(address)` deletes a user's INBOX (messages, uid list and indexes) while the
  server runs; Dovecot then creates a new one with a new, larger UIDVALIDITY.
"""

from __future__ import annotations

import os
import pwd
import shutil
import smtplib
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if os.path.exists("/usr/sbin/dovecot")
                                      else None)


def dovecot_available() -> bool:
    return DOVECOT is not None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _resolve(accounts: Mapping[str, str], address: str) -> str | None:
    by_lower = {a.lower(): a for a in accounts}
    lower = address.lower()
    found = by_lower.get(lower)
    if found is None and "@" in lower:
        local, _, domain = lower.rpartition("@")
        if "+" in local:
            found = by_lower.get(local.split("+", 1)[0] + "@" + domain)
    return found


def stamp_authentication_results(raw: bytes, authserv_id: str) -> bytes:
    """What a receiving MTA with an authentication milter does (RFC 8601 §5): remove every
    Authentication-Results field that claims `authserv_id` and put its own on top. This test
    peer checks nothing, so its own says `dmarc=none`."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    kept: list[bytes] = []
    dropping = False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):  # a folded continuation belongs to the field above
            if not dropping:
                kept.append(line)
            continue
        name, _, value = line.partition(b":")
        dropping = (name.strip().lower() == b"authentication-results"
                    and value.strip().split(b";")[0].split()[:1] == [authserv_id.encode()])
        if not dropping:
            kept.append(line)
    own = f"Authentication-Results: {authserv_id}; dmarc=none".encode()
    return own + b"\r\n" + b"\r\n".join(kept) + sep + body


class _LmtpRelay:
    """aiosmtpd handler: RCPT checked against the accounts, DATA delivered by LMTP per recipient."""

    def __init__(self, system: DovecotMailSystem) -> None:
        self.system = system

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if _resolve(self.system.accounts, address) is None:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def auth_XOAUTH2(self, server, args):  # noqa: N802
        from maild.adapters.embeddedsmtp import xoauth2_auth
        check = self.system.smtp_oauth2_check or (lambda user, token: False)
        return await xoauth2_auth(server, args, check)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        import asyncio
        self.system.smtp_sessions.append((envelope.mail_from or "",
                                          session.auth_data if session.authenticated else None))
        raw = envelope.original_content or b""
        if self.system.authserv_id:
            raw = stamp_authentication_results(raw, self.system.authserv_id)
        try:
            await asyncio.to_thread(self._deliver, envelope.mail_from or "", envelope.rcpt_tos, raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code = min(code for code, _msg in exc.recipients.values())
            return f"{code} 5.1.1 LMTP refused" if code >= 500 else "451 4.3.0 LMTP refused"
        except (smtplib.SMTPException, OSError):
            return "451 4.3.0 Delivery failed"
        return "250 2.0.0 Delivered"

    def _deliver(self, mail_from: str, rcpt_tos: list[str], raw: bytes) -> None:
        with smtplib.LMTP(self.system.host, self.system.lmtp_port, timeout=30) as lmtp:
            for rcpt in rcpt_tos:
                account = _resolve(self.system.accounts, rcpt)
                if account is None:
                    continue
                lmtp.sendmail(mail_from, [account],
                              b"Delivered-To: " + rcpt.encode("utf-8") + b"\r\n" + raw)


class DovecotMailSystem:
    """Dovecot IMAP + an SMTP front door delivering into it by LMTP, on 127.0.0.1."""

    def __init__(self, host: str = "127.0.0.1", imap_port: int = 0, smtp_port: int = 0,
                 accounts: Mapping[str, str] | None = None, *,
                 oauth2_introspection_url: str = "",
                 smtp_oauth2_check: Any = None, authserv_id: str = "") -> None:
        if not dovecot_available():
            raise RuntimeError("dovecot is not installed (apt-get install dovecot-imapd "
                               "dovecot-lmtpd)")
        self.host = host
        self.imap_port = imap_port
        self.smtp_port = smtp_port
        self.lmtp_port = 0
        self.accounts: dict[str, str] = dict(accounts or {})
        self.oauth2_introspection_url = oauth2_introspection_url
        self.smtp_oauth2_check = smtp_oauth2_check
        self.smtp_sessions: list[tuple[str, str | None]] = []
        # When set, the SMTP front door stamps and strips Authentication-Results as this
        # authserv-id (`stamp_authentication_results`), like an MTA with a DMARC milter.
        self.authserv_id = authserv_id
        self.root: Path | None = None
        self.startup_s: float | None = None  # how long Dovecot took to answer IMAP
        self._process: subprocess.Popen[bytes] | None = None
        self._smtp: Any = None
        self._lock = threading.Lock()

    # -- files ----------------------------------------------------------------------------
    @property
    def mail_dir(self) -> Path:
        assert self.root is not None
        return self.root / "mail"

    def _write_passwd(self) -> None:
        assert self.root is not None
        lines = "".join(f"{a}:{{PLAIN}}{p}::::::\n" for a, p in self.accounts.items())
        tmp = self.root / "passwd.tmp"
        tmp.write_text(lines, encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, self.root / "passwd")  # a new mtime: Dovecot re-reads it

    def _config(self) -> str:
        assert self.root is not None
        root = self.root
        if os.geteuid() == 0:
            users = "uid=nobody gid=nogroup"
            internal = ""
        else:
            me = pwd.getpwuid(os.geteuid()).pw_name
            users = f"uid={os.geteuid()} gid={os.getegid()}"
            internal = (f"default_internal_user = {me}\ndefault_login_user = {me}\n"
                        f"default_internal_group = {os.getegid()}\n"
                        "service imap-login {\n  chroot =\n}\nservice anvil {\n  chroot =\n}\n")
        mechanisms, oauth2 = "plain login", ""
        if self.oauth2_introspection_url:
            mechanisms = "plain login xoauth2 oauthbearer"
            (root / "oauth2.conf.ext").write_text(
                f"introspection_mode = post\nintrospection_url = {self.oauth2_introspection_url}\n"
                "username_attribute = username\nactive_attribute = active\nactive_value = true\n"
                "force_introspection = yes\n", encoding="utf-8")
            (root / "oauth2.conf.ext").chmod(0o644)
            oauth2 = (f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                      f"  args = {root}/oauth2.conf.ext\n}}\n")
        return f"""
base_dir = {root}/run
state_dir = {root}/state
instance_name = maild-test-{root.name}
listen = {self.host}
ssl = no
protocols = imap lmtp
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
mail_fsync = never
lmtp_hdr_delivery_address = none
first_valid_uid = 0
{internal}
{oauth2}passdb {{
  driver = passwd-file
  mechanisms = plain login none
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = {users} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = {self.host}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {self.host}
    port = {self.lmtp_port}
  }}
}}
"""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._process is not None:
                return
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="mdv", dir="/tmp"))
                self.root.chmod(0o755)  # traversable for nobody (mail) and dovecot (auth)
                mail = self.root / "mail"
                mail.mkdir(mode=0o777)
                if os.geteuid() == 0:
                    os.chown(mail, pwd.getpwnam("nobody").pw_uid, -1)
            if not self.imap_port:
                self.imap_port = free_port(self.host)
            if not self.lmtp_port:
                self.lmtp_port = free_port(self.host)
            self._write_passwd()
            conf = self.root / "dovecot.conf"
            conf.write_text(self._config(), encoding="utf-8")
            started = time.monotonic()
            self._process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                self._wait_ready()
            except BaseException:
                self._kill()
                raise
            self.startup_s = time.monotonic() - started
            self._start_smtp()

    def _wait_ready(self, timeout_s: float = 15.0) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode("utf-8", "replace") if self._process.stderr else ""
                raise RuntimeError(f"dovecot exited with {self._process.returncode}: {err}\n"
                                   f"{self.log()}")
            try:
                for port in (self.imap_port, self.lmtp_port):
                    with socket.create_connection((self.host, port), timeout=1) as sock:
                        if not sock.recv(64):
                            raise OSError("closed")
                return
            except OSError:
                time.sleep(0.005)
        raise RuntimeError(f"dovecot did not listen within {timeout_s} s\n{self.log()}")

    def _start_smtp(self) -> None:
        from aiosmtpd.controller import Controller

        from maild.adapters.embeddedsmtp import XOAuth2SMTP

        class FrontDoor(Controller):
            def factory(self):
                return XOAuth2SMTP(self.handler, **self.SMTP_kwargs)
        # AUTH (XOAUTH2 only) is offered without TLS only when the test checks tokens
        auth = ({"auth_require_tls": False, "auth_exclude_mechanism": ["PLAIN", "LOGIN"]}
                if self.smtp_oauth2_check else {"auth_exclude_mechanism": ["XOAUTH2"]})
        self._smtp = FrontDoor(_LmtpRelay(self), hostname=self.host, port=self.smtp_port,
                                server_hostname="maild-dovecot-test", ready_timeout=10,
                                enable_SMTPUTF8=True, decode_data=False,
                                data_size_limit=30 * 1024 * 1024, **auth)
        if not self.smtp_port:
            self._smtp.port = free_port(self.host)
        self._smtp.start()
        self.smtp_port = self._smtp.port

    def stop(self) -> None:
        with self._lock:
            if self._smtp is not None:
                self._smtp.stop()
                self._smtp = None
            self._kill()

    def _kill(self) -> None:
        proc, self._process = self._process, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()

    def remove(self) -> None:
        """Stop and delete every file (mail included)."""
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> DovecotMailSystem:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    # -- accounts and mailboxes -------------------------------------------------------------
    def add_account(self, address: str, password: str) -> None:
        self.accounts[address] = password
        if self.root is not None:
            self._write_passwd()

    def recreate_inbox(self, address: str) -> None:
        """Delete `address`'s INBOX with its uid list and indexes: the next one has a new
        UIDVALIDITY (the user's `dovecot-uidvalidity` file is kept, so the value grows)."""
        home = self.mail_dir / address
        for name in ("cur", "new", "tmp"):
            shutil.rmtree(home / name, ignore_errors=True)
        for path in home.glob("dovecot*"):
            if path.is_file() and not path.name.startswith("dovecot-uidvalidity"):
                path.unlink()

    def log(self) -> str:
        if self.root is None or not (self.root / "dovecot.log").exists():
            return ""
        return (self.root / "dovecot.log").read_text("utf-8", "replace")[-4000:]
