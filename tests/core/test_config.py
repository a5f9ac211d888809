"""config.py: the shipped file loads; mistakes are reported with file, key and an example."""

from __future__ import annotations

from pathlib import Path

import pytest

from maild.core.config import ConfigError, load_config, resolve_password


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


@pytest.mark.parametrize("value, words", [
    ("0", "must be between 1 and 8, not 0"),
    ("9", "must be between 1 and 8, not 9"),
    ("'two'", "must be a whole number"),
    ("true", "must be a whole number"),
], ids=["zero", "above-cap", "text", "boolean"])
def test_smtp_connections_out_of_range_is_refused(tmp_path, value, words):
    path = _write(tmp_path, REAL_SERVER + f"connections = {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "smtp.connections"
    assert words in str(info.value) and "connections = 2" in str(info.value)


def test_smtp_connections_default_to_two_and_one_means_one_at_a_time(tmp_path):
    assert load_config(_write(tmp_path, REAL_SERVER)).smtp_connections == 2
    one = load_config(_write(tmp_path, REAL_SERVER + "connections = 1\n"))
    assert one.smtp_connections == 1


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


# -- strict: unknown keys and sections ----------------------------------------------------------

SHIPPED = (Path(__file__).resolve().parents[2] / "config.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("edit, key, words", [
    (("\nrequire_token = true", "\nrequire_tokn = true"), "security.require_tokn",
     "did you mean require_token?"),
    (("[outbox]", "[outbx]"), "outbx", "did you mean [outbox]?"),
    (("[outbox]", "[outbox]\nrequire_token = true"), "outbox.require_token",
     "require_token belongs in [security]"),
    (("# maild configuration.", 'data_dir = "/srv/maild"\n# maild configuration.'), "data_dir",
     "a key outside any section; data_dir belongs in [maild]"),
    (('password = "demo"', 'passwd = "demo"'), "embedded.account.passwd",
     "did you mean password?"),
    (("[mail]\n", "[mail]\nfrobnicate = 1\n"), "mail.frobnicate",
     "[mail] takes batch_size, embedded, idle_renew_s, inbox_address"),
    (("[outbox]", "[webhooks]"), "webhooks", "[mail], [maild]"),
    (("[outbox]", '[directory.ldap]\nhost = "ldap.corp.example"\nbase_dn = "dc=corp"\n'
      'bsae_dn = "x"\n\n[outbox]'), "directory.ldap.bsae_dn", "did you mean base_dn?"),
    (("[outbox]", '[oauth]\nprovider = "microsoft"\nclient_idd = "x"\n\n[outbox]'),
     "oauth.client_idd", "did you mean client_id?"),
], ids=["key-typo", "section-typo", "wrong-section", "outside-section", "account-key",
        "no-near-name", "no-near-section", "nested-table-key", "oauth-without-oauth2-users"])
def test_unknown_keys_and_sections_name_file_key_and_nearest(tmp_path, edit, key, words):
    old, new = edit
    path = _write(tmp_path, SHIPPED.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == key
    assert words in str(info.value) and str(path) in str(info.value)


def test_a_typo_is_reported_as_a_typo_not_as_what_it_leaves_missing(tmp_path):
    path = _write(tmp_path, REAL_SERVER.replace('host = "imap.corp.example"',
                                                'hots = "imap.corp.example"'))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "imap.hots" and "did you mean host?" in str(info.value)


def test_server_keys_are_known_while_the_embedded_system_is_used(shipped_config):
    """The shipped config uses the embedded system and still sets [imap]/[smtp] for later."""
    assert shipped_config.embedded and shipped_config.imap.host == "127.0.0.1"


def test_a_key_is_known_by_being_read():
    """No list of keys to keep in sync: whatever the reader reads (here a future [store] url)
    is accepted, and only that."""
    from maild.core.tomlreader import StrictReader

    raw = {"store": {"url": "postgresql:///maild", "pool": 4}}
    reader = StrictReader(raw, "c.toml")
    assert reader.text("store", "url", "") == "postgresql:///maild"
    with pytest.raises(ConfigError, match=r"\[store.pool\] unknown key"):
        reader.reject_unknown()
    reader.integer("store", "pool", 1)
    reader.reject_unknown()


# -- where the file is ----------------------------------------------------------------------------


@pytest.mark.parametrize("explicit, environ, present, path, source", [
    ("mine.toml", {"MAILD_CONFIG": "/env.toml"}, {"/cwd/config.toml"}, "mine.toml", "-c"),
    (None, {"MAILD_CONFIG": "/env.toml"}, {"/cwd/config.toml"}, "/env.toml", "$MAILD_CONFIG"),
    (None, {}, {"/cwd/config.toml", "/etc/maild/config.toml"}, "/cwd/config.toml",
     "./config.toml"),
    (None, {"MAILD_CONFIG": ""}, {"/etc/maild/config.toml"}, "/etc/maild/config.toml",
     "/etc/maild/config.toml"),
], ids=["-c-first", "environment", "working-folder", "etc"])
def test_config_is_found_in_order_and_says_where(explicit, environ, present, path, source):
    from maild.core.config import find_config

    found = find_config(Path(explicit) if explicit else None, environ, Path("/cwd"),
                        is_file=lambda p: str(p) in present)
    assert (str(found.path), found.source) == (path, source)
    assert f"(from {source})" in found.describe()


def test_no_config_anywhere_says_where_it_looked_and_how_to_make_one():
    from maild.core.config import find_config

    with pytest.raises(ConfigError) as info:
        find_config(None, {}, Path("/cwd"), is_file=lambda p: False)
    text = str(info.value)
    assert "/cwd" in text and "/etc/maild/config.toml" in text and "maild init" in text


def test_every_path_is_relative_to_the_file_not_the_working_folder(tmp_path, monkeypatch):
    folder = tmp_path / "etc"
    folder.mkdir()
    path = _write(folder, REAL_SERVER + "\n[maild]\ndata_dir = 'state'\narchive_dir = 'archive'\n"
                                        "log_dir = 'logs'\nsecret_file = 'state/key'\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(path.relative_to(tmp_path))
    assert (config.data_dir, config.archive_dir, config.log_dir, config.secret_file) == (
        folder / "state", folder / "archive", folder / "logs", folder / "state" / "key")
    assert load_config(_write(tmp_path, REAL_SERVER)).log_dir is None


def test_tables_of_free_names_and_nested_tables_are_known(tmp_path):
    """[directory.ldap.attributes] and [directory.csv.columns] take names the user chooses; a
    present [oauth] is read even when no server signs in with OAuth2."""
    path = _write(tmp_path, SHIPPED.replace("[outbox]", (
        '[directory]\nsource = "csv"\n\n[directory.csv]\npath = "hr.csv"\n\n'
        '[directory.csv.columns]\naddress = "公司邮箱"\n\n'
        '[directory.ldap]\nhost = "ldap.corp.example"\nbase_dn = "dc=corp"\n\n'
        '[directory.ldap.attributes]\nmail = ["mail", "proxyAddresses"]\n\n'
        '[oauth]\nprovider = "google"\n\n[outbox]'), 1))
    config = load_config(path)
    assert config.directory.csv_columns == {"address": "公司邮箱"}
    assert config.directory.ldap is not None
    assert config.directory.ldap.attributes == {"mail": ("mail", "proxyAddresses")}
    assert config.oauth is None
