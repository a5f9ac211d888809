"""classify: loop checks first, then reply / new item / help / unrecognized, on real .eml files."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.core.classify import (
    LOOP_CHECKS,
    ClassifyContext,
    HelpRequest,
    Ignore,
    NewItem,
    Reply,
    Unrecognized,
    classify,
    inspect_kind,
    language_of,
    sender_authentication,
)
from maild.mail.decode import decode

CORPUS = Path(__file__).parents[1] / "data" / "corpus"


@pytest.fixture
def ctx(rules) -> ClassifyContext:
    return ClassifyContext(inbox_address="collab@corp.example", secret=b"test",
                           allowed_domains=("corp.example",), form_rules=rules.form_rules,
                           lookup_message=lambda _mid: None, item_exists=lambda _item: True)


def read(name: str):
    return decode((CORPUS / name).read_bytes())


@pytest.mark.parametrize(("name", "kind"), [
    ("auto/rfc3834_en.eml", "auto_reply"),
    ("auto/exchange_oof_zh.eml", "auto_reply"),
    ("auto/qq_vacation_zh.eml", "auto_reply"),
    ("auto/qq_vacation_body_only_zh.eml", "auto_reply"),
    ("auto/precedence_auto_reply.eml", "auto_reply"),
    ("bounce/postfix_dsn_en.eml", "bounce"),
    ("bounce/qq_text_bounce_zh.eml", "bounce"),
    ("bounce/163_text_bounce_zh.eml", "bounce"),
], ids=lambda value: value if "/" in value else None)
def test_loops_are_ignored_whatever_they_say(name: str, kind: str, ctx) -> None:
    decision = classify(read(name), ctx)
    assert isinstance(decision, Ignore) and decision.kind == kind


def test_loop_checks_run_in_a_fixed_order() -> None:
    assert [name for name, _ in LOOP_CHECKS] == ["own", "bounce", "auto_reply", "list",
                                                 "unauthorized", "unauthenticated"]


def test_a_reply_to_a_token_address_reads_only_the_new_text(ctx) -> None:
    decision = classify(read("qq/reply_confirm_zh_nbsp.eml"), ctx)
    assert isinstance(decision, Reply)
    assert (decision.item_id, decision.task_id, decision.matched_by) == ("MD-0001", "T-1", "token")
    assert decision.command is not None and decision.command.name == "confirm"
    assert decision.new_text == "收到"


def test_a_subject_tag_alone_finds_the_item(ctx) -> None:
    decision = classify(read("coremail/reply_subject_tag_only_zh.eml"), ctx)
    assert isinstance(decision, Reply) and decision.matched_by == "subject"


def test_an_ambiguous_reply_has_no_command(ctx) -> None:
    decision = classify(read("alimail/reply_ambiguous_zh.eml"), ctx)
    assert isinstance(decision, Reply) and decision.command is None


@pytest.mark.parametrize(("name", "language"), [
    ("outlook/help_subject_zh.eml", "zh"),
    ("gmail/help_body_en.eml", "en"),
    ("qq/help_body_zh.eml", "zh"),
    ("thunderbird/help_subject_en.eml", "en"),
], ids=["subject-zh", "body-en", "body-zh-gb18030", "subject-en"])
def test_help_gets_the_templates_in_the_senders_language(name: str, language: str, ctx) -> None:
    decision = classify(read(name), ctx)
    assert isinstance(decision, HelpRequest) and decision.language == language
    assert decision.reason  # what `inspect` reports alongside command "help"


def test_a_form_without_a_marker_is_inferred(ctx) -> None:
    decision = classify(read("qq/new_task_zh_inferred.eml"), ctx)
    assert isinstance(decision, NewItem) and decision.form.kind is not None
    assert decision.form.kind.value == "task" and decision.language == "zh"


def test_one_field_is_not_enough_to_guess(ctx) -> None:
    decision = classify(read("outlook/unrecognized_unsure_zh.eml"), ctx)
    assert isinstance(decision, Unrecognized) and decision.language == "zh"


def test_senders_outside_the_allowed_domains_are_ignored(ctx) -> None:
    raw = (CORPUS / "gmail/new_task_en.eml").read_bytes().replace(
        b"li.na@corp.example", b"li.na@evil.example")
    decision = classify(decode(raw), ctx)
    assert isinstance(decision, Ignore) and decision.kind == "unauthorized"


@pytest.mark.parametrize(("texts", "language"), [
    (("Re: [MD-0001] 请确认", "OK"), "zh"),
    (("Re: [MD-0001] Please confirm", "确认"), "zh"),
    (("Re: [MD-0001] Please confirm", "Confirm, thanks"), "en"),
    (("", "Progress 50% 好"), "en"),
], ids=["zh-subject", "zh-word", "en", "one-cjk-in-english"])
def test_language_follows_the_writing(texts: tuple[str, str], language: str) -> None:
    assert language_of(*texts) == language


def test_inspect_kinds_are_the_documented_set() -> None:
    assert inspect_kind(Ignore("list", "x")) == "auto_reply"
    assert inspect_kind(Ignore("bounce", "x")) == "bounce"
    assert inspect_kind(HelpRequest("zh")) == "unrecognized"


# ── sender authentication (Authentication-Results of the receiving server) ─────────────────────

AUTHSERV = "mx.corp.example"


def _authenticated_email(*results: str, sender: str = "li.na@corp.example") -> bytes:
    fields = "".join(f"Authentication-Results: {value}\r\n" for value in results)
    return (f"{fields}Received: from mail.outside.test by mx.corp.example; Mon, 3 Aug 2026 09:12:40 +0800\r\n"
            f"From: {sender}\r\nTo: collab@corp.example\r\nSubject: help\r\n"
            f"Message-ID: <auth@corp.example>\r\n\r\nhelp\r\n").encode()


@pytest.fixture
def strict(ctx) -> ClassifyContext:
    """Authentication required, where the operator declared that the receiving server stamps
    and strips Authentication-Results (the only place it may be required)."""
    import dataclasses
    return dataclasses.replace(ctx, authserv_id=AUTHSERV, require_authentication=True,
                               trust_authentication_results=True)


@pytest.mark.parametrize(("results", "accepted"), [
    ((f"{AUTHSERV}; dmarc=pass (p=reject) header.from=corp.example",), True),
    ((f"{AUTHSERV}; dkim=pass header.d=corp.example header.s=s1; spf=fail",), True),
    ((f"{AUTHSERV}; dkim=pass header.i=@mail.corp.example",), True),
    ((f"{AUTHSERV}; spf=pass smtp.mailfrom=corp.example",), False),  # SPF alone is not alignment
    ((f"{AUTHSERV}; dkim=pass header.d=evil.test; dmarc=fail header.from=corp.example",), False),
    ((f"{AUTHSERV}; dkim=fail header.d=corp.example",), False),
    (("mx.evil.test; dmarc=pass header.from=corp.example",), False),  # another server's claim
    # Ours on top says fail; a forged copy below it (it came with the email) is ignored.
    ((f"{AUTHSERV}; dmarc=fail header.from=corp.example",
      f"{AUTHSERV}; dmarc=pass header.from=corp.example"), False),
    ((f"{AUTHSERV} 1; dmarc=pass (comment; with = signs) header.from=corp.example",), True),
    ((), False),
    # An inner hop's field on top of ours: ours (the topmost with our authserv-id) decides.
    (("filter.corp.example; spf=none", f"{AUTHSERV}; dmarc=pass header.from=corp.example"), True),
], ids=["dmarc-pass", "dkim-pass-aligned", "dkim-subdomain", "spf-only", "dkim-unaligned",
        "dkim-fail", "other-authserv", "forged-below-ours", "version-and-comment", "none",
        "inner-hop-on-top"])
def test_required_authentication(strict, ctx, results, accepted) -> None:
    msg = decode(_authenticated_email(*results))
    decision = classify(msg, strict)
    if accepted:
        assert not isinstance(decision, Ignore), decision
    else:
        assert isinstance(decision, Ignore) and decision.kind == "unauthenticated", decision
    # Not required (the default): the header is not even looked at.
    assert not isinstance(classify(msg, ctx), Ignore)


def test_a_reply_with_an_expired_token_does_not_match_by_token(ctx) -> None:
    import dataclasses
    from datetime import date

    from maild.core import tokens
    token = tokens.ReplyToken("MD-0012", "T-1", "wang.zhe@corp.example", date(2026, 1, 1))
    address = tokens.reply_address("collab@corp.example", tokens.issue(b"test", token))
    raw = (f"From: wang.zhe@corp.example\r\nTo: {address}\r\nSubject: ok\r\n"
           f"Message-ID: <exp@corp.example>\r\n\r\n确认\r\n").encode()
    fresh = dataclasses.replace(ctx, today=date(2026, 2, 1))
    assert classify(decode(raw), fresh).matched_by == "token"
    old = dataclasses.replace(ctx, today=date(2027, 6, 1), item_exists=lambda _i: False)
    assert not isinstance(classify(decode(raw), old), Reply)


def test_authentication_results_count_only_where_the_operator_declared_the_stamp(ctx, strict):
    """Without `trust_authentication_results` a dmarc=pass field is whatever the sender wrote
    (a server that does not stamp lets it through): no proof, and required authentication
    refuses everything."""
    import dataclasses
    msg = decode(_authenticated_email(f"{AUTHSERV}; dmarc=pass header.from=corp.example"))
    assert sender_authentication(msg, strict) == "dmarc"
    undeclared = dataclasses.replace(strict, trust_authentication_results=False)
    assert sender_authentication(msg, undeclared) == ""
    assert isinstance(classify(msg, undeclared), Ignore)
    assert sender_authentication(msg, dataclasses.replace(ctx, authserv_id=AUTHSERV)) == ""


@pytest.mark.parametrize(("fields", "trusted", "proof"), [
    ("X-MS-Exchange-Organization-AuthAs: Internal\r\n"
     "X-MS-Exchange-Organization-AuthSource: EX01.corp.example\r\n", True, "exchange"),
    ("X-MS-Exchange-Organization-AuthAs: Anonymous\r\n", True, ""),
    ("X-MS-Exchange-Organization-AuthAs: Internal\r\n", False, ""),
], ids=["internal", "anonymous", "not-declared"])
def test_exchange_internal_sender_marker(ctx, fields, trusted, proof):
    import dataclasses
    raw = (f"{fields}From: li.na@corp.example\r\nTo: collab@corp.example\r\nSubject: help\r\n"
           f"Message-ID: <ex@corp.example>\r\n\r\nhelp\r\n").encode()
    context = dataclasses.replace(ctx, trust_exchange_internal=trusted)
    assert sender_authentication(decode(raw), context) == proof
    required = dataclasses.replace(context, require_authentication=True)
    assert isinstance(classify(decode(raw), required), Ignore) == (not proof)


def test_a_token_in_the_subject_tag_matches_like_one_in_the_address(ctx):
    """Servers without plus addressing: the token rides in the subject tag."""
    from datetime import date

    from maild.core import tokens
    addresses = tokens.action_addresses(b"test", "collab@corp.example", "MD-0012", "T-2",
                                        "wang.zhe@corp.example", date(2026, 8, 3), "m1@x")
    subject = tokens.tag_subject("回复：[MD-0012] 请确认任务", addresses["confirm"])
    raw = (f"From: wang.zhe@corp.example\r\nTo: collab@corp.example\r\nSubject: {subject}\r\n"
           f"Message-ID: <subj@corp.example>\r\n\r\n确认\r\n").encode()
    decision = classify(decode(raw), ctx)
    assert isinstance(decision, Reply) and decision.matched_by == "token"
    assert (decision.item_id, decision.task_id) == ("MD-0012", "T-2")
    assert decision.token.token.action == "confirm"
