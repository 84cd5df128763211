"""The pictures of a hyperparameter study: best value over trials, a slice per parameter and
parameter importance (parallel coordinates: :mod:`.study_parallel`).

Each takes a table in the ``trials_frame`` layout (``optarena.study.trials_frame(store)``, or
``plot.result_trials(minimize(f, space=...))``) or a :class:`~optarena.plot.StudyTrials`, and
returns a Figure (or the saved file's path with ``path=``). ``study=`` picks one study of a
table holding several; ``space=`` (default ``frame.attrs["space"]``) gives log axes and the
order of categories.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from ._draw import axes, finish
from .data.study import StudyTrials, param_importance, study_trials
from .data.study_views import best_value_data, log_values

__all__ = ["as_trials", "study_history", "study_importance", "study_slices"]


def as_trials(source: Any, study: str | None = None, space: Any = None) -> StudyTrials:
    """``source`` as StudyTrials (a trials table is read with :func:`study_trials`)."""
    if isinstance(source, StudyTrials):
        return source
    return study_trials(source, study=study, space=space)


def _title(t: StudyTrials, what: str) -> str:
    c = t.counts()
    extra = "".join(f", {c[s]} {s}" for s in ("pruned", "failed") if c[s])
    return f"{t.study}: {what} ({c['complete']} complete{extra})"


def study_history(
    source: Any,
    *,
    study: str | None = None,
    space: Any = None,
    yscale: str = "auto",
    title: str | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] = (7.0, 4.5),
    dpi: float = 100,
) -> Figure | Path:
    """Each complete trial's value as a dot against its number, the best so far as a step
    line; pruned trials as hollow dots at their last reported value, failed trials as ticks
    at the bottom (both counted in the legend). ``yscale="auto"``: log when every value is
    positive and they span over 2 decades."""
    t = as_trials(source, study, space)
    d = best_value_data(t)
    fig, ax = axes(ax, figsize, dpi)
    ax.plot(
        d.number,
        d.value,
        "o",
        ms=4,
        color="tab:blue",
        alpha=0.7,
        label=f"complete trial ({d.number.size})",
    )
    if d.number.size:
        x = np.r_[d.number, max(int(t.number.max()), int(d.number[-1]))]
        ax.plot(
            x,
            np.r_[d.best, d.best[-1]],
            drawstyle="steps-post",
            color="tab:red",
            lw=1.8,
            label=f"best so far ({d.best[-1]:.4g})",
        )
    shown = np.isfinite(d.pruned_value)
    if d.pruned_number.size:
        ax.plot(
            d.pruned_number[shown],
            d.pruned_value[shown],
            "o",
            ms=5,
            mfc="none",
            mec="tab:orange",
            label=f"pruned, last reported value ({d.pruned_number.size})",
        )
    if d.failed_number.size:
        ax.plot(
            d.failed_number,
            np.zeros(d.failed_number.size),
            "|",
            ms=12,
            color="k",
            transform=ax.get_xaxis_transform(),
            label=f"failed, no value ({d.failed_number.size})",
        )
    vals = np.r_[d.value, d.pruned_value[shown]]
    if yscale == "auto":
        yscale = "log" if log_values(vals) else "linear"
    ax.set_yscale(yscale)
    ax.set_xlabel("trial number (order asked)")
    ax.set_ylabel("objective value")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    ax.set_title(title or _title(t, "value over trials"), fontsize=10)
    return finish(fig, path)


def _jitter(n: int, width: float = 0.15) -> np.ndarray:
    """Fixed offsets that spread the dots of a category (the same on every drawing)."""
    return np.random.default_rng(0).uniform(-width, width, n)


def study_slices(
    source: Any,
    *,
    study: str | None = None,
    space: Any = None,
    params: list[str] | None = None,
    ncols: int = 3,
    title: str | None = None,
    path: str | Path | None = None,
    panel_size: tuple[float, float] = (3.4, 2.8),
    dpi: float = 100,
) -> Figure | Path:
    """One panel per parameter: each complete trial's value against the parameter (log axis
    for log-scale parameters, categories side by side), coloured by trial number, so where
    the search went late shows in the colour. Rows where a conditional parameter is absent
    are left out of its panel (its title counts the trials that set it)."""
    t = as_trials(source, study, space)
    names = list(t.params) if params is None else list(params)
    if not names:
        raise ValueError(f"study {t.study!r} has no parameter columns (params_<name>)")
    rows = np.flatnonzero(t.complete)
    y = t.value[rows]
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig = Figure(
        figsize=(panel_size[0] * ncols + 1.0, panel_size[1] * nrows + 0.6),
        dpi=dpi,
        layout="constrained",
    )
    grid = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    norm = Normalize(*(float(f(t.number)) for f in (np.min, np.max)) if len(t) else (0, 1))
    ylog = log_values(y)
    sc = None
    for i, name in enumerate(names):
        ax = grid[i // ncols][i % ncols]
        col = t.params[name]
        here = col.present[rows]
        x = col.values[rows][here]
        if col.kind == "choice":
            x = x + _jitter(x.size)
            ax.set_xticks(
                range(len(col.categories)),
                [str(c) for c in col.categories],
                rotation=30 if len(col.categories) > 3 else 0,
            )
            ax.set_xlim(-0.5, max(len(col.categories), 1) - 0.5)
        else:
            _number_axis(ax, col)
        sc = ax.scatter(
            x,
            y[here],
            c=t.number[rows][here],
            cmap="viridis",
            norm=norm,
            s=16,
            alpha=0.85,
            edgecolors="none",
        )
        note = "" if here.all() else f" (set in {int(here.sum())} of {rows.size})"
        ax.set_title(name + (" (log)" if col.log else "") + note, fontsize=9)
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelsize=8)
        if i % ncols == 0:
            ax.set_ylabel("objective value")
        if ylog:
            ax.set_yscale("log")
    for j in range(len(names), nrows * ncols):
        grid[j // ncols][j % ncols].set_visible(False)
    if sc is not None:
        fig.colorbar(sc, ax=grid, label="trial number", shrink=0.9)
    fig.suptitle(title or _title(t, "value against each parameter"), fontsize=10)
    return finish(fig, path)


def _number_axis(ax: Any, col: Any) -> None:
    """A number parameter's x axis: the space's range (a few trials, or one value, still show
    where they sit in it), log for log parameters with plain labels, integer ticks for ints."""
    if col.log:
        ax.set_xscale("log")
        lo, hi = col.bounds or (np.nanmin(col.values), np.nanmax(col.values))
        subs = (1.0,) if hi / lo >= 100 else (1.0, 2.0, 5.0)
        ax.xaxis.set_major_locator(LogLocator(subs=subs))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    elif col.kind == "int":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if col.bounds is not None:
        lo, hi = col.bounds
        if col.log:
            pad = (hi / lo) ** 0.04
            ax.set_xlim(lo / pad, hi * pad)
        else:
            pad = 0.04 * (hi - lo) if hi > lo else 0.5
            ax.set_xlim(lo - pad, hi + pad)


def study_importance(
    source: Any,
    *,
    study: str | None = None,
    space: Any = None,
    params: list[str] | None = None,
    on: str = "rank",
    title: str | None = None,
    ax: Axes | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] = (6.0, 3.5),
    dpi: float = 100,
) -> Figure | Path:
    """Horizontal bars of :func:`~optarena.plot.param_importance`: each parameter's share of
    the objective's variation it explains alone (main effects only; noisy with few trials);
    the x label says how much they explain in total, so shares of nearly nothing show."""
    t = as_trials(source, study, space)
    raw = param_importance(t, params=params, on=on, normalize=False)  # type: ignore[arg-type]
    total = sum(raw.values())
    shares = {k: (v / total if total > 0 else 0.0) for k, v in raw.items()}
    own = ax is None
    fig, ax = axes(ax, figsize, dpi)
    names = list(shares)[::-1]
    vals = np.array([shares[n] for n in names])
    ax.barh(range(len(names)), vals, color="tab:blue", alpha=0.8)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    for i, v in enumerate(vals):
        ax.text(v + 0.01, i, f"{v:.0%}", va="center", fontsize=8)
    ax.set_xlim(0, max(1.0, float(vals.max()) + 0.12) if vals.size else 1.0)
    what = "objective's ranks" if on == "rank" else "objective"
    ax.set_xlabel(
        f"share of importance; each parameter alone explains, summed, {total:.0%}\n"
        f"of the variance of the {what}",
        fontsize=9,
    )
    n = int(t.complete.sum())
    if own and len(names) > 6:
        fig.set_size_inches(figsize[0], max(figsize[1], 0.35 * len(names) + 1.2))
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_title(
        title or f"{t.study}: parameter importance (binned epsilon², {n} trials)", fontsize=10
    )
    return finish(fig, path)
