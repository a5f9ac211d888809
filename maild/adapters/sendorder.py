"""Which queued email a free SMTP connection may send next, so that every recipient gets their
emails in queue order however many connections send a batch.

Pure bookkeeping (no I/O, no clock): `SendOrder` is told the batch's emails in queue order
(`add`), hands out the earliest one that may go now (`take`), and is told when an email is
answered (`done`) or was taken back untried (`give_back`).

The rule: an email may go once every earlier email of the batch that shares one of its
recipients (To or Cc, compared without case) has been answered by the server (sent, refused or
rescheduled). Each recipient keeps a queue of the unanswered emails to it; an email is ready when
it heads the queue of every one of its recipients. So:
- No deadlock: the earliest unanswered email heads all of its queues, so it is either ready or on
  the wire, and whatever is on the wire gets answered.
- One slow stream does not serialize everything: only the emails behind it in its own
  recipients' queues wait; any other ready email goes out on another connection.
- An email with no recipient is ready at once (the outbox fails it without sending).
Surprise: the order holds within a batch only; an email rescheduled (4xx) does not hold back the
later ones to the same recipient, exactly as when one connection sends the batch in order.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable


class SendOrder:
    """The batch's emails by position (0, 1, ... in queue order) and their recipients."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[int]] = {}  # recipient -> unanswered positions, in order
        self._recipients: dict[int, tuple[str, ...]] = {}  # added and not yet answered
        self._ready: list[int] = []  # a heap of positions that may go now, not taken
        self._taken: set[int] = set()
        self.added = 0

    def add(self, recipients: Iterable[str]) -> int:
        """Append the next email of the batch (its To and Cc); returns its position."""
        position = self.added
        self.added += 1
        keys = tuple(dict.fromkeys(r.lower() for r in recipients))
        self._recipients[position] = keys
        for key in keys:
            self._queues.setdefault(key, deque()).append(position)
        self._if_ready(position)
        return position

    def take(self) -> int | None:
        """The earliest email that may go now (now counted as on the wire), or None."""
        while self._ready:
            position = heapq.heappop(self._ready)
            if position in self._recipients and position not in self._taken:  # not stale
                self._taken.add(position)
                return position
        return None

    def give_back(self, position: int) -> None:
        """A taken email went nowhere (its connection could not be opened): ready again."""
        self._taken.discard(position)
        heapq.heappush(self._ready, position)

    def done(self, position: int) -> None:
        """The server answered the email at `position` (or it was settled without sending)."""
        self._taken.discard(position)
        for key in self._recipients.pop(position):
            queue = self._queues[key]
            if queue[0] == position:
                queue.popleft()
            else:  # answered without being taken (a batch rescheduled untried)
                queue.remove(position)
            if queue:
                self._if_ready(queue[0])
            else:
                del self._queues[key]

    def open(self) -> int:
        """How many added emails are not answered yet (taken or waiting)."""
        return len(self._recipients)

    def waiting(self) -> list[int]:
        """The added emails neither taken nor answered, in queue order."""
        return sorted(p for p in self._recipients if p not in self._taken)

    def _if_ready(self, position: int) -> None:
        if position in self._taken or position not in self._recipients:
            return
        if all(self._queues[key][0] == position for key in self._recipients[position]):
            heapq.heappush(self._ready, position)
