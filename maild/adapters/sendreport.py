"""What a send did, before and after it is written down: the `DrainReport` (sent, retried,
failed), the tally a drain keeps, how a failed attempt is recorded (`Outcomes`: rescheduled with
backoff, or failed for good), and a detached send's store writes kept in order for later
(`DetachedSend`, `outbox.Outbox.settle` makes them on the store's own thread).

Pure bookkeeping, no SMTP (`outbox` stays the only aiosmtplib importer).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from maild.core.model import Outgoing

if TYPE_CHECKING:
    from maild.adapters.store import OutboxEntry, Store

log = logging.getLogger("maild.outbox")  # the name logs have always shown


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


@dataclass
class Outcomes:
    """An attempt that did not end in a 250, recorded in the tally: rescheduled after a backoff
    (`max_attempts` tries at most), or failed for good (the outbox's rules, see its docs)."""

    max_attempts: int
    backoff_initial_s: float
    backoff_max_s: float
    rng: random.Random

    def backoff(self, attempts: int) -> timedelta:
        """Delay before try number `attempts + 1`: initial·2^(attempts-1), capped, ±20 % jitter."""
        base = min(self.backoff_initial_s * 2 ** max(attempts - 1, 0), self.backoff_max_s)
        return timedelta(seconds=base * self.rng.uniform(0.8, 1.2))

    def fail(
        self, tally: Tally, entry: OutboxEntry, now: datetime, code: int | None, error: str
    ) -> None:
        out = entry.out
        tally.writes.outbox_mark_failed(
            out.message_id, now=now, code=code, error=error, attempts=entry.attempts + 1
        )
        tally.failed.append((out, code, error))
        log.warning("outbox: %s to %s failed: %s", out.message_id, ",".join(out.to), error)

    def reschedule(
        self, tally: Tally, entry: OutboxEntry, now: datetime, code: int | None, error: str
    ) -> None:
        attempts = entry.attempts + 1
        if attempts >= self.max_attempts:
            self.fail(tally, entry, now, code, f"gave up after {attempts} attempts: {error}")
            return
        tally.writes.outbox_mark_retry(
            entry.out.message_id,
            attempts=attempts,
            next_attempt_at=now + self.backoff(attempts),
            error=error,
            code=code,
        )
        tally.retried.append(entry.out.message_id)
