"""What an operator asks a running maild: how is it doing (`status`), what is open (`items`,
`show`), what is stuck (`outbox`); and the argparse wiring for all ops commands, including `check`,
whose checks live in checks.py.

Each command is a function that returns plain data (opsdata.py), a formatter that turns that data
into a human table, and `--json` that prints the data as it is. Exit codes: 0 ok; 1 a check failed; 66 no such
item or outbox entry; 65 the data needs `maild migrate`; 75 the daemon holds the lock (only
`outbox --retry` writes); 78 config error.

Surprises:
- Everything but `outbox --retry` reads the store read-only: no lock is taken, so these commands
  work next to the running daemon and show its last commit. They load only the tables they need
  and list items from their summaries (the store's `index` table), never decoding whole items.
- "Last IMAP contact" and "next scheduled runs" are whatever the daemon last committed under the
  meta keys `last_imap_contact` (ISO time) and `next_runs` ({name: ISO time}); "unknown" without.
- The functions take `now`; only `run_ops_command` reads the clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, tzinfo
from typing import Any, TextIO

from maild.adapters.store import FormatError, open_store
from maild.adapters.storeapi import LockError
from maild.app.checkreport import Painter, _pad, _width, format_checks
from maild.app.checks import run_checks
from maild.app.migrate import configured_store
from maild.app.opsdata import (  # noqa: F401 - the data functions are part of this module's interface
    TASK_DONE,
    UNKNOWN,
    _iso,
    _overdue,
    _parse,
    items,
    matching,
    outbox,
    show,
    status,
)
from maild.core.config import Config, ConfigError, load_config

EX_OK, EX_FAILED, EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, EX_CONFIG = 0, 1, 65, 66, 75, 78

OPS_EXAMPLES = {
    "check": "maild check -c config.toml   # config, IMAP login/folders/IDLE, SMTP; exit 0 = all pass\n"
             "  maild check --send-test li.na@corp.example",
    "status": "maild status -c config.toml\n  maild status --json | jq .outbox",
    "items": "maild items --state open --owner wang.zhe@corp.example\n"
             "  maild items --state awaiting_confirmation --limit 0 --json",
    "show": "maild show MD-0001\n  maild show MD-0001 --json",
    "outbox": "maild outbox --failed\n  maild outbox --retry maild.3f2a9c@corp.example",
}
HELP = {
    "check": "Validate the config, then test IMAP login, folder creation, IDLE support and SMTP "
             "submission (and, where [security] trust_authentication_results is set, whether a "
             "forged Authentication-Results reaches the inbox); print a green/red summary (exit "
             "0 all pass, 1 a check failed, 78 bad config).",
    "status": "Show queue depth, outbox backlog and failures, last IMAP contact, next scheduled "
              "runs and items by state (reads the store without the daemon's lock).",
    "items": "List items in the live database, optionally by state (item or task state) and owner.",
    "show": "Show one item: its fields, tasks, audit trail and its emails in the outbox "
            "(exit 66 when there is no such item).",
    "outbox": "List outgoing emails (queued first), or only failed ones; --retry ID puts a failed "
              "email back in the queue (needs the daemon stopped: exit 75 while it runs).",
}


# ---------------------------------------------------------------------------------------------
# CLI wiring


def add_ops_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register check/status/items/show/outbox with cli.py's `add(name, help)` helper (which
    adds -c and an epilog from `EXAMPLES[name]`, so cli.py must merge `OPS_EXAMPLES` first)."""
    check = add("check", HELP["check"])
    check.add_argument("--send-test", metavar="ADDRESS",
                       help="also send one test email to ADDRESS (nothing is sent without this)")
    check.add_argument("--timeout", type=float, default=15.0, metavar="S",
                       help="seconds per network step (default 15)")
    status = add("status", HELP["status"])
    items = add("items", HELP["items"])
    items.add_argument("--state", action="append", metavar="STATE",
                       help="open, closed, or a task state such as awaiting_confirmation, "
                            "in_progress, delayed, declined, blocked, submitted, returned, done "
                            "(repeatable)")
    items.add_argument("--owner", metavar="WHO", help="task owner: address or part of the name")
    items.add_argument("--limit", type=int, default=200, metavar="N",
                       help="list the first N items that match, oldest first (default 200; "
                            "0: all)")
    show = add("show", HELP["show"])
    show.add_argument("item_id", metavar="ID", help="item ID, e.g. MD-0001")
    outbox = add("outbox", HELP["outbox"])
    group = outbox.add_mutually_exclusive_group()
    group.add_argument("--failed", action="store_true", help="only emails that failed for good")
    group.add_argument("--retry", metavar="ID", help="Message-ID of a failed email to queue again")
    for sub in (check, status, items, show, outbox):
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")


def run_ops_command(args: argparse.Namespace, *, out: TextIO | None = None,
                    err: TextIO | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Carry out one ops subcommand; returns the exit code. The only place here that reads the
    clock and the environment."""
    out, err = out or sys.stdout, err or sys.stderr
    environ = os.environ if environ is None else environ
    paint = Painter(out.isatty() and not environ.get("NO_COLOR"))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        if args.command == "check" and not args.json:
            print(paint.line(False, "config", str(exc)), file=out)
        print(f"maild: configuration error: {exc}", file=err)
        return EX_CONFIG
    now = datetime.now(config.tz)
    if args.command == "check":
        checks = run_checks(config, environ=environ, send_test=args.send_test,
                            timeout=args.timeout, today=now.date(),
                            config_source=getattr(args, "config_source", "-c"))
        emit(out, args.json, [asdict(c) for c in checks], lambda: format_checks(checks, paint))
        return EX_OK if all(c.ok for c in checks) else EX_FAILED
    if args.command == "outbox" and args.retry:
        return _retry(config, args.retry, now, out, err)
    tables = {"status": ("meta", "index", "outbox", "processed"), "items": ("index",),
              "show": ("items", "outbox"), "outbox": ("outbox",)}[args.command]
    try:
        store = open_store(configured_store(config), inbox=config.inbox_address, readonly=True,
                           tables=tables)
    except FormatError as exc:
        print(f"maild: {exc}", file=err)
        return EX_DATAERR
    with store:
        if args.command == "status":
            data = status(store, config, now)
            emit(out, args.json, data, lambda: format_status(data, config.tz, now))
        elif args.command == "items":
            found = matching(store, states=args.state, owner=args.owner)
            rows = items(store, limit=args.limit, found=found)
            emit(out, args.json, rows, lambda: format_items(rows, config.tz, now, len(found)))
        elif args.command == "show":
            detail = show(store, args.item_id)
            if detail is None:
                print(f"maild: no item {args.item_id!r} in {config.data_dir} (closed items "
                      f"leave the live database; try `maild items`)", file=err)
                return EX_NOINPUT
            emit(out, args.json, detail, lambda: format_show(detail, config.tz, now))
        elif args.command == "outbox":
            rows = outbox(store, failed_only=args.failed)
            emit(out, args.json, rows, lambda: format_outbox(rows, config.tz, now))
        else:
            raise AssertionError(args.command)
    return EX_OK


def _retry(config: Config, message_id: str, now: datetime, out: TextIO, err: TextIO) -> int:
    message_id = message_id.strip().strip("<>")
    try:
        store = open_store(configured_store(config), inbox=config.inbox_address)
    except LockError as exc:
        print(f"maild: cannot retry while the daemon runs: {exc}. Stop it (systemctl stop "
              f"maild), retry, start it again.", file=err)
        return EX_TEMPFAIL
    with store:
        entry = store.outbox_entry(message_id)
        if entry is None:
            print(f"maild: no outbox entry {message_id!r} (see `maild outbox --failed`)", file=err)
            return EX_NOINPUT
        if entry.status != "failed":
            print(f"maild: {message_id} is {entry.status}, not failed; nothing to retry", file=err)
            return EX_FAILED
        store.outbox_requeue(message_id, now)
        store.commit()
    print(f"queued again: {message_id} (to {', '.join(entry.out.to)}); the daemon sends it on "
          f"its next run", file=out)
    return EX_OK


def emit(out: TextIO, as_json: bool, data: Any, human: Callable[[], str]) -> None:
    if as_json:
        print(json.dumps(data, ensure_ascii=False, indent=2, default=str), file=out)
    else:
        print(human(), file=out)


# ---------------------------------------------------------------------------------------------
# human formatting



def _cut(text: Any, width: int) -> str:
    text = " ".join(str(text if text is not None else "").split())
    if _width(text) <= width:
        return text
    out = ""
    for char in text:
        if _width(out + char) > width - 1:
            break
        out += char
    return out + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *,
          max_widths: Mapping[int, int] | None = None) -> str:
    """A plain aligned table; cells are single lines, cut at `max_widths[column]` columns."""
    limits = max_widths or {}
    cells = [[_cut(cell, limits.get(i, 60)) for i, cell in enumerate(row)] for row in rows]
    widths = [max([_width(h)] + [_width(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(_pad(c, w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def when(value: Any, tz: tzinfo, now: datetime) -> str:
    """An ISO time as local "2026-08-01 10:00 (3h ago)"; other values as they are."""
    moment = _parse(value) if not isinstance(value, datetime) else value
    if moment is None:
        return str(value) if value else "-"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    seconds = (moment - now).total_seconds()
    span = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if span >= size or unit == "s":
            amount = f"{int(span // size)}{unit}"
            break
    rel = f"in {amount}" if seconds > 0 else f"{amount} ago"
    return f"{moment.astimezone(tz):%Y-%m-%d %H:%M} ({rel})"


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "none"


def format_status(data: Mapping[str, Any], tz: tzinfo, now: datetime) -> str:
    box = data["outbox"]
    daemon = data["daemon"]
    runs = data["next_runs"]
    lines = [
        ("daemon", f"running (pid {daemon['pid']})" if daemon["running"] else "not running"),
        ("config", data.get("config", UNKNOWN)),
        ("data dir", data["data_dir"]),
        ("queue depth", f"{data['queue_depth']} email(s) queued"),
        ("outbox backlog", f"{box['due_now']} due now"
         + (f", oldest due since {when(box['oldest_due_since'], tz, now)}"
            if box["oldest_due_since"] else "")
         + (f"; next attempt {when(box['next_attempt_at'], tz, now)}"
            if box["next_attempt_at"] and not box["due_now"] else "")),
        ("outbox failures", f"{box['failed']} failed" + (" — see `maild outbox --failed`"
                                                          if box["failed"] else "")),
        ("sent (kept 7d)", str(box["sent_kept"])),
        ("last IMAP contact", when(data["last_imap_contact"], tz, now)
         if data["last_imap_contact"] != UNKNOWN else UNKNOWN),
        ("next runs", UNKNOWN if runs == UNKNOWN else "; ".join(
            f"{name} {when(at, tz, now)}" for name, at in sorted(runs.items()))),
        ("items", _counts(data["items"])),
        ("tasks", _counts(data["tasks"]) + (f"; {data['overdue_tasks']} overdue"
                                            if data["overdue_tasks"] else "")),
        ("emails processed", str(data["processed_emails"])),
    ]
    width = max(_width(k) for k, _ in lines)
    return "\n".join(f"{_pad(k, width)}  {v}" for k, v in lines)


def format_items(rows: Sequence[Mapping[str, Any]], tz: tzinfo, now: datetime,
                 total: int | None = None) -> str:
    if not rows:
        return "no items match"
    more = (f" of {total} (--limit 0 lists all)" if total is not None and total > len(rows)
            else "")
    body = [[r["id"], r["kind"], r["state"], r["title"], r["tasks"],
             _counts(r["task_states"]), when(r["next_deadline"], tz, now)] for r in rows]
    return table(["ID", "KIND", "STATE", "TITLE", "TASKS", "TASK STATES", "NEXT DEADLINE"],
                 body, max_widths={3: 36, 5: 44}) + f"\n{len(rows)} item(s){more}"


def format_show(item: Mapping[str, Any], tz: tzinfo, now: datetime) -> str:
    head = [
        ("item", f"{item['id']}  {item.get('kind', '')}  {item.get('state', 'open')}"),
        ("title", item.get("title", "")),
        ("initiator", f"{item.get('initiator_name', '')} <{item.get('initiator', '')}>"
                      + (f" / {item['initiator_department']}"
                         if item.get("initiator_department") else "")),
        ("goal", item.get("goal", "")), ("scope", item.get("scope", "")),
        ("created", when(item.get("created_at"), tz, now)),
        ("updated", when(item.get("updated_at"), tz, now)),
    ]
    width = max(_width(k) for k, _ in head)
    parts = ["\n".join(f"{_pad(k, width)}  {_cut(v, 100)}" for k, v in head if v)]
    tasks = item.get("tasks") or []
    parts.append("tasks\n" + table(
        ["ID", "TASK", "OWNER", "DEADLINE", "STATE", "%"],
        [[t.get("id"), t.get("name"), f"{t.get('owner_name', '')} <{t.get('owner', '')}>",
          when(t.get("deadline"), tz, now) + (" OVERDUE" if _overdue(t, now) else ""),
          t.get("state"), t.get("progress", 0)] for t in tasks],
        max_widths={1: 30, 2: 36}) if tasks else "tasks: none")
    audit = item.get("audit") or []
    parts.append("audit trail\n" + table(
        ["AT", "WHO", "ACTION", "TASK", "DETAIL"],
        [[when(a.get("at"), tz, now), a.get("who"), a.get("action"), a.get("task") or "",
          " ".join(f"{k}={v}" for k, v in (a.get("detail") or {}).items())] for a in audit],
        max_widths={1: 32, 4: 50}) if audit else "audit trail: empty")
    emails = item.get("emails") or []
    if emails:
        parts.append("emails\n" + _outbox_table(emails, tz, now))
    return "\n\n".join(parts)


def _outbox_table(rows: Sequence[Mapping[str, Any]], tz: tzinfo, now: datetime) -> str:
    def state(r: Mapping[str, Any]) -> str:
        if r["status"] == "sent":
            return f"sent {when(r['sent_at'], tz, now)}"
        if r["status"] == "queued":
            return f"queued, try {r['attempts'] + 1} {when(r['next_attempt_at'], tz, now)}"
        return f"failed after {r['attempts']}: {r['last_error']}"

    return table(["MESSAGE-ID", "TO", "SUBJECT", "STATUS"],
                 [[r["message_id"], ", ".join(r["to"]), r["subject"], state(r)] for r in rows],
                 max_widths={0: 44, 1: 32, 2: 40, 3: 60})


def format_outbox(rows: Sequence[Mapping[str, Any]], tz: tzinfo, now: datetime) -> str:
    if not rows:
        return "outbox is empty"
    tally = Counter(r["status"] for r in rows)
    return _outbox_table(rows, tz, now) + "\n" + _counts(dict(sorted(tally.items())))
