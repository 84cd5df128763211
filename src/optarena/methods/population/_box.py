"""The search box of population methods that sample it uniformly (PSO, random search)."""

from __future__ import annotations

import torch

from .._base import RunContext

__all__ = ["require_finite_box"]


def require_finite_box(ctx: RunContext, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's box as ``(lower, upper)``; ValueError unless both sides and the width
    ``upper - lower`` are finite (a width that overflows makes uniform samples inf or NaN)."""
    if ctx.lower is None or ctx.upper is None:
        raise ValueError(f"method {name!r} searches a box and needs bounds=(lower, upper)")
    if not bool(torch.isfinite(ctx.lower).all() and torch.isfinite(ctx.upper).all()):
        raise ValueError(
            f"method {name!r} samples the box uniformly and needs finite bounds on every "
            "coordinate; replace -inf/inf by the range you want searched"
        )
    width = ctx.upper - ctx.lower
    bad = (~torch.isfinite(width)).nonzero()
    if bad.numel():
        i = int(bad[0, 0]) if bad.dim() > 1 else int(bad[0])
        raise ValueError(
            f"method {name!r} samples the box uniformly, but its width upper - lower overflows "
            f"to inf at index {i} ([{float(ctx.lower.reshape(-1)[i])}, "
            f"{float(ctx.upper.reshape(-1)[i])}]), so samples would be inf or NaN; give a "
            "finite box whose width is representable (below 1.7e308), the range you want "
            "searched"
        )
    return ctx.lower, ctx.upper
