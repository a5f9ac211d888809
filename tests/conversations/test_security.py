"""Trust nothing in an email, through the whole daemon: forged senders, unauthenticated mail,
borrowed and tampered reply tokens, replayed emails, and user text that tries to become HTML,
a template or a header. Each case sends real email to the embedded mail system and reads what
maild answered (or that it answered nothing).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from email.header import Header

import pytest
from conversation import TZ, Conversation, FakeClock, buttons_of, html_of, make_config, text_of

from maild.core import tokens
from maild.core.config import ConfigError, load_config

pytestmark = pytest.mark.integration

DATA = __import__("pathlib").Path(__file__).parents[1] / "data"
INITIATOR = "li.na@corp.example"
OWNER = "wang.zhe@corp.example"
OTHER = "zhao.lei@corp.example"
PEOPLE = (INITIATOR, OWNER, OTHER, "chen.jing@corp.example", "alex.morgan@corp.example")
AUTHSERV = "mx.corp.example"


def _fresh(convo: Conversation) -> None:
    """Empty everyone's INBOX view: later `inbox()` calls return only new mail."""
    for person in PEOPLE:
        convo.inbox(person)


@pytest.fixture
def convo(embedded_mail, tmp_path):
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    conversation = Conversation(embedded_mail, make_config(embedded_mail, tmp_path / "var"),
                                clock)
    _fresh(conversation)  # the mail system is shared by the module: start from here
    conversation.process()
    yield conversation
    conversation.close()


def _require_authentication(convo: Conversation) -> None:
    """[security] authserv_id, trust_authentication_results (the operator declares that the
    receiving server stamps and strips) and require_authentication, as the service wires them."""
    service = convo.service
    make = service.classify_context
    service.classify_context = lambda: dataclasses.replace(   # type: ignore[method-assign]
        make(), authserv_id=AUTHSERV, require_authentication=True,
        trust_authentication_results=True)


def _project(convo: Conversation, title: str = "安全测试项目", subject: str | None = None) -> None:
    body = (f"项目名称：{title}\n发起人/部门：李娜 / 市场部\n目标/背景：测试\n范围：测试\n\n任务：\n"
            "任务名称 | 负责人 | 截止日期 | 交付标准\n卖点提炼 | 王喆 | 8月10日前 | 卖点说明\n")
    convo.say(INITIATOR, subject or f"[项目] {title}", body)
    convo.process()


def _task(convo: Conversation) -> dict:
    item = convo.service.store.get_item("MD-0001")
    assert item is not None
    return item["tasks"][0]


# ── (a) sender authentication ──────────────────────────────────────────────────────────────


def test_cve_2023_27043_sender_is_not_answered(convo):
    """`alice@allowed.org)<attacker@evil.test>` must not read as a corp.example sender."""
    raw = (b"From: li.na@corp.example)<attacker@evil.test>\r\nTo: collab@corp.example\r\n"
           b"Subject: help\r\nMessage-ID: <cve-2023-27043@evil.test>\r\n\r\nhelp\r\n")
    convo.send_raw("attacker@evil.test", [convo.config.inbox_address], raw)
    convo.process()
    assert all(convo.inbox(p) == [] for p in PEOPLE)
    outcome = convo.service.store.processed("cve-2023-27043@evil.test")
    assert outcome and outcome["reason"].startswith("ignored unauthorized"), outcome
    assert convo.service.store.outbox_entries() == []


@pytest.mark.parametrize(("results", "answered"), [
    ((), False),
    (("mx.evil.test; dmarc=pass header.from=corp.example",), False),
    ((f"{AUTHSERV}; dmarc=fail header.from=corp.example",
      f"{AUTHSERV}; dmarc=pass header.from=corp.example"), False),
    ((f"{AUTHSERV}; dkim=pass header.d=corp.example",), True),
], ids=["no-header", "other-authserv", "forged-copy-below-ours", "dkim-pass"])
def test_required_authentication_through_the_daemon(convo, results, answered):
    _require_authentication(convo)
    headers = {}
    raw_fields = "".join(f"Authentication-Results: {value}\r\n" for value in results)
    # Put the fields on top as the receiving server would (EmailMessage appends at the bottom).
    msg_id = convo.say(INITIATOR, "帮助", "帮助", headers=headers) if not results else None
    if results:
        raw = (f"{raw_fields}Received: from out.example by {AUTHSERV}; Mon, 3 Aug 2026 09:00 +0800\r\n"
               f"From: {INITIATOR}\r\nTo: collab@corp.example\r\nSubject: help\r\n"
               f"Message-ID: <auth-{len(results)}-{answered}@corp.example>\r\n\r\nhelp\r\n")
        convo.send_raw(INITIATOR, [convo.config.inbox_address], raw.encode())
    convo.process()
    got = convo.inbox(INITIATOR)
    assert len(got) == (1 if answered else 0), [str(m["Subject"]) for m in got]
    if not answered:
        assert convo.folder("collab@corp.example") == []  # handled (ignored), not stuck
        assert msg_id is None or convo.service.store.processed(msg_id.strip("<>"))


def test_security_keys_in_the_config(shipped_config_path):
    config = load_config(shipped_config_path)
    assert (config.authserv_id, config.require_authentication) == ("", False)
    assert config.require_token is True  # secure as shipped
    assert (config.trust_authentication_results, config.trust_exchange_internal) == (False, False)
    assert config.external_owners == () and config.replies_per_sender_per_day == 40
    # Requiring a stamp nobody vouches for would let any sender write their own.
    with pytest.raises(ConfigError, match="trust_authentication_results"):
        load_config(shipped_config_path, {"security.require_authentication": True,
                                          "security.authserv_id": AUTHSERV})
    with pytest.raises(ConfigError, match="authserv_id"):
        load_config(shipped_config_path, {"security.trust_authentication_results": True})
    strict = load_config(shipped_config_path, {"security.require_authentication": True,
                                               "security.trust_authentication_results": True,
                                               "security.authserv_id": "MX.Corp.Example"})
    assert strict.authserv_id == AUTHSERV
    exchange = load_config(shipped_config_path, {"security.require_authentication": True,
                                                 "security.trust_exchange_internal": True})
    assert exchange.trust_exchange_internal
    # Tokens no longer need plus addressing: they ride in the subject there.
    assert load_config(shipped_config_path, {"mail.plus_addressing": False}).require_token


# ── (b) owner binding, tokens and replays ──────────────────────────────────────────────────


def _request(convo: Conversation):
    got = [m for m in convo.inbox(OWNER) if "MD-0001" in str(m["Subject"])]
    assert got, "no confirmation request"
    return got[0]


def test_someone_elses_token_does_not_confirm_a_task(convo):
    _project(convo)
    request = _request(convo)
    reply_to = str(request["Reply-To"])
    assert tokens.find(b"conversation-test", [reply_to], OWNER)
    # Another allowed person replies to the owner's token address: refused, state unchanged.
    convo.say(OTHER, "Re: " + str(request["Subject"]), "确认", to=reply_to)
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    # A tampered token (another task number) from the other person: refused too.
    tampered = reply_to.replace("-t1-", "-t7-")
    convo.say(OTHER, "Re: [MD-0001 T-1] 确认", "确认", to=tampered)
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    # A token for another item does not reach this one.
    other_item = reply_to.replace("md0001", "md0002")
    convo.say(OWNER, "Re: 确认", "确认", to=other_item)
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    assert [a["action"] for a in convo.service.store.get_item("MD-0001")["audit"]] == ["created"]


def test_an_expired_token_is_refused_by_the_classifier(convo):
    from datetime import date

    _project(convo)
    dated = tokens.issue(b"conversation-test",
                         tokens.ReplyToken("MD-0001", "T-1", OWNER, date(2025, 1, 1)))
    context = dataclasses.replace(convo.service.classify_context(), today=date(2026, 8, 3))
    address = tokens.reply_address(convo.config.inbox_address, dated)
    assert tokens.find(context.secret, [address], OWNER, today=context.today) is None
    fresh = tokens.issue(b"conversation-test",
                         tokens.ReplyToken("MD-0001", "T-1", OWNER, date(2026, 8, 1)))
    assert tokens.find(context.secret, [tokens.reply_address(convo.config.inbox_address, fresh)],
                       OWNER, today=context.today)


def test_a_replayed_email_has_no_second_effect(convo):
    _project(convo)
    request = _request(convo)
    message_id = convo.reply(OWNER, request, "确认")
    convo.process()
    assert _task(convo)["state"] == "not_started"
    first = {p: len(convo.inbox(p)) for p in (INITIATOR, OWNER)}
    # The same email again (same Message-ID), e.g. a re-delivery or an attacker's replay.
    raw = _raw_processed(convo, message_id)
    convo.send_raw(OWNER, [convo.config.inbox_address], raw)
    convo.process()
    audit = [a["action"] for a in convo.service.store.get_item("MD-0001")["audit"]]
    assert audit.count("confirm") == 1, audit
    assert {p: len(convo.inbox(p)) for p in (INITIATOR, OWNER)} == {INITIATOR: 0, OWNER: 0}
    assert first[INITIATOR] >= 1


def _buttons(message) -> dict[str, tuple[str, str]]:
    """The reply buttons of an email's HTML part: label → (address, pre-filled body)."""
    return {label: (address, body) for label, address, _subject, body in buttons_of(message)}


def _audit(convo: Conversation) -> list[str]:
    return [a["action"] for a in convo.service.store.get_item("MD-0001")["audit"]]


def _refusals(convo: Conversation, person: str) -> list[str]:
    return [text_of(m) for m in convo.inbox(person) if "无法执行" in str(m["Subject"])]


def test_each_button_carries_one_action_once(convo):
    _project(convo)
    request = _request(convo)
    buttons = _buttons(request)
    confirm_to, confirm_body = buttons["确认"]
    decline_to, _ = buttons["拒绝"]
    reply_to = str(request["Reply-To"])
    assert len({confirm_to, decline_to, reply_to}) == 3, buttons
    confirm_token = tokens.find(b"conversation-test", [confirm_to], OWNER)
    assert confirm_token and confirm_token.action == "confirm"
    assert tokens.find(b"conversation-test", [decline_to], OWNER).action == "decline"
    assert tokens.find(b"conversation-test", [reply_to], OWNER).action == "reply"

    # The confirm button's address, with its body edited into a decline: refused, unchanged.
    convo.say(OWNER, "Re: " + str(request["Subject"]), "拒绝: 这周排不开", to=confirm_to)
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    assert any("只能执行它上面写的操作" in text for text in _refusals(convo, OWNER))

    # Used as meant: confirmed.
    convo.say(OWNER, "Re: " + str(request["Subject"]), confirm_body, to=confirm_to)
    convo.process()
    assert _task(convo)["state"] == "not_started"

    # The owner declines later by a normal reply; then the confirm click is played again (a new
    # Message-ID, as an attacker holding a copy would send it): it was used, nothing changes.
    convo.reply(OWNER, request, "拒绝: 预算没批")
    convo.process()
    assert _task(convo)["state"] == "declined"
    convo.inbox(OWNER)
    convo.say(OWNER, "Re: " + str(request["Subject"]), confirm_body, to=confirm_to)
    convo.process()
    assert _task(convo)["state"] == "declined"
    assert any("已经用过一次" in text for text in _refusals(convo, OWNER))
    assert _audit(convo) == ["created", "confirm", "decline"]


def test_a_reply_address_takes_each_command_once(convo):
    _project(convo)
    request = _request(convo)
    reply_to = str(request["Reply-To"])
    convo.reply(OWNER, request, "确认")
    convo.process()
    subject = "Re: " + str(request["Subject"])
    convo.say(OWNER, subject, "进度 50%", to=reply_to)
    convo.process()
    convo.inbox(OWNER)
    convo.say(OWNER, subject, "进度 50%", to=reply_to)  # the same again: a replay
    convo.process()
    assert any("已经用过一次" in text for text in _refusals(convo, OWNER))
    convo.say(OWNER, subject, "进度 75%", to=reply_to)  # a new report through the same email
    convo.process()
    assert _task(convo)["progress"] == 75
    assert _audit(convo) == ["created", "confirm", "progress", "progress"]


def test_a_tampered_token_from_the_owner_is_refused(convo):
    _project(convo)
    request = _request(convo)
    confirm_to, _ = _buttons(request)["确认"]
    # The owner's own confirm address with its action letter changed to "done": the signature
    # no longer matches anyone's, so it is refused even though the sender is the owner.
    local, _, domain = confirm_to.partition("@")
    parts = local.split("-")
    parts[-2] = "d" + parts[-2][1:]
    convo.say(OWNER, "Re: " + str(request["Subject"]), "完成", to="-".join(parts) + "@" + domain)
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    assert any("回复地址被改动过" in text for text in _refusals(convo, OWNER))


def test_required_tokens_refuse_commands_without_one(convo):
    assert convo.config.require_token  # as shipped
    _project(convo)
    request = _request(convo)
    # A new email naming the task in its subject, no reply address: answered, not applied.
    convo.say(OWNER, "[MD-0001 T-1] 确认", "确认")
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    assert any("新写的邮件或转发的邮件不能执行" in text for text in _refusals(convo, OWNER))
    # Someone else's reply address is not the owner's either.
    receipt = next(m for m in convo.inbox(INITIATOR) if "MD-0001" in str(m["Subject"]))
    convo.say(OWNER, "Re: " + str(receipt["Subject"]), "确认", to=str(receipt["Reply-To"]))
    convo.process()
    assert _task(convo)["state"] == "awaiting_confirmation"
    # The owner's own reply: applied.
    convo.reply(OWNER, request, "确认")
    convo.process()
    assert _task(convo)["state"] == "not_started"


def _raw_processed(convo: Conversation, message_id: str) -> bytes:
    from imapclient import IMAPClient
    inbox = convo.config.inbox_address
    with IMAPClient(convo.mail.host, port=convo.mail.imap_port, ssl=False, timeout=10) as client:
        client.login(inbox, convo.config.embedded_system.accounts[inbox])
        client.select_folder("Processed", readonly=True)
        uids = client.search(["HEADER", "Message-ID", message_id.strip("<>")])
        assert uids, message_id
        return bytes(client.fetch(uids[:1], ["BODY.PEEK[]"])[uids[0]][b"BODY[]"])


# ── (d) output safety ──────────────────────────────────────────────────────────────────────


def test_user_text_is_escaped_in_html_and_never_a_template(convo):
    title = "<script>alert(1)</script>{{ 7*7 }}{% if true %}X{% endif %}"
    _project(convo, title=title, subject="[项目] 转义测试")
    item = convo.service.store.get_item("MD-0001")
    assert item and item["title"] == title
    receipt = convo.inbox(INITIATOR)[0]
    html = html_of(receipt)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html and "{% if true %}X{% endif %}" in html
    assert "{{ 7*7 }}" in text_of(receipt) and "49" not in text_of(receipt).replace("2049", "")


def test_no_header_injection_through_an_encoded_subject(convo):
    title = "注入\r\nBcc: chen.jing@corp.example\r\nX-Injected: yes"
    subject = "[项目] " + Header(title, "utf-8").encode()
    body = ("发起人/部门：李娜 / 市场部\n目标/背景：测试\n范围：测试\n\n任务：\n"
            "任务名称 | 负责人 | 截止日期 | 交付标准\n卖点提炼 | 王喆 | 8月10日前 | 卖点说明\n")
    raw = (f"From: {INITIATOR}\r\nTo: collab@corp.example\r\nSubject: {subject}\r\n"
           f"Message-ID: <inject@corp.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
           f"Content-Transfer-Encoding: 8bit\r\n\r\n{body}").encode()
    convo.send_raw(INITIATOR, [convo.config.inbox_address], raw)
    convo.process()
    assert convo.folder("collab@corp.example") == []  # handled, not stuck
    assert convo.inbox("chen.jing@corp.example") == []  # the injected Bcc got nothing
    got = convo.inbox(INITIATOR) + convo.inbox(OWNER)
    assert got, "maild answered nothing: the case would prove nothing"
    for msg in got:
            assert msg["X-Injected"] is None and msg["Bcc"] is None
            assert "\r" not in str(msg["Subject"]) and "\n" not in str(msg["Subject"])
