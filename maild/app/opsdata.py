"""The plain data behind `maild status/items/show/outbox` (ops.py wires and formats them).

Surprises:
- Listings never decode whole items: they search the stored item summaries (`index` table) as
  bytes, decode only the rows shown, and `status` counts states by pattern over those bytes, so
  they stay well under half a second at 50,000 open items.
- The functions take `now`; nothing here reads the clock.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from maild.adapters.store import OutboxEntry, Store, is_url
from maild.app.migrate import configured_store
from maild.core.config import Config

UNKNOWN = "unknown"




def status(store: Store, config: Config, now: datetime) -> dict[str, Any]:
    outbox_states = store.outbox_states()
    statuses = Counter(status for status, _at in outbox_states)
    due = [at for status, at in outbox_states if status == "queued" and at and at <= now]
    oldest = min(due, default=None)
    raw = b"\n".join(store.summary_docs())  # counted by pattern, not decoded: 50,000 items
    item_states = Counter(_ITEM_STATE.findall(raw))
    # (state, deadline) pairs counted first: a company's 150,000 tasks share a few hundred
    # pairs, so each deadline is parsed once, not once per task
    task_states: Counter[bytes] = Counter()
    overdue = 0
    for (state, deadline), count in Counter(_TASK_ROW.findall(raw)).items():
        task_states[state] += count
        if state not in _DONE_BYTES and deadline != b"null":
            when = _parse(deadline[1:-1].decode())
            overdue += count if when and when < now else 0
    next_runs = store.meta_get("next_runs")
    if isinstance(next_runs, list):  # [{name, at}] is accepted too
        next_runs = {str(r.get("name")): r.get("at") for r in next_runs if isinstance(r, dict)}
    holder = (None if is_url(configured_store(config)) or not config.data_dir.exists()
              else Store.lock_holder(config.data_dir))
    return {
        "config": str(config.path),
        "data_dir": str(config.data_dir),
        "daemon": {"running": holder is not None, "pid": holder},
        "queue_depth": statuses["queued"],
        "outbox": {"queued": statuses["queued"], "due_now": len(due),
                   "failed": statuses["failed"], "sent_kept": statuses["sent"],
                   "oldest_due_since": oldest.isoformat() if oldest else None,
                   "next_attempt_at": _iso(store.outbox_next_due())},
        "last_imap_contact": store.meta_get("last_imap_contact") or UNKNOWN,
        "next_runs": next_runs if isinstance(next_runs, dict) and next_runs else UNKNOWN,
        "items": dict(sorted((k.decode(), v) for k, v in item_states.items())),
        "tasks": dict(sorted((k.decode(), v) for k, v in task_states.items())),
        "overdue_tasks": overdue,
        "processed_emails": store.counts().get("processed", 0),
    }


TASK_DONE = {"done", "declined"}
_DONE_BYTES = {s.encode() for s in TASK_DONE}


_JSTR = rb'"[^"\\]*(?:\\.[^"\\]*)*"'
# A summary opens with `{"id":` and nothing inside it can (a quote in a string is escaped), so
# no `^`: a pattern that starts with a literal is searched for 4x faster than a line start.
_ITEM_STATE = re.compile(rb'\{"id":' + _JSTR + rb',"kind":' + _JSTR + rb',"state":"([a-z_]*)"')
_TASK_ROW = re.compile(rb'\[' + _JSTR + rb',"([a-z_]*)",' + _JSTR + rb',' + _JSTR + rb',('
                       + _JSTR + rb'|null)\]')


def _overdue(task: Mapping[str, Any], now: datetime) -> bool:
    deadline = _parse(task.get("deadline"))
    return bool(deadline and task.get("state") not in TASK_DONE and deadline < now)


def _task(row: Sequence[Any]) -> dict[str, Any]:
    """A task of an item summary ([id, state, owner, owner name, deadline]) as a dict."""
    return dict(zip(("id", "state", "owner", "owner_name", "deadline"), row, strict=False))


def matching(store: Store, *, states: Sequence[str] | None = None,
             owner: str | None = None) -> list[bytes]:
    """The summaries (`item_summary`, as stored) of the items `states` (the item's state or any
    of its tasks') and `owner` select, in table order. Cheap: the bytes are searched and only
    candidates are decoded."""
    wanted = {s.strip().lower() for s in states or () if s.strip()}
    who = (owner or "").strip().lower()
    found = store.summary_docs()
    if not wanted and not who:
        return found
    needles = [json.dumps(state).encode() for state in wanted]
    owner_needle = json.dumps(who, ensure_ascii=False).encode()[1:-1]
    chosen = []
    for text in found:
        if needles and not any(n in text for n in needles):
            continue
        if who and owner_needle not in text.lower():
            continue
        item = json.loads(text)
        if wanted and not (wanted & ({str(item.get("state", "open"))}
                                     | {str(t[1]) for t in item.get("tasks") or ()})):
            continue
        if who and not any(who == str(t[2]).lower() or who in str(t[3]).lower()
                           for t in item.get("tasks") or ()):
            continue
        chosen.append(text)
    return chosen


def items(store: Store, *, states: Sequence[str] | None = None,
          owner: str | None = None, limit: int | None = None,
          found: list[bytes] | None = None) -> list[dict[str, Any]]:
    """One row per item (the first `limit` that match, of `found` if given); see `matching`."""
    rows = []
    if found is None:
        found = matching(store, states=states, owner=owner)
    for item in map(json.loads, found[:limit or None]):
        tasks = [_task(t) for t in item.get("tasks") or ()]
        open_deadlines = [d for t in tasks if t.get("state") not in TASK_DONE
                          and (d := _parse(t.get("deadline")))]
        rows.append({
            "id": item["id"], "kind": item.get("kind", ""), "state": item.get("state", "open"),
            "title": item.get("title", ""), "initiator": item.get("initiator", ""),
            "tasks": len(tasks),
            "task_states": dict(sorted(Counter(str(t.get("state")) for t in tasks).items())),
            "owners": sorted({str(t.get("owner", "")) for t in tasks}),
            "next_deadline": _iso(min(open_deadlines)) if open_deadlines else None,
            "updated_at": item.get("updated_at"),
        })
    return rows


def show(store: Store, item_id: str) -> dict[str, Any] | None:
    item = store.get_item(item_id.strip().upper())
    if item is None:
        return None
    item["emails"] = [_outbox_row(e) for e in store.outbox_entries(item_id=item["id"])]
    return item


def outbox(store: Store, *, failed_only: bool = False) -> list[dict[str, Any]]:
    order = {"failed": 0, "queued": 1, "sent": 2}
    entries = store.outbox_entries("failed" if failed_only else None)
    return [_outbox_row(e) for e in sorted(entries, key=lambda e: order.get(e.status, 3))]


def _outbox_row(entry: OutboxEntry) -> dict[str, Any]:
    return {"message_id": entry.out.message_id, "status": entry.status,
            "to": list(entry.out.to), "subject": entry.out.subject, "kind": entry.out.kind,
            "item_id": entry.out.item_id, "attempts": entry.attempts,
            "next_attempt_at": _iso(entry.next_attempt_at), "sent_at": _iso(entry.sent_at),
            "code": entry.code, "last_error": entry.last_error}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


