"""The landscape picture: filled log-level contours of a 2-D problem with runs' paths on top."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._draw import axes, colors, draw_contours, finish, outside_note, run_paths
from .data import grid_2d

__all__ = ["landscape"]


def landscape(
    problem: Any,
    runs: Any = None,
    *,
    bounds: Any = None,
    resolution: int = 200,
    levels: int = 30,
    kind: str = "auto",
    generations: Any = None,
    populations: Sequence[int] | str | None = None,
    cmap: str = "viridis",
    title: str | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] = (6.5, 5.0),
    dpi: float = 100,
) -> Figure | Path:
    """Filled contours (log levels) of a 2-D problem with the paths of ``runs`` on top.

    Gradient runs show their iterates, population runs the best point of each generation;
    ``populations`` (step indices, or "all") also scatters whole generations. ``generations``
    (a :class:`~optarena.plot.Recorder` or the nfev after each generation) applies to one run.
    """
    grid = grid_2d(problem, bounds=bounds, resolution=resolution, levels=levels)
    fig, ax = axes(ax, figsize, dpi)
    draw_contours(ax, grid, problem, cmap)
    paths = run_paths(runs, kind, generations)
    for p, color in zip(paths, colors(len(paths)), strict=True):
        if populations is not None:
            steps = range(len(p)) if populations == "all" else populations
            for k in steps:
                pop = p.population(int(k) % len(p))
                ax.scatter(pop[:, 0], pop[:, 1], s=6, color=color, alpha=0.5, lw=0)
        ax.plot(
            p.points[:, 0],
            p.points[:, 1],
            "-",
            color=color,
            lw=1.2,
            marker=".",
            ms=4,
            label=f"{p.label}: {len(p)} {p.kind}",
        )
        ax.plot(*p.points[0], "o", color=color, mec="k", ms=7)
        bx, _ = p.best
        ax.plot(*bx, "X", color=color, mec="k", ms=9)
    lo = np.array([grid.x[0], grid.y[0]])  # type: ignore[index]
    hi = np.array([grid.x[-1], grid.y[-1]])  # type: ignore[index]
    note = outside_note(paths, lo, hi)
    ax.legend(fontsize=8, loc="best", title=note, title_fontsize=8)
    ax.set_title(
        title or f"{getattr(problem, 'name', 'f')}: o first point of a path, X best evaluated"
    )
    return finish(fig, path)
