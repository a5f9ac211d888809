"""The people directory: resolve how an email names an owner to exactly the people it could mean.

A name in an email is free text: "王喆", "产品部王喆", "Wang Zhe <wang.zhe@corp.example>",
"产品部经理". Resolution returns every person the text could mean, so the caller can insist on
exactly one (one task, one owner) instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .model import Person

ADDRESS_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# Separators people put between several names; more than one name means more than one owner.
_MANY_RE = re.compile(r"[、,，;；/／&＆]|\s和\s|\s+and\s+|(?<=\S)和(?=\S)")
_NOISE_RE = re.compile(r"[\s*＊·•()（）<>《》\"'“”]+")


@dataclass(frozen=True)
class Directory:
    people: tuple[Person, ...]
    # Indexes built once: a synced directory has thousands of people, and every owner named in
    # an email is resolved. address → person (an alias that is an address, a secondary address
    # from the directory sync, finds its person too); squashed key → people (`_keys`, in
    # directory order); each person's keys that may appear inside a longer text.
    _by_address: dict[str, Person] = field(init=False, repr=False, compare=False)
    _by_key: dict[str, list[Person]] = field(init=False, repr=False, compare=False)
    _inner_keys: tuple[tuple[Person, tuple[str, ...]], ...] = field(init=False, repr=False,
                                                                    compare=False)

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
        for person in self.people:
            keys = tuple(dict.fromkeys(_keys(person)))
            for key in keys:
                by_key.setdefault(key, []).append(person)
            department = _squash(person.department)
            inner.append((person, tuple(k for k in keys if k and len(k) >= 2 and k != department)))
        object.__setattr__(self, "_by_key", by_key)
        object.__setattr__(self, "_inner_keys", tuple(inner))

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

    def display_name(self, address: str) -> str:
        person = self.by_address(address)
        return person.name if person else address

    def resolve(self, text: str) -> list[Person]:
        """Everyone `text` may name: [] unknown, [p] resolved, several when ambiguous or many."""
        text = text.strip()
        if not text:
            return []
        addresses = [a.lower() for a in ADDRESS_RE.findall(text)]
        if addresses:
            unique = list(dict.fromkeys(addresses))
            return [self.by_address(a) or Person(name=a, address=a) for a in unique]
        parts = [p for p in _MANY_RE.split(text) if p and p.strip()]
        if len(parts) > 1:
            found: list[Person] = []
            for part in parts:
                found.extend(p for p in self._match_one(part) if p not in found)
            return found if len(found) > 1 else found + [Person(name=text, address="")]
        return self._match_one(text)

    def _match_one(self, text: str) -> list[Person]:
        key = _squash(text)
        exact = self._by_key.get(key)
        if exact:
            return list(exact)
        # "产品部*经理", "销售部主管赵磊": the name (or alias) appears inside the text.
        return [p for p, keys in self._inner_keys if any(k in key for k in keys)]


def _squash(text: str) -> str:
    return _NOISE_RE.sub("", text).lower()


def _keys(person: Person) -> Iterable[str]:
    yield _squash(person.name)
    yield _squash(person.address)
    yield _squash(person.address.partition("@")[0])
    yield _squash(person.department + person.name)
    for alias in person.aliases:
        yield _squash(alias)
