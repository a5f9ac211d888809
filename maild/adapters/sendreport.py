"""What a send did, before and after it is written down: the `DrainReport` (sent, retried,
failed), the tally a drain keeps, and a detached send's store writes kept in order for later
(`DetachedSend`, `outbox.Outbox.settle` makes them on the store's own thread).

Pure bookkeeping, no SMTP (`outbox` stays the only aiosmtplib importer).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from maild.core.model import Outgoing

if TYPE_CHECKING:
    from maild.adapters.store import Store


@dataclass(frozen=True)
class DrainReport:
    sent: tuple[str, ...] = ()  # Message-IDs accepted by the server
    retried: tuple[str, ...] = ()  # Message-IDs rescheduled
    failed: tuple[tuple[Outgoing, int | None, str], ...] = ()  # marked failed in THIS drain


class ConnectionLost(Exception):
    """The connection is gone (or unusable); the message's outcome is unknown."""


class CannotConnect(Exception):
    """A connection could not be opened (or signed in): a server problem, not the emails'."""

    def __init__(self, why: str, code: int | None) -> None:
        super().__init__(why)
        self.why, self.code = why, code


class LaterWrites:
    """The outcome writes of a send made off the thread that owns the store, kept in order and
    made by `Outbox.settle` on that thread (the store is not thread-safe)."""

    _RECORDED = frozenset({"outbox_mark_sent", "outbox_mark_retry", "outbox_mark_failed",
                           "outbox_note"})

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name not in self._RECORDED:
            raise AttributeError(name)
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))

    def replay(self, store: Store) -> None:
        for name, args, kwargs in self.calls:
            getattr(store, name)(*args, **kwargs)
        self.calls.clear()


@dataclass
class Tally:
    writes: Any  # the Store, or LaterWrites for a detached send
    sent: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)
    failed: list[tuple[Outgoing, int | None, str]] = field(default_factory=list)

    def report(self) -> DrainReport:
        return DrainReport(tuple(self.sent), tuple(self.retried), tuple(self.failed))


@dataclass(frozen=True)
class DetachedSend:
    """What `Outbox.send_detached` did: its report, and its store writes still to be made."""

    report: DrainReport
    writes: LaterWrites


def recipients_of(out: Outgoing) -> list[str]:
    return list(dict.fromkeys(a for a in (*out.to, *out.cc) if a))
