"""Render the retrospective record of a closed item, and the lessons page, as Markdown and HTML.

Pure: a `RecordRenderer` reads `templates/archive/*.j2` and its own small catalog
`templates/archive/i18n.toml` once, at construction; rendering does no I/O and never reads the
clock. `maild/adapters/archive.py` writes what this returns.

Surprises:
- The templates get a ready-made view (`record_view`, `lessons_view`): every date is already
  local text, every state and action already a label, so the templates only lay things out.
- User text is escaped in both outputs: autoescaped in HTML, and in Markdown through the `md`
  filter (backslash before Markdown's special characters, `<`/`>` included, newlines as `<br>`),
  so a hostile title can neither inject HTML nor break a table.
- Task history is the item's audit trail (`{at, who, action, task, message_id, detail}`) grouped
  by task; blockers are the `blocker` entries (detail situation/cause/support), delays the
  `delay` entries (detail date or deadline, reason). The retrospective is
  `item["retrospective"] = {achieved, shortfall, improvements}` (free text; improvements may also
  be a list).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from maild.core.acceptance import stats
from maild.mail.templatecache import bytecode_cache

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "archive"
TEMPLATES = ("record.md.j2", "record.html.j2", "lessons.md.j2", "lessons.html.j2")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|~#])")
_YES = re.compile(r"^\s*(?:是|已达成|达成|已達成|達成|完成|yes|y|true|achieved|done)\s*[。.!！]?\s*$",
                  re.IGNORECASE)
_NO = re.compile(r"^\s*(?:否|未达成|未達成|没有|沒有|no|n|false|not achieved)\s*[。.!！]?\s*$",
                 re.IGNORECASE)
_PARTIAL = re.compile(r"部分|基本|partial|partly|mostly", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.、)）]|[（(]\d{1,2}[)）])\s*")


def md(value: Any) -> str:
    """`value` as inline Markdown text: special characters escaped, newlines as `<br>`."""
    lines = str(value if value is not None else "").replace("\r\n", "\n").split("\n")
    return "<br>".join(_MD_SPECIAL.sub(r"\\\1", line) for line in lines)


def html_lines(value: Any) -> Markup:
    """`value` escaped for HTML, newlines as `<br>`."""
    text = str(value if value is not None else "").replace("\r\n", "\n")
    return Markup("<br>").join(escape(line) for line in text.split("\n"))


def achieved_mark(value: Any) -> str:
    """"yes", "no", "partial" or "" (unknown) for a retrospective's free-text "achieved"."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value or "")
    if _PARTIAL.search(text):
        return "partial"
    if _YES.match(text) or re.match(r"^\s*(?:是|yes)[，,:：\s]", text, re.IGNORECASE):
        return "yes"
    if _NO.match(text) or re.match(r"^\s*(?:否|no)[，,:：\s]", text, re.IGNORECASE):
        return "no"
    return ""


def improvement_lines(value: Any) -> list[str]:
    """Improvements as separate points: a list as is, text split by lines (bullets dropped)."""
    if isinstance(value, (list, tuple)):
        parts = [str(v) for v in value]
    else:
        parts = str(value or "").replace("\r\n", "\n").split("\n")
    return [_BULLET.sub("", p).strip() for p in parts if _BULLET.sub("", p).strip()]


def local_time(value: Any, tz: ZoneInfo) -> str:
    """An ISO timestamp as local "YYYY-MM-DD HH:MM"; anything unparseable is returned as text."""
    if not value:
        return ""
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(tz)
    return when.strftime("%Y-%m-%d %H:%M")


class RecordRenderer:
    """Renders records and lessons pages with the templates read from `templates_dir`."""

    def __init__(self, templates_dir: Path = TEMPLATES_DIR, cache_dir: Path | None = None) -> None:
        """`cache_dir`: where compiled templates are kept between starts (templatecache.py)."""
        templates_dir = Path(templates_dir)
        self.catalog: Mapping[str, Any] = tomllib.loads(
            (templates_dir / "i18n.toml").read_text(encoding="utf-8"))
        if not self.catalog:
            raise ValueError(f"{templates_dir / 'i18n.toml'} defines no language")
        sources = {name: (templates_dir / name).read_text(encoding="utf-8") for name in TEMPLATES}
        env = Environment(
            loader=DictLoader(sources),
            autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False,
                                         default_for_string=False),
            undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, auto_reload=False,
            keep_trailing_newline=True,
        )
        env.filters.update(md=md, lines=html_lines)
        env.bytecode_cache = bytecode_cache(cache_dir, templates_dir, env, TEMPLATES)
        self._templates = {name: env.get_template(name) for name in TEMPLATES}

    def language(self, language: str | None) -> str:
        lang = re.split(r"[-_]", (language or "").strip().lower())[0]
        return lang if lang in self.catalog else next(iter(self.catalog))

    def record(self, item: Mapping[str, Any], *, tz: str, language: str | None = None,
               people_names: Mapping[str, str] | None = None,
               email_files: Sequence[str] = ()) -> tuple[str, str]:
        """(markdown, html) of `item`'s record; `language` defaults to the item's own."""
        lang = self.language(language or item.get("language"))
        view = record_view(item, self.catalog[lang], ZoneInfo(tz), people_names or {},
                           email_files)
        return self._render("record", lang, view)

    def lessons(self, entries: Sequence[Mapping[str, Any]], *, language: str) -> tuple[str, str]:
        """(markdown, html) of the lessons page for index entries, in the order given."""
        lang = self.language(language)
        return self._render("lessons", lang, lessons_view(entries, self.catalog[lang]))

    def _render(self, name: str, lang: str, view: Mapping[str, Any]) -> tuple[str, str]:
        ctx = {"L": self.catalog[lang], "v": view}
        text = self._templates[f"{name}.md.j2"].render(ctx)
        html = self._templates[f"{name}.html.j2"].render(ctx)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n", html.strip() + "\n"


def _names(item: Mapping[str, Any], people_names: Mapping[str, str]) -> dict[str, str]:
    names = {str(item.get("initiator", "")): str(item.get("initiator_name") or "")}
    for task in item.get("tasks") or ():
        names.setdefault(str(task.get("owner", "")), str(task.get("owner_name") or ""))
    names.update(people_names)
    return {k: v for k, v in names.items() if k and v}


def _person(address: Any, names: Mapping[str, str], department: str = "") -> str:
    address = str(address or "")
    name = names.get(address, "")
    text = f"{name} <{address}>" if name and name != address else address
    return f"{text} / {department}" if department else text


def _detail(detail: Any, catalog: Mapping[str, Any], tz: ZoneInfo) -> list[dict[str, str]]:
    if not isinstance(detail, Mapping):
        return [{"label": "", "value": str(detail)}] if detail else []
    rows = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if key == "percent":
            text = f"{value}%"
        elif key == "state":
            text = catalog["state"].get(str(value), str(value))
        elif key in ("deadline", "date", "old", "new") and re.match(r"^\d{4}-\d\d-\d\dT", str(value)):
            text = local_time(value, tz)
        elif isinstance(value, str):
            text = value
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            text = str(catalog["list_sep"]).join(value)  # files handed in, tasks waited on
        else:
            text = json.dumps(value, ensure_ascii=False)
        rows.append({"label": catalog["detail"].get(key, key), "value": text})
    return rows


def _event(entry: Mapping[str, Any], catalog: Mapping[str, Any], tz: ZoneInfo,
           names: Mapping[str, str]) -> dict[str, Any]:
    action = str(entry.get("action", ""))
    return {"at": local_time(entry.get("at"), tz), "who": _person(entry.get("who"), names),
            "action": catalog["action"].get(action, action), "task": entry.get("task") or "",
            "detail": _detail(entry.get("detail"), catalog, tz)}


def record_view(item: Mapping[str, Any], catalog: Mapping[str, Any], tz: ZoneInfo,
                people_names: Mapping[str, str], email_files: Sequence[str] = ()
                ) -> dict[str, Any]:
    """What the record templates show, all text already formatted for `catalog`'s language."""
    names = _names(item, people_names)
    audit = [e for e in item.get("audit") or () if isinstance(e, Mapping)]
    tasks = []
    # A recurring task's earlier occurrences (retired to its series' history) come first.
    retired = [{"id": h.get("id"), "name": h.get("name"), "owner": h.get("owner"),
                "deadline": h.get("due"), "state": h.get("state"),
                "progress": 100 if h.get("state") == "done" else 0}
               for h in (item.get("series") or {}).get("history", ())]
    for task in [*retired, *(item.get("tasks") or ())]:
        state = str(task.get("state", ""))
        tasks.append({
            "id": str(task.get("id", "")), "name": str(task.get("name", "")),
            "owner": _person(task.get("owner"), names, str(task.get("owner_department") or "")),
            "deadline": local_time(task.get("deadline"), tz) or str(task.get("deadline_text", "")),
            "deliverable": str(task.get("deliverable") or ""),
            "state": catalog["state"].get(state, state), "progress": task.get("progress", 0),
            "confirmed_at": local_time(task.get("confirmed_at"), tz),
            "history": [_event(e, catalog, tz, names) for e in audit
                        if e.get("task") == task.get("id")],
        })
    known = {t["id"] for t in tasks}
    blockers = [{**_event(e, catalog, tz, names), **{
        k: str((e.get("detail") or {}).get(k) or "") for k in ("situation", "cause", "support")}}
        for e in audit if e.get("action") == "blocker"]
    delays = []
    for e in audit:
        if e.get("action") == "delay":
            detail = e.get("detail") or {}
            new = detail.get("deadline") or detail.get("date") or ""
            delays.append({**_event(e, catalog, tz, names), "reason": str(detail.get("reason") or ""),
                           "deadline": local_time(new, tz) if "T" in str(new) else str(new)})
    retro = item.get("retrospective") or {}
    participants = [p.get("name") or p.get("address", "") if isinstance(p, Mapping) else str(p)
                    for p in item.get("participants") or ()]
    closed_by = item.get("closed_by")
    kind, state = str(item.get("kind", "")), str(item.get("state", ""))
    return {
        "id": str(item.get("id", "")), "title": str(item.get("title", "")),
        "kind": catalog["kind"].get(kind, kind), "state": catalog["state"].get(state, state),
        "initiator": _person(item.get("initiator"), names,
                             str(item.get("initiator_department") or "")),
        "participants": participants, "goal": str(item.get("goal") or ""),
        "scope": str(item.get("scope") or ""),
        "created_at": local_time(item.get("created_at"), tz),
        "closed_at": local_time(item.get("closed_at"), tz),
        "closed_by": _person(closed_by, names) if closed_by else "",
        "tasks": tasks, "blockers": blockers, "delays": delays,
        "item_history": [_event(e, catalog, tz, names) for e in audit
                         if not e.get("task") or e.get("task") not in known],
        "retro": {"achieved": str(retro.get("achieved") or ""),
                  "mark": achieved_mark(retro.get("achieved")),
                  "shortfall": str(retro.get("shortfall") or ""),
                  "improvements": improvement_lines(retro.get("improvements"))},
        "emails": list(email_files),
        "acceptance": _acceptance(item),
    }


def _acceptance(item: Mapping[str, Any]) -> dict[str, int] | None:
    """How the item's work was accepted (验收), when any was: for the retrospective."""
    counted = stats(item.get("tasks") or (), (item.get("series") or {}).get("history", ()))
    return counted if counted["accepted"] else None


def lessons_view(entries: Sequence[Mapping[str, Any]], catalog: Mapping[str, Any]
                 ) -> dict[str, Any]:
    """What the lessons templates show: one block per index entry, in the order given."""
    rows = []
    for entry in entries:
        kind = str(entry.get("kind", ""))
        rows.append({
            "id": str(entry.get("id", "")), "title": str(entry.get("title", "")),
            "kind": catalog["kind"].get(kind, kind), "quarter": str(entry.get("quarter", "")),
            "closed": str(entry.get("closed_at", ""))[:10], "folder": str(entry.get("folder", "")),
            "achieved": str(entry.get("achieved") or ""), "mark": achieved_mark(entry.get("achieved")),
            "shortfall": str(entry.get("shortfall") or ""),
            "improvements": improvement_lines(entry.get("improvements")),
        })
    return {"entries": rows, "count": len(rows)}
