"""When the schedule must plan, and a planned run carried out in slices.

`DueIndex` knows, for every open item, the next moment one of its levels (reminders,
escalations) can fall due (`planner.next_level_due`, kept in the store's `due` table), and for
every person who gets a digest the moment of their next one (from the planner's memory):
`due(now)` answers in microseconds which items a run at `now` must plan, or None. A batch that
changes an item refreshes that item only (`refresh`); a run refreshes what it planned.

`ScheduleRun` carries out one run as steps (`steps()`, a generator): read the items to plan, plan
them (`planner.plan_steps` yields every few hundred items), then enqueue the emails a slice at a
time. Each slice's emails, the levels they carry (recorded on the tasks) and the planner's memory
of their readers are committed together, so a crash between slices repeats nothing (the next plan
finds them recorded) and loses nothing (the rest are still due). The service runs the steps
between intake batches with a time budget, or all at once (`run_all`).

Surprises:
- A person whose digest slot has come is planned with ALL their items (`items_of`), never a
  part: a partial run plans only the items due plus the items of the people due.
- Moments in the index may be earlier bounds (see `planner._due`): a run at a bound may plan
  nothing, and refreshes the item to its exact moment.
- Nothing here reads the clock: `now` comes in.
- Schedules start quietly (baseline.py): a digest reader met for the first time (their first
  open item or task, or everyone without memory when the index is first built) is given a last
  digest at the slot before they joined, so their first digest comes at its time, never within
  a tick of the confirmation requests. This memory is written to the store with the change.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maild.adapters.store import Store
from maild.core import baseline, planner
from maild.core.model import Outgoing
from maild.core.people import Directory
from maild.core.planner import Planned, ScheduleRules
from maild.core.workcal import WorkCalendar

log = logging.getLogger("maild.scheduling")  # the name logs have always shown

DIGESTS = ("digest", "owner_digest")
RULES_KEY = "due_rules"  # meta: which rules the stored due moments were computed with


def rules_fingerprint(rules: ScheduleRules, cal: WorkCalendar) -> str:
    """Changes when the rules or the calendar change what is due when."""
    return hashlib.sha256(repr((rules, cal)).encode()).hexdigest()[:16]


class DueIndex:
    """Each open item's next level moment, each digest reader's next slot; see the module doc."""

    def __init__(self, store: Store, rules: ScheduleRules, cal: WorkCalendar) -> None:
        self.store, self.rules, self.cal = store, rules, cal
        self.levels: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self.items_of: dict[str, dict[str, set[str]]] = {k: {} for k in DIGESTS}
        # item -> (its digest readers, its owner-digest readers): tuples of interned addresses
        # (50,000 items' worth of sets was ~30 MB)
        self._people_of: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        self.done: dict[str, dict[str, str | None]] = {k: {} for k in DIGESTS}
        self.slots: dict[str, dict[str, datetime | None]] = {k: {} for k in DIGESTS}
        self._next_digest: datetime | None = None
        self._slots_changed = True

    @classmethod
    def load(cls, store: Store, rules: ScheduleRules, cal: WorkCalendar,
             now: datetime) -> DueIndex:
        """From the store: the due table, the item summaries, the planner's memory. Items
        without a stored moment (or all, when the rules changed since) are computed now."""
        index = cls(store, rules, cal)
        state = store.schedule_state()
        for kind in DIGESTS:
            index.done[kind] = {a: (e or {}).get("done") for a, e in state.get(kind, {}).items()}
        fingerprint = rules_fingerprint(rules, cal)
        same_rules = store.meta_get(RULES_KEY) == fingerprint
        stored = store.dues() if same_rules else {}
        missing = []
        for summary in store.iter_summaries():
            item_id = summary["id"]
            if summary.get("state", "open") != "open":
                continue
            index._set_people(item_id, _summary_people(summary))
            if item_id in stored:
                index._set_level(item_id, stored[item_id])
            else:
                missing.append(item_id)
        for item_id in missing:
            item = store.get_item(item_id)
            if item is not None:
                index._set_level(item_id, planner.next_level_due(item, now, rules, cal))
                store.set_due(item_id, index.levels.get(item_id))
        if not same_rules and not store.readonly:
            store.meta_set(RULES_KEY, fingerprint)
        for kind in DIGESTS:  # people nobody planned for yet (a new store, a migrated one)
            for address in list(index.items_of[kind]):
                if address not in index.done[kind]:
                    index._meet(kind, address, now, now)
        index._recompute_slots(now)
        if missing:
            log.info("event=due_index_built computed=%d stored=%d", len(missing), len(stored))
        return index

    # -- updates -------------------------------------------------------------------------------

    def _set_level(self, item_id: str, at: datetime | None) -> None:
        item_id = sys.intern(item_id)
        if at is None:
            self.levels.pop(item_id, None)
            return
        if self.levels.get(item_id) != at:
            self.levels[item_id] = at
            heapq.heappush(self._heap, (at, item_id))

    def _set_people(self, item_id: str, people: Mapping[str, set[str]]) -> None:
        item_id = sys.intern(item_id)
        old = self._people_of.get(item_id, ((), ()))
        for n, kind in enumerate(DIGESTS):
            before = set(old[n])
            after = {sys.intern(a) for a in people.get(kind, ())}
            for address in before - after:
                holders = self.items_of[kind].get(address)
                if holders is not None:
                    holders.discard(item_id)
                    if not holders:
                        del self.items_of[kind][address]
                        self.slots[kind].pop(address, None)
                        self._slots_changed = True
            for address in after - before:
                self.items_of[kind].setdefault(address, set()).add(item_id)
                if address not in self.slots[kind]:
                    self.slots[kind][address] = None  # computed by `_recompute_slots`
                    self._slots_changed = True
        if any(people.get(k) for k in DIGESTS):
            self._people_of[item_id] = tuple(  # type: ignore[assignment]
                tuple(sys.intern(a) for a in sorted(people.get(k, ()))) for k in DIGESTS)
        else:
            self._people_of.pop(item_id, None)

    def refresh(self, item: Mapping[str, Any], now: datetime) -> None:
        """An item changed (or was planned): its next level moment and its people, recorded in
        the store with the change (not committed)."""
        item_id = str(item["id"])
        at = planner.next_level_due(item, now, self.rules, self.cal)
        self._set_level(item_id, at)
        self.store.set_due(item_id, at)
        people = planner.people_of(item)
        for kind in DIGESTS:
            newcomers = [a for a in people.get(kind, ()) if a not in self.items_of[kind]]
            if newcomers:
                joined = baseline.readers([item], kind, now, {})
                for address in newcomers:
                    self._meet(kind, address, joined.get(address, now), now)
        self._set_people(item_id, people)
        if self._slots_changed:
            self._recompute_slots(now)

    def _meet(self, kind: str, address: str, joined: datetime, now: datetime) -> None:
        """`address` starts getting this digest (joined at `joined`): its memory says a last
        digest at the slot before that, unless it already says later (`baseline.last_slot`)."""
        cadence = self.rules.digest if kind == "digest" else self.rules.owner_digest
        if cadence.every == "off" or self.store.readonly:
            return
        seeded = baseline.last_slot(cadence, min(self.cal.local(joined), now), self.cal)
        done = self.done[kind].get(address)
        if done is not None and done >= seeded.isoformat():
            return
        self.done[kind][address] = seeded.isoformat()
        self.store.put_schedule_entry(kind, address, {"done": seeded.isoformat()})
        if address in self.slots[kind]:
            self.slots[kind][address] = None
            self._slots_changed = True

    def forget(self, item_id: str) -> None:
        """The item left the live store (archived)."""
        self.levels.pop(item_id, None)
        self._set_people(item_id, {})

    def ran(self, state: Mapping[str, Any], now: datetime) -> None:
        """A run planned with this memory: the digest readers' next slots follow from it."""
        for kind in DIGESTS:
            for address, entry in state.get(kind, {}).items():
                self.done[kind][address] = (entry or {}).get("done")
        for kind in DIGESTS:
            for address in self.slots[kind]:
                self.slots[kind][address] = None
        self._recompute_slots(now)

    def _recompute_slots(self, now: datetime) -> None:
        cadences = {"digest": self.rules.digest, "owner_digest": self.rules.owner_digest}
        soonest: datetime | None = None
        for kind in DIGESTS:
            slots = self.slots[kind]
            for address, moment in slots.items():
                if moment is None:
                    moment = slots[address] = planner.next_digest_at(
                        cadences[kind], self.done[kind].get(address), now, self.cal)
                if moment is not None and (soonest is None or moment < soonest):
                    soonest = moment
        self._next_digest = soonest
        self._slots_changed = False

    # -- questions -----------------------------------------------------------------------------

    def next_at(self) -> datetime | None:
        """The soonest moment anything can be due (None: nothing ever, unless items change)."""
        while self._heap and self.levels.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # stale
        moments = [m for m in (self._heap[0][0] if self._heap else None, self._next_digest)
                   if m is not None]
        return min(moments, default=None)

    def due(self, now: datetime) -> set[str] | None:
        """The items a run at `now` must plan (the due ones, and every item of each person whose
        digest is due), or None when nothing is due: then it costs a comparison."""
        soonest = self.next_at()
        if soonest is None or now < soonest:
            return None
        wanted: set[str] = set()
        heap, stack = self._heap, [0]
        while stack:  # the heap's entries <= now: a walk of its tree, O(entries found)
            i = stack.pop()
            if i < len(heap) and heap[i][0] <= now:
                at, item_id = heap[i]
                if self.levels.get(item_id) == at:
                    wanted.add(item_id)
                stack += (2 * i + 1, 2 * i + 2)
        if self._next_digest is not None and self._next_digest <= now:
            for kind in DIGESTS:
                for address, moment in self.slots[kind].items():
                    if moment is not None and moment <= now:
                        wanted |= self.items_of[kind].get(address, set())
        return wanted


def _summary_people(summary: Mapping[str, Any]) -> dict[str, set[str]]:
    """`planner.people_of` from an item summary (`store.item_summary`)."""
    closed = planner.CLOSED_TASK_STATES
    return {"digest": {str(summary.get("initiator", ""))},
            "owner_digest": {str(owner) for _id, state, owner, *_ in summary.get("tasks", ())
                             if state not in closed}}


Enqueue = Callable[[Planned, datetime], list[Outgoing]]


@dataclass
class ScheduleRun:
    """One run at `now` over `item_ids` (see the module doc). `enqueue(planned, now)` renders
    and queues one email (the service's); `sent(emails)` is called after each slice's commit."""

    store: Store
    rules: ScheduleRules
    cal: WorkCalendar
    people: Directory
    now: datetime
    item_ids: list[str]
    enqueue: Enqueue
    sent: Callable[[list[Outgoing]], None] = lambda emails: None
    # Called with each item before it is planned: may change and store it (a recurring task's
    # occurrences due now, with their emails; see closeloop.create_occurrences), returning the
    # item as changed, or None when it did not change it.
    prepare: Callable[[dict[str, Any], datetime], dict[str, Any] | None] | None = None
    index: DueIndex | None = None
    slice_emails: int = 40
    queued: list[Outgoing] = field(default_factory=list)
    planned_items: int = 0
    state: dict[str, Any] = field(default_factory=dict)
    done: bool = False

    def steps(self) -> Iterator[None]:
        items = []
        for n, item_id in enumerate(self.item_ids, 1):
            item = self.store.get_item(item_id)
            if item is not None and self.prepare is not None:
                item = self.prepare(item, self.now) or item
            if item is not None:
                items.append(item)
            if n % 300 == 0:
                yield
        self.planned_items = len(items)
        state = self.store.schedule_state()
        yield
        planned, self.state = yield from planner.plan_steps(
            items, self.now, self.rules, self.cal, self.people, state)
        del items
        for start in range(0, len(planned), self.slice_emails):
            emails: list[Outgoing] = []
            for n, entry in enumerate(planned[start:start + self.slice_emails], 1):
                emails += self._enqueue_one(entry)
                if n % 2 == 0:  # 8 emails took 50-80 ms on two loaded cores: one step too long
                    yield  # intake may commit here: each email is whole with its records
            self.queued += emails
            self.store.commit()
            self.sent(emails)
            yield
        self.store.put_schedule_state(self.state)
        if self.index is not None:  # what was planned is due again when?
            for n, item_id in enumerate(self.item_ids, 1):
                item = self.store.get_item(item_id)
                if item is not None:
                    self.index.refresh(item, self.now)
                if n % 100 == 0:
                    yield
            self.index.ran(self.state, self.now)
        self.store.commit()
        if planned:
            log.info("event=schedules planned=%d queued=%d items=%d", len(planned),
                     len(self.queued), self.planned_items)
        self.done = True

    def _enqueue_one(self, entry: Planned) -> list[Outgoing]:
        """One planned email, what it records (the levels on their tasks, its readers' digest
        memory) and its queueing, written together (not committed)."""
        touched: dict[str, dict[str, Any]] = {}
        stamp = self.now.isoformat()
        for kind, who, key in entry.records:
            if kind in DIGESTS:
                self.store.put_schedule_entry(kind, who, self.state[kind][who])
                continue
            item = touched.get(kind) or self.store.get_item(kind)
            if item is None:
                continue
            touched[kind] = item
            target = next((t for t in item["tasks"] if t["id"] == who), item) if who else item
            target.setdefault("sent", {})[key] = stamp
        for item in touched.values():
            self.store.put_item(item)
        return self.enqueue(entry, self.now)

    def run_all(self) -> list[Outgoing]:
        for _step in self.steps():
            pass
        return self.queued
