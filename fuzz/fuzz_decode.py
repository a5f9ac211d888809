"""Fuzz target: raw bytes → decode → classify → reply text and command extraction.

Any exception other than `DecodeError` is a finding, and so is one input taking more than the
`-timeout` libFuzzer is given (tests/app/test_fuzz.py passes 2 s: the CPU bound of decode).

    .venv/bin/python fuzz/fuzz_decode.py -runs=100000 -max_len=65536 -timeout=2 CORPUS_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from maild.core import tokens
    from maild.core.classify import ClassifyContext, Reply, classify
    from maild.core.commands import read_command
    from maild.core.forms import load_form_rules
    from maild.mail.decode import DecodeError, decode
    from maild.mail.reply import new_text

ROOT = Path(__file__).resolve().parent.parent


def _context() -> ClassifyContext:
    import tomllib
    forms = tomllib.loads((ROOT / "rules" / "forms.toml").read_text(encoding="utf-8"))
    return ClassifyContext(inbox_address="collab@corp.example", secret=b"fuzz",
                           allowed_domains=("corp.example",), form_rules=load_form_rules(forms),
                           lookup_message=lambda _mid: ("MD-0001", "T-1"),
                           item_exists=lambda item_id: item_id == "MD-0001",
                           authserv_id="mx.corp.example", require_authentication=False)


CONTEXT = _context()
STRICT = ClassifyContext(**{**CONTEXT.__dict__, "require_authentication": True,
                            "trust_authentication_results": True,
                            "trust_exchange_internal": True})


def test_one(data: bytes) -> None:
    try:
        msg = decode(data, max_bytes=1 << 20, max_header_bytes=256 * 1024)
    except DecodeError:
        return
    for ctx in (CONTEXT, STRICT):
        decision = classify(msg, ctx)
        if isinstance(decision, Reply):
            read_command(decision.new_text)
    read_command(new_text(msg.text, msg.html))
    tokens.find(b"fuzz", msg.to + msg.cc, msg.from_addr)


def main() -> None:
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
