"""classify: loop checks first, then reply / new item / help / unrecognized, on real .eml files."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.classify import (
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
)
from maild.decode import decode

CORPUS = Path(__file__).parent / "data" / "corpus"


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
                                                 "unauthorized"]


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
