"""The config file a test daemon process (`python -m maild run`) reads, written in one place,
and what tests of such processes share: counting a mailbox, waiting for a condition.

The crash, crash-consistency and daemon tests each start real maild processes; they differ only
in which mail system the daemon talks to and in a few extra keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INBOX = "collab@corp.example"


def write_daemon_config(folder: Path, *, host: str, imap_port: int, smtp_port: int,
                        embedded: bool = False, accounts: Mapping[str, str] | None = None,
                        security: str = "", mail: str = "", store_url: str = "") -> Path:
    """`folder/daemon.toml`: data under `folder`; either the embedded system on the given ports
    (with `accounts`), or an external one there, whose IMAP password is in TEST_IMAP_PASSWORD.
    `security` adds lines to the [security] table, `mail` to the [mail] table; `store_url` puts
    the state in PostgreSQL."""
    # The [imap]/[smtp] config of tests/app/test_ops.py's own writer (duplicates): ops needs other keys.
    servers = "" if embedded else f"""
[imap]
host = "{host}"
port = {imap_port}
security = "plain"
username = "{INBOX}"
password_env = "TEST_IMAP_PASSWORD"
[smtp]
host = "{host}"
port = {smtp_port}
security = "plain"
username = ""
"""
    account_lines = "".join(f'[[embedded.account]]\naddress = "{a}"\npassword = "{p}"\n'
                            for a, p in (accounts or {}).items())
    path = folder / "daemon.toml"
    path.write_text(f"""
[maild]
data_dir = "{folder / 'var'}"
secret_file = "{folder / 'var' / 'secret.key'}"
archive_dir = "{folder / 'archive'}"
[mail]
embedded = {str(embedded).lower()}
inbox_address = "{INBOX}"
idle_renew_s = 30
{mail}
{servers}
[embedded]
host = "{host}"
imap_port = {imap_port}
smtp_port = {smtp_port}
{account_lines}
[security]
allowed_domains = ["corp.example"]
{security}
[store]
url = "{store_url}"
[rules]
dir = "{ROOT / 'rules'}"
[templates]
dir = "{ROOT / 'templates'}"
""", encoding="utf-8")
    return path


def inbox_count(port: int, address: str, password: str = "demo") -> int:
    """How many emails `address`'s INBOX holds on the IMAP server at 127.0.0.1:`port`."""
    from imapclient import IMAPClient

    with IMAPClient("127.0.0.1", port=port, ssl=False, timeout=5) as client:
        client.login(address, password)
        client.select_folder("INBOX", readonly=True)
        return len(client.search(["ALL"]))


def wait_for(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Until `predicate()` holds (a server not listening yet counts as not yet)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("timed out")
