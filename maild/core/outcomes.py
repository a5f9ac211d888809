"""What a workflow step works with and returns: the `WorkflowContext` it reads, the `Outcome` it
gives back (items to store, notices to send, links to remember), and the small helpers every step
uses to write one (an audit entry, a notice threaded under the item, a question, a refusal).

Pure. Its own module so that `workflow`, `closeloop`, `intake`, `drafts`, `compound` and `trust`
can all build outcomes without importing each other (tests/app/test_architecture.py checks there
is no import cycle).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from maild.core import series
from maild.core.dates import Workdays
from maild.core.forms import FormRules
from maild.core.model import Inbound, Notice, TaskState
from maild.core.people import Directory
from maild.core.workcal import WorkCalendar

OPEN_STATES = {s.value for s in TaskState} - {TaskState.DONE.value, TaskState.DECLINED.value}


@dataclass(frozen=True)
class WorkflowContext:
    inbox_address: str
    secret: bytes
    people: Directory
    form_rules: FormRules
    admins: tuple[str, ...] = ()
    workday_end: time = time(18, 0)
    buffer_days: float = 1.0  # the guide's advice: leave 1–2 days of buffer on complex tasks
    # [security] require_token: a state-changing command (owners', initiators' and admins'
    # alike) counts only through a valid, unused reply token of the sender (a reply address, or
    # a subject tag, that maild gave that person), or from a sender a trusted stamp
    # authenticated (`Reply.authenticated`); not through threading headers or a bare subject.
    require_token: bool = False
    # The work calendar's working days (`WorkCalendar.is_workday`): "延期两天" counts them, and
    # weekend/holiday deadlines of new items get a note. None: Monday–Friday.
    workdays: Workdays | None = None
    draft_days: float = 7.0  # a reading waiting for its initiator's word expires after this
    # [security] allowed_domains, external_owners: who may be an owner (and get mail at all).
    allowed_domains: tuple[str, ...] = ()
    external_owners: tuple[str, ...] = ()
    # [workflow] acceptance: an owner's 完成 waits for the initiator's 验收 unless the item says
    # otherwise (closeloop.py); the work calendar places a recurring task's occurrences.
    acceptance: bool = False
    calendar: WorkCalendar | None = None


@dataclass(frozen=True)
class Outcome:
    disposition: str  # processed | quarantine
    reason: str
    items: tuple[dict[str, Any], ...] = ()
    notices: tuple[Notice, ...] = ()
    links: tuple[tuple[str, str, str | None], ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    drafts: tuple[dict[str, Any], ...] = ()  # readings waiting for their initiator (drafts.py)


def thread_of(msg: Inbound, root: str | None = None) -> tuple[str, tuple[str, ...]]:
    refs = [r for r in (root, *msg.references, msg.message_id) if r and not r.startswith("sha256:")]
    return msg.message_id, tuple(dict.fromkeys(refs))


def add_audit(item: dict[str, Any], now: datetime, who: str, action: str, msg: Inbound,
           task_id: str | None = None, **detail: Any) -> None:
    item.setdefault("audit", []).append({"at": now.isoformat(), "who": who, "action": action,
                                         "task": task_id, "message_id": msg.message_id,
                                         "detail": detail})


# The close reply the initiator is asked to send; `commands.read_command` reads these labels.
RETRO_FORM = {"zh": "结项\n是否达成目标：\n未达目标原因：\n可优化点：",
              "en": "close\nGoal achieved:\nReason:\nImprovements:"}


Link = tuple[tuple[str, str, str | None], ...]


def task_by_id(item: Mapping[str, Any], task_id: str | None) -> dict[str, Any] | None:
    if not task_id:
        return None
    wanted = task_id.upper().replace(" ", "")
    return next((t for t in item["tasks"] if t["id"] == wanted), None)


def task_for(item: Mapping[str, Any], task_id: str | None, sender: str) -> dict[str, Any] | None:
    if task_id:
        return task_by_id(item, task_id)
    mine = [t for t in item["tasks"] if t["owner"] == sender and t["state"] in OPEN_STATES]
    if len(mine) == 1:
        return mine[0]
    if len(item["tasks"]) == 1:
        return item["tasks"][0]
    return None


def touch(item: dict[str, Any], task: dict[str, Any] | None, now: datetime) -> None:
    if task is not None:
        task["updated_at"] = now.isoformat()
    item["updated_at"] = now.isoformat()


def all_done(item: Mapping[str, Any]) -> bool:
    """Every task done, and no more to come (a recurring task's series stopped)."""
    return all(t["state"] == TaskState.DONE.value for t in item["tasks"]) and \
        not series.active(item)


def ask_back(msg: Inbound, item: dict[str, Any], sender: str, language: str, ctx: WorkflowContext,
         question: str, link: Link, **facts: Any) -> Outcome:
    """A short question back instead of a guess (which task? which owner? which date?)."""
    notice = notice_for(msg, item, "question", sender, language, ctx,
                     {"ask": question, **facts})
    return Outcome("processed", f"asked {question}", notices=(notice,), links=link)


def refuse(msg: Inbound, item: dict[str, Any], sender: str, language: str, ctx: WorkflowContext,
            command: str, allowed: list[str], link: Link, *, token_problem: str = "") -> Outcome:
    """Nothing changes; the sender is told why: who may do it, or what was wrong with the reply
    address they used (`token_problem`)."""
    people = [actor_of(ctx, a) for a in dict.fromkeys(allowed)]
    # Someone outside the item must not see its status table.
    insider = sender in {item["initiator"], *(t["owner"] for t in item["tasks"])}
    notice = notice_for(msg, item if insider else {"id": item["id"], "initiator": item["initiator"]},
                     "refused", sender, language, ctx,
                     {"action": command, "token_problem": token_problem,
                      "allowed": [f"{p['name']} <{p['address']}>" for p in people]})
    if not insider:
        notice = Notice(**{**notice.__dict__, "context": {k: v for k, v in notice.context.items()
                                                          if k != "item"}})
    reason = (f"reply token {token_problem} for {command}" if token_problem
              else f"{sender} may not {command}")
    return Outcome("processed", reason, notices=(notice,), links=link)


def actor_of(ctx: WorkflowContext, address: str) -> dict[str, str]:
    person = ctx.people.by_address(address)
    return {"address": address, "name": person.name if person else address,
            "department": person.department if person else ""}


def notice_for(msg: Inbound, item: Mapping[str, Any], template: str, to: str, language: str,
            ctx: WorkflowContext, extra: Mapping[str, Any], task_id: str | None = None) -> Notice:
    in_reply_to, references = thread_of(msg, item.get("root_message_id"))
    return Notice(template=template, to=(to,), language=language,
                  context={"item": item, **extra}, item_id=item["id"], task_id=task_id,
                  in_reply_to=in_reply_to, references=references)
