"""What the daemon is wired from, read once at start (and on reload): the rules files, the
secret that signs reply tokens, the template renderer, and who a notice is addressed to.

Used by `service` and by the commands that render or plan without running the daemon
(`reports`, `dirsync`, `checks`, the demos), so none of them needs to import `service`.
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from maild.adapters.files import fsync_dir, write_pending
from maild.core import (
    directory,
    planner,
    tokens,
)
from maild.core.config import Config
from maild.core.forms import FormRules, load_form_rules
from maild.core.initiatorbuttons import split_ref
from maild.core.model import Notice
from maild.core.people import Directory
from maild.core.workcal import WorkCalendar, load_calendar
from maild.mail.render import Renderer
from maild.mail.templatecache import default_cache_root

# An owner's deliverable is forwarded to the initiator up to this size (more is named, not sent):
# with base64 a 10 MB hand-in makes a ~14 MB email, under the common 20–25 MB server limits.
FORWARD_MAX_BYTES = 10 * 2**20


SENT_JOURNAL = "sent.journal"  # in data_dir: each SMTP 250 as it comes (sentjournal.py)


CRASHPOINTS = ("after_fetch", "after_parse", "mid_db_write", "after_commit", "after_outbox_write",
               "after_smtp_250", "before_move")


def notice_addresses(secret: bytes, inbox: str, notice: Notice, recipient: str, day: date,
                     message_id: str) -> tuple[str | None, Mapping[str, str],
                                               dict[str, Mapping[str, str]]]:
    """The reply addresses of one email, signed for `recipient` with the email's nonce: its
    plain reply address, its buttons' action-bound addresses, and for a schedule email that
    lists tasks with buttons (`planner.actionable`) each task's own reply and button addresses,
    so a reply or a button reaches that task (or that item, for a `ref` without a task: 结项,
    a receipt's 撤销). Only what is shown is signed: a run can list 30,000 tasks."""
    nonce = tokens.nonce_for(message_id)
    addresses: Mapping[str, str] = {}
    reply = None
    if notice.item_id:  # each signed when its button is drawn (`tokens.SignedAddresses`)
        addresses = tokens.action_addresses(secret, inbox, notice.item_id, notice.task_id,
                                            recipient, day, message_id, nonce=nonce)
        reply = addresses["reply"]
    per_task: dict[str, Mapping[str, str]] = {}
    for entry in planner.actionable(notice.context):
        item_id, task_id = split_ref(entry["ref"])
        # A status button asks a question: it uses the task's reply address.
        shown = ("reply", *(a for a in entry["actions"] if a != "status"))
        per_task[entry["ref"]] = tokens.action_addresses(secret, inbox, item_id, task_id,
                                                         recipient, day, message_id, shown,
                                                         nonce=nonce)
    return reply, addresses, per_task


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
        # Written whole in a 0600 temp file, then linked into place: a crash never leaves an
        # empty key behind, and of two first starts the first link wins (EEXIST: use theirs).
        tmp = write_pending(path, secrets.token_hex(32).encode())
        try:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            fsync_dir(path.parent)
        finally:
            os.unlink(tmp)
    return path.read_text().strip().encode()


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, size) of `path`, None when it does not exist: has it changed?"""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_mtime_ns, found.st_size


def make_renderer(config: Config, environ: Mapping[str, str] | None = None) -> Renderer:
    """The renderer for `config`: where the server has no plus addressing, reply tokens ride in
    subject tags. With `environ`, the compiled templates are kept in the user's cache directory
    between starts (templatecache.py: half of start-up is compiling them)."""
    return Renderer(config.templates_dir, timezone=config.timezone,
                    inbox_address=config.inbox_address, from_name=config.from_name,
                    subject_tokens=not config.plus_addressing,
                    cache_dir=None if environ is None else default_cache_root(environ))


def run_command(command: str) -> str:
    """A secret's command (password_command, secret_command, webhook_command …): its output."""
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True,
                          timeout=30).stdout


class Backoff:
    """Exponential backoff with jitter for a loop that waits out outages."""

    def __init__(self, initial_s: float = 1.0, max_s: float = 300.0) -> None:
        self.initial_s, self.max_s, self.failures = initial_s, max_s, 0
        self._rng = random.Random()

    def next(self) -> float:
        self.failures += 1
        return min(self.max_s, self.initial_s * 2 ** (self.failures - 1)) * self._rng.uniform(0.5, 1)

    def reset(self) -> None:
        self.failures = 0
