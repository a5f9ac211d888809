"""cli.py: every command has help with an example; `inspect --json` keeps its documented schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from maild.app.cli import EXAMPLES, build_parser, main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SCHEMA_KEYS = {"kind", "language", "command", "new_text", "item", "errors", "items", "confirm",
               "notes", "unread"}


def _commands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"maild {command}" in out
    assert command in EXAMPLES


def test_top_level_help_lists_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in _commands():
        assert command in out


def _inspect(name: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "maild", "-c", str(ROOT / "config.toml"),
                           "inspect", str(DATA / name), "--json"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == SCHEMA_KEYS
    return result


def test_inspect_new_project():
    result = _inspect("new_project_zh.eml")
    assert result["kind"] == "new_item" and result["language"] == "zh"
    assert result["command"] is None and result["errors"] == []
    item = result["item"]
    assert item["kind"] == "project" and item["title"] == "Q3新品推广项目"
    assert [t["name"] for t in item["tasks"]] == ["新品核心卖点提炼", "渠道推广方案", "客诉应对流程培训"]
    assert item["tasks"][0]["owner_address"] == "wang.zhe@corp.example"
    assert item["tasks"][0]["deadline"] == "8月10日前"
    assert result["items"] == 1 and result["confirm"] is False


def test_inspect_english_task():
    result = _inspect("new_task_en.eml")
    assert result["kind"] == "new_item" and result["language"] == "en"
    assert result["item"]["kind"] == "task"
    assert result["item"]["tasks"][0]["owner_address"] == "zhao.lei@corp.example"


def test_inspect_invalid_project_lists_errors():
    result = _inspect("new_project_invalid_zh.eml")
    assert result["kind"] == "new_item"
    codes = {(e["field"], e["code"]) for e in result["errors"]}
    assert ("owner", "owner_many") in codes and ("owner", "owner_unknown") in codes
    assert ("deadline", "date_unparseable") in codes


@pytest.mark.parametrize("name, kind", [("auto_reply_zh.eml", "auto_reply"),
                                        ("bounce_dsn.eml", "bounce")], ids=["auto-reply", "bounce"])
def test_inspect_loops(name, kind):
    result = _inspect(name)
    assert result["kind"] == kind and result["command"] is None


def test_readme_cli_section_is_generated_from_help():
    """README's CLI reference is `maild --help` verbatim: regenerate with tools/readme_cli.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_cli", ROOT / "tools" / "readme_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.section() in (ROOT / "README.md").read_text(encoding="utf-8"), (
        "README.md's CLI section is stale: run .venv/bin/python tools/readme_cli.py")
