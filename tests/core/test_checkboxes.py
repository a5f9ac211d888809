"""checkboxes: which option a choice cell picks, ticked the ways people tick boxes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from maild.core.checkboxes import choose, percent_of, picked
from maild.core.formrules import Choice, Choices, choice_lookup, load_form_rules

RULES = Path(__file__).resolve().parents[2] / "rules"

PICKED = [
    ("□高 ☑中 □低", "中"), ("☐高☑中☐低", "中"), ("高☑ 中□ 低□", "高"), ("中 ☑", "中"),
    ("☒延期", "延期"), ("■进行中 □延期", "进行中"), ("▣高", "高"), ("√已完成", "已完成"),
    ("✓进行中", "进行中"), ("✔75%", "75%"), ("●中 ○高", "中"), ("[x] Low", "Low"),
    ("[X]高 [ ]中", "高"), ("(x)高 ( )中", "高"), ("高 [x]", "高"), ("☑ Customer complaint ☐ Other",
                                                            "Customer complaint"),
    ("☑高/中/低", "高"), ("高/☑中/低", "中"), ("□高□☑中□低", "中"),
    ("□未开始", "未开始"), ("进行中", "进行中"),  # one option left is that option
    ("□0%□25%□50%□75%□100%", ""), ("高/中/低", ""), ("", ""),  # nothing chosen
    ("☑高☑中", None),  # contradictory
]


@pytest.mark.parametrize(("value", "option"), PICKED, ids=[p[0] or "empty" for p in PICKED])
def test_picked(value: str, option: str | None) -> None:
    assert picked(value) == option


PRIORITY = (Choice("high", {"zh": "高", "en": "High"}), Choice("medium", {"zh": "中", "en": "Medium"},
                                                              ("普通",)),
            Choice("low", {"zh": "低", "en": "Low"}))


@pytest.mark.parametrize(("value", "chosen"), [
    ("高", "high"), ("Medium", "medium"), ("普通", "medium"), ("□高 ☑中 □低", "medium"),
    ("□高□中□低", ""), ("☑很急", None), ("看情况", None)],
    ids=["name", "english", "alias", "ticked", "none-ticked", "unknown-ticked", "prose"])
def test_choose(value: str, chosen: str | None) -> None:
    assert choose(value, PRIORITY) == chosen
    assert choose(value, Choices(PRIORITY)) == chosen  # the rules' kind, its lookup made once


def test_the_rules_choices_carry_their_lookup() -> None:
    rules = load_form_rules(tomllib.loads((RULES / "forms.toml").read_text(encoding="utf-8")))
    assert rules.choices and all(isinstance(c, Choices) for c in rules.choices.values())
    for choices in rules.choices.values():
        assert choices.lookup == choice_lookup(tuple(choices))
        assert choose(choices[0].names["zh"], choices) == choices[0].value


@pytest.mark.parametrize(("value", "percent"), [
    ("75%", "75%"), ("□0% □25% ☑50%", "50%"), ("７５％", "75%"), ("已经做了一大半，大约70%", "70%"),
    ("□0%□25%□50%□75%□100%", ""), ("一半", None)],
    ids=["plain", "ticked", "full-width", "sentence", "none-ticked", "words"])
def test_percent_of(value: str, percent: str | None) -> None:
    assert percent_of(value) == percent
