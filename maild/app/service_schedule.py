"""The service's schedule side: the due index, and schedule runs carried out at once or in
slices between intake batches (a mixin of `Service`, which wires everything).

Surprises:
- `tick` (in service.py) starts a run only when the due index says something is due; `run()`
  sets `slicing`, and then each turn of its loop gives the run one slice of ~80 ms (`run_slice`)
  after intake, and a committed slice's emails go to the sender's child while intake goes on.
  Without `slicing` (tests, the demo) a run is carried out at once.
- `time.monotonic` measures a slice's budget; the clock (`now`) is still only the service's.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from maild.app.scheduling import DueIndex, ScheduleRun
from maild.core import closeloop, planner
from maild.core.model import Outgoing

log = logging.getLogger("maild.service")
MAX_QUEUED = 400  # a sliced run waits for the sender beyond this many queued emails
SEND_AT_ONCE = 80  # emails per hand-over to the sender's child (spooling them holds intake)


def _plan_source(entry: planner.Planned) -> str:
    """The stable cause of a planned email, from which its Message-ID is made."""
    return "plan|" + "|".join("|".join(map(str, record)) for record in entry.records)


class ScheduleSide:
    """Schedule methods of `Service` (which provides the store, rules, clock, sender and the
    `_enqueue`/`_send_in_background`/`_settle_sending` they use)."""

    store: Any
    rules: Any
    sender: Any
    _sending: bool
    clock: Any
    _due_index: DueIndex | None
    _run_ids: set[str]  # what the run in progress enqueued: the sender's child sends it
    schedule_run: ScheduleRun | None
    _run_steps: Iterator[None]
    slicing: bool

    @property
    def due_index(self) -> DueIndex:
        """When the schedule next has something to plan (loaded at first use)."""
        return self._due_index_at(self.clock())

    def _due_index_at(self, now: datetime) -> DueIndex:
        """The due index, loaded at `now` if not yet: loaded at a later clock reading, the
        moments it computes (an overdue item's is the load's `now`) would come after the
        tick's `now`, and what is due would wait for the next tick (30 s)."""
        if self._due_index is None:
            self._due_index = DueIndex.load(self.store, self.rules.schedules,
                                            self.rules.calendar, now)
        return self._due_index

    def start_schedule_run(self, now: datetime) -> ScheduleRun | None:
        """A run over what is due at `now` (None when nothing is: microseconds)."""
        wanted = self._due_index_at(now).due(now)
        if wanted is None:
            return None
        order = {item_id: n for n, item_id in enumerate(self.store.item_ids())}
        return ScheduleRun(self.store, self.rules.schedules, self.rules.calendar,
                           self.rules.people, now, sorted(wanted, key=lambda i: order.get(i, 0)),
                           enqueue=lambda entry, when: self._enqueue_for_run(entry, when),
                           sent=self._send_slice, index=self._due_index_at(now),
                           prepare=self._create_occurrences)

    def _create_occurrences(self, item: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """A recurring task's occurrences due at `now`: created and their emails queued, in the
        run's commit that also records the series' next one, so each is created once. The item
        as changed (None when nothing was due)."""
        made = closeloop.create_occurrences(item, now, self.rules.calendar)
        if made is None:
            return None
        changed, notices = made
        self.store.put_item(changed)
        created = "|".join(n.task_id or "" for n in notices)
        self._enqueue(notices, source=f"occurrence|{changed['id']}|{created}", now=now)
        log.info("event=occurrences item=%s created=%s", changed["id"], created)
        return changed

    def _enqueue_for_run(self, entry: planner.Planned, now: datetime) -> list[Outgoing]:
        """Render and queue one planned email, marked as the run's at once: an intake batch
        may commit it before its slice ends, and the daemon's own drains must leave it to the
        sender's child (before, they sent it, and intake's answers queued behind the run's)."""
        queued = self._enqueue([entry.notice], source=_plan_source(entry), now=now)
        if self.slicing and self.sender is not None:
            self._run_ids.update(out.message_id for out in queued)
        return queued

    def run_schedules(self, now: datetime) -> list[Outgoing]:
        """Carry out at once what is due: enqueue it and record it as sent, in the same commits
        (each level once). The cyclic collector pauses meanwhile: a run at scale allocates
        millions of short-lived objects and no cycles worth collecting."""
        run = self.schedule_run or self.start_schedule_run(now)
        self.schedule_run = None
        if run is None:
            return []
        collecting = gc.isenabled()
        gc.disable()
        try:
            return run.run_all()
        finally:
            if collecting:
                gc.enable()

    def run_slice(self, budget_s: float = 0.05) -> None:
        """Advance the schedule run in progress by about `budget_s` (between intake batches).
        Slices are enqueued while the sender's child sends the ones before (at most
        `MAX_QUEUED` emails wait at a time); the run ends once its last email has gone out."""
        run = self.schedule_run
        if run is None:
            return
        if self._sending and self.sender_ready():
            self._settle_sending()
            self.store.commit()
        started = time.monotonic()
        collecting = gc.isenabled()
        gc.disable()
        try:
            while not run.done and self.store.outbox_queued_count() < MAX_QUEUED:
                # (beyond MAX_QUEUED the sender has enough: rendered emails do not pile up)
                next(self._run_steps, None)
                if time.monotonic() - started >= budget_s:
                    break
        finally:
            if collecting:
                gc.enable()
        if not self._sending and self.store.outbox_queued_count():
            self.store.commit()  # the child sends committed emails only (each is whole)
            self._send_in_background(SEND_AT_ONCE)
        if run.done and not self._sending and not any(
                mid in self._run_ids for mid in self.store.outbox_due_ids(self.clock(), 10**6)):
            self.schedule_run = None
            self._run_ids = set()

    def sender_ready(self) -> bool:
        return self.sender is None or self.sender.ready()

    def _send_slice(self, emails: list[Outgoing]) -> None:
        """A committed slice of a schedule run: sent by the sender's child while intake goes on
        (`run()`; the daemon's own drains leave them alone), or at once (tests,
        `run_schedules`)."""
        if self.slicing and self.sender is not None and emails:
            self._run_ids.update(e.message_id for e in emails)
            if not self._sending:
                self._send_in_background(SEND_AT_ONCE)

