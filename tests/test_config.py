"""config.py: the shipped file loads; mistakes are reported with file, key and an example."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.config import ConfigError, load_config, resolve_password


def test_shipped_config_names_the_embedded_system(shipped_config):
    assert shipped_config.embedded is True
    assert shipped_config.inbox_address == "collab@corp.example"
    assert shipped_config.imap.host == shipped_config.embedded_system.host == "127.0.0.1"
    assert shipped_config.imap.port == shipped_config.embedded_system.imap_port
    assert shipped_config.smtp.port == shipped_config.embedded_system.smtp_port
    assert "li.na@corp.example" in shipped_config.embedded_system.accounts
    assert shipped_config.imap.password == shipped_config.embedded_system.accounts["collab@corp.example"]
    assert shipped_config.tz.key == "Asia/Shanghai"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


REAL_SERVER = """
[mail]
embedded = false
inbox_address = "collab@corp.example"
[imap]
host = "imap.corp.example"
password_env = "IMAP_PW"
[smtp]
host = "smtp.corp.example"
password_command = "echo s3cret"
"""


@pytest.mark.parametrize("text, key, words", [
    ("[maild]\ntimezone = 'Mars/Olympus'\n", "maild.timezone", "unknown time zone"),
    ("[mail]\ninbox_address = 'not-an-address'\n", "mail.inbox_address", "not an email address"),
    ("[mail]\nembedded = 'yes'\n", "mail.embedded", "true or false"),
    (REAL_SERVER.replace('password_env = "IMAP_PW"', 'password = "plain"'), "imap.password",
     "not read from the file"),
    (REAL_SERVER.replace('host = "imap.corp.example"', 'host = "x"\nsecurity = "ssl3"'),
     "imap.security", "one of tls, starttls, plain"),
    (REAL_SERVER + "\n[outbox]\nmax_attempts = 0\n", "outbox.max_attempts", "between 1 and 100"),
    ("[mail]\nembedded = true\n", "embedded.account", "needs an embedded account"),
    ("this is = = not toml", "-", "not valid TOML"),
], ids=["timezone", "inbox", "boolean", "password-in-file", "security", "range", "embedded-inbox",
        "syntax"])
def test_errors_name_file_key_and_fix(tmp_path, text, key, words):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_passwords_come_from_environment_or_command(tmp_path):
    config = load_config(_write(tmp_path, REAL_SERVER))
    assert config.imap.password == ""
    assert resolve_password(config.imap, {"IMAP_PW": "from-env"}, lambda c: "") == "from-env"
    assert resolve_password(config.smtp, {}, lambda cmd: cmd.split()[-1] + "\n") == "s3cret"
    assert config.imap.security == "tls" and config.smtp.security == "starttls"


def test_relative_paths_are_relative_to_the_file(tmp_path):
    config = load_config(_write(tmp_path, REAL_SERVER + "\n[maild]\ndata_dir = 'state'\n"))
    assert config.data_dir == tmp_path / "state"


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
