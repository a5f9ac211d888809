"""One batch shared by the SMTP connections ("lanes") that send it: each free lane is handed the
earliest email that may go now (`sendorder.SendOrder`: every recipient's emails in queue order),
waits while none may, and stops when every email of the batch is answered.

No SMTP here (`outbox` stays the only aiosmtplib importer): a lane (`run_lane`) drives its
connection through the `Outbox`'s methods (`Connections`); the lanes are coroutines on one event
loop, so nothing is shared across threads.

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
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from maild.adapters.outboxstore import OutboxEntry
from maild.adapters.sendorder import SendOrder
from maild.adapters.sendreport import CannotConnect, ConnectionLost, Tally

log = logging.getLogger("maild.outbox")  # the name logs have always shown

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


class Connections(Protocol):
    """What a lane needs of the `Outbox`: its connections and the outcomes it records."""

    async def reuse(self) -> Any: ...  # a connection kept from an earlier send, or None

    async def open_connection(self) -> Any: ...  # raises CannotConnect

    async def send_one(self, client: Any, entry: OutboxEntry, tally: Tally,
                       now: datetime) -> None: ...  # raises ConnectionLost

    def reschedule(self, tally: Tally, entry: OutboxEntry, now: datetime, code: int | None,
                   error: str) -> None: ...

    async def keep(self, client: Any) -> None: ...

    async def hang_up(self, client: Any) -> None: ...


async def run_lane(outbox: Connections, batch: LaneBatch[OutboxEntry], size: int, now: datetime,
                   tally: Tally) -> None:
    """One connection sending what `batch` hands it; it reconnects once when it is lost. One
    that cannot be opened, or is lost twice, retires while another lane is alive; the last one
    reschedules the rest of the batch untried (see `outbox`'s docs)."""
    client = await outbox.reuse()
    reconnects_left = 1
    try:
        while (taken := await batch.next()) is not None:
            position, entry = taken
            if client is None:
                try:
                    client = await outbox.open_connection()
                except CannotConnect as exc:
                    if batch.retire():  # the other connections carry the batch
                        batch.give_back(position)
                        log.info("outbox: %s; %d other connection(s) go on", exc.why,
                                 batch.alive)
                        return
                    log.warning("outbox: %s; %d emails rescheduled", exc.why, size)
                    _give_up(outbox, batch, position, entry, now, tally, exc.code, exc.why)
                    return
            try:
                await outbox.send_one(client, entry, tally, now)
            except ConnectionLost as exc:
                client.close()  # no polite QUIT: a silent server would make us wait again
                client = None
                if not reconnects_left:
                    down = f"connection lost twice in one drain (last: {exc})"
                    if batch.retire():
                        log.warning("outbox: %s; the other connections go on", down)
                        batch.done(position)
                        return
                    log.warning("outbox: %s; rest of the batch rescheduled", down)
                    _give_up(outbox, batch, position, None, now, tally, None, down)
                    return
                reconnects_left -= 1
            batch.done(position)
    except BaseException:
        await outbox.hang_up(client)
        raise
    await outbox.keep(client)


def _give_up(outbox: Connections, batch: LaneBatch[OutboxEntry], position: int,
             entry: OutboxEntry | None, now: datetime, tally: Tally, code: int | None,
             why: str) -> None:
    """The last connection is down: `entry` (unless already answered) and every email not sent
    yet are rescheduled untried (a server problem, not theirs)."""
    if entry is not None:
        outbox.reschedule(tally, entry, now, code, why)
    batch.done(position)
    for rest in batch.rest():
        outbox.reschedule(tally, rest, now, code, why)
