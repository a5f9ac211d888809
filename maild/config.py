"""Load `config.toml` into frozen dataclasses and validate it, with messages that name file and key.

Where the file is: `find_config` takes `-c`, else `$MAILD_CONFIG`, else `./config.toml`, else
`/etc/maild/config.toml`, and says which it took. Relative paths in the file are relative to
the file's folder, not to the working directory.

Strict: a key or section the reader never read is an error naming file, key and the nearest
valid name ("did you mean require_token?"). The known keys are not listed anywhere: they are
the keys `_Reader` was asked for, so a key is known by being read. Surprise: read every key
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

import difflib
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
CONFIG_ENV = "MAILD_CONFIG"
SYSTEM_CONFIG = Path("/etc/maild/config.toml")


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
    log_dir: Path | None = None  # [maild]: also append log lines to log_dir/maild.log

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
    reader = _Reader(raw, str(path))
    config = _read(reader, path)
    reader.reject_unknown()
    _check_combinations(config, reader.file)
    return config


def _read(reader: _Reader, path: Path) -> Config:
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
        )
        if not embedded:
            return declared
        port = embedded_system.imap_port if section == "imap" else embedded_system.smtp_port
        return ServerConfig(host=embedded_system.host, port=port, security="plain",
                            username=inbox, password=accounts.get(inbox, ""))

    return Config(
        path=path,
        base_dir=base,
        data_dir=rel(reader.text("maild", "data_dir", "var")),
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
        authserv_id=reader.text("security", "authserv_id", "").strip().lower(),
        require_authentication=reader.boolean("security", "require_authentication", False),
        require_token=reader.boolean("security", "require_token", False),
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
    if config.require_authentication and not config.authserv_id:
        raise ConfigError(file, "security.authserv_id",
                          "require_authentication = true needs the receiving server's authserv-id",
                          'authserv_id = "mx.corp.example"')
    if config.require_token and not config.plus_addressing:
        raise ConfigError(file, "security.require_token",
                          "require_token = true needs reply tokens, which ride in plus addresses",
                          "require_token = false  # or [mail] plus_addressing = true")


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
    """Typed access to the raw TOML with errors that say where; remembers every key it was asked
    for, by table (`"maild"`, `"embedded.account"`), so that `reject_unknown` knows the rest."""

    def __init__(self, raw: Mapping[str, Any], file: str) -> None:
        self.raw, self.file = raw, file
        self.asked: dict[str, set[str]] = {}  # table path → keys read from it
        self._paths: dict[int, str] = {}  # id of an array-of-tables entry → its table path

    def section(self, name: str) -> Mapping[str, Any]:
        self.asked.setdefault(name, set())
        value = self.raw.get(name, {})
        if not isinstance(value, Mapping):
            raise ConfigError(self.file, name, "must be a table", f"[{name}]")
        return value

    def tables(self, section: str, key: str) -> list[Mapping[str, Any]]:
        """An array of tables (`[[section.key]]`); read its entries' keys with `text_in`."""
        value = self._get(section, key, [])
        path = f"{section}.{key}"
        self.asked.setdefault(path, set())
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            raise ConfigError(self.file, path, "must be tables", f"[[{path}]]")
        for entry in value:
            self._paths[id(entry)] = path
        return value

    def text_in(self, entry: Mapping[str, Any], key: str, default: str) -> str:
        path = self._paths[id(entry)]
        self.asked[path].add(key)
        value = entry.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(self.file, f"{path}.{key}", f"must be a string, not {value!r}",
                              f'{key} = "{default}"')
        return value

    def _get(self, section: str, key: str, default: Any) -> Any:
        value = self.section(section).get(key, default)
        self.asked[section].add(key)
        return value

    def reject_unknown(self) -> None:
        """ConfigError for the first section or key nobody read, with the nearest valid name."""
        for name, value in self.raw.items():
            if name not in self.asked and not isinstance(value, Mapping):
                raise ConfigError(self.file, name, "a key outside any section"
                                  + self._key_hint("", name), f"[maild] {name} = {_toml(value)}")
            if name not in self.asked:
                sections = [p for p in self.asked if "." not in p]
                near = _nearest(name, sections)
                raise ConfigError(self.file, name, "unknown section" + (
                    f"; did you mean [{near}]?" if near else
                    f"; sections are {', '.join(f'[{p}]' for p in sorted(sections))}"))
            entries = value if isinstance(value, Mapping) else {}
            self._reject_keys(name, entries)

    def _reject_keys(self, path: str, entries: Mapping[str, Any]) -> None:
        known = self.asked.get(path, set())
        for key, value in entries.items():
            if key not in known:
                near = _nearest(key, known)
                raise ConfigError(self.file, f"{path}.{key}", "unknown key" + self._key_hint(
                    path, key), f"{near} = {_toml(value)}" if near else "")
            inner = f"{path}.{key}"
            if inner in self.asked and isinstance(value, list):
                for entry in value:
                    self._reject_keys(inner, entry if isinstance(entry, Mapping) else {})

    def _key_hint(self, path: str, key: str) -> str:
        near = _hint(key, self.asked.get(path, set()))
        if near:
            return near
        elsewhere = sorted(p for p, keys in self.asked.items() if key in keys)
        if elsewhere:
            return f"; {key} belongs in [{elsewhere[0]}]"
        if path in self.asked:
            return f"; [{path}] takes {', '.join(sorted(self.asked[path]))}"
        return ""

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


def _nearest(name: str, known: Any) -> str | None:
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


def _hint(name: str, known: Any) -> str:
    near = _nearest(name, known)
    return f"; did you mean {near}?" if near else ""


def _toml(value: Any) -> str:
    """A value as it would be written in the file, for an example."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, Mapping):
        return "{ ... }"
    return repr(value) if not isinstance(value, list) else "[" + ", ".join(map(_toml, value)) + "]"
