"""The config of table files, the digest's attached table and the group-chat robots.

The one job is `read_files_chat(section)` → `FilesChatConfig` from the raw `[files]`, `[digest]`
and `[chat]` tables (config.py calls it; errors are `ValueError(key, problem, example)` that
config.py turns into its ConfigError). Pure. Surprise: a robot's webhook address and signing
secret are read from an environment variable or a command's first line when the daemon starts
(`resolve_robot`) — never from the file, as the webhook address itself is the robot's key.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .sheets import Limits

PLATFORMS = ("wecom", "dingtalk", "feishu")
EVENTS = ("blocker", "escalation", "emergency")


@dataclass(frozen=True)
class RobotConfig:
    platform: str  # wecom | dingtalk | feishu
    webhook_env: str = ""
    webhook_command: str = ""
    secret_env: str = ""  # DingTalk "加签" / Feishu "签名校验" secret
    secret_command: str = ""
    name: str = ""  # for logs and `maild check`: e.g. "市场部群"


@dataclass(frozen=True)
class ChatConfig:
    robots: tuple[RobotConfig, ...] = ()
    events: tuple[str, ...] = EVENTS
    scope: str = "all"  # all | tagged: only items whose subject carries one of `tags`
    tags: tuple[str, ...] = ("[群通知]", "[chat]")
    max_attempts: int = 8
    backoff_initial_s: float = 5.0
    backoff_max_s: float = 1800.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class FilesChatConfig:
    limits: Limits = field(default_factory=Limits)
    attach_table: bool = False  # [digest] attach_table: the initiator's digest carries the table
    chat: ChatConfig = field(default_factory=ChatConfig)


class SettingError(ValueError):
    def __init__(self, key: str, problem: str, example: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem, self.example = key, problem, example


def read_files_chat(raw: Mapping[str, Any]) -> FilesChatConfig:
    files = _table(raw, "files")
    limits = Limits(
        max_bytes=_int(files, "files.max_bytes", Limits.max_bytes, 1024),
        max_members=_int(files, "files.max_members", Limits.max_members, 1),
        max_unpacked=_int(files, "files.max_unpacked", Limits.max_unpacked, 1024),
        max_ratio=_int(files, "files.max_ratio", Limits.max_ratio, 2))
    digest = _table(raw, "digest")
    attach = digest.get("attach_table", False)
    if not isinstance(attach, bool):
        raise SettingError("digest.attach_table", "must be true or false", "attach_table = true")
    chat = _table(raw, "chat")
    robots = []
    for index, spec in enumerate(chat.get("robot", ())):
        where = f"chat.robot[{index}]"
        if not isinstance(spec, Mapping):
            raise SettingError(where, "must be a table", '[[chat.robot]]\nplatform = "wecom"')
        platform = spec.get("platform", "")
        if platform not in PLATFORMS:
            raise SettingError(f"{where}.platform", f"must be one of {', '.join(PLATFORMS)}",
                               'platform = "dingtalk"')
        if "webhook" in spec or "secret" in spec:
            raise SettingError(f"{where}.webhook", "the webhook address and secret are keys: "
                               "give them by variable or command, never in the file",
                               'webhook_env = "MAILD_CHAT_WEBHOOK"')
        robot = RobotConfig(platform, *(str(spec.get(k, "")) for k in (
            "webhook_env", "webhook_command", "secret_env", "secret_command", "name")))
        if not (robot.webhook_env or robot.webhook_command):
            raise SettingError(f"{where}.webhook_env", "a robot needs its webhook address",
                               'webhook_env = "MAILD_CHAT_WEBHOOK"')
        robots.append(robot)
    events = tuple(chat.get("events", EVENTS))
    if set(events) - set(EVENTS):
        raise SettingError("chat.events", f"events are {', '.join(EVENTS)}",
                           'events = ["blocker", "escalation", "emergency"]')
    scope = chat.get("scope", "all")
    if scope not in ("all", "tagged"):
        raise SettingError("chat.scope", "must be all or tagged", 'scope = "tagged"')
    return FilesChatConfig(limits, attach, ChatConfig(
        tuple(robots), events, scope, tuple(chat.get("tags", ChatConfig.tags)),
        _int(chat, "chat.max_attempts", 8, 1),
        float(chat.get("backoff_initial_s", 5.0)), float(chat.get("backoff_max_s", 1800.0)),
        float(chat.get("timeout_s", 10.0))))


@dataclass(frozen=True)
class Robot:
    """A robot ready to post to: its platform, webhook address and signing secret."""

    platform: str
    webhook: str = field(repr=False)
    secret: str = field(default="", repr=False)
    name: str = ""


def resolve_robot(robot: RobotConfig, environ: Mapping[str, str] | None = None) -> Robot:
    """The webhook address and secret from their variable or command (at start-up)."""
    environ = os.environ if environ is None else environ
    return Robot(robot.platform, _secret(robot.webhook_env, robot.webhook_command, environ),
                 _secret(robot.secret_env, robot.secret_command, environ), robot.name)


def _secret(env: str, command: str, environ: Mapping[str, str]) -> str:
    if env and environ.get(env):
        return environ[env].strip()
    if command:
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=30,
                              check=True)
        return (done.stdout.splitlines() or [""])[0].strip()
    return ""


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise SettingError(name, "must be a table", f"[{name}]")
    return value


def _int(table: Mapping[str, Any], key: str, default: int, low: int) -> int:
    value = table.get(key.rpartition(".")[2], default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise SettingError(key, f"must be a whole number of at least {low}", f"{key} = {default}")
    return value
