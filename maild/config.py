"""Load `config.toml` into frozen dataclasses and validate it, with messages that name file and key.

Passwords never come from the file alone for a real server: `password_env` names an environment
variable and `password_command` a command whose first output line is the password. Only the
embedded demo system's accounts carry passwords in the file, because they exist nowhere else.
Resolving those secrets (reading the environment, running a command) is the caller's job:
see `resolve_password`, which takes the environment and a runner as arguments.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A problem in the configuration: which file, which key, what is wrong, an example."""

    def __init__(self, file: str, key: str, problem: str, example: str = "") -> None:
        self.file, self.key, self.problem, self.example = file, key, problem, example
        text = f"{file}: [{key}] {problem}"
        if example:
            text += f" (example: {example})"
        super().__init__(text)


SECURITY_MODES = ("tls", "starttls", "plain")


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    security: str
    username: str
    password_env: str = ""
    password_command: str = ""
    password: str = ""  # only ever filled for the embedded system


@dataclass(frozen=True)
class EmbeddedConfig:
    host: str
    imap_port: int
    smtp_port: int
    accounts: Mapping[str, str]  # address → password


@dataclass(frozen=True)
class Config:
    path: Path
    base_dir: Path  # relative paths in the file are relative to the file's folder
    data_dir: Path
    archive_dir: Path
    timezone: str
    workday_end: time
    secret_env: str
    secret_file: Path
    log_format: str
    embedded: bool
    inbox_address: str
    plus_addressing: bool
    processed_folder: str
    quarantine_folder: str
    idle_renew_s: float
    poll_interval_s: float
    batch_size: int
    imap: ServerConfig
    smtp: ServerConfig
    from_name: str
    embedded_system: EmbeddedConfig
    allowed_domains: tuple[str, ...]
    admins: tuple[str, ...]
    max_message_bytes: int
    max_header_bytes: int
    replies_per_sender_per_hour: int
    outbox_max_attempts: int
    outbox_backoff_initial_s: float
    outbox_backoff_max_s: float
    rules_dir: Path
    templates_dir: Path
    extra: Mapping[str, Any] = field(default_factory=dict)
    authserv_id: str = ""  # [security]: the receiving server's Authentication-Results id
    require_authentication: bool = False  # [security]: ignore mail it did not authenticate
    require_token: bool = False  # [security]: owner commands only through their reply address
    store_url: str = ""  # [store] url: "postgresql://…" keeps the state there; "" = data_dir

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def domain(self) -> str:
        return self.inbox_address.rpartition("@")[2]


def load_config(path: Path | str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and validate a config file; `overrides` maps "section.key" to a value (tests, CLI)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "-", "file not found", "maild run -c config.toml") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "-", f"not valid TOML: {exc}") from None
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> Config:
    reader = _Reader(raw, str(path))
    base = path.resolve().parent

    def rel(value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    timezone = reader.text("maild", "timezone", "Asia/Shanghai")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(reader.file, "maild.timezone", f"unknown time zone {timezone!r}",
                          'timezone = "Asia/Shanghai"') from None
    workday_end_text = reader.text("maild", "workday_end", "18:00")
    try:
        hours, minutes = (int(part) for part in workday_end_text.split(":"))
        workday_end = time(hours, minutes)
    except ValueError:
        raise ConfigError(reader.file, "maild.workday_end", f"not a time: {workday_end_text!r}",
                          'workday_end = "18:00"') from None
    log_format = reader.choice("maild", "log_format", ("kv", "json"), "kv")

    inbox = reader.address("mail", "inbox_address", "collab@corp.example")
    embedded = reader.boolean("mail", "embedded", False)
    emb = reader.section("embedded")
    accounts: dict[str, str] = {}
    for index, account in enumerate(emb.get("account", []) or []):
        key = f"embedded.account[{index}]"
        if not isinstance(account, Mapping) or "@" not in str(account.get("address", "")):
            raise ConfigError(reader.file, key, "each account needs an address and a password",
                              '[[embedded.account]] address = "li.na@corp.example" password = "demo"')
        accounts[str(account["address"]).lower()] = str(account.get("password", ""))
    embedded_system = EmbeddedConfig(
        host=reader.text("embedded", "host", "127.0.0.1"),
        imap_port=reader.integer("embedded", "imap_port", 14143, low=0, high=65535),
        smtp_port=reader.integer("embedded", "smtp_port", 14025, low=0, high=65535),
        accounts=accounts,
    )
    if embedded and inbox not in accounts:
        raise ConfigError(reader.file, "embedded.account",
                          f"the inbox {inbox} needs an embedded account when [mail] embedded = true",
                          f'[[embedded.account]] address = "{inbox}" password = "..."')

    def server(section: str, default_port: int, default_security: str) -> ServerConfig:
        if embedded:
            port = embedded_system.imap_port if section == "imap" else embedded_system.smtp_port
            return ServerConfig(host=embedded_system.host, port=port, security="plain",
                                username=inbox, password=accounts.get(inbox, ""))
        if "password" in reader.section(section):
            raise ConfigError(reader.file, f"{section}.password",
                              "passwords are not read from the file; name an environment variable "
                              "or a command", f'password_env = "MAILD_{section.upper()}_PASSWORD"')
        cfg = ServerConfig(
            host=reader.text(section, "host", ""),
            port=reader.integer(section, "port", default_port, low=1, high=65535),
            security=reader.choice(section, "security", SECURITY_MODES, default_security),
            username=reader.text(section, "username", inbox),
            password_env=reader.text(section, "password_env", ""),
            password_command=reader.text(section, "password_command", ""),
        )
        if not cfg.host:
            raise ConfigError(reader.file, f"{section}.host", "missing", 'host = "mail.corp.example"')
        return cfg

    authserv_id = reader.text("security", "authserv_id", "").strip().lower()
    require_authentication = reader.boolean("security", "require_authentication", False)
    if require_authentication and not authserv_id:
        raise ConfigError(reader.file, "security.authserv_id",
                          "require_authentication = true needs the receiving server's authserv-id",
                          'authserv_id = "mx.corp.example"')
    plus_addressing = reader.boolean("mail", "plus_addressing", True)
    require_token = reader.boolean("security", "require_token", False)
    if require_token and not plus_addressing:
        raise ConfigError(reader.file, "security.require_token",
                          "require_token = true needs reply tokens, which ride in plus addresses",
                          "require_token = false  # or [mail] plus_addressing = true")
    return Config(
        path=path,
        base_dir=base,
        data_dir=rel(reader.text("maild", "data_dir", "var")),
        archive_dir=rel(reader.text("maild", "archive_dir", "archive")),
        timezone=timezone,
        workday_end=workday_end,
        secret_env=reader.text("maild", "secret_env", "MAILD_SECRET"),
        secret_file=rel(reader.text("maild", "secret_file", "var/secret.key")),
        log_format=log_format,
        embedded=embedded,
        inbox_address=inbox,
        plus_addressing=plus_addressing,
        processed_folder=reader.text("mail", "processed_folder", "Processed"),
        quarantine_folder=reader.text("mail", "quarantine_folder", "Quarantine"),
        idle_renew_s=reader.number("mail", "idle_renew_s", 540, low=5, high=1740),
        poll_interval_s=reader.number("mail", "poll_interval_s", 30, low=0.05, high=3600),
        batch_size=reader.integer("mail", "batch_size", 200, low=1, high=10000),
        imap=server("imap", 993, "tls"),
        smtp=server("smtp", 587, "starttls"),
        from_name=reader.text("smtp", "from_name", "maild"),
        embedded_system=embedded_system,
        allowed_domains=tuple(d.lower() for d in reader.strings("security", "allowed_domains")),
        admins=tuple(a.lower() for a in reader.strings("security", "admins")),
        max_message_bytes=reader.integer("security", "max_message_bytes", 25 * 2**20, low=1024),
        max_header_bytes=reader.integer("security", "max_header_bytes", 256 * 1024, low=1024),
        replies_per_sender_per_hour=reader.integer("security", "replies_per_sender_per_hour", 20,
                                                   low=1),
        outbox_max_attempts=reader.integer("outbox", "max_attempts", 8, low=1, high=100),
        outbox_backoff_initial_s=reader.number("outbox", "backoff_initial_s", 5, low=0.01),
        outbox_backoff_max_s=reader.number("outbox", "backoff_max_s", 1800, low=0.01),
        rules_dir=rel(reader.text("rules", "dir", "rules")),
        templates_dir=rel(reader.text("templates", "dir", "templates")),
        authserv_id=authserv_id,
        require_authentication=require_authentication,
        require_token=require_token,
        store_url=_store_url(reader),
    )


def _store_url(reader: _Reader) -> str:
    """`[store] url`: empty (the embedded store in data_dir) or a PostgreSQL URL."""
    url = reader.text("store", "url", "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(reader.file, "store.url", f"must be a postgresql:// URL, not {url!r}",
                          'url = "postgresql://maild@db.corp.example/maild"')
    return url


def resolve_password(server: ServerConfig, environ: Mapping[str, str],
                     run_command: Callable[[str], str]) -> str:
    """The server's password: from the file (embedded only), the environment or a command."""
    if server.password:
        return server.password
    if server.password_env and environ.get(server.password_env):
        return environ[server.password_env]
    if server.password_command:
        return run_command(server.password_command).splitlines()[0].strip()
    return ""


class _Reader:
    """Typed access to the raw TOML with errors that say where."""

    def __init__(self, raw: Mapping[str, Any], file: str) -> None:
        self.raw, self.file = raw, file

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.raw.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(self.file, name, "must be a table", f"[{name}]")
        return value

    def _get(self, section: str, key: str, default: Any) -> Any:
        return self.section(section).get(key, default)

    def text(self, section: str, key: str, default: str) -> str:
        value = self._get(section, key, default)
        if not isinstance(value, str):
            raise ConfigError(self.file, f"{section}.{key}", f"must be a string, not {value!r}",
                              f'{key} = "{default}"')
        return value

    def address(self, section: str, key: str, default: str) -> str:
        value = self.text(section, key, default).strip().lower()
        local, at, domain = value.partition("@")
        if not (local and at and "." in domain) or any(c in value for c in " <>,;\r\n"):
            raise ConfigError(self.file, f"{section}.{key}", f"not an email address: {value!r}",
                              f'{key} = "{default}"')
        return value

    def boolean(self, section: str, key: str, default: bool) -> bool:
        value = self._get(section, key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.file, f"{section}.{key}", "must be true or false",
                              f"{key} = {str(default).lower()}")
        return value

    def integer(self, section: str, key: str, default: int, *, low: int | None = None,
                high: int | None = None) -> int:
        value = self._get(section, key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.file, f"{section}.{key}", f"must be a whole number, not {value!r}",
                              f"{key} = {default}")
        self._check_range(section, key, value, low, high, default)
        return value

    def number(self, section: str, key: str, default: float, *, low: float | None = None,
               high: float | None = None) -> float:
        value = self._get(section, key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(self.file, f"{section}.{key}", f"must be a number, not {value!r}",
                              f"{key} = {default}")
        self._check_range(section, key, value, low, high, default)
        return float(value)

    def _check_range(self, section: str, key: str, value: float, low: float | None,
                     high: float | None, default: float) -> None:
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ConfigError(self.file, f"{section}.{key}", f"must be {bounds}, not {value}",
                              f"{key} = {default}")

    def choice(self, section: str, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(section, key, default)
        if value not in choices:
            raise ConfigError(self.file, f"{section}.{key}",
                              f"must be one of {', '.join(choices)}, not {value!r}",
                              f'{key} = "{default}"')
        return value

    def strings(self, section: str, key: str) -> list[str]:
        value = self._get(section, key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.file, f"{section}.{key}", "must be a list of strings",
                              f'{key} = ["corp.example"]')
        return value
