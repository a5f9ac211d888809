"""The server and optional sections of config.toml, read for config.py: `ServerConfig`,
`[oauth]` (who issues maild's access tokens) and `[directory]` (the synced people directory).

Split from config.py to keep each module to one screenful of sections. Surprise (strict config,
tomlreader.py): a key is known only once it is read, so `[oauth]` is read whenever it is present,
even when no server signs in with OAuth2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from maild.core.tomlreader import ConfigError, StrictReader

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


def oauth_config(reader: StrictReader, rel: Callable[[str], Path],
                 users: list[str]) -> OAuthConfig | None:
    """`[oauth]` when a server signs in with OAuth2 (`users` names them), else None; read (and
    typed) whenever the section is present, so its keys stay known."""
    reader.section("oauth")  # a known section, also in files that do not have it
    if not users and "oauth" not in reader.raw:
        return None
    where = f'[{users[0]}] auth = "oauth2"' if users else ""
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
    if not users:
        return None
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


def first_line(output: str) -> str:
    """A password or webhook command's answer: its first line, stripped ("" for no output)."""
    return (output.splitlines() or [""])[0].strip()


def resolve_oauth_secret(oauth: OAuthConfig, environ: Mapping[str, str],
                         run_command: Callable[[str], str]) -> str:
    """The client secret or service-account key: from the environment, else a command's whole
    output (a JSON key has many lines)."""
    if oauth.secret_env and environ.get(oauth.secret_env):
        return environ[oauth.secret_env]
    if oauth.secret_command:
        return run_command(oauth.secret_command).strip()
    return ""


def directory_config(reader: StrictReader, rel: Callable[[str], Path], data_dir: Path
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
        for name, value in reader.free_section(f"{section}.attributes").items():
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
    columns = reader.free_section("directory.csv.columns")
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
