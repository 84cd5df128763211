"""Plain gradient descent, x <- x - lr * g, written exactly as the textbook (and tutorials) do.

torch.optim.SGD fuses the update into one ``add_(g, alpha=-lr)`` whose float32 rounding
differs; this method rounds ``lr * g`` first, so runs match hand-written descent loops bit for
bit. Bounds are kept by projecting after every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...core.oracle import Oracle
from .._base import GradientMethod, RunContext
from .._registry import register

__all__ = ["GradientDescent"]


@dataclass
class GDState:
    """Run state: the iterate."""

    x: torch.Tensor
    steps: int = 0


@register("gd", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class GradientDescent(GradientMethod):
    """Gradient descent with a fixed step: x <- x - lr * grad (projected onto the box)."""

    lr: float = 1e-3
    gtol: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not self.gtol >= 0:
            raise ValueError(f"gtol must be >= 0, got {self.gtol!r}")

    def init(self, x0: torch.Tensor, oracle: Oracle, ctx: RunContext) -> GDState:
        return GDState(x=x0.detach().clone())

    def step(self, state: GDState, oracle: Oracle, ctx: RunContext) -> bool:
        _, g = oracle.value_and_grad(state.x)
        if float(g.abs().max()) <= self.gtol:
            return True
        state.x.sub_(self.lr * g)
        if ctx.bounded:
            state.x = ctx.project(state.x)
        state.steps += 1
        return False
