"""Matplotlib renderers: convergence curves, landscapes with paths, 1-D curves and ECDFs.

Each renderer draws the arrays of :mod:`optarena.plot.data` on a new figure (or on ``ax=``)
and returns the Figure, or saves it and returns the file's path when ``path=`` is given.
Figures are built without pyplot, so drawing in loops or threads leaks no global state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .data import (
    AXIS_LABELS,
    DEFAULT_DELTAS,
    Axis,
    Grid,
    RunPath,
    convergence_data,
    ecdf_data,
    grid_1d,
    grid_2d,
    group_runs,
    run_path,
    y_scale,
)

__all__ = ["convergence", "curve_1d", "ecdf", "landscape"]


def _axes(ax: Axes | None, figsize: tuple[float, float], dpi: float) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    return fig, fig.add_subplot()


def _finish(fig: Figure, path: str | Path | None) -> Figure | Path:
    if path is None:
        return fig
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    return [colormaps["turbo"](i / max(n - 1, 1)) for i in range(n)]


#: With more labels than this the legend moves beside the axes and line styles alternate.
_MANY = 8
_DASHES = ("-", "--", "-.", ":")


def _line_style(i: int, n: int) -> str:
    return _DASHES[i % len(_DASHES)] if n > _MANY else "-"


def _legend(ax: Axes, n: int, own_figure: bool, loc: str = "best") -> None:
    """A legend inside the axes, or beside them (the figure widened) for many labels."""
    if n <= _MANY:
        ax.legend(fontsize=8, loc=loc)
        return
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    if own_figure:
        w, h = ax.figure.get_size_inches()
        ax.figure.set_size_inches(w + 3.2, max(h, 0.2 * n + 1.0))


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
    """
    fopt = _f_opt(f_opt, problem, runs)
    if gap is None:
        gap = fopt is not None
    if gap and fopt is None:
        raise ValueError("gap=True needs the optimum: pass f_opt= or problem=")
    curves = convergence_data(runs, axis=axis, f_opt=fopt if gap else None, band=band)
    ys = y_scale(curves, gap=gap, kind=yscale)
    own = ax is None
    fig, ax = _axes(ax, figsize, dpi)
    for i, (c, color) in enumerate(zip(curves, _colors(len(curves)), strict=True)):
        med, lo, hi = c.median, c.lower, c.upper
        if ys.floor is not None:
            med, lo, hi = (np.maximum(v, ys.floor) for v in (med, lo, hi))
        name = c.label if c.n_runs == 1 else f"{c.label} (median of {c.n_runs})"
        ax.plot(
            c.x,
            med,
            drawstyle="steps-post",
            color=color,
            label=name,
            lw=1.6,
            ls=_line_style(i, len(curves)),
            marker="o" if c.x.size == 1 else None,
        )
        if c.n_runs > 1:
            ax.fill_between(c.x, lo, hi, step="post", color=color, alpha=0.2, lw=0)
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
    _legend(ax, len(curves), own)
    if title:
        ax.set_title(title)
    return _finish(fig, path)


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


def _paths(runs: Any, kind: str, generations: Any) -> list[RunPath]:
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


def _outside_note(paths: Sequence[RunPath], lo: np.ndarray, hi: np.ndarray) -> str | None:
    """A legend title saying how many path points lie outside the plotted region, if any."""
    n = sum(int((~((p.points >= lo) & (p.points <= hi)).all(axis=1)).sum()) for p in paths)
    return f"{n} path point(s) outside the plotted region" if n else None


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
    fig, ax = _axes(ax, figsize, dpi)
    draw_contours(ax, grid, problem, cmap)
    paths = _paths(runs, kind, generations)
    for p, color in zip(paths, _colors(len(paths)), strict=True):
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
    note = _outside_note(paths, lo, hi)
    ax.legend(fontsize=8, loc="best", title=note, title_fontsize=8)
    ax.set_title(title or f"{getattr(problem, 'name', 'f')}: o start, X best evaluated")
    return _finish(fig, path)


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
    fig, ax = _axes(ax, figsize, dpi)
    ax.plot(grid.x, grid.z, color="0.2", lw=1.5, label=getattr(problem, "name", "f"))
    paths = _paths(runs, kind, None)
    for p, color in zip(paths, _colors(len(paths)), strict=True):
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
    note = _outside_note(paths, grid.x[:1], grid.x[-1:])
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
    return _finish(fig, path)


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
    fig, ax = _axes(ax, figsize, dpi)
    for i, (c, color) in enumerate(zip(curves, _colors(len(curves)), strict=True)):
        x = np.r_[1, c.evals, max(c.max_evals, int(c.evals[-1]) if c.evals.size else 1)]
        y = np.r_[0.0, c.fraction, c.fraction[-1] if c.fraction.size else 0.0]
        ls = _line_style(i, len(curves))
        ax.plot(x, y, drawstyle="steps-post", color=color, lw=1.6, ls=ls, label=c.label)
        ax.plot(x[-1], y[-1], "x", color=color, ms=8)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("objective evaluations")
    ax.set_ylabel("fraction of (problem, target) pairs")
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax, len(curves), own, loc="upper left")
    ax.set_title(title or f"runtime ECDF over {len(runs_by_problem)} problem(s); x: budget used")
    return _finish(fig, path)
