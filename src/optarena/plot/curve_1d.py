"""The 1-D picture: the curve of a 1-D problem with each run's evaluated points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._draw import axes, colors, finish, outside_note, run_paths
from .data import grid_1d

__all__ = ["curve_1d"]


def curve_1d(
    problem: Any,
    runs: Any = None,
    *,
    bounds: Any = None,
    resolution: int = 400,
    kind: str = "evaluations",
    title: str | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] = (7.0, 4.5),
    dpi: float = 100,
) -> Figure | Path:
    """The curve of a 1-D problem with each run's evaluated points (or ``kind="iterates"``),
    joined in evaluation order."""
    grid = grid_1d(problem, bounds=bounds, resolution=resolution)
    fig, ax = axes(ax, figsize, dpi)
    ax.plot(grid.x, grid.z, color="0.2", lw=1.5, label=getattr(problem, "name", "f"))
    paths = run_paths(runs, kind, None)
    for p, color in zip(paths, colors(len(paths)), strict=True):
        ax.plot(p.points[:, 0], p.values, "-", color=color, lw=0.6, alpha=0.6)
        ax.plot(
            p.points[:, 0],
            p.values,
            "o",
            color=color,
            ms=4,
            mec="k",
            mew=0.4,
            label=f"{p.label}: {len(p)} {p.kind}",
        )
        bx, bf = p.best
        ax.plot(bx[0], bf, "X", color=color, mec="k", ms=10)
    note = outside_note(paths, grid.x[:1], grid.x[-1:])
    ax.set_xlim(grid.x[0], grid.x[-1])
    finite = grid.z[np.isfinite(grid.z)]
    if finite.size:
        pad = 0.08 * max(float(finite.max() - finite.min()), 1e-12)
        ax.set_ylim(float(finite.min()) - pad, float(finite.max()) + pad)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, title=note, title_fontsize=8)
    ax.set_title(title or f"{getattr(problem, 'name', 'f')}: X best evaluated")
    return finish(fig, path)
