"""Who may do what, and with which proof: the trust model the workflow applies to every command.

The From header can be forged, so a name is not proof. A state-changing command counts when the
sender may give it (the task's owner; the item's initiator or an admin for reassign, deadlines,
accepting delays, close and withdraw) AND, with `require_token` (the shipped setting), the
email proves who sent it: a valid, unused reply token of that person, bound to the item, the
task and the action (in a reply address, or in a subject tag where the server has no plus
addressing), or a sender authentication stamped by the operator's own receiving server
(`classify.sender_authentication`). A token that is there is checked even when not required.

Pure: these functions read the item and the context, never the store or the clock.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from maild.core import tokens
from maild.core.loopcommands import (
    COMMANDS as LOOP_COMMANDS,  # accept or return work, stop a series, 依赖
)

if TYPE_CHECKING:
    from maild.core.outcomes import WorkflowContext

# State-changing commands: the ones a reply token is checked for.
TOKEN_CHECKED = frozenset(("confirm", "decline", "progress", "status", "done", "blocker", "delay",
                           "reassign", "close", "withdraw", *LOOP_COMMANDS))


def may_manage(item: Mapping[str, Any], address: str, ctx: WorkflowContext) -> bool:
    """The initiator and configured admins reassign, change deadlines, accept delays, close and
    withdraw."""
    return address == item["initiator"] or address in ctx.admins


def may_own(address: str, ctx: WorkflowContext) -> bool:
    """Whether `address` may be an owner (and so be mailed): a domain in `allowed_domains` (any
    domain when none is set), or one of the declared `external_owners`."""
    address = address.lower()
    return (not ctx.allowed_domains or address.rpartition("@")[2] in ctx.allowed_domains
            or address in ctx.external_owners)


def managed_action(item: Mapping[str, Any], task: Mapping[str, Any] | None, sender: str,
                   name: str, ctx: WorkflowContext) -> str | None:
    """What a manager's `confirm` or `delay` about someone else's task means: "accept" (a
    requested delay, 同意延期) or "reschedule" (a new deadline, 改期); None otherwise."""
    if not may_manage(item, sender, ctx) or task is None or task["owner"] == sender:
        return None
    if name == "confirm" and task.get("requested_deadline"):
        return "accept"
    return "reschedule" if name == "delay" else None


def use_key(token: tokens.ReplyToken, name: str, args: Mapping[str, Any]) -> str:
    """An action-bound token is used once; a reply token once per distinct command, so a second
    reply to the same email still works but the same reply sent again (a replay) does not."""
    if token.action != "reply":
        return token.use_key
    return f"{token.use_key}|{name}|{json.dumps(args, sort_keys=True, ensure_ascii=False)}"


def token_holders(item: Mapping[str, Any], ctx: WorkflowContext) -> list[str]:
    """Everyone maild may have given a reply address for this item."""
    people = [item["initiator"], *(t["owner"] for t in item["tasks"]), *ctx.admins]
    for entry in item.get("audit", ()):
        people += [entry.get("who", ""), (entry.get("detail") or {}).get("previous", "")]
    for address in list(people):
        person = ctx.people.by_address(address) if address else None
        if person is not None and person.manager:
            people.append(person.manager)
    return [p for p in dict.fromkeys(people) if p]


def token_problem(item: Mapping[str, Any], sender: str, name: str, args: Mapping[str, Any],
                  reading: tokens.TokenReading | None, ctx: WorkflowContext, *,
                  authenticated: str, task: Mapping[str, Any] | None) -> str:
    """Why this reply's token does not allow `name` on `task` (the task the command is about,
    None for the item): "" when it does, or when no token is needed.

    With `require_token`, every state-changing command needs the sender's own valid token,
    unless a trusted stamp `authenticated` the sender. A token that is there is checked in any
    case: it must not be tampered with, must carry this action (a button carries one; the
    plain reply address any), must name the task the command is about, and must be unused."""
    if name not in TOKEN_CHECKED:
        return ""
    required = ctx.require_token and not authenticated
    if reading is None:
        return "missing" if required else ""
    if reading.token is None:
        if reading.problem == "unverified" and tokens.issued_to(
                ctx.secret, reading.text, token_holders(item, ctx)) is None:
            return "tampered"
        if required:
            return "expired" if reading.problem == "expired" else "not_yours"
        return ""
    token = reading.token
    if token.action not in ("reply", name, managed_action(item, task, sender, name, ctx)):
        return "wrong_action"
    if token.task_id and task is not None and task.get("id") != token.task_id.upper():
        return "wrong_task"
    if use_key(token, name, args) in item.get("used_tokens", {}):
        return "used"
    return ""
