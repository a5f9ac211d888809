"""Keep the templates' compiled code on disk between starts: compiling every template is half of
the daemon's start-up (~0.4 s of ~0.8 s); loading them from this cache takes a few milliseconds.

Surprises worth knowing:

* The cache is Python code that the renderer runs, so a directory anyone else could write to is
  never used: it must be a real directory (not a symlink) owned by this user and not writable by
  group or others (`usable_directory`). It is per-user: `$XDG_CACHE_HOME/maild`, else
  `~/.cache/maild` (under systemd, `HOME` is the service user's home, `/var/lib/maild`).
* A problem with the cache never stops the daemon nor changes an email: a missing, read-only,
  foreign-owned or corrupt cache means the templates are compiled, as without one.
* Jinja keys an entry by the template's name and checks the checksum of its source, so an edited
  template is compiled again. What Jinja does not check is kept in the name of the cache's
  subdirectory (`cache_key`): the templates' directory, Jinja's and Python's versions and the
  environment's options (trim_blocks, autoescaping per template ...), so code compiled with
  other settings is never loaded.
* Writes are atomic (Jinja writes a temporary file and renames it) and not fsynced: a torn file
  after a crash fails Jinja's checks and is compiled again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import jinja2
from jinja2 import Environment
from jinja2.bccache import Bucket, FileSystemBytecodeCache

log = logging.getLogger(__name__)


def default_cache_root(environ: Mapping[str, str]) -> Path:
    """Where a user's caches go (XDG base directories): `$XDG_CACHE_HOME/maild`, else
    `$HOME/.cache/maild` (the password database's home when `HOME` is not set)."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):  # the spec: a relative path is invalid and ignored
        return Path(xdg) / "maild"
    home = environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".cache" / "maild"


def cache_key(templates_dir: Path, env: Environment, names: Iterable[str]) -> str:
    """What, besides a template's name and source, decides its compiled code."""
    autoescaped = sorted(n for n in names if callable(env.autoescape) and env.autoescape(n))
    parts = (
        str(Path(templates_dir).resolve()), jinja2.__version__, sys.version, type(env).__qualname__,
        env.block_start_string, env.block_end_string, env.variable_start_string,
        env.variable_end_string, env.comment_start_string, env.comment_end_string,
        env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks, env.lstrip_blocks,
        env.newline_sequence, env.keep_trailing_newline, env.optimized, env.autoescape is True,
        sorted(env.extensions), autoescaped, env.undefined.__qualname__,
    )
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:24]


def usable_directory(path: Path) -> bool:
    """Make `path` (mode 0700) if it is missing; is it ours alone to trust? (Checked at each
    level from the cache's root down: a writable parent would let someone swap a directory.)"""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid()
            and not found.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


class SafeBytecodeCache(FileSystemBytecodeCache):
    """Jinja's file cache, except that no error of reading or writing it escapes: a failed read
    compiles the template, a failed write leaves it uncached."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # a corrupt file (pickle's or marshal's errors): compile instead
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError as exc:  # read-only, full or vanished: only start-up is slower
            log.debug("event=template_cache_unwritable error=%r", exc)


def bytecode_cache(root: Path | None, templates_dir: Path, env: Environment,
                   names: Iterable[str]) -> SafeBytecodeCache | None:
    """The cache for `env`'s templates under `root`, or None (no root, or one not safe to use)."""
    if root is None:
        return None
    directory = Path(root) / "templates" / cache_key(templates_dir, env, names)
    if not all(usable_directory(d) for d in (Path(root), directory.parent, directory)):
        log.warning("event=template_cache_unused dir=%s reason=missing_unwritable_or_not_private",
                    directory)
        return None
    return SafeBytecodeCache(str(directory))
