"""kickoff: tasks from the guide's step-3 "需配合" sentences; what cannot be read is listed."""

from __future__ import annotations

import pytest

from maild.core.kickoff import Kickoff, read_kickoff
from maild.core.model import TaskDraft

CLAUSES = [
    ("the guide's example", "产品部8月10日前输出核心卖点；销售部8月15日前提交渠道需求",
     [TaskDraft("输出核心卖点", "产品部", "8月10日前"), TaskDraft("提交渠道需求", "销售部", "8月15日前")]),
    ("date last", "销售部负责渠道推广方案，8月15日前完成",
     [TaskDraft("渠道推广方案", "销售部", "8月15日前")]),
    ("在 … 前完成", "客服部在8月20日前完成FAQ培训", [TaskDraft("FAQ培训", "客服部", "8月20日前")]),
    ("numbered lines", "1. 产品部8月10日前输出卖点\n2. 销售部8.15前提交需求",
     [TaskDraft("输出卖点", "产品部", "8月10日前"), TaskDraft("提交需求", "销售部", "8.15前")]),
    ("a dash and a colon", "- 客服部：8.20前准备FAQ", [TaskDraft("准备FAQ", "客服部", "8.20前")]),
    ("a person, full-width digits", "王喆８月１０日前输出核心卖点",
     [TaskDraft("输出核心卖点", "王喆", "8月10日前")]),
    ("relative dates", "请产品部下周三前给出卖点；销售部两周内提交需求",
     [TaskDraft("给出卖点", "产品部", "下周三前"), TaskDraft("提交需求", "销售部", "两周内")]),
    ("english", "Product to deliver key selling points by Aug 10; Sales to submit needs by Aug 15",
     [TaskDraft("deliver key selling points", "Product", "Aug 10"),
      TaskDraft("submit needs", "Sales", "Aug 15")]),
]


@pytest.mark.parametrize(("text", "tasks"), [c[1:] for c in CLAUSES], ids=[c[0] for c in CLAUSES])
def test_clauses_become_tasks(text: str, tasks: list[TaskDraft]) -> None:
    assert read_kickoff(text) == Kickoff(tuple(tasks), ())


@pytest.mark.parametrize("clause", ["设计部尽快出图", "8月10日前完成", "大家多配合"],
                         ids=["no-date", "no-doer", "neither"])
def test_a_clause_without_doer_or_date_is_unread_not_guessed(clause: str) -> None:
    reading = read_kickoff(f"产品部8月10日前输出核心卖点；{clause}")
    assert reading.tasks == (TaskDraft("输出核心卖点", "产品部", "8月10日前"),)
    assert reading.unread == (clause,)
