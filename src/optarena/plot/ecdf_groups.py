"""COCO's per-group runtime ECDFs of bbob runs: one panel per dimension and function group,
the fraction of (run, target) pairs reached against evaluations / dimension."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from ._draw import colors, finish, line_style
from .data.ecdf_groups import group_ecdf_data, panel_order

__all__ = ["ecdf_groups"]


def ecdf_groups(
    source: Any,
    *,
    keys: Iterable[str] | None = None,
    path: str | Path | None = None,
    panel: tuple[float, float] = (3.0, 2.4),
    dpi: float = 100,
) -> Figure | Path:
    """Per-group ECDFs of the bbob runs in ``source`` (a Store or a list of BBOBRun), over
    COCO's 51 targets 10^2 ... 10^-8; an x marks each label's budget."""
    curves = group_ecdf_data(source, keys=keys)
    dims, groups = panel_order(curves)
    labels = list(dict.fromkeys(c.label for c in curves))
    color = dict(zip(labels, colors(len(labels)), strict=True))
    fig = Figure(
        figsize=(panel[0] * len(groups), panel[1] * len(dims) + 0.6), dpi=dpi, layout="tight"
    )
    grid = fig.subplots(len(dims), len(groups), squeeze=False, sharex="row", sharey=True)
    for c in curves:
        ax = grid[dims.index(c.dim)][groups.index(c.group)]
        i = labels.index(c.label)
        start = 1.0 / c.dim  # one evaluation
        x = np.r_[start, c.x, max(c.budget, c.x[-1] if c.x.size else start)]
        y = np.r_[0.0, c.fraction, c.fraction[-1] if c.fraction.size else 0.0]
        ax.plot(x, y, drawstyle="steps-post", color=color[c.label], lw=1.4,
                ls=line_style(i, len(labels)), label=c.label)  # fmt: skip
        ax.plot(x[-1], y[-1], "x", color=color[c.label], ms=6)
    for r, d in enumerate(dims):
        for k, g in enumerate(groups):
            ax = grid[r][k]
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_ylim(-0.02, 1.02)
            ax.grid(True, which="major", alpha=0.3)
            ax.set_title(f"{g}, d = {d}", fontsize=8)
            if r == len(dims) - 1:
                ax.set_xlabel("evaluations / d", fontsize=8)
            if k == 0:
                ax.set_ylabel("fraction of pairs", fontsize=8)
            ax.tick_params(labelsize=7)
    grid[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle("bbob runtime ECDF per function group, 51 targets 1e2 ... 1e-8", fontsize=10)
    return finish(fig, path)
