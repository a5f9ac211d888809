"""How well the new text of a reply is found: maild against two reply parsers on one corpus.

Reads every case in `tests/data/reply_suite/*.toml` (see its README), gives each parser the same
input and scores two things per client and per language:

- exact: the new text equals the expected one (line ends and trailing spaces ignored, runs of
  blank lines counted as one, leading and trailing blank lines dropped);
- first line: the first non-blank line equals the expected one (where commands are read).

The peers are email-reply-parser (GitHub's parser, Zapier's port) and mail-parser-reply, run on
the same text maild gets: the text/plain part, or for an HTML-only email the text maild's decode
renders from the HTML (`maild.mail.htmltext.html_to_text`), since neither peer reads HTML. maild also
gets the HTML. mail-parser-reply is given every language of the corpus it knows (a mailbox
cannot know the language in advance) and scored on its signature-free `body`, the better of its
two outputs here. A peer that is not installed is reported as missing (`make accuracy` installs
both into .venv; they are not maild dependencies).

`run()` prints the tables (and maild's misses) and returns the figures as a dict.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "data" / "reply_suite"
Parser = Callable[[str, str | None], str]


def load_cases(suite: Path = SUITE) -> list[dict[str, Any]]:
    """Every case of every client file, in file order, each with its file's `client`."""
    cases: list[dict[str, Any]] = []
    for path in sorted(suite.glob("*.toml")):
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        cases += [{"client": data["client"], "file": path.name, **case} for case in data["case"]]
    return cases


def case_input(case: Mapping[str, Any]) -> tuple[str, str | None]:
    """(text, html) as maild's decode hands them on: an HTML-only email's text is its rendering."""
    from maild.mail.htmltext import html_to_text

    html = case.get("html")
    text = case.get("text")
    if text is None:
        text = html_to_text(html) if html else ""
    return text, html


def normalise(text: str | None) -> str:
    """The comparison form: LF line ends, no trailing spaces, one blank line at most, trimmed."""
    lines = [line.rstrip() for line in (text or "").replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


def first_line(text: str) -> str:
    return next((line.strip() for line in text.split("\n") if line.strip()), "")


def _maild(text: str, html: str | None) -> str:
    from maild.mail.reply import new_text

    return new_text(text, html)


def _peers() -> dict[str, Parser | str]:
    """Each peer's parse function, or why it is missing."""
    peers: dict[str, Parser | str] = {}
    try:
        from email_reply_parser import EmailReplyParser as GitHubPort
    except ImportError:
        peers["email-reply-parser"] = "not installed (pip install email-reply-parser)"
    else:
        peers["email-reply-parser"] = lambda text, _html: GitHubPort.parse_reply(text) or ""
    try:
        from mailparser_reply import EmailReplyParser as MultiLanguage
        from mailparser_reply.constants import MAIL_LANGUAGES
    except ImportError:
        peers["mail-parser-reply"] = "not installed (pip install mail-parser-reply)"
    else:
        known = [lang for lang in ("en", "zh", "de", "fr", "es", "pt", "it", "nl", "ru", "ja", "ko")
                 if lang in MAIL_LANGUAGES]

        def multi_language(text: str, _html: str | None) -> str:
            replies = MultiLanguage(languages=list(known)).read(text).replies
            return replies[0].body if replies else ""

        peers["mail-parser-reply"] = multi_language
    return peers


def score(parse: Parser, cases: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Exact and first-line hits overall, per client and per language; the exact misses."""
    totals = {"cases": 0, "exact": 0, "first_line": 0}
    by: dict[str, dict[str, dict[str, int]]] = {"client": defaultdict(lambda: dict.fromkeys(totals, 0)),
                                                 "lang": defaultdict(lambda: dict.fromkeys(totals, 0))}
    misses: list[dict[str, str]] = []
    for case in cases:
        text, html = case_input(case)
        try:
            got = normalise(parse(text, html))
        except Exception as error:  # a peer crashing on an input is a miss, not a stop
            got = f"<{type(error).__name__}: {error}>"
        want = normalise(case["expected"])
        hits = {"cases": 1, "exact": int(got == want), "first_line": int(first_line(got) == first_line(want))}
        for bucket in (totals, by["client"][case["client"]], by["lang"][case["lang"]]):
            for key, value in hits.items():
                bucket[key] += value
        if not hits["exact"]:
            misses.append({"id": case["id"], "expected": want, "got": got})
    return {**totals, "by_client": dict(by["client"]), "by_lang": dict(by["lang"]), "misses": misses}


def _percent(hits: int, total: int) -> str:
    return f"{100 * hits / total:5.1f} %" if total else "    -  "


def _table(title: str, key: str, results: Mapping[str, Mapping[str, Any]]) -> list[str]:
    names = list(results)
    header = f"{title:<24}" + "".join(f"{name[:22]:>24}" for name in names)
    lines = [header, f"{'':<24}" + "".join(f"{'exact  first line':>24}" for _ in names)]
    groups = sorted({group for result in results.values() for group in result[key]})
    for group in groups:
        row = f"  {group:<22}"
        for name in names:
            counts = results[name][key].get(group, {"cases": 0, "exact": 0, "first_line": 0})
            row += f"{_percent(counts['exact'], counts['cases']):>13}{_percent(counts['first_line'], counts['cases']):>11}"
        lines.append(row + f"   ({results[names[0]][key][group]['cases']})")
    return lines


def run(out: Any = None, show_misses: bool = True) -> dict[str, Any]:
    """Score maild and the peers on the reply corpus; print the tables; return the figures."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    out = out or sys.stdout
    cases = load_cases()
    results: dict[str, dict[str, Any]] = {"maild": score(_maild, cases)}
    missing: dict[str, str] = {}
    for name, peer in _peers().items():
        if isinstance(peer, str):
            missing[name] = peer
        else:
            results[name] = score(peer, cases)
    print(f"\nreply new text: {len(cases)} cases in {SUITE.relative_to(ROOT)}", file=out)
    print("\n".join(_table("client", "by_client", results)), file=out)
    print(file=out)
    print("\n".join(_table("language", "by_lang", results)), file=out)
    print(file=out)
    for name, result in results.items():
        print(f"{name:<20} exact {result['exact']:>3} / {result['cases']} "
              f"({_percent(result['exact'], result['cases']).strip()}), first line "
              f"{result['first_line']:>3} / {result['cases']} "
              f"({_percent(result['first_line'], result['cases']).strip()})", file=out)
    for name, why in missing.items():
        print(f"{name:<20} {why}", file=out)
    if show_misses and results["maild"]["misses"]:
        print("\nmaild misses:", file=out)
        for miss in results["maild"]["misses"]:
            print(f"  {miss['id']}:\n    expected {miss['expected']!r}\n    got      {miss['got']!r}",
                  file=out)
    return {"cases": len(cases), "missing": missing,
            "results": {name: {k: v for k, v in result.items() if k != "misses"} | {
                "misses": [miss["id"] for miss in result["misses"]]} for name, result in results.items()}}


if __name__ == "__main__":
    run()
