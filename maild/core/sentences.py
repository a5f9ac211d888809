"""A reply's new text as people write it: the body without greeting and sign-off, in sentences and clauses.

Pure. `body(text)` drops what carries no instruction — a greeting line ("王总好，", "Hi Li Na,"),
a leading vocative ("李经理，渠道方案…" keeps "渠道方案…"), a closing ("谢谢！", "Best regards,")
and everything after it (the name, the department). `sentences(text)` cuts the rest into
sentences (。！？；!?; a line end; an English full stop before a space) and each sentence into
clauses (，, 、 and a dash; a conjunction such as 不过 / 但是 / but / also starts a new clause).
Every piece keeps its offsets in the text, so what a command does not use can be quoted back
verbatim as its note or reason.

Surprises worth knowing:

* A closing must stand on its own line: "谢谢支持，进度50%" is not a sign-off.
* A greeting line is recognised only when it is short and names someone ("李经理：", "娜姐好，",
  "Dear all,"); "收到，" alone is an answer, not a greeting, because it names nobody.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HAN = r"[\u3400-\u9fff]"
_TITLE = r"(?:总|总监|经理|主管|主任|老师|老板|姐|哥|工|专员|同学|组长|部长)"
# "李经理：", "娜姐好，", "赵磊好，", "王总您好！", "各位好", "Hi Li Na,", "Dear all,".
_GREETING_RE = re.compile(
    rf"^(?:{_HAN}{{1,4}}{_TITLE}(?:好|您好|你好)?|{_HAN}{{2,3}}(?:好|您好|你好)|"
    rf"(?:各位|大家|您|你)(?:好)?|(?:hi|hello|hey|dear|good (?:morning|afternoon))\b[^\n,，:：!！]{{0,30}})"
    r"\s*[，,：:!！~～。]*$", re.IGNORECASE)
_VOCATIVE_RE = re.compile(
    rf"^(?!好|收到|可以|确认|没问题|行|同意|明白)(?:{_HAN}{{1,4}}{_TITLE}(?:好|您好|你好)?|{_HAN}{{2,3}}(?:好|您好|你好)|"
    r"(?:hi|hello|hey|dear)\s+[^,，\n]{1,30})\s*[，,：:!！]\s*", re.IGNORECASE)
_CLOSING_RE = re.compile(
    r"^(?:谢谢|謝謝|多谢|感谢|辛苦了?|祝好|顺祝|此致|敬礼|best|best regards|kind regards|regards|"
    r"warm regards|thanks|thank you|many thanks|thx|cheers|br|sincerely|yours)"
    r"[\s\S]{0,12}?[!！。.,，~～]*$", re.IGNORECASE)
_SENTENCE_END_RE = re.compile(r"[。！？!?；;]+|\n|(?<=[^\s.])\.(?=\s|$)")
_CLAUSE_SEP_RE = re.compile(r"[，,、]|\s[-–—]+\s|——")
_CONJUNCTION_RE = re.compile(
    r"(?:不过|但是|可是|只是|另外|此外|同时|而且|并且|还有|(?<![a-z])(?:but|however|also|plus|and also)"
    r"(?![a-z]))", re.IGNORECASE)
LEADING_CONJUNCTION_RE = re.compile(
    r"^(?:不过|但是|可是|只是|但|另外|此外|同时|而且|并且|还有|然后|but|however|also|and|plus)"
    r"(?![a-z])[\s,，:：]*", re.IGNORECASE)


@dataclass(frozen=True)
class Clause:
    start: int
    end: int
    text: str  # the clause without its separators and leading conjunction


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int  # after its terminator
    line: int  # which line of the body it is on (tails do not run past a line)
    paragraph: int
    clauses: tuple[Clause, ...]


def body(text: str) -> str:
    """The lines that may carry instructions: greeting, leading vocative and sign-off removed."""
    lines = text.strip().splitlines()
    while lines and (not lines[0].strip() or _GREETING_RE.match(lines[0].strip())):
        lines.pop(0)
    for number, line in enumerate(lines):
        if number and _CLOSING_RE.match(line.strip()):
            lines = lines[:number]
            break
    if lines:
        lines[0] = _VOCATIVE_RE.sub("", lines[0].strip(), count=1)
    return "\n".join(lines).strip()


def sentences(text: str) -> list[Sentence]:
    """The sentences of `text` (already `body`), each with its clauses."""
    found: list[Sentence] = []
    start = line = paragraph = 0
    blank = False
    for end_mark in [*_SENTENCE_END_RE.finditer(text), None]:
        end = end_mark.end() if end_mark else len(text)
        piece = text[start:end]
        if piece.strip(" \t\n。！？!?；;."):
            found.append(Sentence(start, end, line, paragraph, tuple(_clauses(text, start, end))))
            blank = False
        if end_mark is not None and end_mark.group() == "\n":
            line += 1
            if blank:
                paragraph += 1
            blank = True
        start = end
    return found


def _clauses(text: str, start: int, end: int) -> list[Clause]:
    cuts = [start]
    for sep in _CLAUSE_SEP_RE.finditer(text, start, end):
        cuts += [sep.start(), sep.end()]
    for conjunction in _CONJUNCTION_RE.finditer(text, start, end):
        cuts += [conjunction.start(), conjunction.start()]
    cuts.append(end)
    cuts = sorted(set(cuts))
    clauses = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        raw = text[a:b]
        if _CLAUSE_SEP_RE.fullmatch(raw):
            continue
        stripped = raw.strip(" \t\n。！？!?；;.")
        bare = LEADING_CONJUNCTION_RE.sub("", stripped)
        if bare:
            offset = a + raw.find(stripped) + (len(stripped) - len(bare))
            clauses.append(Clause(offset, offset + len(bare), bare))
    return clauses
