"""What every picture shares: a figure without pyplot, saving, colours, legends, contours
and the run paths drawn on landscapes and curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .data import Grid, RunPath, group_runs, run_path

__all__ = [
    "axes",
    "colors",
    "draw_contours",
    "finish",
    "legend",
    "line_style",
    "outside_note",
    "run_paths",
]


def axes(ax: Axes | None, figsize: tuple[float, float], dpi: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    return fig, fig.add_subplot()


def finish(fig: Figure, path: str | Path | None) -> Figure | Path:
    if path is None:
        return fig
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps["turbo"](i / max(n - 1, 1)) for i in range(n)]


#: With more labels than this the legend moves beside the axes and line styles alternate.
_MANY = 8
_DASHES = ("-", "--", "-.", ":")


def line_style(i: int, n: int) -> str:
    return _DASHES[i % len(_DASHES)] if n > _MANY else "-"


def legend(ax: Axes, n: int, own_figure: bool, loc: str = "best") -> None:
    """A legend inside the axes, or beside them (the figure widened) for many labels."""
    if n <= _MANY:
        ax.legend(fontsize=8, loc=loc)
        return
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if own_figure:
        w, h = ax.figure.get_size_inches()
        ax.figure.set_size_inches(w + 3.2, max(h, 0.2 * n + 1.0))


def draw_contours(ax: Axes, grid: Grid, problem: Any, cmap: str = "viridis") -> None:
    """Filled log-level contours of a 2-D grid, a colorbar, and the optimum marked."""
    assert grid.y is not None and grid.levels is not None
    z = np.ma.masked_invalid(grid.z - grid.shift)
    z = np.ma.masked_less_equal(z, 0)
    cs = ax.contourf(
        grid.x, grid.y, z, levels=grid.levels, norm=LogNorm(), cmap=cmap, extend="both"
    )
    ax.contour(
        grid.x,
        grid.y,
        z,
        levels=grid.levels[::3],
        norm=LogNorm(),
        colors="k",
        linewidths=0.3,
        alpha=0.4,
    )
    label = "f" if grid.shift == 0 else f"f {'+' if grid.shift < 0 else '-'} {abs(grid.shift):.3g}"
    ax.figure.colorbar(cs, ax=ax, label=label, format="%.3g")
    x_opt = getattr(problem, "x_opt", None)
    if x_opt is not None:
        xo = np.asarray(x_opt.detach().cpu().double() if hasattr(x_opt, "detach") else x_opt)
        ax.plot(*xo.reshape(2), marker="*", ms=15, color="white", mec="k", ls="", label="optimum")
    else:
        j = np.unravel_index(np.nanargmin(grid.z), grid.z.shape)
        ax.plot(
            grid.x[j[1]],
            grid.y[j[0]],
            marker="*",
            ms=12,
            color="white",
            mec="k",
            ls="",
            label="lowest grid value",
        )
    ax.set_xlim(grid.x[0], grid.x[-1])
    ax.set_ylim(grid.y[0], grid.y[-1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")


def run_paths(runs: Any, kind: str, generations: Any) -> list[RunPath]:
    if runs is None:
        if generations is not None:
            raise ValueError("generations= was given without a run")
        return []
    groups = group_runs(runs)
    n = sum(len(v) for v in groups.values())
    if generations is not None and n != 1:
        raise ValueError(f"generations= describes one run, but {n} runs were given")
    out = []
    for label, traces in groups.items():
        for t in traces:
            name = label if len(traces) == 1 else f"{label} (seed {t.seed})"
            out.append(run_path(t, kind=kind, generations=generations, label=name))  # type: ignore[arg-type]
    return out


def outside_note(paths: Sequence[RunPath], lo: np.ndarray, hi: np.ndarray) -> str | None:
    """A legend title saying how many path points lie outside the plotted region, if any."""
    n = sum(int((~((p.points >= lo) & (p.points <= hi)).all(axis=1)).sum()) for p in paths)
    return f"{n} path point(s) outside the plotted region" if n else None
