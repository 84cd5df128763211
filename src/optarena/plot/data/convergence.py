"""Convergence data: the median and a quantile band of best-so-far values on a common x grid,
and the y scale (log, clipped log or symlog) to draw them on."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .runs import AXIS_LABELS, Axis, Trace, group_runs

__all__ = [
    "ConvergenceCurve",
    "YScale",
    "convergence_data",
    "highlighted",
    "quantiles",
    "step_values",
    "y_scale",
]


@dataclass(frozen=True)
class ConvergenceCurve:
    """Best-so-far of one label's runs on a common x grid: median and a quantile band.

    Every column is a step function: the value at ``x[i]`` holds until ``x[i + 1]``.
    ``inf`` means no finite value had been seen yet.
    """

    label: str
    x: np.ndarray
    median: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_runs: int


def _axis_values(t: Trace, axis: Axis) -> np.ndarray:
    if axis not in AXIS_LABELS:
        raise ValueError(f"axis must be one of {sorted(AXIS_LABELS)}, got {axis!r}")
    return np.asarray(getattr(t, axis), dtype=np.float64)


def step_values(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The right-continuous step function through ``(xs, ys)`` at ``grid``: the value of the
    last row with ``xs <= g``, ``inf`` before the first row, the last value after the end."""
    idx = np.searchsorted(xs, grid, side="right") - 1
    out = np.full(grid.shape, np.inf)
    ok = idx >= 0
    out[ok] = ys[idx[ok]]
    return out


def quantiles(values: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Linear-interpolated quantiles over axis 0, where ``inf`` ("nothing found yet") ranks
    last and any interpolation touching it is ``inf``."""
    v = np.sort(values, axis=0)
    n = v.shape[0]
    out = []
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantiles must lie in [0, 1], got {q}")
        pos = q * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        w = pos - lo
        a, b = v[lo], v[hi]
        with np.errstate(invalid="ignore"):
            mid = a + w * (b - a)
        out.append(np.where((w == 0) | (a == b), a, np.where(np.isinf(b), np.inf, mid)))
    return out


def convergence_data(
    runs: Any,
    *,
    axis: Axis = "evals",
    f_opt: float | None = None,
    band: tuple[float, float] = (0.25, 0.75),
) -> list[ConvergenceCurve]:
    """Median and ``band`` quantiles of the best-so-far value of each label's runs.

    The grid is the union of the x values where some run's best-so-far changes plus each
    run's first and last x, so the step curves are exact. A finished run keeps its final
    value. With ``f_opt`` the values are ``best_f - f_opt`` (the gap to the optimum).
    """
    out = []
    for label, traces in group_runs(runs).items():
        cols = []
        for t in traces:
            if len(t) == 0:
                raise ValueError(f"a run of {label!r} has no evaluations")
            xs = _axis_values(t, axis)
            if np.isnan(xs).any():
                raise ValueError(f"a run of {label!r} has no {axis} recorded")
            if axis == "grad_evals" and xs[-1] == 0:
                raise ValueError(
                    f"a run of {label!r} has no gradient evaluations; use axis='evals'"
                )
            cols.append((xs, t.best_f))
        pts = [xs[np.r_[0, np.flatnonzero(b[1:] != b[:-1]) + 1, len(b) - 1]] for xs, b in cols]
        grid = np.unique(np.concatenate(pts))
        vals = np.stack([step_values(xs, b, grid) for xs, b in cols])
        if f_opt is not None:
            vals = vals - f_opt
        lower, median, upper = quantiles(vals, (band[0], 0.5, band[1]))
        out.append(ConvergenceCurve(label, grid, median, lower, upper, len(traces)))
    return out


def highlighted(curves: Sequence[ConvergenceCurve], best: int) -> list[int | None]:
    """Each curve's rank among the ``best`` lowest final medians (0 = lowest), None for the
    others: a picture of many methods gives those few their own colours, the rest one grey.
    A curve that never found a finite value ranks last; ties go by label."""

    def final(c: ConvergenceCurve) -> float:
        v = float(c.median[-1]) if c.median.size else math.inf
        return math.inf if math.isnan(v) else v

    order = sorted(range(len(curves)), key=lambda i: (final(curves[i]), curves[i].label))
    rank: list[int | None] = [None] * len(curves)
    for r, i in enumerate(order[: max(best, 0)]):
        rank[i] = r
    return rank


@dataclass(frozen=True)
class YScale:
    """How to draw values on a log axis: ``kind`` is "log" (values clipped below at ``floor``,
    ``n_clipped`` grid values were <= floor), "symlog" (with ``linthresh``) or "linear"."""

    kind: Literal["log", "symlog", "linear"]
    floor: float | None = None
    linthresh: float | None = None
    n_clipped: int = 0


def y_scale(curves: Sequence[ConvergenceCurve], *, gap: bool, kind: str = "auto") -> YScale:
    """The y scale for ``curves``: log when every value is positive; with gaps to a known
    optimum (``gap=True``) values <= 0 are clipped to a floor a decade below the smallest
    positive one (and counted); raw values <= 0 get a symmetric log scale."""
    v = np.concatenate([np.r_[c.median, c.lower, c.upper] for c in curves])
    v = v[np.isfinite(v)]
    if kind == "linear" or v.size == 0:
        return YScale("linear")
    pos = v[v > 0]
    if kind not in ("auto", "log", "symlog"):
        raise ValueError(f"yscale must be 'auto', 'log', 'symlog' or 'linear', got {kind!r}")
    if kind == "symlog" or (kind == "auto" and not gap and pos.size < v.size):
        nz = np.abs(v[v != 0])
        top = float(nz.max()) if nz.size else 1.0
        small = float(nz.min()) if nz.size else 1.0
        lin = 10.0 ** math.floor(math.log10(max(small, top * 1e-9)))
        return YScale("symlog", linthresh=lin)
    floor = 10.0 ** (math.floor(math.log10(pos.min())) - 1) if pos.size else 1e-12
    return YScale("log", floor=floor, n_clipped=int((v <= floor).sum()))
