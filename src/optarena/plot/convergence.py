"""The convergence picture: best-so-far value against evaluations, one line per label."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._draw import axes, colors, finish, legend, line_style
from .data import AXIS_LABELS, Axis, convergence_data, highlighted, y_scale

__all__ = ["convergence"]

#: Up to this many labels each gets its own colour; beyond it only the best few do.
DISTINCT = 10
#: Labels highlighted in colour when there are more than DISTINCT (the others are grey).
HIGHLIGHT = 7


def _f_opt(f_opt: float | None, problem: Any, runs: Any) -> float | None:
    if f_opt is not None:
        return float(f_opt)
    for holder in (problem, runs, getattr(runs, "problem", None)):
        v = getattr(holder, "f_opt", None)
        if isinstance(v, int | float) and math.isfinite(v):
            return float(v)
    return None


def convergence(
    runs: Any,
    *,
    axis: Axis = "evals",
    problem: Any = None,
    f_opt: float | None = None,
    gap: bool | None = None,
    yscale: str = "auto",
    xscale: str = "linear",
    band: tuple[float, float] = (0.25, 0.75),
    target: float | str | None = "auto",
    title: str | None = None,
    highlight: int | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] = (7.0, 4.5),
    dpi: float = 100,
) -> Figure | Path:
    """Best-so-far value against evaluations (or ``axis="grad_evals"`` / ``"seconds"``).

    One line per label (runs are grouped by method name, or pass ``{label: [results]}``);
    several runs of a label draw their median and a ``band`` quantile range. When the optimum
    is known (``f_opt=``, ``problem=``, or an ``f_opt`` of the runs object or of its
    ``.problem``) the gap ``f - f_opt`` is drawn (``gap=False`` for raw values); values <= 0
    on the log axis are drawn at a floor line that says so. ``target="auto"`` draws ``f_opt``
    as a line on raw values.

    Colours stay distinguishable: up to 10 labels each get one; with more, only the
    ``highlight`` (default 7) with the lowest final median do, ranked in the legend, and the
    others are thin grey lines under one legend entry.
    """
    fopt = _f_opt(f_opt, problem, runs)
    if gap is None:
        gap = fopt is not None
    if gap and fopt is None:
        raise ValueError("gap=True needs the optimum: pass f_opt= or problem=")
    curves = convergence_data(runs, axis=axis, f_opt=fopt if gap else None, band=band)
    ys = y_scale(curves, gap=gap, kind=yscale)
    own = ax is None
    fig, ax = axes(ax, figsize, dpi)
    n = len(curves)
    best = (n if n <= DISTINCT else HIGHLIGHT) if highlight is None else highlight
    rank = highlighted(curves, best)
    shown = min(best, n)
    palette = colors(shown)
    order = sorted(range(n), key=lambda i: (rank[i] is None, rank[i] or 0))
    grey = 0
    for i in order:
        c, r = curves[i], rank[i]
        med, lo, hi = c.median, c.lower, c.upper
        if ys.floor is not None:
            med, lo, hi = (np.maximum(v, ys.floor) for v in (med, lo, hi))
        name = c.label if c.n_runs == 1 else f"{c.label} (median of {c.n_runs})"
        if r is None:  # not among the best: grey, thin, behind, one legend entry for all
            ax.plot(c.x, med, drawstyle="steps-post", color="0.65", lw=0.8, zorder=1,
                    label=None if grey else f"{n - shown} other labels (grey)")  # fmt: skip
            grey += 1
            continue
        ax.plot(
            c.x,
            med,
            drawstyle="steps-post",
            color=palette[r],
            label=name if shown == n else f"{r + 1}. {name}",
            lw=1.6 if shown == n else 2.0,
            ls=line_style(r, n) if shown == n else "-",
            marker="o" if c.x.size == 1 else None,
            zorder=3,
        )
        if c.n_runs > 1:
            ax.fill_between(c.x, lo, hi, step="post", color=palette[r], alpha=0.2, lw=0)
    if ys.n_clipped and ys.floor is not None:
        what = "f - f_opt <= 0 (optimum reached)" if gap else "f <= 0"
        ax.axhline(ys.floor, color="0.4", ls=":", lw=1, label=f"{what}, drawn at {ys.floor:.0e}")
    if target == "auto":
        target = fopt if (fopt is not None and not gap) else None
    if target is not None:
        ax.axhline(float(target), color="k", ls="--", lw=1, label=f"target {float(target):.6g}")
    if ys.kind == "symlog":
        ax.set_yscale("symlog", linthresh=ys.linthresh)
    else:
        ax.set_yscale(ys.kind)
    ax.set_xscale(xscale)
    ax.set_xlabel(AXIS_LABELS[axis])
    ax.set_ylabel("best f - f_opt so far" if gap else "best f so far")
    if band != (0.25, 0.75) and any(c.n_runs > 1 for c in curves):
        ax.text(
            0.99,
            0.99,
            f"band: {band[0]:.0%}-{band[1]:.0%}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8,
        )
    ax.grid(True, which="major", alpha=0.3)
    legend(ax, shown + (grey > 0), own)
    if title:
        ax.set_title(title)
    return finish(fig, path)
