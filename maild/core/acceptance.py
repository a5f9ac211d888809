"""Acceptance (验收): an owner's 完成 hands the deliverable in; the initiator accepts it or sends it
back with a reason, and only accepted work is done.

Pure transitions on a stored task (a dict) and `now`; the workflow decides who may make them and
sends the emails (`closeloop.py`). The task's states:

    (open) --完成--> submitted --验收通过--> done
                        |
                        +--退回修改 + reason--> returned --完成--> submitted …

Surprises worth knowing:

* Whether a task needs acceptance is the item's choice when its form says so (`验收：需要` /
  `Acceptance: yes`), else the configured default (`[workflow] acceptance`); emergencies never
  wait for it (the guide wants them fixed, not reviewed).
* Every hand-in is kept (`task["submissions"]`: note, attachments, when, the verdict and its
  reason), so the initiator sees what came back before, and the retrospective can count work
  accepted the first time it was handed in (`stats`).
* Returned work counts as `RETURNED_PROGRESS` (90 %) done, or what its owner last reported if
  more: it was handed in as finished and needs changes, so it is not chased as barely started
  (no "under 80 % before the deadline" reminder on top of the return), but its deadline stays
  and an overdue return is chased as any open task.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from maild.core.model import Attachment, TaskState

SUBMITTED = TaskState.SUBMITTED.value
RETURNED = TaskState.RETURNED.value
DONE = TaskState.DONE.value
RETURNED_PROGRESS = 90

_YES = re.compile(r"^(?:需要|要|是|需|必须|需验收|需要验收|验收|yes|y|true|on|required|needed)$",
                  re.IGNORECASE)
_TICKED = re.compile(r"(?:☑|■|√|✔|✓|\[[xX]\])\s*([^\s□☐☑■√✔✓\[]+)")
_NO = re.compile(r"^(?:不需要|不要|否|无需|无须|免|不用|不|no|n|false|off|not needed|none)$",
                 re.IGNORECASE)


def read_flag(text: str) -> bool | None:
    """What a form's 验收 field says: True (需要 / yes), False (不需要 / no), None (blank or
    unreadable: the configured default applies)."""
    value = unicodedata.normalize("NFKC", text or "").strip().strip("。.!！")
    if not value:
        return None
    ticked = _TICKED.search(value)  # a checkbox choice: "☐需要 ☑不需要"
    if ticked:
        value = ticked[1].strip("：:,，")
    if _NO.match(value):
        return False
    if _YES.match(value):
        return True
    return None


def required(item: Mapping[str, Any], default: bool) -> bool:
    """Does an owner's 完成 on this item wait for the initiator's acceptance?"""
    if item.get("kind") == "emergency":
        return False
    flag = item.get("acceptance")
    return default if flag is None else bool(flag)


def submit(task: dict[str, Any], now: datetime, by: str, note: str,
           attachments: Sequence[Attachment], message_id: str) -> dict[str, Any]:
    """The owner hands the work in: the task waits for the initiator's verdict. Returns the
    submission recorded."""
    before = task.get("progress") or 0
    if task.get("state") not in (SUBMITTED, DONE):
        task["progress_before_submit"] = int(before)
    submission = {
        "n": len(task.get("submissions", ())) + 1, "at": now.isoformat(), "by": by,
        "note": note, "message_id": message_id,
        "attachments": [{"filename": a.filename, "content_type": a.content_type, "size": a.size}
                        for a in attachments],
        "verdict": None,
    }
    task.setdefault("submissions", []).append(submission)
    task.update(state=SUBMITTED, progress=100, submitted_at=now.isoformat())
    task.setdefault("delivered_at", now.isoformat())  # the first hand-in: on time or not
    task.pop("returned_reason", None)
    return submission


def pending(task: Mapping[str, Any]) -> dict[str, Any] | None:
    """The submission waiting for a verdict, if any."""
    submissions = task.get("submissions") or ()
    if task.get("state") == SUBMITTED and submissions and submissions[-1].get("verdict") is None:
        return submissions[-1]
    return None


def approve(task: dict[str, Any], now: datetime, by: str, note: str = "") -> bool:
    """The initiator accepts the work: the task is done. False when nothing waits for a verdict."""
    submission = pending(task)
    if submission is None:
        return False
    submission.update(verdict="accepted", verdict_at=now.isoformat(), verdict_by=by,
                      reason=note)
    task.update(state=DONE, progress=100, accepted_at=now.isoformat(), accepted_by=by,
                done_at=now.isoformat())
    task.pop("progress_before_submit", None)
    return True


def send_back(task: dict[str, Any], now: datetime, by: str, reason: str) -> bool:
    """The initiator returns the work with a reason: back to its owner, deadline unchanged.
    False when nothing waits for a verdict."""
    submission = pending(task)
    if submission is None:
        return False
    submission.update(verdict="returned", verdict_at=now.isoformat(), verdict_by=by,
                      reason=reason)
    before = int(task.pop("progress_before_submit", 0) or 0)
    task.update(state=RETURNED, progress=max(before, RETURNED_PROGRESS),
                returned_reason=reason, returned_at=now.isoformat())
    # Owner reminders start over for the rework, as after a new deadline.
    task["sent"] = {k: v for k, v in (task.get("sent") or {}).items()
                    if k.startswith("unconfirmed")}
    return True


def first_time(task: Mapping[str, Any]) -> bool | None:
    """Was the task accepted the first time it was handed in? None when never accepted."""
    submissions = task.get("submissions") or ()
    if not submissions or submissions[-1].get("verdict") != "accepted":
        return None
    return len(submissions) == 1


def stats(tasks: Sequence[Mapping[str, Any]],
          history: Sequence[Mapping[str, Any]] = ()) -> dict[str, int]:
    """For the retrospective: tasks reviewed (accepted), accepted the first time, returns in all.
    `history` adds a series' retired occurrences (`series.history_entry`)."""
    accepted = first = returns = 0
    for task in tasks:
        verdicts = [s.get("verdict") for s in task.get("submissions") or ()]
        returns += verdicts.count("returned")
        if verdicts and verdicts[-1] == "accepted":
            accepted += 1
            first += len(verdicts) == 1
    for entry in history:
        rounds = int(entry.get("rounds") or 0)
        if rounds and entry.get("state") == DONE:
            accepted += 1
            first += rounds == 1
            returns += rounds - 1
    return {"accepted": accepted, "first_time": first, "returns": returns}
