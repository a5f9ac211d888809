"""The guide's template lines in a reply, filled in the way people fill them in a mail client.

Pure. `read_labelled(text)` finds the commands given as labelled lines — `当前进度：□50% ☑75%`
(with `完成情况简述：…` as its note), `完成状态：☑进行中`, a blocker's `现状 / 原因 / 需支持资源`
lines with or without a `问题：` line, a delay's `新的截止日期 / 原因` — and returns the text with
those lines blanked (same length, so offsets still hold) for the sentence readers of
`commands.py`. `fields(text, wanted)` reads labelled lines by canonical name (a close's
retrospective).

Surprises worth knowing:

* A label may be followed by a colon, or directly by the boxes or by the template's brackets:
  `当前进度（□0% √50% □100%）` is the guide's header row with one box ticked.
* "Status:" is a state under a status label (`Status: [x] In progress`), but a blocker's
  situation next to `Support needed:`; a status with more words after it (`状态：未开始，下周一
  启动`) is left to the sentence readers, which keep the rest as its note.
* Two boxes ticked on one line is a problem, never a choice: the reply is asked about.
* `原因：` alone makes no command: it is the reason of the delay, blocker or decline around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from maild.core.checkboxes import ticked

_FIELD_RE = re.compile(r"^\s*(?P<label>[^:：\n（(□☐○◯☑☒■▣√✓✔●\[]{1,20}?)\s*"
                       r"(?:[:：]|(?=[（(□☐○◯☑☒■▣√✓✔●\[]))\s*(?P<value>.*)$")

_BLOCKER_FIELDS = {
    "situation": ("现状", "現狀", "situation", "current situation", "status", "current"),
    "cause": ("原因", "cause", "reason", "why"),
    "support": ("需支持资源", "需支持", "需要支持", "需要的支持", "需要资源", "support needed",
                "needed", "需協助", "需支持資源", "support", "need", "needs", "help needed"),
}
RETRO_FIELDS = {
    "achieved": ("是否达成目标", "达成目标", "是否達成目標", "goal achieved", "achieved"),
    "shortfall": ("未达目标原因", "未達目標原因", "原因", "reason", "why not"),
    "improvements": ("可优化点", "可優化點", "改进", "improvements", "lessons", "to improve"),
}
_PROGRESS_LABELS = ("当前进度", "进度", "進度", "完成进度", "进展", "progress", "current progress")
_STATUS_LABELS = ("完成状态", "状态", "狀態", "完成狀態", "当前状态", "status", "current status",
                  "completion status")
_NOTE_LABELS = ("完成情况简述", "完成情况", "情况简述", "进展说明", "进度说明", "备注", "备注/问题反馈",
                "问题反馈", "说明", "summary", "note", "notes", "comment", "comments", "remarks")
_DELAY_LABELS = ("新的截止日期", "新截止日期", "新的截止时间", "延期至", "延至", "申请延期至", "延期到",
                 "调整后截止日期", "new deadline", "new due date", "requested deadline", "delay to",
                 "延期")
_BLOCKER_WORDS = ("问题", "問題", "阻塞", "受阻", "卡住", "blocker", "blocked", "problem", "issue")
_DELAY_HEADERS = re.compile(r"^(?:延期申请|申请延期|延期|delay request|request for (?:an )?extension)"
                            r"\s*[:：]?$", re.IGNORECASE)
STATE_WORDS = {
    "未开始": "not_started", "not started": "not_started",
    "进行中": "in_progress", "進行中": "in_progress", "in progress": "in_progress",
    "已完成": "done", "done": "done", "completed": "done",
    "延期": "delayed", "delayed": "delayed",
}


# The same fields as phrases.Found (duplicates): kept apart, labelled lines and sentences are two readers.
@dataclass(frozen=True)
class Filled:
    """A command given as labelled lines, and where its first line is in the text."""

    name: str
    args: dict[str, Any]
    start: int
    end: int


@dataclass(frozen=True)
class Labelled:
    found: list[Filled]
    problems: list[str]  # lines that cannot be read as one choice (two boxes ticked)
    free: str  # the text with the lines used blanked out


def _label_of(label: str, names: tuple[str, ...]) -> bool:
    return label.strip().lower() in names


def read_labelled(text: str) -> Labelled:
    """Commands filled in as labelled lines; problems (a line with two boxes ticked); and the
    text with those lines blanked out (offsets kept) for the sentence readers."""
    lines = text.split("\n")
    starts = [sum(len(line) + 1 for line in lines[:n]) for n in range(len(lines))]
    by_key: dict[str, tuple[int, str]] = {}  # canonical field → (line number, value)
    current: str | None = None
    continued: dict[str, list[int]] = {}
    blocker_line: int | None = None
    delay_header: int | None = None
    for number, line in enumerate(lines):
        stripped = line.strip()
        if _DELAY_HEADERS.match(stripped):
            delay_header = number
            current = None
            continue
        match = _FIELD_RE.match(line)
        key = _field_key(match.group("label"), match.group("value")) if match else None
        if key is None and stripped.lower().rstrip(":：") in _BLOCKER_WORDS:
            blocker_line, current = number, None
            continue
        if key == "blocker":
            blocker_line, current = number, None
            by_key.setdefault("problem", (number, match.group("value").strip()))
            continue
        if key:
            value = match.group("value").strip()
            if value.startswith(("（", "(")) and value.endswith(("）", ")")) and ticked(value[1:-1]):
                value = value[1:-1].strip()
            by_key.setdefault(key, (number, value))
            current = key
        elif current and stripped and current in ("situation", "cause", "support", "note"):
            number_, value = by_key[current]
            by_key[current] = (number_, (value + "\n" + stripped).strip())
            continued.setdefault(current, []).append(number)
        else:
            current = None
    hits: list[Filled] = []
    problems: list[str] = []
    used: set[int] = set()

    def use(*keys: str) -> None:
        for key in keys:
            if key in by_key:
                used.add(by_key[key][0])
                used.update(continued.get(key, ()))

    note = by_key.get("note", (0, ""))[1]
    for key, reader in (("progress", _progress_value), ("status", _status_value)):
        if key not in by_key:
            continue
        number, value = by_key[key]
        read = reader(value)
        if read is None:
            continue
        if read == "ambiguous":
            problems.append(lines[number])
            used.add(number)
            continue
        args = dict(read)
        if note:
            args["note"] = note
            use("note")
        hits.append(Filled(key, args, starts[number], starts[number] + len(lines[number])))
        used.add(number)
    if "status_text" in by_key and ("support" in by_key or blocker_line is not None):
        by_key.setdefault("situation", by_key["status_text"])
    blocker_keys = [k for k in ("situation", "cause", "support") if k in by_key]
    if blocker_line is not None or "situation" in by_key or "support" in by_key:
        args = {k: by_key[k][1] for k in blocker_keys}
        if "situation" not in args and by_key.get("problem", (0, ""))[1]:
            # "问题：素材延迟" without a 现状 line: the problem is the situation.
            args = {"situation": by_key["problem"][1], **args}
        where = min([by_key[k][0] for k in blocker_keys]
                    + ([blocker_line] if blocker_line is not None else []))
        hits.append(Filled("blocker", args, starts[where], starts[where] + len(lines[where])))
        use(*blocker_keys)
        if blocker_line is not None:
            used.add(blocker_line)
    elif "delay" in by_key:
        number, value = by_key["delay"]
        args = {"date": value}
        if "cause" in by_key:
            args["reason"] = by_key["cause"][1]
            use("cause")
        hits.append(Filled("delay", args, starts[number], starts[number] + len(lines[number])))
        used.add(number)
        if delay_header is not None:
            used.add(delay_header)
    free = "\n".join(" " * len(line) if number in used else line
                     for number, line in enumerate(lines))
    return Labelled(hits, problems, free)


def _field_key(label: str, value: str) -> str | None:
    label = label.strip().lower()
    if label in _BLOCKER_WORDS:
        return "blocker"
    if _label_of(label, _PROGRESS_LABELS):
        return "progress"
    if _label_of(label, _STATUS_LABELS):
        # "Status: tool down" under a blocker is its situation, not a state; "状态：未开始，下周一
        # 启动" is read as a sentence (a state and its note).
        return "status" if ticked(value) or _state_of(value) else "status_text"
    if _label_of(label, _NOTE_LABELS):
        return "note"
    if _label_of(label, _DELAY_LABELS):
        return "delay"
    for key, labels in _BLOCKER_FIELDS.items():
        if _label_of(label, labels):
            return key
    return None


def _state_of(value: str) -> str | None:
    return STATE_WORDS.get(value.strip().strip("。.").lower())


def _one_choice(value: str) -> str | None:
    """The value itself, or its one ticked option; "" when none is ticked, None when several are."""
    choice = ticked(value)
    if choice is None:
        return value
    if len(choice.ticked) > 1:
        return None
    return choice.ticked[0] if choice.ticked else ""


def _progress_value(value: str) -> dict[str, Any] | str | None:
    chosen = _one_choice(value)
    if chosen is None:
        return "ambiguous"
    match = re.fullmatch(r"\s*(\d{1,3})\s*%\s*", chosen)
    if not match:
        return None
    percent = int(match.group(1))
    return {"percent": percent} if percent <= 100 else "ambiguous"


def _status_value(value: str) -> dict[str, Any] | str | None:
    chosen = _one_choice(value)
    if chosen is None:
        return "ambiguous"
    state = _state_of(chosen)
    return {"state": state} if state else None


def fields(text: str, wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Labelled lines (`现状: …`) under the command's first line, by canonical name."""
    found: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _FIELD_RE.match(line)
        if match:
            label = match.group("label").strip().lower()
            current = next((key for key, labels in wanted.items()
                            if any(label == lab.lower() for lab in labels)), None)
            if current:
                found[current] = match.group("value").strip()
                continue
        elif current and line.strip():
            found[current] = (found[current] + "\n" + line.strip()).strip()
    return found
