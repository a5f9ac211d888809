"""The demo: the seed guide's Q3 project played through the embedded mail system, as a transcript.

Everything here speaks real SMTP and IMAP to the embedded servers, exactly as people's mail
clients would: the initiator sends the project email, the daemon (running in a thread, as in
`maild run`) answers, and each owner replies from their own mailbox. Each step waits for the
emails it expects and reports what did not arrive, so `maild demo --once` doubles as a smoke test.

The demo keeps its data in its own folder, `<data_dir>/demo/`, with a config.toml written there
for it, so that `maild status -c <data_dir>/demo/config.toml` (and items, show, lessons) shows
what it did; each run empties that folder first, and never touches the data_dir's own store.

Surprise: the daemon's thread is waited for with an Event, not `Thread.join`: on Python 3.11 a
join interrupted by Ctrl-C can return while the thread still runs, and closing the service then
pulls its IMAP socket from under it ("Bad file descriptor").
"""

from __future__ import annotations

import email
import email.policy
import os
import shutil
import signal
import smtplib
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from imapclient import IMAPClient

from maild.app.shipped import set_value
from maild.core.config import Config, load_config

if TYPE_CHECKING:
    from maild.adapters.embedded import EmbeddedMailSystem

PROJECT_EMAIL_ZH = """\
项目名称：Q3新品推广项目
发起人/部门：李娜 / 市场部
参与人/部门：产品部、销售部、客服部
目标/背景：新品计划8月上市，3个月内用户增长50%，需协同各部门制定推广方案
范围：产品卖点提炼、推广素材制作、渠道投放、销售培训、客诉应对

任务：
任务名称 | 负责人 | 截止日期 | 交付标准
新品核心卖点提炼 | 王喆 | 8月10日前 | 500字以内卖点说明+用户场景图
渠道推广方案 | 赵磊 | 8月15日前 | 包含预算、渠道选择、投放节奏
客诉应对流程培训 | 陈静 | 8月20日前 | FAQ文档+培训签到记录

请各位负责人回复"确认"。
"""

OWNER_REPLIES = {
    "wang.zhe@corp.example": "确认",
    "zhao.lei@corp.example": "收到，没问题。预算上限待财务部确认后同步。",
    "chen.jing@corp.example": "确认\n\n发自我的iPhone",
}


@dataclass
class Mailbox:
    address: str
    password: str
    seen: set[bytes]


class Transcript:
    """Prints each email that goes in or out, readably, in the order it happened."""

    def __init__(self, out: TextIO, names: dict[str, str],
                 stamp: Callable[[], str] | None = None) -> None:
        self.out, self.names, self.start = out, names, time.monotonic()
        self.stamp = stamp or (lambda: f"+{time.monotonic() - self.start:5.2f}s")

    def who(self, address: str) -> str:
        name = self.names.get(address.lower())
        return f"{name} <{address}>" if name else address

    def email(self, direction: str, raw: bytes) -> None:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        text = body.get_content() if body is not None else ""
        sender = parseaddr(str(msg.get("From", "")))[1]
        lines = [ln for ln in text.strip().splitlines()][:14]
        self.out.write(f"\n── {self.stamp()}  {direction}  {self.who(sender)} → "
                       f"{', '.join(self.who(parseaddr(a)[1]) for a in str(msg.get('To', '')).split(','))}\n")
        self.out.write(f"   Subject: {msg.get('Subject', '')}\n")
        if msg.get("In-Reply-To"):
            self.out.write(f"   In-Reply-To: {msg.get('In-Reply-To')}\n")
        self.out.write(textwrap.indent("\n".join(lines), "   │ ", lambda _line: True) + "\n")
        self.out.flush()

    def note(self, text: str) -> None:
        self.out.write(f"\n▶ {text}\n")
        self.out.flush()


class DemoFailed(Exception):
    pass


class Scenario:
    def __init__(self, config: Config, out: TextIO, names: dict[str, str],
                 transcript: Transcript | None = None) -> None:
        self.config = config
        self.transcript = transcript or Transcript(out, names)
        accounts = config.embedded_system.accounts
        self.boxes = {a: Mailbox(a, p, set()) for a, p in accounts.items()}
        self.host = config.embedded_system.host

    def send(self, sender: str, to: str, subject: str, text: str, *,
             in_reply_to: str | None = None, references: str | None = None,
             date: str | None = None, files: tuple[tuple[str, bytes], ...] = ()) -> str:
        msg = EmailMessage()
        msg["From"] = f"{self.transcript.names.get(sender, '')} <{sender}>"
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = date or formatdate(localtime=True)
        message_id = f"<{uuid.uuid4().hex}@{sender.partition('@')[2]}>"
        msg["Message-ID"] = message_id
        if in_reply_to:
            msg["In-Reply-To"] = in_reply_to
            msg["References"] = references or in_reply_to
        msg.set_content(text)
        for name, data in files:  # a deliverable, as an owner attaches it
            msg.add_attachment(data, maintype="application", subtype="octet-stream",
                               filename=name)
        with smtplib.SMTP(self.host, self.config.embedded_system.smtp_port, timeout=10) as smtp:
            smtp.send_message(msg)
        self.transcript.email("IN ", msg.as_bytes())
        return message_id

    def collect(self, address: str) -> list[bytes]:
        """New emails in `address`'s INBOX since the last look."""
        box = self.boxes[address]
        with IMAPClient(self.host, port=self.config.embedded_system.imap_port, ssl=False,
                        timeout=10) as client:
            client.login(box.address, box.password)
            client.select_folder("INBOX", readonly=True)
            uids = client.search(["ALL"])
            found = []
            for _uid, data in client.fetch(uids, ["BODY.PEEK[]"]).items():
                raw = bytes(data[b"BODY[]"])
                key = raw[:4000]
                if key not in box.seen:
                    box.seen.add(key)
                    found.append(raw)
            return found

    def expect(self, address: str, count: int, what: str, timeout_s: float = 20.0) -> list[bytes]:
        deadline = time.monotonic() + timeout_s
        got: list[bytes] = []
        while time.monotonic() < deadline:
            for raw in self.collect(address):
                self.transcript.email("OUT", raw)
                got.append(raw)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise DemoFailed(f"{address} expected {count} × {what}, got {len(got)} in {timeout_s:.0f}s")


def play(config: Config, out: TextIO, wait_state: Callable[[], dict[str, str]]) -> None:
    """The scripted Q3 project: kickoff, three confirmation requests, three confirmations."""
    from maild.app.wiring import Rules
    people = Rules.from_config(config).people
    names = {p.address: p.name for p in people.people}
    scenario = Scenario(config, out, names)
    inbox = config.inbox_address
    initiator = "li.na@corp.example"
    scenario.transcript.note("李娜 (市场部) sends the project to the collaboration inbox")
    scenario.send(initiator, inbox, "[项目] Q3新品推广项目", PROJECT_EMAIL_ZH)
    scenario.transcript.note("maild answers: a receipt to 李娜, a confirmation request to each owner")
    scenario.expect(initiator, 1, "receipt")
    requests = {owner: scenario.expect(owner, 1, "confirmation request")[0] for owner in OWNER_REPLIES}
    scenario.transcript.note("each owner replies from their own mailbox (quoted history included)")
    for owner, answer in OWNER_REPLIES.items():
        request = email.message_from_bytes(requests[owner], policy=email.policy.default)
        reply_to = str(request.get("Reply-To") or request.get("From"))
        quoted = request.get_body(preferencelist=("plain",)).get_content()
        body = (answer + "\n\n" + f"在 {request.get('Date')}，maild <{inbox}> 写道：\n"
                + textwrap.indent(quoted, "> "))
        scenario.send(owner, reply_to, "回复：" + str(request.get("Subject")), body,
                      in_reply_to=str(request.get("Message-ID")),
                      references=f"{request.get('References', '')} {request.get('Message-ID')}")
    scenario.transcript.note("maild tells 李娜 about each confirmation and acknowledges each owner")
    scenario.expect(initiator, len(OWNER_REPLIES), "confirmation notice")
    for owner in OWNER_REPLIES:
        scenario.expect(owner, 1, "acknowledgement")
    states = wait_state()
    scenario.transcript.note("stored state: " + ", ".join(f"{k}={v}" for k, v in states.items()))
    if any(state != "not_started" for state in states.values()) or len(states) != 3:
        raise DemoFailed(f"expected three confirmed tasks, found {states}")


DEMO_MARK = "# written by `maild demo`"


def start_demo_mail(config_path: Path, *, free_ports: bool
                    ) -> tuple[EmbeddedMailSystem, Config, Path]:
    """The embedded mail system of the config (or on free ports), and the config of a daemon
    that uses it, kept in the demo's own folder (`demo_config`)."""
    from maild.adapters.embedded import EmbeddedMailSystem

    source = load_config(config_path)
    emb = source.embedded_system
    mail = EmbeddedMailSystem(emb.host, 0 if free_ports else emb.imap_port,
                              0 if free_ports else emb.smtp_port, dict(emb.accounts))
    mail.start()
    try:
        path = demo_config(config_path, source, mail.imap_port, mail.smtp_port)
        return mail, load_config(path), path
    except BaseException:
        mail.stop()
        raise


def demo_config(config_path: Path, source: Config, imap_port: int, smtp_port: int) -> Path:
    """`<data_dir>/demo/config.toml`: the config with its data, archive and secret in that
    folder, the embedded system on these ports, the same rules and templates. The folder is
    emptied first, unless something other than a demo wrote it (DemoFailed)."""
    folder = source.data_dir / "demo"
    path = folder / "config.toml"
    if folder.exists() and any(folder.iterdir()):
        if not (path.is_file() and path.read_text(encoding="utf-8").startswith(DEMO_MARK)):
            raise DemoFailed(f"{folder} holds files maild demo did not write; move them away")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = config_path.read_text(encoding="utf-8")
    for section, key, value in (
            ("maild", "data_dir", "."), ("maild", "archive_dir", "archive"),
            ("maild", "secret_file", "secret.key"), ("maild", "log_dir", ""),
            ("mail", "embedded", True), ("embedded", "imap_port", imap_port),
            ("embedded", "smtp_port", smtp_port), ("rules", "dir", str(source.rules_dir)),
            ("templates", "dir", str(source.templates_dir))):
        text = set_value(text, section, key, value)
    path.write_text(f"{DEMO_MARK} from {config_path}; its data is in this folder.\n"
                    f"# Look at it with: maild status -c {path}\n{text}", encoding="utf-8")
    return path


def where_to_look(path: Path, *, archived: bool = False) -> str:
    """How to see the demo's data afterwards: the commands, with the config path as typed
    (`archived`: the project was closed, so the archive's lessons rather than the item)."""
    try:
        shown = os.path.relpath(path)
    except ValueError:
        shown = str(path)
    # relative only inside the current folder: "../../tmp/x" helps nobody
    shown = shown if not shown.startswith("..") and len(shown) < len(str(path)) else str(path)
    last = f"maild lessons -c {shown}" if archived else f"maild show -c {shown} MD-0001"
    return (f"the demo's data stays in {Path(shown).parent}/ until the next demo; look at it with\n"
            f"  maild status -c {shown}\n  maild items -c {shown}\n  {last}\n")



def start_or_say_why(config_path: Path, *, free_ports: bool, out: TextIO
                     ) -> tuple[EmbeddedMailSystem, Config, Path] | None:
    """The demo's mail system started (`start_demo_mail`), or None once `out` says why not."""
    try:
        return start_demo_mail(config_path, free_ports=free_ports)
    except DemoFailed as exc:
        out.write(f"✘ {exc}\n")
        return None

def run_demo(config_path: Path, *, once: bool, free_ports: bool, out: TextIO = sys.stdout) -> int:
    from maild.app.service import Service

    started = start_or_say_why(config_path, free_ports=free_ports, out=out)
    if started is None:
        return 1
    mail, config, demo_path = started
    emb = config.embedded_system
    out.write(f"maild demo: embedded mail on {emb.host} (IMAP {mail.imap_port}, SMTP "
              f"{mail.smtp_port}); data in {config.data_dir}\n")
    service = Service.from_config(config, environ={})
    stopped = threading.Event()

    def serve() -> None:
        try:
            service.run()
        finally:
            stopped.set()

    thread = threading.Thread(target=serve, name="maild-service", daemon=True)
    thread.start()

    def task_states() -> dict[str, str]:
        items = service.store.open_items()
        return {f"{item['id']}/{t['id']}": t["state"] for item in items for t in item["tasks"]}

    status, played = 0, False
    try:
        try:
            play(config, out, task_states)
            out.write("\n✔ demo scenario complete: 1 project, 3 tasks, 3 owners confirmed\n")
            played = True
        except DemoFailed as exc:
            out.write(f"\n✘ demo step failed: {exc}\n")
            status = 1
        out.write("\n" + where_to_look(demo_path))
        if not once and status == 0:
            out.write(_connection_help(config, mail.imap_port, mail.smtp_port))
            out.flush()
            while not stopped.wait(1.0):
                pass
    except KeyboardInterrupt:  # Ctrl-C: while serving, the way to stop; before, an abort
        out.write("\nstopping…\n")
        if not played and status == 0:
            status = 130  # interrupted before the scenario was through, as shells count it
    # a second Ctrl-C must not cut the shutdown short
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        service.stop_event.set()
        stopped.wait(timeout=30)
        service.close()
        mail.stop()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    out.flush()
    return status


def _connection_help(config: Config, imap_port: int, smtp_port: int) -> str:
    host = config.embedded_system.host
    rows = "\n".join(f"    {address:<28} password: {password}"
                     for address, password in config.embedded_system.accounts.items())
    return textwrap.dedent(f"""
        maild keeps serving. Point any mail client at the embedded mail system:
          IMAP  {host}:{imap_port}  (no TLS, login = full address)
          SMTP  {host}:{smtp_port}  (no TLS, no auth needed; AUTH PLAIN/LOGIN accepted)
          accounts:
        """) + rows + textwrap.dedent(f"""

        Send a project to {config.inbox_address} (subject "[项目] ..." or "[Project] ...")
        or "help" for the templates. Ctrl-C stops.
        """)
