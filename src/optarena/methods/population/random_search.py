"""Pure random search: points drawn uniformly in the box, a batch per generation.

The baseline of every benchmark: a method that cannot beat it on a problem has learned nothing
about that problem. Draws come from the run's seeded torch generator, so runs repeat exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from ...core.evaluator import Evaluator
from .._base import PopulationMethod, RunContext
from .._params import param
from .._registry import register
from ._box import require_finite_box

__all__ = ["RandomSearch", "RandomSearchState"]


@dataclass
class RandomSearchState:
    """Run state: how many batches were drawn (the generator itself lives in the run)."""

    generation: int = 0


@register(
    "random_search",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    requires_bounds=True,
)
@dataclass(frozen=True)
class RandomSearch(PopulationMethod):
    """Uniform random sampling in the box, evaluated in batches (the benchmark baseline).

    Args:
        batch_size: points drawn and evaluated per generation; the results do not depend on
            it (the draws form one stream), only how often the callback runs.
        include_x0: evaluate the start point first, so the result is never worse than it.
    """

    rank_based: ClassVar[bool] = True  # the points never depend on the values

    batch_size: int = param(100, ge=1)
    include_x0: bool = param(True)

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        require_finite_box(ctx, self.info.name)

    def init(self, x0: torch.Tensor, ctx: RunContext) -> RandomSearchState:
        require_finite_box(ctx, self.info.name)
        return RandomSearchState()

    def ask(self, state: RandomSearchState, ctx: RunContext) -> torch.Tensor:
        lo, hi = ctx.lower, ctx.upper
        if lo is None or hi is None:  # init() checked the box; this guards direct use
            lo, hi = require_finite_box(ctx, self.info.name)
        x0 = ctx.x0
        first = self.include_x0 and state.generation == 0
        n = self.batch_size - 1 if first else self.batch_size
        u = torch.rand((n, x0.numel()), generator=ctx.generator, dtype=x0.dtype).to(x0.device)
        X = torch.clamp(lo + u * (hi - lo), lo, hi)  # the clamp absorbs rounding at hi
        return torch.cat([x0.unsqueeze(0), X]) if first else X

    def tell(
        self, state: RandomSearchState, X: torch.Tensor, f: torch.Tensor, ctx: RunContext
    ) -> RandomSearchState:
        return RandomSearchState(generation=state.generation + 1)
