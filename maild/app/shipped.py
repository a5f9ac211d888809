"""The files that ship with maild (email templates, rules, the starter config, the systemd unit)
and `maild init`, which writes an editable copy of them into a folder.

Surprises:
- The repository keeps them at its top level (`templates/`, `rules/`, `config.toml`,
  `deploy/maild.service`); a wheel carries them as package data in `maild/_data/`
  (pyproject.toml maps them there). `shipped_root` finds whichever exists, so an editable
  install and `make test` use the repository's own files.
- `init --system` changes values in the starter config, not its comments: data, archive,
  secret and logs go to absolute paths under /var/lib/maild and /var/log/maild (the systemd
  unit's StateDirectory and LogsDirectory), because a relative path is relative to the
  config's folder, and /etc is read-only to the service.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STARTER_FILES = ("config.toml", "rules", "templates")
UNIT_FILE = Path("deploy") / "maild.service"

# What `init --system` sets, by section: absolute paths the unit can write, a real server.
SYSTEM_VALUES: Mapping[str, Mapping[str, Any]] = {
    "maild": {"data_dir": "/var/lib/maild", "archive_dir": "/var/lib/maild/archive",
              "secret_file": "/var/lib/maild/secret.key", "log_dir": "/var/log/maild"},
    "mail": {"embedded": False},
}


class InitError(Exception):
    """`maild init` cannot write where it was asked to."""


def shipped_root() -> Path:
    """The folder that holds the shipped `config.toml`, `rules/` and `templates/`."""
    package = Path(__file__).resolve().parent.parent  # maild/, above app/
    for candidate in (package / "_data", package.parent):
        if (candidate / "config.toml").is_file() and (candidate / "templates").is_dir():
            return candidate
    raise FileNotFoundError(f"maild's shipped files are missing from {package / '_data'}: "
                            f"reinstall maild")


def shipped_config() -> Path:
    return shipped_root() / "config.toml"


def init(target: Path, *, system: bool = False) -> list[Path]:
    """Write config.toml, rules/ and templates/ (and with `system`, maild.service) into
    `target`; never overwrites. Returns what was written."""
    root = shipped_root()
    names = [*STARTER_FILES, *(("maild.service",) if system else ())]
    clashes = [target / name for name in names if (target / name).exists()]
    if clashes:
        raise InitError(f"{', '.join(map(str, clashes))} already exist(s); maild init never "
                        f"overwrites: move them away or choose another folder")
    target.mkdir(parents=True, exist_ok=True)
    text = (root / "config.toml").read_text(encoding="utf-8")
    if system:
        text = system_config(text)
    (target / "config.toml").write_text(text, encoding="utf-8")
    for folder in ("rules", "templates"):
        shutil.copytree(root / folder, target / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    written = [target / name for name in STARTER_FILES]
    if system:
        shutil.copyfile(root / UNIT_FILE, target / "maild.service")
        written.append(target / "maild.service")
    return written


def system_config(text: str) -> str:
    """The starter config with `SYSTEM_VALUES` set (comments and everything else kept)."""
    for section, values in SYSTEM_VALUES.items():
        for key, value in values.items():
            text = set_value(text, section, key, value)
    return text


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
_VALUE = r'"(?:[^"\\]|\\.)*"|\'[^\']*\'|true|false|[-+0-9._:]+'


def set_value(text: str, section: str, key: str, value: Any) -> str:
    """`text` (TOML) with `key` in `[section]` set to `value`, its comment kept; the key is
    added below the section's header when it is missing, and the section at the end."""
    literal = _literal(value)
    line_re = re.compile(rf"^(\s*{re.escape(key)}\s*=\s*)({_VALUE})(.*)$")
    lines = text.splitlines(keepends=True)
    current, header_at = None, None
    for index, line in enumerate(lines):
        header = _HEADER.match(line)
        if header:
            current = header.group(1)
            if current == section and header_at is None:
                header_at = index
            continue
        found = line_re.match(line) if current == section else None
        if found:
            end = "\n" if line.endswith("\n") else ""
            lines[index] = found.group(1) + literal + found.group(3).rstrip("\n") + end
            break
    else:
        _add(lines, header_at, section, f"{key} = {literal}\n")
    result = "".join(lines)
    tomllib.loads(result)  # what was written must still read
    return result


def _add(lines: list[str], header_at: int | None, section: str, line: str) -> None:
    if header_at is None:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        lines += [f"\n[{section}]\n", line]
    else:
        lines.insert(header_at + 1, line)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
