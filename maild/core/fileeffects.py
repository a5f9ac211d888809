"""Which files an email carries: the blank templates, the sender's table with its problems
marked, a calendar entry for a deadline, the item's table in a digest.

The one job is `attachments_for(notice, facts)` → the `FileAttachment`s a notice should carry,
decided from the notice alone (its template and context) and the `FileFacts` the service knows
at enqueue time. Pure; the service calls it once per notice, before rendering, so the files
are stored with the email in the outbox (a re-send carries the same bytes).

Surprises worth knowing:
- Calendar entries ride on the acknowledgement the owner gets anyway: a confirmation (REQUEST),
  a moved deadline of a confirmed task (REQUEST, SEQUENCE + 1), a reassignment away from an
  owner who had confirmed (CANCEL) and the close (CANCEL, one entry per confirmed task); and on
  a recurring task's new occurrence, which its owner confirmed with the series (REQUEST). No
  extra email is sent for them.
- A validation reply for a form read from a file carries that file back with the problem cells
  filled red and commented; an .xlsx is marked in place, a .csv or .docx comes back as .xlsx.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, time
from typing import Any

from maild.core.classify import TableFileProblem
from maild.core.formrules import FormRules
from maild.core.model import FieldError, FileAttachment, Inbound, ItemKind, Notice
from maild.core.outcomes import Outcome, WorkflowContext, thread_of
from maild.core.sheetforms import FileForm, problem_cells
from maild.mail.ics import CANCEL, REQUEST, deadline_event
from maild.mail.sheets import XLSX
from maild.mail.workbooks import SheetWords, marked_workbook, record_workbook, template_files

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ICS_REQUEST = 'text/calendar; charset="utf-8"; method=REQUEST'
ICS_CANCEL = 'text/calendar; charset="utf-8"; method=CANCEL'


@dataclass(frozen=True)
class FileFacts:
    """What the service knows when it enqueues a notice."""

    words: SheetWords
    now: datetime
    tz: str
    inbox_address: str
    from_name: str
    workday_end: time = time(18, 0)
    reply_address: str = ""  # the recipient's own reply address, when plus addressing is on
    attach_table: bool = False  # [digest] attach_table
    people: Mapping[str, str] | None = None  # address → name, for the record's audit sheet
    form_rules: FormRules | None = None  # for the labels of choices (优先级, 紧急事务类型)
    digest_items: Sequence[Mapping[str, Any]] = ()  # a digest's items, as stored


def attachments_for(notice: Notice, facts: FileFacts) -> tuple[FileAttachment, ...]:
    """The files `notice` should carry (often none)."""
    if notice.template == "templates":
        return tuple(FileAttachment(name, XLSX_TYPE, data)
                     for name, data in template_files(facts.words, notice.language, facts.now))
    if notice.template in ("command_ack", "confirmed") and notice.to:
        return tuple(_calendar(notice, facts))
    if notice.template == "occurrence" and notice.to:  # a recurring task's new occurrence,
        item, task = notice.context.get("item") or {}, notice.context.get("task")  # confirmed
        return tuple(_events(item, [(task, REQUEST)] if task else [], notice.to[0], facts))
    if notice.template == "digest" and facts.attach_table:
        return tuple(_digest_tables(notice, facts))
    return ()


# ── the sender's table, marked ───────────────────────────────────────────────────────────────


def _marked(notice: Notice, found: FileForm, words_: SheetWords, now: datetime
            ) -> FileAttachment:
    lang = words_.get(notice.language)
    words = lang["problems"]
    errors = [FieldError(**{k: e.get(k) for k in ("field", "code", "value", "task")})
              for e in notice.context.get("errors", ())]
    cells = [(row, column, words.get(code, words["other"]))
             for row, column, code in problem_cells(found, errors)]
    original = found.file
    stem = original.name.rpartition(".")[0] or original.name
    data = marked_workbook(found.grid.rows, cells, words_, notice.language, now,
                           original=original.data if original.kind == XLSX else None,
                           sheet=found.grid.sheet)
    return FileAttachment(f"{stem}{words['marked_suffix']}.xlsx", XLSX_TYPE, data)




# ── calendar entries ─────────────────────────────────────────────────────────────────────────


def _calendar(notice: Notice, facts: FileFacts) -> list[FileAttachment]:
    item = notice.context.get("item") or {}
    if not item.get("tasks"):
        return []
    recipient = notice.to[0]
    commands = _commands(notice.context)
    entries: list[tuple[Mapping[str, Any], str]] = []
    for command in commands:
        name = command.get("name")
        task = _task(item, notice.task_id)
        if name == "confirm" and task and task.get("owner") == recipient and notice.context.get(
                "changed", True) and task.get("confirmed_at"):
            entries.append((task, REQUEST))
        elif name == "delay" and command.get("deadline") and task and task.get(
                "owner") == recipient and task.get("confirmed_at"):
            entries.append((task, REQUEST))
        elif name == "reassign" and task and task.get("owner") != recipient and _had_confirmed(
                item, task["id"], recipient):
            entries.append((task, CANCEL))
        elif name == "close":
            entries += [(t, CANCEL) for t in item["tasks"]
                        if t.get("owner") == recipient and t.get("confirmed_at")]
    return _events(item, entries, recipient, facts)


def _events(item: Mapping[str, Any], entries: Sequence[tuple[Mapping[str, Any], str]],
            recipient: str, facts: FileFacts) -> list[FileAttachment]:
    files = []
    for task, method in entries:
        data = deadline_event(item, task, method, owner=recipient,
                              organizer=facts.inbox_address, organizer_name=facts.from_name,
                              now=facts.now, tz=facts.tz, workday_end=facts.workday_end,
                              reply_address=facts.reply_address)
        files.append(FileAttachment(f"{item['id']}-{task['id']}.ics",
                                    ICS_REQUEST if method == REQUEST else ICS_CANCEL, data,
                                    inline=len(entries) == 1))
    return files


def _commands(context: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
    if context.get("commands"):  # a reply with several commands acknowledged at once
        return [c for c in context["commands"] if isinstance(c, Mapping)]
    command = context.get("command")
    return [command] if isinstance(command, Mapping) else []


def _task(item: Mapping[str, Any], task_id: str | None) -> Mapping[str, Any] | None:
    return next((t for t in item.get("tasks", ()) if t.get("id") == task_id), None)


def _had_confirmed(item: Mapping[str, Any], task_id: str, address: str) -> bool:
    return any(e.get("action") == "confirm" and e.get("task") == task_id and e.get("who") == address
               for e in item.get("audit", ()))


# ── the digest's tables ──────────────────────────────────────────────────────────────────────


def _digest_tables(notice: Notice, facts: FileFacts) -> list[FileAttachment]:
    """The initiator's items in the digest, each as the guide's table (协作沟通记录表)."""
    files = []
    for item in facts.digest_items:
        if item.get("initiator") not in notice.to:
            continue
        kind = ItemKind(item.get("kind", "task"))
        sheet = facts.words.get(item.get("language", notice.language))[kind.value]["sheet"]
        data = record_workbook(item, facts.words, facts.now, facts.tz, people=facts.people,
                               choice_names=choice_labels(facts.form_rules, item.get(
                                   "language", notice.language)))
        files.append(FileAttachment(f"{sheet}-{item['id']}.xlsx", XLSX_TYPE, data))
    return files


RECORD_FILE = "记录表.xlsx"  # the archive's copy of the guide's table, whatever the language


def record_table(item: Mapping[str, Any], words: SheetWords, rules: FormRules | None,
                 closed_at: datetime, tz: str, people: Mapping[str, str]) -> tuple[str, bytes]:
    """(file name, bytes) of the archived item as the guide's table (模板1/2/3 with its final
    state, the retrospective and the audit trail)."""
    return RECORD_FILE, record_workbook(item, words, closed_at, tz, people=people,
                                        choice_names=choice_labels(rules, item.get("language",
                                                                                   "zh")))


def choice_labels(rules: FormRules | None, language: str) -> dict[str, dict[str, str]]:
    """field → canonical value → its name in `language` ("high" → "高")."""
    if rules is None:
        return {}
    lang = "zh" if language.startswith("zh") else "en"
    return {key: {c.value: c.names.get(lang, c.value) for c in choices}
            for key, choices in rules.choices.items()}


# ── replies about files ──────────────────────────────────────────────────────────────────────


def mark_file(outcome: Outcome, found: FileForm, words: SheetWords, now: datetime) -> Outcome:
    """The validation reply to a form read from a file carries the file back, marked."""
    notices = []
    for notice in outcome.notices:
        if notice.template == "validation_error":
            marked = _marked(notice, found, words, now)
            notice = replace(notice, attachments=(marked,),
                             context={**notice.context, "attached_marked": marked.filename})
        notices.append(notice)
    return replace(outcome, notices=tuple(notices))


def file_problem(msg: Inbound, problem: TableFileProblem, ctx: WorkflowContext,
                 words: SheetWords, now: datetime) -> Outcome:
    """An attached table maild will not open: the sender is told why, with the templates."""
    in_reply_to, references = thread_of(msg)
    notice = Notice(template="file_problem", to=(msg.from_addr,), language=problem.language,
                    context={"filename": problem.filename, "code": problem.code},
                    in_reply_to=in_reply_to, references=references,
                    attachments=tuple(FileAttachment(name, XLSX_TYPE, data) for name, data
                                      in template_files(words, problem.language, now)))
    return Outcome("processed", f"table file {problem.code}: {problem.filename}",
                   notices=(notice,), summary={"file": problem.filename, "problem": problem.code})
