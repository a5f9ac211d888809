"""shipped.py: the shipped files are found (here: the repository's own), `maild init` writes an
editable copy that loads, never overwrites, and `--system` sets absolute paths, comments kept."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from maild.app.cli import main
from maild.app.shipped import InitError, init, set_value, shipped_root
from maild.core.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_a_checkout_uses_its_own_files():
    assert shipped_root() == ROOT


def test_init_writes_a_copy_that_loads_and_never_overwrites(tmp_path, capsys):
    target = tmp_path / "maild"
    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {target / 'config.toml'}" in out and "maild demo" in out
    config = load_config(target / "config.toml")
    assert config.rules_dir == target / "rules" and config.templates_dir == target / "templates"
    assert (target / "templates" / "archive" / "i18n.toml").is_file()
    assert (target / "config.toml").read_text(encoding="utf-8") == (
        ROOT / "config.toml").read_text(encoding="utf-8")
    (target / "config.toml").write_text("# mine\n", encoding="utf-8")
    assert main(["init", str(target)]) == 73
    assert "never overwrites" in capsys.readouterr().err
    assert (target / "config.toml").read_text(encoding="utf-8") == "# mine\n"


def test_init_system_sets_absolute_paths_and_adds_the_unit(tmp_path):
    written = init(tmp_path / "etc", system=True)
    assert [p.name for p in written] == ["config.toml", "rules", "templates", "maild.service"]
    text = (tmp_path / "etc" / "config.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    assert raw["maild"]["data_dir"] == "/var/lib/maild"
    assert raw["maild"]["archive_dir"] == "/var/lib/maild/archive"
    assert raw["maild"]["log_dir"] == "/var/log/maild" and raw["mail"]["embedded"] is False
    assert 'data_dir = "/var/lib/maild"                  # live database' in text  # comment kept
    config = load_config(tmp_path / "etc" / "config.toml")
    assert config.archive_dir == Path("/var/lib/maild/archive")
    with pytest.raises(InitError):
        init(tmp_path / "etc", system=True)


TOML = """# top
[maild]
data_dir = "var"      # where
[[embedded.account]]
address = "a@b.example"
[embedded]
host = "127.0.0.1"
"""


@pytest.mark.parametrize("section, key, value, expected", [
    ("maild", "data_dir", "/srv/maild", 'data_dir = "/srv/maild"      # where'),
    ("maild", "log_dir", "", '[maild]\nlog_dir = ""\n'),
    ("embedded", "imap_port", 1430, '[embedded]\nimap_port = 1430\n'),
    ("rules", "dir", 'C:\\rules "x"', '\n[rules]\ndir = "C:\\\\rules \\"x\\""\n'),
    ("mail", "embedded", False, "[mail]\nembedded = false\n"),
], ids=["replace-keeps-comment", "add-key", "add-key-after-array-tables", "add-section",
        "boolean"])
def test_set_value(section, key, value, expected):
    text = set_value(TOML, section, key, value)
    assert expected in text
    assert tomllib.loads(text)[section][key] == value
    assert tomllib.loads(text)["embedded"]["account"] == [{"address": "a@b.example"}]
