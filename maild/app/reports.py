"""Read-only reports for people: `maild digest --preview` and `maild lessons`.

Both read committed state only (the live store without its lock, the archive index) and send
nothing: the preview shows exactly what the daemon's next schedule tick would send now (one
entry per email: an email that combines one person's reminders lists all their `records`), the
lessons page collects the 可优化点 of closed projects so the next initiator learns from the last.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from maild.adapters import archive
from maild.adapters.store import open_store
from maild.app.migrate import configured_store
from maild.core import baseline, planner
from maild.core.config import Config, load_config
from maild.core.model import Notice
from maild.mail.record import RecordRenderer

REPORT_EXAMPLES = {
    "digest": "maild digest --preview            # what the next tick would send, not sent\n"
              "  maild digest --preview --at 2026-08-04T09:00 --json",
    "lessons": "maild lessons                     # 可优化点 of closed projects, newest first\n"
               "  maild lessons --lang en --html lessons.html",
}


def add_report_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    digest = add("digest", "Preview the digests, reminders and escalations due now, rendered "
                           "as they would be sent (nothing is sent or recorded).")
    digest.add_argument("--preview", action="store_true", required=True,
                        help="required: only preview (sending is the daemon's job)")
    digest.add_argument("--at", metavar="ISO", help="plan as if it were this local time")
    digest.add_argument("--json", action="store_true", help="print JSON for scripts")
    lessons = add("lessons", "Collect the retrospectives' 可优化点 of closed projects into one "
                             "knowledge page (from the archive index).")
    lessons.add_argument("--lang", choices=("zh", "en"), default="zh", help="page language")
    lessons.add_argument("--html", type=Path, metavar="FILE", help="also write the HTML page")
    lessons.add_argument("--limit", type=int, default=200, help="newest N projects (default 200)")


def run_report_command(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    config = load_config(args.config)
    if args.command == "digest":
        now = (datetime.fromisoformat(args.at).replace(tzinfo=config.tz) if args.at
               else datetime.now(config.tz))
        previews = digest_preview(config, now, met_at=datetime.now(config.tz))
        if args.json:
            out.write(json.dumps(previews, ensure_ascii=False, indent=2) + "\n")
        elif not previews:
            out.write(f"nothing is due at {now:%Y-%m-%d %H:%M %Z}\n")
        for entry in [] if args.json else previews:
            out.write(f"\n── {entry['kind']} → {', '.join(entry['to'])}"
                      f"{'  (cc ' + ', '.join(entry['cc']) + ')' if entry['cc'] else ''}\n"
                      f"   Subject: {entry['subject']}\n\n{entry['text']}\n")
        return 0
    md, html = archive.lessons(config.archive_dir, language=args.lang, limit=args.limit,
                               renderer=RecordRenderer(config.templates_dir / "archive"))
    out.write(md if md.endswith("\n") else md + "\n")
    if args.html:
        args.html.write_text(html, encoding="utf-8")
    return 0


def digest_preview(config: Config, now: datetime,
                   met_at: datetime | None = None) -> list[dict[str, Any]]:
    """Everything the schedule would send at `now`, rendered; the store is only read. People
    the daemon has not met yet are met at `met_at` (the real time: the running daemon meets
    them within a tick), or at `now` if that is earlier (`baseline.seed`)."""
    from maild.app.wiring import Rules, load_secret, make_renderer, notice_addresses

    rules = Rules.from_config(config)
    # the configured store, PostgreSQL included (a data dir alone would read as empty there)
    store = open_store(configured_store(config), inbox=config.inbox_address, readonly=True)
    try:
        items = store.open_items()
        memory = baseline.seed(items, store.schedule_state(),
                               min(met_at, now) if met_at else now, rules.schedules,
                               rules.calendar)
        planned, _state = planner.plan(items, now, rules.schedules, rules.calendar,
                                       rules.people, memory)
    finally:
        store.close()
    renderer = make_renderer(config)  # as the daemon renders: tokens in subjects if need be
    secret = load_secret(config, {}) if config.secret_file.exists() else b"preview"
    domain = config.inbox_address.partition("@")[2]
    previews = []
    for n, entry in enumerate(planned):
        notice = entry.notice
        message_id = f"preview.{n}@{domain}"
        reply_address, addresses, per_task = None, {}, {}
        if notice.to:
            reply_address, addresses, per_task = notice_addresses(
                secret, config.inbox_address, notice, notice.to[0], now.date(), message_id)
        out = renderer.render(Notice(**notice.__dict__), message_id=message_id, date=now,
                              reply_address=reply_address,
                              action_addresses=addresses, task_addresses=per_task)
        previews.append({"kind": out.kind, "to": list(out.to), "cc": list(out.cc),
                         "subject": out.subject, "text": out.text,
                         "records": [list(record) for record in entry.records]})
    return previews
