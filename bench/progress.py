"""A one-line progress bar on stderr (stdout stays the table + JSON)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, *, stream=sys.stderr, width: int = 30) -> None:
        self.label, self.total, self.stream, self.width = label, max(1, total), stream, width
        self.done = 0
        self._start = time.monotonic()
        self._last = 0.0
        self._tty = stream.isatty()

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self._last < 0.2 and done < self.total:
            return
        self._last = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"  {self.label:<28} [{bar}] {done}/{self.total} {now - self._start:6.1f}s"
        if self._tty:
            self.stream.write("\r" + line)
        elif done >= self.total and not getattr(self, "_printed", False):
            self._printed = True
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        self.update(self.total if self.done >= self.total else self.done)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()


def note(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()
