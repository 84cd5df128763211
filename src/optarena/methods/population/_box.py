"""The search box of population methods that sample it uniformly (PSO, random search)."""

from __future__ import annotations

import torch

from .._base import RunContext

__all__ = ["require_finite_box"]


def require_finite_box(ctx: RunContext, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's box as ``(lower, upper)``; ValueError unless both sides are finite."""
    if ctx.lower is None or ctx.upper is None:
        raise ValueError(f"method {name!r} searches a box and needs bounds=(lower, upper)")
    if not bool(torch.isfinite(ctx.lower).all() and torch.isfinite(ctx.upper).all()):
        raise ValueError(
            f"method {name!r} samples the box uniformly and needs finite bounds on every "
            "coordinate; replace -inf/inf by the range you want searched"
        )
    return ctx.lower, ctx.upper
