"""The status table (`statustable.py`): written in Python, once per item, language, zone, clock
and part. It must write what the Jinja macros wrote (kept here as the reference, from before the
move, 2026-12-04), and a renderer that has rendered other emails must write what a fresh one
writes: a remembered table is never another item's, or another moment's."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jinja2 import DictLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from maild.core.model import Notice
from maild.mail.digestrows import RowKit
from maild.mail.progress import bar_html, progress_facts, task_bar_html
from maild.mail.render import Renderer
from maild.mail.statustable import status_table_writer
from maild.mail.templatetools import (
    KeyFirstEnvironment,
    TableMemo,
    catalog_strings,
    deadline_filter,
    deadline_memo,
    load_catalog,
    oneline,
    state_label_filter,
    state_label_memo,
    translator,
)
from tests.mail.test_render import (
    FROM_NAME,
    INBOX,
    JINJA,
    REPLY,
    SCRIPT,
    SENT,
    STATES,
    TEMPLATES,
    make_item,
)

# The macros of _macros.{html,txt}.j2 and _progress.html.j2 that wrote the table (`pg.` and
# `c.owner_of` inlined): the reference.
REFERENCE_HTML = r"""{% macro heading(text) -%}
<h2 style="margin:24px 0 8px;font-size:16px;line-height:1.4;font-weight:600;color:#1f2328;">{{ text }}</h2>
{%- endmacro %}

{% macro para(text, muted=false) -%}
<p style="margin:0 0 12px;{% if muted %}color:#57606a;font-size:14px;{% endif %}">{{ text }}</p>
{%- endmacro %}

{% macro badge(state, progress=0) -%}
{% set s = state|state_label %}
<span style="display:inline-block;padding:2px 8px;border-radius:10px;background-color:{{ s.background }};color:{{ s.colour }};font-size:13px;font-weight:600;line-height:1.5;">&#9679; {{ s.text }}{% if progress and s.state != 'done' %} {{ progress }}%{% endif %}</span>
{%- endmacro %}

{% macro bar(percent, colour='#2da44e', height=8) -%}
{{ progress_bar(percent, colour, height) }}
{%- endmacro %}

{#- The item's bar: overall share and how many tasks are done. -#}
{% macro item_bar(item) -%}
{% set p = progress(item, now) %}
{% if p.total %}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;margin:4px 0 12px;">
<tr><td style="padding:0 0 4px;font-size:13px;color:#57606a;">{{ t('progress.overall', pct=p.overall, done=p.done, total=p.total) }}</td></tr>
<tr><td style="padding:0;">{{ bar(p.overall, '#0b5cad', 10) }}</td></tr>
</table>
{% endif %}
{%- endmacro %}

{#- Today against each open task's deadline: the share of its time used, and the words. -#}
{% macro timeline(item) -%}
{% set p = progress(item, now) %}
{% set eta = '_eta' if item.kind == 'emergency' else '' %}
{% if p.timeline %}
<p style="margin:12px 0 4px;font-size:13px;font-weight:600;color:#1f2328;">{{ t('progress.timeline' ~ eta) }}</p>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;border-collapse:collapse;font-size:13px;line-height:1.4;margin:0 0 8px;">
{% for row in p.timeline %}
{% set colour = '#8c959f' if row.done else ('#cf222e' if row.overdue else ('#bf8700' if row.due_today or row.elapsed >= 80 else '#2da44e')) %}
<tr>
<td width="22%" style="width:22%;padding:4px 8px 4px 0;vertical-align:middle;white-space:nowrap;font-family:Consolas,Menlo,monospace;">{{ row.id }}</td>
<td width="43%" style="width:43%;padding:4px 8px 4px 0;vertical-align:middle;">{{ bar(row.elapsed, colour, 6) }}</td>
<td width="35%" style="width:35%;padding:4px 0;vertical-align:middle;color:{{ '#cf222e' if row.overdue else '#57606a' }};{% if row.overdue %}font-weight:600;{% endif %}">{% if row.done %}{{ t('progress.done') }}{% elif row.overdue %}{% if row.days_left < 0 %}{{ t('progress.overdue', n=-row.days_left) }}{% else %}{{ t('progress.overdue_today' ~ eta) }}{% endif %}{% elif row.due_today %}{{ t('progress.due_today' ~ eta) }}{% else %}{{ t('progress.days_left', n=row.days_left) }}{% endif %}</td>
</tr>
{% endfor %}
</table>
{% endif %}
{%- endmacro %}

{% macro status_table(item) %}
{% set th = "padding:8px 8px 8px 0;border-bottom:2px solid #d0d7de;color:#57606a;font-size:13px;font-weight:600;text-align:left;" %}
{% set td = "padding:8px 8px 8px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;" %}
{{ heading(t('table.heading') ~ ' · ' ~ item.id) }}
<p style="margin:0 0 8px;color:#57606a;font-size:14px;"><strong style="color:#1f2328;">{{ item.title|oneline }}</strong> · {{ t('table.counts', n=item.tasks|length) }}{% for state, group in item.tasks|groupby('state') %} · {{ state|state_label }} {{ group|length }}{% endfor %}</p>
{% if item.tasks %}
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" style="width:100%;border-collapse:collapse;font-size:14px;line-height:1.45;margin:0 0 8px;">
<tr>
<th align="left" style="{{ th }}">{{ L.label.id }}</th>
<th align="left" style="{{ th }}">{{ L.label.task }}</th>
<th align="left" style="{{ th }}">{{ L.label.owner }}</th>
<th align="left" style="{{ th }}">{{ L.label.eta if item.kind == 'emergency' else L.label.deadline }}</th>
<th align="left" style="{{ th }}padding-right:0;">{{ L.label.state }}</th>
</tr>
{% for task in item.tasks %}
<tr>
<td style="{{ td }}white-space:nowrap;font-family:Consolas,Menlo,monospace;font-size:13px;">{{ task.id }}</td>
<td style="{{ td }}word-break:break-word;"><strong>{{ task.name|oneline }}</strong>{% if task.deliverable %}<br><span style="color:#57606a;font-size:13px;">{{ L.label.plan if item.kind == 'emergency' else L.label.deliverable }}{{ L.colon }}{{ task.deliverable|oneline }}</span>{% endif %}</td>
<td style="{{ td }}word-break:break-word;">{{ task.owner_name|oneline }}{% if task.owner_department %}<br><span style="color:#57606a;font-size:13px;">{{ task.owner_department|oneline }}</span>{% endif %}</td>
<td style="{{ td }}">{{ task.deadline|deadline }}</td>
<td style="{{ td }}padding-right:0;">{{ badge(task.state, task.progress) }}{{ task_bar(task.state, task.progress) }}</td>
</tr>
{% endfor %}
</table>
{{ item_bar(item) }}
{{ timeline(item) }}
{% else %}
{{ para(t('table.empty'), muted=true) }}
{% endif %}
{% endmacro %}
"""

REFERENCE_TXT = r"""{% macro heading(text) -%}
== {{ text }} ==
{%- endmacro %}

{% macro badge(state, progress=0) -%}
{% set s = state|state_label %}
[{{ s.text }}{% if progress and s.state != 'done' %} {{ progress }}%{% endif %}]
{%- endmacro %}

{% macro who(name, dept="") -%}
{% if dept %}{{ t('person_dept', name=name|oneline, dept=dept|oneline) }}{% else %}{{ name|oneline }}{% endif %}
{%- endmacro %}

{% macro status_table(item) %}
{{ heading(t('table.heading') ~ ' · ' ~ item.id ~ ' ' ~ item.title|oneline) }}
{{ counts(item) }}
{% for task in item.tasks %}

{{ task.id }}  {{ badge(task.state, task.progress) }}  {{ task.name|oneline }}
    {{ L.label.owner }}{{ L.colon }}{{ who(task.owner_name, task.owner_department) }}{% if task.owner_name != task.owner %} <{{ task.owner }}>{% endif %}

    {{ L.label.eta if item.kind == 'emergency' else L.label.deadline }}{{ L.colon }}{{ task.deadline|deadline }}
{% if task.deliverable %}
    {{ L.label.plan if item.kind == 'emergency' else L.label.deliverable }}{{ L.colon }}{{ task.deliverable|oneline }}
{% endif %}
{% else %}
{{ t('table.empty') }}
{% endfor %}
{% set p = progress(item, now) %}
{% if p.total %}

{{ t('progress.overall', pct=p.overall, done=p.done, total=p.total) }}  {{ p.bar }}
{% set eta = '_eta' if item.kind == 'emergency' else '' %}
{% if p.timeline %}
{{ t('progress.timeline' ~ eta) }}
{% for row in p.timeline %}
    {{ row.id }}  {{ row.deadline|deadline }}  {% if row.done %}{{ t('progress.done') }}{% elif row.overdue %}{% if row.days_left < 0 %}!! {{ t('progress.overdue', n=-row.days_left) }}{% else %}!! {{ t('progress.overdue_today' ~ eta) }}{% endif %}{% elif row.due_today %}{{ t('progress.due_today' ~ eta) }}{% else %}{{ t('progress.days_left', n=row.days_left) }}{% endif %}

{% endfor %}
{% endif %}
{% endif %}
{% endmacro %}
{% macro counts(item) -%}
{{ t('table.counts', n=item.tasks|length) }}
{%- for state, group in item.tasks|groupby('state') %} · {{ state|state_label }} {{ group|length }}{% endfor %}
{%- endmacro %}
"""


def environment() -> tuple[KeyFirstEnvironment, dict[str, Any]]:
    """The renderer's filters and globals, with the reference macros and the Python table."""
    catalog = load_catalog(TEMPLATES / "i18n.toml")
    strings = catalog_strings(catalog)
    deadline, label = deadline_memo(), state_label_memo()
    env = KeyFirstEnvironment(
        loader=DictLoader({
            "reference.html.j2": REFERENCE_HTML,
            "reference.txt.j2": REFERENCE_TXT,
            "python.html.j2": "{{ status_table_of(item) }}",
            "python.txt.j2": "{{ status_table_of(item) }}",
        }),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(deadline=deadline_filter(deadline), state_label=state_label_filter(label),
                       oneline=oneline)
    env.globals.update(
        t=translator(strings), progress=progress_facts,
        progress_bar=lambda *a: Markup(bar_html(*a)), task_bar=lambda *a: Markup(task_bar_html(*a)),
        status_table_of=status_table_writer(RowKit(strings, deadline, label, None, None)))  # type: ignore[arg-type]
    return env, catalog


def items() -> list[tuple[str, dict[str, Any]]]:
    """Items as maild stores them, in every shape the table draws differently."""
    base = make_item(tuple(STATES))
    emergency = {**make_item(("in_progress", "awaiting_confirmation")), "kind": "emergency"}
    bare = make_item(("not_started",))
    task = bare["tasks"][0]
    task.update(deliverable="", owner_department="", owner_name=task["owner"], deadline=None,
                progress=None)
    overdue = make_item(("in_progress", "delayed", "done", "in_progress"))
    overdue["tasks"][0].update(deadline="2026-08-01T08:00:00+08:00", progress=75)  # past
    overdue["tasks"][1].update(deadline="2026-08-02T18:00:00+08:00")  # due today
    overdue["tasks"][2].update(deadline="2026-07-20T18:00:00+08:00", progress=100)
    overdue["tasks"][0]["assigned_at"] = "2026-07-25T09:00:00+08:00"
    overdue["tasks"][3].update(assigned_at="2026-07-13T09:00:00+08:00",  # 86 % of its time gone
                               deadline="2026-08-05T18:00:00+08:00")
    lines = make_item(("blocked",))
    lines["title"] = f"两行\n标题 {SCRIPT}"
    lines["tasks"][0].update(name=f"任务\t名 {JINJA}", deliverable="第一行\n第二行 & <b>",
                             owner_department="A & B <部门>", progress="50")
    return [
        ("every-state", base), ("emergency", emergency), ("bare-task", bare),
        ("overdue-and-today", overdue), ("line-breaks-and-markup", lines),
        ("no-tasks", {**make_item(()), "tasks": []}),
        ("declined-only", make_item(("declined", "declined"))),
    ]


ITEMS = items()
MOMENTS = [("morning", SENT), ("a-month-later", SENT + timedelta(days=30)),
           ("new-year", SENT.replace(year=2027, month=1, day=2))]


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize(("when", "now"), MOMENTS, ids=[m[0] for m in MOMENTS])
@pytest.mark.parametrize(("shape", "item"), ITEMS, ids=[i[0] for i in ITEMS])
def test_the_python_table_writes_what_the_macros_wrote(shape: str, item: dict[str, Any],
                                                      when: str, now: Any, zone: str,
                                                      lang: str) -> None:
    env, catalog = environment()
    tz = ZoneInfo(zone)
    from maild.mail.templatetools import normalize_item
    values = {"item": normalize_item(item), "lang": lang, "L": catalog[lang], "tz": tz,
              "now": now.astimezone(tz)}
    for part in ("html", "txt"):
        macros = env.get_template(f"reference.{part}.j2").make_module(values)
        want = str(macros.status_table(values["item"]))
        got = env.get_template(f"python.{part}.j2").render(values)
        again = env.get_template(f"python.{part}.j2").render(values)  # from the memo
        assert got == want == again, part
    assert SCRIPT not in env.get_template("python.html.j2").render(values)


def fresh() -> Renderer:
    return Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address=INBOX, from_name=FROM_NAME)


def confirm_request(item: dict[str, Any], lang: str, **extra: Any) -> Notice:
    return Notice(template="confirm_request", to=("wang.zhe@corp.example",), language=lang,
                  context={"item": item, "task": item["tasks"][1], **extra}, item_id=item["id"])


def receipt(item: dict[str, Any], lang: str) -> Notice:
    return Notice(template="receipt", to=("li.na@corp.example",), language=lang,
                  context={"item": item, "items": [item]}, item_id=item["id"])


def day_of_emails() -> list[tuple[str, Notice, Any]]:
    """A day of one item's emails: the same table again, then every input of the table changed
    one at a time (a task's state, deadline, progress and owner, the language, the reader's
    zone, the clock), then the first again."""
    item = make_item()
    later = copy.deepcopy(item)
    later["tasks"][0]["state"] = "done"
    moved = copy.deepcopy(later)
    moved["tasks"][2]["deadline"] = "2026-08-30T18:00:00+08:00"
    halfway = copy.deepcopy(moved)
    halfway["tasks"][0]["progress"] = 75
    renamed = copy.deepcopy(halfway)
    renamed["tasks"][1]["owner_name"] = "赵磊"
    return [
        ("receipt", receipt(item, "zh"), SENT),
        ("first confirmation", confirm_request(item, "zh"), SENT),
        ("second confirmation", confirm_request(item, "zh"), SENT),
        ("in English", confirm_request(item, "en"), SENT),
        ("a task done", confirm_request(later, "zh"), SENT),
        ("a deadline moved", confirm_request(moved, "zh"), SENT),
        ("progress", confirm_request(halfway, "zh"), SENT),
        ("another owner", confirm_request(renamed, "zh"), SENT),
        ("reader in London", confirm_request(renamed, "zh", reader_timezone="Europe/London"),
         SENT),
        ("a week later", confirm_request(renamed, "zh"), SENT + timedelta(days=7)),
        ("back to the first", confirm_request(item, "zh"), SENT),
    ]


def test_a_renderer_with_history_writes_what_a_fresh_one_writes() -> None:
    warm = fresh()
    for label, notice, when in day_of_emails():
        got = warm.render(notice, message_id="m-1@corp.example", date=when, reply_address=REPLY)
        want = fresh().render(notice, message_id="m-1@corp.example", date=when,
                              reply_address=REPLY)
        assert (got.text, got.html) == (want.text, want.html), label


class Opaque:
    """An object whose repr is only its address: equal reprs may be different contents."""


def test_a_table_is_written_once_per_item_and_render() -> None:
    memo, written = TableMemo(), []

    def write(text: str) -> Any:
        return lambda: written.append(text) or text

    item = make_item()
    assert memo.get(("html", "zh"), item, write("first")) == "first"
    assert memo.get(("html", "zh"), copy.deepcopy(item), write("equal copy")) == "first"
    assert memo.get(("txt", "zh"), item, write("text part")) == "text part"
    assert memo.get(("html", "en"), item, write("English")) == "English"
    assert memo.get(("html", "zh"), {**item, "title": "另一个"}, write("changed")) == "changed"
    assert written == ["first", "text part", "English", "changed"]


@pytest.mark.parametrize("item", [
    {**make_item(), "extra": Opaque()},
    make_item(("in_progress",) * 80),  # ~80 tasks: a key and a table of megabytes in 64 entries
], ids=["opaque-object", "very-large-item"])
def test_some_items_are_never_remembered(item: dict[str, Any]) -> None:
    memo, written = TableMemo(), []
    for _ in range(2):
        memo.get(("html", "zh"), item, lambda: written.append(1) or "table")
    assert len(written) == 2


def test_the_oldest_table_goes_first_when_the_memo_is_full() -> None:
    memo, written = TableMemo(size=2), []
    for title in ("a", "b", "c", "a"):
        memo.get(("html",), {"title": title}, lambda t=title: written.append(t) or t)
    assert written == ["a", "b", "c", "a"]  # "a" was dropped when "c" came
