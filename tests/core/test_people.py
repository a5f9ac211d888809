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


# --------------------------------------------------------------------------------------------
# A directory the size of a 5,000-person company, made here (never shipped in rules/): common
# surnames, several 经理 in each department, the same name in two departments.

import random  # noqa: E402

from maild.core.model import Person  # noqa: E402
from maild.core.people import Directory  # noqa: E402

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏飞斌宇浩凯健俊帆琳晨颖雪梅婷"
DEPARTMENTS = ["市场部", "产品部", "销售部", "客服部", "数据部", "财务部", "行政部", "运营部", "研发部",
               "设计部", "法务部", "人力资源部"]
TITLES = ["专员"] * 30 + ["主管"] * 6 + ["经理"] * 4 + ["分析师"] * 3 + ["工程师"] * 8 + ["助理"] * 2


@pytest.fixture(scope="module")
def company() -> Directory:
    """~5,000 people over 12 departments; one 总监 heads each, who reports outside it."""
    rng = random.Random(14)
    people: list[Person] = []
    for d, department in enumerate(DEPARTMENTS):
        head = f"head{d}@corp.example"
        people.append(Person(name=f"{SURNAMES[d]}总", address=head, department=department,
                             title="总监", manager="ceo@corp.example"))
        for n in range(417):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if n % 3 else "")
            people.append(Person(name=name, address=f"u{d:02d}{n:03d}@corp.example",
                                 department=department, title=rng.choice(TITLES), manager=head))
    # the cases the tests name, made unambiguous or ambiguous on purpose
    people += [
        Person("欧阳明月", "ouyang.mingyue@corp.example", "产品部", title="经理", manager="head1@corp.example"),
        Person("司马青", "sima.qing@corp.example", "法务部", title="主管", manager="head10@corp.example"),
        Person("王喆", "wang.zhe@corp.example", "产品部", title="经理", manager="head1@corp.example"),
        Person("王喆", "wang.zhe2@corp.example", "研发部", title="工程师", manager="head8@corp.example"),
    ]
    return Directory(tuple(people))


def test_the_company_is_big_and_realistic(company: Directory) -> None:
    assert len(company.people) >= 5000
    product_managers = [p for p in company.people if p.department == "产品部" and p.title == "经理"]
    assert len(product_managers) >= 5  # several 经理 per department
    names = [p.name for p in company.people]
    assert len(names) - len(set(names)) > 500  # common names repeat


@pytest.mark.parametrize(("text", "address", "how"), [
    ("产品部欧阳明月", "ouyang.mingyue@corp.example", "name"),
    ("欧阳明月经理", "ouyang.mingyue@corp.example", "name+title"),
    ("法务部*主管", None, "department+title"),  # several 主管 in 法务部: asked, never guessed
    ("司马主管", "sima.qing@corp.example", "surname+title"),
    ("研发部", "head8@corp.example", "department head"),
    ("研发部总监", "head8@corp.example", "department+title"),
    ("王喆经理", "wang.zhe@corp.example", "name+title"),  # 王喆 twice; only one is 经理
    ("产品部王喆", "wang.zhe@corp.example", "name"),
], ids=["dept+name", "name+title", "dept+role-several", "surname+title", "dept-alone",
        "dept+director", "same-name-told-apart-by-title", "same-name-told-apart-by-dept"])
def test_owner_forms_in_a_big_company(company: Directory, text: str, address: str | None,
                                      how: str) -> None:
    found = company.match(text)
    assert found.how == how
    if address is None:
        assert len(found.people) > 1
    else:
        assert [p.address for p in found.people] == [address]


@pytest.mark.parametrize("text", ["王喆", "产品部*经理", "王经理"],
                         ids=["same-name-two-depts", "several-managers", "common-surname"])
def test_ambiguous_owners_list_everyone_they_could_be(company: Directory, text: str) -> None:
    assert len(company.resolve(text)) >= 2


@pytest.mark.parametrize("text", ["采购部*经理", "钱多多", "法务部*总监助理"],
                         ids=["unknown-department", "unknown-name", "unknown-title"])
def test_no_one_fits(company: Directory, text: str) -> None:
    assert company.resolve(text) == []


def test_shipped_directory_explains_how(rules) -> None:
    assert rules.people.match("数据部*分析师").how == "department+title"
    assert [p.name for p in rules.people.resolve("数据部*分析师")] == ["孙悦"]
    assert [p.name for p in rules.people.resolve("财务部*经理")] == ["周敏"]
    assert rules.people.match("客服部").how == "department head"
