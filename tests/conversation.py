"""A conversation harness: people send email by SMTP, maild handles its inbox, people read by IMAP.

Tests read like the exchange they check: `convo.say(...)`, `convo.process()`, then
`convo.inbox("wang.zhe@corp.example")` returns what arrived there since the last look.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import smtplib
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo

from imapclient import IMAPClient

from maild.app.service import Service
from maild.core.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("Asia/Shanghai")


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_config(mail_system, data_dir: Path, **overrides) -> Config:
    values = {"embedded.imap_port": mail_system.imap_port,
              "embedded.smtp_port": mail_system.smtp_port,
              "maild.data_dir": str(data_dir), "maild.secret_file": str(data_dir / "secret.key"),
              "maild.archive_dir": str(data_dir.parent / "archive")}
    values.update(overrides)
    return load_config(ROOT / "config.toml", values)


class Conversation:
    def __init__(self, mail_system, config: Config, clock: FakeClock) -> None:
        self.mail = mail_system
        self.config = config
        self.clock = clock
        self.service = Service.from_config(config, environ={"MAILD_SECRET": "conversation-test"},
                                           clock=clock)
        self._seen: dict[str, set[int]] = {}

    def close(self) -> None:
        self.service.close()

    def say(self, sender: str, subject: str, body: str, *, to: str | None = None,
            in_reply_to: str | None = None, references: str | None = None,
            headers: dict[str, str] | None = None) -> str:
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = to or self.config.inbox_address
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self.clock())
        message_id = f"<{uuid.uuid4().hex}@corp.example>"
        msg["Message-ID"] = message_id
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = references or in_reply_to
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(body)
        self.send_raw(sender, [str(msg["To"])], msg.as_bytes(policy=email.policy.SMTP))
        return message_id

    def send_raw(self, sender: str, recipients: list[str], raw: bytes) -> None:
        with smtplib.SMTP(self.mail.host, self.mail.smtp_port, timeout=10) as smtp:
            smtp.sendmail(sender, recipients, raw)

    def reply(self, sender: str, to_message: EmailMessage, body: str) -> str:
        """Reply as a mail client does: to Reply-To, Re: subject, threading, quoted history."""
        quoted = to_message.get_body(preferencelist=("plain",)).get_content()
        text = body + "\n\n" + f"On {to_message['Date']}, maild <{self.config.inbox_address}> wrote:\n"
        text += "\n".join("> " + line for line in quoted.splitlines())
        refs = f"{to_message.get('References', '')} {to_message['Message-ID']}".strip()
        return self.say(sender, "Re: " + str(to_message["Subject"]), text,
                        to=str(to_message.get("Reply-To") or to_message["From"]),
                        in_reply_to=str(to_message["Message-ID"]), references=refs)

    def process(self, rounds: int = 5) -> None:
        """Let maild handle everything waiting, as its loop would, until the inbox is empty."""
        for _ in range(rounds):
            report = self.service.process_batch()
            if not report.fetched:
                return

    def folder(self, address: str, folder: str = "INBOX") -> list[EmailMessage]:
        password = self.config.embedded_system.accounts[address]
        with IMAPClient(self.mail.host, port=self.mail.imap_port, ssl=False, timeout=10) as client:
            client.login(address, password)
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [email.message_from_bytes(bytes(data[uid][b"BODY[]"]),
                                              policy=email.policy.default) for uid in sorted(data)]

    def inbox(self, address: str) -> list[EmailMessage]:
        """Emails in `address`'s INBOX not returned by an earlier call."""
        seen = self._seen.setdefault(address, set())
        fresh = []
        for msg in self.folder(address):
            key = hash(str(msg["Message-ID"]))
            if key not in seen:
                seen.add(key)
                fresh.append(msg)
        return fresh


def kinds(messages: list[EmailMessage]) -> list[str]:
    """What maild sent, by its X-Maild-Kind header, sorted: ["confirm_request", "receipt"]."""
    return sorted(str(m["X-Maild-Kind"]) for m in messages)


def text_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def html_of(msg: EmailMessage) -> str:
    return msg.get_body(preferencelist=("html",)).get_content()


def buttons_of(msg: EmailMessage) -> list[tuple[str, str, str, str]]:
    """The reply buttons of an email's HTML part: (label, address, subject, pre-filled body)."""
    found = []
    for href, label in re.findall(r'<a href="(mailto:[^"]+)"[^>]*>([^<]+)</a>', html_of(msg)):
        url = urlsplit(html.unescape(href))
        query = parse_qs(url.query)
        found.append((html.unescape(label), unquote(url.path), query["subject"][0],
                      query.get("body", [""])[0].replace("\r\n", "\n")))
    return found
