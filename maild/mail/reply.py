"""The new text of a reply: what the sender wrote, without quoted history, quote headers,
client signatures or mailing-list footers. Pure.

How, in two passes over the lines (the words each client writes are data in `replymarkers`):

1. The first *history marker* on an unquoted line ends the new text: a divider (`-----Original
   Message-----`, `------------------ 原始邮件 ------------------`, `---- Li Na wrote ----`), a
   header block (`From:`/`Sent:`, `发件人:`/`发送时间:`, `Von:`/`Gesendet:` … two labels and an
   address or a digit), a rule line above a header or a list footer, an attribution (`On … wrote:`,
   `… 于2026年8月3日 … 写道：`, `Am … schrieb …:`, `2026-08-03 17:21 GMT+08:00 Name <a@b>:` …,
   wrapped over up to three lines) with no `>` quote below it, or a client signature (`-- `,
   "Sent from my iPhone", "发自我的华为手机" …) with at most a few signature lines after it.
2. Above that marker, `>`-quoted runs are removed with the attribution just above them, and
   every unquoted block around them is kept in order: bottom-posted and inline answers survive.
   Blocks that a quote separated are joined by one blank line.

Surprises, all deliberate:

- Unsure means keep: a line that only looks like an attribution ("Li Na wrote:" with no date or
  address) cuts nothing unless a quote follows it, and a header-like pair of lines with neither an
  address nor a digit is prose. What was kept this way is reported in `ReplyText.unsure`.
- `>>> next step` lines are new text when no quote context is around (no attribution above, no
  shallower `>` level in the run).
- Text before an attribution on the same line is new text ("Sure, done On … wrote:").
- A reply whose first line is already history (bottom-posting under an Outlook header) keeps the
  unquoted text after the last `>` quote; a reply that is all history has no new text.
- HTML-only replies (empty `text`, or `text` that is just the HTML rendered) are cut in the HTML
  first (`replyhtml`), then rendered and cut again as text.
- Everything cut is reported in `ReplyText.cuts`, so the audit trail can show it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from maild.mail import replymarkers as mk
from maild.mail.htmltext import html_to_text
from maild.mail.replyhtml import strip_html_quotes, strip_html_quotes_with_rules

__all__ = ["Cut", "ReplyText", "find_history", "new_text", "read_reply", "strip_html_quotes"]

_MAX_ATTRIBUTION = 400  # characters over at most three lines
_SIGNATURE_TAIL = {"signature_dashes": 10, "signature_line": 3}  # lines a signature may carry


@dataclass(frozen=True)
class Cut:
    """One piece of the email that is not new text: the rule that found it, and the text."""

    rule: str
    text: str


@dataclass(frozen=True)
class Marker:
    """Where the quoted history begins: line `line`, from column `column` on."""

    rule: str
    line: int
    column: int = 0


@dataclass(frozen=True)
class ReplyText:
    """The new text, its blocks in order, what was cut and which doubtful markers were kept."""

    text: str
    blocks: tuple[str, ...] = ()
    cuts: tuple[Cut, ...] = ()
    unsure: tuple[Cut, ...] = ()

    def summary(self) -> dict[str, Any]:
        """What was cut and what was kept though it looked like history, for the audit trail."""
        out: dict[str, Any] = {}
        if self.cuts:
            out["cut"] = [_describe(cut) for cut in self.cuts]
        if self.unsure:
            out["kept_unsure"] = [_describe(cut) for cut in self.unsure]
        return out


    def audit_detail(self) -> dict[str, str]:
        """The same, as short text for an audit entry's detail: each cut's first line and size."""
        out: dict[str, str] = {}
        if self.cuts:
            out["trimmed"] = " | ".join(_one_line(_describe(cut)) for cut in self.cuts)
        if self.unsure:
            out["kept_unsure"] = " | ".join(_one_line(_describe(cut)) for cut in self.unsure)
        return out


def _one_line(described: dict[str, Any]) -> str:
    first = described["first"] if len(described["first"]) <= 60 else described["first"][:59] + "…"
    return f"「{first}」 +{described['lines'] - 1}" if described["lines"] > 1 else f"「{first}」"


def _describe(cut: Cut) -> dict[str, Any]:
    lines = [line.strip() for line in cut.text.split("\n") if line.strip()]
    first = lines[0] if lines else ""
    return {"rule": cut.rule, "lines": len(lines), "first": first[:120]}


def new_text(text: str, html: str | None = None) -> str:
    """What the sender wrote in this reply, without quoted history or signature."""
    return read_reply(text, html).text


def read_reply(text: str, html: str | None = None) -> ReplyText:
    """The new text of a reply (text/plain, or the HTML of an HTML-only email) and what was cut."""
    html_cuts: tuple[Cut, ...] = ()
    full = html_to_text(html) if html else ""  # once: compared, then what was removed from it
    if html and (not text.strip() or text.strip() == full.strip()):
        stripped, rules = strip_html_quotes_with_rules(html)
        text = html_to_text(stripped)  # empty when all of it was quoted: nothing new was said
        if rules:
            removed = _removed_text(full, text)
            html_cuts = (Cut("html:" + ",".join(dict.fromkeys(rules)), removed),)
    text = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")
    blocks, cuts, unsure = _read_lines(text.split("\n"))
    return ReplyText("\n\n".join(blocks), tuple(blocks), html_cuts + cuts, unsure)


def _removed_text(full: str, kept: str) -> str:
    """The rendered lines of `full` that `kept` no longer has (for the audit summary)."""
    kept_lines = set(kept.split("\n"))
    return "\n".join(line for line in full.split("\n") if line not in kept_lines)


# ── pass 1: where the history starts ─────────────────────────────────────────────────────────


def _quoted(line: str) -> bool:
    return bool(mk.QUOTED.match(line))


def _blank(line: str) -> bool:
    return not line.strip(" \t\u3000\xa0")


def _next_nonblank(lines: list[str], start: int, limit: int = 4) -> int | None:
    for index in range(start, min(len(lines), start + limit)):
        if not _blank(lines[index]):
            return index
    return None


def attribution_kind(joined: str) -> str:
    """"strong" for a text that is an attribution for sure, "weak" when it only may be, or ""."""
    joined = joined.strip(" \t\u3000\xa0")
    if len(joined) > _MAX_ATTRIBUTION or not mk.ATTRIBUTION_END.search(joined):
        return ""
    address = bool(mk.ADDRESS.search(joined))
    starts = bool(mk.ATTRIBUTION_START.match(joined)) and any(ch.isdigit() for ch in joined)
    if mk.ATTRIBUTION_VERB.search(joined):
        return "strong" if address or starts else "weak"
    if joined.endswith((">:", ">：")) and address and re.match(r"^\D{0,12}\d", joined):
        return "strong"  # Gmail's date-first form: "2026-08-03 17:21 GMT+08:00 Name <a@b>:"
    return ""


def _attribution_at(lines: list[str], start: int) -> tuple[int, str, int] | None:
    """An attribution starting on line `start` (over up to three lines, no blank line inside):
    (its last line, kind, column where it starts on `start`), or None."""
    if _quoted(lines[start]) or _blank(lines[start]):
        return None
    for end in range(start, min(len(lines), start + 3)):
        if end > start and (_blank(lines[end]) or _quoted(lines[end])):
            break
        if not lines[end].rstrip(" \t\u3000\xa0").endswith((":", "：")):
            continue
        first = lines[start]
        if end > start and not (mk.ATTRIBUTION_START.match(first) or "@" in first
                                or first.rstrip().endswith("<")):
            continue  # only a line that can open an attribution may start a wrapped one
        joined = " ".join(line.strip() for line in lines[start:end + 1])
        kind = attribution_kind(joined)
        if not kind:
            continue
        column = 0
        split = mk.MIDLINE_OPENING.search(first)
        if split and attribution_kind(" ".join([first[split.end():], *lines[start + 1:end + 1]])):
            column = split.end()
        return end, kind, column
    return None


def _header_block_at(lines: list[str], index: int) -> bool:
    line = lines[index]
    if mk.TABLE_FROM_LINE.match(line):
        following = _next_nonblank(lines, index + 1, 2)
        return following is not None and bool(mk.TABLE_OTHER_LINE.match(lines[following]))
    if mk.ONE_LINE_HEADER.match(line):
        return True
    opening = mk.FROM_LINE.match(line) or mk.DATE_LINE.match(line)
    if not opening:
        return False
    partner = mk.OTHER_LINE if mk.FROM_LINE.match(line) else mk.FROM_LINE
    block = [line]
    for other in lines[index + 1:index + 5]:
        if _blank(other):
            break
        block.append(other)
        if partner.match(other):
            text = "\n".join(block)
            return "@" in text or any(ch.isdigit() for ch in text)
    return False


def _signature_tail(lines: list[str], index: int, limit: int) -> int:
    """How many non-blank lines follow a signature line before the history or the end (counting
    stops past `limit`, so a long body full of signature-like lines stays linear)."""
    count = 0
    for position in range(index + 1, len(lines)):
        line = lines[position]
        if _blank(line):
            continue
        if _quoted(line) or _marker_at(lines, position, signatures=False):
            break
        count += 1
        if count > limit:
            break
    return count


def _marker_at(lines: list[str], index: int, signatures: bool = True) -> Marker | None:
    """The history marker that starts on line `index`, if any (see the module docstring)."""
    line = lines[index]
    if _quoted(line) or _blank(line):
        return None
    if mk.DIVIDER.match(line) or mk.BARE_DIVIDER.match(line) or mk.WROTE_DIVIDER.match(line):
        return Marker("divider", index)
    if mk.RULE_LINE.match(line):
        following = _next_nonblank(lines, index + 1, 3)
        if following is not None and (mk.FROM_LINE.match(lines[following])
                                      or mk.DATE_LINE.match(lines[following])):
            return Marker("rule_line", index)
        if any(mk.LIST_FOOTER.search(other) for other in lines[index + 1:index + 4]):
            return Marker("list_footer", index)
    if _header_block_at(lines, index):
        return Marker("header_block", index)
    found = _attribution_at(lines, index)
    if found and found[1] == "strong":
        end = found[0]
        below = _next_nonblank(lines, end + 1, 3)
        if below is None or not _quoted(lines[below]):
            return Marker("attribution", index, found[2])
    if signatures:
        for rule, pattern in (("signature_dashes", mk.SIGNATURE_DASHES),
                              ("signature_line", mk.SIGNATURE_LINE)):
            limit = _SIGNATURE_TAIL[rule]
            if pattern.match(line) and _signature_tail(lines, index, limit) <= limit:
                return Marker(rule, index)
    return None


def find_history(text: str) -> Marker | None:
    """The first history marker on an unquoted line of `text`, or None."""
    lines = text.replace("\r\n", "\n").split("\n")
    for index in range(len(lines)):
        marker = _marker_at(lines, index)
        if marker:
            return marker
    return None


def _backtrack(lines: list[str], marker: Marker) -> int:
    """Foxmail puts the sender's own address (its default signature) just above the header."""
    index = marker.line
    if marker.rule != "header_block":
        return index
    above = index - 1
    while above >= 0 and _blank(lines[above]):
        above -= 1
    return above if above >= 0 and mk.LONE_ADDRESS.match(lines[above]) else index


# ── pass 2: quotes, inline answers and what stays ────────────────────────────────────────────


def _read_lines(lines: list[str]) -> tuple[list[str], tuple[Cut, ...], tuple[Cut, ...]]:
    cuts: list[Cut] = []
    marker = next((m for i in range(len(lines)) if (m := _marker_at(lines, i))), None)
    region = lines
    if marker:
        start = _backtrack(lines, marker)
        head = lines[start][: marker.column] if start == marker.line else ""
        region = lines[:start] + ([head] if head.strip() else [])
        history = lines[start:]
        if marker.column and start == marker.line:
            history = [lines[start][marker.column:], *lines[start + 1:]]
        if all(_blank(line) for line in region):  # bottom-posting below the history?
            tail = _after_last_quote(history)
            cuts.append(Cut(marker.rule, "\n".join(history[: len(history) - len(tail)])))
            blocks, more, unsure = _read_lines(tail)  # no quote left in it: this ends
            return blocks, tuple(cuts) + more, unsure
        cuts.append(Cut(marker.rule, "\n".join(history)))
    blocks, quote_cuts, unsure = _split_quotes(region)
    return blocks, tuple(quote_cuts + cuts), unsure


def _after_last_quote(history: list[str]) -> list[str]:
    """Bottom-posting below a header: the unquoted lines after the last `>` quote."""
    last = max((i for i, line in enumerate(history) if _quoted(line)), default=None)
    if last is None:
        return []
    tail = history[last + 1:]
    return tail if any(not _blank(line) for line in tail) else []


def _quote_run_end(lines: list[str], start: int) -> int:
    """The index after a `>` run starting at `start` (blank lines inside the run belong to it)."""
    end = start
    position = start
    while position < len(lines):
        if _quoted(lines[position]):
            end = position = position + 1
        elif _blank(lines[position]):
            position += 1
        else:
            break
    return end


def _arrows_are_new(run: list[str]) -> bool:
    """`>>> step` lines, every one at exactly three arrows: an arrow list, not a quote."""
    return all(mk.NEW_ARROWS.match(line) for line in run if not _blank(line))


def _split_quotes(lines: list[str]) -> tuple[list[str], list[Cut], tuple[Cut, ...]]:
    blocks: list[list[str]] = [[]]
    cuts: list[Cut] = []
    unsure: list[Cut] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if not _quoted(line):
            blocks[-1].append(line)
            index += 1
            continue
        end = _quote_run_end(lines, index)
        run = lines[index:end]
        attribution = _take_attribution(blocks[-1])
        if attribution is None and _arrows_are_new(run):
            blocks[-1].extend(run)
            index = end
            continue
        cuts.append(Cut("quote", "\n".join(([attribution] if attribution else []) + run)))
        blocks.append([])
        index = end
    for block in blocks:
        for position, line in enumerate(block):
            found = _attribution_at(block, position)
            if found and found[1] == "weak":
                unsure.append(Cut("attribution_without_quote", line))
    texts = [text for text in (_tidy(block) for block in blocks) if text]
    return texts, cuts, tuple(unsure)


def _take_attribution(block: list[str]) -> str | None:
    """Remove the attribution (strong or weak: a quote follows) ending the block; return it."""
    end = len(block) - 1
    while end >= 0 and _blank(block[end]):
        end -= 1
    for start in range(max(0, end - 2), end + 1):
        found = _attribution_at(block, start)
        if found and found[0] == end:
            column = found[2]
            removed = "\n".join([block[start][column:], *block[start + 1:end + 1]])
            head = block[start][:column]
            del block[start:]
            if head.strip():
                block.append(head)
            return removed
    return None


def _tidy(block: list[str]) -> str:
    lines = [line.rstrip() for line in block]
    while lines and mk.DECORATION.match(lines[-1]):
        lines.pop()
    text = "\n".join(lines).strip("\n")
    return re.sub(r"\n(?:[ \t\u3000\xa0]*\n)+", "\n\n", text).strip()
