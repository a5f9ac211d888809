"""Tasks that wait on other tasks of the same item: reading 依赖, suggesting what a 备注 implies,
refusing cycles, and saying who waits on whom.

Pure. A dependency is stored on the waiting task as `depends_on: ["T-1", …]`, and only once it is
certain: written as such (a `依赖` field or column, or `依赖 T-1` / `depends on T-1` in the note),
or confirmed by the initiator (`依赖 T-3 T-1`, the receipt's button).

Surprises worth knowing:

* A note that only *implies* a dependency is never applied silently. The guide's template 1 has
  客诉应对流程培训 with the note "需产品部提供FAQ文档": 产品部 owns exactly one other task of the
  item (新品核心卖点提炼), so `suggest` proposes "T-3 waits on T-1" and the receipt asks. A note
  naming another task (its ID or its name), or the name or department of exactly one other
  task's owner beside a need word (需, 等, 待, 提供, needs, from …), is a suggestion; anything
  less certain (a department owning two tasks) is not.
* A task waits while any task it depends on is not done: handed in but not yet accepted is not
  done, nor is declined. A dependency on a task that no longer exists does not hold anything up.
* A cycle (T-1 waits on T-3, which waits on T-1) is refused wherever it would arise, with the
  loop spelled out (`cycle`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maild.core.model import TaskState

DONE = TaskState.DONE.value
CLOSED = frozenset({TaskState.DONE.value, TaskState.DECLINED.value})
MAX_CHAINS = 10  # chains shown for one item in a digest

_ID_RE = re.compile(r"(?<![A-Za-z0-9])T\s*-?\s*(\d{1,4})(?!\d)", re.IGNORECASE)
# "依赖 T-1", "depends on T-1", "等 T-1 完成", "T-1 之后", "after T-1": a dependency stated outright.
_EXPLICIT_RE = re.compile(
    r"(?:依赖|依賴|前置(?:任务)?|等待?|需等|待|after|depends? on|waits? (?:on|for)|blocked by|"
    r"requires?)\s*[:：]?\s*((?:T\s*-?\s*\d{1,4}(?:\s*(?:[、,，/&和及与]|and)\s*)?)+)"
    r"|((?:T\s*-?\s*\d{1,4}(?:\s*(?:[、,，/&和及与]|and)\s*)?)+)\s*(?:之后|以后|完成后|后)",
    re.IGNORECASE)
_NEED_RE = re.compile(r"需|要|等|待|依赖|依靠|提供|给出|输出|完成后|之后|确认后|"
                      r"\bneeds?\b|\brequires?\b|\bwaits?\b|\bafter\b|\bfrom\b|\bpending\b|"
                      r"\bprovided?\b|\bdepends?\b", re.IGNORECASE)
_MIN_NAME = 4  # a task name shorter than this is too common to count as a mention


@dataclass(frozen=True)
class Suggestion:
    """A dependency a note implies, to be confirmed by the initiator."""

    task: str  # the task that would wait ("T-3")
    on: str  # the task it would wait on ("T-1")
    text: str  # the words that imply it ("需产品部提供FAQ文档")
    how: str  # id | name | owner | department

    def to_dict(self) -> dict[str, str]:
        return {"task": self.task, "on": self.on, "text": self.text, "how": self.how}


def task_ids(text: str) -> list[str]:
    """Task IDs in `text`, in order, once each ("T1、t-2" → ["T-1", "T-2"])."""
    return list(dict.fromkeys(f"T-{int(n)}" for n in _ID_RE.findall(_norm(text))))


# A 依赖 column's cell that names rows by number: "1", "1、2", "#2", "任务1", "第1项".
_ROW_REFS_RE = re.compile(r"(?:(?:任务|任務|第|#|No\.?)?\s*\d{1,3}\s*(?:项|項|行|条|條)?"
                          r"\s*(?:[、,，;；/&和及与]|and)?\s*)+", re.IGNORECASE)


def column_ids(text: str) -> list[str]:
    """The tasks a 依赖 column's cell names: its task IDs ("T-1、T-2"), or row numbers alone
    ("1、2", "任务1": the form's first and second task are T-1 and T-2). A name is not read
    here (`suggest` asks about it)."""
    text = _norm(text).strip()
    if ids := task_ids(text):
        return ids
    if text and _ROW_REFS_RE.fullmatch(text):
        return list(dict.fromkeys(f"T-{int(n)}" for n in re.findall(r"\d{1,3}", text)))
    return []


def explicit(text: str) -> list[str]:
    """The tasks a field or note says outright that its task waits on ("依赖 T-1",
    "depends on T-1 and T-2", "T-1 完成后")."""
    found: list[str] = []
    for match in _EXPLICIT_RE.finditer(_norm(text)):
        found += task_ids(match.group(1) or match.group(2) or "")
    return list(dict.fromkeys(found))


def _norm(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def suggest(tasks: Sequence[Mapping[str, Any]]) -> list[Suggestion]:
    """Dependencies the tasks' notes imply but do not state (see the module docstring): one
    certain candidate per note, or none."""
    found: list[Suggestion] = []
    for task in tasks:
        note = shown = _norm(str(task.get("note") or "")).strip()
        if (column := _norm(str(task.get("depends") or "")).strip()) and not column_ids(column):
            # A 依赖 cell with a name or a department: a need by where it is written.
            note, shown = f"依赖 {column}", column
        if not note or task.get("depends_on") or explicit(note):
            continue
        others = [t for t in tasks if t["id"] != task["id"]]
        candidate = _named(note, others)
        if candidate is not None:
            found.append(Suggestion(task["id"], candidate[0], shown, candidate[1]))
    return found


def _named(note: str, others: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """(task id, how) of the one other task `note` names, or None."""
    ids = [i for i in task_ids(note) if any(t["id"] == i for t in others)]
    if len(ids) == 1:
        return ids[0], "id"
    folded = note.casefold()
    by_name = [t["id"] for t in others
               if len(str(t.get("name", ""))) >= _MIN_NAME and str(t["name"]).casefold() in folded]
    if len(by_name) == 1:
        return by_name[0], "name"
    if not _NEED_RE.search(note):
        return None
    for key, how in (("owner_name", "owner"), ("owner_department", "department")):
        hits = [t["id"] for t in others if t.get(key) and str(t[key]).casefold() in folded]
        if len(hits) == 1:
            return hits[0], how
        if hits:
            return None  # several tasks fit: not certain
    return None


def graph(tasks: Iterable[Mapping[str, Any]]) -> dict[str, list[str]]:
    return {str(t["id"]): list(t.get("depends_on") or ()) for t in tasks}


def cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A loop in the waits-on graph, as the path that closes it (["T-1", "T-3", "T-1"]), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in edges:
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges, key=_order):
        if node not in state and (found := visit(node)):
            return found
    return None


def _order(task_id: str) -> int:
    digits = re.sub(r"\D", "", task_id)
    return int(digits) if digits else 0


def check_add(tasks: Sequence[Mapping[str, Any]], task_id: str,
              on: Sequence[str]) -> tuple[str, list[str]]:
    """("", []) when `task_id` may wait on `on`; else (problem, detail): "no_task" with the IDs
    that are not tasks of the item, "self", or "cycle" with the loop it would close."""
    edges = graph(tasks)
    missing = [i for i in (task_id, *on) if i not in edges]
    if missing:
        return "no_task", missing
    if task_id in on:
        return "self", [task_id]
    edges[task_id] = list(dict.fromkeys([*edges[task_id], *on]))
    loop = cycle(edges)
    return ("cycle", loop) if loop else ("", [])


def by_id(item: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {str(t["id"]): t for t in item.get("tasks", ())}


def waiting_on(item: Mapping[str, Any], task: Mapping[str, Any],
               tasks: Mapping[str, Mapping[str, Any]] | None = None) -> list[Mapping[str, Any]]:
    """The tasks `task` still waits on (not done), in the order it names them."""
    tasks = by_id(item) if tasks is None else tasks
    return [tasks[i] for i in task.get("depends_on") or () if i in tasks
            and tasks[i].get("state") != DONE]


def blocks(item: Mapping[str, Any], task_id: str) -> list[Mapping[str, Any]]:
    """The open tasks that wait on `task_id` directly."""
    return [t for t in item.get("tasks", ()) if task_id in (t.get("depends_on") or ())
            and t.get("state") not in CLOSED]


def brief(task: Mapping[str, Any]) -> dict[str, Any]:
    """What an email says about a task waited on: id, name, owner, state, deadline."""
    return {"id": task["id"], "name": task.get("name", ""), "owner": task.get("owner", ""),
            "owner_name": task.get("owner_name") or task.get("owner", ""),
            "state": task.get("state", ""), "deadline": task.get("deadline"),
            "progress": int(task.get("progress") or 0)}


def newly_unblocked(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Open tasks of `after` that waited on something in `before` and wait on nothing now."""
    old, new = by_id(before), by_id(after)
    out = []
    for task_id, task in new.items():
        earlier = old.get(task_id)
        if earlier is None or not earlier.get("depends_on") or task.get("state") in CLOSED:
            continue
        if not waiting_on(before, earlier, old):
            continue
        if not waiting_on(after, task, new):
            out.append(task)
    return out


def chains(item: Mapping[str, Any]) -> list[list[str]]:
    """Who waits on whom among unfinished tasks, as paths from the first task that holds things
    up to the last that waits (["T-1", "T-3", "T-4"]: T-4 waits on T-3, which waits on T-1)."""
    tasks = by_id(item)
    open_ids = {i for i, t in tasks.items() if t.get("state") != DONE}
    waits = {i: [d for d in tasks[i].get("depends_on") or () if d in open_ids]
             for i in open_ids}
    waited_on = {d for deps in waits.values() for d in deps}
    ends = sorted((i for i in open_ids if waits[i] and i not in waited_on), key=_order)
    found: list[list[str]] = []

    def back(path: list[str]) -> None:
        if len(found) >= MAX_CHAINS:
            return
        deps = [d for d in waits[path[0]] if d not in path]
        if not deps:
            found.append(path)
            return
        for dep in deps:
            back([dep, *path])

    for end in ends:
        back([end])
    return found
