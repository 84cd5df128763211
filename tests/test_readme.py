"""The README is true: every ```python block runs as written, and the method table agrees
with the registry (every method listed, with its family and whether it needs a gradient; no
row names a method that does not exist)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import torch

import optarena as oa

README = Path(__file__).resolve().parents[1] / "README.md"
HEADER = "| name | family | gradient | what it is |"
#: The one marker that keeps a block from running (for what a test machine cannot have, such
#: as a cluster's address); it must say why after the colon.
SKIP_MARKER = "# not run by the tests:"


def python_blocks(text: str | None = None) -> list[tuple[int, str]]:
    """``(line number, code)`` of every fenced ```python block of the README."""
    lines = (README.read_text() if text is None else text).splitlines()
    blocks, start = [], None
    for i, line in enumerate(lines, 1):
        if start is None and line.strip() == "```python":
            start = i
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start : i - 1]) + "\n"))
            start = None
    assert start is None, f"README: the ```python block at line {start} is never closed"
    return blocks


def _block_id(block: tuple[int, str]) -> str:
    return f"line{block[0]}"


def test_block_reader_finds_blocks_and_the_skip_marker() -> None:
    text = (
        "a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\n# not run by the tests: why\n```\n"
    )
    assert python_blocks(text) == [(2, "x = 1\n"), (8, "# not run by the tests: why\n")]
    blocks = python_blocks()
    assert len(blocks) >= 6
    skipped = [line for line, code in blocks if SKIP_MARKER in code]
    assert len(skipped) <= 1, f"README blocks not run by the tests: lines {skipped}"


@pytest.mark.parametrize("block", python_blocks(), ids=_block_id)
def test_readme_block_runs_as_written(
    block: tuple[int, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line, code = block
    first = code.lstrip().splitlines()[0] if code.strip() else ""
    if first.startswith(SKIP_MARKER):
        reason = first.removeprefix(SKIP_MARKER).strip()
        assert reason, f"README line {line}: say why the block is not run"
        pytest.skip(f"README line {line}: {reason}")
    monkeypatch.chdir(tmp_path)  # files a block writes (pictures) land in a scratch folder
    compiled = compile(code, f"README.md:{line}", "exec")
    with torch.random.fork_rng(), warnings.catch_warnings():
        exec(compiled, {"__name__": "__readme__"})  # a fresh namespace: each block stands alone


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
