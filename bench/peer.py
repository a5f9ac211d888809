"""Phase 7: Roundup's mail gateway (classic tracker, sqlite) on the same new-item and reply emails.

A tracker is installed in a temp dir, its outgoing mail pointed at the bench's SMTP sink. The
emails are the backlog corpus (subject markers dropped: Roundup reads "[...]" as a class name)
plus one owner reply per item ("Re: [issueN] ..."), fed in batch mode (`roundup-mailgw TRACKER
mailbox FILE`). ms per email = (time for N emails − time for an empty mailbox) / N, so start-up
is not charged to Roundup.
"""

from __future__ import annotations

import mailbox
import re
import subprocess
import sys
import time
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from . import corpus
from .harness import median, tempdir
from .progress import note

BIN = Path(sys.executable).parent


def _admin(tracker: Path, *args: str) -> None:
    subprocess.run([str(BIN / "roundup-admin"), "-i", str(tracker), *args], check=True,
                   capture_output=True, text=True)


def _setup(tracker: Path, smtp_port: int) -> None:
    _admin(tracker, "install", "classic", "sqlite")
    ini = (tracker / "config.ini").read_text()
    ini = re.sub(r"(?m)^port = 25$", f"port = {smtp_port}", ini)
    ini = re.sub(r"(?m)^#host = NO DEFAULT$", "host = 127.0.0.1", ini, count=1)
    ini = re.sub(r"(?m)^#domain = NO DEFAULT$", "domain = corp.example", ini, count=1)
    ini = re.sub(r"(?m)^web = .*$", "web = http://localhost:8080/tracker/", ini)
    (tracker / "config.ini").write_text(ini)
    _admin(tracker, "initialise", "admin-pw")


def _emails(count: int, now: datetime) -> list[bytes]:
    mails = corpus.backlog(count, now, seed=7, tag="peer")
    out = []
    for n, mail in enumerate(mails, start=1):
        subject = re.sub(r"^\[[^\]]*\]\s*", "", mail.subject)
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = mail.sender, "issue_tracker@corp.example", subject
        msg["Date"], msg["Message-ID"] = format_datetime(now), mail.message_id
        import email
        msg.set_content(email.message_from_bytes(mail.raw, policy=SMTP).get_content())
        out.append(msg.as_bytes(policy=SMTP))
        owner = corpus.OWNERS_EN[n % 3].lower().replace(" ", ".") + "@corp.example"
        reply = EmailMessage()
        reply["From"], reply["To"] = owner, "issue_tracker@corp.example"
        reply["Subject"] = f"Re: [issue{n}] {subject}"
        reply["Date"], reply["Message-ID"] = format_datetime(now), f"<peer-r-{n}@corp.example>"
        reply["In-Reply-To"] = mail.message_id
        reply.set_content("Confirm, will deliver on time.\n\n> quoted request\n")
        out.append(reply.as_bytes(policy=SMTP))
    # all new items first, then the replies (an issue must exist before its reply)
    return out[0::2] + out[1::2]


def _mbox(path: Path, raws: list[bytes]) -> None:
    box = mailbox.mbox(str(path))
    box.lock()
    for raw in raws:
        box.add(mailbox.mboxMessage(raw))
    box.flush()
    box.unlock()
    box.close()


def _gateway(tracker: Path, path: Path) -> float:
    t0 = time.monotonic()
    proc = subprocess.run([str(BIN / "roundup-mailgw"), str(tracker), "mailbox", str(path)],
                          capture_output=True, text=True)
    if proc.returncode:
        note(f"roundup-mailgw exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return time.monotonic() - t0


def run(servers, count: int, repeats: int) -> dict:
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    raws = _emails(count, now)
    per_email, issues = [], None
    for _ in range(repeats):
        with tempdir("maild-bench-roundup-") as tmp:
            tracker = tmp / "tracker"
            _setup(tracker, servers.smtp_port)
            empty, full = tmp / "empty.mbox", tmp / "mail.mbox"
            _mbox(empty, [])
            _mbox(full, raws)
            base = _gateway(tracker, empty)
            start = servers.count()
            elapsed = _gateway(tracker, full)
            sent = servers.count() - start
            per_email.append((elapsed - base) * 1000 / len(raws))
            issues = sent
    return {"roundup_ms_per_email": median(per_email), "emails": len(raws),
            "roundup_emails_sent": issues}
