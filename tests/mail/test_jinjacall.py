"""jinjacall.py: the render context's short way of calling writes what Jinja's own `Context.call`
writes, for every kind of callable a template can call; a render leaves no reference cycles."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from jinja2 import (
    DictLoader,
    Environment,
    StrictUndefined,
    pass_context,
    pass_environment,
    pass_eval_context,
)

from maild.core.model import Notice
from maild.mail.jinjacall import FastCallContext
from maild.mail.render import Renderer
from tests.mail.test_render import FROM_NAME, INBOX, REPLY, SENT, TEMPLATES, context_for


@pass_context
def who_asks(ctx: Any, prefix: str) -> str:
    """Sees a loop's or a block's variables only through a derived context."""
    return f"{prefix}:{ctx.get('lang')}:{ctx.get('row', '-')}:{ctx.get('inner', '-')}"


@pass_eval_context
def escaping(eval_ctx: Any, text: str) -> str:
    return f"{text}/{eval_ctx.autoescape}"


@pass_environment
def trimming(env: Any, text: str) -> str:
    return f"{text}/{env.trim_blocks}"


class Asker:
    """A callable object that takes the context (Jinja asks its `__call__`)."""

    @pass_context
    def __call__(self, ctx: Any, n: int) -> str:
        return f"asker {n} {ctx.get('lang')}"

    @pass_context
    def method(self, ctx: Any) -> str:
        return f"method {ctx.get('lang')}"

    def plain(self, n: int) -> str:
        return f"plain {n}"


def stops() -> str:
    raise StopIteration


PAGE = """{% import "_m.j2" as m with context %}
{{ m.line('a', x=2) }} {{ m.line('b', 5) }} {{ m.line('c') }} {{ who_asks('top') }} {{ escaping('<b>') }} {{ trimming('t') }}
{% for row in rows %}{{ who_asks('loop') }} {{ m.line(row) }} {% set inner = row %}{{ who_asks('set') }}
{% endfor %}
{% block body %}{% set inner = 'blk' %}{{ who_asks('block') }}{% endblock %}
{{ asker(3) }} {{ asker.method() }} {{ asker.plain(4) }} {{ names|join(',') }} {{ d.get('k', 'none') }}
{% set acc = [] %}{% for r in rows %}{% set _ = acc.append(r * 2) %}{% endfor %}{{ acc }}
{% call m.wrap() %}inside {{ who_asks('caller') }}{% endcall %}
[{{ stops() is defined }}] {{ len(rows) }} {{ '%s-%s'|format(1, 2) }} {{ range(3)|list }}
"""
MACROS = """{% macro line(v, x=1) %}<{{ v }}|{{ x }}|{{ who_asks('macro') }}>{% endmacro %}
{% macro wrap() %}[{{ caller() }}]{% endmacro %}"""


def page(context_class: type | None, autoescape: bool) -> str:
    env = Environment(loader=DictLoader({"page.j2": PAGE, "_m.j2": MACROS}),
                      undefined=StrictUndefined, autoescape=autoescape, trim_blocks=True)
    if context_class is not None:
        env.context_class = context_class
    env.globals.update(who_asks=who_asks, escaping=escaping, trimming=trimming, asker=Asker(),
                       stops=stops, len=len)
    return env.get_template("page.j2").render(lang="zh", rows=[1, 2], names=["x", "y"],
                                               d={"k": "v"})


@pytest.mark.parametrize("autoescape", [False, True], ids=["text", "html"])
def test_the_same_page_as_jinjas_own_call(autoescape: bool) -> None:
    ours = page(FastCallContext, autoescape)
    assert ours == page(None, autoescape)
    # the page did exercise what matters: variables set in a loop and a block reached the function
    assert "set:zh:-:1" in ours and "set:zh:-:2" in ours and "block:zh:-:blk" in ours
    assert "asker 3 zh" in ours and "method zh" in ours and "plain 4" in ours
    assert "[False]" in ours  # a StopIteration is an undefined value, as in Jinja
    assert "<b|5|macro:zh:-:-> <c|1|macro:zh:-:->" in ours  # every argument given, a default


def test_a_render_leaves_nothing_for_the_garbage_collector() -> None:
    """Every email's imports built ~60 macros in reference cycles; unhooked after each part,
    reference counting frees them (the collector ran every few emails in a backlog)."""


    renderer = Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address=INBOX,
                        from_name=FROM_NAME)
    notices = [Notice(template=kind, to=("wang.zhe@corp.example",), language=lang,
                      context=context_for(kind))
               for kind in ("receipt", "confirm_request", "command_ack", "validation_error")
               for lang in ("zh", "en")]
    outputs = [renderer.render(n, message_id=f"n{i}@corp.example", date=SENT,
                               reply_address=REPLY) for i, n in enumerate(notices)]
    assert all(out.text and out.html for out in outputs)
    gc.collect()
    gc.disable()
    try:
        for i, n in enumerate(notices):
            renderer.render(n, message_id=f"n{i}@corp.example", date=SENT, reply_address=REPLY)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_the_short_ways_are_taken_on_the_jinja_they_were_checked_against() -> None:
    """A Jinja whose internals were not checked renders its own way (slower, the same); the one
    installed for the tests must be a checked one, or these tests compare Jinja with itself."""
    import jinja2

    from maild.mail import jinjacall
    assert jinjacall.KNOWN_JINJA == jinja2.__version__.startswith("3.1."), jinja2.__version__
    assert jinjacall.KNOWN_JINJA, f"jinja2 {jinja2.__version__}: check jinjacall's internals"


def test_an_unchecked_jinja_renders_its_own_way_and_the_same(monkeypatch) -> None:
    from maild.mail import jinjacall
    notices = [Notice(template=kind, to=("wang.zhe@corp.example",), language=lang,
                      context=context_for(kind))
               for kind in ("receipt", "confirm_request", "command_ack", "validation_error")
               for lang in ("zh", "en")]

    def rendered() -> list[tuple[str, str, str]]:
        renderer = Renderer(TEMPLATES, timezone="Asia/Shanghai", inbox_address=INBOX,
                            from_name=FROM_NAME)
        outs = [renderer.render(n, message_id=f"n{i}@corp.example", date=SENT,
                                reply_address=REPLY) for i, n in enumerate(notices)]
        return [(o.subject, o.text, o.html) for o in outs]

    short = rendered()
    monkeypatch.setattr(jinjacall, "KNOWN_JINJA", False)
    own = rendered()
    assert own == short
    assert all(text and html for _, text, html in own)
