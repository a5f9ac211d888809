"""The buttons in an email: `mailto:` links that open a reply already addressed (to the action's
own reply address) and filled in, and which buttons a task or a digest row gets.

Pure. A link longer than `MAILTO_MAX` is not shown (some clients drop it); `mailto` memoises,
since one digest repeats the same buttons thousands of times.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

from jinja2 import (
    pass_context,
)
from jinja2.runtime import Context

from maild.core import tokens
from maild.mail.templatetools import MEMO_MAX, Strings, normalize_task, unix_newlines

# Buttons that get an action-bound address; the others (status, help) use the reply address.
BUTTON_ACTIONS = ("confirm", "decline", "progress", "done", "reassign", "close", "accept",
                  "reschedule", "withdraw", "approve", "return", "stop")


def mailto(address: str, subject: str, body: str) -> str:
    """A mailto: URL (RFC 6068) to one address, with subject and body percent-encoded as UTF-8."""
    return _mailto(address, subject, body, _quote_field)


def _mailto(address: str, subject: str, body: str, encode: Callable[[str], str]) -> str:
    if not address or "@" not in address or re.search(r"[\s<>\"?#%,&=\\]|[^\x21-\x7e]", address):
        raise ValueError(f"not a plain address for mailto: {address!r}")
    fields = {"subject": subject, "body": unix_newlines(body).replace("\n", "\r\n")}
    query = "&".join(f"{k}={encode(v)}" for k, v in fields.items() if v)
    return f"mailto:{quote(address, safe='@+')}" + (f"?{query}" if query else "")


def _quote_field(value: str) -> str:
    return quote(value, safe="")


def memo_mailto(subject_inbox: str | None = None) -> Callable[[str, str, str], str]:
    """The templates' `mailto`, memoised: the checked and quoted addresses (without reply
    addresses, every button of a run goes to the inbox), the percent-encoded subjects (the
    buttons of one task share one) and bodies (all emails use the same few). Same URLs.

    With `subject_inbox` (servers without plus addressing) a button's token moves from its
    address into its subject's tag, and the button writes to `subject_inbox`."""
    heads: dict[str, str] = {}
    subjects: dict[str, str] = {}
    bodies: dict[str, str] = {}
    if subject_inbox is not None:
        plain = memo_mailto()

        def tagged(address: str, subject: str, body: str) -> str:
            if "+" not in address.partition("@")[0]:
                return plain(address, subject, body)
            return plain(subject_inbox, tokens.tag_subject(subject, address), body)
        return tagged

    def field(memo: dict[str, str], value: str, name: str) -> str:
        found = memo.get(value)
        if found is None:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            text = unix_newlines(value).replace("\n", "\r\n") if name == "body" else value
            found = memo[value] = f"{name}={_quote_field(text)}" if text else ""
        return found

    def mailto_(address: str, subject: str, body: str) -> str:
        head = heads.get(address)
        if head is None:
            if len(heads) >= MEMO_MAX:
                heads.clear()
            head = heads[address] = _mailto(address, "", "", _quote_field)  # checks it
        query = "&".join([f for f in (field(subjects, subject, "subject"),
                                      field(bodies, body, "body")) if f])
        return f"{head}?{query}" if query else head

    return mailto_


class CommandHints:
    """The `command_hint(actions)` global: what to write on the first line of a reply to the
    address of a listed task whose buttons are `actions` ("确认 / 拒绝: 原因", "改期至 日期 /
    转派 给 新负责人 / 状态"), from the catalog's `reminders.commands`, memoised per language
    and actions (a run's rows share a few). Decline and done have no hint of their own: the
    hints of confirm and progress name them."""

    def __init__(self, strings: Strings) -> None:
        self._hints = {lang: {key.rpartition(".")[2]: text.format_map({})
                              for key, (text, _html) in table.items()
                              if key.startswith("reminders.commands.")}
                       for lang, table in strings.items()}
        self._memo: dict[tuple[str, tuple[str, ...]], str] = {}

    def of(self, lang: str, actions: tuple[str, ...]) -> str:
        key = (lang, tuple(actions))
        found = self._memo.get(key)
        if found is None:
            hints = self._hints[lang]
            found = self._memo[key] = " / ".join(hints[a] for a in actions if a in hints)
        return found

    @pass_context
    def __call__(self, ctx: Context, actions: tuple[str, ...]) -> str:
        return self.of(ctx["lang"], actions)


class ButtonAddresses(Mapping[str, str]):
    """A button's label (in the email's language) → its action-bound reply address, looked up
    only for the buttons the email draws: the addresses are signed as they are read
    (`tokens.SignedAddresses`), and an email draws two or three of its sixteen."""

    def __init__(self, labels: Mapping[str, str], addresses: Mapping[str, str]) -> None:
        self._actions = {labels[action]: action for action in BUTTON_ACTIONS
                         if action in labels and action in addresses}
        self._addresses = addresses

    def __getitem__(self, label: str) -> str:
        return self._addresses[self._actions[label]]

    def __contains__(self, label: object) -> bool:
        return label in self._actions

    def __iter__(self) -> Iterator[str]:
        return iter(self._actions)

    def __len__(self) -> int:
        return len(self._actions)


def digest_buttons(ctx: dict[str, Any], task_addresses: Mapping[str, Mapping[str, str]],
                    subject_tokens: bool) -> None:
    """The digest rows that carry levels (`actions`), with their buttons' addresses."""
    def rows(listed: Any) -> Any:
        if not any("actions" in row for row in listed):
            return listed
        return [with_buttons(row, task_addresses, ctx["action_address"], subject_tokens)
                if "actions" in row else row for row in listed]

    if "rows" in ctx:
        ctx["rows"] = rows(ctx["rows"])
    if ctx["own"]:
        ctx["own"] = {**ctx["own"], "rows": rows(ctx["own"]["rows"])}
    if "sections" in ctx:
        ctx["sections"] = [{**section, "rows": rows(section["rows"])}
                           for section in ctx["sections"]]


def with_buttons(row: Mapping[str, Any], task_addresses: Mapping[str, Mapping[str, str]],
                  fallback: str, subject_tokens: bool) -> dict[str, Any]:
    """`row` (a task listed with `ref` and `actions`) with where its buttons go: for each of its
    actions, the task's address bound to that action (status: the task's reply address, as for
    single emails), else the email's reply address or the inbox (`fallback`); and `reply_to`,
    the task's address for any reply ("" when there is none)."""
    addresses = task_addresses.get(row["ref"]) or {}
    buttons = {action: addresses.get(action if action in BUTTON_ACTIONS else "reply") or fallback
               for action in row["actions"]}
    reply_to = addresses.get("reply", "")
    if subject_tokens:  # no plus addressing: the text says which subject tag to reply with
        return {**row, "buttons": buttons, "reply_to": "",
                "reply_tag": tokens.subject_tag_for(reply_to) or ""}
    return {**row, "buttons": buttons, "reply_to": reply_to, "reply_tag": ""}


def entry_with_buttons(entry: Mapping[str, Any], task_addresses: Mapping[str, Mapping[str, str]],
           fallback: str, subject_tokens: bool) -> dict[str, Any]:
    """One task of an email that lists several (`entries`), with its buttons' addresses."""
    return {**with_buttons(entry, task_addresses, fallback, subject_tokens),
            "task": normalize_task(entry["task"])}
