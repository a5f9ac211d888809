"""tokens.py: reply tokens are bound to item, task and person, and cannot be forged."""

from __future__ import annotations

import pytest

from maild.core import tokens

SECRET = b"test-secret"


def test_round_trip_in_a_reply_address():
    token = tokens.ReplyToken("MD-0012", "T-3", "wang.zhe@corp.example")
    address = tokens.reply_address("collab@corp.example", tokens.issue(SECRET, token))
    assert address.startswith("collab+md0012-t3-") and address.endswith("@corp.example")
    assert len(address.partition("@")[0]) <= 64
    assert tokens.find(SECRET, [address], "wang.zhe@corp.example") == token
    # Servers that upper-case or keep case differently still match.
    assert tokens.find(SECRET, [address.upper()], "Wang.Zhe@corp.example") == token


def test_item_level_token():
    token = tokens.ReplyToken("MD-0001", None, "li.na@corp.example")
    text = tokens.issue(SECRET, token)
    assert "-i-" in text
    assert tokens.find(SECRET, [f"collab+{text}@corp.example"], "li.na@corp.example") == token


def test_other_sender_other_secret_or_tampering_are_refused():
    token = tokens.ReplyToken("MD-0012", "T-3", "wang.zhe@corp.example")
    address = tokens.reply_address("collab@corp.example", tokens.issue(SECRET, token))
    assert tokens.find(SECRET, [address], "mallory@corp.example") is None
    assert tokens.find(b"other", [address], "wang.zhe@corp.example") is None
    tampered = address.replace("-t3-", "-t2-")
    assert tokens.find(SECRET, [tampered], "wang.zhe@corp.example") is None
    assert tokens.unverified_item([tampered]) == ("MD-0012", "T-2")


def test_subject_tag():
    assert tokens.subject_tag("Re: [MD-0012 T-2] 请确认") == ("MD-0012", "T-2")
    assert tokens.subject_tag("回复：[md-0007] Q3") == ("MD-0007", None)
    assert tokens.subject_tag("no tag here [MD-]") is None


def test_dated_token_round_trip_and_expiry():
    from datetime import date
    token = tokens.ReplyToken("MD-0012", "T-3", "wang.zhe@corp.example", date(2026, 8, 1))
    address = tokens.reply_address("collab@corp.example", tokens.issue(SECRET, token))
    assert len(address.partition("@")[0]) <= 64
    assert tokens.find(SECRET, [address], "wang.zhe@corp.example", today=date(2026, 8, 2)) == token
    assert tokens.find(SECRET, [address], "wang.zhe@corp.example",
                       today=date(2027, 8, 1)) == token  # 365 days: still valid
    assert tokens.find(SECRET, [address], "wang.zhe@corp.example", today=date(2027, 8, 2)) is None
    assert tokens.find(SECRET, [address], "wang.zhe@corp.example", today=date(2026, 9, 1),
                       max_age_days=30) is None
    # The day is signed: moving it forward to dodge expiry breaks the signature.
    local, _, domain = address.partition("@")
    parts = local.split("-")
    parts[2] = tokens._day_text(date(2027, 8, 1))
    assert tokens.find(SECRET, ["-".join(parts) + "@" + domain], "wang.zhe@corp.example",
                       today=date(2027, 8, 2)) is None


def test_undated_tokens_from_before_expiry_are_still_read():
    from datetime import date
    token = tokens.ReplyToken("MD-0012", None, "wang.zhe@corp.example")
    address = tokens.reply_address("collab@corp.example", tokens.issue(SECRET, token))
    assert tokens.find(SECRET, [address], "wang.zhe@corp.example", today=date(2040, 1, 1)) == token


def test_cross_item_and_cross_task_tokens_are_refused():
    token = tokens.ReplyToken("MD-0012", "T-3", "wang.zhe@corp.example")
    text = tokens.issue(SECRET, token)
    other_item = text.replace("md0012", "md0013")
    other_task = text.replace("-t3-", "-i-")
    for forged in (other_item, other_task, text[:-1] + ("a" if text[-1] != "a" else "b")):
        address = f"collab+{forged}@corp.example"
        assert tokens.find(SECRET, [address], "wang.zhe@corp.example") is None, forged
    # The longest item and task numbers still fit a local part.
    long = tokens.ReplyToken("MD-999999999", "T-9999", "x@corp.example",
                             __import__("datetime").date(2099, 12, 31))
    assert len("collab+" + tokens.issue(SECRET, long)) <= 64


def test_action_part_is_signed_and_read_back():
    from datetime import date
    token = tokens.ReplyToken("MD-0012", "T-3", "wang.zhe@corp.example", date(2026, 8, 1),
                              "confirm", tokens.nonce_for("maild.abc@corp.example"))
    text = tokens.issue(SECRET, token)
    address = tokens.reply_address("collab@corp.example", text)
    assert len(address.partition("@")[0]) <= 64
    found = tokens.find(SECRET, [address], "wang.zhe@corp.example")
    assert found == token and found.action == "confirm" and found.use_key == text.rsplit("-", 1)[1]
    # Every action letter is covered by the signature: moving a confirm to done breaks it.
    local, _, domain = address.partition("@")
    parts = local.split("-")
    parts[-2] = "d" + parts[-2][1:]
    assert tokens.find(SECRET, ["-".join(parts) + "@" + domain], "wang.zhe@corp.example") is None
    assert tokens.issued_to(SECRET, "-".join(parts).partition("+")[2],
                            ["wang.zhe@corp.example", "li.na@corp.example"]) is None
    assert tokens.issued_to(SECRET, text, ["li.na@corp.example", "Wang.Zhe@corp.example"]) == \
        "wang.zhe@corp.example"


def test_each_email_gets_its_own_addresses_one_per_action():
    from datetime import date
    one = tokens.action_addresses(SECRET, "collab@corp.example", "MD-0001", "T-1",
                                  "wang.zhe@corp.example", date(2026, 8, 3), "maild.1@corp.example")
    two = tokens.action_addresses(SECRET, "collab@corp.example", "MD-0001", "T-1",
                                  "wang.zhe@corp.example", date(2026, 8, 3), "maild.2@corp.example")
    assert set(one) == set(tokens.ACTION_CODES)
    nonce = tokens.nonce_for("maild.1@corp.example")
    for action, address in one.items():  # the shortcut gives exactly what `issue` gives
        assert address == tokens.reply_address("collab@corp.example", tokens.issue(
            SECRET, tokens.ReplyToken("MD-0001", "T-1", "wang.zhe@corp.example",
                                      date(2026, 8, 3), action, nonce)))
    assert len(set(one.values())) == len(one)
    assert not set(one.values()) & set(two.values())  # same day, task and owner; other email
    for action, address in one.items():
        assert tokens.find(SECRET, [address], "wang.zhe@corp.example").action == action


def test_an_address_is_signed_only_when_it_is_read(monkeypatch):
    """An email draws two or three of its sixteen buttons: only those are signed (an HMAC each),
    and each once; asking whether an action is there signs nothing."""
    from datetime import date
    signed = []
    real = tokens._signature
    monkeypatch.setattr(tokens, "_signature", lambda *a: signed.append(a[-1]) or real(*a))
    addresses = tokens.action_addresses(SECRET, "collab@corp.example", "MD-0001", "T-1",
                                        "wang.zhe@corp.example", date(2026, 8, 3), "m@corp")
    assert "confirm" in addresses and "nonsense" not in addresses and signed == []
    first = addresses["confirm"]
    assert addresses["confirm"] == first and addresses.get("decline") and len(signed) == 2
    with pytest.raises(KeyError):
        addresses["nonsense"]
    with pytest.raises(KeyError):
        tokens.action_addresses(SECRET, "collab@corp.example", "MD-0001", "T-1",
                                "wang.zhe@corp.example", None, "m@corp", ("confirm", "fly"))


def test_read_says_why_a_token_does_not_count():
    from datetime import date
    token = tokens.ReplyToken("MD-0012", "T-3", "wang.zhe@corp.example", date(2025, 1, 1),
                              "reply", "abcd")
    address = tokens.reply_address("collab@corp.example", tokens.issue(SECRET, token))
    valid = tokens.read(SECRET, ["other@corp.example", address], "wang.zhe@corp.example")
    assert valid.token == token and valid.problem == ""
    expired = tokens.read(SECRET, [address], "wang.zhe@corp.example", today=date(2026, 8, 1))
    assert (expired.item_id, expired.token, expired.problem) == ("MD-0012", None, "expired")
    other = tokens.read(SECRET, [address], "li.na@corp.example")
    assert (other.task_id, other.token, other.problem) == ("T-3", None, "unverified")
    assert tokens.issued_to(SECRET, other.text, ["li.na@corp.example", "wang.zhe@corp.example"]) \
        == "wang.zhe@corp.example"
    assert tokens.read(SECRET, ["collab@corp.example"], "wang.zhe@corp.example") is None


def test_a_token_rides_in_the_subject_tag_where_there_is_no_plus_addressing():
    from datetime import date
    addresses = tokens.action_addresses(SECRET, "collab@corp.example", "MD-0012", "T-3",
                                        "wang.zhe@corp.example", date(2026, 8, 3), "m1@corp")
    tag = tokens.subject_tag_for(addresses["done"])
    assert tag is not None and tag.startswith("[MD-0012 T-3 #") and len(tag) < 40
    subject = tokens.tag_subject("Re: [MD-0012] 请确认任务 T-3", addresses["done"])
    assert subject == f"Re: {tag} 请确认任务 T-3"
    assert tokens.subject_tag(subject) == ("MD-0012", "T-3")  # still the plain tag too
    # Clients prefix, fold and re-encode subjects: the reader finds the token anywhere.
    found = tokens.find(SECRET, tokens.subject_addresses("回复：答复： " + subject.upper()),
                        "wang.zhe@corp.example")
    assert found and (found.item_id, found.task_id, found.action) == ("MD-0012", "T-3", "done")
    # Bound to the person and the task like the address form: moving it to T-2 breaks it.
    assert tokens.find(SECRET, tokens.subject_addresses(subject), "li.na@corp.example") is None
    moved = subject.replace("T-3 #", "T-2 #")
    assert tokens.find(SECRET, tokens.subject_addresses(moved), "wang.zhe@corp.example") is None
    # An item-level token, and a subject without any tag: the tag goes first.
    item = tokens.action_addresses(SECRET, "collab@corp.example", "MD-0012", None,
                                   "li.na@corp.example", date(2026, 8, 3), "m1@corp")["reply"]
    assert tokens.tag_subject("Q3 收据", item).startswith("[MD-0012 #")
    assert tokens.tag_subject("Q3 收据", "collab@corp.example") == "Q3 收据"
    assert tokens.subject_addresses("Re: [MD-0012 T-3] 没有校验码") == []
