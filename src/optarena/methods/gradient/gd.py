"""Plain gradient descent, x <- x - lr * g, written exactly as the textbook (and tutorials) do.

torch.optim.SGD fuses the update into one ``add_(g, alpha=-lr)`` whose float32 rounding
differs; this method rounds ``lr * g`` first, so runs match hand-written descent loops bit for
bit. Bounds are kept by projecting after every step. The run state is the iterate alone, so
runs can be checkpointed and resumed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...core.evaluator import Evaluator
from .._base import GradientMethod, RunContext
from .._params import param
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

    checkpointable: ClassVar[bool] = True

    lr: float = param(1e-3, "step size", gt=0)
    gtol: float = param(0.0, "stop when the largest gradient entry is at most this", ge=0)

    def init(self, x0: torch.Tensor, oracle: Evaluator, ctx: RunContext) -> GDState:
        return GDState(x=x0.detach().clone())

    def step(self, state: GDState, oracle: Evaluator, ctx: RunContext) -> bool:
        _, g = oracle.value_and_grad(state.x)
        if float(g.abs().max()) <= self.gtol:
            return True
        state.x.sub_(self.lr * g)
        if ctx.bounded:
            state.x = ctx.project(state.x)
        state.steps += 1
        return False
