"""Per-group runtime ECDF data of bbob runs (COCO's picture): one curve per method label,
dimension and function group, against evaluations / dimension; computed by
:mod:`optarena.bench.groups`, the one definition the summary tables use too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ...bench.groups import ALL, ECDF_DELTAS, BBOBRun, GroupCurve, bbob_runs, group_curves
from ...problems.bbob import GROUPS

__all__ = ["GroupCurve", "group_ecdf_data", "panel_order"]


def group_ecdf_data(
    source: Any,
    *,
    keys: Iterable[str] | None = None,
    deltas: Sequence[float] = ECDF_DELTAS,
) -> list[GroupCurve]:
    """The curves of the bbob runs in ``source``: a results Store (its runs with ``keys``,
    or all) or a list of :class:`BBOBRun`. Raises ValueError when there is no bbob run."""
    runs: list[BBOBRun] = (
        list(source) if isinstance(source, list | tuple) else bbob_runs(source, keys)
    )
    if not runs:
        raise ValueError("no bbob runs to draw")
    return group_curves(runs, deltas)


def panel_order(curves: Sequence[GroupCurve]) -> tuple[list[int], list[str]]:
    """The dimensions (rows) and groups (columns, COCO's order, then all functions) that
    have curves."""
    dims = sorted({c.dim for c in curves})
    present = {c.group for c in curves}
    return dims, [g for g in [*GROUPS, ALL] if g in present]
