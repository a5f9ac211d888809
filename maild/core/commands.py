"""Read every command in the new text of a reply, and say which parts of it could not be read.

`read_commands(new_text)` returns a `ReplyReading`: the commands, in the order written, and the
parts that ask for something no command covers (`unread`), so the sender can be asked about
them instead of having them dropped. Only the new text is read (quoted history is cut before
this, in `reply.py`). Pure.

How a reply is read:

1. Normalised (full-width digits and letters, `进度：５０％` reads like ASCII); greeting, vocative
   and sign-off removed (`sentences.body`). A reply that is only `帮助`/`help` or only `状态`/
   `status` is that; a reply whose first line is a reassignment or a close is that command alone.
2. Labelled lines, as the guide's templates are filled in: `当前进度：□50% ☑75%` with
   `完成情况简述：…` as its note, `完成状态：☑进行中`, a blocker's `现状/原因/需支持资源` (with or
   without a `问题：` line), a delay's `新的截止日期/原因`.
3. The rest, clause by clause: commands written first in a clause (`确认`, `拒绝：…`, `进度 50%`,
   `延期至 8月20日`, `完成`) and commands said in a sentence (`phrases.py`); the guide's blocker
   sentence (现状 + 因… + 需…) is read as a whole.
4. Free text becomes the note or reason of the command it follows (a delay's reason may also
   come before it, "8月14日太赶了，能否延到8月18日"). A sentence that asks something (？, 能否,
   could you, please) and gives no command is `unread`.

Never a guess: contradictory readings give no command at all — a confirmation with a refusal
beside it ("好的，但这周实在做不了") unless a delay explains it, a decline with anything else, two
different progress figures or states, done beside progress under 100 %, a percentage over 100,
a choice line with two options ticked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from maild.core import loopcommands, phrases
from maild.core.commandwords import (
    APOLOGY,
    ASKS_RE,
    CLOSE_RE,
    CONTRAST_RE,
    DECLINE_RE,
    DELAY_RE,
    DONE_RE,
    HELP_RE,
    NEEDS_RE,
    NOTE_LEAD,
    PROGRESS_RE,
    REASON_LEAD,
    REASON_MARK,
    REASSIGN_RE,
    REFUSAL_RE,
    SHOW_RE,
    STATUS_RE,
    WITHDRAW_RE,
    normalise,
)
from maild.core.labelled import RETRO_FIELDS, STATE_WORDS, fields, read_labelled
from maild.core.model import Command
from maild.core.sentences import LEADING_CONJUNCTION_RE, Sentence, body, sentences


@dataclass(frozen=True)
class ReplyReading:
    """Every command a reply gives, in order, and the parts that ask for what no command covers."""

    commands: tuple[Command, ...] = ()
    unread: tuple[str, ...] = ()


@dataclass
class _Hit:
    name: str
    args: dict[str, Any]
    start: int  # where the words that say it are, in the body
    end: int
    sentence: int | None = None  # index of its sentence; None for labelled lines
    clause_end: int = 0  # end of its clause (a sentence-read command's free text starts there)
    at_start: bool = True  # written first in its clause (its free text follows its words)
    pre: str = ""  # unclaimed clauses before it in its sentence (a delay's reason, sometimes)


def read_commands(new_text: str) -> ReplyReading:
    """Every command a reply's new text gives, and what it asks that no command covers."""
    text = normalise(new_text).strip()
    if not text:
        return ReplyReading()
    first = text.splitlines()[0].strip().strip("。.!！")
    if HELP_RE.match(first):
        return ReplyReading((Command("help"),))
    if SHOW_RE.match(first) and len(text.splitlines()) == 1:
        return ReplyReading((Command("show"),))
    text = body(text)
    if not text:
        return ReplyReading()
    first = text.splitlines()[0].strip().strip("。.!！")
    if found := loopcommands.read(first, text):  # 验收通过 / 退回修改 / 停止重复 / 依赖
        return ReplyReading((found,))
    if match := REASSIGN_RE.match(first):
        task = match.group("task")
        return ReplyReading((Command("reassign", {"task": _task_id(task) if task else None,
                                                  "owner": match.group("owner").strip()}),))
    if CLOSE_RE.match(first):
        return ReplyReading((Command("close", fields(text, RETRO_FIELDS)),))
    if WITHDRAW_RE.match(first):
        return ReplyReading((Command("withdraw", {
            "note": _note(WITHDRAW_RE.sub("", first, count=1))}),))
    labelled = read_labelled(text)
    free, problems = labelled.free, labelled.problems
    said = sentences(free)
    hits = [_Hit(f.name, dict(f.args), f.start, f.end) for f in labelled.found]
    hits += _sentence_hits(free, said)
    hits.sort(key=lambda h: h.start)
    said_something = list(hits)  # repeats included: a sentence that repeats a command is read
    hits, conflict = _fold(hits)
    unread = _unread(free, said, said_something)
    commands = _with_free_text(free, said, hits, unread)
    if problems or conflict or _contradictory(commands, free, said, said_something):
        return ReplyReading()
    return ReplyReading(tuple(commands), tuple(free[a:b].strip() for a, b in unread))


def read_command(new_text: str) -> Command | None:
    """The first command a reply gives, or None (see `read_commands` for all of them)."""
    reading = read_commands(new_text)
    return reading.commands[0] if reading.commands else None


# ------------------------------------------------------------------------------ sentences

def _explicit(clause: str) -> phrases.Found | None:
    """A command written first in its clause, as the help email shows them."""
    if match := DECLINE_RE.match(clause):
        return phrases.Found("decline", {}, 0, match.end())
    if match := STATUS_RE.match(clause):
        return phrases.Found("status", {"state": STATE_WORDS[match.group("state").lower()]},
                             0, match.end())
    if match := PROGRESS_RE.match(clause):
        return phrases.Found("progress", {"percent": int(match.group("pct"))}, 0, match.end())
    if match := DELAY_RE.match(clause):
        return phrases.Found("delay", {"date": match.group("date").strip()}, 0, match.end("date"))
    if match := DONE_RE.match(clause):
        return phrases.Found("done", {}, 0, match.end())
    return None


# A command is said in a short clause; longer ones are prose (and would cost the patterns time).
_LONGEST_CLAUSE = 200

# Order is data: each clause is offered to these in turn; words already taken by an earlier
# finder are not read again (so "完成了70%" is progress, never done, and "延期两天" a duration).
_FINDERS: tuple[tuple[bool, Callable[[str, str], phrases.Found | None]], ...] = (
    (False, lambda clause, _s: phrases.delay(clause)),
    (True, lambda clause, _s: _explicit(clause)),
    (False, lambda clause, _s: phrases.decline(clause)),
    (False, lambda clause, _s: phrases.progress(clause)),
    (False, phrases.done),
    (True, lambda clause, _s: phrases.confirm_word(clause)),
    (False, lambda clause, _s: phrases.confirm(clause)),
)


def _sentence_hits(free: str, said: list[Sentence]) -> list[_Hit]:
    hits: list[_Hit] = []
    blocked_until = -1
    for number, sentence in enumerate(said):
        if sentence.start < blocked_until:
            continue
        text = free[sentence.start:sentence.end]
        found: list[_Hit] = []
        for clause in sentence.clauses:
            if len(clause.text) > _LONGEST_CLAUSE:
                continue
            taken: list[tuple[int, int]] = []
            for explicit, finder in _FINDERS:
                got = finder(clause.text, text)
                if got is None or any(a < got.end and got.start < b for a, b in taken):
                    continue
                found.append(_Hit(got.name, got.args, clause.start + got.start,
                                  clause.start + got.end, number, clause.end, explicit))
                taken.append((got.start, got.end))
        if not found:
            blocker = _blocker(free, said, number)
            if blocker is not None:
                hits.append(blocker)
                blocked_until = blocker.end
            continue
        for hit in found:
            hit.pre = _pre(free, sentence, hit, found)
        hits += found
    return hits


def _blocker(free: str, said: list[Sentence], number: int) -> _Hit | None:
    sentence = said[number]
    clauses = [(c.start, c.end, c.text) for c in sentence.clauses]
    following = said[number + 1] if number + 1 < len(said) else None
    support_next = ([(c.start, c.end, c.text) for c in following.clauses]
                    if following is not None and following.paragraph == sentence.paragraph
                    else [])
    read = phrases.blocker(clauses, support_next)
    if read is None:
        return None
    args, end = read
    return _Hit("blocker", {k: v for k, v in args.items() if v}, sentence.start, max(end, sentence.end)
                if end <= sentence.end else end, number, end)


def _pre(free: str, sentence: Sentence, hit: _Hit, found: list[_Hit]) -> str:
    """The clauses before `hit` in its sentence that no command took ("8月14日太赶了")."""
    begin = max([h.end for h in found if h.end <= hit.start] + [sentence.start])
    before = [c for c in sentence.clauses if c.start >= begin and c.end <= hit.start
              and not c.start <= hit.start < c.end]
    if not before:
        return ""
    return APOLOGY.sub("", _clean(free[before[0].start:before[-1].end]))


def _unread(free: str, said: list[Sentence], hits: list[_Hit]) -> list[tuple[int, int]]:
    """Where the reply asks for something no command took or explains: a sentence that asks
    ("另外想问下…？"), or a clause after "but" / "不过" that needs something ("OK, but I'll need
    a couple of weeks off first") beside a command that does not cover it."""
    declined_from = min((h.start for h in hits if h.name == "decline"), default=None)
    unread = []
    for number, sentence in enumerate(said):
        if declined_from is not None and sentence.start > declined_from:
            continue  # a decline's reason runs to the end of its paragraph
        mine = [h for h in hits if h.sentence == number or sentence.start <= h.start < sentence.end
                or h.start <= sentence.start < h.end]
        if not mine:
            if ASKS_RE.search(free[sentence.start:sentence.end]):
                unread.append((sentence.start, sentence.end))
            continue
        previous = sentence.start
        for clause in sentence.clauses:
            taken = any(h.start < clause.end and clause.start < max(h.end, h.clause_end)
                        for h in mine)
            if (not taken and CONTRAST_RE.search(free[previous:clause.start])
                    and (ASKS_RE.search(clause.text) or NEEDS_RE.search(clause.text))):
                unread.append((clause.start, clause.end))
            previous = clause.end
    return unread


# ------------------------------------------------------------------------------ free text

def _with_free_text(free: str, said: list[Sentence], hits: list[_Hit],
                    unread: list[tuple[int, int]]) -> list[Command]:
    """Each hit as a Command, its note or reason taken from the free text around it."""
    commands: list[Command] = []
    for index, hit in enumerate(hits):
        args = dict(hit.args)
        if hit.sentence is not None:
            tail = _tail(free, said, hits, index, unread)
            if hit.name == "decline":
                args["reason"] = _reason(tail) or hit.pre
            elif hit.name == "delay":
                rest = free[hit.end:_limit(free, said, hits, index, unread)]
                args["reason"] = _delay_reason(rest, tail, hit.pre)
            elif hit.name in ("confirm", "done", "progress", "status"):
                note = _note(tail)
                if hit.name == "progress" and not hit.at_start:
                    start = max([h.clause_end for h in hits[:index] if h.sentence == hit.sentence]
                                + [said[hit.sentence].start])
                    note = _own_words(free, start, hit, _limit(free, said, hits, index, unread))
                if note:
                    args["note"] = note
        commands.append(Command(hit.name, args))
    return commands


def _own_words(free: str, start: int, hit: _Hit, limit: int) -> str:
    """Progress said in a sentence keeps the sentence as its note ("已经做了一大半，估计完成了70%
    左右，初稿下周一给到"), unless the sentence says nothing but the figure."""
    rest = _note(free[start:hit.start] + free[hit.end:limit])
    return _note(free[start:limit]) if re.search(r"\w", rest) else ""


def _limit(free: str, said: list[Sentence], hits: list[_Hit], index: int,
           unread: list[tuple[int, int]]) -> int:
    """Where a command's free text ends: its line (a decline's: its paragraph), the next
    sentence that gives another command, or the next sentence that asks something."""
    hit = hits[index]
    sentence = said[hit.sentence]
    same_block = [s for s in said[hit.sentence:]
                  if (s.paragraph == sentence.paragraph if hit.name == "decline"
                      else s.line == sentence.line)]
    limit = same_block[-1].end if same_block else sentence.end
    for other in hits[index + 1:]:
        if other.sentence == hit.sentence:
            limit = min(limit, _clause_start(sentence, other.start))
        else:
            start = said[other.sentence].start if other.sentence is not None else other.start
            limit = min(limit, max(start, sentence.end))
        break
    for asking, _end in unread:
        if asking >= hit.end:
            limit = min(limit, asking)
            break
    return limit


def _clause_start(sentence: Sentence, offset: int) -> int:
    return max((c.start for c in sentence.clauses if c.start <= offset), default=sentence.start)


def _tail(free: str, said: list[Sentence], hits: list[_Hit], index: int,
          unread: list[tuple[int, int]]) -> str:
    hit = hits[index]
    begin = hit.end if hit.at_start else max(hit.end, hit.clause_end)
    return free[begin:max(begin, _limit(free, said, hits, index, unread))]


def _delay_reason(rest: str, tail: str, pre: str) -> str:
    """A delay's reason: after 因为/原因/because, else what follows it, else what came before
    it in its sentence ("8月14日太赶了，能否延到8月18日？")."""
    if marked := REASON_MARK.search(rest):
        return _reason(rest[marked.start():])
    return _reason(tail) or pre


def _reason(text: str) -> str:
    """A reason, without the word that introduces it ("原因：", "because", "due to")."""
    return REASON_LEAD.sub("", _note(text)).strip()


def _paragraph(text: str) -> str:
    """The first paragraph of `text` (up to a blank line): what follows is usually a signature."""
    return re.split(r"\n[ \t]*\n", text.strip(), maxsplit=1)[0]


def _clean(text: str) -> str:
    text = NOTE_LEAD.sub("", text).strip().rstrip("，,、 ")
    return LEADING_CONJUNCTION_RE.sub("", text) if LEADING_CONJUNCTION_RE.fullmatch(text) else text


def _note(text: str) -> str:
    """A command's free text: leading separators dropped, its first non-empty paragraph kept."""
    return _paragraph(_clean(re.sub(r"[ \t]+\n", "\n", text))).strip()


def _task_id(text: str) -> str:
    return "T-" + re.sub(r"\D", "", text)


# ---------------------------------------------------------------------------- never guess

def _fold(hits: list[_Hit]) -> tuple[list[_Hit], bool]:
    """Repeats of one command with the same arguments ("好的，收到") folded into the first, so
    their words become its note; True as well when one command is said twice differently."""
    kept: dict[str, _Hit] = {}
    folded = []
    for hit in hits:
        seen = kept.get(hit.name)
        if seen is None:
            kept[hit.name] = hit
            folded.append(hit)
        elif hit.name not in ("confirm", "done") and _core(seen.args) != _core(hit.args):
            return folded, True
    return folded, False


def _contradictory(commands: list[Command], free: str, said: list[Sentence],
                   hits: list[_Hit]) -> bool:
    """True when the commands cannot all be meant (the reply is then asked about, not read)."""
    names = [c.name for c in commands]
    if any(c.name == "progress" and int(c.args["percent"]) > 100 for c in commands):
        return True
    if "decline" in names and len(names) > 1:
        return True
    if "done" in names and any(c.name == "progress" and int(c.args["percent"]) < 100
                               for c in commands):
        return True
    if "confirm" in names and "delay" not in names and _refuses(free, said, hits):
        return True
    return False


def _core(args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in args.items() if k not in ("note", "reason")}


def _refuses(free: str, said: list[Sentence], hits: list[_Hit]) -> bool:
    """A clause no command took says "can't" ("好的，但我这周做不了")."""
    for sentence in said:
        for clause in sentence.clauses:
            if any(h.start < clause.end and clause.start < h.end for h in hits):
                continue
            if REFUSAL_RE.search(clause.text):
                return True
    return False
