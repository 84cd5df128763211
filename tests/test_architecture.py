"""The layering of the package, checked on its source: which module may import which.

The evaluation core (``core/``) depends on nothing above it, the parallel code does not know the
methods, a method file never imports another method file, the layers form no import circle, no
module grows past ~400 lines and every public method module registers a method. The imports are
read with ``ast`` (runtime imports only, function-level ones included), so a violation fails
here before anyone has to notice it in a traceback.
"""

from __future__ import annotations

import ast
import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest

import optarena as oa
from optarena.methods import method_modules
from optarena.methods._registry import _REGISTRY

PKG = "optarena"
SRC = Path(oa.__file__).resolve().parent
MAX_LINES = 400
LAYERS = ("core", "parallel", "methods")


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs at runtime: at any depth (functions included), but
    not in the body of ``if TYPE_CHECKING:`` (its ``else:`` branch does run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _resolve(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package modules an import statement names (its explicit targets)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == PKG or a.name.startswith(PKG + ".")]
    if node.level:
        base = module.split(".") if _is_package(module) else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target != PKG and not target.startswith(PKG + "."):
        return []
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in MODULES else target)
    return out


@dataclass(frozen=True)
class Edge:
    """One runtime import: ``source`` imports ``target`` at ``line``."""

    source: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{MODULES[self.source].relative_to(SRC.parent)}:{self.line} imports {self.target}"


def _edges() -> list[Edge]:
    edges = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in _runtime_imports(tree):
            for target in dict.fromkeys(_resolve(name, node)):
                edges.append(Edge(name, target, node.lineno))
    return edges


EDGES = _edges()


def _layer(module: str) -> str:
    """The first component below the package (``core``, ``methods``, ``minimize``, ...);
    the package ``__init__`` is its own layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PKG


def _in(module: str, layer: str) -> bool:
    return _layer(module) == layer


# -- (a) the layers -------------------------------------------------------------------------


def test_import_walker_sees_what_it_must() -> None:
    """The walker finds function-level imports and skips ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .a import X\nelse:\n    from .b import Y\n"
        "def f():\n    from ..c import Z\n"
    )
    found = [n.module for n in _runtime_imports(tree) if isinstance(n, ast.ImportFrom)]
    assert found == ["typing", "b", "c"]
    assert _resolve("optarena.core.oracle", ast.parse("from ..methods import x").body[0]) == [
        "optarena.methods"
    ]
    assert _resolve("optarena.core", ast.parse("from .fd import x").body[0]) == ["optarena.core.fd"]
    assert any(e.source == "optarena.minimize" and _in(e.target, "methods") for e in EDGES)
    circle = {"core": {"parallel"}, "parallel": {"methods"}, "methods": {"core", "budget"}}
    assert _cycles_through(circle, "core") == [["core", "parallel", "methods", "core"]]
    assert _cycles_through({"core": {"budget"}, "methods": {"core"}}, "core") == []


def _layer_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for e in EDGES:
        a, b = _layer(e.source), _layer(e.target)
        if a != b:
            graph.setdefault(a, set()).add(b)
    return graph


def _cycles_through(graph: dict[str, set[str]], start: str) -> list[list[str]]:
    """Simple paths start -> ... -> start in ``graph``."""
    cycles, stack = [], [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                cycles.append([*path, start])
            elif nxt not in path:
                stack.append((nxt, [*path, nxt]))
    return cycles


@pytest.mark.parametrize("layer", LAYERS)
def test_no_import_cycle_through_core_parallel_or_methods(layer: str) -> None:
    """No chain of runtime imports leads from one of these layers back to itself through
    another part of the package (the circle oracle -> executor -> registry -> oracle)."""
    cycles = _cycles_through(_layer_graph(), layer)
    witnesses = []
    for cycle in cycles:
        links = [
            next(e for e in EDGES if _in(e.source, a) and _in(e.target, b))
            for a, b in itertools.pairwise(cycle)
        ]
        witnesses.append(" -> ".join(cycle) + "\n    " + "\n    ".join(map(str, links)))
    assert not cycles, "import circle(s):\n  " + "\n  ".join(witnesses)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("core", ("methods", "parallel", "bench", "plot", PKG)),
        ("parallel", ("methods", "bench", "plot", PKG)),
    ],
)
def test_lower_layers_do_not_import_upper_ones(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = [str(e) for e in EDGES if _in(e.source, layer) and _layer(e.target) in forbidden]
    assert not bad, f"{layer}/ must not import {forbidden}:\n  " + "\n  ".join(bad)


def _is_method_module(module: str) -> bool:
    """A module that defines methods: below methods/, not a package, no ``_`` part."""
    if not _in(module, "methods") or _is_package(module):
        return False
    rel = module.split(".")[2:]
    return not any(part.startswith("_") for part in rel)


def test_method_files_do_not_import_each_other() -> None:
    """Shared code lives in ``_``-prefixed family modules, ``_base``, ``_registry``, ``_params``;
    one method file importing another makes the registry order and the leaves tangled."""
    bad = [
        str(e)
        for e in EDGES
        if _in(e.source, "methods") and _is_method_module(e.target) and e.source != e.target
    ]
    assert not bad, "\n  ".join(["method modules imported inside methods/:", *bad])


def test_method_module_classification() -> None:
    assert _is_method_module("optarena.methods.population.pso")
    assert not _is_method_module("optarena.methods.gradient._lanes")
    assert not _is_method_module("optarena.methods._registry")
    assert not _is_method_module("optarena.methods.population")
    assert {f"optarena.methods.{m}" for m in method_modules()} == {
        m for m in MODULES if _is_method_module(m)
    }


def _registered_names_in(path: Path, names: set[str]) -> list[str]:
    """String literals in ``path`` equal to a registered method's name, except the name a
    ``register(...)`` call gives the module's own method."""
    tree = ast.parse(path.read_text())
    own = {
        id(call.args[0])
        for call in ast.walk(tree)
        if isinstance(call, ast.Call)
        and getattr(call.func, "id", getattr(call.func, "attr", None)) == "register"
        and call.args
    }
    return [
        f"{path.relative_to(SRC.parent)}:{node.lineno} names {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in names
        and id(node) not in own
    ]


# Literals that equal a method's name but mean something else (file, literal): why.
NOT_METHOD_NAMES = {("multistart.py", "auto"): "sampling='auto', a start-sampling mode"}


def test_composites_choose_inner_methods_by_flags_never_by_name() -> None:
    """A composite that names a method can never use one added later: it must select inner
    methods by their capability flags (``MethodInfo``), so the registry stays the only list."""
    names = {i.name for i in oa.methods()}
    composite = SRC / "methods" / "composite"
    bad = [
        hit
        for p in sorted(composite.glob("*.py"))
        for hit in _registered_names_in(p, names - {w for f, w in NOT_METHOD_NAMES if f == p.name})
    ]
    assert not bad, "composite code naming registered methods:\n  " + "\n  ".join(bad)


# -- (b) module size ------------------------------------------------------------------------


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_is_at_most_400_lines(module: str) -> None:
    n = len(MODULES[module].read_text().splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (more than {MAX_LINES}): split it by job"


# -- (c) the package __init__ ---------------------------------------------------------------


def test_no_module_imports_the_package_init() -> None:
    """``from .. import __version__`` inside the package makes every layer depend on the
    whole public API (and so on every other layer)."""
    bad = [str(e) for e in EDGES if e.target == PKG and e.source != PKG]
    assert not bad, "modules importing the package __init__:\n  " + "\n  ".join(bad)


# -- (d) every method module registers a method ---------------------------------------------


def test_every_method_module_registers_something() -> None:
    oa.methods()
    modules = {cls.__module__.removeprefix("optarena.methods.") for cls in _REGISTRY.values()}
    empty = [m for m in method_modules() if m not in modules]
    assert not empty, f"method modules that register no method: {empty}"
