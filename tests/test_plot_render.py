"""Every plot type rendered to PNG (checked for size and content), and small animations."""

from __future__ import annotations

import math
import re

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.figure import Figure
from PIL import Image

import optarena as oa
from optarena import plot

matplotlib.use("Agg")

ROSEN = oa.problems.get("rosenbrock")


@pytest.fixture(scope="module")
def rosen_runs() -> list[oa.Result]:
    return [
        oa.minimize(ROSEN, method="lbfgs", budget=60),
        oa.minimize(ROSEN, method="adam", lr=0.05, budget=60),
        oa.minimize(ROSEN, method="nelder_mead", budget=60),
    ]


def swarm_trace(n_gen: int = 12, size: int = 8, seed: int = 0) -> plot.Trace:
    """A population run on Rosenbrock: generations shrink towards (1, 1), one batch each."""
    rng = np.random.default_rng(seed)
    xs, secs = [], []
    for g in range(n_gen):
        center = np.array([-1.0, 1.0]) + (g / (n_gen - 1)) * np.array([2.0, 0.0])
        xs.append(center + rng.normal(scale=0.6 * 0.8**g, size=(size, 2)))
        secs += [float(g)] * size
    x = np.concatenate(xs)
    f = ROSEN.batched(torch.as_tensor(x))
    return plot.Trace.from_values(f.numpy(), seconds=secs, x=x, method="swarm", seed=seed)


def assert_picture(path, min_w: int = 300, min_h: int = 200) -> np.ndarray:
    """The PNG exists, has a sensible size and is not blank (its pixels vary)."""
    im = Image.open(path)
    assert im.format == "PNG"
    w, h = im.size
    assert w >= min_w and h >= min_h and w <= 3000 and h <= 3000
    px = np.asarray(im.convert("RGB"), dtype=float)
    assert px.std() > 10.0, "the picture is (almost) blank"
    return px


def legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]


def test_convergence_png_with_median_band_and_floor(tmp_path, rosen_runs):
    seeds = [
        plot.Trace.from_values([4.0, 2.0 / (s + 1), 0.0 if s < 2 else 1e-3], method="pso")
        for s in range(3)
    ]
    out = plot.convergence(
        {"pso": seeds, "lbfgs": rosen_runs[:1]}, f_opt=0.0, path=tmp_path / "sub" / "conv.png"
    )
    assert out == tmp_path / "sub" / "conv.png"
    assert_picture(out)
    fig = plot.convergence({"pso": seeds}, problem=ROSEN)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "objective evaluations"
    texts = legend_texts(fig)
    assert "pso (median of 3)" in texts
    assert any("optimum reached" in t and "drawn at" in t for t in texts)
    assert len(ax.collections) == 1  # the quartile band


def test_convergence_raw_values_symlog_target_and_other_axes(tmp_path, rosen_runs):
    flower = oa.problems.get("flower")
    r = oa.minimize(flower, method="nelder_mead", budget=80)
    fig = plot.convergence(r, problem=flower, gap=False)
    ax = fig.axes[0]
    assert ax.get_yscale() == "symlog"
    assert any(t.startswith("target -1") for t in legend_texts(fig))
    assert_picture(plot.convergence(r, problem=flower, gap=False, path=tmp_path / "raw.png"))
    fig = plot.convergence(rosen_runs[:2], axis="grad_evals", problem=ROSEN)
    assert fig.axes[0].get_xlabel() == "gradient evaluations"
    out = plot.convergence(rosen_runs, axis="seconds", xscale="log", path=tmp_path / "sec.png")
    assert_picture(out)
    with pytest.raises(ValueError, match="needs the optimum"):
        plot.convergence(r, gap=True)


def test_many_labels_put_the_legend_beside_the_axes(tmp_path):
    # 10 labels: each its own colour (beyond 10 only the best few are coloured, see below)
    runs = {f"m{i}": plot.Trace.from_values([5.0, 4.0 - 0.3 * i]) for i in range(10)}
    fig = plot.convergence(runs)
    assert fig.get_size_inches()[0] > 7.0
    styles = {line.get_linestyle() for line in fig.axes[0].lines}
    assert len(styles) >= 3  # dashes tell neighbouring colours apart
    assert_picture(plot.convergence(runs, path=tmp_path / "many.png"))


def test_convergence_draws_into_given_axes(rosen_runs):
    fig = Figure()
    ax = fig.add_subplot()
    assert plot.convergence(rosen_runs, problem=ROSEN, ax=ax) is fig
    assert len(ax.lines) >= 3


def test_landscape_with_paths_populations_and_negative_function(tmp_path, rosen_runs):
    fig = plot.landscape(ROSEN, rosen_runs, resolution=30)
    title = fig.axes[0].get_legend().get_title().get_text()
    outside = sum(
        int((np.abs(plot.run_path(r).points) > 2.0).any(axis=1).sum()) for r in rosen_runs
    )
    assert outside > 0 and title == f"{outside} path point(s) outside the plotted region"
    out = plot.landscape(ROSEN, rosen_runs, resolution=60, path=tmp_path / "rosen.png")
    px = assert_picture(out)
    assert len(np.unique(px.reshape(-1, 3), axis=0)) > 50  # filled contours, not flat
    fig = plot.landscape(ROSEN, swarm_trace(), populations=[0, -1], resolution=50)
    texts = legend_texts(fig)
    assert "optimum" in texts and "swarm: 12 generations" in texts
    flower = oa.problems.get("flower")
    r = oa.minimize(flower, method="nelder_mead", budget=120)
    assert_picture(
        plot.landscape(flower, r, bounds=(-5.0, 5.0), resolution=60, path=tmp_path / "flower.png")
    )
    fig = plot.landscape(flower, r, bounds=(-3.0, 3.0), resolution=40)
    cbar = fig.axes[1]
    assert cbar.get_ylabel().startswith("f + ")  # shifted for log levels
    with pytest.raises(ValueError, match="variables, not 2"):
        plot.landscape(oa.problems.get("abs_square"))
    with pytest.raises(ValueError, match="one run"):
        plot.landscape(ROSEN, rosen_runs, generations=[1, 2])


def test_curve_1d_of_the_notebook_examples(tmp_path):
    sq = oa.problems.get("abs_square")
    gd = oa.minimize(sq, method="gd", lr=0.1, budget=40)
    assert_picture(plot.curve_1d(sq, gd, path=tmp_path / "abs_square.png"))
    wavy = oa.problems.get("wavy_bowl")
    runs = {
        "adam": oa.minimize(wavy, method="adam", lr=2.0, budget=15),
        "lbfgs": oa.minimize(wavy, method="lbfgs", line_search="strong_wolfe", budget=44),
    }
    fig = plot.curve_1d(wavy, runs)
    assert "adam: 15 evaluations" in legend_texts(fig)
    assert_picture(plot.curve_1d(wavy, runs, path=tmp_path / "wavy.png"))


def test_ecdf_png(tmp_path, rosen_runs):
    flower = oa.problems.get("flower")
    fl = [oa.minimize(flower, method=m, budget=60) for m in ("nelder_mead", "lbfgs")]
    out = plot.ecdf(
        {"rosenbrock": rosen_runs, "flower": fl},
        f_opt={"rosenbrock": 0.0, "flower": -1.0},
        path=tmp_path / "ecdf.png",
    )
    assert_picture(out)
    fig = plot.ecdf({"rosenbrock": rosen_runs})
    assert fig.axes[0].get_xscale() == "log"
    for line in fig.axes[0].lines:
        y = line.get_ydata()
        assert np.all((y >= 0) & (y <= 1)) and np.all(np.diff(y) >= 0)


def gif_frames(path) -> int:
    im = Image.open(path)
    assert im.format == "GIF"
    assert im.size[0] >= 200 and im.size[1] >= 150
    return im.n_frames


def test_animation_gif_and_html_are_bounded_and_self_contained(tmp_path):
    r = oa.minimize(ROSEN, method="adam", lr=0.05, budget=40)
    gif = plot.animate(ROSEN, r, path=tmp_path / "adam.gif", max_frames=6, resolution=40)
    assert 2 <= gif_frames(gif) <= 6
    html_path = plot.animate(
        ROSEN, swarm_trace(), path=tmp_path / "swarm.html", max_frames=5, resolution=40
    )
    html = html_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://", html), "the page references an external URL"
    assert not re.search(r"<link\b|<script[^>]*\bsrc=", html)
    frames = re.findall(r"data:image/png;base64,", html)
    assert 2 <= len(frames) <= 5
    assert html_path.stat().st_size < 2_000_000


def test_animation_1d_and_errors(tmp_path):
    sq = oa.problems.get("abs_square")
    gd = oa.minimize(sq, method="gd", lr=0.1, budget=40)
    assert 2 <= gif_frames(plot.animate(sq, gd, path=tmp_path / "sq.gif", max_frames=4)) <= 4
    anim = plot.animate(sq, gd, max_frames=3)
    assert isinstance(anim, FuncAnimation)
    anim.save(tmp_path / "direct.gif", writer=PillowWriter(fps=4))
    assert 2 <= gif_frames(tmp_path / "direct.gif") <= 3
    with pytest.raises(ValueError, match=r"\.gif or \.html"):
        plot.animate(sq, gd, path=tmp_path / "sq.mp4")
    sphere = oa.problems.get("sphere", dim=3)
    with pytest.raises(ValueError, match="1-D and 2-D"):
        plot.animate(sphere, oa.minimize(sphere, method="lbfgs", budget=5))
    with pytest.raises(ValueError, match="fps"):
        plot.animate(sq, gd, fps=0)
    assert math.isfinite(gd.fun)


def test_many_labels_highlight_the_best_few_in_distinct_colours():
    """25 methods: the 7 best final medians get 7 different colours and ranked legend
    entries, the other 18 one grey entry; 10 or fewer labels each keep a colour of their own."""
    from matplotlib.colors import to_hex

    finals = {f"m{i:02d}": float(25 - i) for i in range(25)}  # m24 is best
    runs = {k: [plot.Trace.from_values([100.0, v])] for k, v in finals.items()}
    fig = plot.convergence(runs)
    lines = {ln.get_label(): to_hex(ln.get_color()) for ln in fig.axes[0].get_lines()}
    texts = legend_texts(fig)
    best = sorted(finals, key=finals.get)[:7]
    assert texts[:7] == [f"{r + 1}. {k}" for r, k in enumerate(best)]
    assert texts[7] == "18 other labels (grey)" and len(texts) == 8
    coloured = [c for c in lines.values() if c != to_hex("0.65")]
    assert len(coloured) == len(set(coloured)) == 7
    few = plot.convergence({k: runs[k] for k in list(runs)[:10]})
    colours = [to_hex(ln.get_color()) for ln in few.axes[0].get_lines()]
    assert len(set(colours)) == 10 and len(legend_texts(few)) == 10
