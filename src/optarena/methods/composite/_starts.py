"""Start points for composites' sub-runs: a scrambled Sobol sequence or uniform draws in a finite
box, or a Gaussian around x0 (multistart's starts, a chain's fresh global restarts)."""

from __future__ import annotations

import math

import torch
from scipy.stats import qmc

from .._base import RunContext

__all__ = ["draw_starts"]


def draw_starts(
    ctx: RunContext, n: int, sampling: str | None = None, scale: float | None = None
) -> torch.Tensor:
    """``n`` start points from the run's generator, shape ``(n, d)``.

    ``"sobol"`` (scrambled, seeded from ``ctx.rng``) and ``"uniform"`` fill a finite box;
    ``"gaussian"`` draws around x0 with standard deviation ``scale`` (default
    ``max(1, max |x0|)``), clipped into the box when there is one. ``None`` is Sobol in a
    finite box, else Gaussian.
    """
    x0 = ctx.x0
    d = x0.numel()
    finite = (
        ctx.lower is not None
        and ctx.upper is not None
        and bool(torch.isfinite(ctx.lower).all() and torch.isfinite(ctx.upper).all())
    )
    if sampling is None:
        sampling = "sobol" if finite else "gaussian"
    if sampling in ("sobol", "uniform") and not finite:
        raise ValueError(f"sampling={sampling!r} needs finite bounds on every coordinate")
    if n <= 0:
        return x0.new_empty((0, d))
    if sampling == "sobol":
        m = max(0, math.ceil(math.log2(n)))
        u = qmc.Sobol(d, scramble=True, rng=ctx.rng).random_base2(m)[:n]
    elif sampling == "uniform":
        u = ctx.rng.random((n, d))
    else:
        sigma = scale if scale is not None else max(1.0, float(x0.abs().max()))
        z = torch.from_numpy(ctx.rng.standard_normal((n, d)))
        return ctx.project(x0.unsqueeze(0) + sigma * z.to(dtype=x0.dtype, device=x0.device))
    assert ctx.lower is not None and ctx.upper is not None
    ut = torch.from_numpy(u).to(dtype=x0.dtype, device=x0.device)
    width = ctx.upper - ctx.lower
    if not bool(torch.isfinite(width).all()):  # bounds near the float range: no overflow
        return ctx.project(ctx.lower * (1 - ut) + ctx.upper * ut)
    return ctx.project(ctx.lower + ut * width)
