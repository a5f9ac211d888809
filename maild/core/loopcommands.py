"""Read the initiator's commands that close the loop: accept or return handed-in work, stop a
recurring task, make a task wait on another (or not).

`read(first_line, text)` → a `Command` or None; `commands.read_commands` asks it first, like the
other commands that take a whole reply (转派, 结项). Pure.

    验收通过 / 通过验收 / 验收合格 / approve the work / sign off             → approve {note}
    退回修改：数据缺7月 / 退回：… / return: … / send back: … / rework: …       → return {reason}
    停止重复 / 取消重复 / stop repeating / stop the series                     → stop
    依赖 T-3 T-1 / T-3 依赖 T-1 / T-3 waits on T-1 / depends: T-3 on T-1      → depend {task, on}
    取消依赖 T-3 / T-3 不再依赖 T-1 / remove dependency T-3 on T-1            → undepend {task, on}

Surprises: "通过", "approved" or "accept" alone is not read here (a confirmation reads it, and
on a delay request it accepts the delay); the workflow
reads an initiator's confirmation of handed-in work as acceptance, and a refusal ("拒绝：…") as
a return, so plain words work too. A return needs a reason: without one the workflow asks.
"""

from __future__ import annotations

import re

from maild.core.dependencies import task_ids
from maild.core.model import Command

# The initiator's (or an admin's) commands that close the loop (`closeloop.handle` carries them out).
COMMANDS = frozenset({"approve", "return", "stop", "depend", "undepend"})

_SEP = r"\s*[:：,，。.!！]?\s*"
_LEAD = re.compile(r"^[\s:：,，.。;；!！、\-–—]+")
_APPROVE_RE = re.compile(
    r"^(?:验收通过|通过验收|验收合格|验收完成|验收ok|同意验收|确认验收|已验收|"
    r"(?:approve[ds]?|accept(?:ed|s)?) (?:the )?(?:work|deliverable|hand-?in)|"
    r"(?:work|deliverable) (?:approved|accepted)|sign(?:ed)?[- ]off|lgtm)"
    r"(?![a-z])" + _SEP, re.IGNORECASE)
_RETURN_RE = re.compile(
    r"^(?:退回修改|退回重做|退回|打回|驳回|返工|验收不通过|不通过|需要修改|需修改|请修改|"
    r"return(?:ed)?(?: for (?:changes|rework))?|send(?:ing)? (?:it )?back|sent back|rework|"
    r"needs? (?:changes|rework)|changes requested|request changes)(?![a-z])" + _SEP,
    re.IGNORECASE | re.DOTALL)
_STOP_RE = re.compile(
    r"^(?:停止重复|取消重复|不再重复|停止循环|结束重复|终止重复|停止周期|"
    r"stop (?:repeating|the recurrence|recurrence|the series|this series)|"
    r"end (?:the )?series|no more (?:repeats|occurrences)|cancel (?:the )?recurrence)(?![a-z])",
    re.IGNORECASE)
# Regex tables look alike (duplicates, also sentences and dsn): the words differ, the shape is re.compile.
_UNDEPEND_RE = re.compile(
    r"^(?:取消依赖|解除依赖|去掉依赖|删除依赖|不再依赖|不依赖|remove (?:the )?dependency|"
    r"no (?:longer )?(?:depends?|dependency)|drop (?:the )?dependency)(?![a-z])|"
    r"^T\s*-?\s*\d{1,4}\s*(?:不再依赖|不依赖|no longer (?:depends on|waits on))", re.IGNORECASE)
_DEPEND_RE = re.compile(
    r"^(?:确认依赖|依赖|依賴|前置|depends?(?: on)?|dependency)(?![a-z])|"
    r"^T\s*-?\s*\d{1,4}\s*(?:依赖|依賴|等待?|waits? (?:on|for)|depends? on|after)", re.IGNORECASE)


def read(first_line: str, text: str) -> Command | None:
    """The loop command `text` (normalised) gives, from its first line; None when it gives none."""
    line = first_line.strip()
    if m := _RETURN_RE.match(text.strip()):  # before approval: "验收不通过" is a return
        return Command("return", {"reason": _paragraph(text.strip()[m.end():])})
    if m := _APPROVE_RE.match(line):
        return Command("approve", {"note": _rest(text, m.end(), line)})
    if _STOP_RE.match(line):
        return Command("stop")
    if _UNDEPEND_RE.match(line):
        ids = task_ids(line)
        return Command("undepend", {"task": ids[0] if ids else None, "on": ids[1:]})
    if _DEPEND_RE.match(line):
        ids = task_ids(line)
        if not ids:
            return None
        # One ID: the task the reply is about waits on it (the workflow asks when that is unclear).
        return Command("depend", {"task": ids[0] if len(ids) > 1 else None,
                                  "on": ids[1:] if len(ids) > 1 else ids})
    return None


def _rest(text: str, end: int, line: str) -> str:
    """The note after the command word: the rest of its line and the paragraph under it."""
    rest = line[end:].strip()
    below = text.strip()[len(line):] if text.strip().startswith(line) else ""
    return _paragraph((rest + below).strip())


def _paragraph(text: str) -> str:
    text = _LEAD.sub("", text)
    return re.split(r"\n[ \t]*\n", text.strip(), maxsplit=1)[0].strip()

