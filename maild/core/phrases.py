"""Commands said in ordinary sentences, the way owners and initiators write them back (zh and en).

Pure. Each finder looks at one clause (see `sentences.py`) and returns the command it says and
where its words are, or None: `progress` ("估计完成了70%左右", "we're about 60% done"), `delay`
by duration or date ("得延后三天左右", "需要再宽限3个工作日", "能否延到8月18日", "I'll need 3 more
days", "push this to Aug 20"), `confirm` ("这个我来做", "Sure, I'll take this one", "同意延期"),
`decline` ("这个任务我这边接不了", "I'm afraid I can't take this on") and `done` ("已全部完成",
"all done", or a deliverable handed over: "都做完了，见附件"). `blocker` reads a whole sentence:
the guide's 现状 + 因… + 需…支持/协调.

Surprises worth knowing:

* A percentage counts as progress only next to a word of progress (完成, 进度, done, complete…):
  "用户增长50%" is not progress.
* A delay needs a verb of delay (延期, 延后, 推迟, 宽限, push, extend, more days…) with a date or a
  duration: "下周能弄完吧" is no request, it is asked about. Durations are kept as written
  (`days`, `weeks`); the workflow counts them from the current deadline on the work calendar.
* Done said with a subject ("数据收集已完成") is a note, not a done report, unless the sentence
  hands a deliverable over (见附件, 已上传, attached, final): the owner of a half-done task writes
  the first all the time.
* Dates are not parsed here: `date_end` asks `dates.parse_deadline` which prefix of the text after
  "到/至/until" is a date, so every date form it knows works and nothing else is guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from maild.core.dates import parse_deadline


@dataclass(frozen=True)
class Found:
    """A command a clause says: its arguments and where its words are in the clause."""

    name: str
    args: dict[str, Any]
    start: int
    end: int


_ZH_NUMBERS = {"一": 1, "二": 2, "两": 2, "俩": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7,
               "八": 8, "九": 9, "十": 10, "半": 0.5}
_EN_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
               "seven": 7, "eight": 8, "nine": 9, "ten": 10, "a couple of": 2, "couple of": 2,
               "a couple": 2, "couple": 2, "another": 1, "one more": 1}
_NUM = r"(\d{1,2}|[一二两俩三四五六七八九十半]{1,2})"
_EN_NUM = (r"(\d{1,2}|a couple(?: of)?|couple(?: of)?|an?|one|two|three|four|five|six|seven|eight|"
           r"nine|ten)")


def number(token: str) -> float | None:
    """1–99 in digits, Chinese numerals (两, 十二) or English words; None otherwise."""
    token = token.strip().lower()
    if token.isdecimal():
        return int(token)
    if token in _EN_NUMBERS:
        return _EN_NUMBERS[token]
    if token.startswith("十"):
        token = "一" + token
    if "十" in token:
        tens, _, ones = token.partition("十")
        if tens in _ZH_NUMBERS and (not ones or ones in _ZH_NUMBERS):
            return _ZH_NUMBERS[tens] * 10 + (_ZH_NUMBERS[ones] if ones else 0)
        return None
    return _ZH_NUMBERS.get(token) if len(token) == 1 else None


# ---------------------------------------------------------------------------------- progress

_PROGRESS_ZH_RE = re.compile(
    r"(?:完成|做了|做到|进行到|推进到|进度|进展|完成度|完成率)(?:了|度|率)?"
    r"(?:大概|大约|约|差不多|将近|接近|估计|已经|已|到了|到|达到|为|是|在|有|[:：]|\s)*"
    r"(?P<pct>\d{1,3})\s*%(?:左右|上下)?")
_PROGRESS_TENTHS_RE = re.compile(
    r"(?:完成|做了|做到|进度|进展)(?:了|度)?(?:大概|大约|约|差不多|将近|接近|估计|已经|已|到了|到|\s)*"
    r"(?P<n>[一二三四五六七八九]|\d)成")
_HALF_ZH_RE = re.compile(r"(?:完成|做了|做到|进度过|进行到|推进到)(?:了|到)?(?:大概|大约|约|差不多|将近)?一半")
_PROGRESS_EN_RE = re.compile(
    r"(?P<pct>\d{1,3})\s*%\s*(?:done|complete[d]?|finished|through|there|of the way)\b|"
    r"\b(?:progress|we'?re|i'?m|it'?s|we are|i am|it is|now|currently|status)\s+(?:is\s+)?"
    r"(?:at\s+|about\s+|around\s+|roughly\s+|approximately\s+|~)*(?P<pct2>\d{1,3})\s*%",
    re.IGNORECASE)
_HALF_EN_RE = re.compile(r"\b(?:half(?:way)? (?:done|there|through)|halfway)\b", re.IGNORECASE)


def progress(clause: str) -> Found | None:
    for pattern in (_PROGRESS_ZH_RE, _PROGRESS_EN_RE):
        if match := pattern.search(clause):
            pct = int(match.group("pct") or match.groupdict().get("pct2") or 0)
            return Found("progress", {"percent": pct}, match.start(), match.end())
    if match := _PROGRESS_TENTHS_RE.search(clause):
        tenths = number(match.group("n"))
        return Found("progress", {"percent": int((tenths or 0) * 10)}, match.start(), match.end())
    for pattern in (_HALF_ZH_RE, _HALF_EN_RE):
        if match := pattern.search(clause):
            return Found("progress", {"percent": 50}, match.start(), match.end())
    return None


# ------------------------------------------------------------------------------------- delay

_NOT_BEFORE = re.compile(r"(?:不|无需|不用|不必|没必要|无须|同意|批准|接受|可以)\s*$|"
                         r"(?:no need to|don't|do not|approved?|accept(?:ed)?)\s*$", re.IGNORECASE)
_DELAY_VERB_ZH = r"(?:申请)?(?:延期|延后|推迟|推后|往后推|往后延|后延|顺延|宽限|延长|延迟到|延到|延至|推到|改到|挪到|多给|再给|多要)"
_DURATION_ZH_RE = re.compile(
    _DELAY_VERB_ZH + r"(?:个|下)?\s*(?:再|多)?\s*" + _NUM +
    r"\s*(?P<unit>个工作日|个?工作天|天|日|个?星期|周|个?礼拜)(?:左右|上下|的样子|时间)?")
_DATE_AFTER_ZH_RE = re.compile(r"(?:申请)?(?:延期|延后|推迟|推后|往后推|往后延|后延|顺延|延长|延迟|延|推|改|挪|调整)"
                               r"\s*(?:到|至)\s*")
_DELAY_EN_VERB = r"(?:push|move|shift|postpone|delay|extend|slip|bump)"
_DURATION_EN_RE = re.compile(
    r"\b" + _EN_NUM + r"\s+(?:more|extra|additional)\s+(?P<kind>working\s+|business\s+)?"
    r"(?P<unit>days?|weeks?)\b|"
    r"\b(?P<one>another|one more)\s+(?P<kind2>working\s+|business\s+)?(?P<unit2>day|week)\b|"
    r"\b" + _DELAY_EN_VERB + r"\b[^.,;]{0,20}?\bby\s+" + _EN_NUM.replace("(", "(?P<n3>", 1)
    + r"\s+(?P<kind3>working\s+|business\s+)?(?P<unit3>days?|weeks?)\b",
    re.IGNORECASE)
_DATE_AFTER_EN_RE = re.compile(
    r"\b(?:" + _DELAY_EN_VERB + r"\b[^.,;]{0,25}?\b(?:to|until|till)|extension\s+(?:to|until|till)|"
    r"more time\s+(?:to|until|till)|need\s+(?:it\s+)?until|have\s+until|get\s+until|"
    r"(?:deadline|due date)\s+(?:to|until|moved to))\s+", re.IGNORECASE)
# (?<!\s): each run of spaces is tried once, from its start (long runs cost no backtracking).
_EN_REASON_STOP = re.compile(r"(?<!\s)\s+(?:because|due to|since|as|so|-|–|—)\s|(?<!\s)\s*[,;(]",
                             re.IGNORECASE)
_ZH_REASON_STOP = re.compile(r"(?:因为|因|由于|原因|，|,|；|;|（|\()")
_DATE_PROBE = datetime(2000, 1, 3, tzinfo=UTC)
_DATE_WORDS = 8


def date_end(text: str) -> int:
    """How many characters at the start of `text` are a date `parse_deadline` reads (0: none)."""
    cut = len(text)
    for stop in (_EN_REASON_STOP, _ZH_REASON_STOP):
        if found := stop.search(text):
            cut = min(cut, found.start())
    head = text[:cut].rstrip(" 。.!！?？")
    # Shrink from the end a word (or a CJK character) at a time until the rest is a date.
    for _ in range(_DATE_WORDS * 3):
        if not head.strip():
            return 0
        reading = parse_deadline(head, _DATE_PROBE)
        if reading.value is not None:
            return len(head)
        head = re.sub(r"(?:\s*\S+\s*|.)$", "", head) if " " in head.strip() else head[:-1]
    return 0


def _duration(count: float | None, unit: str, kind: str = "") -> dict[str, Any] | None:
    if count is None or count != int(count) or not 0 < count <= 60:
        return None
    unit = unit.lower()
    if unit.startswith(("week", "星期", "周", "礼拜", "个星期", "个礼拜")):
        return {"weeks": int(count)}
    return {"days": int(count)}


def delay(clause: str) -> Found | None:
    for match in _DURATION_ZH_RE.finditer(clause):
        if _NOT_BEFORE.search(clause[:match.start()]):
            continue
        args = _duration(number(match.group(1)), match.group("unit"))
        if args:
            return Found("delay", args, match.start(), match.end())
    for match in _DURATION_EN_RE.finditer(clause):
        if _NOT_BEFORE.search(clause[:match.start()]):
            continue
        if match.group("one"):
            args = _duration(1, match.group("unit2"))
        elif match.group("unit3"):
            args = _duration(number(match.group("n3")), match.group("unit3"))
        else:
            args = _duration(number(match.group(1)), match.group("unit"))
        if args:
            return Found("delay", args, match.start(), match.end())
    for pattern in (_DATE_AFTER_ZH_RE, _DATE_AFTER_EN_RE):
        for match in pattern.finditer(clause):
            if _NOT_BEFORE.search(clause[:match.start()]):
                continue
            length = date_end(clause[match.end():])
            if length:
                date = clause[match.end():match.end() + length].strip()
                return Found("delay", {"date": date}, match.start(), match.end() + length)
    return None


# ----------------------------------------------------------------------------------- confirm

_CONFIRM_START_RE = re.compile(
    r"^(?:确认|確認|收到|好的|好滴|好嘞|批准|准了|好(?=$|[\s,，。.!！~～])|可以(?=$|[\s,，。.!！~～的])|"
    r"行(?=$|[\s,，。.!！~～])|没问题|沒問題|没有问题|同意|接受|明白了?(?=$|[\s,，。.!！])|"
    r"知道了|了解(?=$|[\s,，。.!！])|ok(?:ay)?|confirm(?:ed)?|accept(?:ed)?|approved?|agreed|"
    r"yes|yep|sure|fine|noted|got it|will do|roger|sounds good|no problem|absolutely|"
    r"of course|count me in|(?:i'?m |i am )?on it)(?![a-z])", re.IGNORECASE)
_CONFIRM_ANY_RE = re.compile(
    r"我来(?:负责|做|跟进|处理|搞定|弄|推进|牵头|安排)|(?:由)?我(?:这边|这里)?(?:来)?(?:负责|安排|跟进)|"
    r"交给我|包在我身上|我(?:来)?接(?:了|下了|下)|"
    r"(?:同意|批准|接受|可以)(?:你的|这个)?延期|延期(?:同意|批准|可以)|"
    r"\bi'?ll (?:take|own|handle|do) (?:it|this|that)(?: one)?(?: on)?\b|"
    r"\bi can (?:take|do|handle) (?:it|this|that)(?: one)?(?: on)?\b|"
    r"\bhappy to (?:take|own|do|handle|help)\b|\bi'?m on it\b|\bcount me in\b|"
    r"\b(?:delay|extension|new date) (?:is )?(?:approved|accepted|agreed|fine)\b|"
    r"\b(?:approve|accept) the (?:delay|extension|new date)\b", re.IGNORECASE)


# Hedged words are no yes: "Not sure I can do this one", "可能我来负责吧".
_HEDGE_RE = re.compile(r"不确定|不一定|可能|也许|或许|大概|not sure|don'?t know|doubt|maybe|perhaps|might|"
                       r"not|if", re.IGNORECASE)


def confirm_word(clause: str) -> Found | None:
    """A clause that opens with a yes ("好的", "收到", "OK", "Sure"): its note may follow."""
    if match := _CONFIRM_START_RE.match(clause):
        return Found("confirm", {}, match.start(), match.end())
    return None


def confirm(clause: str) -> Found | None:
    """A yes said in a sentence ("这个我来做", "I'll take this one", "同意延期")."""
    match = _CONFIRM_ANY_RE.search(clause)
    if match and not _HEDGE_RE.search(clause[:match.start()]):
        return Found("confirm", {}, match.start(), match.end())
    return None


# ----------------------------------------------------------------------------------- decline

_DECLINE_RE = re.compile(
    r"接不了|接不下|负责不了|承担不了|无法承担|無法承擔|无法负责|不能负责|没法接|没办法接|不能接|"
    r"接不过来|顾不上这个|只能拒绝|"
    r"\b(?:can'?t|cannot|can not|won'?t be able to|will not be able to|am unable to|i'?m unable to|"
    r"unable to|not able to|am not able to)\s+(?:take|own|accept|handle)\s+(?:it|this|that)"
    r"(?: one| task)?(?: on)?\b|\b(?:have|need|must) to decline\b|\bmust decline\b|"
    r"\b(?:i'?ll|i will|i have to|i must) pass on (?:this|it)\b", re.IGNORECASE)


def decline(clause: str) -> Found | None:
    if match := _DECLINE_RE.search(clause):
        # One small finder per command, alike in shape (duplicates): each is named in FINDERS-style tables.
        return Found("decline", {}, match.start(), match.end())
    return None


# -------------------------------------------------------------------------------------- done

_DONE_ALONE_RE = re.compile(
    r"^(?:(?:这个|这项|本)?任务|工作|活儿?|事情|都|全部|已经|已|现在|目前)*\s*(?:已经?|都)?\s*(?:全部|都)?\s*"
    r"(?:完成|做完|弄完|搞定|办完|交付|做好)(?:了|啦|咯)*$|"
    r"^(?:(?:it'?s|it is|this is|that'?s|the task is|task is|everything is|we'?re|i'?m|all is)\s+)?"
    r"(?:all\s+)?(?:done|finished|completed?|delivered)(?:\s+now)?$|"
    r"^(?:i'?ve|i have|we'?ve|we have)\s+(?:finished|completed|delivered|wrapped up)\s+"
    r"(?:it|this|the task|everything|the work)$", re.IGNORECASE)
_DONE_VERB_ZH_RE = re.compile(r"(?:完成|做完|写完|弄完|搞定|交付|提交|做好)(?:了|啦)*$")
_DONE_VERB_EN_RE = re.compile(r"\s(?:is|are|has been|have been)\s+(?:all\s+)?"
                              r"(?:done|finished|completed?|delivered|ready)(?:$|\s+and\s)",
                              re.IGNORECASE)
_NOT_YET_RE = re.compile(r"[待还未没剩快能会要将差]|不是|not|almost|nearly|will|once|when|if|n't",
                         re.IGNORECASE)
HANDOVER_RE = re.compile(r"见附件|附件|已上传|上传到|上传至|已发(?:给|到|至)|已提交|终稿|定稿|请查收|请查阅|"
                         r"attached|attachment|uploaded|shared|the final\b|final version",
                         re.IGNORECASE)


def done(clause: str, sentence: str) -> Found | None:
    clause = clause.strip()
    if _DONE_ALONE_RE.match(clause):
        return Found("done", {}, 0, len(clause))
    verb = _DONE_VERB_ZH_RE.search(clause) or _DONE_VERB_EN_RE.search(clause)
    if verb and HANDOVER_RE.search(sentence):
        before = clause[:verb.start()].rstrip(" 都已经全部")
        if before and not _NOT_YET_RE.search(before):
            return Found("done", {}, 0, len(clause))
    return None


# ----------------------------------------------------------------------------------- blocker

_CAUSE_START_RE = re.compile(r"^(?:主要是因为|是因为|因为|因為|因(?![此而])|由于|由於|原因是)\s*")
_CAUSE_EN_RE = re.compile(r"\b(?:because(?: of)?|due to|as a result of)\s+", re.IGNORECASE)
_SUPPORT_START_RE = re.compile(r"^(?:急需|需要|需|希望|想请|请|麻烦|恳请|盼)\s*")
_SUPPORT_WORDS_RE = re.compile(r"协调|支持|支援|协助|帮忙|帮助|提供|确认|配合|安排|介入|审批|批准|推荐|增派|借调")
_SUPPORT_EN_RE = re.compile(r"^(?:so\s+)?(?:we|i)\s+(?:would |will |'d |really |urgently )?"
                            r"(?:need|could use|would like|require)\s+|^(?:please|need)\s+",
                            re.IGNORECASE)
TROUBLE_RE = re.compile(r"延迟|延误|滞后|受阻|卡在|卡住|卡了|停滞|跟不上|推进不了|没法|无法|不够|不足|缺|"
                        r"\bbehind\b|\bstuck\b|\bblocked\b|\bdelayed\b|\blate\b|\bslipping\b|"
                        r"\bon hold\b|\bwaiting (?:on|for)\b|\bshort[- ]staffed\b", re.IGNORECASE)

Clauses = list[tuple[int, int, str]]  # (start, end, text) of each clause, offsets in the body


def blocker(clauses: Clauses, support_next: Clauses = ()) -> tuple[dict[str, str], int] | None:
    """The guide's blocker sentence: (situation, cause, support) and where it ends, or None.

    `clauses` are one sentence's; `support_next` the next sentence's, which may carry the
    support ("…because the design team is short-staffed. We need Marketing to lend us one.").
    """
    cause_at = next((n for n, (_s, _e, text) in enumerate(clauses)
                     if _CAUSE_START_RE.match(text) or _CAUSE_EN_RE.search(text)), None)
    if cause_at is None:
        return None
    situation: list[str] = [text for _s, _e, text in clauses[:cause_at]]
    cause_text = clauses[cause_at][2]
    if not _CAUSE_START_RE.match(cause_text):
        head, cause_text = _CAUSE_EN_RE.split(cause_text, maxsplit=1)
        if head.strip():
            situation.append(head.strip())
    cause = [_CAUSE_START_RE.sub("", cause_text)]
    support, end = "", clauses[-1][1]
    rest = list(clauses[cause_at + 1:])
    for number_, (_s, clause_end, text) in enumerate(rest):
        if _is_support(text):
            support = _support_text(text)
            end = clause_end
            # Clauses after the cause and before the support: more situation when the cause
            # came first ("由于…，培训材料没法定稿，需…"), more cause otherwise.
            between = [t for _s2, _e2, t in rest[:number_]]
            (situation if not situation else cause).extend(between)
            break
    else:
        if support_next and _is_support(support_next[0][2]):
            support = ", ".join(t for _s, _e, t in support_next)
            support = _support_text(support)
            end = support_next[-1][1]
        cause.extend(t for _s, _e, t in rest)
    situation_text = "，".join(situation) if has_han(situation) else ", ".join(situation)
    cause_joined = "，".join(cause) if has_han(cause) else ", ".join(cause)
    if not support and not TROUBLE_RE.search(situation_text + cause_joined):
        return None
    return {"situation": situation_text.strip(), "cause": cause_joined.strip(),
            "support": support.strip()}, end


def has_han(parts: list[str]) -> bool:
    """Whether any of `parts` has a Chinese character (the words joined with ，, else with , )."""
    return any(re.search(r"[\u3400-\u9fff]", p) for p in parts)


def _is_support(text: str) -> bool:
    return bool((_SUPPORT_START_RE.match(text) and _SUPPORT_WORDS_RE.search(text))
                or _SUPPORT_EN_RE.match(text))


def _support_text(text: str) -> str:
    return _SUPPORT_EN_RE.sub("", _SUPPORT_START_RE.sub("", text, count=1), count=1).strip()
