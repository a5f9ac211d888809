"""The words of the commands maild reads in replies, as patterns: decline, progress, done, status,
delay, reassign, close, withdraw, status and help, and the words around them (refusals,
questions, reasons, apologies). `commands` reads replies with them.

Pure data and one function (`normalise`: full-width digits and letters as ASCII, Chinese
punctuation kept).
"""

from __future__ import annotations

import re

SEP = r"\s*[:：,，]?\s*"


DECLINE_RE = re.compile(
    r"^(?:拒绝|拒絕|无法承担|無法承擔|不接受|无法接受|无法完成|不能承担|decline[d]?|reject(?:ed)?|"
    r"can(?:no|')t (?:take|accept|do)(?: (?:it|this))?|unable to (?:take|accept)(?: (?:it|this))?)"
    r"(?![a-z])" + SEP, re.IGNORECASE)


PROGRESS_RE = re.compile(
    r"^(?:进度|進度|进展|progress|完成度|已完成)?\s*[:：]?\s*(?P<pct>\d{1,3})\s*%", re.IGNORECASE)


DONE_RE = re.compile(r"^(?:已完成|完成了?|已交付|done|completed|finished|delivered)(?![a-z])(?!\s*\d)"
                      + SEP, re.IGNORECASE)


STATUS_RE = re.compile(r"^(?:状态|狀態|status)\s*[:：]?\s*(?P<state>未开始|進行中|进行中|已完成|延期|"
                        r"not started|in progress|done|delayed)", re.IGNORECASE)


DELAY_RE = re.compile(r"^(?:延期|推迟|推遲|改期|delay(?:ed)?|postpone[d]?|reschedule[d]?)(?![a-z])\s*(?:至|到|until|to)?"
                       r"\s*[:：]?\s*(?P<date>.*?)\s*(?:[,，;；。\n]|(?=\s(?:because|reason|due to)\b)|"
                       r"(?=因为|因為|原因|由于|由於)|$)", re.IGNORECASE | re.DOTALL)


REASSIGN_RE = re.compile(r"^(?:转派|轉派|改派|reassign)\s*(?P<task>T-?\d+)?\s*(?:给|給|to|至)?\s*"
                          r"(?P<owner>.+)", re.IGNORECASE)


CLOSE_RE = re.compile(r"^(?:关闭|關閉|结项|結項|结案|close[d]?)(?![a-z])", re.IGNORECASE)


# The initiator takes the item back (the receipt's 撤销 button: an item they did not send).
WITHDRAW_RE = re.compile(r"^(?:撤销|撤銷|撤回|withdraw(?:n)?)(?![a-z])", re.IGNORECASE)


# The "Status" button's body, or a question about where things stand: answered, nothing changes.
SHOW_RE = re.compile(r"^(?:状态|狀態|查看状态|查看狀態|查询状态|查詢狀態|进展如何|進展如何|status|"
                      r"show status|what(?:'s| is) the status)\s*[?？]?$", re.IGNORECASE)


HELP_RE = re.compile(r"^(?:帮助|幫助|help|模板|template[s]?|\?|？)$", re.IGNORECASE)


# Words that take a yes back, or leave it open: beside a confirmation they make the reply a
# question ("好的，但这周实在做不了", "OK, let me get back to you"), unless a delay explains them.
REFUSAL_RE = re.compile(r"做不了|无法|無法|不能|拒绝|拒絕|来不及|來不及|没法|没办法|搞不定|抽不出|排不开|"
                         r"腾不出|忙不过来|顾不上|再考虑|考虑一下|回头再|再说|商量|沟通一?下|"
                         r"can't|cannot|can not|unable|won't be able|not able|no time|don't have time|"
                         r"get back to you|think about it|not sure|check with", re.IGNORECASE)


ASKS_RE = re.compile(r"[?？]|能否|能不能|可否|可不可以|请问|想问|问下|问一下|麻烦|帮忙|请你|请您|"
                      r"\b(?:could|can|would|will) (?:you|we)\b|\bplease\b|\blet me know\b|"
                      r"\bshall we\b", re.IGNORECASE)


CONTRAST_RE = re.compile(r"不过|但是|但|可是|只是|\bbut\b|\bhowever\b", re.IGNORECASE)


NEEDS_RE = re.compile(r"需要|得|要|希望|想|\bneed|\bwant|\bhave to\b|\bwould like\b|\bmust\b",
                       re.IGNORECASE)


REASON_LEAD = re.compile(r"^(?:原因是|原因|理由|因为|因為|因(?![此而])|由于|由於|reason(?: is)?|"
                          r"because(?: of)?|due to|since|as)\s*[:：,，]?\s*", re.IGNORECASE)


REASON_MARK = re.compile(r"(?:原因是|原因[:：]|理由[:：]|因为|因為|由于|由於|\bbecause\b|\bdue to\b|"
                          r"\bsince\b)", re.IGNORECASE)


APOLOGY = re.compile(r"^(?:抱歉|不好意思|对不起|很遗憾|sorry|i'?m afraid|unfortunately)[\s,，]*",
                      re.IGNORECASE)


NOTE_LEAD = re.compile(r"^[\s:：,，.。;；!！?？、)）-]+")


# Full-width digits, letters and a few symbols read as ASCII; Chinese punctuation (，：；) stays,
# because it is part of what people wrote (a decline reason is quoted back verbatim).
HALF_WIDTH = str.maketrans(
    {**{chr(c): chr(c - 0xFEE0) for c in range(0xFF10, 0xFF1A)},
     **{chr(c): chr(c - 0xFEE0) for c in range(0xFF21, 0xFF3B)},
     **{chr(c): chr(c - 0xFEE0) for c in range(0xFF41, 0xFF5B)},
     "％": "%", "＋": "+", "－": "-", "．": ".", "／": "/", "\u3000": " ", "\u00a0": " "})


def normalise(text: str) -> str:
    return text.translate(HALF_WIDTH)
