"""Print maild's forms back to people: blank for help replies, re-filled for validation replies.

`blank_form(kind, language, rules)` and `refill_form(result, language, rules)` return plain text
that `forms.read_form` reads back as the same form: one `Label：value` line per field (a choice
field shows its options as boxes, the chosen one ticked), then the task table as `a | b | c`
rows under the guide's own column labels (沟通事项 | 时间节点 | 负责人 | 完成状态 | 备注/问题反馈).
A daily-task form with several rows is refilled as its table (任务名称 | 发起人 | 负责人 | …), the
way the guide prints template 2. `table_header` gives a form's full header, item-level columns
first, as the guide prints it. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping

from maild.core.formrules import FormRules, language_key
from maild.core.model import FormResult, ItemKind, TaskDraft

_DRAFT_CELLS = ("name", "owner", "deadline", "deliverable", "note", "status", "progress",
                "priority", "feedback")


def blank_form(kind: ItemKind, language: str, rules: FormRules) -> str:
    """The form to fill in, one `Label：` line per field, then the task table's header row."""
    return _print(kind, language, rules, {}, ())


def table_header(kind: ItemKind, language: str, rules: FormRules) -> list[str]:
    """The guide's table for `kind`: its item-level fields, then its task columns."""
    lang = language_key(language)
    template = rules.templates[kind]
    item_level = [key for key in template.fields if key != "tasks"] if template.columns else []
    if kind is ItemKind.TASK:
        item_level = []  # template 2 is one row per task, 发起人 included
    keys = [*item_level, *template.columns] if template.columns else list(template.fields)
    return [_column_title(key, lang, kind, rules) for key in keys]


def refill_form(result: FormResult, language: str, rules: FormRules) -> str:
    """The form with the sender's values put back (empty where missing), malformed rows as sent."""
    kind = result.kind or max(
        rules.templates, key=lambda k: len(set(result.fields) & set(rules.templates[k].fields)))
    if kind is ItemKind.TASK and len(result.tasks) > 1:
        return _print_task_table(result, language, rules)
    rows: list[str] = []
    drafts = iter(result.tasks)
    malformed = {e.task: e.value for e in result.errors if e.code == "task_malformed" and e.task}
    columns = _columns(kind, rules, result.tasks)
    for number in range(1, len(result.tasks) + len(malformed) + 1):
        if number in malformed:
            rows.append(malformed[number])
        else:
            draft = next(drafts, None)
            if draft is not None:
                rows.append(" | ".join(_cell(draft, key, language, rules) for key in columns))
    values = dict(result.fields)
    if kind is not ItemKind.PROJECT:
        rows = []
    return _print(kind, language, rules, values, tuple(rows), columns)


def _columns(kind: ItemKind, rules: FormRules, drafts: tuple[TaskDraft, ...]) -> list[str]:
    """The task columns to print: the form's own, and any other column a draft fills."""
    columns = list(rules.templates[kind].columns or rules.column_order)
    for key in rules.column_order:
        if key not in columns and any(getattr(d, key, "") for d in drafts):
            columns.append(key)
    return columns


def _cell(draft: TaskDraft, key: str, language: str, rules: FormRules) -> str:
    if key in _DRAFT_CELLS:
        value = str(getattr(draft, key))
    else:
        value = draft.row.get(key, "")
    return _display(key, value, language_key(language), rules).replace("\n", " ")


def _print_task_table(result: FormResult, language: str, rules: FormRules) -> str:
    lang = language_key(language)
    template = rules.templates[ItemKind.TASK]
    lines = [template.names[lang], "",
             " | ".join(table_header(ItemKind.TASK, lang, rules))]
    for draft in result.tasks:
        lines.append(" | ".join(_cell(draft, key, lang, rules) for key in template.columns))
    for error in result.errors:
        if error.code == "task_malformed":
            lines.append(error.value)
    return "\n".join(lines) + "\n"


def _column_title(key: str, lang: str, kind: ItemKind, rules: FormRules) -> str:
    label = rules.column_label(key, lang, kind)
    hint = rules.hints.get(key, {}).get(lang)
    if hint:
        label += f"（{hint}）" if lang == "zh" else f" ({hint})"
    return label


def _print(kind: ItemKind, language: str, rules: FormRules, values: Mapping[str, str],
           rows: tuple[str, ...], columns: list[str] | None = None) -> str:
    lang = language_key(language)
    template = rules.templates[kind]
    colon = "：" if lang == "zh" else ": "
    keys = [*(k for k in template.fields if k != "tasks"),
            *(k for k in values if k not in template.fields and k != "tasks"),
            *(["tasks"] if "tasks" in template.fields else [])]
    lines = [template.names[lang], ""]
    for key in keys:
        hint = rules.hints.get(key, {}).get(lang)
        label = rules.label(key, lang, kind)
        value = _display(key, values.get(key, ""), lang, rules)
        if hint and "□" in hint and key in rules.choices and value:
            value, hint = _ticked(hint, value), None  # the options, the chosen one ticked
        if hint:
            label += f"（{hint}）" if lang == "zh" else f" ({hint})"
        if key == "tasks":
            cols = columns or _columns(kind, rules, ())
            lines += [label + colon.rstrip(),
                      " | ".join(_column_title(c, lang, kind, rules) for c in cols), *rows]
            continue
        parts = value.split("\n")
        lines.append((label + colon + parts[0]).rstrip())
        lines += ["  " + more for more in parts[1:]]
    return "\n".join(lines) + "\n"


def _ticked(hint: str, chosen: str) -> str:
    """"□高□中□低" with `chosen` ticked: "□高 ☑中 □低"."""
    options = [o for o in hint.split("□") if o]
    return " ".join(("☑" if o == chosen else "□") + o for o in options) if chosen in options \
        else chosen


def _display(key: str, value: str, lang: str, rules: FormRules) -> str:
    for choice in rules.choices.get(key, ()):
        if value == choice.value:
            return choice.names[lang]
    return value
