"""One batch shared by the SMTP connections ("lanes") that send it: each free lane is handed the
earliest email that may go now (`sendorder.SendOrder`: every recipient's emails in queue order),
waits while none may, and stops when every email of the batch is answered.

No SMTP here (`outbox` stays the only aiosmtplib importer): the lanes are `Outbox._lane`
coroutines on one event loop, so nothing is shared across threads.

Surprises:
- The batch is read lazily, in queue order, and only when no email read so far may go, at most
  `lookahead` unanswered emails ahead: with one lane exactly one email is read at a time (as
  before lanes), and a sender that decodes as it reads (the child's spool) holds few whole emails.
  The lookahead bounds how far the other lanes get ahead of a slow recipient's stream.
- A lane that cannot open its connection gives its email back and retires while another lane is
  alive (a server that allows one connection per client, a 421 to the second): nothing fails
  for it. The last lane alive that gives up settles the rest of the batch (`rest`) itself.
- A lane with nothing to take waits until the batch is over even when no email is left to read:
  another lane may yet give one back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, Protocol, TypeVar

from maild.adapters.sendorder import SendOrder

Entry = TypeVar("Entry")
Entry_co = TypeVar("Entry_co", covariant=True)


class Batch(Protocol[Entry_co]):
    """What a send takes: its emails in queue order, and how many (a list, or the child's spool,
    read as it goes)."""

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Entry_co]: ...


class LaneBatch(Generic[Entry]):
    """The emails of one batch as the lanes take them (see the module docs)."""

    def __init__(self, entries: Iterable[Entry], recipients: Callable[[Entry], Iterable[str]],
                 key: Callable[[Entry], str], *, lanes: int, lookahead: int = 64) -> None:
        self._source: Iterator[Entry] | None = iter(entries)
        self._recipients = recipients
        self._key = key
        self._order = SendOrder()
        self._open: dict[int, Entry] = {}  # read and not answered, by position
        self.positions: dict[str, int] = {}  # key (Message-ID) -> position, for the report
        self.lookahead = max(lookahead, lanes)
        self.alive = lanes  # lanes that have not retired
        self._changed = asyncio.Event()

    async def next(self) -> tuple[int, Entry] | None:
        """The next email this lane may send (position, entry), or None when the batch is over."""
        while True:
            position = self._order.take()
            while position is None and self._source is not None \
                    and self._order.open() < self.lookahead:
                self._read()
                position = self._order.take()
            if position is not None:
                return position, self._open[position]
            if self._source is None and not self._order.open():
                self._wake()
                return None
            changed = self._changed
            await changed.wait()

    def done(self, position: int) -> None:
        """The email at `position` is answered (sent, refused, rescheduled or failed)."""
        self._order.done(position)
        del self._open[position]
        self._wake()

    def give_back(self, position: int) -> None:
        """The email at `position` was not sent (its lane retires): another lane takes it."""
        self._order.give_back(position)
        self._wake()

    def retire(self) -> bool:
        """This lane stops; True when another lane is still alive to carry the batch."""
        self.alive -= 1
        return self.alive > 0

    def rest(self) -> list[Entry]:
        """Every email not taken yet, read to the end and answered now (the last lane gives up:
        the caller reschedules them)."""
        while self._source is not None:
            self._read()
        rest = []
        for position in self._order.waiting():
            rest.append(self._open[position])
            self.done(position)
        return rest

    def _read(self) -> None:
        assert self._source is not None
        try:
            entry = next(self._source)
        except StopIteration:
            self._source = None
            return
        position = self._order.add(self._recipients(entry))
        self._open[position] = entry
        self.positions[self._key(entry)] = position

    def _wake(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
