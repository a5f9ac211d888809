"""What the templates are given besides the notice: the language catalog (`t(...)`) and its
strings, the `deadline` and `state_label` filters, subject cleaning, the Jinja environment that
reads dict keys first, and the defaults an item or task is filled with before rendering.

Pure; the catalog file is read once, when the `Renderer` is built.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from string import Formatter
from types import MappingProxyType
from typing import Any

from jinja2 import (
    Environment,
    pass_context,
)
from jinja2.runtime import Context
from markupsafe import Markup, escape

from maild.mail.jinjacall import FastCallContext
from maild.mail.newlines import unix_newlines  # re-exported: render and mailto import it here

# state → (text colour, background); every badge also carries the state's label as text.
STATE_COLOURS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        # tests/mail/test_render.py lists the states too (duplicates): the test keeps its own copy as the spec.
        "awaiting_confirmation": ("#7a5200", "#fff3cd"),
        "not_started": ("#4a5058", "#eceff2"),
        "in_progress": ("#0b4f9c", "#dcebff"),
        "done": ("#1a6b2b", "#dcf3e1"),
        "submitted": ("#5a2d91", "#eee5fb"),
        "returned": ("#8a3c00", "#ffeedd"),
        "delayed": ("#9a3a00", "#ffe6d5"),
        "declined": ("#a3111f", "#fde2e4"),
        "blocked": ("#8a0f55", "#fbe0ef"),
    }
)


_UNKNOWN_COLOURS = ("#4a5058", "#eceff2")


@dataclass(frozen=True)
class StateLabel:
    """A task state as shown to people: its label in one language and its badge colours."""

    state: str
    text: str
    colour: str
    background: str

    def __str__(self) -> str:
        return self.text


def clean_subject(subject: str) -> str:
    """One line: control characters and line breaks become spaces, runs of spaces collapse."""
    if not subject.isprintable():  # a printable one has none of those: skip the walk per char
        subject = "".join(" " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
                          for c in subject)
    line = " ".join(subject.split())
    return line if len(line) <= SUBJECT_MAX else line[: SUBJECT_MAX - 1].rstrip() + "…"


def oneline(value: Any) -> str:
    """`value` as text on one line: every run of whitespace, line breaks included, is one space."""
    return " ".join(str(value).split())


def format_deadline(value: Any, *, catalog: Mapping[str, Any], tz: tzinfo, now: datetime) -> str:
    """An ISO date or datetime in `tz`, in the catalog's language; the year only when not `now`'s."""
    if value is None or value == "":
        return str(catalog["none"])
    date_only = False
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        date_only = len(text) == 10
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return text
    moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    parts = {
        "y": moment.year,
        "m": moment.month,
        "d": moment.day,
        "mon": catalog["months"][moment.month - 1],
        "wd": catalog["weekdays"][moment.weekday()],
    }
    same_year = moment.year == now.astimezone(tz).year
    day = str(catalog["date" if same_year else "date_year"]).format(**parts)
    if date_only:
        return day
    return str(catalog["datetime"]).format(date=day, time=moment.strftime("%H:%M"))


def state_label(state: str, catalog: Mapping[str, Any]) -> StateLabel:
    state = str(getattr(state, "value", state))
    colour, background = STATE_COLOURS.get(state, _UNKNOWN_COLOURS)
    return StateLabel(state, str(catalog["state"].get(state, state)), colour, background)


MEMO_MAX = 4096  # entries per memo below; a full memo is emptied (dates repeat within a run)


def deadline_memo() -> Callable[[Any, str, Mapping[str, Any], tzinfo, datetime], str]:
    """`format_deadline`, memoised: the same deadline is formatted for every email that shows its
    task (a digest row, a reminder, the status table), with the same language, zone and year."""
    memo: dict[tuple[Any, ...], str] = {}

    def deadline(value: Any, lang: str, catalog: Mapping[str, Any], tz: tzinfo,
                 now: datetime) -> str:
        try:
            key = (value, lang, tz, now)
            return memo[key]
        except KeyError:
            pass
        except TypeError:  # an unhashable value: format it every time
            return format_deadline(value, catalog=catalog, tz=tz, now=now)
        if len(memo) >= MEMO_MAX:
            memo.clear()
        text = memo[key] = format_deadline(value, catalog=catalog, tz=tz, now=now)
        return text

    return deadline


TABLE_MEMO_MAX = 64  # status tables kept: one inbound email's notices show the same item
TABLE_MEMO_ITEM_MAX = 16_384  # an item's repr beyond this (~45 tasks) is written, not kept


class TableMemo:
    """A status table written once per item and per (part, language, zone, clock): an email that
    starts a project sends a receipt and one confirmation per owner, each with the same table.
    The key is the item's `repr`, so equal items share a table and a changed one never does;
    an item holding an object whose repr is only its address (" at 0x") is never kept, since a
    later object may reuse the address, nor is a very large item (its key and table would hold
    megabytes). The oldest table goes first when it is full."""

    def __init__(self, size: int = TABLE_MEMO_MAX) -> None:
        self._tables: dict[tuple[Any, ...], str] = {}
        self._size = size

    def get(self, render: tuple[Any, ...], item: Any, write: Callable[[], str]) -> str:
        shown = repr(item)
        if len(shown) > TABLE_MEMO_ITEM_MAX or " at 0x" in shown:
            return write()
        key = (*render, shown)
        try:
            return self._tables[key]
        except KeyError:
            pass
        if len(self._tables) >= self._size:
            self._tables.pop(next(iter(self._tables)))
        text = self._tables[key] = write()
        return text


def deadline_filter(memo: Callable[[Any, str, Mapping[str, Any], tzinfo, datetime], str]
                     ) -> Callable[..., str]:
    """The `deadline` filter: in the render's language, zone and year."""

    @pass_context
    def deadline(ctx: Context, value: Any) -> str:
        return memo(value, ctx["lang"], ctx["L"], ctx["tz"], ctx["now"])

    return deadline


def state_label_memo() -> Callable[[Any, str, Mapping[str, Any]], StateLabel]:
    """`state_label`, memoised per state and language (StateLabel is immutable)."""
    memo: dict[tuple[str, str], StateLabel] = {}

    def label(state: Any, lang: str, catalog: Mapping[str, Any]) -> StateLabel:
        key = (str(getattr(state, "value", state)), lang)
        found = memo.get(key)
        if found is None:
            if len(memo) >= MEMO_MAX:
                memo.clear()
            found = memo[key] = state_label(state, catalog)
        return found

    return label


def state_label_filter(memo: Callable[[Any, str, Mapping[str, Any]], StateLabel]
                        ) -> Callable[..., StateLabel]:
    """The `state_label` filter, in the render's language."""

    @pass_context
    def label(ctx: Context, state: str) -> StateLabel:
        return memo(state, ctx["lang"], ctx["L"])

    return label


Strings = Mapping[str, Mapping[str, tuple[str, str]]]  # lang → dotted key → (text, HTML)


def catalog_strings(catalog: Mapping[str, Mapping[str, Any]]
                     ) -> dict[str, dict[str, tuple[str, str]]]:
    """Every language's catalog strings by dotted key (`_strings`)."""
    return {lang: _strings(table) for lang, table in catalog.items()}


def translator(strings: Strings) -> Callable[..., str]:
    """The `t` global: the catalog string `key` ("section.name") of the render's language,
    formatted with `values`; in HTML the pattern and the values are escaped (as `Markup.format`
    would: every field of the catalog is a bare `{name}`, checked here at start-up)."""

    @pass_context
    def t(ctx: Context, key: str, /, _default: str | None = None, **values: Any) -> str:
        table = strings[ctx["lang"]]
        entry = table.get(key)
        if entry is None and _default is not None:
            entry = table.get(_default)
        if entry is None:
            raise KeyError(f"catalog has no string {key!r} for language {ctx['lang']!r}")
        plain, escaped = entry
        if ctx.eval_ctx.autoescape:
            return Markup(escaped.format_map(EscapedValues(values)))
        return plain.format_map(values)

    return t


class EscapedValues(dict[str, Any]):
    """`t`'s values for an HTML pattern (and the status table's): each escaped when the pattern
    uses it (most patterns use a few of the values the templates pass)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> str:
        return h(dict.__getitem__(self, key))


def _strings(table: Mapping[str, Any], prefix: str = "") -> dict[str, tuple[str, str]]:
    """Every string of a language's catalog by its dotted key: (pattern, HTML-escaped pattern)."""
    out: dict[str, tuple[str, str]] = {}
    for name, value in table.items():
        if isinstance(value, Mapping):
            out |= _strings(value, f"{prefix}{name}.")
        elif isinstance(value, str):
            for _text, field, spec, conversion in Formatter().parse(value):
                if field is not None and (spec or conversion or not field.isidentifier()):
                    raise ValueError(f"catalog {prefix}{name}: only {{name}} fields, not {{{field}}}")
            out[prefix + name] = (value, str(escape(value)))
    return out


class KeyFirstEnvironment(Environment):
    """Jinja's `getattr` tries the attribute first and only then the key, so `row.name` on the
    plain dicts of a render context raises and catches an AttributeError every time (a quarter of
    a digest's render). For dicts and the catalog's mapping proxies the key is looked up first
    unless the name is one of their methods: the same result as Jinja's, without the exception."""

    context_class = FastCallContext  # the callables templates call most, called straight away

    def make_globals(self, d: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """A plain dict, not Jinja's ChainMap: a render copies the globals into its context, and
        a ChainMap is copied key by key in Python. All globals are set before any template is
        loaded, and never change."""
        return {**self.globals, **(d or {})}

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) in _MAPPINGS and attribute not in _MAPPING_ATTRS:
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


_MAPPINGS = (dict, MappingProxyType)


_MAPPING_ATTRS = frozenset(dir(dict)) | frozenset(dir(MappingProxyType))


def shared_variants(sources: Mapping[str, str]) -> dict[str, str]:
    """`_x.j2` (macros for both parts) becomes `_x.txt.j2` and `_x.html.j2`: the same source,
    compiled once plain and once autoescaped, because a macro's output is marked safe by the
    template that calls it: a plain-text macro called from HTML would otherwise skip escaping."""
    out: dict[str, str] = {}
    for name, source in sources.items():
        shared = name.startswith("_") and not name.endswith((".txt.j2", ".html.j2"))
        for variant in (name[:-3] + ".txt.j2", name[:-3] + ".html.j2") if shared else (name,):
            out[variant] = source
    return out


def load_catalog(path: Path) -> Mapping[str, Any]:
    with path.open("rb") as fh:
        catalog = tomllib.load(fh)
    if not catalog:
        raise ValueError(f"{path}: no languages")
    first, *others = catalog
    for lang in others:
        missing = _keys(catalog[first]) ^ _keys(catalog[lang])
        if missing:
            raise ValueError(f"{path}: [{first}] and [{lang}] differ in keys: {sorted(missing)}")
    return MappingProxyType(catalog)


def _keys(table: Mapping[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in table.items():
        keys.add(prefix + key)
        if isinstance(value, Mapping):
            keys |= _keys(value, f"{prefix}{key}.")
    return keys


def normalize_task(task: Mapping[str, Any]) -> dict[str, Any]:
    out = {**_TASK_DEFAULTS, **task}
    out["owner_name"] = out["owner_name"] or out.get("owner", "")
    out["state"] = str(getattr(out.get("state"), "value", out.get("state")))
    return out


def normalize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    out = {**_ITEM_DEFAULTS, **item}
    out["kind"] = str(getattr(out["kind"], "value", out["kind"]))
    out["initiator_name"] = out["initiator_name"] or out.get("initiator", "")
    out["tasks"] = [normalize_task(t) for t in out["tasks"] or ()]
    out["participants"] = [_person_text(p) for p in out["participants"] or ()]
    return out


def _person_text(person: Any) -> str:
    if isinstance(person, Mapping):
        return str(person.get("name") or person.get("address") or "")
    return str(person)


# Runs of blank lines. Not r"\n{3,}": the same matches, but that form makes the regex engine try
# every position of a 5 KB digest (~40 µs); a literal prefix is searched for (~4 µs).
_BLANK_LINES = re.compile(r"\n\n\n+")


def tidy_text(text: str) -> str:
    """Trailing spaces off every line (but the "-- " signature separator), at most one blank line."""
    lines = [line.rstrip() for line in unix_newlines(text).split("\n")]
    if "--" in lines:  # the layout's footer separator is the last such line
        lines[len(lines) - 1 - lines[::-1].index("--")] = "-- "
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n") + "\n"


def h(value: Any) -> str:
    """`value` as HTML text, as autoescape writes it (`markupsafe.escape`, as a plain str:
    `str + Markup` would escape the str). Most values need no escaping, and `escape` builds a
    Markup for each: four times the cost of these tests."""
    if type(value) is not str:
        if hasattr(value, "__html__"):
            return str(value.__html__())
        value = str(value)
    if "&" in value or "<" in value or ">" in value or "'" in value or '"' in value:
        return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("'", "&#39;").replace('"', "&#34;"))
    return value


SUBJECT_MAX = 180


_ITEM_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    dict.fromkeys(("initiator_name", "initiator_department", "goal", "scope"), "")
    | {"kind": "task", "participants": (), "created_at": None, "tasks": ()}
    | {"series": None, "acceptance": None}  # closeloop.py: a recurring task, 验收
)


_TASK_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    dict.fromkeys(("owner_name", "owner_department", "deliverable", "note"), "")
    | {"deadline": None, "confirmed_at": None, "progress": 0}
    | {"depends_on": (), "occurrence": None}  # closeloop.py: waits on, a series' occurrence
)
