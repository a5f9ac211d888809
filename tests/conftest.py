"""Shared fixtures: the shipped config, the rules, and a running mail system (embedded or Dovecot)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="session")
def shipped_config_path() -> Path:
    return ROOT / "config.toml"


@pytest.fixture(scope="session")
def shipped_config(shipped_config_path: Path):
    from maild.core.config import load_config
    return load_config(shipped_config_path)


@pytest.fixture
def own_config(tmp_path: Path) -> Path:
    """The shipped config.toml copied into tmp_path, so that its relative data (var/, archive/,
    the demo's var/demo/) lands there; its rules and templates stay the repository's."""
    from maild.app.shipped import set_value

    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    for section in ("rules", "templates"):
        text = set_value(text, section, "dir", str(ROOT / section))
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def rules(shipped_config):
    from maild.app.wiring import Rules
    return Rules.load(shipped_config.rules_dir)


MAIL_SYSTEMS = ("embedded", "dovecot")


def make_mail_system(kind: str, accounts: dict[str, str], host: str = "127.0.0.1"):
    """A started mail system of `kind`; skips (fails under CI=true) when Dovecot is missing."""
    if kind == "embedded":
        from maild.adapters.embedded import EmbeddedMailSystem
        system = EmbeddedMailSystem(host, 0, 0, accounts)
    else:
        from mailservers import DovecotMailSystem, dovecot_available
        if not dovecot_available():
            reason = ("dovecot is not installed (apt-get install dovecot-imapd dovecot-lmtpd; "
                      ".ci/run does it)")
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true and {reason}: in CI none may skip")
            pytest.skip(reason)
        system = DovecotMailSystem(host, 0, 0, accounts)
    system.start()
    return system


@pytest.fixture(params=MAIL_SYSTEMS, ids=MAIL_SYSTEMS)
def mail_system(request, shipped_config) -> Iterator:
    """A running mail system with the shipped accounts, on free ports: the embedded one
    (pymap + aiosmtpd) and Dovecot behind an SMTP-to-LMTP front door (tests/mailservers.py)."""
    emb = shipped_config.embedded_system
    system = make_mail_system(request.param, dict(emb.accounts), emb.host)
    try:
        yield system
    finally:
        getattr(system, "remove", system.stop)()


PLUS_MODES = ("plus", "no-plus")


@pytest.fixture(params=PLUS_MODES, ids=PLUS_MODES)
def plus_mail(request, shipped_config) -> Iterator:
    """A fresh embedded mail system per test (it starts in milliseconds), with plus addressing
    or without (it then refuses `collab+…@`, as Tencent Exmail and on-prem Exchange do)."""
    emb = shipped_config.embedded_system
    system = make_mail_system("embedded", dict(emb.accounts), emb.host)
    system.plus_addressing = request.param == "plus"
    yield system
    system.stop()


@pytest.fixture
def convo(mail_system, tmp_path) -> Iterator:
    """The conversation most conversation tests start from: maild on `mail_system` (embedded
    and Dovecot), from Monday 2026-08-03 09:15 in Shanghai. A module that needs another day,
    mail system or config defines its own `convo`."""
    from datetime import datetime

    from conversation import TZ, Conversation, FakeClock, make_config

    clock = FakeClock(datetime(2026, 8, 3, 9, 15, tzinfo=TZ))
    conversation = Conversation(mail_system, make_config(mail_system, tmp_path / "var"), clock)
    yield conversation
    conversation.close()


@pytest.fixture
def plus_convo(plus_mail, tmp_path) -> Iterator:
    """A conversation (tests/conversation.py) over `plus_mail`, maild configured to match,
    from Monday 2026-08-03 09:15 in Shanghai."""
    from datetime import datetime

    from conversation import TZ, Conversation, FakeClock, make_config

    config = make_config(plus_mail, tmp_path / "var",
                         **{"mail.plus_addressing": plus_mail.plus_addressing})
    conversation = Conversation(plus_mail, config, FakeClock(datetime(2026, 8, 3, 9, 15,
                                                                      tzinfo=TZ)))
    yield conversation
    conversation.close()


@pytest.fixture(scope="module")
def embedded_mail(shipped_config) -> Iterator:
    """One embedded mail system with the shipped accounts, shared by a module's tests."""
    emb = shipped_config.embedded_system
    system = make_mail_system("embedded", dict(emb.accounts), emb.host)
    yield system
    system.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator:
    """One PostgreSQL server (Debian's `postgresql`) for the session; skips (fails under CI=true)
    when it is not installed."""
    from pgserver import PgServer, pg_bin

    if pg_bin() is None:
        reason = "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}: in CI none may skip")
        pytest.skip(reason)
    server = PgServer().start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server, request) -> str:
    """A URL to a schema of this test's own on the session's PostgreSQL server."""
    import re
    schema = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return pg_server.url(schema)


STORE_BACKENDS = ("tinydb", "postgresql")


@pytest.fixture(params=STORE_BACKENDS, ids=STORE_BACKENDS)
def store_backend(request, tmp_path) -> str:
    """Where a test's store lives: a data dir, or a PostgreSQL URL (a schema of its own)."""
    if request.param == "tinydb":
        return str(tmp_path / "var")
    return request.getfixturevalue("pg_url")
