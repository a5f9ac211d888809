"""The layout is the design: the pure packages never import the shell, and no imports go round.

Reads every module's imports with `ast` (no module is imported). The layers, lowest first:
`maild.core` and `maild.mail` (pure; they may use each other), `maild.adapters`, `maild.app`.
A module may import its own layer and the layers below it, never one above. Imports under
`if TYPE_CHECKING:` count for the layers but not for cycles (they never run); imports inside
functions count for both, since a cycle hidden in a function is still a cycle in the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from maild.core.dependencies import cycle as find_cycle  # a graph's loop: tasks' or modules'

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "maild"
LAYER = {"core": 0, "mail": 0, "adapters": 1, "app": 2}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(tree: ast.AST) -> set[int]:
    """The ids of import nodes that sit under `if TYPE_CHECKING:`."""
    hidden: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            hidden.update(id(n) for child in node.body for n in ast.walk(child))
    return hidden


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, bool]]:
    """(imported maild module, runs at some point) for every import in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = _type_checking_only(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        runs = id(node) not in hidden
        if isinstance(node, ast.Import):
            found += [(a.name, runs) for a in node.names if a.name.split(".")[0] == "maild"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module.split(".")[0] != "maild":
                continue
            for alias in node.names:  # `from maild.core import workflow` names a module
                candidate = f"{module}.{alias.name}"
                found.append((candidate if candidate in known else module, runs))
    return [(m, runs) for m, runs in found if m in known and m != name]


def layer_of(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if len(parts) < 3 or parts[1] not in LAYER:
        return None
    return parts[1], LAYER[parts[1]]


def graph() -> dict[str, list[tuple[str, bool]]]:
    found = modules()
    return {name: imports_of(name, path, set(found)) for name, path in found.items()}


def test_every_module_lives_in_a_layer() -> None:
    loose = [m for m, path in modules().items()
             if m.count(".") == 1 and path.name not in ("__init__.py", "__main__.py")]
    assert loose == [], "modules belong in maild/core, mail, adapters or app"


def test_no_module_imports_a_layer_above_its_own() -> None:
    violations = []
    for name, deps in graph().items():
        own = layer_of(name)
        if own is None:
            continue
        for dep, _ in deps:
            theirs = layer_of(dep)
            if theirs is not None and theirs[1] > own[1]:
                violations.append(f"{name} imports {dep}")
    assert violations == []


def test_the_checker_sees_a_violation_and_a_cycle(tmp_path: Path) -> None:
    """The two rules are not vacuous: a core module importing the shell is seen, and so is a
    cycle through an import inside a function."""
    fake = tmp_path / "maild" / "core"
    fake.mkdir(parents=True)
    (fake / "a.py").write_text("from maild.app import b\n")
    (fake / "c.py").write_text("def f():\n    from maild.core import d\n")
    (fake / "d.py").write_text("from maild.core.c import f\n")
    known = {"maild.app.b", "maild.core.a", "maild.core.c", "maild.core.d"}
    assert imports_of("maild.core.a", fake / "a.py", known) == [("maild.app.b", True)]
    edges = {m: [d for d, runs in imports_of(m, fake / f"{m[-1]}.py", known) if runs]
             for m in ("maild.core.c", "maild.core.d")}
    assert find_cycle(edges) == ["maild.core.c", "maild.core.d", "maild.core.c"]


def test_no_import_cycles() -> None:
    edges = {name: sorted({d for d, runs in deps if runs}) for name, deps in graph().items()}
    assert find_cycle(edges) is None


@pytest.mark.parametrize(("one", "other"), [("maild.core.intake", "maild.core.workflow")],
                         ids=["intake-workflow"])
def test_intake_and_workflow_do_not_import_each_other(one: str, other: str) -> None:
    deps = graph()
    assert other not in {d for d, _ in deps[one]} and one not in {d for d, _ in deps[other]}


def test_no_module_is_over_the_line_limit() -> None:
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, "split these along their seams"
