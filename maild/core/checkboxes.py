"""Which option a choice cell picks, written the way office workers tick boxes in a form.

The one job is `picked(value)` → the option the text chooses, "" when it chooses none, or None
when it is contradictory (two options ticked); `choose` maps it onto a field's choices from
`rules/forms.toml`, `percent_of` reads 当前进度, and `ticked` gives a reply's choice line as its
ticked and all options (None without marks), for the reply reader. Pure. What counts, from the guide's own tables
("完成状态(□未开始□进行中□已完成□延期)") and how people fill them in:

- Unticked: □ ☐ ○ ◯ [ ] ( ); ticked: ☑ ☒ ■ ▣ √ ✓ ✔ ● ⊠ [x] [X] (x) (X) [√] [✓] 【√】 (x).
  A mark sits before or after its option, with or without spaces: "☑高", "高 ☑", "[x] High".
- One option ticked is that option, whatever else is listed: "□高 ☑中 □低" → "中".
- No tick and exactly one option left is that option: "□未开始" (the guide's example rows),
  "进行中", or a line where the others were deleted.
- No tick among several options chooses nothing (""): the blank line of a template.
- Marks after the options ("高☑ 中□ 低□") are read when the text ends with a mark and does not
  start with one; otherwise a mark belongs to the option after it.

Surprise: HTML forms tick by emphasis (bold, highlight); `htmltables` turns an emphasised option
in a choice cell into "☑option" before this module sees it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from maild.core.formrules import Choice, Choices, choice_lookup, norm

TICKED = "☑☒■▣√✓✔●⊠"
UNTICKED = "□☐○◯"
_BRACKETED = re.compile(r"[\[【(（]\s*([xX×√✓✔]?)\s*[\]】)）]")
_MARK = re.compile(f"([{TICKED}])|([{UNTICKED}])|\x00([01])")
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")
_SEPARATORS = "/／、,，;；|｜"
_SPLIT = re.compile(f"[{_SEPARATORS}]+")


def _marks(value: str) -> str:
    """Bracketed marks as single characters: "[x]" → ticked, "[ ]" → unticked (\x00 1 / 0)."""
    return _BRACKETED.sub(lambda m: "\x001" if m[1] else "\x000", value)


def options(value: str) -> list[tuple[str, bool | None]]:
    """The options in a choice text, each with True (ticked), False (unticked) or None (no mark).

    The separators (/ 、 , ; |) divide options; with marks, so do the marks, and the text between
    two marks is one option even with spaces in it ("☑ Customer complaint ☐ Other")."""
    text = _marks(unicodedata.normalize("NFC", value).strip())
    parts = _MARK.split(text)  # text, ticked, unticked, bracket, text, ...
    if len(parts) == 1:
        return [(word.strip(), None) for word in _SPLIT.split(text) if word.strip()]
    tokens: list[tuple[str, str]] = []  # ("mark", "1" | "0") or ("text", option)
    for index in range(0, len(parts), 4):
        for words in _SPLIT.split(parts[index]):  # "☑高/中/低": three options, one ticked
            words = words.strip(" \t\xa0\u3000")
            if words:
                tokens.append(("text", words))
        if index + 3 < len(parts):
            ticked, bracket = parts[index + 1], parts[index + 3]
            tokens.append(("mark", "1" if ticked or bracket == "1" else "0"))
    if not tokens or all(kind == "mark" for kind, _ in tokens):
        return []
    after = tokens[-1][0] == "mark" and tokens[0][0] != "mark"
    found: list[tuple[str, bool | None]] = []
    pending: bool | None = None
    for kind, token in (reversed(tokens) if after else tokens):
        if kind == "mark":
            pending = token == "1"
        else:
            found.append((token, pending))
            pending = None
    return list(reversed(found)) if after else found


def picked(value: str) -> str | None:
    """The option `value` chooses; "" for none; None when several are ticked."""
    found = options(value)
    ticked = [name for name, mark in found if mark]
    if len(ticked) == 1:
        return ticked[0]
    if ticked:
        return None
    return found[0][0] if len(found) == 1 else ""


def has_marks(value: str) -> bool:
    """Whether the text holds any checkbox mark, ticked or not."""
    return bool(_MARK.search(_marks(value)))


def or_raw(normalised: str | None, raw: str) -> str:
    """A normalised value; "" when boxes chose nothing; the raw text when not recognised."""
    return raw if normalised is None else normalised


def choose(value: str, choices: tuple[Choice, ...]) -> str | None:
    """The canonical value of a choice ("高", "High", "☑高 □中 □低" → "high"); "" when the boxes
    choose nothing; None when not recognised."""
    lookup = choices.lookup if isinstance(choices, Choices) else choice_lookup(choices)
    normed = norm(value)
    if normed in lookup:
        return lookup[normed]
    option = picked(value)
    if option == "" and has_marks(value):
        return ""
    return lookup.get(norm(option)) if option else None


def percent_of(value: str) -> str | None:
    """当前进度 as "N%": "75%", "☑75%", "□0% □25% ☑50%", "７５％"; None when no percentage."""
    option = picked(value) if has_marks(value) else value
    if option == "" and has_marks(value):
        return ""
    m = _PERCENT.search(unicodedata.normalize("NFKC", option or ""))
    return f"{m[1]}%" if m else None


@dataclass(frozen=True)
class Ticks:
    """A choice line as a reply fills it in: the ticked options and all of them, in order."""

    ticked: tuple[str, ...]
    options: tuple[str, ...]


def ticked(value: str) -> Ticks | None:
    """The ticked and all options of a choice line ("□50% ☑75% □100%" → ticked ("75%",));
    None when it has no marks at all ("75%" alone is read elsewhere)."""
    if not has_marks(value):
        return None
    found = options(value)
    return Ticks(tuple(name for name, mark in found if mark), tuple(name for name, _ in found))
