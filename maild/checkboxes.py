"""Which options of a choice line are ticked, as people tick the guide's templates in a mail client.

Pure. `ticked("□50% ☑75% □100%")` is `Choice(ticked=("75%",), options=("50%", "75%", "100%"))`.

Surprises worth knowing:

* Unticked marks: □ ☐ ○ ◯ and empty brackets "[ ]" "( )" "（ ）". Ticked: ☑ ☒ ■ ▣ √ ✓ ✔ ●
  and "[x]" "[X]" "(x)" "(X)" "[√]" "[✓]" "[✔]". ☒ is a ticked box in Word's and WPS's symbol
  sets although it draws an X: people use it to mark a choice, not to strike it out.
* A mark belongs to the option after it ("☑75%") unless the line ends with a mark and does not
  start with one ("75%☑"): then each mark belongs to the option before it. Spaces do not matter.
* A line without any mark is not a choice line (None): "75%" alone is read elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TICKED_CHARS = "☑☒■▣√✓✔●"
_UNTICKED_CHARS = "□☐○◯"
_MARK_RE = re.compile(
    r"\[\s*[xX√✓✔]?\s*\]|\(\s*[xX√✓✔]?\s*\)|（\s*[xX√✓✔]?\s*）"
    f"|[{_TICKED_CHARS}{_UNTICKED_CHARS}]")


@dataclass(frozen=True)
class Choice:
    ticked: tuple[str, ...]
    options: tuple[str, ...]


def _is_ticked(mark: str) -> bool:
    inner = mark.strip("[]()（） \t")
    return bool(inner) and (inner in "xX" or inner[0] in _TICKED_CHARS)


def ticked(value: str) -> Choice | None:
    """The ticked and all options of a choice line's value; None when it has no marks."""
    marks = list(_MARK_RE.finditer(value))
    if not marks:
        return None
    texts = _MARK_RE.split(value)  # the text around the marks: len(marks) + 1 pieces
    before = texts[0].strip(" \t,，;；、/|") == "" or texts[-1].strip(" \t,，;；、/|") != ""
    options: list[str] = []
    chosen: list[str] = []
    for number, mark in enumerate(marks):
        option = (texts[number + 1] if before else texts[number]).strip(" \t,，;；、/|")
        if not option:
            continue
        options.append(option)
        if _is_ticked(mark.group()):
            chosen.append(option)
    return Choice(tuple(chosen), tuple(options))
