"""A read form checked and laid out as the items it will become: owners found, deadlines read.

The one job is `plan(form, sender, ctx, now)` → `Plan`: the items to create (`groups`, with their
tasks as they will be stored, before ids are given), every problem that must be fixed first
(`errors`), what the receipt should tell the initiator (`notes`, `suggestions`), and whether the
reading needs the initiator's word before it becomes an item (`uncertain`). Pure.

Surprises worth knowing:
- A daily-task table with several rows plans several items (one task each), never a project.
- 完成状态 / 当前进度 set the task's state: 已完成 or 100% is done, 进行中 or a progress in
  between is in progress, 延期 is delayed; otherwise it awaits its owner's confirmation.
- An owner named by role, department or title is resolved when exactly one person fits; the
  receipt says how ("产品部*经理 → 王喆"). Several fit: one error listing them; none: one error.
  An owner outside `allowed_domains` and `external_owners` is an error: never mailed.
- A deadline on a weekend or holiday is kept; a note names the working day before it (the
  guide: leave a buffer). A task due sooner than the buffer days gets a note too.
- A kickoff (tasks read from 需配合 sentences) is uncertain when a clause could not be read or an
  owner was found by department or role rather than by name or address.
- Suggestions never block: a project without 目标/背景, tasks without 交付标准 (guide steps 1, 4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from maild.core.dates import parse_deadline, previous_workday
from maild.core.model import FieldError, FormResult, ItemKind, Person, TaskDraft, TaskState
from maild.core.people import OwnerMatch
from maild.core.phrases import has_han
from maild.core.trust import may_own

MAX_CANDIDATES = 8  # listed when an owner text fits several people
_PLAIN_HOW = frozenset({"address", "name", "alias"})


@dataclass(frozen=True)
class Plan:
    groups: tuple[dict[str, Any], ...]  # one per item: kind, title, fields, participants, tasks
    errors: tuple[FieldError, ...]
    notes: tuple[dict[str, Any], ...]  # {group, task, kind: owner|workday|buffer, ...}
    suggestions: tuple[str, ...]  # field keys worth adding (goal, deliverable)
    uncertain: bool


def plan(form: FormResult, sender: str, ctx: Any, now: datetime) -> Plan:
    """Check every task of `form` (sent by `sender`) and lay out the items it makes."""
    kind = form.kind or ItemKind.TASK
    fields = dict(form.fields)
    errors = [e for e in form.errors if not (e.field == "initiator" and e.code == "missing")]
    participants = split_people(fields.get("participants", ""))
    tasks: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    cooperation = fields.get("cooperation", "")
    uncertain = form.source == "kickoff" and any(line in cooperation for line in form.unread)
    for number, draft in enumerate(form.tasks, start=1):
        owner_text = draft.owner
        if form.source == "kickoff":
            owner_text = _participant_for(draft.owner, participants, ctx) or draft.owner
        task, task_errors, task_notes = _task(draft, number, owner_text, kind, ctx, now)
        # A field the form already reported missing (a task form's own owner) is named once.
        missing = {e.field for e in errors if e.task is None and e.code == "missing"}
        errors.extend(e for e in task_errors
                      if not (e.field in missing and e.code in ("missing", "owner_missing")))
        if task is not None:
            tasks.append({**task, "_number": number})
            notes.extend(task_notes)
            uncertain = uncertain or (form.source == "kickoff" and any(
                n["kind"] == "owner" and n["how"] not in _PLAIN_HOW for n in task_notes))
    groups = _groups(kind, fields, participants, form.tasks, tasks)
    for note in notes:  # which item each note is about, once tasks are spread over items
        note["group"], note["task"] = _place(note.pop("number"), kind, len(groups))
    return Plan(tuple(groups), tuple(errors), tuple(notes), _suggestions(kind, fields, tasks),
                uncertain)


def _task(draft: TaskDraft, number: int, owner_text: str, kind: ItemKind, ctx: Any,
          now: datetime) -> tuple[dict[str, Any] | None, list[FieldError], list[dict[str, Any]]]:
    errors: list[FieldError] = []
    notes: list[dict[str, Any]] = []
    due_field = "eta" if kind is ItemKind.EMERGENCY else "deadline"
    if not draft.name.strip():
        errors.append(FieldError("title", "missing", "", number))
    match: OwnerMatch = ctx.people.match(owner_text)
    owners = match.people
    if not owner_text.strip():
        errors.append(FieldError("owner", "owner_missing", "", number))
    elif not owners:
        errors.append(FieldError("owner", "owner_unknown", owner_text, number))
    elif len(owners) > 1 or not owners[0].address:
        errors.append(FieldError("owner", "owner_many", owner_text, number,
                                 candidates(p for p in owners if p.address)))
    elif not may_own(owners[0].address, ctx):
        # Never mail outside on an email's word: anyone may write a project in a name.
        errors.append(FieldError("owner", "owner_external", owner_text, number))
    workdays = getattr(ctx, "workdays", None)
    deadline = parse_deadline(draft.deadline, now, workday_end=ctx.workday_end, workdays=workdays)
    if not draft.deadline.strip():
        errors.append(FieldError(due_field, "missing", "", number))
    elif deadline.error:
        code = "date_past" if deadline.error == "past" else "date_unparseable"
        errors.append(FieldError(due_field, code, draft.deadline, number))
    if errors:
        return None, errors, notes
    owner = owners[0]
    assert deadline.value is not None
    if match.how not in ("address", "name"):  # found by role, department, title or alias
        notes.append({"number": number, "kind": "owner", "text": owner_text.strip(),
                      "name": owner.name, "how": match.how})
    day = deadline.value.date()
    if workdays is not None and not workdays(day) or workdays is None and day.weekday() >= 5:
        before = datetime.combine(previous_workday(day, workdays), deadline.value.timetz())
        notes.append({"number": number, "kind": "workday", "deadline": deadline.value.isoformat(),
                      "before": before.isoformat()})
    elif kind is not ItemKind.EMERGENCY and (
            deadline.value - now).total_seconds() < ctx.buffer_days * 86400:
        days = ctx.buffer_days
        notes.append({"number": number, "kind": "buffer",
                      "days": int(days) if float(days).is_integer() else days})
    state, progress = _state(draft)
    task = {
        "name": draft.name.strip(), "owner": owner.address, "owner_name": owner.name,
        "owner_department": owner.department, "owner_text": owner_text.strip(),
        "deadline": deadline.value.isoformat(), "deadline_text": draft.deadline,
        "deliverable": draft.deliverable.strip(), "note": draft.note.strip(),
        "state": state, "progress": progress, "confirmed_at": None, "confirmed_by": None,
        "round": 1,
    }
    for key in ("priority", "feedback", "depends"):
        if getattr(draft, key):
            task[key] = getattr(draft, key)
    return task, errors, notes


def _state(draft: TaskDraft) -> tuple[str, int]:
    """The state and progress 完成状态 and 当前进度 give a new task."""
    m = re.match(r"(\d{1,3})", draft.progress)
    progress = min(100, int(m[1])) if m else 0
    if draft.status == TaskState.DONE.value or progress >= 100:
        return TaskState.DONE.value, 100
    if draft.status == TaskState.DELAYED.value:
        return TaskState.DELAYED.value, progress
    if draft.status == TaskState.IN_PROGRESS.value or progress > 0:
        return TaskState.IN_PROGRESS.value, progress
    return TaskState.AWAITING_CONFIRMATION.value, progress


def _groups(kind: ItemKind, fields: Mapping[str, str], participants: list[str],
            drafts: tuple[TaskDraft, ...], tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items: one per row of a daily-task table, else one with every task."""
    tasks = [dict(task) for task in tasks]
    numbers = [task.pop("_number") for task in tasks]
    if kind is ItemKind.TASK and len(drafts) > 1:
        groups = []
        for number, task in zip(numbers, tasks, strict=True):
            draft = drafts[number - 1]
            row_fields = {**{k: v for k, v in fields.items() if k not in _ROW_KEYS},
                          **dict(draft.row), "title": draft.name, "owner": draft.owner,
                          "deadline": draft.deadline}
            for key in ("priority", "progress", "note", "feedback", "deliverable"):
                if getattr(draft, key):
                    row_fields[key] = getattr(draft, key)
            if depends := task.pop("depends", ""):
                # Each row is an item of its own, so a row cannot wait on another: the 依赖
                # cell stays readable in the note instead of being read as "T-1 waits on T-1".
                zh = has_han([draft.name])
                said = f"依赖：{depends}" if zh else f"Depends on: {depends}"
                task["note"] = ("；" if zh else "; ").join(filter(None, (task["note"], said)))
            groups.append({"kind": kind.value, "title": draft.name, "fields": row_fields,
                           "participants": participants, "tasks": [{**task, "id": "T-1"}]})
        return groups
    title = fields.get("title") or (tasks[0]["name"] if tasks else "")
    numbered = [{**task, "id": f"T-{n}"} for n, task in enumerate(tasks, start=1)]
    return [{"kind": kind.value, "title": title, "fields": dict(fields),
             "participants": participants, "tasks": numbered}]


_ROW_KEYS = frozenset({"title", "owner", "deadline", "priority", "progress", "note", "feedback",
                       "deliverable", "initiator"})


def _place(number: int, kind: ItemKind, groups: int) -> tuple[int, str]:
    """(item index, task id) of the form's task `number` (1-based)."""
    if kind is ItemKind.TASK and groups > 1:
        return number - 1, "T-1"
    return 0, f"T-{number}"


def _suggestions(kind: ItemKind, fields: Mapping[str, str],
                 tasks: list[dict[str, Any]]) -> tuple[str, ...]:
    found = []
    if kind is ItemKind.PROJECT and not fields.get("goal"):
        found.append("goal")
    if kind is not ItemKind.EMERGENCY and tasks and not any(t["deliverable"] for t in tasks):
        found.append("deliverable")
    return tuple(found)


def _participant_for(who: str, participants: list[str], ctx: Any) -> str | None:
    """The participant a kickoff clause's department stands for ("产品部" → "产品部总监"), when
    exactly one participant belongs to it and names one person."""
    fitting = [p for p in participants if p != who and p.startswith(who)]
    if len(fitting) == 1 and len(ctx.people.match(fitting[0]).people) == 1:
        return fitting[0]
    return None


def candidates(people: Any) -> tuple[str, ...]:
    """How to tell candidates apart: "王磊（销售部 主管）<wang.lei2@corp.example>"."""
    listed: list[Person] = list(people)
    shown = [f"{p.name}（{' '.join(x for x in (p.department, p.title) if x)}）<{p.address}>"
             if p.department or p.title else f"{p.name} <{p.address}>"
             for p in listed[:MAX_CANDIDATES]]
    if len(listed) > MAX_CANDIDATES:
        shown.append(f"… +{len(listed) - MAX_CANDIDATES}")
    return tuple(shown)


def split_people(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[、,，;；]+", text) if part.strip()]

