"""OAuth2 end to end: Dovecot with an oauth2 passdb and an SMTP front door taking XOAUTH2, both
asking the local token endpoint (tests/tokenserver.py) whether a token is good; `maild check`
says which permission is missing; the daemon signs in with XOAUTH2, handles a project, gets a
new token when the old one expires, and backs off (without crashing) when the app is revoked."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_mail_system
from daemonproc import write_daemon_config
from imapclient import IMAPClient
from tokenserver import TENANT, TokenServer

from maild.adapters.embedded import EmbeddedMailSystem
from maild.app.checks import run_checks
from maild.core.config import load_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
INBOX = "collab@corp.example"
SECRET = "app-secret-value"


@pytest.fixture
def endpoint():
    server = TokenServer().start()
    server.add_app("app-1", secret=SECRET, roles=("IMAP.AccessAsApp", "SMTP.SendAsApp"))
    server.grant_mailbox("app-1", INBOX)
    yield server
    server.stop()


@pytest.fixture
def dovecot(endpoint, shipped_config, request):
    """Dovecot (oauth2 passdb) + SMTP front door (XOAUTH2), both checking with `endpoint`."""
    make_mail_system("dovecot", {})  # skips (fails under CI=true) without Dovecot
    from mailservers import DovecotMailSystem

    system = DovecotMailSystem(accounts=dict(shipped_config.embedded_system.accounts),
                               oauth2_introspection_url=endpoint.introspection_url("imap"),
                               smtp_oauth2_check=endpoint.checker("smtp"))
    system.start()
    yield system
    system.remove()


def _config(tmp_path: Path, system, endpoint: TokenServer) -> Path:
    path = write_daemon_config(tmp_path, host="127.0.0.1", imap_port=system.imap_port,
                               smtp_port=system.smtp_port)
    text = path.read_text(encoding="utf-8")
    text = text.replace('password_env = "TEST_IMAP_PASSWORD"', 'auth = "oauth2"')
    text = text.replace('username = ""', f'username = "{INBOX}"\nauth = "oauth2"')
    text += f"""
[oauth]
provider = "microsoft"
flow = "client_credentials"
tenant = "{TENANT}"
client_id = "app-1"
secret_env = "MAILD_OAUTH_SECRET"
authority = "{endpoint.authority}"
ca_file = "{endpoint.ca_file}"
"""
    path.write_text(text, encoding="utf-8")
    return path


def _checks(config: Path) -> dict[str, tuple[bool, str]]:
    checks = run_checks(load_config(config), environ={"MAILD_OAUTH_SECRET": SECRET},
                        timeout=30)  # Dovecot delays repeated failures (auth penalty)
    return {c.name: (c.ok, c.detail) for c in checks}


def test_check_signs_in_with_xoauth2_and_names_missing_permissions(dovecot, endpoint, tmp_path):
    config = _config(tmp_path, dovecot, endpoint)
    checks = _checks(config)
    for name in ("oauth token", "imap login", "imap idle", "smtp auth"):
        assert checks[name][0], (name, checks[name])
    assert "grants IMAP.AccessAsApp, SMTP.SendAsApp" in checks["oauth token"][1]
    assert checks["imap login"][1] == f"{INBOX} (XOAUTH2)"
    # the app loses its mailbox permission: the token is fine, Exchange's side is missing
    endpoint.mailbox_access.clear()
    checks = _checks(config)
    assert checks["oauth token"][0] and not checks["imap login"][0]
    assert "Add-MailboxPermission -Identity collab@corp.example" in checks["imap login"][1]
    # an app without the IMAP and SMTP application permissions
    endpoint.grant_mailbox("app-1", INBOX)
    endpoint.apps["app-1"].roles = ()
    (tmp_path / "var" / "oauth-tokens.json").unlink()
    checks = _checks(config)
    assert "lacks IMAP.AccessAsApp" in checks["imap login"][1]
    assert "lacks SMTP.SendAsApp" in checks["smtp auth"][1]
    # a deleted secret: the cached token is refused, and a new one cannot be had
    endpoint.revoke_app("app-1")
    checks = _checks(config)
    assert not checks["imap login"][0] and "AADSTS7000215" in checks["imap login"][1]
    assert SECRET not in repr(checks)


def test_embedded_smtp_takes_xoauth2_tokens_the_endpoint_vouches_for(endpoint, tmp_path):
    import smtplib

    from maild.adapters.oauth import OAuthTokens
    from maild.adapters.tokencache import TokenCacheFile

    cfg = load_config(_config(tmp_path, type("S", (), {"imap_port": 1, "smtp_port": 1}),
                              endpoint)).oauth
    tokens = OAuthTokens(cfg, INBOX, cache=TokenCacheFile(tmp_path / "t.json"),
                         secret=lambda: SECRET, clock=time.time)
    with EmbeddedMailSystem("127.0.0.1", 0, 0, {INBOX: "pw", "li.na@corp.example": "demo"},
                            oauth2_check=endpoint.checker("smtp")) as mail:
        with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as smtp:
            smtp.ehlo()
            assert "XOAUTH2" in smtp.esmtp_features["auth"]
            token = tokens.token()  # a JWT of over 500 bytes: longer than aiosmtpd's default line
            code, _ = smtp.auth("XOAUTH2", lambda c=None: "" if c is not None else
                                f"user={INBOX}\x01auth=Bearer {token}\x01\x01")
            assert code == 235
        with smtplib.SMTP("127.0.0.1", mail.smtp_port, timeout=10) as smtp:
            smtp.ehlo()  # smtplib's auth() does not; a 503 "send EHLO first" would pass as ok
            with pytest.raises(smtplib.SMTPAuthenticationError) as info:
                smtp.auth("XOAUTH2", lambda c=None: "" if c is not None else
                          f"user={INBOX}\x01auth=Bearer forged\x01\x01")
            assert info.value.smtp_code == 535
    with EmbeddedMailSystem("127.0.0.1", 0, 0, {INBOX: "pw"}) as plain:  # no check: not offered
        with smtplib.SMTP("127.0.0.1", plain.smtp_port, timeout=10) as smtp:
            smtp.ehlo()
            assert "XOAUTH2" not in smtp.esmtp_features.get("auth", "")


def _count(system, address: str) -> int:
    with IMAPClient("127.0.0.1", port=system.imap_port, ssl=False, timeout=10) as client:
        client.login(address, "demo")
        client.select_folder("INBOX", readonly=True)
        return len(client.search(["ALL"]))


def _until(predicate, timeout_s: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _send(system, name: str) -> None:
    import smtplib
    with smtplib.SMTP("127.0.0.1", system.smtp_port, timeout=10) as smtp:
        smtp.sendmail("li.na@corp.example", [INBOX], (DATA / name).read_bytes())


def _restart(system) -> None:
    """Cut every connection (as a server restart or a network blip does)."""
    system.stop()
    system.start()


def test_daemon_signs_in_with_oauth2_refreshes_and_backs_off_when_revoked(dovecot, endpoint,
                                                                          tmp_path):
    endpoint.lifetime_s = 8  # short-lived tokens: refreshed during the test
    config = _config(tmp_path, dovecot, endpoint)
    log_path = tmp_path / "daemon.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MAILD_SECRET": "oauth-test",
           "MAILD_OAUTH_SECRET": SECRET}
    with open(log_path, "w") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "maild", "-c", str(config), "run"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # 1. a project email: handled, the receipt sent over SMTP signed in with XOAUTH2
        _send(dovecot, "new_project_zh.eml")
        _until(lambda: _count(dovecot, "li.na@corp.example") >= 1, what="the receipt")
        ours = [user for sender, user in dovecot.smtp_sessions if sender == INBOX]
        assert ours and set(ours) == {INBOX}  # every email maild sent was on a signed-in session
        assert ("imap", True) in endpoint.introspections
        # 2. the token expires (8 s) while the daemon runs; the connections drop
        time.sleep(endpoint.lifetime_s + 1)
        grants = len(endpoint.grants)
        seen = len(endpoint.introspections)
        _restart(dovecot)
        before = _count(dovecot, "li.na@corp.example")
        _send(dovecot, "new_task_en.eml")
        _until(lambda: _count(dovecot, "li.na@corp.example") > before, what="the second receipt")
        assert len(endpoint.grants) > grants  # a new token was fetched...
        assert all(active for _p, active in endpoint.introspections[seen:])  # ...before use
        # 3. the app's secret is deleted: a clear error, backing off, no crash loop
        endpoint.revoke_app("app-1")
        _restart(dovecot)
        _until(lambda: "event=signin_failed" in log_path.read_text(), what="the sign-in error")
        grants = len(endpoint.grants)
        time.sleep(6)
        assert daemon.poll() is None, log_path.read_text()
        text = log_path.read_text()
        assert "AADSTS7000215" in text and "Certificates & secrets" in text
        assert len(endpoint.grants) - grants <= 5, endpoint.grants  # backing off: 1, 2, 4 s…
        # the operator puts the new secret in place (here: the old one is valid again)
        endpoint.apps["app-1"].secret = SECRET
        before = _count(dovecot, "alex.morgan@corp.example")
        _send(dovecot, "help_en.eml")  # from Alex Morgan
        _until(lambda: _count(dovecot, "alex.morgan@corp.example") > before, timeout_s=90,
               what="recovery after the secret is fixed")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    text = log_path.read_text()
    assert daemon.returncode == 0, text[-3000:]
    tokens = [t for t in endpoint.tokens]
    assert SECRET not in text and not any(t in text for t in tokens)
    assert not re.search(r"Traceback", text), text[-3000:]
