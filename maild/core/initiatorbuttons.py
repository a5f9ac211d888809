"""The initiator's buttons on the tasks and items an email lists: which of 转派 / 改期 / 同意延期 /
结项 / 撤销 a row offers, in digests, reminders and escalations, and the receipt of several items.

Pure. Each row's buttons get their own reply addresses, signed for the reader, that item and
that task (or the item itself: `ref` without "/TASK"), one action each (`levels.actionable`,
`service.notice_addresses`), exactly as owners' rows get theirs.

Surprises worth knowing:

* Only rows that need the initiator get buttons (awaiting confirmation, declined, blocked, a
  delay asked for, overdue; an item whose tasks are all done): a digest's quiet rows sign
  nothing, so 200 rows cost what their few open questions cost.
* The answer depends on three facts only (state, a delay asked for, overdue): it is a table
  made once, so 40,000 digest rows at 09:00 allocate nothing for it.
* Buttons are only ever shown to the initiator in an email addressed to them alone: a Cc would
  hand them to someone else (`levels.deliver` gives the initiator their own email).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from maild.core.model import TaskState

# The buttons of each item of a receipt that lists several (a daily-task table of several rows).
RECEIPT_ITEM_ACTIONS = ("withdraw", "reassign")
ITEM_CLOSE_ACTIONS = ("close",)


def _buttons(state: str, delay_asked: bool, overdue: bool) -> tuple[str, ...]:
    if state == TaskState.DONE.value:
        return ()
    out: list[str] = []
    if state == TaskState.SUBMITTED.value:  # handed in for 验收 (acceptance.py): accept it or send it back
        out += ["approve", "return"]
    if delay_asked:
        out += ["accept", "reschedule"]
    if overdue:
        out += ["reschedule", "reassign"]
    if state == TaskState.BLOCKED.value:  # as the blocker alert offers: move it, or hand it on
        out += ["reschedule", "reassign"]
    if state in (TaskState.AWAITING_CONFIRMATION.value, TaskState.DECLINED.value):
        out.append("reassign")
    return tuple(dict.fromkeys(out))


_TABLE = {(state.value, asked, overdue): _buttons(state.value, asked, overdue)
          for state in TaskState for asked in (False, True) for overdue in (False, True)}


def task_buttons(task: Mapping[str, Any], overdue: bool) -> tuple[str, ...]:
    """The initiator's buttons for one task, in the order shown: 同意延期 and 改期 for a delay
    asked for; 改期 and 转派 when overdue or blocked; 转派 when awaiting confirmation or declined;
    验收通过 and 退回修改 for work handed in.
    None for a done task, nor for one going to plan."""
    state = str(task.get("state", ""))
    found = _TABLE.get((state, bool(task.get("requested_deadline")), overdue))
    return found if found is not None else _buttons(state, bool(task.get("requested_deadline")),
                                                    overdue)


def item_rows(item_ids: Iterable[str], actions: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows for buttons on whole items (`ref` is the item id: its tokens name no task)."""
    return [{"ref": item_id, "actions": actions} for item_id in item_ids]


def split_ref(ref: str) -> tuple[str, str | None]:
    """"MD-0001/T-2" → ("MD-0001", "T-2"); "MD-0001" (the item itself) → ("MD-0001", None)."""
    item_id, _, task_id = ref.partition("/")
    return item_id, task_id or None
