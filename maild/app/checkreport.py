"""One check's result (`Check`: name, ok, detail, warn) and the report `maild check` prints from
a list of them (`format_checks`: one coloured line each, then the summary); `reason_of` says
what an exception means in one line.

Shared by `checks`, `serverchecks` and `authprobe`, which otherwise would import each other.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warn: bool = False  # passed, but someone must act (printed as WARN; exit code unchanged)


def reason_of(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, bytes | bytearray):  # pragma: no cover
        text = exc.decode("utf-8", "replace")
    args = getattr(exc, "args", ())
    if args and isinstance(args[-1], bytes):
        text = args[-1].decode("utf-8", "replace")
    return f"{type(exc).__name__}: {text}".strip().rstrip(":")


def format_checks(checks: Sequence[Check], paint: Painter) -> str:
    width = max((_width(c.name) for c in checks), default=0)
    lines = [paint.line(c.ok, _pad(c.name, width), c.detail, warn=c.warn) for c in checks]
    failed = [c.name for c in checks if not c.ok]
    warned = [c.name for c in checks if c.ok and c.warn]
    summary = (f"all {len(checks)} checks passed" if not failed
               else f"{len(failed)} of {len(checks)} checks failed: {', '.join(failed)}")
    if warned:
        summary += f"; {len(warned)} warning{'s' if len(warned) > 1 else ''}: {', '.join(warned)}"
    lines += ["", paint.line(not failed, summary, "")]
    return "\n".join(line.rstrip() for line in lines)


class Painter:
    """Green/red marks; ANSI colour only for a terminal."""

    def __init__(self, colour: bool) -> None:
        self.colour = colour

    def line(self, ok: bool, name: str, detail: str, warn: bool = False) -> str:
        mark = "! WARN" if ok and warn else "✓ ok  " if ok else "✗ FAIL"
        if self.colour:
            mark = f"\033[{'33' if ok and warn else '32' if ok else '31'}m{mark}\033[0m"
        return f"{mark} {name}  {detail}"


def _width(text: str) -> int:
    """Terminal columns: CJK (wide and full-width) characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0
               if unicodedata.combining(c) else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))
