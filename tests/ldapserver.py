"""Debian's OpenLDAP (slapd) as a test directory: its own config, database and port in a temp dir.

`Slapd(folder).start()` writes a plain slapd.conf (core, cosine, inetorgperson; nis and msuser
for Active Directory's attributes, plus a small test-only object class that lets an
inetOrgPerson carry them), starts `slapd -d 0` on 127.0.0.1 and a free port, and `add(ldif)`
loads entries with `ldapadd` (ldap-utils), as an administrator would. A size limit of
`size_limit` entries per plain search makes paging matter, as Active Directory's MaxPageSize does.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SCHEMAS = ("core", "cosine", "inetorgperson", "nis", "msuser")
SUFFIX = "dc=corp,dc=example"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "slapd-test-secret"
# Not Active Directory's schema (its `user` class needs a security descriptor and more): an
# inetOrgPerson that may carry the attributes maild reads from AD, under their AD names.
AD_CLASS = """objectclass ( 1.3.6.1.4.1.4203.666.11.99.1 NAME 'maildTestAdUser'
    DESC 'test only: an inetOrgPerson with the Active Directory attributes maild reads'
    SUP inetOrgPerson STRUCTURAL
    MAY ( sAMAccountName $ userPrincipalName $ proxyAddresses $ department $ userAccountControl ) )
"""


def slapd_available() -> bool:
    return os.path.exists(SLAPD) and shutil.which("ldapadd") is not None and all(
        os.path.exists(f"/etc/ldap/schema/{name}.schema") for name in SCHEMAS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Slapd:
    def __init__(self, folder: Path, size_limit: int = 1000) -> None:
        self.folder = folder
        self.size_limit = size_limit
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}/"

    def start(self) -> Slapd:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "db").mkdir(exist_ok=True)
        (self.folder / "ad-test.schema").write_text(AD_CLASS)
        includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
        conf = self.folder / "slapd.conf"
        conf.write_text(
            f"{includes}include {self.folder / 'ad-test.schema'}\n"
            f"pidfile {self.folder / 'slapd.pid'}\nargsfile {self.folder / 'slapd.args'}\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f"sizelimit size.soft={self.size_limit} size.hard={self.size_limit} "
            "size.prtotal=unlimited\n"
            f'database mdb\nmaxsize 10485760\nsuffix "{SUFFIX}"\nrootdn "{ROOT_DN}"\n'
            f"rootpw {ROOT_PW}\ndirectory {self.folder / 'db'}\n")
        self.port = _free_port()
        self.process = subprocess.Popen(
            [SLAPD, "-f", str(conf), "-h", self.url, "-d", "0"],
            stdout=subprocess.DEVNULL, stderr=open(self.folder / "slapd.log", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("slapd exited: " + (self.folder / "slapd.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("slapd did not start within 10 s")

    def add(self, ldif: str) -> None:
        subprocess.run(["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
                       input=ldif.encode(), check=True, capture_output=True, timeout=30)

    def modify(self, ldif: str) -> None:
        subprocess.run(["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
                       input=ldif.encode(), check=True, capture_output=True, timeout=30)

    def search(self, *args: str) -> str:
        """`ldapsearch` output (LDIF), as an administrator sees it."""
        return subprocess.run(["ldapsearch", "-x", "-LLL", "-H", self.url, "-b", SUFFIX, *args],
                              check=True, capture_output=True, timeout=30).stdout.decode()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
