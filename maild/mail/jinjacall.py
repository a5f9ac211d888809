"""Two changes to how Jinja runs a render, for CPU, with the same output: calls, and macros' cycles.

Calls: every `{{ m.x(...) }}`, `c.x()`, `t(...)` and `x.append(...)` of a template goes through
`Context.call`, which asks each callable, twice, whether it wants the context, the evaluation
context or the environment passed in (~20 macro calls and ~20 `t` calls per email).
`FastCallContext` answers without asking for the common kinds: a macro always takes the
evaluation context (`Macro.__call__` is `pass_eval_context`), and one given all its arguments
by position (no caller, no **kwargs or *varargs) is run as `Macro.__call__` would run it,
without sorting its arguments; a function or bound method says so
in its own `jinja_pass_arg` (what Jinja reads, its `__call__` being a method-wrapper that never
carries one); a builtin never does. Anything else goes Jinja's way, and so does a
`pass_context` call inside a loop or a block with variables (Jinja derives a context for them).

Cycles: a macro's function closes over its module's context, which holds the macro. Every
`import ... with context` (the layouts' `c` and `m`, ~60 macros per email) left such a cycle,
which only the garbage collector frees: ~470 objects per email rendered, ~100 µs of collections
per render (a seventh of it). `TrackedTemplate` lists the modules a part builds and
`release_macros` unhooks their macros' functions once the part is written, so reference
counting frees them at once and the collector rarely runs.

Surprise: this leans on Jinja internals (`Macro._func`, `_invoke`, `_PassArg`, `Context.call`'s
contract, `make_module`; 3.1), so both short ways are taken only on the Jinja they were checked
against (`KNOWN_JINJA`: 3.1.x with those names); any other Jinja renders Jinja's own way, slower
and the same. The output is the same as Jinja's (the 2,548 captured renders are
byte-identical; tests/mail/test_jinjacall.py compares with Jinja's own calls, and
tests/mail/test_render.py renders every template through it). A macro of a written part cannot
be called again: a render returns strings only.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

import jinja2
from jinja2 import Template
from jinja2.environment import TemplateModule
from jinja2.runtime import Context, Macro
from jinja2.utils import _PassArg

_STOPPED = "value was undefined because a callable raised a StopIteration exception"

# The internals below are 3.1's (pyproject allows jinja2>=3.1): a later Jinja goes its own way.
KNOWN_JINJA = (jinja2.__version__.startswith("3.1.") and hasattr(Macro, "_invoke")
               and hasattr(_PassArg, "eval_context"))


class FastCallContext(Context):
    """`Context.call`, with macros, functions, methods and builtins called straight away."""

    def call(__self, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (Jinja's names)
        if not KNOWN_JINJA:
            return Context.call(__self, __obj, *args, **kwargs)
        kind = type(__obj)
        if kind is Macro:
            kwargs.pop("_block_vars", None)
            kwargs.pop("_loop_vars", None)
            if (not kwargs and len(args) == __obj._argument_count and not __obj.caller
                    and not __obj.catch_kwargs and not __obj.catch_varargs):
                try:  # all its arguments, by position: what Macro.__call__ would hand on
                    return __obj._invoke(list(args), __self.eval_ctx.autoescape)
                except StopIteration:
                    return __self.environment.undefined(_STOPPED)
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
            return __self.environment.undefined(_STOPPED)


MODULES = "_modules_built"  # the render context's list of the modules its imports built


class TrackedTemplate(Template):
    """A template whose `import ... with context` modules are listed in the render's context
    (`MODULES`), so that `release_macros` can take them apart when the part is written."""

    def make_module(self, vars: dict[str, Any] | None = None, shared: bool = False,
                    locals: Mapping[str, Any] | None = None) -> TemplateModule:
        module = super().make_module(vars, shared, locals)
        built = vars.get(MODULES) if vars else None
        if built is not None:
            built.append(module)
        return module


def release_macros(context: Context, built: list[TemplateModule]) -> None:
    """Unhook the macros of a written part (its own and its imports'), breaking the cycles
    through their functions: freed by reference counting, not left to the collector."""
    if not KNOWN_JINJA:  # another Jinja's macros may not hold their function there
        built.clear()
        return
    for names in (context.vars, *(vars(module) for module in built)):
        for value in names.values():
            if type(value) is Macro:
                value._func = None
    built.clear()
