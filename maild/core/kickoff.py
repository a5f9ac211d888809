"""Tasks from the guide's step-3 kickoff: each "需配合" clause that names who, a date and what.

The one job is `read_kickoff(cooperation, participants)` → `Kickoff`. Pure; owners stay text
(intake resolves them, preferring a participant of the same department: "产品部" in a clause and
"产品部总监" among the participants). The guide's example:

    需配合：产品部8月10日前输出核心卖点；销售部8月15日前提交渠道需求

gives two tasks, 输出核心卖点 (产品部, 8月10日前) and 提交渠道需求 (销售部, 8月15日前).

Accepted clause shapes (clauses split at ；; 。 and line breaks):
- who [在/于] DATE[前/之前/以前] what      产品部8月10日前输出核心卖点
- who 负责/需/请 what[，]DATE[前]完成        销售部负责渠道方案，8月15日前完成
- who to/will/should what by/before DATE   Sales to submit channel needs by Aug 15
A clause without a date or without a doer is `unread`, never guessed: the reply that asks the
initiator to confirm the tasks lists it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from maild.core.model import TaskDraft

_CN = "[0-9一二三四五六七八九十两〇零]"
_DATE = (
    r"(?:\d{4}\s*[年/.-]\s*)?\d{1,2}\s*月\s*(?:\d{1,2}\s*[日号]?|[上中下]旬|底|末)"
    r"|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[./-]\d{1,2}(?![\d%])"
    r"|(?:本|这|下下|下)?(?:个)?(?:周|星期|礼拜)[一二三四五六日天]"
    r"|(?:本月|下月|下个月)?" + _CN + r"{1,2}\s*[日号]"
    r"|(?:本月|下月|下个月|这个月)?月底|(?:本|下)?(?:季度|季)末|Q[1-4]\s*末|[上中下]旬"
    r"|" + _CN + r"{1,3}\s*个?\s*(?:工作日|天|周|星期)\s*(?:之内|以内|内)"
    r"|今天|明天|后天|本周内|下周内|年底"
)
_BEFORE = r"(?:之前|以前|前|为止|内)?"
_ZH_DATE_FIRST = re.compile(
    rf"^(?P<who>.+?)\s*(?:需|需要|要|请|应|须)?\s*(?:在|于)?\s*(?P<date>(?:{_DATE}){_BEFORE})\s*"
    rf"(?:完成)?\s*(?P<what>.+)$")
_ZH_DATE_LAST = re.compile(
    rf"^(?P<who>.+?)\s*(?:负责|需|需要|要|请|应|须)\s*(?P<what>.+?)\s*[,，、]?\s*(?:在|于)?\s*"
    rf"(?P<date>(?:{_DATE}){_BEFORE})\s*(?:完成|提交|交付|给到|输出)?$")
_EN = re.compile(
    r"^(?P<who>.+?)\s+(?:to|will|should|must|needs to|shall|is to)\s+(?P<what>.+?)\s+"
    r"(?P<date>(?:by|before|no later than|on|within)\s+.+)$", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"[；;。\n]+|(?<=[^\d])[.](?=\s)")
_LEAD = re.compile(r"^(?:\d{1,2}\s*[.、)）]|[(（]\d{1,2}[)）]|[-*•·])\s*|^(?:由|请|需|需要)\s*")
_TRAIL = " ，,。.;；、"


@dataclass(frozen=True)
class Kickoff:
    tasks: tuple[TaskDraft, ...]
    unread: tuple[str, ...]  # clauses that name no doer or no date


def read_kickoff(cooperation: str, participants: str = "") -> Kickoff:
    """The tasks the "需配合" text asks for, in order, and the clauses it could not read."""
    tasks: list[TaskDraft] = []
    unread: list[str] = []
    for clause in _CLAUSE_SPLIT.split(cooperation):
        clause = clause.strip(_TRAIL + " \t")
        if not clause:
            continue
        draft = _clause(clause)
        if draft is None:
            unread.append(clause)
        else:
            tasks.append(draft)
    return Kickoff(tuple(tasks), tuple(unread))


def _clause(clause: str) -> TaskDraft | None:
    text = unicodedata.normalize("NFKC", clause)
    text = _LEAD.sub("", text).strip()
    for pattern in (_ZH_DATE_FIRST, _ZH_DATE_LAST, _EN):
        m = pattern.match(text)
        if not m:
            continue
        who = _LEAD.sub("", m["who"]).strip(_TRAIL + ":：")
        what = m["what"].strip(_TRAIL)
        what = re.sub(r"^(?:完成|负责|进行)\s*", "", what).strip(_TRAIL)
        date = m["date"].strip(_TRAIL)
        if pattern is _EN:
            date = re.sub(r"^(?:by|before|no later than|on)\s+", "", date, flags=re.IGNORECASE)
        if who and what and date and len(who) <= 40:
            return TaskDraft(what, who, date)
    return None
