"""`maild check`'s probe of the receiving server: does it strip forged Authentication-Results?

maild may trust an Authentication-Results field only where the receiving server stamps its own
and removes copies that claim its authserv-id (RFC 8601 §5); otherwise any sender can write
`dmarc=pass` on top of their email. The operator declares it (`[security]
trust_authentication_results`); this proves it: the probe goes through the configured SMTP
server to the inbox with such a forged field on top, is read back over IMAP and deleted, and the
field must be gone while the server's own stamp is there.

Surprises: the probe is submitted like maild's own mail (authenticated where the server asks),
so it proves the path that mail to the inbox takes through that server; a daemon that runs
meanwhile sees it as its own email and moves it to Processed, where the probe looks too.
"""

from __future__ import annotations

import ssl
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from maild.app.checkreport import Check, reason_of
from maild.core.config import Config

PROBE_SUBJECT = "maild check: Authentication-Results probe"


def authentication_probe(sender: str, authserv_id: str, nonce: str, now: datetime) -> bytes:
    """An email to the inbox that carries, on top, an Authentication-Results field an outsider
    could write: our authserv-id, dmarc=pass, and the `nonce` to recognise it by."""
    domain = sender.rpartition("@")[2]
    return (f"Authentication-Results: {authserv_id}; dmarc=pass header.from={domain} "
            f"(maild-check-forged {nonce})\r\n"
            f"From: maild check <{sender}>\r\nTo: {sender}\r\nSubject: {PROBE_SUBJECT}\r\n"
            f"Date: {format_datetime(now)}\r\nMessage-ID: <maild-check-{nonce}@{domain}>\r\n"
            f"Auto-Submitted: auto-generated\r\nX-Auto-Response-Suppress: All\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"maild check sent this to itself to see whether a forged Authentication-Results "
            f"field survives delivery. It is deleted after reading.\r\n").encode()


def judge_probe(header: bytes, authserv_id: str, nonce: str) -> Check:
    """What the probe's header, as delivered, says about trusting Authentication-Results."""
    from email import message_from_bytes
    from email.policy import compat32

    from maild.core.classify import authentication_results

    fields = [str(v) for v in message_from_bytes(header, policy=compat32).get_all(
        "Authentication-Results", [])]
    ours = [v for v in fields if authentication_results(v)[0] == authserv_id]
    if any(nonce in v for v in ours):
        return Check("auth stamp", False,
                     f"a forged Authentication-Results field naming {authserv_id} arrived "
                     "untouched: this server does not strip them, so anyone could claim "
                     "dmarc=pass; set [security] trust_authentication_results = false")
    if not ours:
        return Check("auth stamp", False,
                     f"no Authentication-Results from {authserv_id} arrived: the server does "
                     f"not stamp (or [security] authserv_id is not what it writes; found: "
                     f"{', '.join(authentication_results(v)[0] for v in fields) or 'none'})")
    return Check("auth stamp", True, f"a forged field was removed; the server stamps "
                 f"\"{' '.join(ours[0].split())[:120]}\"")


def check_authentication_stamp(config: Config, imap_password: str, smtp_password: str, *,
                               timeout: float = 15.0, now: datetime | None = None) -> Check:
    """Send the probe through the configured SMTP server to the inbox, find it over IMAP, judge
    its header and delete it."""
    import secrets
    import smtplib
    import time

    from imapclient import IMAPClient
    from imapclient.exceptions import IMAPClientError

    nonce = secrets.token_hex(8)
    raw = authentication_probe(config.inbox_address, config.authserv_id, nonce,
                               now or datetime.now().astimezone())
    smtp_server, imap_server = config.smtp, config.imap
    context = ssl.create_default_context()
    try:
        smtp_class = smtplib.SMTP_SSL if smtp_server.security == "tls" else smtplib.SMTP
        kwargs: dict[str, Any] = {"context": context} if smtp_server.security == "tls" else {}
        with smtp_class(smtp_server.host, smtp_server.port, timeout=timeout, **kwargs) as smtp:
            if smtp_server.security == "starttls":
                smtp.starttls(context=context)
            if not config.embedded and smtp_server.username and smtp_password:
                smtp.login(smtp_server.username, smtp_password)
            smtp.sendmail(config.inbox_address, [config.inbox_address], raw)
    except (OSError, smtplib.SMTPException) as exc:
        return Check("auth stamp", False, f"cannot send the probe: {reason_of(exc)}")
    wanted = f"maild-check-{nonce}@{config.inbox_address.rpartition('@')[2]}"
    try:
        with IMAPClient(imap_server.host, port=imap_server.port,
                        ssl=imap_server.security == "tls",
                        ssl_context=context if imap_server.security == "tls" else None,
                        timeout=timeout) as client:
            if imap_server.security == "starttls":
                client.starttls(context)
            client.login(imap_server.username, imap_password)
            deadline = time.monotonic() + max(timeout, 30.0)
            while True:
                for folder in ("INBOX", config.processed_folder):  # a running daemon moves it
                    if not client.folder_exists(folder):
                        continue
                    client.select_folder(folder)
                    uids = client.search(["HEADER", "Message-ID", wanted])
                    if uids:
                        data = client.fetch(uids[:1], ["BODY.PEEK[HEADER]"])
                        header = bytes(data[uids[0]][b"BODY[HEADER]"])
                        client.delete_messages(uids)
                        client.expunge()
                        return judge_probe(header, config.authserv_id, nonce)
                if time.monotonic() > deadline:
                    return Check("auth stamp", False, f"the probe {wanted} did not arrive in "
                                 f"{max(timeout, 30.0):.0f} s")
                time.sleep(0.5)
    except (OSError, ssl.SSLError, IMAPClientError) as exc:
        return Check("auth stamp", False, f"cannot read the probe: {reason_of(exc)}")
