"""The method families' shared modules (``methods/_base`` and the modules it gathers).

``_base`` re-exports the family classes from one module per job (``_context``, ``_method``,
``_gradient``, ``_population``): every public name stays importable from it and from
``optarena.methods`` as the same object, and the modules import each other without a circle at
import time (a circle there works or breaks depending on which module is imported first).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import optarena.methods as methods
from optarena.methods import _base

METHODS_DIR = Path(methods.__file__).resolve().parent
PUBLIC = (
    "Checkpoint",
    "ExternalMethod",
    "Generations",
    "GradientMethod",
    "IterationInfo",
    "Method",
    "Outcome",
    "PopulationMethod",
    "RunContext",
)
HOMES = {
    "Checkpoint": "_checkpoint",
    "IterationInfo": "_context",
    "Outcome": "_context",
    "RunContext": "_context",
    "Method": "_method",
    "ExternalMethod": "_method",
    "GradientMethod": "_gradient",
    "PopulationMethod": "_population",
    "Generations": "_population",
}


@pytest.mark.parametrize("name", PUBLIC)
def test_base_reexports_each_family_name_from_its_home(name: str) -> None:
    home = importlib.import_module(f"optarena.methods.{HOMES[name]}")
    assert name in _base.__all__
    assert getattr(_base, name) is getattr(home, name)
    if name != "Generations":  # the ask/tell machinery is not part of optarena.methods' API
        assert getattr(methods, name) is getattr(home, name)


def _import_time_targets(path: Path) -> set[str]:
    """The ``methods/`` top-level modules that ``path`` imports when it is imported (module
    level only, not ``if TYPE_CHECKING:`` blocks and not imports inside functions)."""
    out: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            out.add(node.module.split(".")[0])
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every simple circle ``a -> ... -> a`` of ``graph``, each listed once from its least node."""
    found = []
    for start in sorted(graph):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    found.append([*path, start])
                elif nxt not in path and nxt > start:
                    stack.append((nxt, [*path, nxt]))
    return found


def test_cycle_finder_sees_a_circle() -> None:
    graph = {"_base": {"_population"}, "_population": {"_base", "_params"}, "_params": set()}
    assert _cycles(graph) == [["_base", "_population", "_base"]]
    assert _cycles({"_base": {"_population"}, "_population": {"_method"}}) == []


def test_shared_method_modules_import_without_a_circle() -> None:
    modules = {p.stem: p for p in METHODS_DIR.glob("_*.py") if p.stem != "__init__"}
    graph = {name: _import_time_targets(p) & modules.keys() for name, p in modules.items()}
    assert {"_context", "_method", "_gradient", "_population"} <= graph["_base"]
    assert not _cycles(graph), f"import-time circles among methods/_*.py: {_cycles(graph)}"
