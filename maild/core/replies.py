"""A reply about an item, routed: no open item or no command read gets its answer here; one
command goes to `workflow.apply_command`, several (or parts not understood) to `compound`.

Pure. Kept apart from `workflow` so that `compound`, which applies each command through
`workflow.apply_command`, and `workflow` do not import each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from maild.core.answers import unrecognized_reply
from maild.core.classify import Reply
from maild.core.compound import handle_compound
from maild.core.model import Inbound
from maild.core.outcomes import Outcome, WorkflowContext, notice_for
from maild.core.workflow import apply_command, link_of


def handle_reply(msg: Inbound, decision: Reply, item: dict[str, Any] | None, ctx: WorkflowContext,
                 now: datetime) -> Outcome:
    """A reply about an item: check who may do what each command asks, then do it. A reply with
    several commands, or with parts not understood, is handled by `compound.handle_compound`."""

    if item is None or item.get("state") == "closed":
        return unrecognized_reply(msg, decision.language, f"no open item {decision.item_id}", ctx)
    if not decision.commands:
        language = item.get("language", decision.language)
        return Outcome("processed", "command not understood", notices=(
            notice_for(msg, item, "not_understood", msg.from_addr, language, ctx,
                    {"excerpt": decision.new_text[:500]}),), links=link_of(msg, item, decision))
    if len(decision.commands) > 1 or decision.unread:
        return handle_compound(msg, decision, item, ctx, now)
    return apply_command(msg, decision, item, decision.commands[0], ctx, now)
