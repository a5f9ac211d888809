"""The values maild's pure core passes around: inbound emails, parsed forms, items, commands, effects.

Everything here is an immutable dataclass or an Enum, so core functions can take and return them
without copying or locking. Items are stored as plain dicts (see `item_to_dict`/`item_from_dict`)
because TinyDB holds JSON.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    # The decoded bytes, kept only for table files (.xlsx/.csv/.docx) within the size limit:
    # every other attachment is sized and dropped (decode.py).
    data: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class FileAttachment:
    """A file an outgoing email carries (a template, a marked table, a calendar entry).

    `content_type` may carry parameters ("text/calendar; method=REQUEST"); `inline` puts it
    beside the text and HTML (a calendar invitation), else it is an attachment."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)
    inline: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"filename": self.filename, "content_type": self.content_type,
                "data": base64.b64encode(self.data).decode("ascii"), "inline": self.inline}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileAttachment:
        return cls(data["filename"], data["content_type"], base64.b64decode(data["data"]),
                   bool(data.get("inline")))


@dataclass(frozen=True)
class Inbound:
    """One received email, decoded: every string is already proper Unicode."""

    message_id: str  # without angle brackets; "sha256:<hex>" when the email had none
    subject: str
    from_addr: str  # lower-cased address, "" when unusable
    from_name: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    delivered_to: tuple[str, ...] = ()  # Delivered-To / X-Original-To / Envelope-To
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: datetime | None = None
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # lower-case name → values
    text: str = ""  # text/plain body, or text made from the HTML body
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    content_type: str = "text/plain"  # of the top-level part
    raw_size: int = 0
    defects: tuple[str, ...] = ()
    failed_recipients: tuple[str, ...] = ()  # a bounce's undeliverable addresses (DSN or NDR text)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[0] if values else None


class ItemKind(StrEnum):
    PROJECT = "project"
    TASK = "task"
    EMERGENCY = "emergency"


class TaskState(StrEnum):
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    NOT_STARTED = "not_started"  # 未开始: confirmed, no progress yet
    IN_PROGRESS = "in_progress"  # 进行中
    DONE = "done"  # 已完成
    DELAYED = "delayed"  # 延期
    DECLINED = "declined"
    BLOCKED = "blocked"
    SUBMITTED = "submitted"  # 待验收: handed in, waiting for the initiator's acceptance
    RETURNED = "returned"  # 退回修改: sent back by the initiator with a reason


class ItemState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class FieldError:
    """A problem with one field of a submitted form; rendered in the sender's language."""

    field: str  # canonical field name, e.g. "deadline", "owner", "title"
    code: str  # e.g. "missing", "date_unparseable", "date_past", "owner_unknown", "owner_many"
    value: str = ""
    task: int | None = None  # 1-based task line, when the problem is in a task
    options: tuple[str, ...] = ()  # the candidates, when an owner fits several people

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["options"] = list(self.options)
        return data


@dataclass(frozen=True)
class TaskDraft:
    """One task as the sender wrote it, before owners and dates are resolved."""

    name: str
    owner: str
    deadline: str
    deliverable: str = ""
    note: str = ""
    status: str = ""  # 完成状态: a TaskState value when recognised, else as written
    progress: str = ""  # 当前进度, e.g. "75%"
    priority: str = ""  # 优先级: a choice value ("high") when recognised
    feedback: str = ""  # 反馈时间, as written
    depends: str = ""  # a 依赖 column, as written ("T-1"); read like `依赖 T-1` in the note
    row: Mapping[str, str] = field(default_factory=dict)  # its row's item-level cells (发起人 …)


@dataclass(frozen=True)
class FormResult:
    """What `forms.read_form` found in an email: the template, its fields and its task rows."""

    kind: ItemKind | None
    fields: Mapping[str, str]  # canonical key → raw value, e.g. {"title": "Q3新品推广项目"}
    tasks: tuple[TaskDraft, ...] = ()
    errors: tuple[FieldError, ...] = ()
    # How the tasks were read: "table" (rows or a form's fields) or "kickoff" (the guide's
    # step-3 "需配合" sentences, a reading to confirm before it becomes an item).
    source: str = "table"
    unread: tuple[str, ...] = ()  # what looked like form content but could not be placed


@dataclass(frozen=True)
class Person:
    name: str
    address: str
    department: str = ""
    aliases: tuple[str, ...] = ()
    manager: str = ""  # address of the manager, for escalations
    timezone: str = ""  # IANA zone the person reads times in; "" = the configured one
    title: str = ""  # job title or role, e.g. "经理", "主管", "专员", "Product Manager"


@dataclass(frozen=True)
class Command:
    """An instruction read from the new text of a reply."""

    name: str  # confirm, decline, progress, status, delay, blocker, done, reassign, close, help
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **dict(self.args)}


@dataclass(frozen=True)
class Notice:
    """An email the core wants sent, before rendering: template, recipients and facts."""

    template: str  # name under templates/, e.g. "confirm_request"
    to: tuple[str, ...]
    language: str
    context: Mapping[str, Any]
    cc: tuple[str, ...] = ()
    item_id: str | None = None
    task_id: str | None = None
    in_reply_to: str | None = None  # Message-ID this email answers (threading)
    references: tuple[str, ...] = ()
    attachments: tuple[FileAttachment, ...] = ()


@dataclass(frozen=True)
class Outgoing:
    """A rendered email, ready for the outbox. Its Message-ID is chosen once and never changes."""

    message_id: str  # without angle brackets
    to: tuple[str, ...]
    subject: str
    text: str
    html: str
    cc: tuple[str, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    reply_to: str | None = None
    kind: str = ""  # the template it came from
    item_id: str | None = None
    language: str = "zh"
    date: str = ""  # RFC 5322 date chosen at enqueue, so a resend is byte-identical
    # Stored with the email (base64 in the outbox), so a re-send carries the same bytes.
    attachments: tuple[FileAttachment, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # Field by field: `dataclasses.asdict` deep-copies every value, a third of enqueueing.
        data = {f.name: getattr(self, f.name) for f in _OUTGOING_FIELDS}
        data["to"] = list(self.to)
        data["cc"] = list(self.cc)
        data["references"] = list(self.references)
        if self.attachments:
            data["attachments"] = [a.to_dict() for a in self.attachments]
        else:
            del data["attachments"]  # emails without files are stored as before
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outgoing:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("to", "cc", "references"):
            values[key] = tuple(values.get(key) or ())
        values["attachments"] = tuple(FileAttachment.from_dict(a)
                                      for a in values.get("attachments") or ())
        return cls(**values)


_OUTGOING_FIELDS = dataclasses.fields(Outgoing)
