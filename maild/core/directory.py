"""The synced directory: people as LDAP / Active Directory or an HR export lists them, checked,
compared with the last sync, kept in one file, and merged under the hand-written rules/people.toml.

Pure: sources (`ldapdir.py`, `hrcsv.py`) turn what they read into `Record`s; `build` resolves
managers and checks the whole; `diff` says what a sync would change; `encode`/`decode` are the
file (`[directory] file`, in the data folder: the daemon may write it, rules/ may be read-only);
`merge` lays rules/people.toml over it. `dirsync.py` is the shell that reads and writes.

Surprises worth knowing:

* A source names a manager its own way: a DN (LDAP, AD), an address, an employee number or a
  name (HR exports). `build` resolves each to an address; one it cannot resolve is reported and
  left empty (the planner then tells the initiator instead of a manager), never guessed.
* Someone who is their own manager (the top of many HR exports) is not an error, only noted.
  A longer loop (A → B → A) is reported; it is kept, since every escalation still reaches a person.
* A person without a usable address is skipped and reported; of two with one address, the first
  is kept. A secondary address (AD `proxyAddresses`) is kept as an alias, so mail from it or an
  owner written as it finds the person.
* `merge`: a hand-written entry with a synced person's address overrides the fields it names
  (aliases add up); one with a new address adds a person. So people.toml keeps working alone,
  and can correct or extend what the directory says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT = 1
FIELDS = ("name", "aliases", "department", "title", "manager")
ADDRESS_RE = re.compile(r"^[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
_FIND_ADDRESS = re.compile(r"[A-Za-z0-9._%+\-']+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
_DN_SPACES = re.compile(r"\s*([,=+])\s*")


@dataclass(frozen=True)
class Record:
    """One person as a source lists them, before their manager is resolved."""

    where: str  # for messages: a DN, or "people.csv line 7"
    address: str  # "" when the source has none
    name: str = ""
    aliases: tuple[str, ...] = ()
    department: str = ""
    title: str = ""
    manager: str = ""  # as the source names them: DN, address, employee number or name
    key: str = ""  # how others point at this one: DN or employee number ("" when none)


@dataclass(frozen=True)
class Problem:
    """Something the sync could not take as it came. `kind`: missing_mail, bad_address,
    duplicate_address, unknown_manager, self_manager, manager_cycle."""

    kind: str
    where: str
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.where}: {self.detail}"


@dataclass(frozen=True)
class Change:
    """One person a sync adds, removes or changes (`fields`: (field, old, new))."""

    kind: str  # added | removed | changed
    address: str
    name: str
    fields: tuple[tuple[str, Any, Any], ...] = ()


@dataclass(frozen=True)
class Synced:
    """The synced directory file's content."""

    people: tuple[dict[str, Any], ...]
    source: str = ""
    synced_at: str = ""
    problems: tuple[Problem, ...] = field(default=())


def normal_dn(dn: str) -> str:
    """A DN compared as directories compare them: case and spaces around separators ignored."""
    return _DN_SPACES.sub(r"\1", dn.strip()).lower()


def build(records: Iterable[Record], *, known: Collection[str] = (),
          outside: Mapping[str, str] | None = None) -> tuple[list[dict[str, Any]], list[Problem]]:
    """People (dicts with address and FIELDS, by address) and the problems found. `known` are
    addresses that exist besides these records (rules/people.toml): a manager among them is not
    unknown. `outside` maps keys of managers the source found beyond its own list (a DN outside
    the search base) to their addresses."""
    problems: list[Problem] = []
    kept: dict[str, Record] = {}
    for record in records:
        address = record.address.strip().lower()
        if not address:
            problems.append(Problem("missing_mail", record.where, f"{record.name or '?'} has no "
                                    "email address: skipped"))
        elif not ADDRESS_RE.match(address):
            problems.append(Problem("bad_address", record.where, f"{address!r} is not an email "
                                    "address: skipped"))
        elif address in kept:
            problems.append(Problem("duplicate_address", record.where, f"{address} is also "
                                    f"{kept[address].where}: the first is kept"))
        else:
            kept[address] = record
    by_key = {normal_dn(r.key): a for a, r in kept.items() if r.key}
    by_key.update({normal_dn(k): v.lower() for k, v in (outside or {}).items()})
    names: dict[str, list[str]] = {}
    for address, record in kept.items():
        names.setdefault(record.name.strip(), []).append(address)
    aliased = _alias_addresses(kept, problems)
    people = []
    for address, record in kept.items():
        manager = _manager(record, address, kept, by_key, names, aliased, known, problems)
        people.append({"address": address, "name": record.name.strip() or address,
                       "aliases": [a for a in dict.fromkeys(record.aliases)
                                   if a.strip() and a.lower() != address],
                       "department": record.department.strip(), "title": record.title.strip(),
                       "manager": manager})
    people.sort(key=lambda p: p["address"])
    problems += _cycles(people)
    return people, problems


def _alias_addresses(kept: Mapping[str, Record], problems: list[Problem]) -> dict[str, str]:
    """Secondary addresses (aliases that are addresses) → their person; one that is somebody
    else's address is dropped and reported."""
    out: dict[str, str] = {}
    for address, record in kept.items():
        for alias in record.aliases:
            alias = alias.lower()
            if alias == address or not ADDRESS_RE.match(alias):
                continue
            if alias in kept or out.get(alias, address) != address:
                problems.append(Problem("duplicate_address", record.where, f"alias {alias} is "
                                        f"{'the address' if alias in kept else 'an alias'} of "
                                        "someone else"))
                continue
            out[alias] = address
    return out


def _manager(record: Record, address: str, kept: Mapping[str, Record], by_key: Mapping[str, str],
             names: Mapping[str, list[str]], aliased: Mapping[str, str], known: Collection[str],
             problems: list[Problem]) -> str:
    ref = record.manager.strip()
    if not ref:
        return ""
    found = _FIND_ADDRESS.search(ref) if "=" not in ref else None
    if found:
        manager = found[0].lower()
        manager = aliased.get(manager, manager)
        if manager not in kept and manager not in known:
            problems.append(Problem("unknown_manager", record.where, f"manager {manager} is not "
                                    "in the directory: left empty"))
            return ""
    elif normal_dn(ref) in by_key:
        manager = by_key[normal_dn(ref)]
    elif len(names.get(ref, ())) == 1:
        manager = names[ref][0]
    else:
        detail = ("names several people" if len(names.get(ref, ())) > 1 else "is not in the "
                  "directory")
        problems.append(Problem("unknown_manager", record.where, f"manager {ref!r} {detail}: "
                                "left empty"))
        return ""
    if manager == address:
        problems.append(Problem("self_manager", record.where, f"{address} is their own "
                                "manager: no manager"))
        return ""
    return manager


def _cycles(people: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Each loop in the manager chains, once (A → B → A)."""
    manager = {p["address"]: p["manager"] for p in people}
    done: set[str] = set()
    out = []
    for start in manager:
        path: list[str] = []
        seen: dict[str, int] = {}
        node = start
        while node and node in manager and node not in done and node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = manager[node]
        if node in seen:
            loop = path[seen[node]:]
            out.append(Problem("manager_cycle", loop[0], " → ".join([*loop, loop[0]])))
        done.update(path)
    return out


def diff(old: Sequence[Mapping[str, Any]], new: Sequence[Mapping[str, Any]]) -> list[Change]:
    """What replacing `old` people by `new` changes, by address: removed, added, changed."""
    before = {p["address"]: p for p in old}
    after = {p["address"]: p for p in new}
    changes = [Change("removed", a, str(p.get("name", ""))) for a, p in before.items()
               if a not in after]
    for address, person in after.items():
        was = before.get(address)
        if was is None:
            changes.append(Change("added", address, str(person.get("name", ""))))
            continue
        fields = tuple((f, was.get(f), person.get(f)) for f in FIELDS
                       if _norm(was.get(f)) != _norm(person.get(f)))
        if fields:
            changes.append(Change("changed", address, str(person.get("name", "")), fields))
    order = {"removed": 0, "added": 1, "changed": 2}
    changes.sort(key=lambda c: (order[c.kind], c.address))
    return changes


def _norm(value: Any) -> Any:
    return tuple(value) if isinstance(value, list | tuple) else (value or "")


def too_many_removed(old: Sequence[Any], changes: Sequence[Change], share: float) -> str:
    """Why a sync must not be written without --force ("" when it may): it would empty the
    directory, or remove more than `share` of it (a filter typo, a wrong base DN)."""
    removed = sum(c.kind == "removed" for c in changes)
    if old and removed == len(old):
        return f"it would remove all {removed} people"
    if removed > max(5, share * len(old)):
        return f"it would remove {removed} of {len(old)} people (more than {share:.0%})"
    return ""


def merge(synced: Sequence[Mapping[str, Any]], hand: Sequence[Mapping[str, Any]]
          ) -> list[dict[str, Any]]:
    """The people directory: the synced people with rules/people.toml laid over them. A hand
    entry whose address is synced overrides the fields it names (its aliases add to the synced
    ones); a hand entry with a new address is added as it is."""
    out = {str(p["address"]).lower(): dict(p) for p in synced}
    for entry in hand:
        address = str(entry.get("address", "")).lower()
        base = out.get(address)
        if base is None:
            if not entry.get("name"):
                raise ValueError(f"rules/people.toml: {address or 'a person'} is not in the "
                                 "synced directory, so needs a name (and an address)")
            out[address] = dict(entry)
            continue
        aliases = list(dict.fromkeys([*base.get("aliases", ()), *entry.get("aliases", ())]))
        out[address] = {**base, **entry, "aliases": aliases}
    return list(out.values())


def encode(synced: Synced) -> bytes:
    """The file: JSON, one person per line (a diff of two files reads as the change)."""
    head = {"format": FORMAT, "source": synced.source, "synced_at": synced.synced_at,
            "problems": [[p.kind, p.where, p.detail] for p in synced.problems]}
    lines = [json.dumps(p, ensure_ascii=False, sort_keys=True) for p in synced.people]
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "people": [\n' + ",\n".join(lines)
    return (text + "\n]}\n").encode("utf-8")


def decode(data: bytes, where: str = "directory file") -> Synced:
    """The file's content; ValueError naming `where` when it is not one."""
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{where}: not a synced directory ({exc})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(
            raw.get("people"), list):
        raise ValueError(f"{where}: not a synced directory of format {FORMAT}")
    for n, person in enumerate(raw["people"]):
        if not isinstance(person, dict) or not person.get("address") or not person.get("name"):
            raise ValueError(f"{where}: person #{n + 1} has no address or name")
    return Synced(people=tuple(raw["people"]), source=str(raw.get("source", "")),
                  synced_at=str(raw.get("synced_at", "")),
                  problems=tuple(Problem(*p) for p in raw.get("problems", ())))
