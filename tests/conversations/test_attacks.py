"""The attacks of issue #15, in the shipped configuration, over real SMTP and IMAP: each changes
nothing and sends nothing outside, on a server with plus addressing and on one without (where
the embedded mail system refuses `collab+…@` addresses, as Tencent Exmail and on-prem Exchange
do, and reply tokens ride in the subject tag). The same conversations check that the people
they pretend to be can still do it all, with one click on the buttons of their own emails.

`tools/attacks.py` runs the same attacks against a live daemon process and Dovecot and prints
the figures (README "Security").
"""

from __future__ import annotations

import os
from datetime import datetime
from email.utils import parseaddr

import pytest
from conftest import make_mail_system
from conversation import TZ, Conversation, FakeClock, buttons_of, make_config, text_of

pytestmark = pytest.mark.integration

INITIATOR, OWNER, OTHER, CHEN = ("li.na@corp.example", "wang.zhe@corp.example",
                                 "zhao.lei@corp.example", "chen.jing@corp.example")
PEOPLE = (INITIATOR, OWNER, OTHER, CHEN, "alex.morgan@corp.example")

PROJECT = ("项目名称：{title}\n发起人/部门：李娜 / 市场部\n目标/背景：测试\n范围：测试\n\n任务：\n"
           "任务名称 | 负责人 | 截止日期 | 交付标准\n卖点提炼 | 王喆 | 8月10日前 | 卖点说明\n"
           "渠道方案 | 王喆 | 8月15日前 | 预算与渠道\n培训 | 赵磊 | 8月20日前 | FAQ文档\n")


@pytest.fixture
def mail(plus_mail):
    """With plus addressing, and without (conftest.py `plus_mail`)."""
    return plus_mail


@pytest.fixture
def convo(plus_convo):
    return plus_convo


def _project(convo: Conversation, title: str = "安全测试项目") -> dict[str, list]:
    """A genuine project from 李娜: two tasks for 王喆, one for 赵磊; what everyone received."""
    convo.say(INITIATOR, f"[项目] {title}", PROJECT.format(title=title))
    convo.process()
    return {p: convo.inbox(p) for p in PEOPLE}


def _item(convo: Conversation, item_id: str = "MD-0001") -> dict:
    item = convo.service.store.get_item(item_id)
    assert item is not None
    return item


def _snapshot(convo: Conversation) -> tuple:
    item = _item(convo)
    return (item["state"], [(t["owner"], t["state"], t["deadline"], t["progress"])
                            for t in item["tasks"]], len(item["audit"]))


def _outside(convo: Conversation) -> list[str]:
    """Every recipient outside the company that maild ever queued an email for."""
    return [r for e in convo.service.store.outbox_entries() for r in (*e.out.to, *e.out.cc)
            if not r.endswith("@corp.example")]


def _click(convo: Conversation, person: str, message, label: str, body: str | None = None) -> None:
    """Press a button of `message` in `person`'s mail client (and send what it wrote)."""
    found = {lab: (address, subject, text) for lab, address, subject, text in buttons_of(message)}
    address, subject, text = found[label]
    convo.say(person, subject, text if body is None else body, to=address)
    convo.process()


def _reply_address(convo: Conversation, message) -> str:
    reply_to = parseaddr(str(message.get("Reply-To") or message["From"]))[1]
    if convo.config.plus_addressing:
        assert "+" in reply_to
    else:  # no plus addressing: replies go to the inbox, the token rides in the subject
        assert reply_to.endswith(convo.config.inbox_address) and "#" in str(message["Subject"])
    return reply_to


# ── forged senders ────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("sender", "subject", "body"), [
    (INITIATOR, "Re: [MD-0001 T-1] 任务", f"转派 T-1 给 {OTHER}"),
    (INITIATOR, "Re: [MD-0001 T-1] 任务", "延期至 9月30日"),
    (INITIATOR, "Re: [MD-0001] 项目", "结项\n是否达成目标：是"),
    (INITIATOR, "Re: [MD-0001] 项目", "撤销"),
    (OWNER, "[MD-0001 T-1] 确认", "确认"),
    (OWNER, "Re: [MD-0001 T-2] 任务", "完成"),
], ids=["initiator-reassign", "initiator-deadline", "initiator-close", "initiator-withdraw",
        "owner-confirm", "owner-done"])
def test_a_forged_from_changes_nothing(convo, sender, subject, body):
    """Someone else writes with the From of the initiator or an owner, naming the item in the
    subject (it is in every email's subject), without a token: nothing changes, and the person
    named is told, not the writer."""
    _project(convo)
    before = _snapshot(convo)
    convo.say(sender, subject, body)
    convo.process()
    assert _snapshot(convo) == before
    refusals = convo.inbox(sender)
    assert len(refusals) == 1 and "新写的邮件或转发的邮件不能执行" in text_of(refusals[0])
    assert all(convo.inbox(p) == [] for p in PEOPLE if p != sender)
    assert _outside(convo) == []


def test_someone_elses_reply_address_or_subject_tag_changes_nothing(convo):
    """赵磊 holds a copy of 李娜's receipt (forwarded to him, say) and uses its reply address or
    subject tag and its buttons, with his own From, or with 李娜's forged."""
    got = _project(convo)
    receipt = got[INITIATOR][0]
    before = _snapshot(convo)
    address = _reply_address(convo, receipt)
    convo.say(OTHER, "Re: " + str(receipt["Subject"]), f"转派 T-1 给 {OTHER}", to=address)
    convo.process()
    assert _snapshot(convo) == before
    assert "发给别人的" in text_of(convo.inbox(OTHER)[0])
    # The withdraw button of 李娜's receipt, pressed by him: his From does not match its token.
    _click(convo, OTHER, receipt, "撤销")
    assert _snapshot(convo) == before and _item(convo)["state"] == "open"
    assert _outside(convo) == []


def test_forged_authentication_results_are_not_proof(convo):
    """An outsider's own topmost Authentication-Results (our would-be authserv-id, dmarc=pass)
    on an email with 李娜's From: not trusted in the shipped config (no server here stamps),
    so the command still needs her token."""
    _project(convo)
    before = _snapshot(convo)
    raw = ("Authentication-Results: mx.corp.example; dmarc=pass header.from=corp.example; "
           "dkim=pass header.d=corp.example\r\n"
           f"From: {INITIATOR}\r\nTo: {convo.config.inbox_address}\r\n"
           "Subject: Re: [MD-0001 T-1] 任务\r\nMessage-ID: <forged-ar@evil.test>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           f"转派 T-1 给 {OTHER}\r\n").encode()
    convo.send_raw("attacker@evil.test", [convo.config.inbox_address], raw)
    convo.process()
    assert _snapshot(convo) == before
    assert convo.inbox(OTHER) == [] and _outside(convo) == []


# ── new items in someone's name ─────────────────────────────────────────────────────────────


def test_a_project_naming_outside_owners_mails_nobody_outside(convo):
    rows = "".join(f"联络{n:02d} | partner{n:02d}@evil.test | 8月20日前 | 回执\n" for n in range(50))
    body = PROJECT.split("任务：")[0] + "任务：\n任务名称 | 负责人 | 截止日期 | 交付标准\n" + rows
    convo.say(INITIATOR, "[项目] 合作伙伴通知", body + "\n请点击 http://evil.test/login 确认。\n")
    convo.process()
    assert convo.service.store.open_items() == []
    (reply,) = convo.inbox(INITIATOR)
    assert reply["X-Maild-Kind"] == "validation_error"
    assert text_of(reply).count("不在本公司的邮件域内") == 50
    assert _outside(convo) == []


def test_declared_external_owners_may_be_named(mail, tmp_path):
    """`[security] external_owners`: the one outside address the operator declared is an
    owner like anyone else (the embedded system has no account for it: the send fails, which
    the initiator is told, but it was allowed)."""
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    config = make_config(mail, tmp_path / "var", **{
        "mail.plus_addressing": mail.plus_addressing,
        "security.external_owners": ["Partner01@Evil.Test"]})
    convo = Conversation(mail, config, clock)
    try:
        body = PROJECT.replace("培训 | 赵磊", "培训 | partner01@evil.test")
        convo.say(INITIATOR, "[项目] 外部负责人", body)
        convo.process()
        item = convo.service.store.open_items()[0]
        assert [t["owner"] for t in item["tasks"]][-1] == "partner01@evil.test"
        assert _outside(convo) == ["partner01@evil.test"]
    finally:
        convo.close()


def test_the_named_initiator_withdraws_an_item_sent_in_her_name(convo):
    """赵磊 sends a project with 李娜's From: it starts (nothing tells a forged From from a real
    one), but its receipt goes to 李娜 at once; her 撤销 button ends it and tells the owners."""
    got = _project(convo, "以他人名义发起")
    receipt = got[INITIATOR][0]
    assert receipt["X-Maild-Kind"] == "receipt" and str(receipt["To"]).endswith(INITIATOR)
    _click(convo, INITIATOR, receipt, "撤销")
    assert convo.service.store.open_items() == []  # archived
    told = {p: [m["X-Maild-Kind"] for m in convo.inbox(p)] for p in (INITIATOR, OWNER, OTHER)}
    assert told == {INITIATOR: ["command_ack"], OWNER: ["command_ack"], OTHER: ["command_ack"]}


# ── what people can still do, with their own emails ────────────────────────────────────────────


def test_owners_and_the_initiator_act_through_their_own_emails(convo):
    """王喆 owns two tasks: each confirmation request's buttons reach its own task (never
    "which task?"); 李娜's buttons reassign, accept a delay and move a deadline."""
    got = _project(convo)
    first, second = sorted(got[OWNER], key=lambda m: "T-2" in text_of(m))
    _click(convo, OWNER, second, "确认")
    _click(convo, OWNER, first, "拒绝", "拒绝：这周出差")
    tasks = {t["id"]: t for t in _item(convo)["tasks"]}
    assert (tasks["T-1"]["state"], tasks["T-2"]["state"]) == ("declined", "not_started")
    acks = convo.inbox(OWNER)
    assert not [m for m in acks if m["X-Maild-Kind"] == "question"]

    declined = next(m for m in convo.inbox(INITIATOR) if m["X-Maild-Kind"] == "declined")
    _click(convo, INITIATOR, declined, "转派", f"转派 T-1 给 {CHEN}")
    assert _item(convo)["tasks"][0]["owner"] == CHEN

    ack_t2 = next(m for m in acks if "T-2" in text_of(m))
    convo.say(OWNER, "Re: " + str(ack_t2["Subject"]), "延期至 8月25日，原因：等预算",
              to=_reply_address(convo, ack_t2))
    convo.process()
    request = next(m for m in convo.inbox(INITIATOR) if m["X-Maild-Kind"] == "delay_request")
    _click(convo, INITIATOR, request, "同意延期")
    t2 = _item(convo)["tasks"][1]
    assert t2["state"] == "not_started" and t2["deadline"].startswith("2026-08-25")
    ack = next(m for m in convo.inbox(INITIATOR) if m["X-Maild-Kind"] == "command_ack")
    _click(convo, INITIATOR, ack, "改期", "改期至 8月28日")
    assert _item(convo)["tasks"][1]["deadline"].startswith("2026-08-28")
    # The same button again (a replay with a new Message-ID): used, nothing changes.
    _click(convo, INITIATOR, ack, "改期", "改期至 9月28日")
    assert _item(convo)["tasks"][1]["deadline"].startswith("2026-08-28")
    assert _outside(convo) == []


# ── size, identity, loops ──────────────────────────────────────────────────────────────────────


def test_an_owners_done_over_the_size_cap_is_answered_once_and_changes_nothing(convo):
    """王喆's 完成 through his own reply address, with a 20 MB attachment (27 MB once encoded,
    over the 25 MB cap): read from its header alone, kept in Quarantine, answered once in his
    language with the limit; the task stays as it was."""
    got = _project(convo)
    request = got[OWNER][0]
    before = _snapshot(convo)
    from email.message import EmailMessage
    from email.policy import SMTP

    msg = EmailMessage()
    msg["From"], msg["To"] = OWNER, _reply_address(convo, request)
    msg["Subject"], msg["Message-ID"] = "Re: " + str(request["Subject"]), "<big-done@corp.example>"
    msg.set_content("完成，资料见附件")
    msg.add_attachment(os.urandom(20 * 2**20), maintype="application", subtype="zip",
                       filename="资料.zip")
    raw = msg.as_bytes(policy=SMTP)
    assert len(raw) > convo.config.max_message_bytes
    convo.send_raw(OWNER, [str(msg["To"])], raw)
    convo.process()
    assert _snapshot(convo) == before
    (answer,) = convo.inbox(OWNER)
    assert answer["X-Maild-Kind"] == "not_handled" and "25 MB" in text_of(answer)
    assert "网盘" in text_of(answer)
    assert len(convo.folder(convo.config.inbox_address, "Quarantine")) >= 1
    # Delivered again: the same email, no second answer.
    convo.send_raw(OWNER, [str(msg["To"])], raw)
    convo.process()
    assert convo.inbox(OWNER) == []


def test_a_message_id_taken_first_by_someone_else_does_not_swallow_the_real_email(convo):
    got = _project(convo)
    request = got[OWNER][0]
    convo.send_raw(OTHER, [convo.config.inbox_address],
                   (f"From: {OTHER}\r\nTo: {convo.config.inbox_address}\r\nSubject: 帮助\r\n"
                    "Message-ID: <taken@corp.example>\r\n\r\n帮助\r\n").encode())
    convo.process()
    convo.inbox(OTHER)
    raw = (f"From: {OWNER}\r\nTo: {_reply_address(convo, request)}\r\n"
           f"Subject: Re: {request['Subject']}\r\nMessage-ID: <taken@corp.example>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "确认\r\n").encode()
    convo.send_raw(OWNER, [convo.config.inbox_address], raw)
    convo.process()
    assert _item(convo)["tasks"][0]["state"] == "not_started"
    mark = convo.service.store.processed("taken@corp.example")
    assert mark and mark["reason"] == "help"  # the first one keeps its own mark


# ── memory: the daemon process and an email far over the cap ────────────────────────────────


def test_an_email_far_over_the_cap_costs_the_daemon_no_memory(shipped_config, tmp_path):
    """A real daemon process and Dovecot: a 54 MB email (over twice the 25 MB cap) is
    decided on its RFC822.SIZE and only its header block is fetched, so the daemon's peak RSS
    (VmHWM) stays within a fixed margin of what it was before. (It followed the email's size:
    191 MB for one of 150 MB.) `tools/attacks.py --only rss` measures a 150 MB one."""
    import base64
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from daemonproc import write_daemon_config
    from imapclient import IMAPClient

    from maild.adapters.store import Store

    emb = shipped_config.embedded_system
    system = make_mail_system("dovecot", dict(emb.accounts), emb.host)
    config = write_daemon_config(tmp_path, host=system.host, imap_port=system.imap_port,
                                 smtp_port=system.smtp_port)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "TEST_IMAP_PASSWORD": "collab-demo", "MAILD_SECRET": "rss-test",
           "PYTHONPATH": str(root)}
    daemon = subprocess.Popen([sys.executable, "-m", "maild", "-c", str(config), "run"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def peak_mb() -> float:
        status = Path(f"/proc/{daemon.pid}/status").read_text()
        return int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) / 1024

    def imap(address: str) -> IMAPClient:
        client = IMAPClient(system.host, port=system.imap_port, ssl=False, timeout=120)
        client.login(address, emb.accounts[address])
        return client

    def wait(condition, what: str) -> None:
        deadline = time.monotonic() + 120
        while not condition():
            assert daemon.poll() is None and time.monotonic() < deadline, what
            time.sleep(0.2)

    try:
        def connected() -> bool:  # the daemon creates its folders when it logs in
            with imap("collab@corp.example") as client:
                return client.folder_exists("Quarantine")
        wait(connected, "the daemon did not start")
        time.sleep(1.0)  # the rest of its start (a first drain, IDLE)
        before = peak_mb()
        payload = base64.encodebytes(os.urandom(40 * 2**20))
        raw = (f"From: {INITIATOR}\r\nTo: collab@corp.example\r\nSubject: 资料\r\n"
               "Message-ID: <rss-big@corp.example>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n\r\n资料见附件\r\n--b\r\n"
               "Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
               "Content-Disposition: attachment; filename=big.zip\r\n\r\n").encode()
        raw += payload.replace(b"\n", b"\r\n") + b"--b--\r\n"
        del payload
        with imap("collab@corp.example") as client:
            client.append("INBOX", raw)
        size = len(raw)
        del raw

        def answered() -> bool:
            with imap(INITIATOR) as client:
                return client.select_folder("INBOX", readonly=True)[b"EXISTS"] > 0
        wait(answered, "no answer to the sender")
        after = peak_mb()
        with Store.open_readonly(tmp_path / "var") as store:
            mark = store.processed("rss-big@corp.example")
        assert mark and mark["folder"] == "Quarantine" and mark["reason"].startswith("too large")
        print(f"\npeak RSS {before:.1f} MB before, {after:.1f} MB after a "
              f"{size / 2**20:.0f} MB email")
        assert size > 2 * shipped_config.max_message_bytes
        assert after - before < 16, (before, after)  # a fixed margin, not the email's size
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        getattr(system, "remove", system.stop)()
