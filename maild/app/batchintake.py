"""The service's intake side: one batch of inbound emails fetched, decided (decode, classify,
the pure workflow), and its effects committed with the processed marks in one store commit
(a mixin of `Service`, which wires everything and owns the clock).

Surprises:
- An email is marked processed only in the commit that holds its effects; a crash before that
  commit means the batch is fetched again and handled from scratch.
- Every outgoing email is rendered here and queued in the store's outbox in the same commit
  (`_enqueue`); nothing is sent from this module (`sending.py` does that).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from maild.adapters import archive
from maild.adapters.files import make_folder, publish, write_pending
from maild.adapters.imap import HeaderOnly
from maild.app.wiring import FORWARD_MAX_BYTES, BatchReport, notice_addresses
from maild.core import (
    admission,
    answers,
    chat,
    fileeffects,
    intake,
    outcomes,
    replies,
    workflow,
)
from maild.core.admission import UNSOLICITED_TEMPLATES
from maild.core.classify import (
    ClassifyContext,
    DraftReply,
    HelpRequest,
    Ignore,
    NewItem,
    Reply,
    TableFileProblem,
    Unrecognized,
    classify,
    language_of,
    screen,
)
from maild.core.model import FileAttachment, Inbound, Notice, Outgoing
from maild.mail.decode import DecodeError, attachment_files, decode

log = logging.getLogger("maild.service")  # the daemon's one logger


class BatchIntake:
    # -- contexts for the pure core -------------------------------------------------------
    def classify_context(self) -> ClassifyContext:
        return ClassifyContext(
            inbox_address=self.config.inbox_address, secret=self.secret,
            allowed_domains=self.config.allowed_domains, form_rules=self.rules.form_rules,
            lookup_message=self.store.lookup_message,
            authserv_id=self.config.authserv_id,
            require_authentication=self.config.require_authentication,
            trust_authentication_results=self.config.trust_authentication_results,
            trust_exchange_internal=self.config.trust_exchange_internal,
            today=self.clock().date(),
            item_exists=self.store.has_item,
            sheet_words=self.sheet_words, file_limits=self.config.files_chat.limits)

    def workflow_context(self) -> outcomes.WorkflowContext:
        flow = self.rules.workflow
        return outcomes.WorkflowContext(
            inbox_address=self.config.inbox_address, secret=self.secret,
            people=self.rules.people, form_rules=self.rules.form_rules,
            admins=self.config.admins, workday_end=self.config.workday_end,
            buffer_days=float(flow.get("buffer", {}).get("days", 1.0)),
            require_token=self.config.require_token,
            workdays=self.rules.calendar.is_workday,
            draft_days=float(flow.get("drafts", {}).get("days", 7.0)),
            allowed_domains=self.config.allowed_domains,
            external_owners=self.config.external_owners,
            acceptance=self.config.acceptance, calendar=self.rules.calendar)

    # -- one batch ----------------------------------------------------------------------------
    def process_batch(self) -> BatchReport:
        report = BatchReport()
        batch = self.inbox.fetch_new(self.config.batch_size,
                                     max_bytes=self.config.max_message_bytes,
                                     max_header_bytes=self.config.max_header_bytes)
        report.fetched = len(batch)
        if batch:
            self._crash("after_fetch")
        now = self.clock()
        moves: dict[str, list[int]] = {}
        cctx, wctx = self.classify_context(), self.workflow_context()
        closed: list[str] = []
        for uid, raw in batch:
            folder, outcome = self._handle(raw, now, cctx, wctx)
            # One line per email that leaves INBOX, whatever became of it.
            log.info(admission.log_line(
                "inbound", uid=uid, message_id=outcome.get("message_id"),
                sender=outcome.get("from", ""), size=getattr(raw, "size", len(raw)),
                folder=folder, reason=outcome.get("reason", ""),
                **({"collision": "true"} if outcome.get("collision") else {})))
            if outcome.get("command") in ("close", "withdraw"):
                closed.append(outcome["item"])
            moves.setdefault(folder, []).append(uid)
            report.outcomes.append(outcome)
            if folder == self.config.quarantine_folder:
                report.quarantined += 1
            else:
                report.processed += 1
        if batch:
            self._crash("after_parse")
            self._sync_originals()
        # the previous full batch's (or a schedule slice's) emails, sent meanwhile: waited for
        # when this batch needs the sender, or when no schedule run is being sliced
        settled = self._settle_sending(wait=len(batch) >= self.config.batch_size
                                       or not self._run_in_slices)
        if batch or settled.sent or settled.failed:
            self.store.commit()
            self._sent_marks_committed()
        if batch:
            self._crash("after_commit")
            self._crash("after_outbox_write")  # the commit holds the batch's outbox entries
            self.archive_closed(closed)
        if self.sender is not None and len(batch) >= self.config.batch_size:
            # More is probably waiting: send this batch's emails while the next one is
            # handled. Its emails leave INBOX now, before theirs are sent; a crash meanwhile
            # re-sends them at the next start (same Message-IDs), as after any crash between
            # a server's 250 and the commit that records it.
            self._crash("before_move")
            for folder, uids in moves.items():
                self.inbox.move(uids, folder)
            sent, failed = self._send_in_background()
            report.sent, report.failed = sent + len(settled.sent), failed + len(settled.failed)
            return report
        sent, failed = self.drain()
        report.sent, report.failed = sent + len(settled.sent), failed + len(settled.failed)
        if batch:
            self._crash("before_move")
        for folder, uids in moves.items():
            self.inbox.move(uids, folder)
        return report

    def _handle(self, raw: bytes, now: datetime, cctx: ClassifyContext,
                wctx: outcomes.WorkflowContext) -> tuple[str, dict[str, Any]]:
        try:
            msg = decode(raw, max_bytes=self.config.max_message_bytes,
                         max_header_bytes=self.config.max_header_bytes,
                         max_table_bytes=self.config.files_chat.limits.max_bytes)
        except DecodeError as exc:
            message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            return self._record(message_id, self.config.quarantine_folder,
                                f"undecodable: {exc.reason}", now, {})
        except Exception as exc:  # a decoder bug must not block the queue: keep the email
            log.exception("event=decode_failed")
            message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            return self._record(message_id, self.config.quarantine_folder,
                                f"undecodable: internal error {exc!r}"[:300], now, {})
        content = admission.fingerprint(raw, msg)
        key, seen = msg.message_id, {"from": msg.from_addr, "content": content}
        done = self.store.processed(key)
        if done and not admission.same_email(done, content):
            # Another email under a Message-ID seen before: handled under its own key.
            key = admission.collision_key(msg.message_id, content)
            seen["collision"] = True
            done = self.store.processed(key)
        if done:
            return done.get("folder", self.config.processed_folder), {
                "message_id": msg.message_id, "reason": "duplicate", "duplicate": True, **seen}
        if isinstance(raw, HeaderOnly):
            outcome = self._oversize(msg, raw.size, cctx)
        else:
            try:
                outcome = self._decide(msg, now, cctx, wctx)
            except Exception as exc:  # one bad email must not stop the queue: keep it
                log.exception("event=handle_failed message_id=%s", msg.message_id)
                outcome = outcomes.Outcome("quarantine", f"internal error: {exc!r}"[:300],
                                           notices=self._answer_once(msg, cctx, "internal_error"))
        touched = {item["id"] for item in outcome.items} | {link[1] for link in outcome.links}
        for item_id in sorted(touched):
            self._keep_original(item_id, msg, raw, key)
        for item in outcome.items:
            self.store.put_item(item)
            self._due_index_at(now).refresh(item, now)
        for draft in outcome.drafts:  # readings waiting for their initiator (drafts.py)
            self.store.meta_set("draft:" + draft["id"], draft)
        for message_id, item_id, task_id in outcome.links:
            self.store.link_message(message_id, item_id, task_id)
        self._enqueue(outcome.notices, source=key, now=now, answering=msg.from_addr,
                      raw=raw)
        folder = (self.config.quarantine_folder if outcome.disposition == "quarantine"
                  else self.config.processed_folder)
        return self._record(key, folder, outcome.reason, now,
                            {**seen, **outcome.summary, "message_id": msg.message_id})

    def _oversize(self, msg: Inbound, size: int, cctx: ClassifyContext) -> outcomes.Outcome:
        """An email over the cap, read from its header alone: kept unread, nothing changes; a
        trustworthy sender is told once."""
        reason = f"too large: {size} bytes (limit {self.config.max_message_bytes})"
        return outcomes.Outcome("quarantine", reason, notices=self._answer_once(
            msg, cctx, "too_large", size=size, limit=self.config.max_message_bytes))

    def _answer_once(self, msg: Inbound, cctx: ClassifyContext, problem: str,
                     **sizes: int) -> tuple[Notice, ...]:
        """The one `not_handled` answer to the sender of an email kept unhandled, when the loop
        and trust checks let the sender through (none to bounces, auto-replies, outsiders)."""
        try:
            if not msg.from_addr or screen(msg, cctx) is not None:
                return ()
        except Exception:  # the checks failing too: keep quiet
            log.exception("event=screen_failed message_id=%s", msg.message_id)
            return ()
        language = language_of(msg.subject, msg.text)
        return (admission.not_handled(msg, problem, language, **sizes),)

    def archive_closed(self, item_ids: list[str] | None = None) -> list[Path]:
        """Move closed items out of the live database into the archive (idempotent).

        Order matters for crashes: the archive folder is complete before the item leaves the
        live database; a crash in between leaves a closed item that the next call finishes.
        """
        written = []
        if item_ids is None:  # at start: whatever a crash left closed but not archived
            item_ids = self.store.closed_item_ids()
        candidates = [i for i in map(self.store.get_item, item_ids)
                      if i and i.get("state") == "closed"]
        for item in candidates:
            closed_at = datetime.fromisoformat(item["closed_at"])
            emails = [(path.name, path.read_bytes())
                      for path in sorted(self.mail_dir(item["id"]).glob("*.eml"))]
            people = {p.address: p.name for p in self.rules.people.people}
            table = fileeffects.record_table(item, self.sheet_words, self.rules.form_rules,
                                             closed_at, self.config.timezone, people)
            folder = archive.write_archive(self.config.archive_dir, item, emails,
                                           closed_at=closed_at, tz=self.config.timezone,
                                           renderer=self.record_renderer, people_names=people,
                                           extra_files=[table])
            self.store.remove_item(item["id"])
            if self._due_index is not None:
                self._due_index.forget(item["id"])
            self.store.commit()
            shutil.rmtree(self.mail_dir(item["id"]), ignore_errors=True)
            log.info("event=archived item=%s folder=%s", item["id"], folder)
            written.append(folder)
        return written

    def mail_dir(self, item_id: str) -> Path:
        return self.config.data_dir / "mail" / item_id

    def _keep_original(self, item_id: str, msg: Inbound, raw: bytes, key: str) -> None:
        """The inbound email as received, for the item's archive (durable before the commit);
        `key` is its intake key (a collision's differs from its Message-ID)."""
        stamp = msg.date.astimezone(self.config.tz).strftime("%Y%m%d-%H%M%S-") if msg.date else ""
        name = stamp + hashlib.sha256(key.encode()).hexdigest()[:12] + ".eml"
        path = self.mail_dir(item_id) / name
        if not path.exists():
            new_dirs = make_folder(path.parent)
            self._pending_originals.append((write_pending(path, raw), path))
            self._unsynced_dirs.update([path.parent, *(d.parent for d in new_dirs)])

    def _sync_originals(self) -> None:
        """Make the batch's originals durable before the commit that refers to them: their
        fsyncs run together (`files.publish`), then one fsync per touched folder."""
        publish(self._pending_originals, self._unsynced_dirs, self._fsync_pool)
        self._pending_originals.clear()
        self._unsynced_dirs.clear()

    def _record(self, key: str, folder: str, reason: str, now: datetime,
                summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Mark the email processed under `key` (its Message-ID, or a collision's own key),
        with its content fingerprint when known."""
        mark = {"folder": folder, "reason": reason, "at": now.isoformat()}
        if summary.get("content"):
            mark["content"] = summary["content"]
        self.store.mark_processed(key, mark)
        return folder, {"message_id": key, "folder": folder, "reason": reason, **summary}

    def _decide(self, msg: Inbound, now: datetime, cctx: ClassifyContext,
                wctx: outcomes.WorkflowContext) -> outcomes.Outcome:
        decision = classify(msg, cctx)
        if isinstance(decision, Ignore):
            if decision.kind == "bounce" and msg.failed_recipients:
                return workflow.owners_unreachable(msg, msg.failed_recipients,
                                                   self.store.open_items(), wctx, now)
            return outcomes.Outcome("processed", f"ignored {decision.kind}: {decision.reason}")
        if isinstance(decision, NewItem | DraftReply):
            first = self.store.peek_item_id()
            if isinstance(decision, NewItem):
                outcome = intake.start_item(msg, decision, first, wctx, now)
            else:
                draft = self.store.meta_get("draft:" + decision.draft_id)
                outcome = intake.answer_draft(msg, decision, draft, first, wctx, now)
            for _ in intake.next_ids(first, len(outcome.items)):  # one email, several items
                self.store.next_item_id()
            if isinstance(decision, NewItem) and decision.file is not None:
                # the sender's file back, its problems marked
                outcome = fileeffects.mark_file(outcome, decision.file, self.sheet_words, now)
            return outcome
        if isinstance(decision, TableFileProblem):
            return fileeffects.file_problem(msg, decision, wctx, self.sheet_words, now)
        if isinstance(decision, Reply):
            item = self.store.get_item(decision.item_id)
            return replies.handle_reply(msg, decision, item, wctx, now)
        if isinstance(decision, HelpRequest):
            return answers.help_reply(msg, decision.language, wctx)
        assert isinstance(decision, Unrecognized)
        return answers.unrecognized_reply(msg, decision.language, decision.reason, wctx,
                                         decision.form)

    def _enqueue(self, notices: tuple[Notice, ...] | list[Notice], *, source: str,
                 now: datetime, answering: str = "", raw: bytes | None = None
                 ) -> list[Outgoing]:
        """Render and queue `notices`; `answering` is the sender of the email they answer (its
        answers to them count against the per-correspondent caps); the files of `raw`, the email
        being handled, go along with a notice that asks for them (an owner's deliverable)."""
        queued = []
        wctx = self.workflow_context()
        for index, notice in enumerate(notices):
            if raw is not None and notice.context.get("forward_attachments"):
                # the files of the email being handled go along (an owner's deliverable)
                files = attachment_files(raw, FORWARD_MAX_BYTES)
                notice = replace(notice, context={**notice.context, "forwarded": files is not None},
                                 attachments=tuple(FileAttachment(name, ctype, data)
                                                   for name, ctype, data in files or ()))
            recipient = notice.to[0] if notice.to else ""
            if recipient and not workflow.may_own(recipient, wctx):
                log.warning("event=recipient_refused to=%s template=%s", recipient,
                            notice.template)  # mail goes only inside, or to declared owners
                continue
            answer = (bool(answering) and recipient == answering
                      and notice.template not in admission.UNCAPPED_ANSWERS)
            if not self._allow_reply(recipient, notice.template, now, answer=answer):
                log.warning("event=reply_rate_limited to=%s template=%s", recipient,
                            notice.template)
                continue
            digest = hashlib.sha256(f"{source}|{index}|{notice.template}|{recipient}".encode())
            message_id = f"maild.{digest.hexdigest()[:24]}@{self.config.domain}"
            reply_address, addresses, task_addresses = None, {}, {}
            if recipient:
                reply_address, addresses, task_addresses = notice_addresses(
                    self.secret, self.config.inbox_address, notice, recipient, now.date(),
                    message_id)
            reader = self.rules.people.by_address(recipient)
            if reader is not None and reader.timezone:
                notice = Notice(**{**notice.__dict__,
                                   "context": {**notice.context, "reader_timezone": reader.timezone}})
            if not notice.attachments:
                notice = replace(notice, attachments=fileeffects.attachments_for(
                    notice, self._file_facts(notice, reply_address, now)))
            out = self.renderer.render(notice, message_id=message_id, date=now,
                                       reply_address=reply_address, action_addresses=addresses,
                                       task_addresses=task_addresses)
            self.store.enqueue(out, now=now)
            for number, alert in enumerate(chat.alerts_for(notice, self.config.files_chat.chat)):
                self.chat.put(f"{message_id.partition('@')[0]}-{number}", alert, now)
            if notice.item_id:
                self.store.link_message(message_id, notice.item_id, notice.task_id)
            elif notice.context.get("draft_id"):  # a reply to it answers the draft
                self.store.link_message(message_id, notice.context["draft_id"], None)
            queued.append(out)
        return queued

    def _file_facts(self, notice: Notice, reply_address: str | None,
                    now: datetime) -> fileeffects.FileFacts:
        digest_items: list[dict[str, Any]] = []
        if notice.template == "digest" and self.config.files_chat.attach_table:
            found = (self.store.get_item(p.get("id", "")) for p in notice.context.get(
                "projects", ()) or ())
            digest_items = [item for item in found if item]
        return fileeffects.FileFacts(
            words=self.sheet_words, now=now, tz=self.config.timezone,
            inbox_address=self.config.inbox_address, from_name=self.config.from_name,
            workday_end=self.config.workday_end, reply_address=reply_address or "",
            attach_table=self.config.files_chat.attach_table, digest_items=digest_items,
            # names for the tables' audit sheets: only when a digest carries tables
            people={p.address: p.name for p in self.rules.people.people} if digest_items else {},
            form_rules=self.rules.form_rules)

    def _allow_reply(self, recipient: str, template: str, now: datetime, *, answer: bool) -> bool:
        """The per-correspondent caps: unsolicited answers per hour, every answer to their own
        email per 24 hours (see admission.py). Counts the email when it may go."""
        hourly = f"replies:{recipient}"
        daily = f"answers:{recipient}"
        unsolicited = template in UNSOLICITED_TEMPLATES
        hour = admission.recent(self.store.meta_get(hourly, []), now, timedelta(hours=1)) \
            if unsolicited else []
        day = admission.recent(self.store.meta_get(daily, []), now, timedelta(days=1)) \
            if answer else []
        if len(hour) >= self.config.replies_per_sender_per_hour or \
                len(day) >= self.config.replies_per_sender_per_day:
            return False
        if unsolicited:
            self.store.meta_set(hourly, hour + [now.isoformat()])
        if answer:
            self.store.meta_set(daily, day + [now.isoformat()])
        return True
