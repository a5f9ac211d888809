"""tokens.py: reply tokens are bound to item, task and person, and cannot be forged."""

from __future__ import annotations

from maild import tokens

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
