"""Print maild's forms back to people: blank for help replies, re-filled for validation replies.

`blank_form(kind, language, rules)` and `refill_form(result, language, rules)` return plain text
that `forms.read_form` reads back as the same form (one `Label：value` line per field, then the
task table as `a | b | c` rows). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from .formrules import FormRules, language_key
from .model import FormResult, ItemKind


def blank_form(kind: ItemKind, language: str, rules: FormRules) -> str:
    """The form to fill in, one `Label：` line per field, then the task table's header row."""
    return _print(kind, language, rules, {}, ())


def refill_form(result: FormResult, language: str, rules: FormRules) -> str:
    """The form with the sender's values put back (empty where missing), malformed rows as sent."""
    kind = result.kind or max(
        rules.templates, key=lambda k: len(set(result.fields) & set(rules.templates[k].fields)))
    rows: list[str] = []
    drafts = iter(result.tasks)
    malformed = {e.task: e.value for e in result.errors if e.code == "task_malformed" and e.task}
    with_note = any(d.note for d in result.tasks)
    for number in range(1, len(result.tasks) + len(malformed) + 1):
        if number in malformed:
            rows.append(malformed[number])
        else:
            draft = next(drafts, None)
            if draft is not None:
                cells = [draft.name, draft.owner, draft.deadline, draft.deliverable]
                rows.append(" | ".join(cells + ([draft.note] if with_note else [])))
    return _print(kind, language, rules, result.fields, tuple(rows), with_note)


def _print(kind: ItemKind, language: str, rules: FormRules, values: Mapping[str, str],
           rows: tuple[str, ...], with_note: bool = False) -> str:
    lang = language_key(language)
    template = rules.templates[kind]
    colon = "：" if lang == "zh" else ": "
    keys = [*template.fields, *(k for k in values if k not in template.fields and k != "tasks")]
    lines = [template.names[lang], ""]
    for key in keys:
        hint = rules.hints.get(key, {}).get(lang)
        label = rules.label(key, lang, kind)
        if hint:
            label += f"（{hint}）" if lang == "zh" else f" ({hint})"
        if key == "tasks":
            columns = [c for c in rules.column_order if c != "note" or with_note]
            lines += [label + colon.rstrip(),
                      " | ".join(rules.column_labels[c][lang] for c in columns), *rows]
            continue
        value = _display(key, values.get(key, ""), lang, rules).split("\n")
        lines.append((label + colon + value[0]).rstrip())
        lines += ["  " + more for more in value[1:]]
    return "\n".join(lines) + "\n"


def _display(key: str, value: str, lang: str, rules: FormRules) -> str:
    for choice in rules.choices.get(key, ()):
        if value == choice.value:
            return choice.names[lang]
    return value
