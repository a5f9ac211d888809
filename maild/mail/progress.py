"""The numbers behind the progress bars and the timeline every email shows: per task and per item.

The one job is `progress_facts(item, now)` → how far each task is (0–100, done counts 100),
the item's overall share, and for the timeline each open task's share of its time used (from
assignment to deadline, today's place on it), its days left or overdue. Pure; the status table
(`statustable.py`) and a digest's rows draw them. Surprise: a declined task counts as not started
(it is waiting for a new owner) and a deadline with no assignment date starts at the item's
creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

DONE = "done"
BAR_CELLS = 10  # the text bar: [######----]


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def task_percent(task: Mapping[str, Any]) -> int:
    if task.get("state") == DONE:
        return 100
    try:
        return max(0, min(100, int(task.get("progress") or 0)))
    except (TypeError, ValueError):
        return 0


def progress_facts(item: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """Per task: percent and timeline; per item: overall percent, done and total."""
    tasks = list(item.get("tasks") or ())
    percents = {str(t.get("id")): task_percent(t) for t in tasks}
    total = len(tasks)
    done = sum(1 for t in tasks if t.get("state") == DONE)
    overall = round(sum(percents.values()) / total) if total else 0
    timeline = []
    for task in tasks:
        deadline = _when(task.get("deadline"))
        if deadline is None:
            continue
        start = _when(task.get("assigned_at")) or _when(item.get("created_at")) or now
        span = (deadline - start).total_seconds()
        used = (now - start).total_seconds()
        share = 100 if span <= 0 else max(0, min(100, round(100 * used / span)))
        local_now = now.astimezone(deadline.tzinfo) if deadline.tzinfo else now
        days = (deadline.date() - local_now.date()).days
        finished = task.get("state") == DONE
        timeline.append({
            "id": task.get("id"), "name": task.get("name", ""), "deadline": task.get("deadline"),
            "elapsed": share, "days_left": days, "overdue": not finished and now > deadline,
            "due_today": not finished and days == 0 and now <= deadline, "done": finished,
            "percent": percents[str(task.get("id"))]})
    return {"overall": overall, "done": done, "total": total, "percents": percents,
            "timeline": timeline, "bar": text_bar(overall)}


def text_bar(percent: int) -> str:
    filled = round(percent * BAR_CELLS / 100)
    return "[" + "#" * filled + "-" * (BAR_CELLS - filled) + f"] {percent}%"


# ── the bars' HTML, shared by the status table and the digest rows ───────────────────────────

_GREEN, _AMBER, _GREY, _TRACK = "#2da44e", "#bf8700", "#8c959f", "#e5e8eb"


def bar_html(percent: int, colour: str = _GREEN, height: int = 8) -> str:
    """A bar as Outlook's Word engine keeps it: one table row, the filled cell `percent` wide by
    its width attribute and coloured by bgcolor (no div widths, no background images)."""
    percent = max(0, min(100, int(percent)))
    cell = (f'height="{height}" style="height:{height}px;font-size:0;line-height:0;'
            f'mso-line-height-rule:exactly;')
    filled = (f'<td width="{percent}%" bgcolor="{colour}" {cell}width:{percent}%;'
              f'background-color:{colour};">&nbsp;</td>' if percent > 0 else "")
    rest = (f'<td width="{100 - percent}%" bgcolor="{_TRACK}" {cell}width:{100 - percent}%;'
            f'background-color:{_TRACK};">&nbsp;</td>' if percent < 100 else "")
    return ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
            f'style="width:100%;border-collapse:collapse;"><tr>{filled}{rest}</tr></table>')


def task_bar_html(state: str, progress: Any) -> str:
    """The small bar under a task's state: none while it waits for an owner."""
    if state in ("awaiting_confirmation", "declined"):
        return ""
    percent = 100 if state == DONE else task_percent({"progress": progress})
    colour = _GREY if state == DONE else _AMBER if state in ("blocked", "delayed") else _GREEN
    return f'<div style="padding:6px 0 0;">{bar_html(percent, colour, 6)}</div>'
