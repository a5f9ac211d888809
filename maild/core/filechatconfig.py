"""The config of table files, the digest's attached table and the group-chat robots.

The one job is `read_files_chat(reader)` → `FilesChatConfig` from the `[files]`, `[digest]` and
`[chat]` tables, read through config.py's strict reader (errors are ConfigErrors). Pure. Surprise:
a robot's webhook address and signing secret come from an environment variable or a command's
first line when the daemon starts (`resolve_robot`, given the environment and the runner) —
never from the file, as the webhook address itself is the robot's key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from maild.core.configparts import first_line
from maild.core.tomlreader import ConfigError, StrictReader
from maild.mail.sheets import Limits

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


def read_files_chat(reader: StrictReader) -> FilesChatConfig:
    """`[files]`, `[digest]` and `[chat]` through config.py's strict reader (every key read, so
    known; errors are ConfigErrors naming file and key)."""
    limits = Limits(
        max_bytes=reader.integer("files", "max_bytes", Limits.max_bytes, low=1024),
        max_members=reader.integer("files", "max_members", Limits.max_members, low=1),
        max_unpacked=reader.integer("files", "max_unpacked", Limits.max_unpacked, low=1024),
        max_ratio=reader.integer("files", "max_ratio", Limits.max_ratio, low=2))
    attach = reader.boolean("digest", "attach_table", False)
    robots = []
    for index, spec in enumerate(reader.tables("chat", "robot")):
        where = f"chat.robot[{index}]"
        if "webhook" in spec or "secret" in spec:
            raise ConfigError(reader.file, f"{where}.webhook", "the webhook address and secret "
                              "are keys: give them by variable or command, never in the file",
                              'webhook_env = "MAILD_CHAT_WEBHOOK"')
        platform = reader.text_in(spec, "platform", "")
        if platform not in PLATFORMS:
            raise ConfigError(reader.file, f"{where}.platform",
                              f"must be one of {', '.join(PLATFORMS)}", 'platform = "dingtalk"')
        robot = RobotConfig(platform, *(reader.text_in(spec, k, "") for k in (
            "webhook_env", "webhook_command", "secret_env", "secret_command", "name")))
        if not (robot.webhook_env or robot.webhook_command):
            raise ConfigError(reader.file, f"{where}.webhook_env",
                              "a robot needs its webhook address",
                              'webhook_env = "MAILD_CHAT_WEBHOOK"')
        robots.append(robot)
    events = tuple(reader.strings("chat", "events")) or EVENTS
    if set(events) - set(EVENTS):
        raise ConfigError(reader.file, "chat.events", f"events are {', '.join(EVENTS)}",
                          'events = ["blocker", "escalation", "emergency"]')
    scope = reader.choice("chat", "scope", ("all", "tagged"), "all")
    tags = tuple(reader.strings("chat", "tags")) or ChatConfig.tags
    return FilesChatConfig(limits, attach, ChatConfig(
        tuple(robots), events, scope, tags,
        reader.integer("chat", "max_attempts", 8, low=1),
        reader.number("chat", "backoff_initial_s", 5.0, low=0.01),
        reader.number("chat", "backoff_max_s", 1800.0, low=0.01),
        reader.number("chat", "timeout_s", 10.0, low=0.1)))


@dataclass(frozen=True)
class Robot:
    """A robot ready to post to: its platform, webhook address and signing secret."""

    platform: str
    webhook: str = field(repr=False)
    secret: str = field(default="", repr=False)
    name: str = ""


def resolve_robot(robot: RobotConfig, environ: Mapping[str, str],
                  run_command: Callable[[str], str]) -> Robot:
    """The webhook address and secret from their variable or command's first line (at start-up;
    the caller passes the environment and the command runner, as for `resolve_password`)."""
    return Robot(robot.platform, _secret(robot.webhook_env, robot.webhook_command, environ,
                                         run_command),
                 _secret(robot.secret_env, robot.secret_command, environ, run_command), robot.name)


def _secret(env: str, command: str, environ: Mapping[str, str],
            run_command: Callable[[str], str]) -> str:
    if env and environ.get(env):
        return environ[env].strip()
    if command:
        return first_line(run_command(command))
    return ""
