"""`maild directory`: sync the people directory from LDAP / Active Directory or an HR export,
show what a sync would change, check the directory, find who a name means.

The shell around `directory.py`: reads the source (`ldapdir.fetch`, `hrcsv.read_export`) and
rules/people.toml, writes the synced file atomically. The daemon calls `sync` on its schedule
(`[directory] sync_at`) and re-reads the file when it changes; the CLI calls it on demand.

Surprises worth knowing:

* A sync that would remove more than `[directory] max_removed` of the directory (20 %), or
  everyone, is refused unless `--force`: a wrong base DN or filter must not empty the directory
  and send every owner's escalation to the initiator.
* Problems (unknown managers, duplicates, people without mail) do not stop a sync: the people
  that can be used are written, the rest are listed, and the file keeps the list for `check`.
* Exit codes: 0 done (or dry run), 1 refused or the directory has problems (`check`), 66 no such
  file, 69 the directory server cannot be reached or read, 78 configuration error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TextIO

from maild.adapters import ldapdir
from maild.adapters.files import atomic_write_bytes
from maild.app.wiring import run_command
from maild.core import directory
from maild.core.config import Config, load_config, resolve_password
from maild.core.directory import Change, Problem, Record
from maild.mail import hrcsv

EX_OK, EX_FAILED, EX_NOINPUT, EX_UNAVAILABLE, EX_CONFIG = 0, 1, 66, 69, 78
EXAMPLES = {
    "sync": "maild directory sync --dry-run     # what a sync from [directory] source would change\n"
            "  maild directory sync               # write it; the daemon picks it up",
    "import": "maild directory import hr/people.csv --dry-run\n"
              "  maild directory import 花名册.csv --encoding gbk",
    "check": "maild directory check              # duplicates, unknown or cyclic managers",
    "find": "maild directory find 王喆\n  maild directory find 产品部经理 --json",
}
SHORT = {
    "sync": "sync from the configured source (LDAP / AD or CSV)",
    "import": "import an HR export (CSV) as the synced directory",
    "check": "check the directory in use",
    "find": "whom a name means",
}
HELP = {
    "sync": "Read people from the configured source ([directory] source: ldap or csv), check "
            "them, show what changes, and write the synced directory (refused when it would "
            "remove more than [directory] max_removed of it, unless --force).",
    "import": "Import an HR export (CSV, UTF-8 or GBK, Chinese or English headers) as the synced "
              "directory: the same checks, diff and safety as sync.",
    "check": "Check the directory maild uses (synced people with rules/people.toml over them): "
             "who is in it, people without mail, duplicate addresses, unknown or cyclic managers "
             "(exit 1 when there are problems).",
    "find": "Show whom a name, alias, department+title or address means, as maild resolves an "
            "owner (several lines: ambiguous).",
}


@dataclass(frozen=True)
class SyncResult:
    source: str
    people: int
    changes: tuple[Change, ...]
    problems: tuple[Problem, ...]
    refused: str  # why nothing was written ("" when written, or a dry run)
    written: bool
    seconds: float


def read_source(config: Config, environ: Mapping[str, str], *, csv_file: Path | None = None,
                encoding: str | None = None,
                run_command: Callable[[str], str] = run_command
                ) -> tuple[str, list[Record], dict[str, str]]:
    """(source description, records, managers outside the search) from the configured source,
    or from `csv_file`. ldapdir.DirectoryError, hrcsv.ExportError, OSError when unreadable."""
    cfg = config.directory
    if csv_file is not None or cfg.source == "csv":
        path = csv_file or cfg.csv_path
        assert path is not None  # config.py requires [directory.csv] path for source = "csv"
        records = hrcsv.read_export(path.read_bytes(), path.name,
                                    encoding=encoding or cfg.csv_encoding,
                                    columns=cfg.csv_columns)
        return f"csv {path}", records, {}
    if cfg.source != "ldap" or cfg.ldap is None:
        raise ldapdir.DirectoryError("no source: set [directory] source = \"ldap\" or \"csv\", "
                                     "or import a file with `maild directory import FILE`")
    ldap = cfg.ldap
    server = ldap.server
    settings = ldapdir.LdapSettings(
        host=server.host, port=server.port, security=server.security, username=server.username,
        password=resolve_password(server, environ, run_command), base_dn=ldap.base_dn,
        mapping=ldapdir.mapping_for(ldap.kind, ldap.filter, ldap.attributes),
        page_size=ldap.page_size, timeout_s=ldap.timeout_s, ca_file=ldap.ca_file)
    records, outside = ldapdir.fetch(settings)
    scheme = "ldaps" if server.security == "tls" else "ldap"
    return f"{scheme}://{server.host}:{server.port}/{ldap.base_dn}", records, outside


def hand_written(config: Config) -> list[dict[str, Any]]:
    path = config.rules_dir / "people.toml"
    if not path.exists():
        return []
    return list(tomllib.loads(path.read_text(encoding="utf-8")).get("person", []))


def load_synced(path: Path) -> directory.Synced | None:
    return directory.decode(path.read_bytes(), str(path)) if path.exists() else None


def sync(config: Config, now: datetime, environ: Mapping[str, str], *, dry_run: bool = False,
         force: bool = False, csv_file: Path | None = None, encoding: str | None = None,
         run_command: Callable[[str], str] = run_command) -> SyncResult:
    """Read the source, check it, compare with the synced file, and (unless `dry_run` or
    refused) write the new file atomically."""
    started = time.perf_counter()
    source, records, outside = read_source(config, environ, csv_file=csv_file, encoding=encoding,
                                           run_command=run_command)
    known = {str(p.get("address", "")).lower() for p in hand_written(config)}
    people, problems = directory.build(records, known=known, outside=outside)
    old = load_synced(config.directory.file)
    changes = directory.diff(old.people if old else (), people)
    refused = ""
    if not people:
        refused = f"the source gave no usable person ({len(records)} entries read)"
    elif old and not force:
        refused = directory.too_many_removed(old.people, changes, config.directory.max_removed)
    written = not (dry_run or refused)
    if written:
        atomic_write_bytes(config.directory.file, directory.encode(directory.Synced(
            people=tuple(people), source=source, synced_at=now.isoformat(),
            problems=tuple(problems))))
    return SyncResult(source, len(people), tuple(changes), tuple(problems), refused, written,
                      time.perf_counter() - started)


def sync_due(sync_at: clock_time, last: datetime | None, now: datetime) -> bool:
    """Has the daily slot `sync_at` come since `last` (the last sync or attempt)?"""
    slot = now.replace(hour=sync_at.hour, minute=sync_at.minute, second=0, microsecond=0)
    if slot > now:
        slot -= timedelta(days=1)
    return last is None or last < slot


def check(config: Config) -> tuple[dict[str, Any], list[Problem]]:
    """The directory in use: counts, and its problems (the last sync's, and the merged
    directory's managers: unknown, self, cycles)."""
    synced = load_synced(config.directory.file)
    hand = hand_written(config)
    merged = directory.merge(synced.people if synced else (), hand)
    records = [Record(where=str(p["address"]), address=str(p["address"]),
                      name=str(p.get("name", "")), manager=str(p.get("manager", "")))
               for p in merged]
    _people, problems = directory.build(records)
    synced_addresses = {p["address"] for p in synced.people} if synced else set()
    facts = {"file": str(config.directory.file), "source": synced.source if synced else "",
             "synced_at": synced.synced_at if synced else "",
             "synced": len(synced_addresses), "hand_written": len(hand),
             "overrides": sum(str(p.get("address", "")).lower() in synced_addresses
                              for p in hand),
             "people": len(merged)}
    return facts, [*(synced.problems if synced else ()), *problems]


# ---------------------------------------------------------------------------------------------
# CLI


def add_directory_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Register `maild directory` and its subcommands with cli.py's `add(name, help)` helper."""
    parent = add("directory", "Sync, import, check and search the people directory (LDAP / "
                              "Active Directory, HR exports, rules/people.toml).")
    subs = parent.add_subparsers(dest="directory_command", required=True, metavar="SUBCOMMAND")
    made = {}
    for name in ("sync", "import", "check", "find"):
        sub = subs.add_parser(name, help=SHORT[name], description=HELP[name],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="example:\n  " + EXAMPLES[name])
        sub.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                         help="configuration file (default: ./config.toml)")
        sub.add_argument("--json", action="store_true", help="print JSON for scripts")
        made[name] = sub
    made["import"].add_argument("file", type=Path, metavar="FILE", help="a CSV export")
    made["import"].add_argument("--encoding", default=None, metavar="NAME",
                                help="auto (default: BOM, UTF-8, then GBK/GB18030), utf-8, gbk")
    for name in ("sync", "import"):
        made[name].add_argument("--dry-run", action="store_true",
                                help="show what would change; write nothing")
        made[name].add_argument("--force", action="store_true",
                                help="write even when it removes more than [directory] "
                                     "max_removed of the directory")
    made["find"].add_argument("text", metavar="TEXT", help="a name, alias, 部门+职位 or address")


def run_directory_command(args: argparse.Namespace, out: TextIO = sys.stdout,
                          err: TextIO = sys.stderr,
                          environ: Mapping[str, str] | None = None) -> int:
    config = load_config(args.config)
    environ = os.environ if environ is None else environ
    command = args.directory_command
    if command in ("sync", "import"):
        csv_file = args.file if command == "import" else None
        if csv_file is not None and not csv_file.exists():
            print(f"maild: no such file: {csv_file}", file=err)
            return EX_NOINPUT
        try:
            result = sync(config, datetime.now(config.tz), environ, dry_run=args.dry_run,
                          force=args.force, csv_file=csv_file,
                          encoding=getattr(args, "encoding", None))
        except (ldapdir.DirectoryError, hrcsv.ExportError, OSError, ValueError) as exc:
            print(f"maild: directory: {exc}", file=err)
            return EX_UNAVAILABLE
        if args.json:
            out.write(json.dumps(asdict(result), ensure_ascii=False, indent=2, default=str) + "\n")
        else:
            out.write(format_sync(result, config.directory.file, args.dry_run))
        return EX_FAILED if result.refused else EX_OK
    if command == "check":
        try:
            facts, problems = check(config)
        except (ValueError, OSError) as exc:
            print(f"maild: directory: {exc}", file=err)
            return EX_FAILED
        if args.json:
            out.write(json.dumps({**facts, "problems": [asdict(p) for p in problems]},
                                 ensure_ascii=False, indent=2) + "\n")
        else:
            out.write(format_check(facts, problems))
        return EX_FAILED if any(p.kind != "self_manager" for p in problems) else EX_OK
    from maild.app.wiring import Rules
    people = Rules.from_config(config).people
    found = people.resolve(args.text)
    rows = [{"name": p.name, "address": p.address, "department": p.department,
             "title": p.title, "manager": p.manager} for p in found]
    if args.json:
        out.write(json.dumps(rows, ensure_ascii=False, indent=2) + "\n")
    else:
        for row in rows:
            role = " ".join(x for x in (row["department"], row["title"]) if x)
            boss = f"manager {row['manager']}" if row["manager"] else ""
            out.write("  ".join(x for x in (row["name"], f"<{row['address']}>", role, boss)
                                if x) + "\n")
        if not rows:
            out.write(f"nobody: {args.text!r} names no one in the directory\n")
        elif len(rows) > 1:
            out.write(f"{len(rows)} people: as an owner, {args.text!r} would be asked about\n")
    return EX_OK if len(rows) == 1 else EX_FAILED


def format_sync(result: SyncResult, file: Path, dry_run: bool) -> str:
    lines = [f"{result.source}: {result.people} people ({result.seconds:.1f} s)"]
    marks = {"added": "+ added  ", "removed": "- removed", "changed": "~ changed"}
    for change in result.changes:
        line = f"  {marks[change.kind]} {change.address}  {change.name}"
        if change.fields:
            line += ": " + "; ".join(f"{f} {_show(old)} → {_show(new)}"
                                     for f, old, new in change.fields)
        lines.append(line)
    if not result.changes:
        lines.append("  no changes")
    if result.problems:
        lines.append(f"problems ({len(result.problems)}):")
        lines += [f"  {p.line()}" for p in result.problems]
    if result.refused:
        lines.append(f"refused, nothing written: {result.refused}; check the source, or run "
                     f"again with --force")
    elif dry_run:
        lines.append("dry run: nothing written")
    else:
        lines.append(f"written to {file} (a running daemon reads it within a minute)")
    return "\n".join(lines) + "\n"


def format_check(facts: Mapping[str, Any], problems: list[Problem]) -> str:
    lines = [f"{facts['people']} people: {facts['synced']} synced"
             + (f" from {facts['source']} at {facts['synced_at']}" if facts["source"] else "")
             + f", {facts['hand_written']} in rules/people.toml ({facts['overrides']} of them "
               f"over synced people)"]
    if problems:
        lines.append(f"problems ({len(problems)}):")
        lines += [f"  {p.line()}" for p in problems]
    else:
        lines.append("no problems")
    return "\n".join(lines) + "\n"


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return repr(value) if value == "" else str(value)
