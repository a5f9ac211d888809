"""A digest's rows written in Python (`_RowWriter`, the `digest_rows` template global): the same
bytes the Jinja macros wrote, at a fraction of the cost (a morning's digests hold 40,000 rows).

Pure. tests/mail/test_render.py keeps the Jinja macros as the reference the rows are compared with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from jinja2 import (
    pass_context,
)
from jinja2.runtime import Context
from markupsafe import Markup

from maild.mail.progress import task_bar_html
from maild.mail.templatetools import StateLabel, Strings, h, oneline


@dataclass(frozen=True)
class RowKit:
    """What `digest_rows` formats with: the catalog strings and the renderer's memoised
    `deadline`, `state_label` and `mailto`."""

    strings: Strings
    deadline: Callable[[Any, str, Mapping[str, Any], tzinfo, datetime], str]
    label: Callable[[Any, str, Mapping[str, Any]], StateLabel]
    mailto: Callable[[str, str, str], str]
    hint: Callable[[str, tuple[str, ...]], str]


def digest_rows_writer(kit: RowKit) -> Callable[..., str]:
    """The `digest_rows(rows, show_owner=true)` global of digest.{txt,html}.j2 and
    owner_digest.*: a digest's rows, as a table (HTML) or a list (text). Written in Python, not
    as a macro: 2,000 digests at 09:00 show 40,000 rows, and a row was ~60 Jinja expressions,
    22–50 µs a part; here 2–18 µs. The output is what the macros wrote, byte for byte."""
    words: dict[str, _Words] = {}  # per language, made on first use (the catalog is fixed)

    @pass_context
    def digest_rows(ctx: Context, rows: Any, show_owner: bool = True) -> str:
        lang = ctx["lang"]
        found = words.get(lang)
        if found is None:
            found = words[lang] = _Words(ctx["L"], kit.strings[lang])
        writer = _RowWriter(kit, found, ctx, show_owner)
        if ctx.eval_ctx.autoescape:
            return Markup(writer.html(rows))
        return writer.text(rows)

    return digest_rows


_TH = ('<th align="left" style="padding:6px 8px 6px 0;border-bottom:2px solid #d0d7de;'
       'color:#57606a;font-size:13px;font-weight:600;text-align:left;')


_TD = '<td style="padding:6px 8px 6px 0;border-bottom:1px solid #e5e8eb;vertical-align:top;'


_MUTED = '<br><span style="color:#57606a;font-size:13px;">'


_SECONDARY = ("decline", "done", "status")  # outlined buttons; the others are filled


_ROW_COLOURS = ("#a3111f", "#8a0f55", "#7a5200")  # overdue, blocked, else (unconfirmed)


class _Words:
    """One language's catalog words as the rows use them, plain and escaped, made once."""

    def __init__(self, L: Mapping[str, Any], strings: Mapping[str, tuple[str, str]]) -> None:
        sched, label = L["schedule"], L["label"]
        colon = L["colon"]
        self.states, self.plain = L["state"], {key: text for key, (text, _) in strings.items()}
        self.flags = dict(sched["flag"])
        self.flags_html = {f: h(text) for f, text in self.flags.items()}
        self.row_action = dict(sched["row_action"])
        self.row_action_html = {a: h(text) for a, text in self.row_action.items()}
        self.list_sep, self.list_sep_html = L["list_sep"], h(L["list_sep"])
        self.sched_sep, self.sched_sep_html = sched["list_sep"], h(sched["list_sep"])
        self.bodies, self.buttons_html = L["body"], {a: h(t) for a, t in L["action"].items()}
        self.missing = {role: self.plain["schedule.missing"].format_map({"role": name})
                        for role, name in sched["role"].items()}
        self.head_owner = f"    {label['owner']}{colon}"
        self.head_project = f"    {sched['project']}{colon}"
        self.head_deadline = f"    {label['deadline']}{colon}"
        self.head_update = f" · {sched['last_update']}{colon}"
        self.head_marks = f"    {sched['marks']}{colon}"
        self.table = {
            show_owner: '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" '
            'border="0" style="width:100%;border-collapse:collapse;font-size:14px;'
            'line-height:1.45;margin:0 0 8px;">\n<tr>\n'
            f'{_TH}">{h(label["task"])}</th>\n'
            f'{_TH}">{h(label["owner"] if show_owner else sched["project"])}</th>\n'
            f'{_TH}">{h(label["deadline"])}</th>\n'
            f'{_TH}">{h(label["state"])}</th>\n'
            f'{_TH}padding-right:0;">{h(sched["last_update"])}</th>\n</tr>\n'
            for show_owner in (True, False)}


class _RowWriter:
    """The rows of one digest part. Every value a reader sees is escaped in HTML (`h`), as
    Jinja's autoescape did; catalog patterns are formatted as `t` formats them."""

    def __init__(self, kit: RowKit, words: _Words, ctx: Context, show_owner: bool) -> None:
        self.kit, self.w, self.show_owner = kit, words, show_owner
        self.lang, self.L = ctx["lang"], ctx["L"]
        self.tz, self.now = ctx["tz"], ctx["now"]
        self.inbox, self.mailto_max = ctx["inbox_address"], ctx["mailto_max"]

    def deadline(self, value: Any) -> str:
        return self.kit.deadline(value, self.lang, self.L, self.tz, self.now)

    def said(self, row: Mapping[str, Any]) -> list[str]:
        """Each level's sentence (as a single reminder's summary says it), then the line on its
        missing role ("" without one), in plain text. In HTML each is escaped whole: `t`'s
        escaped pattern with escaped values is the escaped sentence."""
        plain = self.w.plain
        owner, dept = oneline(row["owner_name"]), row["owner_department"]
        if dept:
            owner = plain["person_dept"].format_map({"name": owner, "dept": oneline(dept)})
        values = {"task_id": row["task_id"], "task": oneline(row["name"]), "owner": owner,
                  "threshold": 0, "deadline": self.deadline(row["deadline"]),
                  "progress": row["progress"], "days": row["overdue_days"]}
        out = []
        for lv in row["levels"]:
            values["threshold"] = lv["threshold"]
            who = "owner" if lv["recipient_role"] == "owner" else "other"
            out.append(plain[f"level.{who}.{lv['reason']}"].format_map(values))
            missing = lv["missing_role"]
            out.append(self.w.missing[missing] if missing else "")
        return out

    def change(self, ch: Mapping[str, Any]) -> str:
        """One change of a row, in plain text (escaped whole in HTML, as for `said`)."""
        field, plain = ch["field"], self.w.plain
        if field == "new":
            return plain["schedule.change.new"].format_map({})
        if field == "state":
            label, lang, L = self.kit.label, self.lang, self.L
            old, new = label(ch["old"], lang, L), label(ch["new"], lang, L)
        elif field == "deadline":
            old, new = self.deadline(ch["old"]), self.deadline(ch["new"])
        else:
            old, new = oneline(ch["old"]), oneline(ch["new"])
        return plain[f"schedule.change.{field}"].format_map({"old": old, "new": new})

    def html(self, rows: Any) -> str:
        w, show_owner = self.w, self.show_owner
        out = [w.table[show_owner]]
        add = out.append
        for r in rows:
            flags = r["flags"]
            if flags:
                colour = _ROW_COLOURS[0 if "overdue" in flags else 1 if "blocked" in flags else 2]
                mark = f"border-left:3px solid {colour};padding-left:6px;"
            else:
                mark = ""
            add(f'<tr>\n{_TD}word-break:break-word;{mark}"><span style="font-family:Consolas,'
                f'Menlo,monospace;font-size:12px;color:#57606a;">{h(r["item_id"])} '
                f'{h(r["task_id"])}</span><br><strong>{h(oneline(r["name"]))}</strong>\n')
            if flags:
                add('<br><span style="color:#a3111f;font-size:13px;font-weight:600;">'
                    f'{w.list_sep_html.join([w.flags_html[f] for f in flags])}</span>')
            if r["action"] and show_owner:
                add('<br><span style="color:#1f2328;font-size:13px;">&#8594; '
                    f'{w.row_action_html[r["action"]]}</span>')
            if r["changes"]:
                add(f'{_MUTED}{w.sched_sep_html.join([h(self.change(c)) for c in r["changes"]])}'
                    "</span>")
            if "levels" in r:
                self._levels_html(r, add)
            if "actions" in r:
                self._buttons_html(r, add)
            if show_owner:
                who = h(oneline(r["owner_name"]))
                if r["owner_department"]:
                    who = f'{who}{_MUTED}{h(oneline(r["owner_department"]))}</span>'
            else:
                who = (f'{h(oneline(r["item_title"]))}{_MUTED}'
                       f'{h(oneline(r["initiator_name"]))}</span>')
            label = self.kit.label(r["state"], self.lang, self.L)
            progress = r["progress"]
            shown = f" {h(progress)}%" if progress and r["state"] != "done" else ""
            add(f'</td>\n{_TD}word-break:break-word;">{who}</td>\n'
                f'{_TD}">{h(self.deadline(r["deadline"]))}</td>\n'
                f'{_TD}"><span style="display:inline-block;padding:2px 8px;border-radius:10px;'
                f'background-color:{h(label.background)};color:{h(label.colour)};'
                'font-size:13px;font-weight:600;line-height:1.5;">&#9679; '
                f'{h(label.text)}{shown}</span>{task_bar_html(r["state"], progress)}</td>\n'
                f'{_TD}padding-right:0;color:#57606a;font-size:13px;">'
                f'{h(self.deadline(r["updated_at"]))}</td>\n</tr>\n')
        add("</table>\n")
        return "".join(out)

    def _levels_html(self, r: Mapping[str, Any], add: Callable[[str], None]) -> None:
        said = self.said(r)
        for n in range(0, len(said), 2):
            missing = said[n + 1]
            add(f'<br><span style="color:#1f2328;font-size:13px;font-weight:600;">'
                f'{h(said[n])}</span>' + (f"{_MUTED}{h(missing)}</span>" if missing else ""))

    def _buttons_html(self, r: Mapping[str, Any], add: Callable[[str], None]) -> None:
        """The row's buttons: its levels' (an owner's, or 查看状态) and the initiator's."""
        add("<br>")
        subject = f"Re: [{r['item_id']} {r['task_id']}] {oneline(r['name'])}"
        bodies = self.w.bodies
        for action in r["actions"]:
            body = (bodies[action] if action != "reassign"
                    else bodies[action].format_map({"task_id": r["task_id"]}))
            url = self.kit.mailto(r["buttons"][action], subject, body)
            if len(url) <= self.mailto_max:
                fill, ink = (("#ffffff", "#0b5cad") if action in _SECONDARY
                             else ("#0b5cad", "#ffffff"))
                add(f'<a href="{h(url)}" style="display:inline-block;margin:6px 6px 0 0;'
                    'padding:4px 10px;border:1px solid #0b5cad;border-radius:4px;'
                    f'background-color:{fill};color:{ink};font-size:13px;font-weight:600;'
                    f'line-height:1.2;text-decoration:none;">{self.w.buttons_html[action]}</a>')

    def text(self, rows: Any) -> str:
        w, show_owner = self.w, self.show_owner
        states = w.states
        out: list[str] = []
        add = out.append
        for r in rows:
            flags, state, progress = r["flags"], r["state"], r["progress"]
            shown = f" {progress}%" if progress and state != "done" else ""
            add(f"{'!' if flags else '-'} {r['item_id']} {r['task_id']}  "
                f"[{states.get(state, state)}{shown}]  {oneline(r['name'])}\n")
            if show_owner:
                dept = r["owner_department"]
                add(f"{w.head_owner}{oneline(r['owner_name'])}"
                    + (f" · {oneline(dept)}\n" if dept else "\n"))
            else:
                add(f"{w.head_project}{oneline(r['item_title'])} · "
                    f"{oneline(r['initiator_name'])}\n")
            add(f"{w.head_deadline}{self.deadline(r['deadline'])}{w.head_update}"
                f"{self.deadline(r['updated_at'])}\n")
            if flags:
                add(f"{w.head_marks}{w.list_sep.join([w.flags[f] for f in flags])}\n")
            if r["action"] and show_owner:
                add(f"    → {w.row_action[r['action']]}\n")
            if r["changes"]:
                add(f"    ~ {w.sched_sep.join([self.change(c) for c in r['changes']])}\n")
            if "levels" in r:
                said = self.said(r)
                for n in range(0, len(said), 2):
                    missing = said[n + 1]
                    add(f"    ! {said[n]}\n" + (f"    {missing}\n" if missing else ""))
            if "actions" in r:
                commands = self.kit.hint(self.lang, r["actions"])
                if r.get("reply_to"):
                    add("    " + w.plain["reminders.reply_to"].format_map(
                        {"address": r["reply_to"], "commands": commands}) + "\n")
                else:
                    tag = r.get("reply_tag") or f"[{r['item_id']} {r['task_id']}]"
                    add("    " + w.plain["reminders.reply_tag"].format_map(
                        {"address": self.inbox, "tag": tag, "commands": commands}) + "\n")
            add("\n")
        return "".join(out)


