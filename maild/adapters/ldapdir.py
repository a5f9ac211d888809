"""LDAP and Active Directory as a source of people: the only ldap3 importer.

`Mapping` says which attributes hold what; `PRESETS` has OpenLDAP's inetOrgPerson and Active
Directory's user. `record_of(dn, attributes, mapping)` is pure (unit-tested with AD-shaped
entries); `fetch` is the thin adapter: bind, paged search, and one look-up per manager DN that
lies outside the search.

Surprises worth knowing:

* Values are read raw and decoded as UTF-8 here: directories send non-ASCII values base64 in
  LDIF (`displayName:: 546L5ZaG`), as UTF-8 on the wire, and ldap3 without the schema may hand
  back bytes or str.
* Active Directory: the address is `mail`, else the `SMTP:` (upper case = primary) entry of
  `proxyAddresses`, else `userPrincipalName` when it looks like an address; the other `smtp:`
  entries become aliases, as does `sAMAccountName`. Disabled accounts are filtered out by the
  preset filter (userAccountControl bit 2). AD answers at most 1,000 entries per page
  (MaxPageSize): the search is always paged (`page_size`).
* A manager DN that is not among the results (outside the base or the filter) is read once by
  its DN, so their address is known; one that does not exist is left to `directory.build`.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from maild.core.directory import ADDRESS_RE, Record, normal_dn

FIELDS = ("mail", "name", "aliases", "department", "title", "manager")
MAX_OUTSIDE_LOOKUPS = 500


@dataclass(frozen=True)
class AttributeMap:
    """Which attributes hold each field (the first that has a value wins; `aliases` takes all)."""

    filter: str
    mail: tuple[str, ...]
    name: tuple[str, ...]
    aliases: tuple[str, ...]
    department: tuple[str, ...]
    title: tuple[str, ...]
    manager: tuple[str, ...]

    def attributes(self) -> list[str]:
        return sorted({a for f in FIELDS for a in getattr(self, f)})


PRESETS: Mapping[str, AttributeMap] = {
    "openldap": AttributeMap(
        filter="(&(objectClass=inetOrgPerson)(mail=*))", mail=("mail",),
        name=("displayName", "cn"), aliases=("cn", "uid"), department=("departmentNumber", "ou"),
        title=("title",), manager=("manager",)),
    "ad": AttributeMap(
        filter="(&(objectClass=user)(objectCategory=person)"
               "(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
        mail=("mail", "proxyAddresses", "userPrincipalName"), name=("displayName", "cn"),
        aliases=("cn", "sAMAccountName", "proxyAddresses"), department=("department",),
        title=("title",), manager=("manager",)),
}


class DirectoryError(Exception):
    """The directory could not be read (the message says what to check, never the password)."""


@dataclass(frozen=True)
class LdapSettings:
    host: str
    port: int
    security: str  # tls | starttls | plain
    username: str  # a bind DN, or for AD also user@domain; "" binds anonymously
    password: str
    base_dn: str
    mapping: AttributeMap
    page_size: int = 500
    timeout_s: float = 30.0
    ca_file: str = ""


def mapping_for(kind: str, filter_: str = "",
                attributes: Mapping[str, Sequence[str]] | None = None) -> AttributeMap:
    """The preset for `kind` ("openldap" or "ad"), with the filter and attributes given instead."""
    if kind not in PRESETS:
        raise ValueError(f"directory kind must be one of {', '.join(PRESETS)}, not {kind!r}")
    found = PRESETS[kind]
    changes: dict[str, Any] = {f: tuple(v) for f, v in (attributes or {}).items()}
    if filter_:
        changes["filter"] = filter_
    return replace(found, **changes)


def record_of(dn: str, attributes: Mapping[str, Sequence[Any]], mapping: AttributeMap) -> Record:
    """One entry as a `Record`; attribute names are matched without regard to case."""
    values = {k.lower(): [_text(v) for v in vs] for k, vs in attributes.items()}

    def all_of(names: Iterable[str]) -> list[str]:
        return [v.strip() for n in names for v in values.get(n.lower(), ()) if v.strip()]

    def first(names: Iterable[str]) -> str:
        return next(iter(all_of(names)), "")

    address = ""
    for name in mapping.mail:
        found = [v for v in values.get(name.lower(), ()) if v.strip()]
        if name.lower() == "proxyaddresses":
            found = [v[5:] for v in found if v.startswith("SMTP:")]
        found = [v.strip() for v in found if ADDRESS_RE.match(v.strip())]
        if found:
            address = found[0]
            break
    aliases: list[str] = []
    for name in mapping.aliases:
        for value in all_of([name]):
            if name.lower() == "proxyaddresses":
                if value[:5].lower() != "smtp:":
                    continue  # X500:, SIP:, X400: are not mail
                value = value[5:]
            aliases.append(value)
    display = first(mapping.name)
    return Record(where=dn, address=address, name=display,
                  aliases=tuple(a for a in dict.fromkeys(aliases)
                                if a != display and a.lower() != address.lower()),
                  department=first(mapping.department), title=first(mapping.title),
                  manager=first(mapping.manager), key=dn)


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return str(value)


def fetch(settings: LdapSettings) -> tuple[list[Record], dict[str, str]]:
    """Every matching entry as a `Record`, and the addresses of managers found outside the
    search (normalised DN → address). DirectoryError when the directory cannot be read."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    where = f"{settings.host}:{settings.port} ({settings.security})"
    tls = None
    if settings.security in ("tls", "starttls"):
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=settings.ca_file or None)
    server = ldap3.Server(settings.host, port=settings.port, use_ssl=settings.security == "tls",
                          tls=tls, get_info=ldap3.NONE, connect_timeout=settings.timeout_s)
    try:
        conn = ldap3.Connection(server, user=settings.username or None,
                                password=settings.password or None, read_only=True,
                                receive_timeout=int(settings.timeout_s), raise_exceptions=True)
        conn.open()
        if settings.security == "starttls":
            conn.start_tls()
        conn.bind()
    except LDAPException as exc:
        raise DirectoryError(f"{where}: cannot bind as {settings.username or '(anonymous)'}: "
                             f"{type(exc).__name__}: {_reason(exc)}; check [directory.ldap] "
                             f"host, port, security, username and the password") from None
    try:
        attributes = settings.mapping.attributes()
        records = []
        for entry in conn.extend.standard.paged_search(
                settings.base_dn, settings.mapping.filter, ldap3.SUBTREE, attributes=attributes,
                paged_size=settings.page_size, generator=True):
            if entry.get("type") == "searchResEntry":
                records.append(record_of(entry["dn"], entry["raw_attributes"], settings.mapping))
        return records, _outside(conn, records, attributes, settings.mapping)
    except LDAPException as exc:
        raise DirectoryError(f"{where}: search of {settings.base_dn!r} with "
                             f"{settings.mapping.filter!r} failed: {type(exc).__name__}: "
                             f"{_reason(exc)}; check [directory.ldap] base_dn and filter") from None
    finally:
        conn.unbind()


def _outside(conn: Any, records: Sequence[Record], attributes: list[str],
             mapping: AttributeMap) -> dict[str, str]:
    """Addresses of managers named by DN who are not among `records` (read by their DN)."""
    import ldap3
    from ldap3.core.exceptions import LDAPNoSuchObjectResult

    known = {normal_dn(r.key) for r in records}
    wanted = sorted({r.manager for r in records if r.manager and "=" in r.manager
                     and normal_dn(r.manager) not in known})[:MAX_OUTSIDE_LOOKUPS]
    out = {}
    for dn in wanted:
        try:
            conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=attributes)
        except LDAPNoSuchObjectResult:
            continue
        for entry in conn.response or ():
            if entry.get("type") == "searchResEntry":
                found = record_of(entry["dn"], entry["raw_attributes"], mapping).address
                if found:
                    out[normal_dn(dn)] = found.lower()
    return out


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "description", "") or exc).strip() or type(exc).__name__
