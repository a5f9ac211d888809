"""The rules of maild's three forms, loaded from `rules/forms.toml`: labels, aliases, choices, templates.

The one job is `load_form_rules(data)` → `FormRules` (data is the parsed TOML); `norm` is how a
label is compared. Pure. A label may belong to one field only: loading fails on a clash, naming
both, so a typo in the rules file is found at start-up rather than by a misread email.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maild.core.model import ItemKind

LANGUAGES = ("zh", "en")
ROW_KEYS = ("name", "owner", "deadline")  # cells a task row cannot do without


@dataclass(frozen=True)
class Choice:
    value: str  # canonical, e.g. "high", "system_outage"
    names: Mapping[str, str]  # language → display name
    aliases: tuple[str, ...] = ()


class Choices(tuple[Choice, ...]):
    """A field's choices, with what `checkboxes.choose` looks names up in (every name, alias
    and value normalised → the value), made once here: it was made again for each cell read."""

    lookup: Mapping[str, str]

    def __new__(cls, choices: Iterable[Choice]) -> Choices:
        made = super().__new__(cls, choices)
        made.lookup = choice_lookup(made)
        return made


def choice_lookup(choices: Iterable[Choice]) -> dict[str, str]:
    return {norm(name): c.value for c in choices for name in (c.value, *c.names.values(),
                                                               *c.aliases)}


@dataclass(frozen=True)
class Template:
    kind: ItemKind
    names: Mapping[str, str]  # language → the form's name
    markers: tuple[str, ...]  # subject markers, written inside [..] or 【..】
    fields: tuple[str, ...]  # in the order the form prints them
    required: tuple[str, ...]
    labels: Mapping[str, Mapping[str, str]]  # language → field → label replacing the default
    subject_words: tuple[str, ...] = ()  # the form's own name, as people put it in a subject
    signature: frozenset[str] = frozenset()  # normalised labels only this form uses
    columns: tuple[str, ...] = ()  # its task table as the guide prints it (columns or fields)
    column_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class FormRules:
    labels: Mapping[str, Mapping[str, str]]  # field → language → label
    hints: Mapping[str, Mapping[str, str]]  # field → language → hint shown after the label
    field_index: Mapping[str, str]  # normalised label → field
    column_labels: Mapping[str, Mapping[str, str]]  # column → language → label
    column_index: Mapping[str, str]  # normalised label → column
    column_order: tuple[str, ...]
    choices: Mapping[str, tuple[Choice, ...]]
    templates: Mapping[ItemKind, Template]

    def label(self, key: str, language: str, kind: ItemKind | None = None) -> str:
        lang = language_key(language)
        template = self.templates.get(kind) if kind else None
        if template and key in template.labels.get(lang, {}):
            return template.labels[lang][key]
        return self.labels[key][lang]

    def column_label(self, key: str, language: str, kind: ItemKind | None = None) -> str:
        """A task table column's label in `kind`'s form (a field key names a field's label)."""
        lang = language_key(language)
        template = self.templates.get(kind) if kind else None
        if template and key in template.column_labels.get(lang, {}):
            return template.column_labels[lang][key]
        if key in self.column_labels:
            return self.column_labels[key][lang]
        return self.label(key, lang, kind)


def load_form_rules(data: Mapping[str, Any]) -> FormRules:
    """Build the rules from the parsed `forms.toml`; ValueError names what is wrong."""
    labels, field_index = _named(data, "fields")
    hints = {key: dict(spec.get("hint", {})) for key, spec in data["fields"].items()}
    column_labels, column_index = _named(data, "columns")
    order = tuple(data.get("table", {}).get("order", column_labels))
    if set(order) - set(column_labels) or not set(ROW_KEYS) <= set(order):
        raise ValueError(f"forms: table.order {order!r} must name columns incl. {ROW_KEYS}")
    templates: dict[ItemKind, Template] = {}
    for name, spec in data.get("templates", {}).items():
        try:
            kind = ItemKind(name)
        except ValueError:
            raise ValueError(f"forms: unknown template {name!r}") from None
        fields, required = tuple(spec.get("fields", ())), tuple(spec.get("required", ()))
        # A required field may be left out of the printed form when the subject gives it (the
        # title of an emergency is its subject).
        unknown = set(fields + required) - set(labels)
        if unknown:
            raise ValueError(f"forms: template {name}: unknown fields {sorted(unknown)}")
        own = _own_labels(spec, "labels", field_index, name)
        columns = tuple(spec.get("columns", ()))
        strange = set(columns) - set(column_labels) - set(labels)
        if strange:
            raise ValueError(f"forms: template {name}: unknown columns {sorted(strange)}")
        own_columns = _own_labels(spec, "column_labels", column_index, name)
        templates[kind] = Template(
            kind, _names_of(spec, f"templates.{name}"), tuple(spec.get("markers", ())), fields,
            required, own, tuple(spec.get("subject_words", ())),
            frozenset(norm(label) for label in spec.get("signature", ())), columns, own_columns)
    if set(templates) != set(ItemKind):
        raise ValueError(f"forms: templates needed for {[k.value for k in ItemKind]}")
    choices = {key: Choices(Choice(c["value"], _names_of(c, f"choices.{key}"),
                                   tuple(c.get("aliases", ()))) for c in values)
               for key, values in data.get("choices", {}).items()}
    if set(choices) - set(labels):
        raise ValueError(f"forms: choices for unknown fields {sorted(set(choices) - set(labels))}")
    return FormRules(labels, hints, field_index, column_labels, column_index, order, choices,
                     templates)


def _named(data: Mapping[str, Any], section: str) -> tuple[dict[str, dict[str, str]],
                                                           dict[str, str]]:
    """Labels per language of each key in `section`, and the index of all its labels."""
    if not data.get(section):
        raise ValueError(f"forms: [{section}] is missing")
    labels: dict[str, dict[str, str]] = {}
    index: dict[str, str] = {}
    for key, spec in data[section].items():
        labels[key] = _names_of(spec, f"{section}.{key}")
        _index(index, key, [*labels[key].values(), *spec.get("aliases", ())], section)
    return labels, index


def _own_labels(spec: Mapping[str, Any], section: str, index: dict[str, str],
                template: str) -> dict[str, dict[str, str]]:
    """A template's own labels (language → key → label), added to the labels it is read by."""
    own = {lang: dict(v) for lang, v in spec.get(section, {}).items()}
    for over in own.values():
        for key, label in over.items():
            _index(index, key, [label], f"templates.{template}.{section}")
    return own


def _names_of(spec: Mapping[str, Any], where: str) -> dict[str, str]:
    missing = [lang for lang in LANGUAGES if not spec.get(lang)]
    if missing:
        raise ValueError(f"forms: {where} needs {missing}")
    return {lang: spec[lang] for lang in LANGUAGES}


def _index(index: dict[str, str], key: str, labels: Iterable[str], where: str) -> None:
    for label in labels:
        normed = norm(label)
        if index.setdefault(normed, key) != key:
            raise ValueError(f"forms: [{where}] label {label!r} is both {index[normed]} and {key}")


def language_key(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def norm(label: str) -> str:
    """A label as compared: half-width, case-folded, hints in (..) dropped, spaces tidied."""
    s = unicodedata.normalize("NFKC", label).casefold()
    s = _HINT.sub("", s).replace("*", "")
    s = _SLASH.sub("/", _SPACES.sub(" ", s))
    return s.strip(" #-•:")


# compiled once: `re.sub(pattern, ...)` looked each up in re's cache, ~120 times per email
_HINT = re.compile(r"\([^)]*\)")
_SPACES = re.compile(r"\s+")
_SLASH = re.compile(r"\s*/\s*")
