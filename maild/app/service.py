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
import json
import logging
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import schedule

from maild.adapters import archive
from maild.adapters.chatqueue import ChatQueue, MemoryChatQueue
from maild.adapters.files import publish, write_pending
from maild.adapters.imap import CONNECTION_ERRORS, HeaderOnly, ImapInbox, ImapSettings, Inbox
from maild.adapters.oauth import token_sources
from maild.adapters.outbox import DrainReport, Outbox, SmtpSettings
from maild.adapters.sender import SenderOptions, SenderProcess
from maild.adapters.sentjournal import SentJournal
from maild.adapters.store import Store, open_store
from maild.app import dirsync
from maild.app.migrate import configured_store
from maild.app.scheduling import DueIndex, ScheduleRun
from maild.app.service_schedule import ScheduleSide
from maild.core import (
    admission,
    answers,
    calgaps,
    chat,
    directory,
    fileeffects,
    intake,
    outcomes,
    planner,
    replies,
    tokens,
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
from maild.core.config import Config, resolve_password
from maild.core.filechatconfig import resolve_robot
from maild.core.forms import FormRules, load_form_rules
from maild.core.initiatorbuttons import split_ref
from maild.core.model import FileAttachment, Inbound, Notice, Outgoing
from maild.core.people import Directory
from maild.core.signin import SignInError
from maild.core.workcal import WorkCalendar, load_calendar
from maild.mail.decode import DecodeError, attachment_files, decode
from maild.mail.record import RecordRenderer
from maild.mail.render import Renderer, to_mime
from maild.mail.workbooks import load_sheet_words

log = logging.getLogger("maild.service")

# An owner's deliverable is forwarded to the initiator up to this size (more is named, not sent):
# with base64 a 10 MB hand-in makes a ~14 MB email, under the common 20–25 MB server limits.
FORWARD_MAX_BYTES = 10 * 2**20
SENT_JOURNAL = "sent.journal"  # in data_dir: each SMTP 250 as it comes (sentjournal.py)
CRASHPOINTS = ("after_fetch", "after_parse", "mid_db_write", "after_commit", "after_outbox_write",
               "after_smtp_250", "before_move")


def notice_addresses(secret: bytes, inbox: str, notice: Notice, recipient: str, day: date,
                     message_id: str) -> tuple[str | None, dict[str, str],
                                               dict[str, dict[str, str]]]:
    """The reply addresses of one email, signed for `recipient` with the email's nonce: its
    plain reply address, its buttons' action-bound addresses, and for a schedule email that
    lists tasks with buttons (`planner.actionable`) each task's own reply and button addresses,
    so a reply or a button reaches that task (or that item, for a `ref` without a task: 结项,
    a receipt's 撤销). Only what is shown is signed: a run can list 30,000 tasks."""
    nonce = tokens.nonce_for(message_id)
    addresses: dict[str, str] = {}
    if notice.item_id:
        addresses = tokens.action_addresses(secret, inbox, notice.item_id, notice.task_id,
                                            recipient, day, message_id, nonce=nonce)
    per_task: dict[str, dict[str, str]] = {}
    for entry in planner.actionable(notice.context):
        item_id, task_id = split_ref(entry["ref"])
        # A status button asks a question: it uses the task's reply address.
        shown = ("reply", *(a for a in entry["actions"] if a != "status"))
        per_task[entry["ref"]] = tokens.action_addresses(secret, inbox, item_id, task_id,
                                                         recipient, day, message_id, shown,
                                                         nonce=nonce)
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
    def load(cls, rules_dir: Path, timezone: str = "Asia/Shanghai",
             people_file: Path | None = None) -> Rules:
        """The rules in `rules_dir`; the people are the synced directory (`people_file`, when it
        exists) with rules/people.toml laid over it (`directory.merge`)."""
        def read(name: str) -> dict[str, Any]:
            path = rules_dir / name
            return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        schedules = read("schedules.toml")
        people = read("people.toml")
        if people_file is not None and people_file.exists():
            synced = directory.decode(people_file.read_bytes(), str(people_file))
            people = {"person": directory.merge(synced.people, people.get("person", []))}
        return cls(form_rules=load_form_rules(read("forms.toml")),
                   people=Directory.from_toml(people),
                   workflow=read("workflow.toml"),
                   schedules=planner.load_schedule_rules(schedules),
                   calendar=load_calendar(schedules, timezone))

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        return cls.load(config.rules_dir, config.timezone, config.directory.file)


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


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, size) of `path`, None when it does not exist: has it changed?"""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def make_renderer(config: Config) -> Renderer:
    """The renderer for `config`: where the server has no plus addressing, reply tokens ride in
    subject tags."""
    return Renderer(config.templates_dir, timezone=config.timezone,
                    inbox_address=config.inbox_address, from_name=config.from_name,
                    subject_tokens=not config.plus_addressing)


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
        self._calendar_checked_on: date | None = None  # the day of the last gap warning check
        self.environ: Mapping[str, str] = os.environ  # for the directory's password
        self._people_stamp = _file_stamp(config.directory.file)
        self._directory_next: datetime | None = None  # a failed sync's retry; None: the slot
        self._directory_last: datetime | None = None  # the last sync or attempt
        self._directory_known = False  # _directory_last read from the file yet
        self._due_index: DueIndex | None = None
        self.schedule_run: ScheduleRun | None = None  # a run in progress
        self.slicing = False  # `run()` carries out schedule runs between batches, in slices
        self._housekeeping_at: datetime | None = None
        self.record_renderer = RecordRenderer(config.templates_dir / "archive")
        self.sheet_words = load_sheet_words(config.templates_dir / "sheets.toml")
        self.chat: ChatQueue | MemoryChatQueue = MemoryChatQueue()  # [chat] robots: from_config
        self.fold_sent_journal()

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

    # -- wiring ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None,
                    clock: Callable[[], datetime] | None = None) -> Service:
        environ = dict(os.environ if environ is None else environ)
        secret = load_secret(config, environ)
        store = open_store(configured_store(config), inbox=config.inbox_address, wait=True)
        rules = Rules.from_config(config)
        renderer = make_renderer(config)
        imap_password = resolve_password(config.imap, environ, _run_password_command)
        smtp_password = resolve_password(config.smtp, environ, _run_password_command)
        # OAuth2 (XOAUTH2) sign-in: token sources read the wall clock for expiry
        oauth = token_sources(config, environ, _run_password_command, time.time)
        holder: dict[str, Service] = {}
        inbox = ImapInbox(ImapSettings(
            host=config.imap.host, port=config.imap.port, security=config.imap.security,
            username=config.imap.username, password=imap_password,
            folders=(config.processed_folder, config.quarantine_folder),
            idle_renew_s=config.idle_renew_s, poll_interval_s=config.poll_interval_s,
            oauth=oauth.get("imap"),
        ), on_contact=lambda: holder["service"]._contact() if "service" in holder else None)
        smtp_user = config.smtp.username if not config.embedded else ""
        outbox = Outbox(store, SmtpSettings(host=config.smtp.host, port=config.smtp.port,
                                            security=config.smtp.security, username=smtp_user,
                                            password=smtp_password,
                                            auth="oauth2" if "smtp" in oauth else "password"),
                        envelope_from=config.inbox_address,
                        build_mime=lambda out: to_mime(out, from_address=config.inbox_address,
                                                       from_name=config.from_name),
                        max_attempts=config.outbox_max_attempts,
                        backoff_initial_s=config.outbox_backoff_initial_s,
                        backoff_max_s=config.outbox_backoff_max_s, oauth=oauth.get("smtp"),
                        journal=SentJournal(config.data_dir / SENT_JOURNAL))
        crash = frozenset(p for p in environ.get("MAILD_CRASH_AT", "").split(",") if p)
        sender = SenderProcess(SenderOptions(
            outbox.settings, envelope_from=config.inbox_address,
            max_attempts=config.outbox_max_attempts,
            backoff_initial_s=config.outbox_backoff_initial_s,
            backoff_max_s=config.outbox_backoff_max_s, crashpoints=crash,
            journal_path=config.data_dir / SENT_JOURNAL),
            oauth=oauth.get("smtp"))
        service = cls(config, inbox=inbox, store=store, outbox=outbox, renderer=renderer,
                      rules=rules, secret=secret, clock=clock, crashpoints=crash, sender=sender)
        service.environ = environ
        chat = config.files_chat.chat
        if chat.robots:  # webhook addresses and secrets: from variables or commands, now
            service.chat = ChatQueue(config.data_dir / "chat",
                                     [resolve_robot(robot, environ) for robot in chat.robots], chat)
        holder["service"] = service
        return service

    def _contact(self) -> None:
        self.last_contact = self.clock()

    def close(self) -> None:
        try:
            if self._sending:
                self._settle_sending()
                self.store.commit()
                self._sent_marks_committed()
        finally:
            if self.sender is not None:
                self.sender.close()
            self._fsync_pool.shutdown(wait=True)
        self.inbox.close()
        try:
            self._loop.run_until_complete(self.outbox.close())  # the SMTP connection kept open
        finally:
            self._loop.close()
        if self.outbox.journal is not None:
            self.outbox.journal.close()
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
            self.due_index.refresh(item, now)
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
            new_dirs = [d for d in (path.parent.parent, path.parent) if not d.exists()]
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
            # decoded one at a time as they are spooled: the batch's emails are never all in
            # memory at once
            entries = (entry for entry in map(self.store.outbox_entry, due) if entry is not None)
            try:
                self.sender.submit(entries, now, spool=self._spool_path,
                                   build_mime=self.outbox.build_mime)
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

    def tick(self) -> None:
        """Periodic work: a schedule run when something is due (planned from the due index:
        nothing is read when nothing is due), retries that came due, hourly housekeeping,
        `status` facts."""
        now = self.clock()
        if self._calendar_checked_on != now.date():
            self.warn_calendar_gap(now.date())
        self.directory_tick(now)
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
            rules = Rules.from_config(self.config)
            renderer = make_renderer(self.config)
            sheet_words = load_sheet_words(self.config.templates_dir / "sheets.toml")
        except Exception as exc:  # a broken edit must not take the daemon down: keep the old ones
            log.error("event=reload_failed error=%r", exc)
            return
        self.rules, self.renderer, self.sheet_words = rules, renderer, sheet_words
        self._due_index = None  # rebuilt at next use; recomputed if what is due when changed
        self.warn_calendar_gap(self.clock().date())
        log.info("event=reloaded rules_dir=%s templates_dir=%s", self.config.rules_dir,
                 self.config.templates_dir)

    def directory_tick(self, now: datetime) -> None:
        """The daily directory sync when its slot has come (`[directory] sync_at`; a failed one
        is tried again an hour later), then a reload of the rules when the synced file changed
        (synced here, or by `maild directory sync` next to the daemon)."""
        cfg = self.config.directory
        if cfg.source and cfg.sync_at is not None:
            if not self._directory_known:
                self._directory_known = True
                try:
                    synced = dirsync.load_synced(cfg.file)
                    if synced and synced.synced_at:
                        self._directory_last = datetime.fromisoformat(synced.synced_at)
                except (OSError, ValueError):
                    pass  # an unreadable file: the sync replaces it
            due = (now >= self._directory_next if self._directory_next is not None
                   else dirsync.sync_due(cfg.sync_at, self._directory_last, now))
            if due:
                self._directory_last, self._directory_next = now, None
                try:
                    result = dirsync.sync(self.config, now, self.environ)
                    log.info("event=directory_sync source=%s people=%d changes=%d problems=%d "
                             "written=%s refused=%r", result.source, result.people,
                             len(result.changes), len(result.problems), result.written,
                             result.refused)
                except Exception as exc:  # never fatal: the last synced file stays in use
                    self._directory_next = now + timedelta(hours=1)
                    log.error("event=directory_sync_failed error=%r", exc)
        stamp = _file_stamp(cfg.file)
        if stamp != self._people_stamp:
            self._people_stamp = stamp
            self._reload()

    def warn_calendar_gap(self, today: date, loud: bool = False) -> str | None:
        """Warn when no holiday source vouches for one of the next 90 days (start-up, reload,
        each new day): one log line, and with `loud` the full warning with the table to add on
        stderr. Returns the full warning, or None."""
        self._calendar_checked_on = today
        rules_file = self.config.rules_dir / "schedules.toml"
        line = calgaps.log_fields(self.rules.calendar, today, rules_file=str(rules_file))
        if line is None:
            return None
        log.warning(line)
        text = calgaps.warning(self.rules.calendar, today, rules_file=str(rules_file),
                               after_line=calgaps.insert_after(rules_file.read_text("utf-8"))
                               if rules_file.exists() else None)
        if loud and text:
            print(text, file=sys.stderr, flush=True)
        return text

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        log.info("event=started inbox=%s data_dir=%s", self.config.inbox_address,
                 self.config.data_dir)
        self.warn_calendar_gap(self.clock().date(), loud=True)
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
            except SignInError as exc:
                # No token, or the server refused a fresh one: wait (growing to 5 minutes) and
                # try again; the operator fixes the permission or runs `maild oauth login`.
                self.store.rollback()
                delay = self._outage_backoff.next()
                log.error("event=signin_failed retry_in_s=%.0f reason=%s", delay,
                          json.dumps(str(exc), ensure_ascii=False))
                self.stop_event.wait(delay)
                continue
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
