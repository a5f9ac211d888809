"""Try the attacks of issue #15 against live processes, in the shipped configuration, and print what happened.

Dovecot (the test peer of tests/mailservers.py: real IMAP, SMTP by LMTP) runs on 127.0.0.1; the
daemon is a real `python -m maild run` process whose config is the shipped config.toml with only
the servers and the data paths changed (and, per run, the keys a scenario names). People and
attackers speak SMTP and IMAP to Dovecot; the verdict is read from the daemon's store (read-only,
as `maild status` does) and from everyone's mailbox.

    .venv/bin/python tools/attacks.py                 # shipped config, plus addressing as shipped
    .venv/bin/python tools/attacks.py --plus off      # the same on a server without plus addressing
    .venv/bin/python tools/attacks.py --only rss      # one scenario (see SCENARIOS)

Each scenario prints one line: what the attacker tried, what changed in the store, how many
emails maild sent and to whom. Nothing here is timed. Needs Dovecot (`apt-get install
dovecot-imapd dovecot-lmtpd`).
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import json
import os
import smtplib
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from imapclient import IMAPClient  # noqa: E402
from mailservers import DovecotMailSystem  # noqa: E402

from maild.adapters.store import Store  # noqa: E402

INBOX = "collab@corp.example"
LI, WANG, ZHAO, CHEN = ("li.na@corp.example", "wang.zhe@corp.example", "zhao.lei@corp.example",
                        "chen.jing@corp.example")
PEOPLE = (LI, WANG, ZHAO, CHEN, "alex.morgan@corp.example")
OUTSIDERS = tuple(f"partner{n:02d}@evil.test" for n in range(50))

# The kickoff shape of tests/app/test_crash_consistency.py (duplicates): a tool does not import tests.
PROJECT = """项目名称：{title}
发起人/部门：李娜 / 市场部
目标/背景：攻击测试
范围：攻击测试

任务：
任务名称 | 负责人 | 截止日期 | 交付标准
卖点提炼 | 王喆 | 12月10日前 | 卖点说明
渠道方案 | 赵磊 | 12月15日前 | 预算与渠道
"""


# ── a TOML writer for the few shapes config.toml has ──────────────────────────────────────────

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def dump_toml(data: dict[str, Any]) -> str:
    lines: list[str] = []
    for section, table in data.items():
        scalars = {k: v for k, v in table.items()
                   if not (isinstance(v, list) and v and isinstance(v[0], dict))}
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in scalars.items()]
        for key, rows in table.items():
            if key in scalars:
                continue
            for row in rows:
                lines.append(f"[[{section}.{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in row.items()]
        lines.append("")
    return "\n".join(lines)


# ── the world: Dovecot, a daemon, people ────────────────────────────────────────────────────────

class World:
    def __init__(self, mail: DovecotMailSystem, work: Path, overrides: dict[str, Any]) -> None:
        self.mail, self.work = mail, work
        shipped = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))
        config = {section: dict(table) for section, table in shipped.items()}
        config["maild"].update(data_dir=str(work / "var"), archive_dir=str(work / "archive"),
                               secret_file=str(work / "var" / "secret.key"))
        config["mail"].update(embedded=False, idle_renew_s=30)
        for name, port in (("imap", mail.imap_port), ("smtp", mail.smtp_port)):
            config[name].update(host=mail.host, port=port, security="plain", username=INBOX,
                                password_env="ATTACK_PASSWORD")
        config["smtp"]["username"] = ""
        config["rules"] = {"dir": str(ROOT / "rules")}
        config["templates"] = {"dir": str(ROOT / "templates")}
        for dotted, value in overrides.items():
            section, _, key = dotted.partition(".")
            config.setdefault(section, {})[key] = value
        self.config_path = work / "attack.toml"
        self.config_path.write_text(dump_toml(config), encoding="utf-8")
        self.log_path = work / "daemon.log"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.seen: dict[str, set[str]] = {}

    def start(self) -> None:
        env = {**os.environ, "ATTACK_PASSWORD": self.mail.accounts[INBOX],
               "MAILD_SECRET": "attack-secret", "PYTHONPATH": str(ROOT)}
        with open(self.log_path, "ab") as log:
            self.daemon = subprocess.Popen(
                [sys.executable, "-m", "maild", "-c", str(self.config_path), "run"],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        self.settle()

    def stop(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.terminate()
            self.daemon.wait(timeout=60)

    def peak_rss_mb(self) -> float:
        assert self.daemon is not None
        status = Path(f"/proc/{self.daemon.pid}/status").read_text()
        line = next(ln for ln in status.splitlines() if ln.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    # -- mail --------------------------------------------------------------------------------
    def send(self, sender: str, subject: str, body: str, *, to: str = INBOX,
             headers: dict[str, str] | None = None, message_id: str | None = None,
             attachment: bytes | None = None, raw_top: str = "") -> str:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = sender, to, subject
        msg["Date"] = format_datetime(time_now())
        message_id = message_id or f"<{uuid.uuid4().hex}@corp.example>"
        msg["Message-ID"] = message_id
        for name, value in (headers or {}).items():
            msg[name] = value
        msg.set_content(body)
        if attachment is not None:
            msg.add_attachment(attachment, maintype="application", subtype="octet-stream",
                               filename="资料.bin")
        raw = raw_top.encode() + msg.as_bytes(policy=email.policy.SMTP)
        if len(raw) > 20 * 2**20:  # the SMTP front door's cap: put it straight into INBOX
            self.append(raw)
        else:
            with smtplib.SMTP(self.mail.host, self.mail.smtp_port, timeout=60) as smtp:
                smtp.sendmail(sender, [to], raw)
        return message_id

    def append(self, raw: bytes) -> None:
        with IMAPClient(self.mail.host, port=self.mail.imap_port, ssl=False, timeout=300) as c:
            c.login(INBOX, self.mail.accounts[INBOX])
            c.append("INBOX", raw)

    def new_mail(self, address: str) -> list[EmailMessage]:
        seen = self.seen.setdefault(address, set())
        with IMAPClient(self.mail.host, port=self.mail.imap_port, ssl=False, timeout=60) as c:
            c.login(address, self.mail.accounts[address])
            c.select_folder("INBOX", readonly=True)
            uids = c.search(["ALL"])
            data = c.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        found = []
        for uid in sorted(data):
            msg = email.message_from_bytes(bytes(data[uid][b"BODY[]"]), policy=email.policy.default)
            key = str(msg["Message-ID"])
            if key not in seen:
                seen.add(key)
                found.append(msg)
        return found

    def everyone_new(self) -> dict[str, list[EmailMessage]]:
        return {p: self.new_mail(p) for p in self.mail.accounts if p != INBOX}

    def inbox_count(self) -> int:
        with IMAPClient(self.mail.host, port=self.mail.imap_port, ssl=False, timeout=60) as c:
            c.login(INBOX, self.mail.accounts[INBOX])
            return c.select_folder("INBOX", readonly=True)[b"EXISTS"]

    def settle(self, timeout_s: float = 300) -> None:
        """Wait until the daemon has handled INBOX and sent what it queued."""
        deadline = time.monotonic() + timeout_s
        quiet = 0
        while time.monotonic() < deadline:
            assert self.daemon is not None and self.daemon.poll() is None, self.tail()
            busy = self.inbox_count() > 0
            if not busy and (self.work / "var" / "live.json").exists():
                with Store.open_readonly(self.work / "var") as store:
                    busy = any(e.status == "queued" for e in store.outbox_entries())
            quiet = 0 if busy else quiet + 1
            if quiet >= 3:
                return
            time.sleep(0.4)
        raise RuntimeError("the daemon did not settle:\n" + self.tail())

    def tail(self) -> str:
        return self.log_path.read_text("utf-8", "replace")[-4000:]

    def store(self) -> Store:
        return Store.open_readonly(self.work / "var")

    def item(self, item_id: str) -> dict[str, Any] | None:
        with self.store() as store:
            return store.get_item(item_id)

    def outbox(self) -> list[Any]:
        with self.store() as store:
            return store.outbox_entries()

    def project(self, title: str, raw_top: str = "") -> tuple[str, dict[str, list[EmailMessage]]]:
        """A genuine project from 李娜; its ID and the emails it caused."""
        with self.store() as store:
            item_id = store.peek_item_id()
        self.send(LI, f"[项目] {title}", PROJECT.format(title=title), raw_top=raw_top)
        self.settle()
        return item_id, self.everyone_new()


def time_now():  # the attack script's own clock: real time, as the daemon's
    from datetime import datetime
    return datetime.now().astimezone()


def reply_to(msg: EmailMessage) -> str:
    return str(msg.get("Reply-To") or msg["From"])


def _snapshot(world: World, item_id: str) -> dict[str, Any]:
    item = world.item(item_id) or {}
    return {"state": item.get("state"),
            "tasks": [(t["owner"], t["state"], t["deadline"], t.get("progress", 0))
                      for t in item.get("tasks", ())],
            "audit": len(item.get("audit", ()))}


def _sent(got: dict[str, list[EmailMessage]]) -> str:
    counts = {p.partition("@")[0]: len(m) for p, m in got.items() if m}
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"


# ── scenarios ──────────────────────────────────────────────────────────────────────────────────

Scenario = Callable[[World], dict[str, Any]]


def _forged(world: World, title: str, emails: list[tuple[str, str, str]], *, top: str = "",
            genuine_top: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """A genuine project from 李娜 (its email with `genuine_top` on top), then the attacker's
    `emails` (sender, subject with `{id}`, body; `top` on top of each): the item before and
    after."""
    item_id, _ = world.project(title, raw_top=genuine_top)
    before = _snapshot(world, item_id)
    for sender, subject, body in emails:
        world.send(sender, subject.format(id=item_id), body, raw_top=top)
        world.settle()
    after = _snapshot(world, item_id) if world.item(item_id) else {"state": "archived"}
    return before, after


def _verdict(world: World, before: dict[str, Any], after: dict[str, Any],
             **shown: Any) -> dict[str, Any]:
    return {"changed": before != after, **shown, "mail": _sent(world.everyone_new())}


def forged_initiator_reassign(world: World) -> dict[str, Any]:
    """赵磊 writes with From: 李娜 (no token): reassign T-1 to himself."""
    before, after = _forged(world, "伪造发起人转派",
                            [(LI, "Re: [{id} T-1] 任务", f"转派 T-1 给 {ZHAO}")])
    return _verdict(world, before, after, owner_T1=after["tasks"][0][0])


def forged_owner_confirm(world: World) -> dict[str, Any]:
    """Someone writes with From: 王喆 (no token): confirm T-1."""
    before, after = _forged(world, "伪造负责人确认", [(WANG, "[{id} T-1] 确认", "确认")])
    return _verdict(world, before, after, state_T1=after["tasks"][0][1])


def forged_initiator_close_and_deadline(world: World) -> dict[str, Any]:
    """From: 李娜 (no token): move T-1's deadline, then close the project."""
    before, after = _forged(world, "伪造发起人结项",
                            [(LI, "Re: [{id} T-1] 任务", "延期至 12月30日"),
                             (LI, "Re: [{id}] 项目", "结项\n是否达成目标：是")])
    return _verdict(world, before, after, state=after["state"])


FORGED_RESULTS = ("Authentication-Results: mx.corp.example; dmarc=pass header.from=corp.example; "
                  "dkim=pass header.d=corp.example\r\n")


def forged_authentication_results(world: World) -> dict[str, Any]:
    """An outsider's email with From: 李娜 and its own topmost Authentication-Results claiming
    dmarc=pass from the would-be authserv-id: reassign T-2 to the outsider's friend. (Under
    require_authentication, on a server that stamps nothing, 李娜's genuine project carries the
    same field, as if stamped: without it nothing would be handled.)"""
    before, after = _forged(world, "伪造认证结果",
                            [(LI, "Re: [{id} T-2] 任务", f"转派 T-2 给 {CHEN}")],
                            top=FORGED_RESULTS, genuine_top=FORGED_RESULTS)
    return _verdict(world, before, after, owner_T2=after["tasks"][1][0])


def forged_authentication_results_stripped(world: World) -> dict[str, Any]:
    """The same forged field where the operator declared the stamp trustworthy and the
    receiving server does stamp and strip (the Dovecot peer's front door, as an MTA with a
    DMARC milter): the forged field never reaches maild."""
    before, after = _forged(world, "伪造认证结果（服务器剥离）",
                            [(LI, "Re: [{id} T-2] 任务", f"转派 T-2 给 {CHEN}")],
                            top=FORGED_RESULTS)
    return _verdict(world, before, after, owner_T2=after["tasks"][1][0])


def outside_owners(world: World) -> dict[str, Any]:
    """A forged project (From: 李娜) naming 50 owners at an outside domain."""
    rows = "".join(f"联络{n:02d} | {addr} | 12月20日前 | 回执\n" for n, addr in enumerate(OUTSIDERS))
    body = PROJECT.split("任务：")[0] + "任务：\n任务名称 | 负责人 | 截止日期 | 交付标准\n" + rows
    world.send(LI, "[项目] 合作伙伴通知", body + "\n请点击 http://evil.test/login 登录确认。\n")
    world.settle()
    outside = sum(1 for e in world.outbox() for rcpt in (*e.out.to, *e.out.cc)
                  if not rcpt.endswith("@corp.example"))
    return {"emails_to_outside": outside, "mail": _sent(world.everyone_new())}


def big_attachment_done(world: World) -> dict[str, Any]:
    """王喆 answers 完成 through his own reply address, with a 20 MB attachment."""
    item_id, got = world.project("大附件完成")
    request = next(m for m in got[WANG] if item_id in str(m["Subject"]))
    before = _snapshot(world, item_id)
    world.send(WANG, "Re: " + str(request["Subject"]), "完成，资料见附件", to=reply_to(request),
               attachment=os.urandom(20 * 2**20))
    world.settle()
    after = _snapshot(world, item_id)
    answers = world.everyone_new()
    return {"changed": before != after, "owner_answered": len(answers.get(WANG, [])),
            "mail": _sent(answers)}


def big_project(world: World) -> dict[str, Any]:
    """李娜 sends a project with a 50 MB attachment."""
    with world.store() as store:
        items_before = len(store.all_items())
    world.send(LI, "[项目] 带大附件的项目", PROJECT.format(title="带大附件的项目"),
               attachment=os.urandom(50 * 2**20))
    world.settle()
    with world.store() as store:
        items_after = len(store.all_items())
    answers = world.everyone_new()
    return {"items_added": items_after - items_before, "initiator_answered": len(answers[LI]),
            "mail": _sent(answers)}


def rss_150mb(world: World) -> dict[str, Any]:
    """One 150 MB email (a 112 MB attachment, base64): the daemon's peak RSS."""
    base = world.peak_rss_mb()
    payload = base64.b64encode(os.urandom(112 * 2**20)).decode()
    raw = (f"From: {LI}\r\nTo: {INBOX}\r\nSubject: 大文件\r\nMessage-ID: <big-{uuid.uuid4().hex}"
           f"@corp.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n"
           f"\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n请看附件\r\n--b\r\n"
           f"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
           f"Content-Disposition: attachment; filename=big.bin\r\n\r\n")
    lines = "\r\n".join(payload[i:i + 76] for i in range(0, len(payload), 76))
    data = raw.encode() + lines.encode() + b"\r\n--b--\r\n"
    del payload, lines
    world.append(data)
    size_mb = len(data) / 2**20
    del data
    world.settle()
    return {"email_mb": round(size_mb, 1), "peak_rss_mb": round(world.peak_rss_mb(), 1),
            "rss_before_mb": round(base, 1), "mail": _sent(world.everyone_new())}


def auto_responder(world: World) -> dict[str, Any]:
    """陈静's auto-responder (no Auto-Submitted) answers every email from maild with a canned
    "收到，我会尽快处理。" to its reply address; 120 rounds at most."""
    item_id, got = world.project("自动回复循环")
    # 陈静 owns no task of the standard project: make her the owner by a reassignment from 李娜
    # (through 李娜's own reply address, so it counts in every configuration).
    receipt = next(m for m in got[LI] if item_id in str(m["Subject"]))
    world.send(LI, "Re: " + str(receipt["Subject"]), f"转派 T-2 给 {CHEN}", to=reply_to(receipt))
    world.settle()
    pending = world.new_mail(CHEN)
    answered = 0
    for _round in range(120):
        if not pending:
            break
        for msg in pending:
            world.send(CHEN, "Re: " + str(msg["Subject"]), "收到，我会尽快处理。", to=reply_to(msg))
            answered += 1
        world.settle()
        pending = world.new_mail(CHEN)
    return {"responder_emails": answered, "ended": not pending, "mail": _sent(world.everyone_new())}


def message_id_collision(world: World) -> dict[str, Any]:
    """赵磊 sends a harmless email under the Message-ID that 王喆's next reply will have; then
    王喆 reports progress through his own reply address with that Message-ID."""
    item_id, got = world.project("消息ID冲突")
    request = next(m for m in got[WANG] if item_id in str(m["Subject"]))
    world.send(WANG, "Re: " + str(request["Subject"]), "确认", to=reply_to(request))
    world.settle()
    ack = next(m for m in world.new_mail(WANG) if item_id in str(m["Subject"]))
    stolen = f"<{uuid.uuid4().hex}@corp.example>"
    world.send(ZHAO, "帮助", "帮助", message_id=stolen)
    world.settle()
    world.send(WANG, "Re: " + str(ack["Subject"]), "进度 60%", to=reply_to(ack), message_id=stolen)
    world.settle()
    task = (world.item(item_id) or {"tasks": [{}]})["tasks"][0]
    return {"progress_T1": task.get("progress"), "owner_answered": len(world.new_mail(WANG)),
            "mail": _sent(world.everyone_new())}


# name → (scenario, config keys; "_stamp": the SMTP front door stamps and strips as this id)
SCENARIOS: dict[str, tuple[Scenario, dict[str, Any]]] = {
    "forged-initiator-reassign": (forged_initiator_reassign, {}),
    "forged-owner-confirm": (forged_owner_confirm, {}),
    "forged-initiator-close-deadline": (forged_initiator_close_and_deadline,
                                        {"security.require_token": True}),
    "forged-authentication-results": (forged_authentication_results, {}),
    "forged-authentication-results-required": (forged_authentication_results,
                                               {"security.require_authentication": True,
                                                "security.authserv_id": "mx.corp.example"}),
    "forged-authentication-results-stripped": (forged_authentication_results_stripped,
                                               {"security.authserv_id": "mx.corp.example",
                                                "security.trust_authentication_results": True,
                                                "_stamp": "mx.corp.example"}),
    "outside-owners": (outside_owners, {}),
    "big-attachment-done": (big_attachment_done, {}),
    "big-project": (big_project, {}),
    "rss": (rss_150mb, {}),
    "auto-responder": (auto_responder, {}),
    "message-id-collision": (message_id_collision, {}),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plus", choices=("on", "off", "shipped"), default="shipped")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--shipped-only", action="store_true",
                        help="skip a scenario's own config keys: everything as shipped")
    args = parser.parse_args()
    accounts = {INBOX: "collab-demo", **{p: "demo" for p in PEOPLE}}
    results = {}
    with DovecotMailSystem("127.0.0.1", 0, 0, accounts) as mail:
        for name in args.only or SCENARIOS:
            scenario, keys = SCENARIOS[name]
            overrides = {} if args.shipped_only else dict(keys)
            mail.authserv_id = str(overrides.pop("_stamp", ""))
            if args.plus != "shipped":
                overrides["mail.plus_addressing"] = args.plus == "on"
            with tempfile.TemporaryDirectory(prefix="maild-attack-") as work:
                world = World(mail, Path(work), overrides)
                try:
                    world.start()
                except Exception as exc:  # e.g. a config the daemon refuses
                    results[name] = {"refused_to_start": str(exc)[-300:]}
                    print(f"{name:34} daemon did not start: {world.tail()[-300:]!r}", flush=True)
                    world.stop()
                    continue
                world.everyone_new()  # start from an empty view
                try:
                    results[name] = {**scenario(world), "config": overrides}
                finally:
                    world.stop()
            print(f"{name:34} {json.dumps(results[name], ensure_ascii=False)}", flush=True)
    print(json.dumps(results, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
