"""Parallel coordinates of a study: one vertical axis for the objective and one per parameter,
one line per complete trial, coloured by its value (the best drawn on top)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure

from ._draw import finish
from .data.study_views import parallel_data
from .study import _title, as_trials

__all__ = ["study_parallel"]

#: Height at which a line crosses the axis of a parameter it does not set (conditional).
ABSENT = -0.12


def study_parallel(
    source: Any,
    *,
    study: str | None = None,
    space: Any = None,
    params: list[str] | None = None,
    title: str | None = None,
    path: str | Path | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: float = 100,
) -> Figure | Path:
    """One axis for the objective, then one per parameter (numbers scaled to the range seen,
    log-scale ones in log; categories at their index, labelled); each complete trial is a
    line coloured by its value, the lowest drawn last. A line crosses the axis of a
    conditional parameter it did not set at the "absent" mark below it."""
    t = as_trials(source, study, space)
    d = parallel_data(t, params)
    m = len(d.axes)
    if figsize is None:
        figsize = (max(6.0, 1.5 * m + 1.5), 4.5)
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    if d.value.size:
        heights = np.stack([np.where(np.isnan(a.height), ABSENT, a.height) for a in d.axes], 1)
        order = np.argsort(-d.value, kind="stable")  # the best last, on top
        segs = [np.column_stack([np.arange(m), heights[i]]) for i in order]
        norm = (LogNorm if d.value_log else Normalize)(float(d.value.min()), float(d.value.max()))
        lines = LineCollection(segs, cmap="viridis", norm=norm, linewidths=1.1, alpha=0.75)
        lines.set_array(d.value[order])
        ax.add_collection(lines)
        fig.colorbar(lines, ax=ax, label="objective value", pad=0.01)
    absent = False
    for j, a in enumerate(d.axes):
        ax.axvline(j, color="0.3", lw=0.8, zorder=0)
        for h, lab in zip(a.ticks, a.labels, strict=True):
            ax.plot([j - 0.03, j], [h, h], color="0.3", lw=0.8)
            ax.text(
                j - 0.05,
                h,
                lab,
                ha="right",
                va="center",
                fontsize=7,
                bbox={"fc": "white", "ec": "none", "alpha": 0.7, "pad": 0.5},
            )
        if np.isnan(a.height).any():
            absent = True
            ax.text(
                j - 0.05,
                ABSENT,
                "absent",
                ha="right",
                va="center",
                fontsize=7,
                color="0.4",
                style="italic",
            )
    ax.set_xticks(range(m), [a.name + (" (log)" if a.log else "") for a in d.axes], fontsize=9)
    ax.set_xlim(-0.6, m - 1 + 0.15)
    ax.set_ylim(ABSENT - 0.05 if absent else -0.05, 1.05)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(title or _title(t, "parallel coordinates"), fontsize=10)
    return finish(fig, path)
