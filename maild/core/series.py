"""A recurring task's series, stored on its item: started at intake, its occurrences created
when due, confirmed once, stopped by the initiator, summed up for digests. The rules and their
calendar are `recurrence.py`'s.

Pure: no clock, no I/O. The service calls `create_due(item, now, cal)` (through
`closeloop.create_occurrences`) from its schedule run and commits the changed item with the
notices in one commit, as it does for reminders.

Surprises worth knowing:

* Creation is planned from the stored series (`next`: its due day and creation moment) and
  `now`: a daemon that was down creates each missed occurrence once, in order, and the series
  moves on in the same commit. At most `CATCH_UP` are created in one run.
* The owner confirms once for the series: an occurrence of a confirmed series starts as
  not_started; before the series is confirmed it awaits confirmation like the first task. A
  reassignment moves the series only while it is unconfirmed (the first owner declined it).
* A done or declined occurrence leaves `tasks` for `series.history` (a short record) when a newer
  one is created: the item, its status table and digests stay short for every-working-day series.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import Any

from maild.core.model import TaskState
from maild.core.recurrence import Rule, lead_days, next_due, working_days_before
from maild.core.workcal import WorkCalendar

CATCH_UP = 60  # occurrences created in one run at most (a long outage of an every-day series)
DONE_STATES = frozenset({TaskState.DONE.value, TaskState.DECLINED.value})




def start_series(item: dict[str, Any], rule: Rule, text: str, cal: WorkCalendar) -> None:
    """Make `item` (a daily task, its first task the first occurrence) a series: `item["series"]`
    with the rule, the template of its occurrences and the next one's day."""
    first = item["tasks"][0]
    deadline = cal.local(datetime.fromisoformat(first["deadline"]))
    created = cal.local(datetime.fromisoformat(item["created_at"])).date()
    rule = rule.anchor(deadline.date())
    first["occurrence"] = {"n": 1, "due": deadline.date().isoformat()}
    series: dict[str, Any] = {
        "rule": rule.to_dict(), "text": text.strip(),
        "lead": lead_days(rule, created, deadline.date(), cal),
        "time": deadline.time().isoformat(timespec="minutes"),
        "name": first["name"], "owner": first["owner"],
        "owner_name": first.get("owner_name", ""),
        "owner_department": first.get("owner_department", ""),
        "deliverable": first.get("deliverable", ""), "note": first.get("note", ""),
        "priority": first.get("priority", ""),
        "count": 1, "last_due": deadline.date().isoformat(), "history": [],
        "confirmed_at": None, "stopped_at": None,
    }
    series["next"] = _next(series, cal)
    item["series"] = series


def _next(series: Mapping[str, Any], cal: WorkCalendar) -> dict[str, str] | None:
    found = next_due(Rule.from_dict(series["rule"]), date.fromisoformat(series["last_due"]), cal)
    if found is None:
        return None
    nominal, due = found
    create_on = working_days_before(due, int(series["lead"]), cal)
    return {"nominal": nominal.isoformat(), "due": due.isoformat(),
            "create_at": cal.at(create_on, cal.workday_start).isoformat()}


def active(item: Mapping[str, Any]) -> bool:
    """Will this item create more occurrences? (A series not stopped.)"""
    series = item.get("series")
    return bool(series) and not series.get("stopped_at") and series.get("next") is not None


def next_moment(item: Mapping[str, Any]) -> datetime | None:
    """When the next occurrence is created (None: no series, or stopped)."""
    if not active(item) or item.get("state", "open") != "open":
        return None
    return datetime.fromisoformat(item["series"]["next"]["create_at"])


def confirm(item: dict[str, Any], task: Mapping[str, Any], now: datetime) -> None:
    """The owner's confirmation of an occurrence confirms the series when it is the series'
    owner's: later occurrences start without asking again."""
    series = item.get("series")
    if series and task.get("owner") == series["owner"] and not series.get("confirmed_at"):
        series["confirmed_at"] = now.isoformat()


def reassigned(item: dict[str, Any], task: Mapping[str, Any]) -> None:
    """A reassignment moves the series to the new owner while the series is unconfirmed (the
    first owner declined it); later, it moves that one occurrence only."""
    series = item.get("series")
    if series and not series.get("confirmed_at"):
        series.update(owner=task["owner"], owner_name=task.get("owner_name", ""),
                      owner_department=task.get("owner_department", ""))


def stop(item: dict[str, Any], now: datetime, by: str) -> bool:
    """Stop the series (停止重复): no more occurrences; open ones stay. False when there is no
    active series."""
    if not active(item):
        return False
    item["series"].update(stopped_at=now.isoformat(), stopped_by=by)
    return True


def occurrence_name(name: str, due: date, language: str) -> str:
    label = f"{due.month}月{due.day}日" if language == "zh" else f"{due:%b} {due.day}"
    return f"{name}（{label}）" if language == "zh" else f"{name} ({label})"


def create_due(item: Mapping[str, Any], now: datetime, cal: WorkCalendar
               ) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """Every occurrence whose creation moment has come: (the changed item, the new tasks), or
    None when none is due. Occurrences that are done or declined leave for the history."""
    if not active(item) or item.get("state", "open") != "open":
        return None
    if now < datetime.fromisoformat(item["series"]["next"]["create_at"]):
        return None
    item = copy.deepcopy(item)
    series = item["series"]
    new: list[dict[str, Any]] = []
    number = _next_number(item)
    while len(new) < CATCH_UP and series.get("next") and now >= datetime.fromisoformat(
            series["next"]["create_at"]):
        due = date.fromisoformat(series["next"]["due"])
        task = _occurrence(item, series, number, due, now, cal)
        new.append(task)
        number += 1
        series.update(count=int(series["count"]) + 1, last_due=due.isoformat())
        series["next"] = _next(series, cal)
    _retire(item, keep={t["id"] for t in new})
    item["tasks"].extend(new)
    series["next_number"] = number
    item["updated_at"] = now.isoformat()
    return item, new


def _next_number(item: Mapping[str, Any]) -> int:
    used = [int(t["id"].split("-")[1]) for t in item.get("tasks", ())]
    used += [int(h["id"].split("-")[1]) for h in item["series"].get("history", ())]
    return max([int(item["series"].get("next_number", 0)), *(n + 1 for n in used), 1])


def _occurrence(item: Mapping[str, Any], series: Mapping[str, Any], number: int, due: date,
                now: datetime, cal: WorkCalendar) -> dict[str, Any]:
    deadline = cal.at(due, time.fromisoformat(series["time"]))
    confirmed = bool(series.get("confirmed_at"))
    task = {
        "id": f"T-{number}",
        "name": occurrence_name(series["name"], due, str(item.get("language", "zh"))),
        "owner": series["owner"], "owner_name": series.get("owner_name", ""),
        "owner_department": series.get("owner_department", ""),
        "deadline": deadline.isoformat(), "deadline_text": due.isoformat(),
        "deliverable": series.get("deliverable", ""), "note": series.get("note", ""),
        "state": (TaskState.NOT_STARTED if confirmed else TaskState.AWAITING_CONFIRMATION).value,
        "progress": 0, "confirmed_at": series["confirmed_at"] if confirmed else None,
        "confirmed_by": series["owner"] if confirmed else None,
        "updated_at": now.isoformat(), "assigned_at": now.isoformat(), "round": 1,
        "occurrence": {"n": int(series["count"]) + 1, "due": due.isoformat(),
                       "nominal": series["next"]["nominal"]},
    }
    if series.get("priority"):
        task["priority"] = series["priority"]
    return task


def _retire(item: dict[str, Any], keep: set[str]) -> None:
    """Done and declined occurrences leave `tasks` for the series' history."""
    series = item["series"]
    stay = []
    for task in item["tasks"]:
        if task["id"] in keep or task.get("state") not in DONE_STATES:
            stay.append(task)
            continue
        series["history"].append(history_entry(task))
    item["tasks"] = stay


def history_entry(task: Mapping[str, Any]) -> dict[str, Any]:
    """What the series keeps of a finished occurrence: enough for digests and the record."""
    done_at = task.get("done_at")
    deadline = task.get("deadline")
    on_time = (bool(done_at and deadline) and datetime.fromisoformat(done_at)
               <= datetime.fromisoformat(deadline)) if task.get("state") == "done" else None
    entry = {"id": task["id"], "name": task.get("name", ""), "owner": task.get("owner", ""),
             "due": (task.get("occurrence") or {}).get("due", str(deadline or "")[:10]),
             "state": task.get("state"), "done_at": done_at, "on_time": on_time}
    submissions = task.get("submissions") or []
    if submissions:
        entry["rounds"] = len(submissions)
    return entry


def summary(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A series in one line's facts (digests, status): the rule as written, how many occurrences
    so far, how many done (on time), declined, open, and the next due day."""
    series = item.get("series")
    if not series:
        return None
    history = series.get("history", ())
    tasks = item.get("tasks", ())
    finished = [*history, *(history_entry(t) for t in tasks if t.get("state") in DONE_STATES)]
    return {
        "text": series.get("text", ""), "count": int(series.get("count", 1)),
        "done": sum(1 for h in finished if h["state"] == "done"),
        "on_time": sum(1 for h in finished if h.get("on_time")),
        "declined": sum(1 for h in finished if h["state"] == "declined"),
        "open": sum(1 for t in tasks if t.get("state") not in DONE_STATES),
        "next_due": (series.get("next") or {}).get("due") if active(item) else None,
        "stopped": bool(series.get("stopped_at")),
    }
