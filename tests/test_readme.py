"""The README's method table agrees with the registry: every method listed, with its family and
whether it needs a gradient; no row names a method that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import optarena as oa

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| name | family | gradient | what it is |"


def method_rows() -> dict[str, tuple[str, str]]:
    """``{method name: (family cell, gradient cell)}`` from the README's method table; a row
    may list several methods (their backticked names in the first cell)."""
    lines = README.read_text().splitlines()
    start = lines.index(HEADER) + 2  # skip the |---| line
    rows: dict[str, tuple[str, str]] = {}
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        names = [n for n in re.findall(r"`([^`]+)`", cells[0]) if re.fullmatch(r"\w+", n)]
        assert names, f"README table row without a method name: {line}"
        for name in names:
            assert name not in rows, f"{name} is listed twice in the README table"
            rows[name] = (cells[1], cells[2])
    return rows


def test_table_parser_reads_grouped_rows() -> None:
    rows = method_rows()
    assert rows["adam"] == rows["sgd"]
    assert "cmaes>lbfgs" not in rows  # a usage example, not a method name


@pytest.mark.parametrize("info", oa.methods(), ids=lambda i: i.name)
def test_every_registered_method_is_in_the_readme_table(info: oa.MethodInfo) -> None:
    rows = method_rows()
    assert info.name in rows, f"README's method table does not list {info.name!r}"
    family, gradient = rows[info.name]
    assert family == info.family, f"{info.name}: README says {family!r}, registry {info.family!r}"
    needs = "yes" if info.needs_grad else "no"
    assert gradient.split()[0] == needs, (
        f"{info.name}: README's gradient column says {gradient!r}, but needs_grad is "
        f"{info.needs_grad}"
    )


def test_readme_table_lists_only_registered_methods() -> None:
    registered = {i.name for i in oa.methods()}
    stale = sorted(set(method_rows()) - registered)
    assert not stale, f"README's method table lists unregistered methods: {stale}"
