"""A PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster in a temp dir on a
free port of 127.0.0.1, never the system's service (DESIGN.md §5).

`initdb` and `postgres` refuse to run as root: as root they run as the package's `postgres` user
(`runuser`), in a folder it owns inside a 0755 temp dir. `fsync=off`: a test server. Each test
gets its own schema (`PgServer.url(schema)`), so tests share one server and never see each
other's tables.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
USER = "maild"


def pg_bin() -> Path | None:
    """The newest installed server's bin folder (None when PostgreSQL is not installed)."""
    for folder in BIN_DIRS:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        folder = pg_bin()
        assert folder is not None, "PostgreSQL is not installed"
        self.bin = folder
        self.root = Path(tempfile.mkdtemp(prefix="maild-pg-"))
        os.chmod(self.root, 0o755)
        self.data = self.root / "data"
        self.port = _free_port()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, text=True,
                       timeout=60)

    def start(self) -> PgServer:
        self.data.mkdir(mode=0o700)
        if self._as:
            shutil.chown(self.data, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER,
                  "--no-sync", "-E", "UTF8")
        options = (f"-k {self.data} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c full_page_writes=off -c synchronous_commit=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-l",
                  str(self.data / "log"), "start")
        return self

    def url(self, schema: str = "") -> str:
        """A URL to the `postgres` database; with `schema`, that schema (created) first in the
        search path."""
        base = f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"
        if not schema:
            return base
        import psycopg

        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        return f"{base}?options={quote(f'-csearch_path={schema}')}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.root, ignore_errors=True)
