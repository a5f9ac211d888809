"""Load `config.toml` into frozen dataclasses and validate it, with messages that name file and key.

Passwords never come from the file alone for a real server: `password_env` names an environment
variable and `password_command` a command whose first output line is the password. Only the
embedded demo system's accounts carry passwords in the file, because they exist nowhere else.
Resolving those secrets (reading the environment, running a command) is the caller's job:
see `resolve_password`, which takes the environment and a runner as arguments. The same holds
for OAuth2 (`[imap]`/`[smtp] auth = "oauth2"` with an `[oauth]` section, `OAuthConfig`): the
client secret or service-account key comes from `secret_env` or `secret_command`, never the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .filechatconfig import FilesChatConfig, SettingError, read_files_chat


class ConfigError(Exception):
    """A problem in the configuration: which file, which key, what is wrong, an example."""

    def __init__(self, file: str, key: str, problem: str, example: str = "") -> None:
        self.file, self.key, self.problem, self.example = file, key, problem, example
        text = f"{file}: [{key}] {problem}"
        if example:
            text += f" (example: {example})"
        super().__init__(text)


SECURITY_MODES = ("tls", "starttls", "plain")
AUTH_MODES = ("password", "oauth2")
# Which sign-in flows each OAuth2 provider offers, and whether the flow needs a secret.
OAUTH_FLOWS = {
    "microsoft": ("client_credentials", "device_code"),
    "google": ("service_account", "refresh_token"),
}
OAUTH_SECRET_NEEDED = {"client_credentials": "the app's client secret",
                       "service_account": "the service account's JSON key",
                       "refresh_token": "the OAuth client's secret"}
DIRECTORY_SOURCES = ("", "ldap", "csv")
DIRECTORY_KINDS = ("openldap", "ad")
DIRECTORY_FIELDS = ("mail", "name", "aliases", "department", "title", "manager")
CSV_FIELDS = ("address", "name", "aliases", "department", "title", "manager", "key")


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    security: str
    username: str
    password_env: str = ""
    password_command: str = ""
    password: str = ""  # only ever filled for the embedded system
    auth: str = "password"  # password | oauth2 (XOAUTH2 with a token from [oauth])


@dataclass(frozen=True)
class OAuthConfig:
    """`[oauth]`: who issues maild's access tokens and how maild proves who it is."""

    provider: str  # microsoft | google
    flow: str  # microsoft: client_credentials | device_code; google: service_account | refresh_token
    client_id: str = ""  # empty for a Google service account (its key names it)
    tenant: str = ""  # microsoft: the directory (tenant) ID or a verified domain
    secret_env: str = ""
    secret_command: str = ""
    scopes: tuple[str, ...] = ()  # empty: the provider's defaults for the flow
    authority: str = ""  # microsoft: the login host (other clouds, tests); default the public one
    token_uri: str = ""  # google: the token endpoint (tests); default Google's
    auth_uri: str = ""  # google refresh_token: the consent page `maild oauth login` opens
    ca_file: Path | None = None  # a CA bundle for the token endpoint (an internal CA)


@dataclass(frozen=True)
class EmbeddedConfig:
    host: str
    imap_port: int
    smtp_port: int
    accounts: Mapping[str, str]  # address → password


@dataclass(frozen=True)
class LdapConfig:
    """[directory.ldap]: where the directory is and how its entries read (see ldapdir.py)."""

    server: ServerConfig  # host, port, security, username (bind DN), password_env/_command
    base_dn: str
    kind: str = "openldap"  # openldap | ad: the preset filter and attributes
    filter: str = ""  # "" = the preset's
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field → attributes
    page_size: int = 500
    timeout_s: float = 30.0
    ca_file: str = ""


@dataclass(frozen=True)
class DirectoryConfig:
    """[directory]: the synced people directory (dirsync.py); source "" = rules/people.toml only."""

    source: str = ""  # "" | ldap | csv
    file: Path = Path("var/directory.json")  # the synced people, merged under rules/people.toml
    sync_at: time | None = None  # daily sync by the daemon at this local time; None: on demand
    max_removed: float = 0.2  # a sync removing more than this share needs --force
    ldap: LdapConfig | None = None
    csv_path: Path | None = None
    csv_encoding: str = "auto"
    csv_columns: Mapping[str, str] = field(default_factory=dict)


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
    oauth: OAuthConfig | None = None  # [oauth]: set when [imap] or [smtp] auth = "oauth2"
    directory: DirectoryConfig = DirectoryConfig()  # [directory]: synced people (LDAP, HR CSV)
    # [files] limits, [digest] attach_table, [chat] robots (filechatconfig)
    files_chat: FilesChatConfig = FilesChatConfig()

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
            auth=reader.choice(section, "auth", AUTH_MODES, "password"),
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
    data_dir = rel(reader.text("maild", "data_dir", "var"))
    directory = _directory_config(reader, rel, data_dir)
    plus_addressing = reader.boolean("mail", "plus_addressing", True)
    require_token = reader.boolean("security", "require_token", False)
    if require_token and not plus_addressing:
        raise ConfigError(reader.file, "security.require_token",
                          "require_token = true needs reply tokens, which ride in plus addresses",
                          "require_token = false  # or [mail] plus_addressing = true")
    imap, smtp = server("imap", 993, "tls"), server("smtp", 587, "starttls")
    oauth = _oauth_config(reader, rel, [s for s, c in (("imap", imap), ("smtp", smtp))
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
        log_format=log_format,
        embedded=embedded,
        inbox_address=inbox,
        plus_addressing=plus_addressing,
        processed_folder=reader.text("mail", "processed_folder", "Processed"),
        quarantine_folder=reader.text("mail", "quarantine_folder", "Quarantine"),
        idle_renew_s=reader.number("mail", "idle_renew_s", 540, low=5, high=1740),
        poll_interval_s=reader.number("mail", "poll_interval_s", 30, low=0.05, high=3600),
        batch_size=reader.integer("mail", "batch_size", 200, low=1, high=10000),
        imap=imap,
        smtp=smtp,
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
        oauth=oauth,
        directory=directory,
        files_chat=_files_chat(raw, reader.file),
    )


def _files_chat(raw: Mapping[str, Any], file: str) -> FilesChatConfig:
    try:
        return read_files_chat(raw)
    except SettingError as exc:
        raise ConfigError(file, exc.key, exc.problem, exc.example) from None


def _oauth_config(reader: _Reader, rel: Callable[[str], Path],
                  users: list[str]) -> OAuthConfig | None:
    """`[oauth]`, read only when a server signs in with OAuth2 (`users` names them)."""
    if not users:
        return None
    where = f'[{users[0]}] auth = "oauth2"'
    if "oauth" not in reader.raw:
        raise ConfigError(reader.file, "oauth", f"{where} needs an [oauth] section",
                          '[oauth] provider = "microsoft" flow = "client_credentials" '
                          'tenant = "corp.example" client_id = "..." '
                          'secret_env = "MAILD_OAUTH_SECRET"')
    if "secret" in reader.section("oauth"):
        raise ConfigError(reader.file, "oauth.secret",
                          "secrets are not read from the file; name an environment variable "
                          "or a command", 'secret_env = "MAILD_OAUTH_SECRET"')
    provider = reader.choice("oauth", "provider", tuple(OAUTH_FLOWS), "microsoft")
    flow = reader.choice("oauth", "flow", OAUTH_FLOWS[provider], OAUTH_FLOWS[provider][0])
    ca_file = reader.text("oauth", "ca_file", "")
    cfg = OAuthConfig(
        provider=provider, flow=flow,
        client_id=reader.text("oauth", "client_id", ""),
        tenant=reader.text("oauth", "tenant", ""),
        secret_env=reader.text("oauth", "secret_env", ""),
        secret_command=reader.text("oauth", "secret_command", ""),
        scopes=tuple(reader.strings("oauth", "scopes")),
        authority=reader.text("oauth", "authority", "").rstrip("/"),
        token_uri=reader.text("oauth", "token_uri", ""),
        auth_uri=reader.text("oauth", "auth_uri", ""),
        ca_file=rel(ca_file) if ca_file else None,
    )
    if provider == "microsoft" and not cfg.tenant:
        raise ConfigError(reader.file, "oauth.tenant", "Microsoft needs the tenant: its "
                          "directory (tenant) ID or a verified domain", 'tenant = "corp.example"')
    if flow != "service_account" and not cfg.client_id:
        raise ConfigError(reader.file, "oauth.client_id", "missing: the application (client) "
                          "ID of the app registration", 'client_id = "00000000-0000-0000-0000-0000'
                          '00000000"')
    if flow in OAUTH_SECRET_NEEDED and not (cfg.secret_env or cfg.secret_command):
        raise ConfigError(reader.file, "oauth.secret_env",
                          f'flow = "{flow}" needs {OAUTH_SECRET_NEEDED[flow]}: name an '
                          "environment variable (secret_env) or a command (secret_command)",
                          'secret_env = "MAILD_OAUTH_SECRET"')
    for key, url in (("authority", cfg.authority), ("token_uri", cfg.token_uri),
                     ("auth_uri", cfg.auth_uri)):
        if url and not url.startswith("https://"):
            raise ConfigError(reader.file, f"oauth.{key}", f"must be an https:// URL, not {url!r}",
                              f'{key} = "https://login.microsoftonline.com"'
                              if key == "authority" else f'{key} = "https://oauth2.googleapis.com'
                              '/token"')
    return cfg


def resolve_oauth_secret(oauth: OAuthConfig, environ: Mapping[str, str],
                         run_command: Callable[[str], str]) -> str:
    """The client secret or service-account key: from the environment, else a command's whole
    output (a JSON key has many lines)."""
    if oauth.secret_env and environ.get(oauth.secret_env):
        return environ[oauth.secret_env]
    if oauth.secret_command:
        return run_command(oauth.secret_command).strip()
    return ""


def _directory_config(reader: _Reader, rel: Callable[[str], Path], data_dir: Path
                      ) -> DirectoryConfig:
    """[directory], [directory.ldap], [directory.csv]: only what the source needs is required."""
    source = reader.choice("directory", "source", DIRECTORY_SOURCES, "")
    sync_at_text = reader.text("directory", "sync_at", "")
    sync_at = None
    if sync_at_text:
        try:
            sync_at = time.fromisoformat(sync_at_text)
        except ValueError:
            raise ConfigError(reader.file, "directory.sync_at", f"not a time: {sync_at_text!r}",
                              'sync_at = "02:30"') from None
    ldap = None
    if source == "ldap" or reader.section("directory.ldap"):
        section = "directory.ldap"
        security = reader.choice(section, "security", SECURITY_MODES, "tls")
        server = ServerConfig(
            host=reader.text(section, "host", ""),
            port=reader.integer(section, "port", 636 if security == "tls" else 389, low=1,
                                high=65535),
            security=security, username=reader.text(section, "username", ""),
            password_env=reader.text(section, "password_env", ""),
            password_command=reader.text(section, "password_command", ""))
        if "password" in reader.section(section):
            raise ConfigError(reader.file, f"{section}.password", "passwords are not read from "
                              "the file; name an environment variable or a command",
                              'password_env = "MAILD_LDAP_PASSWORD"')
        attributes = {}
        for name, value in reader.section(f"{section}.attributes").items():
            values = [value] if isinstance(value, str) else value
            if name not in DIRECTORY_FIELDS or not isinstance(values, list) or not all(
                    isinstance(v, str) and v for v in values):
                raise ConfigError(reader.file, f"{section}.attributes.{name}",
                                  f"fields are {', '.join(DIRECTORY_FIELDS)}, each an attribute "
                                  "name or a list of them", 'mail = ["mail", "proxyAddresses"]')
            attributes[name] = tuple(values)
        ldap = LdapConfig(
            server=server, base_dn=reader.text(section, "base_dn", ""),
            kind=reader.choice(section, "kind", DIRECTORY_KINDS, "openldap"),
            filter=reader.text(section, "filter", ""), attributes=attributes,
            page_size=reader.integer(section, "page_size", 500, low=1, high=100000),
            timeout_s=reader.number(section, "timeout_s", 30, low=1, high=600),
            ca_file=reader.text(section, "ca_file", ""))
        for key, value in (("host", server.host), ("base_dn", ldap.base_dn)):
            if source == "ldap" and not value:
                raise ConfigError(reader.file, f"{section}.{key}", "missing",
                                  'host = "ldap.corp.example"' if key == "host"
                                  else 'base_dn = "ou=people,dc=corp,dc=example"')
    csv_path = reader.text("directory.csv", "path", "")
    if source == "csv" and not csv_path:
        raise ConfigError(reader.file, "directory.csv.path", "missing",
                          'path = "hr/people.csv"')
    columns = reader.section("directory.csv.columns")
    if any(k not in CSV_FIELDS or not isinstance(v, str) for k, v in columns.items()):
        raise ConfigError(reader.file, "directory.csv.columns", f"fields are "
                          f"{', '.join(CSV_FIELDS)}, each a header", 'address = "公司邮箱"')
    return DirectoryConfig(
        source=source,
        file=rel(reader.text("directory", "file", str(data_dir / "directory.json"))),
        sync_at=sync_at,
        max_removed=reader.number("directory", "max_removed", 0.2, low=0, high=1),
        ldap=ldap, csv_path=rel(csv_path) if csv_path else None,
        csv_encoding=reader.text("directory.csv", "encoding", "auto"),
        csv_columns=dict(columns))


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
        """The table `name`; a dotted name ("directory.ldap") is a table inside a table."""
        value: Any = self.raw
        for part in name.split("."):
            value = value.get(part, {}) if isinstance(value, Mapping) else None
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
