"""A task's deadline as an iCalendar entry (RFC 5545, iTIP RFC 5546) for the owner's calendar.

The one job is `deadline_event(item, task, method, …)` → the bytes of one VCALENDAR with one
VEVENT, and `calendar_sequence(item, task)`, the entry's SEQUENCE derived from the item's audit
trail (so nothing extra is stored and a re-render gives the same number). Pure (icalendar).

Surprises worth knowing:
- The UID is per task (`md-0001-t-1@domain`), never per email: a moved deadline updates the
  same entry (SEQUENCE + 1) and a reassignment or close cancels it (METHOD:CANCEL,
  STATUS:CANCELLED) in the calendar of the owner who had it.
- A deadline at the end of the working day (a date without a time: "8月10日前") is an all-day
  entry on that date; one with a time is a 30-minute entry ending at the deadline, in UTC
  (every client converts it; no VTIMEZONE to get wrong).
- The owner is the ATTENDEE (already accepted: they confirmed) and maild's inbox the ORGANIZER,
  so Outlook and Gmail show the entry without asking for an answer. Links in the description
  are the owner's own reply address (pre-filled mailto:), never a web address.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

REQUEST, CANCEL = "REQUEST", "CANCEL"
_SEQUENCE_ACTIONS = frozenset({"deadline", "reassign", "close"})
WORDS = {
    "zh": {"due": "截止", "task": "任务", "deliverable": "交付标准", "item": "事项",
           "reply": "回复（进度、完成、延期）", "done": "标记完成", "progress": "更新进度",
           "done_body": "完成", "progress_body": "进度 50%"},
    "en": {"due": "due", "task": "Task", "deliverable": "Deliverable", "item": "Item",
           "reply": "Reply (progress, done, delay)", "done": "Mark done",
           "progress": "Update progress", "done_body": "done", "progress_body": "progress 50%"},
}


def uid_of(item_id: str, task_id: str, domain: str) -> str:
    return f"{item_id}-{task_id}@{domain}".lower()


def calendar_sequence(item: Mapping[str, Any], task_id: str) -> int:
    """How many times the task's entry changed: its deadline moves and reassignments, and the
    close (each bumps SEQUENCE, so calendars take the newest)."""
    return sum(1 for entry in item.get("audit", ())
               if entry.get("action") in _SEQUENCE_ACTIONS
               and (entry.get("task") == task_id or entry.get("action") == "close"))


def deadline_event(item: Mapping[str, Any], task: Mapping[str, Any], method: str, *,
                   owner: str, organizer: str, organizer_name: str, now: datetime,
                   tz: str, workday_end: time = time(18, 0),
                   reply_address: str = "") -> bytes:
    """One VCALENDAR (METHOD `method`) with the task's deadline as one VEVENT."""
    from icalendar import Calendar, Event, vCalAddress, vText

    words = WORDS.get(str(item.get("language", "zh"))[:2], WORDS["en"])
    zone = ZoneInfo(tz)
    deadline = datetime.fromisoformat(task["deadline"]).astimezone(zone)
    domain = organizer.rpartition("@")[2] or "localhost"
    calendar = Calendar()
    calendar.add("prodid", "-//maild//deadlines//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", method)
    event = Event()
    event.add("uid", uid_of(item["id"], task["id"], domain))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("sequence", calendar_sequence(item, task["id"]))
    if deadline.time().replace(second=0, microsecond=0) == workday_end:
        event.add("dtstart", deadline.date())
        event.add("dtend", deadline.date() + timedelta(days=1))
        event.add("transp", "TRANSPARENT")
    else:
        event.add("dtstart", (deadline - timedelta(minutes=30)).astimezone(UTC))
        event.add("dtend", deadline.astimezone(UTC))
    event.add("summary", f"[{item['id']} {task['id']}] {task['name']} · {words['due']}")
    lines = [f"{words['item']}: {item.get('title', '')}", f"{words['task']}: {task['name']}"]
    if task.get("deliverable"):
        lines.append(f"{words['deliverable']}: {task['deliverable']}")
    if reply_address and method == REQUEST:
        subject = f"[{item['id']} {task['id']}]"
        lines += ["", f"{words['reply']}: mailto:{reply_address}",
                  f"{words['progress']}: "
                  f"{_mailto(reply_address, subject, words['progress_body'])}",
                  f"{words['done']}: {_mailto(reply_address, subject, words['done_body'])}"]
    event.add("description", "\n".join(lines))
    organizer_address = vCalAddress(f"mailto:{organizer}")
    organizer_address.params["cn"] = vText(organizer_name)
    event.add("organizer", organizer_address)
    attendee = vCalAddress(f"mailto:{owner}")
    name = task.get("owner_name") or owner
    attendee.params["cn"] = vText(name)
    attendee.params["role"] = vText("REQ-PARTICIPANT")
    attendee.params["partstat"] = vText("ACCEPTED")
    attendee.params["rsvp"] = vText("FALSE")
    event.add("attendee", attendee)
    event.add("status", "CANCELLED" if method == CANCEL else "CONFIRMED")
    if method == REQUEST:
        event.add("priority", 1 if item.get("kind") == "emergency" else 5)
    calendar.add_component(event)
    return calendar.to_ical()


def _mailto(address: str, subject: str, body: str) -> str:
    return f"mailto:{address}?subject={quote(subject)}&body={quote(body)}"
