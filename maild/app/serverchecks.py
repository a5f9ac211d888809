"""`maild check`'s server checks: log in to IMAP (and see the folders), log in to SMTP (password or
XOAUTH2), and with `--send-test` send one email. Each returns a `Check`; `checks.run_checks`
runs them in order with the rest.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from maild.app.checkreport import Check, reason_of
from maild.core.config import ServerConfig
from maild.core.signin import SignInError, TokenSource


def check_imap(server: ServerConfig, password: str, folders: Sequence[str], *,
               timeout: float = 15.0, ssl_context: ssl.SSLContext | None = None,
               oauth: TokenSource | None = None) -> list[Check]:
    """Connect (TLS/STARTTLS as configured), log in (or XOAUTH2 with `oauth`), create or find
    `folders`, look for IDLE."""
    from imapclient import IMAPClient
    from imapclient.exceptions import IMAPClientError, LoginError

    from maild.adapters.imap import login

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
        return [Check("imap connect", False, f"{where}: {reason_of(exc)}; check [imap] host, port "
                      f"and security (example: port = 993, security = \"tls\")")]
    checks.append(Check("imap connect", True, where))
    try:
        try:
            login(client, server.username, password, oauth)
        except SignInError as exc:
            checks.append(Check("imap login", False, str(exc)))
            return checks
        except LoginError as exc:
            checks.append(Check("imap login", False, f"{server.username}: {reason_of(exc)}; check "
                                "[imap] username and the password (app password for Gmail)"))
            return checks
        checks.append(Check("imap login", True, server.username
                            + (" (XOAUTH2)" if oauth is not None else "")))
        for folder in folders:
            try:
                if client.folder_exists(folder):
                    checks.append(Check(f"imap folder {folder}", True, "exists"))
                else:
                    client.create_folder(folder)
                    checks.append(Check(f"imap folder {folder}", True, "created"))
            except IMAPClientError as exc:
                checks.append(Check(f"imap folder {folder}", False, f"cannot create: "
                                    f"{reason_of(exc)}; create it by hand or set [mail] "
                                    f"processed_folder/quarantine_folder to an existing folder"))
        idle = client.has_capability("IDLE")
        checks.append(Check("imap idle", idle, "IDLE supported: new mail arrives at once" if idle
                            else "no IDLE: maild polls every [mail] poll_interval_s seconds"))
    except (OSError, ssl.SSLError, IMAPClientError) as exc:
        checks.append(Check("imap session", False, f"{where}: {reason_of(exc)}"))
    finally:
        try:
            client.logout()
        except (OSError, ssl.SSLError, IMAPClientError):
            pass
    return checks


def check_smtp(server: ServerConfig, password: str, *, sender: str, auth: bool = True,
               send_test: str | None = None, timeout: float = 15.0,
               ssl_context: ssl.SSLContext | None = None,
               oauth: TokenSource | None = None) -> list[Check]:
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
        return [Check("smtp connect", False, f"{where}: {reason_of(exc)}; check [smtp] host, port "
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
        if auth and oauth is not None:
            offered = smtp.esmtp_features.get("auth", "").upper().split()
            if "XOAUTH2" not in offered:
                checks.append(Check("smtp auth", False, "the server does not offer AUTH XOAUTH2"
                                    + (" before TLS" if server.security == "plain" else "")
                                    + f" (it offers: {' '.join(offered) or 'nothing'})"))
                return checks
            try:
                _xoauth2(smtp, server.username, oauth)
            except SignInError as exc:
                checks.append(Check("smtp auth", False, str(exc)))
                return checks
            checks.append(Check("smtp auth", True, f"{server.username} (XOAUTH2)"))
        elif auth and server.username and password:
            if not smtp.has_extn("auth"):
                checks.append(Check("smtp auth", False, "the server offers no AUTH"
                                    + (" before TLS" if server.security == "plain" else "")))
            else:
                try:
                    smtp.login(server.username, password)
                    checks.append(Check("smtp auth", True, server.username))
                except smtplib.SMTPAuthenticationError as exc:
                    checks.append(Check("smtp auth", False, f"{server.username}: "
                                        f"{reason_of(exc)}; check [smtp] username and password"))
                    return checks
        if send_test:
            checks.append(_send_test(smtp, sender, send_test))
    except (OSError, smtplib.SMTPException) as exc:
        checks.append(Check("smtp session", False, f"{where}: {reason_of(exc)}"))
    finally:
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return checks


def _xoauth2(smtp: Any, username: str, oauth: TokenSource) -> None:
    """AUTH XOAUTH2 with smtplib; a refused token is replaced once (as the Outbox does)."""
    import smtplib

    for attempt in range(2):
        token = oauth.token()
        initial = f"user={username}\x01auth=Bearer {token}\x01\x01"
        try:
            # a 334 challenge after the initial response carries the error: answer it empty
            smtp.auth("XOAUTH2", lambda challenge=None, first=initial: first if challenge is None
                      else "")
            return
        except smtplib.SMTPAuthenticationError as exc:
            said = f"{exc.smtp_code} {exc.smtp_error.decode('utf-8', 'replace')}"
            why = oauth.refused(token, "smtp", said)
            if attempt:
                raise SignInError(why) from None


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
        return Check("smtp send", False, f"to {to}: {reason_of(exc)}")
    return Check("smtp send", not refused, f"accepted for {to}" if not refused
                 else f"refused: {refused}")
