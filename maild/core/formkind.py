"""Which of the three forms an email is, and the title its subject gives.

`detect_kind(subject, fields, rules, seen)` and `strip_subject(subject, rules)`. Pure. The order
of evidence: the subject marker ([项目], 【任务】, [Urgent] …), the form's own name in the subject
(日常任务同步跟进表), "紧急：" opening the subject, the labels only one form uses (its
`signature` in rules/forms.toml: 沟通事项 and 时间节点 are template 1's, 优先级 and 当前进度
template 2's, 响应人 and 预计完成时间 template 3's), and last what the fields suggest.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from maild.core.formrules import FormRules
from maild.core.model import ItemKind


def detect_kind(subject: str, fields: Mapping[str, str], rules: FormRules,
                seen: frozenset[str] | set[str] = frozenset()) -> ItemKind | None:
    """The subject marker ([项目], 【任务】, [Urgent] …) first, then the form's own name in the
    subject, then the labels only one form uses (`seen`, normalised), else what the fields
    suggest. `fields` may carry a "tasks" key (any value) when the body had a tasks label or
    task rows."""
    subject = unicodedata.normalize("NFKC", subject).casefold()
    found: list[tuple[int, ItemKind]] = []
    for kind, template in rules.templates.items():
        for marker in template.markers:
            m = re.search(r"[\[【]\s*" + re.escape(marker.casefold()) + r"\s*[\]】]", subject)
            if m:
                found.append((m.start(), kind))
    if found:
        return min(found, key=lambda hit: hit[0])[1]
    for kind, template in rules.templates.items():
        if any(unicodedata.normalize("NFKC", word).casefold() in subject
               for word in template.subject_words):
            return kind
    if re.match(r"^(?:(?:re|fw|fwd|回复|转发)\s*[:：]\s*)*(?:紧急|緊急|urgent)\s*[:：!！]",
                subject):
        return ItemKind.EMERGENCY
    scores = sorted(((len(template.signature & set(seen)), kind)
                     for kind, template in rules.templates.items()), reverse=True)
    if scores[0][0] >= 2 and scores[0][0] > scores[1][0]:
        return scores[0][1]
    if fields.get("emergency_type") or fields.get("responder"):
        return ItemKind.EMERGENCY
    if "tasks" in fields or fields.get("participants"):
        return ItemKind.PROJECT
    if fields.get("owner") and fields.get("deadline"):
        return ItemKind.TASK
    return None


_SUBJECT_NOISE = re.compile(
    r"^\s*(?:(?:re|fw|fwd|aw|回复|回覆|答复|转发|轉發)\s*[:：]\s*|[\[【［][^\]】］]{1,20}[\]】］]\s*|"
    r"(?:紧急|緊急|urgent)\s*[:：!！]\s*|"
    # maild's own subjects, when a reply corrects the form it asked about
    r"(?:请修改后重发|請修改後重發|please fix and resend|请确认|please confirm)\s*[:：]\s*)+",
    re.IGNORECASE)
_MAILD_TAG = re.compile(r"\s*\[(?:D-[A-Z2-7]{8}|MD-\d{4,})[^\]]*\]")


def strip_subject(subject: str, rules: FormRules) -> str:
    """The subject as a title: without Re:/Fwd:, [markers] and the form's own name."""
    title = _SUBJECT_NOISE.sub("", _MAILD_TAG.sub("", subject or "")).strip()
    for template in rules.templates.values():
        for word in sorted(template.subject_words, key=len, reverse=True):
            title = title.replace(word, "")
    return title.strip(" -—–:：|｜·,，、()（）《》").strip()
