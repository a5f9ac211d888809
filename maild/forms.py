"""Structured fields from an email's text or tables: which form it is, its fields, its task rows.

The one job is `read_form(subject, text, rules, html)` → `FormResult`; `blank_form` and
`refill_form` print the forms back for help and validation replies. Labels, aliases, choices and
required fields come from `rules/forms.toml` (`load_form_rules` takes the parsed dict). Pure.

Surprises worth knowing:
- Values are returned raw and trimmed: owners and dates are resolved later by intake (people
  directory, `dates.parse_deadline`). Only fields with `[choices]` ("priority", "emergency_type")
  are normalised to their canonical value (e.g. "高" → "high") when recognised.
- A line is a field only when its label is known; unknown "Foo: bar" lines are prose. The first
  occurrence of a label wins; its value continues on following lines until a blank line or the
  next label, and always on lines indented deeper than its label line.
- Task rows: `|`/`｜`/tab separated lines anywhere (3+ filled cells), and also 2+-space aligned
  columns after the tasks label or a header row. A header row (2+ cells that are column labels, in
  either language) decides the column order, else name | owner | deadline | deliverable | note.
  In the tasks section, a blank line after the rows ends the table unless the next line is a
  `|`/tab row. HTML tables (rowspan/colspan expanded) are used when the text has no valid row.
- Errors: "missing" per absent required field, "task_malformed" (field "tasks", task = 1-based
  row, value = the raw line) for a row without name, owner or deadline, "no_tasks" for a project
  without rows (value = any text written after the tasks label).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from .model import FieldError, FormResult, ItemKind, TaskDraft

LANGUAGES = ("zh", "en")
_ROW_KEYS = ("name", "owner", "deadline")  # cells a task row cannot do without
_MAX_SPAN = 50


@dataclass(frozen=True)
class Choice:
    value: str  # canonical, e.g. "high", "system_outage"
    names: Mapping[str, str]  # language → display name
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    kind: ItemKind
    names: Mapping[str, str]  # language → the form's name
    markers: tuple[str, ...]  # subject markers, written inside [..] or 【..】
    fields: tuple[str, ...]  # in the order the form prints them
    required: tuple[str, ...]
    labels: Mapping[str, Mapping[str, str]]  # language → field → label replacing the default


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
        lang = _language(language)
        template = self.templates.get(kind) if kind else None
        if template and key in template.labels.get(lang, {}):
            return template.labels[lang][key]
        return self.labels[key][lang]


def load_form_rules(data: Mapping[str, Any]) -> FormRules:
    """Build the rules from the parsed `forms.toml`; ValueError names what is wrong."""
    labels, field_index = _named(data, "fields")
    hints = {key: dict(spec.get("hint", {})) for key, spec in data["fields"].items()}
    column_labels, column_index = _named(data, "columns")
    order = tuple(data.get("table", {}).get("order", column_labels))
    if set(order) - set(column_labels) or not set(_ROW_KEYS) <= set(order):
        raise ValueError(f"forms: table.order {order!r} must name columns incl. {_ROW_KEYS}")
    templates: dict[ItemKind, Template] = {}
    for name, spec in data.get("templates", {}).items():
        try:
            kind = ItemKind(name)
        except ValueError:
            raise ValueError(f"forms: unknown template {name!r}") from None
        fields, required = tuple(spec.get("fields", ())), tuple(spec.get("required", ()))
        unknown = set(fields + required) - set(labels) or set(required) - set(fields)
        if unknown:
            raise ValueError(f"forms: template {name}: unknown or unlisted fields {sorted(unknown)}")
        own = {lang: dict(v) for lang, v in spec.get("labels", {}).items()}
        for over in own.values():
            for key, label in over.items():
                _index(field_index, key, [label], f"templates.{name}.labels")
        templates[kind] = Template(kind, _names_of(spec, f"templates.{name}"),
                                   tuple(spec.get("markers", ())), fields, required, own)
    if set(templates) != set(ItemKind):
        raise ValueError(f"forms: templates needed for {[k.value for k in ItemKind]}")
    choices = {key: tuple(Choice(c["value"], _names_of(c, f"choices.{key}"),
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


def _names_of(spec: Mapping[str, Any], where: str) -> dict[str, str]:
    missing = [lang for lang in LANGUAGES if not spec.get(lang)]
    if missing:
        raise ValueError(f"forms: {where} needs {missing}")
    return {lang: spec[lang] for lang in LANGUAGES}


def _index(index: dict[str, str], key: str, labels: Iterable[str], where: str) -> None:
    for label in labels:
        norm = _norm(label)
        if index.setdefault(norm, key) != key:
            raise ValueError(f"forms: [{where}] label {label!r} is both {index[norm]} and {key}")


def _language(language: str) -> str:
    return "zh" if language.lower().startswith("zh") else "en"


def _norm(label: str) -> str:
    """A label as compared: half-width, case-folded, hints in (..) dropped, spaces tidied."""
    s = unicodedata.normalize("NFKC", label).casefold()
    s = re.sub(r"\([^)]*\)", "", s).replace("*", "")
    s = re.sub(r"\s*/\s*", "/", re.sub(r"\s+", " ", s))
    return s.strip(" #-•:")


# --------------------------------------------------------------------------------------------
# Reading

_LABEL_LINE = re.compile(
    r"^\s*(?:[-*+•·●○■▪◦>]\s*|(?:\d{1,2}|[一二三四五六七八九十]{1,3})\s*[.、)）]\s*|[(（]\d{1,2}[)）]\s*)?"
    r"(?:【(?P<bracket>[^】]{1,80})】\s*[:：]?|(?P<plain>[^:：|｜\t]{1,80}?)\s*[:：])\s*(?P<value>.*)$")
_NUMBERED = re.compile(r"^\s*(?:\d{1,3}\s*[.、)）]|[(（]\d{1,3}[)）]|[-*•·●▪◦])\s*")
_SEPARATOR = re.compile(r"^[\s|:+=-]*-{3,}[\s|:+=-]*$")
_PROSE_END = re.compile(r"[。！？!?…:：]\s*$")
_CHECKED = re.compile(r"(?:[☑☒✓✔√■▣●]|\[[xX✓]\])\s*([^\s☐□☑☒✓✔√■▣●\[\]/|,，、]+)")


def _label(line: str, rules: FormRules) -> tuple[str, str] | None:
    m = _LABEL_LINE.match(line)
    if not m:
        return None
    key = rules.field_index.get(_norm(m["bracket"] or m["plain"]))
    return (key, m["value"].lstrip("*").strip()) if key else None


def _cells(line: str) -> tuple[list[str], bool]:
    """Split a line into cells; the flag says the separator was `|` or a tab (a strong sign)."""
    s = line.strip().replace("｜", "|")
    if "|" in s:
        s = s[1:] if s.startswith("|") else s
        s = s[:-1] if s.endswith("|") else s
        return [c.strip() for c in s.split("|")], True
    if "\t" in s:
        return [c.strip() for c in s.split("\t")], True
    return [c.strip() for c in re.split(r"[ \xa0]{2,}|\u3000+", s)], False


def _header(cells: list[str], rules: FormRules) -> list[tuple[str, str] | None] | None:
    slots: list[tuple[str, str] | None] = []
    for cell in cells:
        norm = _norm(cell)
        if norm in rules.column_index:
            slots.append(("column", rules.column_index[norm]))
        elif norm in rules.field_index:
            slots.append(("field", rules.field_index[norm]))
        else:
            slots.append(None)
    return slots if sum(1 for s in slots if s and s[0] == "column") >= 2 else None


@dataclass
class _Reader:
    """The state of one pass over the lines of a body (local to one `read_form` call)."""

    rules: FormRules
    fields: dict[str, str] = field(default_factory=dict)
    rows: list[tuple[TaskDraft | None, str]] = field(default_factory=list)  # None: malformed
    tasks_label: bool = False
    tasks_inline: str = ""
    current: str | None = None  # the field whose value continues on the next line
    indent: int = 0  # of the current field's label line; deeper lines always continue it
    in_tasks: bool = False  # after the tasks label
    table: bool = False  # inside a table outside the tasks section
    header: list[tuple[str, str] | None] | None = None
    block_rows: bool = False  # a row since the last blank line
    strict: bool = False  # tasks section, after a blank line that followed rows

    def line(self, raw: str) -> None:
        text = raw.strip()
        if not text:
            self.current = None
            self.strict = self.strict or (self.in_tasks and self.block_rows)
            self.block_rows = False
            if not self.in_tasks:
                self.table, self.header = False, None
            return
        indent = len(raw) - len(raw.lstrip())
        if self.current and indent > self.indent:
            self.fields[self.current] += "\n" + text
            return
        label = _label(raw, self.rules)
        if label:
            self.field(*label)
            self.indent = indent
            return
        cells, strong = _cells(text)
        if _SEPARATOR.match(text):
            return
        header = _header(cells, self.rules)
        if header:
            self.header, self.table, self.current = header, not self.in_tasks, None
            return
        if self.in_tasks or self.table:
            if len(cells) >= 2 and (strong or not self.strict):
                self.row(cells, text)
            elif self.in_tasks and not self.strict and (
                    _NUMBERED.match(text) or (self.block_rows and not _PROSE_END.search(text))):
                self.rows.append((None, text))
            elif self.strict or self.table:
                self.in_tasks = self.table = False  # the table is over; prose follows
            return
        if strong and sum(1 for c in cells if c) >= 3:
            self.table, self.current = True, None
            self.row(cells, text)
        elif strong and len(cells) == 2 and _norm(cells[0]) in self.rules.field_index:
            self.fields.setdefault(self.rules.field_index[_norm(cells[0])], cells[1])
        elif self.current:
            self.fields[self.current] += "\n" + text

    def field(self, key: str, value: str) -> None:
        self.in_tasks = self.table = self.strict = self.block_rows = False
        self.header, self.current = None, None
        if key == "tasks":
            self.tasks_label = self.in_tasks = True
            cells, _ = _cells(value)
            if len(cells) >= 2:
                self.row(cells, value)
            else:
                self.tasks_inline = value
        elif key not in self.fields:
            self.fields[key], self.current = value, key

    def row(self, cells: list[str], raw: str) -> None:
        self.block_rows = True
        draft, form_fields, is_task = _task_row(cells, self.header, self.rules)
        for key, value in form_fields.items():
            self.fields.setdefault(key, value)
        if is_task:
            self.rows.append((draft, raw))


def _task_row(cells: list[str], header: list[tuple[str, str] | None] | None,
              rules: FormRules) -> tuple[TaskDraft | None, dict[str, str], bool]:
    """A row's task (None when malformed), the form fields its header columns carry, and
    whether it has any task cell at all (a row of form fields only is no task)."""
    if header is None:
        cells = cells[1:] if cells and cells[0].isdecimal() else cells  # an index column
        header = [("column", name) for name in rules.column_order]
    values: dict[str, dict[str, str]] = {"column": {}, "field": {}}
    for cell, slot in zip(cells, header, strict=False):
        if slot and cell:
            values[slot[0]].setdefault(slot[1], cell)
    columns = values["column"]
    if "name" in columns:
        columns["name"] = _NUMBERED.sub("", columns["name"]).strip()
    if not all(columns.get(k) for k in _ROW_KEYS):
        return None, values["field"], any(columns.values())
    draft = TaskDraft(columns["name"], columns["owner"], columns["deadline"],
                      columns.get("deliverable", ""), columns.get("note", ""))
    return draft, values["field"], True


class _HTMLTables(HTMLParser):
    """Tables as lists of rows of (text, rowspan, colspan), and the text lines outside them."""

    _SKIP = frozenset({"script", "style", "head", "title"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                        "table", "blockquote", "pre", "hr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[tuple[str, int, int]]]] = []
        self.open: list[dict[str, Any]] = []  # open tables: rows, the open cell and its spans
        self.lines: list[str] = [""]
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "table":
            self.open.append({"rows": [], "cell": None, "span": (1, 1)})
        elif tag == "tr" and self.open:
            self._close_cell()
            self.open[-1]["rows"].append([])
        elif tag in ("td", "th") and self.open:
            self._close_cell()
            spans = dict(attrs)
            self.open[-1]["cell"] = []
            self.open[-1]["span"] = (_span(spans.get("rowspan")), _span(spans.get("colspan")))
        elif tag in self._BLOCK:
            self._break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCK:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in ("td", "th") and self.open:
            self._close_cell()
        elif tag == "table" and self.open:
            self._close_cell()
            self.tables.append(self.open.pop()["rows"])
        elif tag in self._BLOCK:
            self._break()

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.open and self.open[-1]["cell"] is not None:
            self.open[-1]["cell"].append(data)
        elif not self.open:
            self.lines[-1] += data.replace("\xa0", " ")

    def _break(self) -> None:
        if self.open and self.open[-1]["cell"] is not None:
            self.open[-1]["cell"].append("\n")
        elif not self.open:
            self.lines.append("")

    def _close_cell(self) -> None:
        table = self.open[-1]
        if table["cell"] is None:
            return
        text = _squash("".join(table["cell"]))
        if not table["rows"]:
            table["rows"].append([])
        table["rows"][-1].append((text, *table["span"]))
        table["cell"] = None


def _squash(text: str) -> str:
    """Collapse whitespace; a line break between two CJK characters is no space at all."""
    parts = re.split(r"(\s+)", text.replace("\xa0", " ").strip())
    out = parts[0]
    for gap, piece in zip(parts[1::2], parts[2::2], strict=True):
        cjk = out[-1:] >= "\u2e80" and piece[:1] >= "\u2e80"
        out += ("" if cjk and "\n" in gap else " ") + piece
    return out


def _span(value: str | None) -> int:
    return min(int(value), _MAX_SPAN) if value and value.strip().isdecimal() and int(value) else 1


def _grid(rows: list[list[tuple[str, int, int]]]) -> list[list[str]]:
    """Rows of cell texts with rowspan/colspan expanded, so columns line up with the header."""
    grid: list[list[str]] = []
    carry: dict[int, tuple[str, int]] = {}  # column → (text, rows below it still covers)
    for row in rows:
        out: dict[int, str] = {}
        col = 0
        for text, rowspan, colspan in row:
            while col in carry:
                out[col] = _take(carry, col)
                col += 1
            for k in range(colspan):
                out[col + k] = text if k == 0 else ""
            col += colspan
            for k in range(colspan if rowspan > 1 else 0):
                carry[col - colspan + k] = (out[col - colspan + k], rowspan - 1)
        for c in sorted(set(carry) - set(out)):
            out[c] = _take(carry, c)
        grid.append([out.get(i, "") for i in range(max(out) + 1)] if out else [])
    return grid


def _take(carry: dict[int, tuple[str, int]], col: int) -> str:
    text, left = carry[col]
    if left <= 1:
        del carry[col]
    else:
        carry[col] = (text, left - 1)
    return text


def _read_html(html: str, rules: FormRules, with_text: bool) -> _Reader:
    """Fields and task rows from an HTML body (its text lines too when `with_text`)."""
    parser = _HTMLTables()
    parser.feed(html)
    parser.close()
    while parser.open:  # unclosed tables still count
        parser.handle_endtag("table")
    reader = _Reader(rules)
    if with_text:
        for line in parser.lines:
            reader.line(line)
    for table in parser.tables:
        grid = [cells for cells in _grid(table) if any(cells)]
        at = next((i for i, cells in enumerate(grid[:3]) if _header(cells, rules)), None)
        header = None if at is None else _header(grid[at], rules)
        above, body = (grid, []) if at is None else (grid[:at], grid[at + 1:])
        if header is None and any(sum(1 for c in cells if c) >= 3 for cells in grid):
            above, body = [], grid
        for cells in above:  # a two-column "label | value" table, a title row, or layout
            key = rules.field_index.get(_norm(cells[0])) if len(cells) >= 2 else None
            if key and key != "tasks":
                reader.fields.setdefault(key, cells[1])
        reader.header = header
        for cells in body:
            reader.row(cells, " | ".join(cells))
    return reader


# --------------------------------------------------------------------------------------------
# Kind and result


def detect_kind(subject: str, fields: Mapping[str, str], rules: FormRules) -> ItemKind | None:
    """The subject marker ([项目], 【任务】, [Urgent] …) first, else what the fields suggest.

    `fields` may carry a "tasks" key (any value) when the body had a tasks label or task rows.
    """
    subject = unicodedata.normalize("NFKC", subject).casefold()
    found: list[tuple[int, ItemKind]] = []
    for kind, template in rules.templates.items():
        for marker in template.markers:
            m = re.search(r"[\[【]\s*" + re.escape(marker.casefold()) + r"\s*[\]】]", subject)
            if m:
                found.append((m.start(), kind))
    if found:
        return min(found, key=lambda hit: hit[0])[1]
    if fields.get("emergency_type") or fields.get("responder"):
        return ItemKind.EMERGENCY
    if "tasks" in fields or fields.get("participants"):
        return ItemKind.PROJECT
    if fields.get("owner") and fields.get("deadline"):
        return ItemKind.TASK
    return None


def read_form(subject: str, text: str, rules: FormRules, html: str | None = None) -> FormResult:
    """The form in one email: kind, raw fields, task rows and what is missing or malformed."""
    reader = _Reader(rules)
    for line in text.splitlines():
        reader.line(line)
    if html and not any(draft for draft, _ in reader.rows):
        page = _read_html(html, rules, with_text=not text.strip())
        if page.rows:
            reader.rows = page.rows
        for key, value in page.fields.items():
            reader.fields.setdefault(key, value)
        reader.tasks_label = reader.tasks_label or page.tasks_label
        reader.tasks_inline = reader.tasks_inline or page.tasks_inline
    fields = {k: v.strip() for k, v in reader.fields.items() if v.strip()}
    probe = {**fields, "tasks": "yes"} if reader.rows or reader.tasks_label else fields
    kind = detect_kind(subject, probe, rules)
    for key, choices in rules.choices.items():
        if key in fields:
            fields[key] = _choose(fields[key], choices) or fields[key]

    drafts = tuple(draft for draft, _ in reader.rows if draft)
    row_errors = [FieldError("tasks", "task_malformed", raw, number)
                  for number, (draft, raw) in enumerate(reader.rows, start=1) if draft is None]
    if kind is ItemKind.TASK and drafts and not fields.get("owner"):
        first = drafts[0]  # a follow-up table instead of fields: its rows are the tasks
        for key, value in (("title", first.name), ("owner", first.owner),
                           ("deadline", first.deadline), ("deliverable", first.deliverable)):
            if value:
                fields.setdefault(key, value)
    elif kind is ItemKind.TASK:
        if reader.tasks_inline:
            fields.setdefault("title", reader.tasks_inline.strip())
        drafts, row_errors = (TaskDraft(fields.get("title", ""), fields.get("owner", ""),
                                        fields.get("deadline", ""), fields.get("deliverable", ""),
                                        fields.get("note", "")),), []
    elif kind is ItemKind.EMERGENCY:
        name = fields.get("title") or fields.get("description", "").split("\n")[0].strip()
        drafts, row_errors = (TaskDraft(name, fields.get("responder", ""), fields.get("eta", ""),
                                        fields.get("plan", ""), fields.get("note", "")),), []
    if kind is None:
        return FormResult(None, fields, drafts)
    template = rules.templates[kind]
    errors = [FieldError(key, "missing") for key in template.required
              if key != "tasks" and not fields.get(key)]
    errors += row_errors
    if kind is ItemKind.PROJECT and not reader.rows:
        errors.append(FieldError("tasks", "no_tasks", reader.tasks_inline.strip()))
    return FormResult(kind, fields, drafts, tuple(errors))


def _choose(value: str, choices: tuple[Choice, ...]) -> str | None:
    """The canonical value of a choice ("高", "High", "☑高 □中 □低" → "high"), else None."""
    lookup = {_norm(name): c.value for c in choices
              for name in (c.value, *c.names.values(), *c.aliases)}
    if _norm(value) in lookup:
        return lookup[_norm(value)]
    checked = {lookup.get(_norm(word)) for word in _CHECKED.findall(value)} - {None}
    return checked.pop() if len(checked) == 1 else None


# --------------------------------------------------------------------------------------------
# Printing forms back


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
    lang = _language(language)
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
