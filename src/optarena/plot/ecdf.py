"""The runtime ECDF picture: fraction of (problem, target) pairs reached against evaluations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._draw import axes, colors, finish, legend, line_style
from .data import DEFAULT_DELTAS, ecdf_data

__all__ = ["ecdf"]


def ecdf(
    runs_by_problem: Mapping[str, Any],
    *,
    f_opt: Mapping[str, float | None] | None = None,
    targets: Mapping[str, Sequence[float]] | None = None,
    deltas: Sequence[float] = tuple(DEFAULT_DELTAS),
    title: str | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] = (7.0, 4.5),
    dpi: float = 100,
) -> Figure | Path:
    """Fraction of (problem, target) pairs reached against evaluations (log x), per label.

    See :func:`optarena.plot.ecdf_data` for the targets and weights.
    """
    curves = ecdf_data(runs_by_problem, f_opt=f_opt, targets=targets, deltas=deltas)
    own = ax is None
    fig, ax = axes(ax, figsize, dpi)
    for i, (c, color) in enumerate(zip(curves, colors(len(curves)), strict=True)):
        x = np.r_[1, c.evals, max(c.max_evals, int(c.evals[-1]) if c.evals.size else 1)]
        y = np.r_[0.0, c.fraction, c.fraction[-1] if c.fraction.size else 0.0]
        ls = line_style(i, len(curves))
        ax.plot(x, y, drawstyle="steps-post", color=color, lw=1.6, ls=ls, label=c.label)
        ax.plot(x[-1], y[-1], "x", color=color, ms=8)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("objective evaluations")
    ax.set_ylabel("fraction of (problem, target) pairs")
    ax.grid(True, which="major", alpha=0.3)
    legend(ax, len(curves), own, loc="upper left")
    ax.set_title(title or f"runtime ECDF over {len(runs_by_problem)} problem(s); x: budget used")
    return finish(fig, path)
