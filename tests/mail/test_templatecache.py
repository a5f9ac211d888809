"""The compiled templates kept between starts (templatecache.py): the same emails from cached code,
an edited template compiled again, and a cache that cannot be trusted or used is not."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import jinja2
import pytest

from maild.core.model import Notice, Outgoing
from maild.mail.record import RecordRenderer
from maild.mail.render import Renderer
from maild.mail.templatecache import default_cache_root
from tests.mail.test_render import (
    FROM_NAME,
    INBOX,
    REPLY,
    SENT,
    TEMPLATES,
    context_for,
    make_item,
)

KINDS = ("receipt", "confirm_request", "command_ack", "confirmed", "validation_error", "templates")


def make(templates: Path, cache: Path | None) -> Renderer:
    return Renderer(templates, timezone="Asia/Shanghai", inbox_address=INBOX,
                    from_name=FROM_NAME, cache_dir=cache)


def emails(renderer: Renderer) -> list[Outgoing]:
    return [renderer.render(Notice(template=kind, to=("wang.zhe@corp.example",), language=lang,
                                   context=context_for(kind)),
                            message_id=f"{kind}.{lang}@corp.example", date=SENT,
                            reply_address=REPLY)
            for kind in KINDS for lang in ("zh", "en")]


def cached_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("templates/*/*.cache"))


@pytest.fixture(scope="module")
def plain() -> list[Outgoing]:
    """The emails of a renderer that compiles everything (no cache)."""
    return emails(make(TEMPLATES, None))


def forbid_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("compiled a template the cache holds")
    monkeypatch.setattr(jinja2.Environment, "compile", refuse)


def test_a_second_start_loads_every_template_from_the_cache(
        tmp_path: Path, plain: list[Outgoing], monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = make(TEMPLATES, cache)
    assert len(cached_files(cache)) >= len(list(TEMPLATES.glob("*.j2")))
    assert emails(first) == plain
    forbid_compiling(monkeypatch)
    assert emails(make(TEMPLATES, cache)) == plain


def test_the_cache_is_private_to_its_user(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    make(TEMPLATES, cache)
    for path in (cache, *cache.glob("templates"), *cache.glob("templates/*")):
        assert path.stat().st_mode & 0o077 == 0, path


def test_an_edited_template_is_compiled_again(tmp_path: Path) -> None:
    templates, cache = tmp_path / "templates", tmp_path / "cache"
    shutil.copytree(TEMPLATES, templates)
    before = emails(make(templates, cache))[0]
    path = templates / "receipt.txt.j2"
    source = path.read_text(encoding="utf-8")
    path.write_text(source.replace("{% block content %}", "{% block content %}\nPS: edited after "
                                   "the cache was made\n", 1), encoding="utf-8")
    after = emails(make(templates, cache))[0]
    assert "edited after the cache was made" not in before.text
    assert "PS: edited after the cache was made" in after.text


def test_another_templates_directory_has_its_own_entries(tmp_path: Path) -> None:
    """Jinja keys an entry by the template's name alone: two trees share no file."""
    templates, cache = tmp_path / "templates", tmp_path / "cache"
    shutil.copytree(TEMPLATES, templates)
    make(TEMPLATES, cache)
    make(templates, cache)
    assert len(list((cache / "templates").iterdir())) == 2


def test_a_corrupt_entry_is_compiled_again(tmp_path: Path, plain: list[Outgoing]) -> None:
    cache = tmp_path / "cache"
    make(TEMPLATES, cache)
    for n, path in enumerate(cached_files(cache)):
        data = path.read_bytes()
        # torn after the header, garbage instead of code, empty: as a crash or a bad disk leaves it
        path.write_bytes((data[:40], data[:20] + b"\x00garbage" * 8, b"")[n % 3])
    assert emails(make(TEMPLATES, cache)) == plain


def test_a_cache_others_can_write_is_not_used(
        tmp_path: Path, plain: list[Outgoing], caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chmod(cache, 0o777)  # anyone could plant code there
    assert emails(make(TEMPLATES, cache)) == plain
    assert not (cache / "templates").exists()
    assert "template_cache_unused" in caplog.text


def test_a_cache_that_cannot_be_made_does_not_stop_the_renderer(
        tmp_path: Path, plain: list[Outgoing]) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    assert emails(make(TEMPLATES, blocker / "cache")) == plain


def test_an_unwritable_cache_only_compiles(
        tmp_path: Path, plain: list[Outgoing], monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("tempfile.NamedTemporaryFile", full_disk)
    assert emails(make(TEMPLATES, cache)) == plain
    assert cached_files(cache) == []


@pytest.mark.parametrize(("environ", "expected"), [
    ({"XDG_CACHE_HOME": "/srv/cache", "HOME": "/home/li"}, "/srv/cache/maild"),
    ({"XDG_CACHE_HOME": "relative/cache", "HOME": "/home/li"}, "/home/li/.cache/maild"),
    ({"HOME": "/var/lib/maild"}, "/var/lib/maild/.cache/maild"),
], ids=["xdg", "relative-xdg-ignored", "home"])
def test_the_cache_is_the_users(environ: dict[str, str], expected: str) -> None:
    assert default_cache_root(environ) == Path(expected)


def test_the_archive_pages_come_from_the_cache_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    item = {**make_item(), "state": "closed", "language": "zh"}
    plain_pages = RecordRenderer().record(item, tz="Asia/Shanghai")
    cache = tmp_path / "cache"
    assert RecordRenderer(cache_dir=cache).record(item, tz="Asia/Shanghai") == plain_pages
    forbid_compiling(monkeypatch)
    assert RecordRenderer(cache_dir=cache).record(item, tz="Asia/Shanghai") == plain_pages
