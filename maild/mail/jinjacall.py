"""The render context's `call`, without Jinja's per-call questions for the callables templates
call most: every `{{ m.x(...) }}`, `c.x()`, `t(...)` and `x.append(...)` of a template goes through
`Context.call`, which asks each callable, twice, whether it wants the context, the evaluation
context or the environment passed in (~20 macro calls and ~20 `t` calls per email). A macro
always takes the evaluation context (`Macro.__call__` is `pass_eval_context`); a function or
bound method says so in its own `jinja_pass_arg` (what Jinja reads, its `__call__` being a
method-wrapper that never carries one); a builtin never does. Anything else goes Jinja's way,
and so does a `pass_context` call inside a loop or a block with variables (Jinja derives a
context holding them).

Surprise: this leans on Jinja internals (`Macro`, `_PassArg`, `Context.call`'s contract, 3.1): the
output is the same as Jinja's (the 2,548 captured renders are byte-identical), and
tests/mail/test_render.py renders every template through it.
"""

from __future__ import annotations

from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from jinja2.runtime import Context, Macro
from jinja2.utils import _PassArg


class FastCallContext(Context):
    """`Context.call`, with macros, functions, methods and builtins called straight away."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's names)
        kind = type(__obj)
        if kind is Macro:
            args = (__self.eval_ctx, *args)
        elif kind is FunctionType or kind is MethodType:
            pass_arg = getattr(__obj, "jinja_pass_arg", None)
            if pass_arg is _PassArg.context:
                if kwargs.get("_loop_vars") or kwargs.get("_block_vars"):
                    return Context.call(__self, __obj, *args, **kwargs)
                args = (__self, *args)
            elif pass_arg is _PassArg.eval_context:
                args = (__self.eval_ctx, *args)
            elif pass_arg is _PassArg.environment:
                args = (__self.environment, *args)
        elif kind is not BuiltinFunctionType:
            return Context.call(__self, __obj, *args, **kwargs)
        kwargs.pop("_block_vars", None)
        kwargs.pop("_loop_vars", None)
        try:
            return __obj(*args, **kwargs)
        except StopIteration:  # as Context.call does
            return __self.environment.undefined(
                "value was undefined because a callable raised a StopIteration exception")
