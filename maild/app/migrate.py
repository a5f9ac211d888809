"""`maild migrate`: upgrade a store's data format in place, and copy a store between the embedded
TinyDB store and PostgreSQL (either way).

Upgrade steps are small named functions, one per format version (`UPGRADES[v]` takes the data
from version v to v + 1); each step and its new version number are committed together, so an
interrupted upgrade resumes where it stopped. Before upgrading an embedded store its files are
copied to `DATA_DIR/backup-format-<v>/`.

Surprises:
- Migrating needs the daemon stopped (it takes the store's lock: exit 75 while one runs).
- A copy goes only into an empty target, never merges; the source is upgraded first.
- Only `run_migrate_command` reads the clock and prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from maild.adapters.store import FORMAT_VERSION, FormatError, Store, item_summary, open_store
from maild.adapters.storeapi import LockError
from maild.core.config import Config, ConfigError, load_config

EXAMPLE = ("maild migrate -c config.toml                 # upgrade the data format in place\n"
           "  maild migrate --to postgresql://maild@db/maild   # copy into PostgreSQL\n"
           "  maild migrate --from postgresql://maild@db/maild --to /var/lib/maild/copy")
HELP = ("Upgrade the store's data format (a backup is kept), or copy the store between TinyDB and "
        "PostgreSQL (--to / --from: a data directory or a postgresql:// URL; the daemon must be "
        "stopped).")


def _v1_to_v2(store: Store) -> None:
    """Item summaries for the operator's listings; the planner's memory in its own table."""
    for item in store.all_items():
        store._index.put(item_summary(item))
    legacy = store.meta_get("planner")
    if isinstance(legacy, Mapping):
        store.put_schedule_state(legacy)
        store._meta.remove("planner")


UPGRADES: dict[int, tuple[str, Callable[[Store], None]]] = {
    1: ("item summaries; the schedule's memory per person", _v1_to_v2),
}


def upgrade(store: Store) -> list[str]:
    """Run the upgrade steps the store needs; what was done, one line per step."""
    version = store.format_version
    done: list[str] = []
    if version is None or version >= FORMAT_VERSION:
        return done
    if store.data_dir is not None:
        backup = store.data_dir / f"backup-format-{version}"
        if not backup.exists():
            backup.mkdir()
            for path in store.data_dir.iterdir():
                if path.name.startswith("live."):
                    shutil.copy2(path, backup / path.name)
            done.append(f"backup: {backup}")
    while version < FORMAT_VERSION:
        name, step = UPGRADES[version]
        step(store)
        store.set_format_version(version + 1)
        store.commit()
        done.append(f"format {version} -> {version + 1}: {name}")
        version += 1
    compact = getattr(store.engine, "compact", None)
    if compact is not None:
        compact()  # the snapshot in the current layout
    return done


def copy(source: Store, target: Store) -> dict[str, int]:
    """Every document of `source` into the empty `target`, committed once; counts per table."""
    if target.format_version is not None and any(target.counts().values()):
        raise ValueError("the target already holds data; maild migrate copies only into an "
                         "empty store")
    counts: dict[str, int] = {}
    for table, key, text in source.export():
        target.load([(table, key, text)])
        counts[table] = counts.get(table, 0) + 1
    target.set_format_version(FORMAT_VERSION)
    target.commit()
    compact = getattr(target.engine, "compact", None)
    if compact is not None:
        compact()
    return counts


def add_migrate_command(add: Callable[[str, str], argparse.ArgumentParser]) -> None:
    sub = add("migrate", HELP)
    sub.add_argument("--from", dest="source", metavar="STORE",
                     help="the store to read: a data directory or a postgresql:// URL "
                          "(default: the configured one)")
    sub.add_argument("--to", dest="target", metavar="STORE",
                     help="copy into this empty store (a data directory or a postgresql:// URL)")
    sub.add_argument("--json", action="store_true", help="print JSON for scripts")


def run_migrate_command(args: argparse.Namespace, out: TextIO | None = None,
                        err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"maild: configuration error: {exc}", file=err)
        return 78
    source_spec = args.source or configured_store(config)
    report: dict[str, Any] = {"source": _shown(source_spec)}
    try:
        with open_store(source_spec, inbox=config.inbox_address, upgrading=True) as source:
            report["upgrade"] = upgrade(source)
            report["format_version"] = source.format_version
            if args.target:
                report["target"] = _shown(args.target)
                with open_store(args.target, inbox=config.inbox_address) as target:
                    report["copied"] = copy(source, target)
    except LockError as exc:
        print(f"maild: {exc}; stop the daemon before migrating", file=err)
        return 75
    except (FormatError, ValueError) as exc:
        print(f"maild: {exc}", file=err)
        return 1
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2), file=out)
    else:
        print(f"store {report['source']}: format version {report['format_version']}", file=out)
        for line in report["upgrade"] or ["already current: nothing to upgrade"]:
            print(f"  {line}", file=out)
        if "copied" in report:
            total = sum(report["copied"].values())
            parts = ", ".join(f"{k} {v}" for k, v in sorted(report["copied"].items()))
            print(f"copied {total} documents to {report['target']} ({parts or 'empty'})",
                  file=out)
    return 0


def configured_store(config: Config) -> str:
    """The store the config names: `[store] url`, else `[maild] data_dir`."""
    return config.store_url or str(config.data_dir)


def _shown(spec: str | Path) -> str:
    """A store's name for people: a URL without its password."""
    text = str(spec)
    if "://" in text and "@" in text.split("://", 1)[1]:
        scheme, rest = text.split("://", 1)
        user, host = rest.rsplit("@", 1)
        return f"{scheme}://{user.split(':', 1)[0]}@{host}"
    return text
