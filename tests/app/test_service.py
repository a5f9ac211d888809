"""The service's batch loop over real IMAP and SMTP (the embedded mail system): a full batch's
emails are sent on the sender thread while the next batch is handled, and nothing is lost,
repeated or left unsent when the backlog ends, when the service closes, or after a restart."""

from __future__ import annotations

from datetime import datetime

import pytest
from conversation import TZ, Conversation, FakeClock, make_config

from maild.adapters.store import Store

pytestmark = pytest.mark.integration

INITIATOR = "li.na@corp.example"
OWNER = "zhao.lei@corp.example"


def _task_email(n: int) -> str:
    return (f"Task: Customer report {n}\nInitiator: Li Na / Marketing\nOwner: Zhao Lei\n"
            f"Deadline: Aug 20\nDeliverable: PDF report {n}\n")


def _batches_of_3(embedded_mail, tmp_path, store_url: str = "") -> Conversation:
    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    config = make_config(embedded_mail, tmp_path / "var",
                         **{"mail.batch_size": 3, "store.url": store_url})
    convo = Conversation(embedded_mail, config, clock)
    convo.inbox(INITIATOR), convo.inbox(OWNER)  # what earlier tests of the module left
    return convo


@pytest.fixture
def batches_of_3(embedded_mail, tmp_path, store_backend):
    """Batches of 3, the state in the embedded store or in PostgreSQL."""
    url = store_backend if store_backend.startswith("postgresql://") else ""
    convo = _batches_of_3(embedded_mail, tmp_path, url)
    yield convo
    convo.close()


def _send(convo: Conversation, count: int) -> None:
    for n in range(count):
        convo.say(INITIATOR, f"[Task] Customer report {n}", _task_email(n))


@pytest.mark.parametrize("emails", [7, 6], ids=["backlog-ends-in-a-part-batch",
                                                "backlog-ends-on-a-full-batch"])
def test_full_batches_are_sent_while_the_next_is_handled(batches_of_3, emails):
    convo = batches_of_3
    processed_before = len(convo.folder(convo.config.inbox_address, "Processed"))
    _send(convo, emails)
    reports = []
    while True:
        report = convo.service.process_batch()
        reports.append((report.fetched, report.sent))
        if not report.fetched and not report.sent:
            break
    # each email brings a receipt and a confirmation request: 2 sent per email; a full
    # batch's 6 are counted by the call that settles them, which is the next one
    expected = {7: [(3, 0), (3, 6), (1, 6 + 2), (0, 0)],
                6: [(3, 0), (3, 6), (0, 6), (0, 0)]}[emails]
    assert reports == expected
    assert len(convo.inbox(INITIATOR)) == emails  # receipts
    assert len(convo.inbox(OWNER)) == emails  # confirmation requests
    assert not convo.folder(convo.config.inbox_address)
    processed = len(convo.folder(convo.config.inbox_address, "Processed"))
    assert processed - processed_before == emails
    assert {e.status for e in convo.service.store.outbox_entries()} == {"sent"}


def test_closing_with_a_send_in_flight_records_it(embedded_mail, tmp_path):
    convo = _batches_of_3(embedded_mail, tmp_path)
    _send(convo, 3)
    assert convo.service.process_batch().fetched == 3  # full: its 6 emails go out meanwhile
    convo.close()
    assert len(convo.inbox(INITIATOR)) == 3 and len(convo.inbox(OWNER)) == 3
    store = Store(tmp_path / "var")
    try:
        assert [e.status for e in store.outbox_entries()] == ["sent"] * 6
    finally:
        store.close()
    # a restart finds nothing to send again and nothing to handle
    again = Conversation(convo.mail, convo.config, convo.clock)
    try:
        report = again.service.process_batch()
        assert (report.fetched, report.sent) == (0, 0)
        assert again.service.drain() == (0, 0)
    finally:
        again.close()
    assert not convo.inbox(INITIATOR) and not convo.inbox(OWNER)


def test_without_a_spool_a_full_batch_is_sent_from_the_daemon(batches_of_3):
    """If the sender cannot be used (here: the spool path is taken by a folder), the batch's
    emails go out from the daemon itself, before `process_batch` returns."""
    convo = batches_of_3
    (convo.config.data_dir / "outbox.spool").mkdir(parents=True)
    _send(convo, 3)
    report = convo.service.process_batch()
    assert (report.fetched, report.sent) == (3, 6)
    assert len(convo.inbox(INITIATOR)) == 3 and len(convo.inbox(OWNER)) == 3
    assert {e.status for e in convo.service.store.outbox_entries()} == {"sent"}
    assert convo.service.sender.pid is None  # no child was left running
