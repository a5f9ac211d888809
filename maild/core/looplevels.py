"""What acceptance, dependencies and recurring tasks change in the schedules: who is chased for
what, and what digests show. Pure helpers the planner calls at a few points.

* Handed-in work (`submitted`) is the initiator's to review, not the owner's to finish: the
  owner's deadline levels (`before_deadline_hours`, `overdue`, `overdue_working_days`) hold while
  it waits, and the `unreviewed_hours` level reminds the initiator (working hours since the
  hand-in; each hand-in re-arms it).
* An overdue task that others wait on is escalated sooner: a level's `blocking_threshold`
  replaces its `threshold` while an open task depends on this one (same record key, so once).
* A reminder about a task that waits on another says what it waits on (`waits_on`), and one
  about a task others wait on says who waits (`blocks`).
* A digest groups a recurring task's series into one line (`series.summary`) and shows the
  chains of tasks waiting on each other (`dependencies.chains`, as "T-1 name" per task).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from maild.core import dependencies, series
from maild.core.model import TaskState

SUBMITTED = TaskState.SUBMITTED.value
DEADLINE_WHENS = frozenset({"before_deadline_hours", "overdue", "overdue_working_days"})
WHENS = {"unreviewed_hours": "task"}  # when → applies_to, beside the planner's own
ROW_ACTIONS = {SUBMITTED: "review"}  # a digest row's action for its initiator, by state


def holds(when: str, task: Mapping[str, Any]) -> bool:
    """Does this level wait while the task is handed in (its owner has delivered)?"""
    return when in DEADLINE_WHENS and task.get("state") == SUBMITTED


def unreviewed(key: str, threshold: float, task: Mapping[str, Any], sent: Mapping[str, Any],
               parse: Callable[[Any], datetime], add_working_hours: Callable[[datetime, float],
                                                                            datetime]
               ) -> tuple[datetime, datetime, str] | None:
    """(due moment, since, record key) of an `unreviewed_hours` level: `threshold` working
    hours after the task was handed in, while it still waits; None otherwise."""
    if task.get("state") != SUBMITTED or not task.get("submitted_at"):
        return None
    record = f"{key}@{task['submitted_at']}"
    if record in sent:
        return None
    since = parse(task["submitted_at"])
    return add_working_hours(since, threshold), since, record


def threshold(level_threshold: float, blocking_threshold: float | None,
              item: Mapping[str, Any], task: Mapping[str, Any]) -> float:
    """The level's threshold for this task: `blocking_threshold` while others wait on it."""
    if blocking_threshold is None or not dependencies.blocks(item, str(task["id"])):
        return level_threshold
    return min(level_threshold, blocking_threshold)


def level_facts(item: Mapping[str, Any], task: Mapping[str, Any]) -> dict[str, Any]:
    """What a reminder or escalation about `task` adds: what it waits on, who waits on it."""
    facts: dict[str, Any] = {}
    if task.get("depends_on"):
        waits = [dependencies.brief(t) for t in dependencies.waiting_on(item, task)]
        if waits:
            facts["waits_on"] = waits
    blocked = dependencies.blocks(item, str(task["id"]))
    if blocked:
        facts["blocks"] = [dependencies.brief(t) for t in blocked]
    return facts


def project_facts(item: Mapping[str, Any]) -> dict[str, Any]:
    """What a digest's line for `item` adds: its series, its waiting chains (as task IDs)."""
    facts: dict[str, Any] = {}
    if item.get("series"):
        facts["series"] = series.summary(item)
    if any(t.get("depends_on") for t in item.get("tasks", ())):
        tasks = dependencies.by_id(item)
        chains = [[f"{i} {tasks[i].get('name', '')}" for i in chain]
                  for chain in dependencies.chains(item)]
        if chains:
            facts["chains"] = chains
    return facts
