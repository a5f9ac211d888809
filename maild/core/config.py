"""Load `config.toml` into frozen dataclasses and validate it, with messages that name file and key.

Where the file is: `find_config` takes `-c`, else `$MAILD_CONFIG`, else `./config.toml`, else
`/etc/maild/config.toml`, and says which it took. Relative paths in the file are relative to
the file's folder, not to the working directory.

Strict: a key or section the reader never read is an error naming file, key and the nearest
valid name ("did you mean require_token?"). The known keys are not listed anywhere: they are
the keys the reader (tomlreader.py) was asked for, so a key is known by being read. Surprise: read every key
unconditionally (validate it even where it does not apply, as [imap] is read when the embedded
system is used), or a valid file that sets it is refused. `parse_config` reads everything
first, rejects unknown keys, then checks combinations, so a typo is reported as a typo and not
as the missing key it causes.

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

from maild.core.configparts import (
    AUTH_MODES,
    OAUTH_FLOWS,
    SECURITY_MODES,
    DirectoryConfig,
    LdapConfig,
    OAuthConfig,
    ServerConfig,
    directory_config,
    first_line,
    oauth_config,
    resolve_oauth_secret,
)
from maild.core.filechatconfig import FilesChatConfig, read_files_chat
from maild.core.tomlreader import ConfigError, StrictReader

__all__ = ["OAUTH_FLOWS", "Config", "ConfigError", "DirectoryConfig", "EmbeddedConfig",
           "FoundConfig", "LdapConfig", "OAuthConfig", "ServerConfig", "find_config",
           "load_config", "parse_config", "resolve_oauth_secret", "resolve_password"]

CONFIG_ENV = "MAILD_CONFIG"
SYSTEM_CONFIG = Path("/etc/maild/config.toml")
# [smtp] connections: servers limit a client's concurrent connections (often 2-10); past ~4 a
# batch gains nothing here, where the server, not the connection, is the limit
MAX_SMTP_CONNECTIONS = 8


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
    # [security]: every state-changing command needs the sender's own reply token (or trusted
    # sender authentication, below)
    require_token: bool = True
    # [security]: the operator declares that the receiving server stamps Authentication-Results
    # with authserv_id and removes such fields arriving from outside (`maild check` probes it)
    trust_authentication_results: bool = False
    # [security]: Exchange's X-MS-Exchange-Organization-AuthAs: Internal counts as authenticated
    trust_exchange_internal: bool = False
    external_owners: tuple[str, ...] = ()  # [security]: owners allowed outside allowed_domains
    replies_per_sender_per_day: int = 40  # [security]: answers to one correspondent per 24 h
    log_dir: Path | None = None  # [maild]: also append log lines to log_dir/maild.log
    acceptance: bool = False  # [workflow]: an owner's 完成 waits for the initiator's 验收
    oauth: OAuthConfig | None = None  # [oauth]: set when [imap] or [smtp] auth = "oauth2"
    directory: DirectoryConfig = DirectoryConfig()  # [directory]: synced people (LDAP, HR CSV)
    # [files] limits, [digest] attach_table, [chat] robots (filechatconfig)
    files_chat: FilesChatConfig = FilesChatConfig()
    store_url: str = ""  # [store] url: "postgresql://…" keeps the state there; "" = data_dir
    smtp_connections: int = 2  # [smtp] connections: the sender's child sends a batch over these

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def domain(self) -> str:
        return self.inbox_address.rpartition("@")[2]


@dataclass(frozen=True)
class FoundConfig:
    """Which config file to use and how it was found (`-c`, `$MAILD_CONFIG`, a default place)."""

    path: Path
    source: str

    def describe(self) -> str:
        return f"{self.path} (from {self.source})"


def find_config(explicit: Path | None, environ: Mapping[str, str], cwd: Path,
                is_file: Callable[[Path], bool] = Path.is_file) -> FoundConfig:
    """The config file: `-c`, else `$MAILD_CONFIG`, else ./config.toml, else
    /etc/maild/config.toml. A file named by -c or the variable is taken even when missing
    (loading it then says so); ConfigError when no default place has one."""
    if explicit is not None:
        return FoundConfig(explicit, "-c")
    if environ.get(CONFIG_ENV):
        return FoundConfig(Path(environ[CONFIG_ENV]), f"${CONFIG_ENV}")
    for path, source in ((cwd / "config.toml", "./config.toml"),
                         (SYSTEM_CONFIG, str(SYSTEM_CONFIG))):
        if is_file(path):
            return FoundConfig(path, source)
    raise ConfigError("config.toml", "-", f"no configuration found: no -c, no ${CONFIG_ENV}, "
                      f"no ./config.toml in {cwd}, no {SYSTEM_CONFIG}",
                      "maild init ~/maild && cd ~/maild && maild check")


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
    """Every key read and typed, then unknown keys refused, then combinations checked."""
    reader = StrictReader(raw, str(path))
    config = _read(reader, path)
    reader.reject_unknown()
    _check_combinations(config, reader.file)
    return config


def _read(reader: StrictReader, path: Path) -> Config:
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
    log_dir = reader.text("maild", "log_dir", "")

    inbox = reader.address("mail", "inbox_address", "collab@corp.example")
    embedded = reader.boolean("mail", "embedded", False)
    accounts: dict[str, str] = {}
    for index, account in enumerate(reader.tables("embedded", "account")):
        address = reader.text_in(account, "address", "")
        if "@" not in address:
            raise ConfigError(reader.file, f"embedded.account[{index}]",
                              "each account needs an address and a password",
                              '[[embedded.account]] address = "li.na@corp.example" password = "demo"')
        accounts[address.lower()] = reader.text_in(account, "password", "")
    embedded_system = EmbeddedConfig(
        host=reader.text("embedded", "host", "127.0.0.1"),
        imap_port=reader.integer("embedded", "imap_port", 14143, low=0, high=65535),
        smtp_port=reader.integer("embedded", "smtp_port", 14025, low=0, high=65535),
        accounts=accounts,
    )

    def server(section: str, default_port: int, default_security: str) -> ServerConfig:
        if "password" in reader.section(section):
            raise ConfigError(reader.file, f"{section}.password",
                              "passwords are not read from the file; name an environment variable "
                              "or a command", f'password_env = "MAILD_{section.upper()}_PASSWORD"')
        declared = ServerConfig(  # read even when the embedded system is used: keys stay known
            host=reader.text(section, "host", ""),
            port=reader.integer(section, "port", default_port, low=1, high=65535),
            security=reader.choice(section, "security", SECURITY_MODES, default_security),
            username=reader.text(section, "username", inbox),
            password_env=reader.text(section, "password_env", ""),
            password_command=reader.text(section, "password_command", ""),
            auth=reader.choice(section, "auth", AUTH_MODES, "password"),
        )
        if not embedded:
            return declared
        port = embedded_system.imap_port if section == "imap" else embedded_system.smtp_port
        return ServerConfig(host=embedded_system.host, port=port, security="plain",
                            username=inbox, password=accounts.get(inbox, ""))

    data_dir = rel(reader.text("maild", "data_dir", "var"))
    directory = directory_config(reader, rel, data_dir)
    imap, smtp = server("imap", 993, "tls"), server("smtp", 587, "starttls")
    oauth = oauth_config(reader, rel, [s for s, c in (("imap", imap), ("smtp", smtp))
                                       if c.auth == "oauth2"])
    return Config(
        path=path,
        base_dir=base,
        data_dir=data_dir,
        archive_dir=rel(reader.text("maild", "archive_dir", "archive")),
        timezone=timezone,
        workday_end=workday_end,
        secret_env=reader.text("maild", "secret_env", "MAILD_SECRET"),
        secret_file=rel(reader.text("maild", "secret_file", "var/secret.key")),
        log_format=reader.choice("maild", "log_format", ("kv", "json"), "kv"),
        log_dir=rel(log_dir) if log_dir else None,
        embedded=embedded,
        inbox_address=inbox,
        plus_addressing=reader.boolean("mail", "plus_addressing", True),
        processed_folder=reader.text("mail", "processed_folder", "Processed"),
        quarantine_folder=reader.text("mail", "quarantine_folder", "Quarantine"),
        idle_renew_s=reader.number("mail", "idle_renew_s", 540, low=5, high=1740),
        poll_interval_s=reader.number("mail", "poll_interval_s", 30, low=0.05, high=3600),
        batch_size=reader.integer("mail", "batch_size", 200, low=1, high=10000),
        imap=imap,
        smtp=smtp,
        from_name=reader.text("smtp", "from_name", "maild"),
        smtp_connections=reader.integer("smtp", "connections", 2, low=1,
                                        high=MAX_SMTP_CONNECTIONS),
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
        authserv_id=reader.text("security", "authserv_id", "").strip().lower(),
        require_authentication=reader.boolean("security", "require_authentication", False),
        require_token=reader.boolean("security", "require_token", True),
        trust_authentication_results=reader.boolean("security", "trust_authentication_results",
                                                    False),
        trust_exchange_internal=reader.boolean("security", "trust_exchange_internal", False),
        external_owners=tuple(a.strip().lower() for a in reader.strings("security",
                                                                       "external_owners")),
        replies_per_sender_per_day=reader.integer("security", "replies_per_sender_per_day", 40,
                                                  low=1),
        acceptance=reader.boolean("workflow", "acceptance", False),
        oauth=oauth,
        directory=directory,
        files_chat=read_files_chat(reader),
        store_url=_store_url(reader),
    )


def _check_combinations(config: Config, file: str) -> None:
    """What single keys cannot say: settings that only make sense together."""
    if config.embedded and config.inbox_address not in config.embedded_system.accounts:
        inbox = config.inbox_address
        raise ConfigError(file, "embedded.account",
                          f"the inbox {inbox} needs an embedded account when [mail] embedded = true",
                          f'[[embedded.account]] address = "{inbox}" password = "..."')
    for section, server in (("imap", config.imap), ("smtp", config.smtp)):
        if not server.host:
            raise ConfigError(file, f"{section}.host", "missing", 'host = "mail.corp.example"')
    if config.trust_authentication_results and not config.authserv_id:
        raise ConfigError(file, "security.authserv_id",
                          "trust_authentication_results = true needs the receiving server's "
                          "authserv-id", 'authserv_id = "mx.corp.example"')
    if config.require_authentication and not (config.trust_authentication_results
                                              or config.trust_exchange_internal):
        # A field nobody strips is whatever the sender wrote: requiring it proves nothing.
        raise ConfigError(file, "security.require_authentication",
                          "require_authentication = true needs a stamp maild can trust: "
                          "trust_authentication_results = true (with authserv_id, after `maild "
                          "check` shows your server strips forged fields) or "
                          "trust_exchange_internal = true",
                          'authserv_id = "mx.corp.example"  trust_authentication_results = true')


def _store_url(reader: StrictReader) -> str:
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
        return first_line(run_command(server.password_command))
    return ""
