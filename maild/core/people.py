"""The people directory: resolve how an email names an owner to exactly the people it could mean.

A name in an email is free text: "王喆", "产品部王喆", "Wang Zhe <wang.zhe@corp.example>", and as
the guide writes owners, "产品部*经理" (department + role, the name masked), "销售部主管", a
department alone ("客服部"), a name with a title ("王喆经理"), a surname with one ("王经理").
`match` returns every person the text could mean and how it matched, so the caller can insist
on exactly one (one task, one owner) instead of guessing, and tell the initiator how a role
became a person ("产品部*经理 → 王喆"). `resolve` is `match(...).people` as a list.

Surprises worth knowing:
- Exact names, aliases and addresses win over any reading by role: two people both called 王磊
  are two candidates, never the first one.
- Department + title narrows by both; a title matches a person's title exactly, else as its
  ending ("经理" finds a 高级经理 only when no one is plainly 经理).
- A department alone means its head: its only member, else the member whose manager is outside
  the department (so "产品部" is the person who answers for 产品部). A leadership title nobody in
  the department holds ("产品部总监" where no one is 总监) means the head too.
- Masks are "*", "＊", "×" and "某" ("产品部某经理").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maild.core.model import Person

ADDRESS_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Separators people put between several names; more than one name means more than one owner.
_MANY_RE = re.compile(r"[、,，;；/／&＆]|\s和\s|\s+and\s+|(?<=\S)和(?=\S)")
_NOISE_RE = re.compile(r"[\s*＊·•()（）<>《》\"'“”×]+")
_MASK_RE = re.compile(r"[*＊×]|某")
# Titles as Chinese companies write them, besides those the directory holds.
COMMON_TITLES = ("总经理", "副总经理", "总裁", "副总裁", "总监", "副总监", "经理", "副经理", "主管",
                 "专员", "主任", "组长", "部长", "科长", "处长", "负责人", "分析师", "工程师", "助理",
                 "秘书", "顾问")
_EN_TITLE_RE = re.compile(r"\b(?:manager|supervisor|director|specialist|analyst|engineer|lead|"
                          r"head|assistant|officer|coordinator|vp|ceo|cto|cfo)\b", re.IGNORECASE)
LEAD_TITLES = frozenset({"总监", "副总监", "经理", "主管", "负责人", "部长", "主任", "head",
                         "director", "manager", "lead"})


@dataclass(frozen=True)
class OwnerMatch:
    """Everyone an owner text may name, and how: address | name | alias | name+title |
    surname+title | department+title | department head | contained | "" (no one)."""

    people: tuple[Person, ...]
    how: str = ""


@dataclass(frozen=True)
class Directory:
    people: tuple[Person, ...]
    # Indexes built once: a synced directory has thousands of people, and every owner named in
    # an email is resolved. address → person (an alias that is an address, a secondary address
    # from the directory sync, finds its person too); squashed key → people (`_keys`, in
    # directory order); each person's keys that may appear inside a longer text; department →
    # its members; the titles people hold, longest first.
    _by_address: dict[str, Person] = field(init=False, repr=False, compare=False)
    _by_key: dict[str, list[Person]] = field(init=False, repr=False, compare=False)
    _inner_keys: tuple[tuple[Person, tuple[str, ...]], ...] = field(init=False, repr=False,
                                                                    compare=False)
    _departments: dict[str, list[Person]] = field(init=False, repr=False, compare=False)
    _titles: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Person] = {}
        for person in self.people:
            for alias in person.aliases:
                if "@" in alias:
                    index.setdefault(alias.lower(), person)
        index.update((p.address, p) for p in reversed(self.people))  # the first of an address wins
        object.__setattr__(self, "_by_address", index)
        by_key: dict[str, list[Person]] = {}
        inner = []
        members: dict[str, list[Person]] = {}
        for person in self.people:
            keys = tuple(dict.fromkeys(_keys(person)))
            for key in keys:
                if key:
                    by_key.setdefault(key, []).append(person)
            department = _squash(person.department)
            inner.append((person, tuple(k for k in keys if k and len(k) >= 2 and k != department)))
            if department:
                members.setdefault(department, []).append(person)
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(self, "_inner_keys", tuple(inner))
        # longest first: "人力资源部" before "人力资源"
        object.__setattr__(self, "_departments", dict(sorted(members.items(),
                                                             key=lambda kv: -len(kv[0]))))
        titles = {_squash(p.title) for p in self.people if p.title} | set(COMMON_TITLES)
        object.__setattr__(self, "_titles", tuple(sorted(titles, key=len, reverse=True)))

    @classmethod
    def from_toml(cls, data: Mapping[str, Any]) -> Directory:
        people = []
        for entry in data.get("person", []):
            people.append(Person(
                name=str(entry["name"]),
                address=str(entry["address"]).lower(),
                department=str(entry.get("department", "")),
                aliases=tuple(str(a) for a in entry.get("aliases", ())),
                manager=str(entry.get("manager", "")).lower(),
                timezone=str(entry.get("timezone", "")),
                title=str(entry.get("title", "")),
            ))
        return cls(tuple(people))

    def by_address(self, address: str) -> Person | None:
        return self._by_address.get(address.lower())

    def resolve(self, text: str) -> list[Person]:
        """Everyone `text` may name: [] unknown, [p] resolved, several when ambiguous or many."""
        return list(self.match(text).people)

    def match(self, text: str) -> OwnerMatch:
        """Everyone `text` may name, and how it matched (see the module docstring)."""
        text = text.strip()
        if not text:
            return OwnerMatch(())
        addresses = [a.lower() for a in ADDRESS_RE.findall(text)]
        if addresses:
            unique = list(dict.fromkeys(addresses))
            return OwnerMatch(tuple(self.by_address(a) or Person(name=a, address=a)
                                    for a in unique), "address")
        parts = [p for p in _MANY_RE.split(text) if p and p.strip()]
        if len(parts) > 1:  # "Zhao Lei, Sales Supervisor": a title after a comma is no one else
            parts = [p for p in parts if not (_EN_TITLE_RE.search(p) and not self.resolve(p))]
        if len(parts) == 1:
            return self._match_one(parts[0])
        if len(parts) > 1:
            found: list[Person] = []
            for part in parts:
                found.extend(p for p in self.match(part).people if p not in found)
            return OwnerMatch(tuple(found if len(found) > 1
                                    else found + [Person(name=text, address="")]), "many")
        return self._match_one(text)

    def _match_one(self, text: str) -> OwnerMatch:
        key = _squash(text)
        exact = self._by_key.get(key, [])
        if exact:
            how = "name" if all(key in (_squash(p.name), _squash(p.department + p.name))
                                for p in exact) else "alias"
            return OwnerMatch(tuple(exact), how)
        by_role = self._by_role(text)
        if by_role.people or by_role.how:
            return by_role
        # "销售部主管赵磊", "赵磊 (销售部)": a name (or alias) appears inside the text.
        contained = [p for p, keys in self._inner_keys if any(k in key for k in keys)]
        return OwnerMatch(tuple(contained), "contained" if contained else "")

    def _by_role(self, text: str) -> OwnerMatch:
        """Department, name or surname, and title: "产品部*经理", "王喆经理", "客服部"."""
        masked = bool(_MASK_RE.search(text))
        key = _squash(_MASK_RE.sub("", text))
        department = next((d for d in self._departments if key.startswith(d)), "")
        rest = key[len(department):]
        title = next((t for t in self._titles if t and rest.endswith(t) and t != rest
                      or t == rest), "")
        name = rest[:len(rest) - len(title)] if title else rest
        if not department and not title:
            return OwnerMatch(())
        if name and not title:
            return OwnerMatch(())  # "产品部小王": not a form this module reads
        pool = self._departments.get(department, []) if department else list(self.people)
        if not title:
            return self._head(department)
        holders = [p for p in pool if _squash(p.title) == title] or [
            p for p in pool if p.title and _squash(p.title).endswith(title)]
        if masked and name:
            return OwnerMatch((), "department+title")  # "法务部*经理": a department we do not know
        if name:
            named = [p for p in holders if _squash(p.name) == name]
            if named:
                return OwnerMatch(tuple(named), "name+title")
            surnamed = [p for p in holders if _squash(p.name).startswith(name) and len(name) <= 2]
            if surnamed:
                return OwnerMatch(tuple(surnamed), "surname+title")
            plain = self._by_key.get(name, [])
            return OwnerMatch(tuple(plain), "name" if plain else "")
        if holders:
            return OwnerMatch(tuple(holders), "department+title" if department else "title")
        if department and title in LEAD_TITLES:
            return self._head(department)
        return OwnerMatch((), "department+title" if department else "title")

    def _head(self, department: str) -> OwnerMatch:
        """Who answers for a department: its only member, else those whose manager is outside."""
        members = self._departments.get(department, [])
        if len(members) <= 1:
            return OwnerMatch(tuple(members), "department head" if members else "department")
        inside = {p.address for p in members}
        heads = [p for p in members if p.manager not in inside]
        return OwnerMatch(tuple(heads or members), "department head")


def _squash(text: str) -> str:
    return _NOISE_RE.sub("", text).lower()


def _keys(person: Person) -> Iterable[str]:
    yield _squash(person.name)
    yield _squash(person.address)
    yield _squash(person.address.partition("@")[0])
    yield _squash(person.department + person.name)
    for alias in person.aliases:
        yield _squash(alias)
