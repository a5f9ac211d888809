"""A reply that says several things ("没问题，不过得延后三天左右"), or something maild cannot read.

Pure. `handle_compound` applies each command in the order written, each on the item as the one
before left it, through `workflow.apply_command` — so each is checked on its own (who may do it,
its reply token, used once per command), has its own audit entry, and may be refused or asked
about while the others stand. What it tells people is then merged, one email per person:

* the sender gets one acknowledgement listing every part: what was recorded, what changed
  nothing, what was refused and why, what needs a detail, and the parts it did not understand
  (nothing is done about those; the sender is asked to write them as a command);
* the initiator gets one notice: the part that asks most of them (a blocker, a delay request, a
  decline, a confirmation — in that order) with every other recorded part named in it, and the
  parts not understood quoted, so no intent is lost;
* anyone else (a new owner, an owner told of a new deadline) gets what the part sent them.

The whole reply is one outcome: one commit, as for a single command. A reply all of whose parts
are refused gets the first refusal, as a single command would (parts not understood included:
nothing else is told, so someone outside the item sees nothing of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from maild.core.classify import Reply
from maild.core.model import Command, Inbound, Notice
from maild.core.outcomes import Outcome, WorkflowContext, actor_of, add_audit, thread_of
from maild.core.workflow import apply_command

# The notices that tell the initiator about an owner's reply, the most demanding first: the
# first of these a reply causes carries the others.
INITIATOR_NOTICES = ("blocker_alert", "delay_request", "declined", "confirmed")
SENDER_NOTICES = ("command_ack", "question", "refused")


def handle_compound(msg: Inbound, decision: Reply, item: dict[str, Any], ctx: WorkflowContext,
                    now: datetime) -> Outcome:
    """Every command of the reply, in order; one acknowledgement; one notice per other person."""
    sender = msg.from_addr
    current = item
    changed = False
    parts: list[dict[str, Any]] = []
    outcomes: list[Outcome] = []
    for command in decision.commands:
        outcome = apply_command(msg, decision, current, command, ctx, now)
        outcomes.append(outcome)
        mine = next((o for o in outcome.items if o.get("id") == item["id"]), None)
        if mine is not None:
            current, changed = mine, True
        parts.append(_part(command, outcome, sender))
    if outcomes and all(p["result"] == "refused" for p in parts):
        # Nothing it asks may be done: one refusal, which shows someone outside the item nothing.
        return outcomes[0]
    task = _task_of(current, decision, parts)
    if decision.unread and changed:
        add_audit(current, now, sender, "unread", msg, task["id"] if task else None,
                  text="\n".join(decision.unread))
    notices = _merge(msg, decision, current, parts, outcomes, sender, ctx)
    applied = [p["command"]["name"] for p in parts if p["result"] == "applied"]
    reason = "; ".join(o.reason for o in outcomes)
    if decision.unread:
        reason += f"; {len(decision.unread)} part(s) not understood"
    summary: dict[str, Any] = {"item": item["id"], "commands": applied}
    if task:
        summary["task"] = task["id"]
    if applied:
        summary["command"] = "close" if "close" in applied else applied[0]
    links = outcomes[0].links if outcomes else ((msg.message_id, item["id"], decision.task_id),)
    return Outcome("processed", reason, items=(current,) if changed else (),
                   notices=tuple(notices), links=links, summary=summary)


def _part(command: Command, outcome: Outcome, sender: str) -> dict[str, Any]:
    """What became of one command, for the acknowledgement."""
    to_sender = [n for n in outcome.notices if sender in n.to]
    question = next((n for n in to_sender if n.template == "question"), None)
    refused = next((n for n in to_sender if n.template == "refused"), None)
    ack = next((n for n in to_sender if n.template == "command_ack"), None)
    said = dict(ack.context.get("command") or {}) if ack else {}
    part: dict[str, Any] = {"command": {**command.to_dict(), **said, "name": command.name}}
    told = ack or question or refused
    task = told.context.get("task") if told is not None else None
    if task:
        part["task"] = {"id": task["id"], "name": task["name"]}
    if outcome.items:
        part["result"] = "applied"
    elif question is not None:
        part.update(result="asked", ask=question.context.get("ask", ""),
                    missing=list(question.context.get("missing", ())),
                    value=str(question.context.get("value", "")))
    elif refused is not None:
        part.update(result="refused", token_problem=refused.context.get("token_problem", ""),
                    allowed=list(refused.context.get("allowed", ())))
    elif ack is not None and not ack.context.get("changed", True):
        part["result"] = "unchanged"
    else:
        part["result"] = "applied"
    return part


def _task_of(item: Mapping[str, Any], decision: Reply, parts: list[dict[str, Any]]
             ) -> dict[str, Any] | None:
    wanted = decision.task_id or next((p["task"]["id"] for p in parts if "task" in p), None)
    return next((t for t in item["tasks"] if t["id"] == wanted), None) if wanted else None


def _merge(msg: Inbound, decision: Reply, item: dict[str, Any], parts: list[dict[str, Any]],
           outcomes: list[Outcome], sender: str, ctx: WorkflowContext) -> list[Notice]:
    task = _task_of(item, decision, parts)
    initiator = item["initiator"]
    to_initiator: list[Notice] = []
    others: dict[tuple[str, str], Notice] = {}
    for outcome in outcomes:
        for notice in outcome.notices:
            if sender in notice.to and notice.template in SENDER_NOTICES:
                continue
            if notice.to == (initiator,) and notice.template in INITIATOR_NOTICES:
                to_initiator.append(notice)
            else:  # a later part's notice to the same person about the same thing wins
                others[(notice.to[0] if notice.to else "", notice.template)] = notice
    notices: list[Notice] = []
    forwarded = False
    if to_initiator:
        notices.append(_initiator_notice(to_initiator, item, task, parts, decision.unread))
        forwarded = bool(decision.unread)
    notices.extend(_with_item(n, item) for n in others.values())
    language = item.get("language", decision.language)
    first = next((p["command"] for p in parts if p["result"] == "applied"), parts[0]["command"]
                 if parts else {"name": ""})
    in_reply_to, references = thread_of(msg, item.get("root_message_id"))
    ack = Notice(template="command_ack", to=(sender,), language=language,
                 context={"item": item, "task": task, "command": first,
                          "changed": any(p["result"] == "applied" for p in parts),
                          "actor": actor_of(ctx, sender), "parts": parts,
                          "unread": list(decision.unread), "unread_forwarded": forwarded},
                 item_id=item["id"], task_id=task["id"] if task else None,
                 in_reply_to=in_reply_to, references=references)
    return [ack, *notices]


def _initiator_notice(notices: list[Notice], item: dict[str, Any], task: dict[str, Any] | None,
                      parts: list[dict[str, Any]], unread: tuple[str, ...]) -> Notice:
    """One notice to the initiator: the most demanding one, naming every other recorded part."""
    primary = min(notices, key=lambda n: INITIATOR_NOTICES.index(n.template))
    primary_command = {"blocker_alert": "blocker", "delay_request": "delay",
                       "declined": "decline", "confirmed": "confirm"}[primary.template]
    also = [p["command"] for p in parts
            if p["result"] == "applied" and p["command"]["name"] != primary_command]
    context = {**primary.context, "item": item, "also": also, "remarks": list(unread)}
    if task is not None and primary.context.get("task", {}).get("id") == task["id"]:
        context["task"] = task
    return Notice(**{**primary.__dict__, "context": context})


def _with_item(notice: Notice, item: dict[str, Any]) -> Notice:
    """A notice made mid-way shows the item as the whole reply left it."""
    if "item" not in notice.context or notice.context["item"].get("id") != item["id"]:
        return notice
    return Notice(**{**notice.__dict__, "context": {**notice.context, "item": item}})
