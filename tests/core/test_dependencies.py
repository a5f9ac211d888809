"""Dependencies between tasks of one item: stated, suggested from the guide's 备注, chains, cycles
refused, and who is unblocked when."""

from __future__ import annotations

import pytest

from maild.core import dependencies
from maild.core.dependencies import Suggestion


def guide_tasks(**notes: str) -> list[dict]:
    """Template 1 of the guide, as maild stores its tasks."""
    tasks = [
        {"id": "T-1", "name": "新品核心卖点提炼", "owner": "wang.zhe@corp.example",
         "owner_name": "王喆", "owner_department": "产品部", "note": "需结合用户调研数据"},
        {"id": "T-2", "name": "渠道推广方案制定", "owner": "zhao.lei@corp.example",
         "owner_name": "赵磊", "owner_department": "销售部", "note": "预算上限待财务部确认"},
        {"id": "T-3", "name": "客诉应对流程培训", "owner": "chen.jing@corp.example",
         "owner_name": "陈静", "owner_department": "客服部", "note": "需产品部提供FAQ文档"},
    ]
    for task in tasks:
        task.setdefault("state", "not_started")
        key = task["id"].replace("-", "").lower()
        if key in notes:
            task["note"] = notes[key]
    return tasks


def test_the_guides_note_suggests_a_dependency_on_the_one_task_of_that_department() -> None:
    assert dependencies.suggest(guide_tasks()) == [
        Suggestion("T-3", "T-1", "需产品部提供FAQ文档", "department")]


@pytest.mark.parametrize("note, expected", [
    ("等新品核心卖点提炼出来再做", ("T-1", "name")),
    ("需王喆先给出卖点", ("T-1", "owner")),
    ("参考 T-2 的渠道", ("T-2", "id")),
    ("产品部的同事也会参加", None),  # a department without a need word
    ("需财务部确认", None),  # nobody in the item
], ids=["task-name", "owner-name", "task-id", "no-need-word", "outside-the-item"])
def test_what_counts_as_naming_another_task(note, expected) -> None:
    found = dependencies.suggest(guide_tasks(t3=note))
    got = [(s.on, s.how) for s in found if s.task == "T-3"]
    assert got == ([expected] if expected else [])


def test_a_department_with_two_tasks_is_not_certain_enough() -> None:
    tasks = guide_tasks()
    tasks[1].update(owner_department="产品部", owner_name="刘洋")
    assert [s for s in dependencies.suggest(tasks) if s.task == "T-3"] == []


@pytest.mark.parametrize("text, ids", [
    ("依赖 T-1", ["T-1"]), ("依赖：T1、T-2", ["T-1", "T-2"]), ("T-1完成后开始", ["T-1"]),
    ("depends on T-2 and T-1", ["T-2", "T-1"]), ("after t-3", ["T-3"]),
    ("需产品部提供FAQ文档", []), ("参考 T-2", []),
], ids=["yilai", "list", "after-zh", "depends-on", "after", "implied-only", "mention-only"])
def test_dependencies_stated_outright(text: str, ids: list[str]) -> None:
    assert dependencies.explicit(text) == ids


@pytest.mark.parametrize("cell, ids", [
    ("T-1", ["T-1"]), ("T1、T-2", ["T-1", "T-2"]), ("1", ["T-1"]), ("1、3", ["T-1", "T-3"]),
    ("任务2", ["T-2"]), ("第2项", ["T-2"]), ("#3", ["T-3"]), ("2 and 3", ["T-2", "T-3"]),
    ("新品核心卖点提炼", []), ("产品部的FAQ文档", []), ("", []), ("2026年8月", []),
], ids=["id", "ids", "row", "rows", "renwu", "di-xiang", "hash", "and", "a-name", "a-phrase",
        "empty", "a-date"])
def test_what_a_dependency_column_names(cell: str, ids: list[str]) -> None:
    assert dependencies.column_ids(cell) == ids


def test_a_stated_dependency_is_not_suggested_again() -> None:
    tasks = guide_tasks(t3="依赖 T-1；需产品部提供FAQ文档")
    assert dependencies.suggest(tasks) == []


@pytest.mark.parametrize("edges, loop", [
    ({"T-1": [], "T-2": ["T-1"], "T-3": ["T-2"]}, None),
    ({"T-1": ["T-3"], "T-2": ["T-1"], "T-3": ["T-2"]}, ["T-1", "T-3", "T-2", "T-1"]),
    ({"T-1": ["T-1"]}, ["T-1", "T-1"]),
    ({"T-1": ["T-9"]}, None),  # a task that is gone holds nothing up
], ids=["chain", "three-loop", "self", "missing"])
def test_cycles(edges, loop) -> None:
    assert dependencies.cycle(edges) == loop


def test_adding_a_dependency_is_checked() -> None:
    tasks = guide_tasks()
    tasks[2]["depends_on"] = ["T-1"]
    assert dependencies.check_add(tasks, "T-2", ["T-3"]) == ("", [])
    tasks[1]["depends_on"] = ["T-3"]
    assert dependencies.check_add(tasks, "T-1", ["T-2"]) == ("cycle",
                                                             ["T-1", "T-2", "T-3", "T-1"])
    assert dependencies.check_add(tasks, "T-1", ["T-1"]) == ("self", ["T-1"])
    assert dependencies.check_add(tasks, "T-1", ["T-7"]) == ("no_task", ["T-7"])


def test_waiting_blocking_and_unblocked() -> None:
    before = {"tasks": guide_tasks()}
    before["tasks"][2]["depends_on"] = ["T-1"]
    before["tasks"][1]["depends_on"] = ["T-1"]
    item = before
    assert [t["id"] for t in dependencies.waiting_on(item, item["tasks"][2])] == ["T-1"]
    assert [t["id"] for t in dependencies.blocks(item, "T-1")] == ["T-2", "T-3"]

    submitted = {"tasks": [dict(t) for t in before["tasks"]]}
    submitted["tasks"][0]["state"] = "submitted"  # handed in, not yet accepted: still waiting
    assert dependencies.newly_unblocked(before, submitted) == []
    done = {"tasks": [dict(t) for t in submitted["tasks"]]}
    done["tasks"][0]["state"] = "done"
    assert [t["id"] for t in dependencies.newly_unblocked(submitted, done)] == ["T-2", "T-3"]
    assert dependencies.newly_unblocked(done, done) == []  # told once


def test_chains_run_from_what_holds_things_up_to_the_last_that_waits() -> None:
    tasks = guide_tasks()
    tasks.append({"id": "T-4", "name": "销售培训", "state": "not_started", "depends_on": ["T-3"]})
    tasks[2]["depends_on"] = ["T-1"]
    tasks[1]["depends_on"] = ["T-1"]
    assert dependencies.chains({"tasks": tasks}) == [["T-1", "T-2"], ["T-1", "T-3", "T-4"]]
    tasks[0]["state"] = "done"
    assert dependencies.chains({"tasks": tasks}) == [["T-3", "T-4"]]
