"""Read the command in the new text of a reply: confirm, decline, progress, done, and the rest.

Only the new text is read (quoted history is cut before this, in `reply.py`). The text is
normalised first, so full-width digits and percent signs (`进度：５０％`) read like ASCII.
A reply that matches no command, or two contradictory ones, yields None: the caller asks back
rather than guessing.
"""

from __future__ import annotations

import re

from .model import Command

_SEP = r"\s*[:：,，]?\s*"
_CONFIRM_RE = re.compile(
    r"^(?:确认|確認|收到|好的|好|可以|没问题|沒問題|同意|接受|ok(?:ay)?|confirm(?:ed)?|accept(?:ed)?|"
    r"yes|agreed|got it|will do|roger)(?![a-z])", re.IGNORECASE)
_DECLINE_RE = re.compile(
    r"^(?:拒绝|拒絕|无法承担|無法承擔|不接受|无法接受|无法完成|不能承担|decline[d]?|reject(?:ed)?|"
    r"can(?:no|')t (?:take|accept|do)(?: (?:it|this))?|unable to (?:take|accept)(?: (?:it|this))?)"
    r"(?![a-z])" + _SEP + r"(?P<reason>.*)", re.IGNORECASE | re.DOTALL)
_PROGRESS_RE = re.compile(
    r"^(?:进度|進度|progress|完成度|已完成)?\s*[:：]?\s*(?P<pct>\d{1,3})\s*%", re.IGNORECASE)
_DONE_RE = re.compile(r"^(?:已完成|完成了?|已交付|done|completed|finished|delivered)(?![a-z])"
                      + _SEP + r"(?P<note>.*)", re.IGNORECASE | re.DOTALL)
_STATUS_RE = re.compile(r"^(?:状态|狀態|status)\s*[:：]?\s*(?P<state>未开始|進行中|进行中|已完成|延期|"
                        r"not started|in progress|done|delayed)", re.IGNORECASE)
_DELAY_RE = re.compile(r"^(?:延期|推迟|推遲|改期|delay(?:ed)?|postpone[d]?|reschedule[d]?)\s*(?:至|到|until|to)?\s*[:：]?\s*"
                       r"(?P<date>.*?)\s*(?:[,，;；。\n]|(?=\s(?:because|reason|due to)\b)|"
                       r"(?=因为|因為|原因|由于|由於)|$)(?P<reason>.*)", re.IGNORECASE | re.DOTALL)
_BLOCKER_RE = re.compile(r"^(?:问题|問題|阻塞|受阻|卡住|blocker|blocked|problem|issue)(?![a-z])",
                         re.IGNORECASE)
_REASSIGN_RE = re.compile(r"^(?:转派|轉派|改派|reassign)\s*(?P<task>T-?\d+)?\s*(?:给|給|to|至)?\s*"
                          r"(?P<owner>.+)", re.IGNORECASE)
_CLOSE_RE = re.compile(r"^(?:关闭|關閉|结项|結項|结案|close[d]?)(?![a-z])", re.IGNORECASE)
# The initiator takes the item back (the receipt's 撤销 button: an item they did not send).
_WITHDRAW_RE = re.compile(r"^(?:撤销|撤銷|撤回|withdraw(?:n)?)(?![a-z])", re.IGNORECASE)
# The "Status" button's body, or a question about where things stand: answered, nothing changes.
_SHOW_RE = re.compile(r"^(?:状态|狀態|查看状态|查看狀態|查询状态|查詢狀態|进展如何|進展如何|status|"
                      r"show status|what(?:'s| is) the status)\s*[?？]?$", re.IGNORECASE)
_HELP_RE = re.compile(r"^(?:帮助|幫助|help|模板|template[s]?|\?|？)$", re.IGNORECASE)
_REFUSAL_RE = re.compile(r"做不了|无法|無法|不能|拒绝|拒絕|来不及|來不及|can't|cannot|can not|unable|"
                         r"won't be able", re.IGNORECASE)
_REASON_LEAD = re.compile(r"^(?:原因|理由|因为|因為|由于|由於|reason|because|due to)\s*[:：,，]?\s*",
                          re.IGNORECASE)
_NOTE_LEAD = re.compile(r"^[\s:：,，.。;；!！、-]+")
_FIELD_RE = re.compile(r"^\s*(?P<label>[^:：\n]{1,20}?)\s*[:：]\s*(?P<value>.*)$")

_BLOCKER_FIELDS = {
    "situation": ("现状", "現狀", "situation", "status", "current"),
    "cause": ("原因", "cause", "reason", "why"),
    "support": ("需支持资源", "需支持", "需要支持", "需要的支持", "需要资源", "support needed",
                "needed", "需協助", "需支持資源", "support", "need", "needs", "help needed"),
}
_RETRO_FIELDS = {
    "achieved": ("是否达成目标", "达成目标", "是否達成目標", "goal achieved", "achieved"),
    "shortfall": ("未达目标原因", "未達目標原因", "原因", "reason", "why not"),
    "improvements": ("可优化点", "可優化點", "改进", "improvements", "lessons", "to improve"),
}
STATE_WORDS = {
    "未开始": "not_started", "not started": "not_started",
    "进行中": "in_progress", "進行中": "in_progress", "in progress": "in_progress",
    "已完成": "done", "done": "done",
    "延期": "delayed", "delayed": "delayed",
}


# Full-width digits, letters and a few symbols read as ASCII; Chinese punctuation (，：；) stays,
# because it is part of what people wrote (a decline reason is quoted back verbatim).
_HALF_WIDTH = str.maketrans(
    {**{chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)},
     **{chr(c): chr(c - 0xFEE0) for c in range(0xFF21, 0xFF3B)},
     **{chr(c): chr(c - 0xFEE0) for c in range(0xFF41, 0xFF5B)},
     "％": "%", "＋": "+", "－": "-", "．": ".", "／": "/", "\u3000": " ", "\u00a0": " "})


def normalise(text: str) -> str:
    return text.translate(_HALF_WIDTH)


def read_command(new_text: str) -> Command | None:
    """The command a reply's new text gives, or None when it gives none (or is ambiguous)."""
    text = normalise(new_text).strip()
    if not text:
        return None
    line = text.splitlines()[0].strip()
    first = line.strip("。.!！")
    if _HELP_RE.match(first):
        return Command("help")
    if _SHOW_RE.match(first) and len(text.splitlines()) == 1:
        return Command("show")
    if match := _DECLINE_RE.match(text):
        return Command("decline", {"reason": _reason(match.group("reason"))})
    if match := _REASSIGN_RE.match(first):
        task = match.group("task")
        return Command("reassign", {"task": _task_id(task) if task else None,
                                    "owner": match.group("owner").strip()})
    if _CLOSE_RE.match(first):
        return Command("close", _fields(text, _RETRO_FIELDS))
    if _WITHDRAW_RE.match(first):
        return Command("withdraw", {"note": _note(_WITHDRAW_RE.sub("", first, count=1))})
    if _BLOCKER_RE.match(first):
        return Command("blocker", _fields(text, _BLOCKER_FIELDS))
    if match := _DELAY_RE.match(text):
        return Command("delay", {"date": match.group("date").strip(),
                                 "reason": _reason(match.group("reason"))})
    if match := _STATUS_RE.match(first):
        return Command("status", {"state": STATE_WORDS[match.group("state").lower()]})
    if match := _PROGRESS_RE.match(first):
        percent = int(match.group("pct"))
        if percent > 100:
            return None
        return Command("progress", {"percent": percent, "note": _note(text[match.end():])})
    if match := _DONE_RE.match(text):
        return Command("done", {"note": _note(match.group("note"))})
    if match := _CONFIRM_RE.match(line):
        # "好的，但我这周做不了" is not a yes: a confirmation must not carry a refusal.
        if _REFUSAL_RE.search(_paragraph(text)):
            return None
        return Command("confirm", {"note": _note(line[match.end():])})
    return None


def _reason(text: str) -> str:
    """A reason, without the word that introduces it ("原因：", "because", "due to")."""
    return _REASON_LEAD.sub("", _note(text)).strip()


def _paragraph(text: str) -> str:
    """The first paragraph of `text` (up to a blank line): what follows is usually a signature."""
    return re.split(r"\n[ \t]*\n", text.strip(), maxsplit=1)[0]


def _note(text: str) -> str:
    """A command's free text: leading separators dropped, its first non-empty paragraph kept."""
    return _paragraph(_NOTE_LEAD.sub("", text)).strip()


def _task_id(text: str) -> str:
    return "T-" + re.sub(r"\D", "", text)


def _clean(text: str) -> str:
    return text.strip().strip(":：,，").strip()


def _fields(text: str, wanted: dict[str, tuple[str, ...]]) -> dict[str, str]:
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
