"""`maild inspect FILE.eml`: how maild reads one email, without a store or a server: the
decoded email, the classification, the form or commands read, and what would be created.

`inspect_email` returns it as a dict (also `--json`); the accuracy benches use it at a fixed
`now` so that their figures are the CLI's own reading.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from datetime import datetime
from typing import Any

from maild.core import outcomes
from maild.core.config import load_config


def _new_item_defaults() -> dict[str, Any]:
    """For a new item: how many items it makes, whether it waits for a one-word confirmation,
    the receipt's notes, what could not be read. Every reading has these keys (stable schema)."""
    return {"items": 0, "confirm": False, "notes": [], "unread": []}


def inspect_email(raw: bytes, config: Any, now: datetime, *,
                  now_from_email: bool = False) -> dict[str, Any]:
    """The stable `inspect --json` reading of one email (no state read or written); with
    `now_from_email`, relative dates are read as of the email's own Date (else `now`)."""
    from maild.app.wiring import Rules
    from maild.core.classify import (
        # The names test_classify imports too (duplicates): inspect shows what classify decides.
        ClassifyContext,
        DraftReply,
        HelpRequest,
        NewItem,
        Reply,
        Unrecognized,
        classify,
        inspect_kind,
        language_of,
    )
    from maild.core.taskplan import plan
    from maild.mail.decode import DecodeError, decode
    from maild.mail.reply import new_text
    from maild.mail.workbooks import load_sheet_words

    rules = Rules.from_config(config)
    try:
        msg = decode(raw, max_bytes=config.max_message_bytes,
                     max_header_bytes=config.max_header_bytes,
                     max_table_bytes=config.files_chat.limits.max_bytes)
    except DecodeError as exc:
        return {"kind": "unrecognized", "language": "en", "command": None, "new_text": "",
                "item": None, "errors": [f"undecodable: {exc.reason}"], **_new_item_defaults()}
    if now_from_email and msg.date is not None:
        now = msg.date.astimezone(config.tz)
    secret = b"inspect"
    ctx = ClassifyContext(
        inbox_address=config.inbox_address, secret=secret, allowed_domains=(),
        form_rules=rules.form_rules,
        lookup_message=lambda mid: ("", None) if mid.startswith("maild.") else None,
        item_exists=lambda _item: True,
        sheet_words=load_sheet_words(config.templates_dir / "sheets.toml"),  # attached tables
        file_limits=config.files_chat.limits)
    decision = classify(msg, ctx)
    text = new_text(msg.text, msg.html)
    result: dict[str, Any] = {"kind": inspect_kind(decision),
                              "language": language_of(msg.subject, text),
                              "command": None, "new_text": text, "item": None, "errors": [],
                              **_new_item_defaults()}
    if isinstance(decision, Reply):
        result["command"] = decision.command.to_dict() if decision.command else None
        result["commands"] = [command.to_dict() for command in decision.commands]
        result["unread"] = list(decision.unread)
        result["item"] = ({"id": decision.item_id, "task": decision.task_id}
                          if decision.item_id else None)
    elif isinstance(decision, NewItem | DraftReply) and decision.form.kind is not None:
        form = decision.form
        wctx = outcomes.WorkflowContext(inbox_address=config.inbox_address, secret=secret,
                                        people=rules.people, form_rules=rules.form_rules,
                                        workday_end=config.workday_end,
                                        workdays=rules.calendar.is_workday)
        laid_out = plan(form, msg.from_addr, wctx, now)
        planned = [task for group in laid_out.groups for task in group["tasks"]]
        tasks = [{"name": t.name, "owner": t.owner, "deadline": t.deadline,
                  "deliverable": t.deliverable} for t in form.tasks]
        if not laid_out.errors:
            for raw_task, task in zip(tasks, planned, strict=False):
                raw_task.update(owner_address=task["owner"], deadline_at=task["deadline"],
                                state=task["state"], progress=task["progress"])
                raw_task.update({k: task[k] for k in ("priority",) if k in task})
        result["item"] = {"kind": form.kind.value if form.kind else None, **dict(form.fields),
                          "tasks": tasks}
        result["items"] = len(laid_out.groups) if not laid_out.errors else 0
        result["confirm"] = bool(laid_out.uncertain and not laid_out.errors)
        result["notes"] = [{k: v for k, v in note.items() if k != "group"}
                           for note in laid_out.notes]
        result["unread"] = list(form.unread)
        result["errors"] = [e.to_dict() for e in laid_out.errors]
    elif isinstance(decision, HelpRequest):
        result["command"] = {"name": "help"}
    elif isinstance(decision, Unrecognized):
        result["errors"] = [decision.reason]
    return result


def inspect_command(args: argparse.Namespace) -> int:
    config = load_config(args.config)  # for its rules and limits
    raw = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    now = datetime.now(config.tz)
    if args.now and args.now != "email":
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            print(f"maild: --now {args.now!r} is neither an ISO time nor 'email'", file=sys.stderr)
            return 64  # EX_USAGE
        now = now if now.tzinfo else now.replace(tzinfo=config.tz)
    result = inspect_email(raw, config, now, now_from_email=args.now == "email")
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"kind:     {result['kind']}  ({result['language']})")
        for command in result.get("commands") or ([result["command"]] if result["command"] else []):
            print(f"command:  {command}")
        for part in result.get("unread", ()):
            print(f"unread:   {part}")
        print("new text:\n" + textwrap.indent(result["new_text"] or "(empty)", "  "))
        if result["item"]:
            print("item:     " + json.dumps(result["item"], ensure_ascii=False, indent=2))
        for error in result["errors"]:
            print(f"error:    {error}")
    return 0
