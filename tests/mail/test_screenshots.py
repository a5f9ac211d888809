"""Every email template, rendered with unkind data (long Chinese names, a 30-task project, markup in
user text) and shown in headless Chromium at 1024 and 480 px: no horizontal overflow on mobile,
every link a valid mailto:, no remote content, one PNG per template, language and width."""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import screenshots  # noqa: E402


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    binary = screenshots.find_chromium(install=False)
    if binary is None:
        reason = "chromium is not installed (apt-get install chromium; .ci/run does it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {reason}: in CI none may skip")
        pytest.skip(reason)
    out = tmp_path_factory.mktemp("screenshots")
    # every page is measured at both widths; PNGs (~1.5 s each) for every template in Chinese and
    # for two in English. `make screenshots` shoots them all.
    return out, screenshots.shoot_all(out, binary, shoot=SHOT.__contains__)


SHOT = {f"{kind}-zh" for kind, _ in screenshots.render_all()} | {"receipt-en", "digest-en"}


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    return struct.unpack(">II", data[16:24])


def test_every_template_and_language_is_shot_at_both_widths(report):
    out, pages = report
    rendered = screenshots.render_all()
    assert set(pages) == {f"{kind}-{lang}" for kind, lang in rendered}
    assert all(set(page["widths"]) == {"1024", "480"} for page in pages.values())
    assert {lang for _, lang in rendered} == {"zh", "en"}
    for name in SHOT:
        assert set(pages[name]["widths"]) == {str(w) for w in screenshots.WIDTHS}
        for width in screenshots.WIDTHS:
            png = out / f"{name}-{width}.png"
            assert png.exists(), png
            assert png_size(png)[0] == width


def test_no_horizontal_overflow_at_480(report):
    _, pages = report
    overflowing = {name: page["widths"]["480"]["scroll_width"] for name, page in pages.items()
                   if page["widths"]["480"]["scroll_width"] > 480}
    assert overflowing == {}
    assert all(page["widths"]["480"]["inner_width"] == 480 for page in pages.values())


def test_every_link_is_a_valid_mailto_and_nothing_is_remote(report):
    _, pages = report
    assert {name: page["links"] for name, page in pages.items() if page["links"]} == {}


def test_action_emails_have_mailto_buttons_to_the_reply_address():
    rendered = screenshots.render_all()
    page = rendered[("confirm_request", "zh")].html
    assert f'href="mailto:{screenshots.REPLY}?' in page.replace("%2B", "+")


def test_link_checker_catches_bad_links():
    bad = ('<a href="https://evil.example/">x</a><a href="mailto:a@b.example?cc=x@y.example">y</a>'
           '<img src="https://evil.example/p.png">')
    problems = screenshots.link_problems(bad)
    assert any("not mailto" in p for p in problems)
    assert any("unexpected mailto fields" in p for p in problems)
    assert any("remote or active content" in p for p in problems)


def test_progress_bars_are_drawn_to_scale_at_both_widths(report):
    """The bars are table cells sized by width attributes (what Outlook's Word engine keeps):
    in Chromium each filled cell is its percentage of the bar, inside the page, at 1024 and 480."""
    _, pages = report
    measured = 0
    for name, page in pages.items():
        for width, facts in page["widths"].items():
            for declared, drawn, right, height in facts["bars"]:
                assert abs(declared - drawn) <= 3, (name, width, declared, drawn)
                assert right <= int(width) and height > 0, (name, width, right)
                measured += 1
    assert measured > 100  # every email with an item has them


def test_progress_and_timeline_are_in_every_email_about_an_item():
    rendered = screenshots.render_all(showcase=True, kinds=["command_ack", "reminder"])
    page = rendered[("command_ack", "zh")].html
    assert 'width="80%" bgcolor="#2da44e" height="6"' in page  # T-1's bar: 80 %
    assert 'bgcolor="#cf222e"' in page and "已逾期 2 天" in page  # overdue: red, and in words
    assert "整体进度 40%" in page and "还剩 3 天" in page
    assert "<div style=\"width" not in page  # no widths on divs (Outlook ignores them)
    text = rendered[("command_ack", "en")].text
    assert "Overall 40%" in text and "[####------] 40%" in text and "overdue by 2 days" in text
