"""The render context's `call` with a short way for macros: every `{{ m.x(...) }}` and `c.x()`
of a template goes through `Context.call`, which asks each callable, twice, whether it wants the
context, the evaluation context or the environment passed in (~20 macro calls per email, as many
calls of `t`). A macro always takes the evaluation context (`Macro.__call__` is
`pass_eval_context`), so it is passed without asking; anything else goes Jinja's way.

Surprise: this leans on Jinja internals (`Macro`, `Context.call`'s contract, 3.1): the output is
the same as Jinja's (the 2,548 captured renders are byte-identical), and tests/mail/test_render.py
renders every template through it.
"""

from __future__ import annotations

from typing import Any

from jinja2.runtime import Context, Macro


class MacroCallContext(Context):
    """`Context.call`, with macros called straight away."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's names)
        if type(__obj) is not Macro:
            return Context.call(__self, __obj, *args, **kwargs)
        kwargs.pop("_block_vars", None)  # only a pass_context callable reads these
        kwargs.pop("_loop_vars", None)
        try:
            return __obj(__self.eval_ctx, *args, **kwargs)
        except StopIteration:  # as Context.call does
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception")
