"""The daemon: wires inbox, core, store and outbox together, and is the only place that reads the clock.

One batch goes: fetch what waits in INBOX → decode, classify, apply the workflow (pure) → store
items, message links, rendered emails and the processed mark in ONE atomic commit → send what the
outbox holds → move the batch's emails out of INBOX. A crash before the commit means the emails
are fetched again and handled from scratch; after it, they are found processed (by Message-ID)
and only moved. A full batch (more is likely waiting) is moved right after its commit and its
emails are sent by the sender's child process (`sender.py`) while the next batch is handled;
their outcomes are recorded and committed with that next batch. `schedule` triggers periodic
work; what is due is decided from stored timestamps.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import threading
import tomllib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import schedule

from . import archive, intake, planner, tokens, workflow
from .classify import ClassifyContext, HelpRequest, Ignore, NewItem, Reply, Unrecognized, classify
from .config import Config, resolve_password
from .decode import DecodeError, decode
from .files import publish, write_pending
from .forms import FormRules, load_form_rules
from .imap import CONNECTION_ERRORS, ImapInbox, ImapSettings, Inbox
from .migrate import configured_store
from .model import Inbound, Notice, Outgoing
from .outbox import DrainReport, Outbox, SmtpSettings
from .people import Directory
from .record import RecordRenderer
from .render import Renderer, to_mime
from .scheduling import DueIndex, ScheduleRun
from .sender import SenderOptions, SenderProcess
from .service_schedule import ScheduleSide
from .store import Store, open_store
from .workcal import WorkCalendar, load_calendar

log = logging.getLogger("maild.service")

# Replies to a sender that are not about a task they own; these are rate-limited per sender.
UNSOLICITED_TEMPLATES = frozenset({"validation_error", "templates", "not_understood", "refused"})
CRASHPOINTS = ("after_fetch", "after_parse", "mid_db_write", "after_commit", "after_outbox_write",
               "after_smtp_250", "before_move")


def notice_addresses(secret: bytes, inbox: str, notice: Notice, recipient: str, day: date,
                     message_id: str) -> tuple[str | None, dict[str, str],
                                               dict[str, dict[str, str]]]:
    """The reply addresses of one email, signed for `recipient` with the email's nonce: its
    plain reply address, its buttons' action-bound addresses, and for a schedule email that
    lists tasks with buttons (`planner.actionable`) each task's own reply and button addresses,
    so a reply or a button reaches that task. Only what is shown is signed: a run can list
    30,000 tasks."""
    addresses: dict[str, str] = {}
    if notice.item_id:
        addresses = tokens.action_addresses(secret, inbox, notice.item_id, notice.task_id,
                                            recipient, day, message_id)
    per_task: dict[str, dict[str, str]] = {}
    for entry in planner.actionable(notice.context):
        item_id, task_id = entry["ref"].split("/")
        # A status button asks a question: it uses the task's reply address.
        shown = ("reply", *(a for a in entry["actions"] if a != "status"))
        per_task[entry["ref"]] = tokens.action_addresses(secret, inbox, item_id, task_id,
                                                         recipient, day, message_id, shown)
    return addresses.pop("reply", None), addresses, per_task


@dataclass(frozen=True)
class Rules:
    """Everything under `rules/`, parsed and validated: forms, people, workflow, schedules."""

    form_rules: FormRules
    people: Directory
    workflow: Mapping[str, Any]
    schedules: planner.ScheduleRules
    calendar: WorkCalendar

    @classmethod
    def load(cls, rules_dir: Path, timezone: str = "Asia/Shanghai") -> Rules:
        def read(name: str) -> dict[str, Any]:
            path = rules_dir / name
            return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        schedules = read("schedules.toml")
        return cls(form_rules=load_form_rules(read("forms.toml")),
                   people=Directory.from_toml(read("people.toml")),
                   workflow=read("workflow.toml"),
                   schedules=planner.load_schedule_rules(schedules),
                   calendar=load_calendar(schedules, timezone))


@dataclass
class BatchReport:
    fetched: int = 0
    processed: int = 0
    quarantined: int = 0
    sent: int = 0
    failed: int = 0
    outcomes: list[dict[str, Any]] = field(default_factory=list)


def load_secret(config: Config, environ: Mapping[str, str]) -> bytes:
    """The HMAC key: from the environment, else a 0600 file created on first start."""
    if environ.get(config.secret_env):
        return environ[config.secret_env].encode()
    path = config.secret_file
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
    return path.read_text().strip().encode()


def _run_password_command(command: str) -> str:
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True,
                          timeout=30).stdout


class _Backoff:
    """Exponential backoff with jitter for a loop that waits out outages."""

    def __init__(self, initial_s: float = 1.0, max_s: float = 300.0) -> None:
        self.initial_s, self.max_s, self.failures = initial_s, max_s, 0
        self._rng = random.Random()

    def next(self) -> float:
        self.failures += 1
        return min(self.max_s, self.initial_s * 2 ** (self.failures - 1)) * self._rng.uniform(0.5, 1)

    def reset(self) -> None:
        self.failures = 0


class Service(ScheduleSide):
    def __init__(self, config: Config, *, inbox: Inbox, store: Store, outbox: Outbox,
                 renderer: Renderer, rules: Rules, secret: bytes,
                 clock: Callable[[], datetime] | None = None,
                 crashpoints: frozenset[str] = frozenset(),
                 sender: SenderProcess | None = None) -> None:
        self.config = config
        self.inbox = inbox
        self.store = store
        self.outbox = outbox
        self.renderer = renderer
        self.rules = rules
        self.secret = secret
        self.clock = clock or (lambda: datetime.now(config.tz))
        self.crashpoints = crashpoints
        if crashpoints:  # tests (MAILD_CRASH_AT): the store and outbox kill at theirs too
            store.set_crash_hook(self._crash)
            outbox.crash_hook = self._crash
        self.stop_event = threading.Event()
        self._outage_backoff = _Backoff()
        self._reload_requested = threading.Event()
        self.scheduler = schedule.Scheduler()
        self.scheduler.every(30).seconds.do(self.tick)
        self._loop = asyncio.new_event_loop()
        # A full batch's emails go out from the sender's child process while the next batch is
        # handled (`_send_in_background`); one send at a time, settled before anything else sends.
        self.sender = sender
        self._sending = False
        self._in_flight: frozenset[str] = frozenset()  # Message-IDs the child is sending
        self._run_ids: set[str] = set()
        # Originals written since the commit, not yet synced: (temp file, final name), and
        # the folders whose entries must be synced too.
        self._pending_originals: list[tuple[Path, Path]] = []
        self._unsynced_dirs: set[Path] = set()
        self._fsync_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="maild-fsync")
        self.last_contact: datetime | None = None
        self._due_index: DueIndex | None = None
        self.schedule_run: ScheduleRun | None = None  # a run in progress
        self.slicing = False  # `run()` carries out schedule runs between batches, in slices
        self._housekeeping_at: datetime | None = None
        self.record_renderer = RecordRenderer(config.templates_dir / "archive")

    # -- wiring ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None,
                    clock: Callable[[], datetime] | None = None) -> Service:
        environ = dict(os.environ if environ is None else environ)
        secret = load_secret(config, environ)
        store = open_store(configured_store(config), inbox=config.inbox_address, wait=True)
        rules = Rules.load(config.rules_dir, config.timezone)
        renderer = Renderer(config.templates_dir, timezone=config.timezone,
                            inbox_address=config.inbox_address, from_name=config.from_name)
        imap_password = resolve_password(config.imap, environ, _run_password_command)
        smtp_password = resolve_password(config.smtp, environ, _run_password_command)
        holder: dict[str, Service] = {}
        inbox = ImapInbox(ImapSettings(
            host=config.imap.host, port=config.imap.port, security=config.imap.security,
            username=config.imap.username, password=imap_password,
            folders=(config.processed_folder, config.quarantine_folder),
            idle_renew_s=config.idle_renew_s, poll_interval_s=config.poll_interval_s,
        ), on_contact=lambda: holder["service"]._contact() if "service" in holder else None)
        smtp_user = config.smtp.username if not config.embedded else ""
        outbox = Outbox(store, SmtpSettings(host=config.smtp.host, port=config.smtp.port,
                                            security=config.smtp.security, username=smtp_user,
                                            password=smtp_password),
                        envelope_from=config.inbox_address,
                        build_mime=lambda out: to_mime(out, from_address=config.inbox_address,
                                                       from_name=config.from_name),
                        max_attempts=config.outbox_max_attempts,
                        backoff_initial_s=config.outbox_backoff_initial_s,
                        backoff_max_s=config.outbox_backoff_max_s)
        crash = frozenset(p for p in environ.get("MAILD_CRASH_AT", "").split(",") if p)
        sender = SenderProcess(SenderOptions(
            outbox.settings, envelope_from=config.inbox_address,
            max_attempts=config.outbox_max_attempts,
            backoff_initial_s=config.outbox_backoff_initial_s,
            backoff_max_s=config.outbox_backoff_max_s, crashpoints=crash))
        service = cls(config, inbox=inbox, store=store, outbox=outbox, renderer=renderer,
                      rules=rules, secret=secret, clock=clock, crashpoints=crash, sender=sender)
        holder["service"] = service
        return service

    def _contact(self) -> None:
        self.last_contact = self.clock()

    def close(self) -> None:
        try:
            if self._sending:
                self._settle_sending()
                self.store.commit()
        finally:
            if self.sender is not None:
                self.sender.close()
            self._fsync_pool.shutdown(wait=True)
        self.inbox.close()
        try:
            self._loop.run_until_complete(self.outbox.close())  # the SMTP connection kept open
        finally:
            self._loop.close()
        self.store.close()

    def _crash(self, point: str) -> None:
        if point in self.crashpoints:
            log.warning("event=crashpoint point=%s", point)
            os.kill(os.getpid(), signal.SIGKILL)

    # -- contexts for the pure core -------------------------------------------------------
    def classify_context(self) -> ClassifyContext:
        return ClassifyContext(
            inbox_address=self.config.inbox_address, secret=self.secret,
            allowed_domains=self.config.allowed_domains, form_rules=self.rules.form_rules,
            lookup_message=self.store.lookup_message,
            authserv_id=self.config.authserv_id,
            require_authentication=self.config.require_authentication,
            today=self.clock().date(),
            item_exists=self.store.has_item)

    def workflow_context(self) -> workflow.WorkflowContext:
        flow = self.rules.workflow
        return workflow.WorkflowContext(
            inbox_address=self.config.inbox_address, secret=self.secret,
            people=self.rules.people, form_rules=self.rules.form_rules,
            admins=self.config.admins, workday_end=self.config.workday_end,
            buffer_days=float(flow.get("buffer", {}).get("days", 1.0)),
            require_token=self.config.require_token)

    # -- one batch ----------------------------------------------------------------------------
    def process_batch(self) -> BatchReport:
        report = BatchReport()
        batch = self.inbox.fetch_new(self.config.batch_size)
        report.fetched = len(batch)
        if batch:
            self._crash("after_fetch")
        now = self.clock()
        moves: dict[str, list[int]] = {}
        cctx, wctx = self.classify_context(), self.workflow_context()
        closed: list[str] = []
        for uid, raw in batch:
            folder, outcome = self._handle(raw, now, cctx, wctx)
            if outcome.get("command") == "close":
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
                wctx: workflow.WorkflowContext) -> tuple[str, dict[str, Any]]:
        try:
            msg = decode(raw, max_bytes=self.config.max_message_bytes,
                         max_header_bytes=self.config.max_header_bytes)
        except DecodeError as exc:
            message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            return self._record(message_id, self.config.quarantine_folder,
                                f"undecodable: {exc.reason}", now, {})
        except Exception as exc:  # a decoder bug must not block the queue: keep the email
            log.exception("event=decode_failed")
            message_id = "sha256:" + hashlib.sha256(raw).hexdigest()
            return self._record(message_id, self.config.quarantine_folder,
                                f"undecodable: internal error {exc!r}"[:300], now, {})
        done = self.store.processed(msg.message_id)
        if done:
            return done.get("folder", self.config.processed_folder), {
                "message_id": msg.message_id, "reason": "duplicate", "duplicate": True}
        try:
            outcome = self._decide(msg, now, cctx, wctx)
        except Exception as exc:  # one bad email must not stop the queue; keep it for a person
            log.exception("event=handle_failed message_id=%s", msg.message_id)
            return self._record(msg.message_id, self.config.quarantine_folder,
                                f"internal error: {exc!r}"[:300], now, {})
        touched = {item["id"] for item in outcome.items} | {link[1] for link in outcome.links}
        for item_id in sorted(touched):
            self._keep_original(item_id, msg, raw)
        for item in outcome.items:
            self.store.put_item(item)
            self.due_index.refresh(item, now)
        for message_id, item_id, task_id in outcome.links:
            self.store.link_message(message_id, item_id, task_id)
        self._enqueue(outcome.notices, source=msg.message_id, now=now)
        folder = (self.config.quarantine_folder if outcome.disposition == "quarantine"
                  else self.config.processed_folder)
        log.info("event=inbound message_id=%s from=%s disposition=%s reason=%r",
                 msg.message_id, msg.from_addr, outcome.disposition, outcome.reason)
        return self._record(msg.message_id, folder, outcome.reason, now, dict(outcome.summary))

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
            folder = archive.write_archive(self.config.archive_dir, item, emails,
                                           closed_at=closed_at, tz=self.config.timezone,
                                           renderer=self.record_renderer, people_names=people)
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

    def _keep_original(self, item_id: str, msg: Inbound, raw: bytes) -> None:
        """The inbound email as received, for the item's archive (durable before the commit)."""
        stamp = msg.date.astimezone(self.config.tz).strftime("%Y%m%d-%H%M%S-") if msg.date else ""
        name = stamp + hashlib.sha256(msg.message_id.encode()).hexdigest()[:12] + ".eml"
        path = self.mail_dir(item_id) / name
        if not path.exists():
            new_dirs = [d for d in (path.parent.parent, path.parent) if not d.exists()]
            self._pending_originals.append((write_pending(path, raw), path))
            self._unsynced_dirs.update([path.parent, *(d.parent for d in new_dirs)])

    def _sync_originals(self) -> None:
        """Make the batch's originals durable before the commit that refers to them: their
        fsyncs run together (`files.publish`), then one fsync per touched folder."""
        publish(self._pending_originals, self._unsynced_dirs, self._fsync_pool)
        self._pending_originals.clear()
        self._unsynced_dirs.clear()

    def _record(self, message_id: str, folder: str, reason: str, now: datetime,
                summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.store.mark_processed(message_id, {"folder": folder, "reason": reason,
                                               "at": now.isoformat()})
        return folder, {"message_id": message_id, "folder": folder, "reason": reason, **summary}

    def _decide(self, msg: Inbound, now: datetime, cctx: ClassifyContext,
                wctx: workflow.WorkflowContext) -> workflow.Outcome:
        decision = classify(msg, cctx)
        if isinstance(decision, Ignore):
            if decision.kind == "bounce" and msg.failed_recipients:
                return workflow.owners_unreachable(msg, msg.failed_recipients,
                                                   self.store.open_items(), wctx, now)
            return workflow.Outcome("processed", f"ignored {decision.kind}: {decision.reason}")
        if isinstance(decision, NewItem):
            outcome = intake.start_item(msg, decision, self.store.peek_item_id(), wctx, now)
            if outcome.items:
                self.store.next_item_id()
            return outcome
        if isinstance(decision, Reply):
            item = self.store.get_item(decision.item_id)
            return workflow.handle_reply(msg, decision, item, wctx, now)
        if isinstance(decision, HelpRequest):
            return intake.help_reply(msg, decision.language, wctx)
        assert isinstance(decision, Unrecognized)
        return intake.unrecognized_reply(msg, decision.language, decision.reason, wctx)

    def _enqueue(self, notices: tuple[Notice, ...] | list[Notice], *, source: str,
                 now: datetime) -> list[Outgoing]:
        queued = []
        for index, notice in enumerate(notices):
            recipient = notice.to[0] if notice.to else ""
            if notice.template in UNSOLICITED_TEMPLATES and not self._allow_reply(recipient, now):
                log.warning("event=reply_rate_limited to=%s template=%s", recipient,
                            notice.template)
                continue
            digest = hashlib.sha256(f"{source}|{index}|{notice.template}|{recipient}".encode())
            message_id = f"maild.{digest.hexdigest()[:24]}@{self.config.domain}"
            reply_address, addresses, task_addresses = None, {}, {}
            if recipient and self.config.plus_addressing:
                reply_address, addresses, task_addresses = notice_addresses(
                    self.secret, self.config.inbox_address, notice, recipient, now.date(),
                    message_id)
            reader = self.rules.people.by_address(recipient)
            if reader is not None and reader.timezone:
                notice = Notice(**{**notice.__dict__,
                                   "context": {**notice.context, "reader_timezone": reader.timezone}})
            out = self.renderer.render(notice, message_id=message_id, date=now,
                                       reply_address=reply_address, action_addresses=addresses,
                                       task_addresses=task_addresses)
            self.store.enqueue(out, now=now)
            if notice.item_id:
                self.store.link_message(message_id, notice.item_id, notice.task_id)
            queued.append(out)
        return queued

    def _allow_reply(self, recipient: str, now: datetime) -> bool:
        key = f"replies:{recipient}"
        cutoff = now - timedelta(hours=1)
        recent = [t for t in self.store.meta_get(key, []) if datetime.fromisoformat(t) > cutoff]
        if len(recent) >= self.config.replies_per_sender_per_hour:
            return False
        self.store.meta_set(key, recent + [now.isoformat()])
        return True

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
            if not told:
                break
        return sent, failed

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
            # decoded one at a time as they are spooled: the batch's emails are never all in
            # memory at once
            entries = (entry for entry in map(self.store.outbox_entry, due) if entry is not None)
            try:
                self.sender.submit(entries, now, spool=self._spool_path,
                                   build_mime=self.outbox.build_mime)
            except (OSError, EOFError) as exc:  # no spool, or no child: send them from here
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

    def tick(self) -> None:
        """Periodic work: a schedule run when something is due (planned from the due index:
        nothing is read when nothing is due), retries that came due, hourly housekeeping,
        `status` facts."""
        now = self.clock()
        if self.schedule_run is None:
            self.schedule_run = self.start_schedule_run(now)
            if self.schedule_run is not None:
                self._run_steps = self.schedule_run.steps()
                if self.slicing and self.sender is not None:
                    self.sender.warm()  # the run's slices go out from it
        if self.schedule_run is not None and not self.slicing:
            self.run_schedules(now)
        if self._housekeeping_at is None or not (
                timedelta(0) <= now - self._housekeeping_at < timedelta(hours=1)):
            self._housekeeping_at = now
            self.store.prune_outbox(now)
            self.store.prune_processed(now)  # intake marks older than 30 days
        if self.last_contact is not None:
            self.store.meta_set("last_imap_contact", self.last_contact.isoformat())
        self.store.meta_set("next_runs", {
            "tick": (now + timedelta(seconds=max(0.0, self.scheduler.idle_seconds or 0))).isoformat(),
        })
        self.store.commit()
        if not self.slicing or self.schedule_run is None:
            self.drain()

    def request_reload(self) -> None:
        """Ask the loop to re-read rules and templates at its next turn (SIGHUP)."""
        self._reload_requested.set()

    def _reload(self) -> None:
        self._reload_requested.clear()
        try:
            rules = Rules.load(self.config.rules_dir, self.config.timezone)
            renderer = Renderer(self.config.templates_dir, timezone=self.config.timezone,
                                inbox_address=self.config.inbox_address,
                                from_name=self.config.from_name)
        except Exception as exc:  # a broken edit must not take the daemon down: keep the old ones
            log.error("event=reload_failed error=%r", exc)
            return
        self.rules, self.renderer = rules, renderer
        self._due_index = None  # rebuilt at next use; recomputed if what is due when changed
        log.info("event=reloaded rules_dir=%s templates_dir=%s", self.config.rules_dir,
                 self.config.templates_dir)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        log.info("event=started inbox=%s data_dir=%s", self.config.inbox_address,
                 self.config.data_dir)
        self.slicing = True
        archive.clean_partial(self.config.archive_dir)
        self.archive_closed()  # what a previous run closed but did not archive
        self.drain()  # what a previous run committed but did not send
        while not self.stop_event.is_set():
            if self._reload_requested.is_set():
                self._reload()
            try:
                report = self.process_batch()
                if report.fetched:
                    log.info("event=batch fetched=%d processed=%d quarantined=%d sent=%d "
                             "failed=%d", report.fetched, report.processed, report.quarantined,
                             report.sent, report.failed)
                    continue
                self.scheduler.run_pending()
                if self.schedule_run is not None:
                    self.run_slice()  # then back to the inbox: intake waits one slice at most
                    continue
                self.inbox.wait(self._wait_seconds(), self._should_wake)
            except CONNECTION_ERRORS as exc:
                # A mail server outage is waited out, never fatal; the inbox backs off itself.
                # Uncommitted work of the batch is dropped and redone from INBOX next turn.
                self.store.rollback()
                log.warning("event=loop_error error=%r", exc)
                self.stop_event.wait(self._outage_backoff.next())
                continue
            self._outage_backoff.reset()
        log.info("event=stopped")

    def _should_wake(self) -> bool:
        return self.stop_event.is_set() or self._reload_requested.is_set()

    def _wait_seconds(self) -> float:
        waits = [self.config.idle_renew_s]
        idle = self.scheduler.idle_seconds
        if idle is not None:
            waits.append(max(0.0, idle))
        due = self.store.outbox_next_due()
        if due is not None:
            waits.append(max(0.0, (due - self.clock()).total_seconds()))
        return max(0.05, min(waits))
