"""L-BFGS over torch.optim.LBFGS, with or without the strong-Wolfe line search.

Every closure call (including each line-search probe) is one counted evaluation, so budgets
hold exactly. A run repeats ``optimizer.step(closure)`` (each doing up to ``max_iter`` inner
iterations, as in the usual training loop) until a step makes no progress.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..oracle import Oracle
from ._base import GradientMethod, RunContext
from ._registry import register
from .torch_optim import warm_up_torch_optim

__all__ = ["LBFGS"]


@dataclass
class LBFGSState:
    """Run state: the iterate and the torch optimizer holding the curvature pairs."""

    x: torch.Tensor
    optimizer: torch.optim.LBFGS
    steps: int = 0


@register("lbfgs", family="gradient", needs_grad=True, supports_bounds=False)
@dataclass(frozen=True)
class LBFGS(GradientMethod):
    """Limited-memory BFGS (torch.optim.LBFGS); ``line_search="strong_wolfe"`` is safer.

    Without a line search a step has the fixed length ``lr`` along the quasi-Newton direction,
    which can diverge on non-convex functions (the run then ends with ``non_finite``).
    """

    lr: float = 1.0
    max_iter: int = 20
    max_eval: int | None = None
    tolerance_grad: float = 1e-7
    tolerance_change: float = 1e-9
    history_size: int = 100
    line_search: str | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for k in ("max_iter", "history_size"):
            v = getattr(self, k)
            if not isinstance(v, int) or v <= 0:
                raise ValueError(f"{k} must be a positive int, got {v!r}")
        if self.max_eval is not None and (not isinstance(self.max_eval, int) or self.max_eval <= 0):
            raise ValueError(f"max_eval must be a positive int or None, got {self.max_eval!r}")
        if not (self.tolerance_grad >= 0 and self.tolerance_change >= 0):
            raise ValueError("tolerance_grad and tolerance_change must be >= 0")
        if self.line_search not in (None, "strong_wolfe"):
            raise ValueError(
                f"line_search must be None or 'strong_wolfe', got {self.line_search!r}"
            )

    def check(self, ctx: RunContext, oracle: Oracle) -> None:
        warm_up_torch_optim()

    def init(self, x0: torch.Tensor, oracle: Oracle, ctx: RunContext) -> LBFGSState:
        x = x0.detach().clone().requires_grad_(True)
        opt = torch.optim.LBFGS(
            [x],
            lr=self.lr,
            max_iter=self.max_iter,
            max_eval=self.max_eval,
            tolerance_grad=self.tolerance_grad,
            tolerance_change=self.tolerance_change,
            history_size=self.history_size,
            line_search_fn=self.line_search,
        )
        return LBFGSState(x=x, optimizer=opt)

    def step(self, state: LBFGSState, oracle: Oracle, ctx: RunContext) -> bool:
        x = state.x

        def closure() -> torch.Tensor:
            f, g = oracle.value_and_grad(x)
            x.grad = g.clone()
            return torch.tensor(f, dtype=x.dtype)

        before_evals = oracle.nfev
        before_x = x.detach().clone()
        state.optimizer.step(closure)
        state.steps += 1
        moved = float((x.detach() - before_x).abs().max()) if x.numel() else 0.0
        return oracle.nfev - before_evals <= 1 or moved <= self.tolerance_change
