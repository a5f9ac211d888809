"""Faults between maild and its mail servers: nothing lost, nothing processed twice.

The real Service talks to the mail system through `FaultProxy`s (one for IMAP, one for SMTP);
people send and read directly. SMTP: an outage, a 550 for an owner, a server that never answers,
a connection dropped after DATA. IMAP: connections cut at random during fetch, cut or ended with
BYE during IDLE, an IDLE that silently stalls, a mailbox recreated with a new UIDVALIDITY.
The clock is fake, so retry backoffs are skipped by advancing it.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import random
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from conftest import MAIL_SYSTEMS, make_mail_system
from conversation import TZ, Conversation, FakeClock, make_config, text_of
from faultproxy import FaultProxy

from maild.adapters.imap import ImapInbox

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[1] / "data"
OWNERS = ("wang.zhe@corp.example", "zhao.lei@corp.example", "chen.jing@corp.example")
INITIATOR = "li.na@corp.example"
INBOX = "collab@corp.example"


def project(n: int) -> bytes:
    """The Q3 project email with its own Message-ID."""
    raw = (DATA / "new_project_zh.eml").read_bytes()
    return raw.replace(b"A1B2C3", f"FAULT{n:04d}".encode())


@dataclasses.dataclass
class Rig:
    system: object
    imap: FaultProxy
    smtp: FaultProxy
    convo: Conversation

    def send_projects(self, numbers) -> None:
        for n in numbers:
            self.convo.send_raw(INITIATOR, [INBOX], project(n))

    def process_through_faults(self, tries: int = 12) -> None:
        """Run batches as the daemon would, surviving errors the faults cause, until INBOX is
        empty."""
        for _ in range(tries):
            try:
                self.convo.process(rounds=10)
            except Exception:  # noqa: BLE001 - the fault may surface; the next round retries
                continue
            if not self.convo.folder(INBOX):
                return
        raise AssertionError("INBOX not emptied through the faults")

    def later(self, **delta: float) -> None:
        self.convo.clock.advance(**delta)
        self.convo.service.tick()

    def message_ids(self, address: str) -> list[str]:
        return [str(m["Message-ID"]) for m in self.convo.folder(address)]


@pytest.fixture
def rig(request, shipped_config, tmp_path):
    kind = getattr(request, "param", "embedded")
    emb = shipped_config.embedded_system
    system = make_mail_system(kind, dict(emb.accounts), emb.host)
    imap = FaultProxy((system.host, system.imap_port))
    smtp = FaultProxy((system.host, system.smtp_port))
    # A Saturday: no digests or reminders are due, so only the emails under test are sent.
    clock = FakeClock(datetime(2026, 8, 1, 10, 0, tzinfo=TZ))
    config = make_config(system, tmp_path / "var", **{"embedded.imap_port": imap.port,
                                                      "embedded.smtp_port": smtp.port})
    convo = Conversation(system, config, clock)
    try:
        yield Rig(system, imap, smtp, convo)
    finally:
        convo.close()
        imap.close()
        smtp.close()
        getattr(system, "remove", system.stop)()


def assert_each_exactly_once(rig: Rig, projects: int) -> None:
    store = rig.convo.service.store
    assert len(store.open_items()) == projects
    for address in (INITIATOR, *OWNERS):
        ids = rig.message_ids(address)
        assert len(set(ids)) == projects, address
    entries = store.outbox_entries()
    assert len(entries) == 4 * projects
    assert {e.status for e in entries} == {"sent"}


# -- SMTP ---------------------------------------------------------------------------------------

def test_smtp_outage_queues_everything_and_delivers_it_after_recovery(rig):
    rig.smtp.refuse()
    rig.send_projects(range(3))
    rig.process_through_faults()
    assert all(rig.convo.folder(a) == [] for a in (INITIATOR, *OWNERS))
    entries = rig.convo.service.store.outbox_entries()
    assert len(entries) == 12 and all(e.status == "queued" and e.attempts >= 1 for e in entries)
    rig.later(minutes=1)  # still down: one more try each, nothing sent
    assert all(rig.convo.folder(a) == [] for a in (INITIATOR, *OWNERS))
    rig.smtp.restore()
    rig.later(hours=1)
    assert_each_exactly_once(rig, 3)
    for address in (INITIATOR, *OWNERS):
        assert len(rig.convo.folder(address)) == 3  # no duplicates either


def test_owner_refused_with_550_fails_and_the_initiator_is_told_once(rig):
    sample = email.message_from_bytes(project(1), policy=email.policy.default)
    body = sample.get_content().replace("王喆", "ghost@corp.example")
    rig.convo.say(INITIATOR, str(sample["Subject"]), body)
    rig.process_through_faults()
    store = rig.convo.service.store
    failed = [e for e in store.outbox_entries() if e.status == "failed"]
    assert [e.out.to for e in failed] == [("ghost@corp.example",)]
    assert failed[0].code == 550
    rig.later(hours=2)
    rig.later(days=1)
    receipt, *told = rig.convo.folder(INITIATOR)  # the receipt, then the failure notice
    assert len(told) == 1 and "ghost@corp.example" in text_of(told[0])
    assert "550" in text_of(told[0])
    for owner in OWNERS[1:]:
        assert len(rig.convo.folder(owner)) == 1


def test_smtp_server_that_never_answers_times_out_and_is_retried(rig):
    rig.convo.service.outbox.settings = dataclasses.replace(rig.convo.service.outbox.settings,
                                                            timeout_s=0.5)
    rig.smtp.blackhole = True
    rig.send_projects([1])
    started = time.monotonic()
    rig.process_through_faults()
    assert time.monotonic() - started < 10
    assert all(rig.convo.folder(a) == [] for a in (INITIATOR, *OWNERS))
    rig.smtp.blackhole = False
    rig.smtp.drop_all()
    rig.later(hours=1)
    assert_each_exactly_once(rig, 1)


def test_connection_dropped_after_data_is_retried_with_the_same_message_id(rig):
    rig.smtp.drop_after_data = True
    rig.send_projects([1])
    rig.process_through_faults()
    rig.later(hours=1)
    assert_each_exactly_once(rig, 1)
    # At-least-once: the email whose 250 was lost may arrive twice, but with one Message-ID.
    copies = sum(len(rig.message_ids(a)) for a in (INITIATOR, *OWNERS))
    assert copies in (4, 5)


# -- IMAP ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [1, 2, 3], ids=["seed1", "seed2", "seed3"])
def test_connections_cut_at_random_during_fetch_lose_nothing(rig, seed):
    rng = random.Random(seed)
    rig.send_projects(range(4))
    rig.imap.drop_s2c_after = [rng.randrange(50, 9_000) for _ in range(4)]
    rig.process_through_faults()
    rig.later(hours=1)  # whatever a cut left pending in the outbox
    assert_each_exactly_once(rig, 4)
    assert len(rig.convo.folder(INBOX, "Processed")) == 4
    assert rig.imap.connections >= 2


def _wait_in_thread(inbox: ImapInbox, timeout_s: float):
    stop = threading.Event()
    result: dict[str, float] = {}

    def run() -> None:
        started = time.monotonic()
        inbox.wait(timeout_s, stop.is_set)
        result["took"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, stop, result


@pytest.mark.parametrize("inject", [b"", b"* BYE Server shutting down\r\n"], ids=["cut", "bye"])
def test_idle_cut_or_bye_wakes_the_waiter_and_the_next_fetch_reconnects(rig, inject):
    inbox = rig.convo.service.inbox
    assert isinstance(inbox, ImapInbox)
    inbox.fetch_new(10)
    thread, stop, result = _wait_in_thread(inbox, 30)
    time.sleep(0.5)
    assert rig.imap.drop_all(inject) >= 1
    thread.join(timeout=10)
    stop.set()
    assert "took" in result and result["took"] < 5
    rig.send_projects([1])
    rig.process_through_faults()
    assert_each_exactly_once(rig, 1)


def test_silently_stalled_idle_is_given_up_after_renew_plus_timeout(rig):
    old = rig.convo.service.inbox
    inbox = ImapInbox(dataclasses.replace(old.settings, idle_renew_s=1.0, timeout_s=1.0),
                      rng=random.Random(7))
    try:
        inbox.fetch_new(10)
        rig.imap.stall = True
        started = time.monotonic()
        inbox.wait(30, lambda: False)
        took = time.monotonic() - started
        assert took < 6, took  # renew (1 s) + DONE unanswered (1 s) + one backoff
        rig.imap.stall = False
        rig.send_projects([1])
        found = inbox.fetch_new(10)
        assert len(found) == 1
    finally:
        inbox.close()


@pytest.mark.parametrize("rig", MAIL_SYSTEMS, ids=MAIL_SYSTEMS, indirect=True)
def test_mailbox_recreated_with_new_uidvalidity_loses_nothing_and_repeats_nothing(rig):
    rig.send_projects([1, 2])
    rig.process_through_faults()
    before = rig.convo.service.inbox.uidvalidity
    kept = 0
    if hasattr(rig.system, "recreate_inbox"):  # only INBOX is recreated: Processed stays
        kept = len(rig.convo.folder(INBOX, "Processed"))
        rig.system.recreate_inbox(INBOX)
        rig.imap.drop_all()
    else:  # the embedded system keeps mail in memory: a restart is a brand-new mailbox
        rig.system.stop()
        rig.system.start()
        rig.imap.target = (rig.system.host, rig.system.imap_port)
        rig.smtp.target = (rig.system.host, rig.system.smtp_port)
    # One old email comes back (a restore from backup, say) with two new ones.
    rig.send_projects([2, 3, 4])
    rig.process_through_faults()
    assert rig.convo.service.inbox.uidvalidity != before
    store = rig.convo.service.store
    assert len(store.open_items()) == 4
    assert len(store.outbox_entries()) == 16
    assert {e.status for e in store.outbox_entries()} == {"sent"}
    assert len(rig.convo.folder(INBOX, "Processed")) == kept + 3


def test_reconnect_backoff_grows_with_jitter(monkeypatch):
    import maild.adapters.imap as imap_module
    slept: list[float] = []
    monkeypatch.setattr(imap_module.time, "sleep", slept.append)
    settings = imap_module.ImapSettings("127.0.0.1", 1, "plain", "u", "p")
    runs = []
    for seed in (1, 2):
        slept.clear()
        inbox = ImapInbox(settings, rng=random.Random(seed))
        for _ in range(6):
            inbox._drop(OSError("cut"))
        runs.append(list(slept))
    for delays in runs:
        for n, delay in enumerate(delays, start=1):
            base = min(60.0, 0.2 * 2 ** n)
            assert 0.5 * base <= delay <= base
        assert delays[-1] > delays[0] * 8
    assert runs[0] != runs[1]
