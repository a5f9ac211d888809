"""The daemon: wires inbox, core, store and outbox together, and is the only place that reads the clock.

One batch goes: fetch what waits in INBOX → decode, classify, apply the workflow (pure) → store
items, message links, rendered emails and the processed mark in ONE atomic commit → send what the
outbox holds → move the batch's emails out of INBOX. A crash before the commit means the emails
are fetched again and handled from scratch; after it, they are found processed (by Message-ID)
and only moved. A full batch (more is likely waiting) is moved right after its commit and its
emails are sent by the sender's child process (`sender.py`) while the next batch is handled;
their outcomes are recorded and committed with that next batch. `schedule` triggers periodic
work; what is due is decided from stored timestamps.

`Service` is assembled from mixins, one per side: `batchintake.BatchIntake` (a batch decided and
committed), `sending.Sending` (outbox, sender child, sent journal) and
`service_schedule.ScheduleSide` (schedule runs); this module holds the loop, the clock, start
and reload. What it is wired from (rules, secret, renderer) is in `wiring.py`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

import schedule

from maild.adapters import archive
from maild.adapters.chatqueue import ChatQueue, MemoryChatQueue
from maild.adapters.imap import CONNECTION_ERRORS, ImapInbox, ImapSettings, Inbox
from maild.adapters.oauth import token_sources
from maild.adapters.outbox import Outbox, SmtpSettings
from maild.adapters.sender import SenderOptions, SenderProcess
from maild.adapters.sentjournal import SentJournal
from maild.adapters.store import Store, open_store
from maild.app import dirsync
from maild.app.batchintake import BatchIntake
from maild.app.migrate import configured_store
from maild.app.scheduling import DueIndex, ScheduleRun
from maild.app.sending import Sending
from maild.app.service_schedule import ScheduleSide
from maild.app.wiring import (
    SENT_JOURNAL,
    Backoff,
    Rules,
    file_stamp,
    load_secret,
    make_renderer,
    run_command,
)
from maild.core import (
    calgaps,
)
from maild.core.config import Config, resolve_password
from maild.core.filechatconfig import resolve_robot
from maild.core.signin import SignInError
from maild.mail.record import RecordRenderer
from maild.mail.render import Renderer
from maild.mail.templatecache import default_cache_root
from maild.mail.workbooks import load_sheet_words

log = logging.getLogger("maild.service")


class Service(BatchIntake, Sending, ScheduleSide):
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
        self._outage_backoff = Backoff()
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
        self._people_stamp = file_stamp(config.directory.file)
        self._directory_next: datetime | None = None  # a failed sync's retry; None: the slot
        self._directory_last: datetime | None = None  # the last sync or attempt
        self._directory_known = False  # _directory_last read from the file yet
        self._due_index: DueIndex | None = None
        self.schedule_run: ScheduleRun | None = None  # a run in progress
        self.slicing = False  # `run()` carries out schedule runs between batches, in slices
        self._housekeeping_at: datetime | None = None
        self.record_renderer = RecordRenderer(config.templates_dir / "archive",
                                              cache_dir=default_cache_root(self.environ))
        self.sheet_words = load_sheet_words(config.templates_dir / "sheets.toml")
        self.chat: ChatQueue | MemoryChatQueue = MemoryChatQueue()  # [chat] robots: from_config
        self.fold_sent_journal()

    # -- wiring ------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None,
                    clock: Callable[[], datetime] | None = None) -> Service:
        environ = dict(os.environ if environ is None else environ)
        secret = load_secret(config, environ)
        store = open_store(configured_store(config), inbox=config.inbox_address, wait=True)
        rules = Rules.from_config(config)
        renderer = make_renderer(config, environ)
        imap_password = resolve_password(config.imap, environ, run_command)
        smtp_password = resolve_password(config.smtp, environ, run_command)
        # OAuth2 (XOAUTH2) sign-in: token sources read the wall clock for expiry
        oauth = token_sources(config, environ, run_command, time.time)
        holder: dict[str, Service] = {}
        inbox = ImapInbox(ImapSettings(
            host=config.imap.host, port=config.imap.port, security=config.imap.security,
            username=config.imap.username, password=imap_password,
            folders=(config.processed_folder, config.quarantine_folder),
            idle_renew_s=config.idle_renew_s, poll_interval_s=config.poll_interval_s,
            oauth=oauth.get("imap"),
        ), on_contact=lambda: holder["service"]._contact() if "service" in holder else None)
        smtp_user = config.smtp.username if not config.embedded else ""
        crash = frozenset(p for p in environ.get("MAILD_CRASH_AT", "").split(",") if p)
        sending = SenderOptions(
            SmtpSettings(host=config.smtp.host, port=config.smtp.port,
                         security=config.smtp.security, username=smtp_user,
                         password=smtp_password,
                         auth="oauth2" if "smtp" in oauth else "password"),
            envelope_from=config.inbox_address, max_attempts=config.outbox_max_attempts,
            backoff_initial_s=config.outbox_backoff_initial_s,
            backoff_max_s=config.outbox_backoff_max_s, crashpoints=crash,
            journal_path=config.data_dir / SENT_JOURNAL, from_address=config.inbox_address,
            from_name=config.from_name, connections=config.smtp_connections)
        # the daemon's drains and the sender's child build the same bytes (`build_mime`); the
        # daemon's drains (small batches, no child) keep to one connection
        outbox = Outbox(store, sending.settings, envelope_from=sending.envelope_from,
                        build_mime=sending.build_mime, max_attempts=sending.max_attempts,
                        backoff_initial_s=sending.backoff_initial_s,
                        backoff_max_s=sending.backoff_max_s, oauth=oauth.get("smtp"),
                        journal=SentJournal(config.data_dir / SENT_JOURNAL))
        sender = SenderProcess(sending, oauth=oauth.get("smtp"))
        service = cls(config, inbox=inbox, store=store, outbox=outbox, renderer=renderer,
                      rules=rules, secret=secret, clock=clock, crashpoints=crash, sender=sender)
        service.environ = environ
        chat = config.files_chat.chat
        if chat.robots:  # webhook addresses and secrets: from variables or commands, now
            service.chat = ChatQueue(config.data_dir / "chat",
                                     [resolve_robot(robot, environ, run_command)
                                      for robot in chat.robots], chat)
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
            renderer = make_renderer(self.config, self.environ)
            sheet_words = load_sheet_words(self.config.templates_dir / "sheets.toml")
        except Exception as exc:  # a broken edit must not take the daemon down: keep the old ones
            log.error("event=reload_failed error=%r", exc)
            return
        self.rules, self.renderer, self.sheet_words = rules, renderer, sheet_words
        self._refreeze()
        self._due_index = None  # rebuilt at next use; recomputed if what is due when changed
        self.warn_calendar_gap(self.clock().date())
        log.info("event=reloaded rules_dir=%s templates_dir=%s", self.config.rules_dir,
                 self.config.templates_dir)

    @staticmethod
    def _refreeze() -> None:
        """After a reload in the loop: the old rules and templates (frozen at start-up, in
        reference cycles) are collected, and the new ones frozen in their place."""
        if gc.get_freeze_count():
            gc.unfreeze()
            gc.collect()
            gc.freeze()

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
        stamp = file_stamp(cfg.file)
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
        """Serve until `stop_event`. What start-up loaded (the store's indexes, the compiled
        templates, the rules) is moved out of the cyclic collector's sight for the loop's life:
        every full collection walked it and never found garbage there (gen-2 collections of the
        bench's daemon at 50k open items: 10-23 ms, 1-11 ms frozen; `gc.callbacks`). Thawed on
        return, and at each reload (`_refreeze`), so that what a reload replaces is freed."""
        gc.collect()
        gc.freeze()
        try:
            self._serve()
        finally:
            gc.unfreeze()

    def _serve(self) -> None:
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
