"""Typed, strict reading of a parsed TOML file, for config.py: each getter checks its value and
remembers the key it was asked for; `reject_unknown` then refuses every section or key nobody
asked for, naming the nearest valid one ("did you mean require_token?", "require_token belongs
in [security]"). Errors are `ConfigError`s naming file, key, problem and an example.

Surprise: a key is known only once it has been asked for. A caller that reads a key only in
some cases makes a file that sets it in the other cases invalid: read every key every time.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any


class ConfigError(Exception):
    """A problem in the configuration: which file, which key, what is wrong, an example."""

    def __init__(self, file: str, key: str, problem: str, example: str = "") -> None:
        self.file, self.key, self.problem, self.example = file, key, problem, example
        text = f"{file}: [{key}] {problem}"
        if example:
            text += f" (example: {example})"
        super().__init__(text)


class StrictReader:
    """Typed access to the raw TOML with errors that say where; remembers every key it was asked
    for, by table (`"maild"`, `"embedded.account"`), so that `reject_unknown` knows the rest."""

    def __init__(self, raw: Mapping[str, Any], file: str) -> None:
        self.raw, self.file = raw, file
        self.asked: dict[str, set[str]] = {}  # table path → keys read from it
        self._paths: dict[int, str] = {}  # id of an array-of-tables entry → its table path
        self.free: set[str] = set()  # tables whose keys are names the caller checks itself

    def section(self, name: str) -> Mapping[str, Any]:
        """The table `name`; a dotted name ("directory.ldap") is a table inside a table."""
        self.asked.setdefault(name, set())
        value: Any = self.raw
        for part in name.split("."):
            value = value.get(part, {}) if isinstance(value, Mapping) else None
        if not isinstance(value, Mapping):
            raise ConfigError(self.file, name, "must be a table", f"[{name}]")
        return value

    def free_section(self, name: str) -> Mapping[str, Any]:
        """A table whose keys are names chosen by the user (validated by the caller): all known."""
        self.free.add(name)
        return self.section(name)

    def tables(self, section: str, key: str) -> list[Mapping[str, Any]]:
        """An array of tables (`[[section.key]]`); read its entries' keys with `text_in`."""
        value = self._get(section, key, [])
        path = f"{section}.{key}"
        self.asked.setdefault(path, set())
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(self.file, path, "must be tables", f"[[{path}]]")
        for entry in value:
            self._paths[id(entry)] = path
        return value

    def text_in(self, entry: Mapping[str, Any], key: str, default: str) -> str:
        path = self._paths[id(entry)]
        self.asked[path].add(key)
        value = entry.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(self.file, f"{path}.{key}", f"must be a string, not {value!r}",
                              f'{key} = "{default}"')
        return value

    def _get(self, section: str, key: str, default: Any) -> Any:
        value = self.section(section).get(key, default)
        self.asked[section].add(key)
        return value

    def reject_unknown(self) -> None:
        """ConfigError for the first section or key nobody read, with the nearest valid name."""
        for name, value in self.raw.items():
            if name not in self.asked and not isinstance(value, Mapping):
                raise ConfigError(self.file, name, "a key outside any section"
                                  + self._key_hint("", name), f"[maild] {name} = {_toml(value)}")
            if name not in self.asked:
                sections = [p for p in self.asked if "." not in p]
                near = _nearest(name, sections)
                raise ConfigError(self.file, name, "unknown section" + (
                    f"; did you mean [{near}]?" if near else
                    f"; sections are {', '.join(f'[{p}]' for p in sorted(sections))}"))
            entries = value if isinstance(value, Mapping) else {}
            self._reject_keys(name, entries)

    def _reject_keys(self, path: str, entries: Mapping[str, Any]) -> None:
        if path in self.free:
            return
        known = self.asked.get(path, set())
        for key, value in entries.items():
            inner = f"{path}.{key}"
            if isinstance(value, Mapping) and inner in self.asked:
                self._reject_keys(inner, value)  # a table inside a table: [directory.ldap]
                continue
            if key not in known:
                near = _nearest(key, known)
                raise ConfigError(self.file, f"{path}.{key}", "unknown key" + self._key_hint(
                    path, key), f"{near} = {_toml(value)}" if near else "")
            if inner in self.asked and isinstance(value, list):
                for entry in value:
                    self._reject_keys(inner, entry if isinstance(entry, Mapping) else {})

    def _key_hint(self, path: str, key: str) -> str:
        near = _hint(key, self.asked.get(path, set()))
        if near:
            return near
        elsewhere = sorted(p for p, keys in self.asked.items() if key in keys)
        if elsewhere:
            return f"; {key} belongs in [{elsewhere[0]}]"
        if path in self.asked:
            return f"; [{path}] takes {', '.join(sorted(self.asked[path]))}"
        return ""

    def text(self, section: str, key: str, default: str) -> str:
        value = self._get(section, key, default)
        if not isinstance(value, str):
            raise ConfigError(self.file, f"{section}.{key}", f"must be a string, not {value!r}",
                              f'{key} = "{default}"')
        return value

    def address(self, section: str, key: str, default: str) -> str:
        value = self.text(section, key, default).strip().lower()
        local, at, domain = value.partition("@")
        if not (local and at and "." in domain) or any(c in value for c in " <>,;\r\n"):
            raise ConfigError(self.file, f"{section}.{key}", f"not an email address: {value!r}",
                              f'{key} = "{default}"')
        return value

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self._get(section, key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.file, f"{section}.{key}", "must be true or false",
                              f"{key} = {str(default).lower()}")
        return value

    def integer(self, section: str, key: str, default: int, *, low: int | None = None,
                high: int | None = None) -> int:
        value = self._get(section, key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.file, f"{section}.{key}", f"must be a whole number, not {value!r}",
                              f"{key} = {default}")
        self._check_range(section, key, value, low, high, default)
        return value

    def number(self, section: str, key: str, default: float, *, low: float | None = None,
               high: float | None = None) -> float:
        value = self._get(section, key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.file, f"{section}.{key}", f"must be a number, not {value!r}",
                              f"{key} = {default}")
        self._check_range(section, key, value, low, high, default)
        return float(value)

    def _check_range(self, section: str, key: str, value: float, low: float | None,
                     high: float | None, default: float) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(self.file, f"{section}.{key}", f"must be {bounds}, not {value}",
                              f"{key} = {default}")

    def choice(self, section: str, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(section, key, default)
        if value not in choices:
            raise ConfigError(self.file, f"{section}.{key}",
                              f"must be one of {', '.join(choices)}, not {value!r}",
                              f'{key} = "{default}"')
        return value

    def strings(self, section: str, key: str) -> list[str]:
        value = self._get(section, key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.file, f"{section}.{key}", "must be a list of strings",
                              f'{key} = ["corp.example"]')
        return value


def _nearest(name: str, known: Any) -> str | None:
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


def _hint(name: str, known: Any) -> str:
    near = _nearest(name, known)
    return f"; did you mean {near}?" if near else ""


def _toml(value: Any) -> str:
    """A value as it would be written in the file, for an example."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "{ ... }"
    return repr(value) if not isinstance(value, list) else "[" + ", ".join(map(_toml, value)) + "]"
