"""Shared fixtures: the shipped config, the rules, and a running embedded mail system."""

from __future__ import annotations

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
    from maild.config import load_config
    return load_config(shipped_config_path)


@pytest.fixture(scope="session")
def rules(shipped_config):
    from maild.service import Rules
    return Rules.load(shipped_config.rules_dir)


@pytest.fixture
def mail_system(shipped_config) -> Iterator:
    """The embedded IMAP+SMTP system with the shipped accounts, on free ports."""
    from maild.embedded import EmbeddedMailSystem
    emb = shipped_config.embedded_system
    system = EmbeddedMailSystem(emb.host, 0, 0, dict(emb.accounts))
    system.start()
    try:
        yield system
    finally:
        system.stop()
