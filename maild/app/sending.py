"""The service's sending side: drain the durable outbox over SMTP, hand a full batch's emails
to the sender's child process, and fold the sent journal's 250s back into the store (a mixin
of `Service`).

Surprises: an SMTP 250 is written to the sent journal the moment it arrives and folded into the
store later (`fold_sent_journal`), so a crash between the two never sends an email twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from maild.adapters.sendreport import DrainReport
from maild.core import (
    workflow,
)
from maild.core.signin import SignInError

log = logging.getLogger("maild.service")  # the daemon's one logger


class Sending:
    def fold_sent_journal(self) -> int:
        """Record as sent what the journal says a server accepted (the sends a crash cut off
        before their commit), commit, and empty the journal; how many were folded in."""
        journal = self.outbox.journal
        if journal is None:
            return 0
        folded = 0
        now = self.clock()
        for message_id in journal.read():
            entry = self.store.outbox_entry(message_id)
            if entry is not None and entry.status == "queued":
                self.store.outbox_mark_sent(message_id, now)
                folded += 1
        if folded:
            self.store.commit()
            log.info("event=sent_journal_folded emails=%d", folded)
        journal.clear()
        return folded

    def _sent_marks_committed(self) -> None:
        """The sent marks of every finished send are committed: the journal may forget them
        (not while the sender's child sends: it is writing there)."""
        if self.outbox.journal is not None and not self._sending:
            self.outbox.journal.clear()

    # -- sending ------------------------------------------------------------------------------
    def drain(self) -> tuple[int, int]:
        """Send what is due; tell initiators once about emails refused for good."""
        settled = self._settle_sending(wait=not self._run_in_slices)
        sent, failed = len(settled.sent), len(settled.failed)
        # A schedule slice may still be going out from the sender's child: what intake queued
        # goes out from here meanwhile, all but the emails the child holds.
        busy = ((self._in_flight if self._sending else frozenset())
                | (frozenset(self._run_ids) if self._run_in_slices else frozenset()))
        for _round in range(3):
            now = self.clock()
            report = self._loop.run_until_complete(self.outbox.drain(now, busy))
            sent += len(report.sent)
            failed += len(report.failed)
            told = self._tell_failures(report, now)
            # The sent marks (and any failure notices) are durable before the batch's emails
            # leave INBOX, so a crash after this point re-sends nothing.
            self.store.commit()
            self._sent_marks_committed()
            if not told:
                break
        self.drain_chat()
        return sent, failed

    def drain_chat(self) -> None:
        """Post the group-chat alerts that are due (their own queue, retried apart from mail)."""
        try:
            self.chat.drain(self.clock())
        except OSError as exc:  # a full disk or a vanished folder must not stop the mail
            log.error("event=chat_drain_failed error=%r", exc)

    def _tell_failures(self, report: DrainReport, now: datetime) -> int:
        """Enqueue one `delivery_failed` notice per email refused for good; how many."""
        notices = []
        for out, code, error in report.failed:
            log.warning("event=send_failed message_id=%s to=%s code=%s error=%r",
                        out.message_id, ",".join(out.to), code, error)
            item = self.store.get_item(out.item_id) if out.item_id else None
            if item and out.kind != "delivery_failed":
                notices.append((out, workflow.delivery_failed(
                    item, out.to, out.subject, code, error, self.workflow_context())))
        for out, notice in notices:
            self._enqueue([notice], source=out.message_id, now=now)
        return len(notices)

    @property
    def _spool_path(self) -> Path:
        """Where a detached send's emails wait for the sender's child (rewritten per batch)."""
        return self.config.data_dir / "outbox.spool"

    def _send_in_background(self, limit: int | None = None) -> tuple[int, int]:
        """Hand what is due (at most `limit`) to the sender's child; `_settle_sending` records
        what it did. Without a usable child, send here: (sent, failed) then, else (0, 0)."""
        assert self.sender is not None
        now = self.clock()
        due = self.store.outbox_due_ids(now, limit or self.outbox.max_per_drain)
        self._in_flight = frozenset(due)
        if due:
            # read one at a time as they are spooled, undecoded (the child decodes them and
            # builds their bytes): the batch's emails are never all in memory at once
            documents = ((mid, doc) for mid in due
                         if (doc := self.store.outbox_document(mid)) is not None)
            try:
                self.sender.submit(documents, now, spool=self._spool_path)
            except (OSError, EOFError, SignInError) as exc:  # no spool, child or token: here
                log.warning("event=sender_unavailable error=%r; sending in the daemon", exc)
                self.sender.close()
                return self.drain()
            self._sending = True
        return 0, 0

    @property
    def _run_in_slices(self) -> bool:
        return self.slicing and self.schedule_run is not None

    def _settle_sending(self, wait: bool = True) -> DrainReport:
        """Wait for the child's send, if any (unless not `wait` and it is not done), and record
        its outcomes (not committed). If the child failed, nothing is recorded and its emails
        stay queued for the next drain."""
        if not self._sending or self.sender is None:
            return DrainReport()
        if not wait and not self.sender.ready():
            return DrainReport()
        self._sending = False
        detached = self.sender.result()
        self._spool_path.unlink(missing_ok=True)
        if detached is None:
            return DrainReport()
        report = self.outbox.settle(detached)
        self._tell_failures(report, self.clock())
        return report
