"""people.py: one task, one owner — names resolve to exactly the people they could mean."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("text, expected", [
    ("王喆", ["wang.zhe@corp.example"]),
    ("产品部王喆", ["wang.zhe@corp.example"]),
    ("产品部*经理", ["wang.zhe@corp.example"]),
    ("Wang Zhe", ["wang.zhe@corp.example"]),
    ("wang.zhe@corp.example", ["wang.zhe@corp.example"]),
    ("王喆 <Wang.Zhe@Corp.Example>", ["wang.zhe@corp.example"]),
    ("outsider@partner.example", ["outsider@partner.example"]),
    ("赵磊 (销售部)", ["zhao.lei@corp.example"]),
], ids=["name", "dept+name", "seed-placeholder", "pinyin", "address", "display-address",
        "unknown-address", "name-with-dept"])
def test_resolves_to_one(rules, text, expected):
    assert [p.address for p in rules.people.resolve(text)] == expected


@pytest.mark.parametrize("text", ["王喆、赵磊", "王喆和赵磊", "Wang Zhe and Zhao Lei", "王喆/陈静",
                                  "wang.zhe@corp.example, zhao.lei@corp.example"],
                         ids=["dunhao", "he", "and", "slash", "two-addresses"])
def test_several_owners_are_several(rules, text):
    assert len(rules.people.resolve(text)) >= 2


@pytest.mark.parametrize("text", ["", "张三", "法务部", "法务部*经理"],
                         ids=["empty", "unknown-name", "unknown-dept", "unknown-dept-role"])
def test_unknown(rules, text):
    assert rules.people.resolve(text) == []
