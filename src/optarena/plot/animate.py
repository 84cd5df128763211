"""Animations of 1-D and 2-D runs: points moving on the curve or the contours.

Gradient runs move their iterate; population runs show each generation's swarm and its best
point. At most ``max_frames`` frames are drawn (the path is subsampled) at a small size, so
even a long run gives a small GIF or a small self-contained HTML page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.axes import Axes
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text

from ._draw import draw_contours
from .data import frame_indices, grid_1d, grid_2d, run_path

__all__ = ["animate", "self_contained_html"]

# The player's icon font is fetched from a CDN by matplotlib's template; plain text replaces it.
_ICONS = {
    "minus": "&minus;",
    "fast-backward": "|&lt;&lt;",
    "step-backward": "|&lt;",
    "play fa-flip-horizontal": "&lt;",
    "pause": "||",
    "play": "&gt;",
    "step-forward": "&gt;|",
    "fast-forward": "&gt;&gt;|",
    "plus": "+",
}
_TITLE_SIZE = 9
_ICON = re.compile(r'<i class="fa fa-([\w -]+?)"></i>')
_EXTERNAL_LINK = re.compile(r"<link\b[^>]*\bhref=[\"']?(?:https?:)?//[^>]*>", re.I)
_URL = re.compile(r"https?://|\b(?:src|href)=[\"']?//", re.I)


def self_contained_html(fragment: str, title: str) -> str:
    """A whole HTML page around matplotlib's ``to_jshtml`` fragment, with the external icon
    stylesheet removed; raises if any external reference remains."""
    html = _EXTERNAL_LINK.sub("", fragment)
    html = _ICON.sub(lambda m: _ICONS.get(m.group(1), m.group(1)), html)
    found = _URL.search(html)
    if found:
        raise RuntimeError(
            f"the animation page still references an external resource near "
            f"{html[max(found.start() - 40, 0) : found.end() + 40]!r}"
        )
    safe = title.replace("&", "&amp;").replace("<", "&lt;")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{safe}</title>\n</head>\n<body>\n{html}\n</body>\n</html>\n"
    )


def _static_background(
    problem: Any,
    dim: int,
    bounds: Any,
    resolution: int,
    levels: int,
    figsize: tuple[float, float],
    dpi: float,
) -> tuple[Figure, Axes, Text]:
    """A figure showing the landscape as one pre-rendered image, and a transparent axes on
    top with the same limits for the moving points: frames then redraw only those points."""
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    if dim == 2:
        grid = grid_2d(problem, bounds=bounds, resolution=resolution, levels=levels)
        draw_contours(ax, grid, problem)
    else:
        g = grid_1d(problem, bounds=bounds, resolution=max(resolution, 200))
        ax.plot(g.x, g.z, color="0.2", lw=1.5)
        finite = g.z[np.isfinite(g.z)]
        pad = 0.08 * max(float(np.ptp(finite)) if finite.size else 1.0, 1e-12)
        if finite.size:
            ax.set_ylim(float(finite.min()) - pad, float(finite.max()) + pad)
        ax.set_xlim(g.x[0], g.x[-1])
        ax.set_xlabel("x")
        ax.set_ylabel("f(x)")
    ax.set_title(" ", fontsize=_TITLE_SIZE)  # reserve the title's room in the layout
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    background = np.asarray(canvas.buffer_rgba()).copy()
    bb = ax.title.get_window_extent()
    title_xy = ((bb.x0 + bb.x1) / 2 / fig.bbox.width, (bb.y0 + bb.y1) / 2 / fig.bbox.height)
    FigureCanvasBase(fig)  # frames are drawn when saved, not again after each update
    fig.set_layout_engine("none")
    over = fig.add_axes(ax.get_position(), label="moving points")
    over.set_xlim(ax.get_xlim())
    over.set_ylim(ax.get_ylim())
    over.set_axis_off()
    for a in fig.axes[:-1]:
        a.set_visible(False)
    fig.figimage(background, xo=0, yo=0, origin="upper", zorder=-1)
    title = fig.text(*title_xy, "", ha="center", va="center", fontsize=_TITLE_SIZE)
    return fig, over, title


def animate(
    problem: Any,
    run: Any,
    *,
    path: str | Path | None = None,
    max_frames: int = 60,
    fps: float = 8,
    kind: str = "auto",
    generations: Any = None,
    bounds: Any = None,
    resolution: int = 150,
    levels: int = 25,
    figsize: tuple[float, float] = (5.0, 4.0),
    dpi: float = 72,
) -> FuncAnimation | Path:
    """Animate one run of a 1-D or 2-D problem.

    With ``path`` ending in ``.gif`` (Pillow) or ``.html`` (a page with embedded frames and
    no external resources) the animation is written there and the path returned; otherwise
    the ``FuncAnimation`` is returned. ``generations`` (a :class:`~optarena.plot.Recorder` or
    the nfev after each generation) marks a population run's generations.
    """
    fmt = None
    if path is not None:
        fmt = Path(path).suffix.lower()
        if fmt not in (".gif", ".html", ".htm"):
            raise ValueError(f"animate writes .gif or .html files, not {Path(path).name!r}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    dim = getattr(problem, "dim", None)
    p = run_path(run, kind=kind, generations=generations)  # type: ignore[arg-type]
    dim = dim if dim is not None else p.points.shape[1]
    if dim not in (1, 2) or p.points.shape[1] != dim:
        raise ValueError(
            f"animate draws 1-D and 2-D runs; this one has {p.points.shape[1]} variables"
        )
    frames = frame_indices(len(p), max_frames)
    fig, over, title = _static_background(problem, dim, bounds, resolution, levels, figsize, dpi)
    name = getattr(problem, "name", "f")
    coords = p.points if dim == 2 else np.column_stack([p.points[:, 0], p.values])
    (trail,) = over.plot([], [], "-", color="tab:red", lw=1, alpha=0.7, marker=".", ms=3)
    swarm = over.scatter(np.empty(0), np.empty(0), s=10, color="tab:orange", alpha=0.8, lw=0)
    (head,) = over.plot([], [], "o", color="tab:red", mec="k", ms=8)
    ranked = np.where(np.isfinite(p.values), p.values, np.inf)
    best = np.minimum.accumulate(ranked)
    n_total = p.all_f.shape[0]

    def update(j: int) -> tuple[Any, ...]:
        k = int(frames[j])
        trail.set_data(coords[: k + 1, 0], coords[: k + 1, 1])
        head.set_data(coords[k : k + 1, 0], coords[k : k + 1, 1])
        if p.kind == "generations":
            pop = p.population(k)
            if dim == 1:
                pop = np.column_stack([pop[:, 0], p.all_f[p.starts[k] : p.ends[k]]])
            swarm.set_offsets(pop)
        title.set_text(f"{name}, {p.label}: eval {int(p.evals[k])}/{n_total}, best {best[k]:.4g}")
        return trail, head, swarm, title

    anim = FuncAnimation(fig, update, frames=len(frames), interval=1000.0 / fps, blit=False)
    if path is None:
        return anim
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == ".gif":
        anim.save(out, writer=PillowWriter(fps=fps), dpi=dpi)
    else:
        page = self_contained_html(
            anim.to_jshtml(fps=fps, embed_frames=True, default_mode="loop"), f"{name}: {p.label}"
        )
        out.write_text(page, encoding="utf-8")
    return out
