"""Each picture is one module that draws; the data it draws comes from matplotlib-free code."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from optarena import plot


@pytest.mark.parametrize(
    "name", ["convergence", "ecdf", "landscape", "curve_1d", "animate", "write_report"]
)
def test_every_picture_has_its_own_module(name: str) -> None:
    module = "report" if name == "write_report" else name
    mod = importlib.import_module(f"optarena.plot.{module}")
    assert getattr(mod, name) is getattr(plot, name) and callable(getattr(plot, name))


def test_plot_data_imports_no_matplotlib() -> None:
    data = Path(plot.__file__).parent / "data"
    modules = sorted(data.glob("*.py"))
    assert len(modules) >= 5
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("matplotlib") for n in names), path.name
