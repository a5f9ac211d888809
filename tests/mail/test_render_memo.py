"""The status-table memo (`same_table`): an email that starts a project sends a receipt and one
confirmation per owner, all showing the same table, written once. A memo must never show a table
that is not the item's own: every output of a renderer that has rendered other emails before is
the output of a fresh renderer."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from maild.core.model import Notice
from maild.mail.render import Renderer
from maild.mail.templatetools import table_memo
from tests.mail.test_render import FROM_NAME, INBOX, REPLY, SENT, TEMPLATES, make_item


def fresh() -> Renderer:
    return Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)


def confirm_request(item: dict[str, Any], lang: str, **extra: Any) -> Notice:
    return Notice(template="confirm_request", to=("wang.zhe@corp.example",), language=lang,
                  context={"item": item, "task": item["tasks"][1], **extra}, item_id=item["id"])


def receipt(item: dict[str, Any], lang: str) -> Notice:
    return Notice(template="receipt", to=("li.na@corp.example",), language=lang,
                  context={"item": item, "items": [item]}, item_id=item["id"])


def emails() -> list[tuple[str, Notice, Any]]:
    """A day of one item's emails: the same table again, then every input of the table changed
    one at a time (a task's state, progress, deadline and owner, the language, the reader's
    zone, the clock)."""
    item = make_item()
    later = copy.deepcopy(item)
    later["tasks"][0]["state"] = "done"
    moved = copy.deepcopy(later)
    moved["tasks"][2]["deadline"] = "2026-08-30T18:00:00+08:00"
    halfway = copy.deepcopy(moved)
    halfway["tasks"][0]["progress"] = 75
    renamed = copy.deepcopy(halfway)
    renamed["tasks"][1]["owner_name"] = "赵磊"
    return [
        ("receipt", receipt(item, "zh"), SENT),
        ("first confirmation", confirm_request(item, "zh"), SENT),
        ("second confirmation", confirm_request(item, "zh"), SENT),
        ("in English", confirm_request(item, "en"), SENT),
        ("a task done", confirm_request(later, "zh"), SENT),
        ("a deadline moved", confirm_request(moved, "zh"), SENT),
        ("progress", confirm_request(halfway, "zh"), SENT),
        ("another owner", confirm_request(renamed, "zh"), SENT),
        ("reader in London", confirm_request(renamed, "zh", reader_timezone="Europe/London"),
         SENT),
        ("a week later", confirm_request(renamed, "zh"), SENT + timedelta(days=7)),
        ("back to the first", confirm_request(item, "zh"), SENT),
    ]


def test_a_renderer_with_history_writes_what_a_fresh_one_writes() -> None:
    warm = fresh()
    for label, notice, when in emails():
        got = warm.render(notice, message_id="m-1@corp.example", date=when, reply_address=REPLY)
        want = fresh().render(notice, message_id="m-1@corp.example", date=when,
                              reply_address=REPLY)
        assert (got.text, got.html) == (want.text, want.html), label


class Macro:
    """Stands in for a Jinja macro: counts the tables it writes."""

    name = "table_of"

    def __init__(self) -> None:
        self.written = 0

    def __call__(self, item: Any) -> str:
        self.written += 1
        return f"table of {item!r}"


class EvalContext:
    def __init__(self, autoescape: bool) -> None:
        self.autoescape = autoescape


class Context(dict):
    """What `same_table` reads of Jinja's context: the render's language, zone, clock, part."""

    def __init__(self, lang: str = "zh", autoescape: bool = True, now: Any = SENT) -> None:
        super().__init__(lang=lang, tz="Asia/Shanghai", now=now)
        self.eval_ctx = EvalContext(autoescape)


class Opaque:
    """An object whose repr is only its address: equal reprs may be different contents."""


@pytest.mark.parametrize(("second", "written"), [
    (lambda item: (Context(), item), 1),
    (lambda item: (Context(), copy.deepcopy(item)), 1),
    (lambda item: (Context(lang="en"), item), 2),
    (lambda item: (Context(autoescape=False), item), 2),
    (lambda item: (Context(now=SENT + timedelta(hours=1)), item), 2),
    (lambda item: (Context(), {**item, "title": "另一个项目"}), 2),
], ids=["same-item", "equal-copy", "other-language", "text-part", "other-clock", "changed-item"])
def test_a_table_is_written_once_per_item_language_part_and_clock(second, written) -> None:
    same_table, macro, item = table_memo(), Macro(), make_item()
    first = same_table(Context(), macro, item)
    ctx, other = second(item)
    again = same_table(ctx, macro, other)
    assert macro.written == written
    assert again == (first if written == 1 else f"table of {other!r}")


def test_an_item_holding_an_opaque_object_is_never_memoised() -> None:
    same_table, macro = table_memo(), Macro()
    item = {**make_item(), "extra": Opaque()}
    same_table(Context(), macro, item)
    same_table(Context(), macro, item)
    assert macro.written == 2
