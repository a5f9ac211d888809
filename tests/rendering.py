"""Every notice a workflow outcome carries, rendered as the service would, in both languages and
as MIME: the templates' context contract, checked on real outcomes (test_workflow, test_closeloop)."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from maild.core.model import Notice
from maild.mail.mime import to_mime
from maild.mail.render import Renderer

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


@cache
def renderer() -> Renderer:
    return Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address="collab@corp.example",
                    from_name="maild")


def render_both(outcome, now: datetime):
    """`outcome`, after rendering each of its notices in zh and en (non-empty, valid MIME)."""
    for n, notice in enumerate(outcome.notices):
        for language in ("zh", "en"):
            out = renderer().render(Notice(**{**notice.__dict__, "language": language}),
                                    message_id=f"t{n}@corp.example", date=now,
                                    reply_address="collab+x@corp.example")
            assert out.text.strip() and out.html.strip()
            to_mime(out, from_address="collab@corp.example", from_name="maild")
    return outcome
