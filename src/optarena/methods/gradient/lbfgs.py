"""L-BFGS: torch.optim.LBFGS without bounds, a projected L-BFGS inside a box.

Without bounds, a run repeats ``optimizer.step(closure)`` of torch.optim.LBFGS (each doing up
to ``max_iter`` inner iterations, as in the usual training loop) until a step makes no
progress, so it follows torch's trajectory exactly. With bounds, torch has no answer; the run
uses the projected quasi-Newton scheme of Kim, Sra & Dhillon (2010): the L-BFGS direction on
the free variables (those not held at a bound by the gradient) and a backtracking Armijo search
along the projection arc P(x + t d), so every evaluated point lies inside the box. Every
closure call, line-search probes included, is one counted evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ...core.oracle import Oracle
from .._base import GradientMethod, RunContext
from .._registry import register
from .torch_optim import warm_up_torch_optim

__all__ = ["LBFGS"]


@dataclass
class LBFGSState:
    """Run state: the iterate and the torch optimizer holding the curvature pairs."""

    x: torch.Tensor
    optimizer: torch.optim.LBFGS
    steps: int = 0


@dataclass
class BoxState:
    """Run state of the projected L-BFGS: iterate, value, gradient and curvature pairs."""

    x: torch.Tensor
    f: float
    g: torch.Tensor
    s: list[torch.Tensor]
    y: list[torch.Tensor]
    steps: int = 0


@register("lbfgs", family="gradient", needs_grad=True, supports_bounds=True)
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

    def init(self, x0: torch.Tensor, oracle: Oracle, ctx: RunContext) -> LBFGSState | BoxState:
        if ctx.bounded:
            x = ctx.project(x0.detach().clone())
            f, g = oracle.value_and_grad(x)
            return BoxState(x=x, f=f, g=g, s=[], y=[])
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

    def step(self, state: LBFGSState | BoxState, oracle: Oracle, ctx: RunContext) -> bool:
        if isinstance(state, BoxState):
            return self._box_step(state, oracle, ctx)
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

    # -- projected L-BFGS inside a box ---------------------------------------------------------
    def _free(self, state: BoxState, ctx: RunContext) -> torch.Tensor:
        """Variables not held at a bound by the gradient (the others stay fixed this step)."""
        assert ctx.lower is not None and ctx.upper is not None
        at_lo = (state.x <= ctx.lower) & (state.g > 0)
        at_hi = (state.x >= ctx.upper) & (state.g < 0)
        return ~(at_lo | at_hi)

    def _direction(self, state: BoxState, free: torch.Tensor) -> torch.Tensor:
        """Two-loop recursion on the free variables (Nocedal & Wright, Algorithm 7.4)."""
        m = free.to(state.g.dtype)
        q = state.g * m
        alphas = []
        for s, y in zip(reversed(state.s), reversed(state.y), strict=True):
            s, y = s * m, y * m
            sy = float(s @ y)
            if sy <= 1e-300:
                alphas.append(None)
                continue
            a = float(s @ q) / sy
            alphas.append((a, s, y, sy))
            q = q - a * y
        if state.s:
            s, y = state.s[-1] * m, state.y[-1] * m
            yy = float(y @ y)
            if yy > 0 and float(s @ y) > 0:
                q = q * (float(s @ y) / yy)
        for item in reversed(alphas):
            if item is None:
                continue
            a, s, y, sy = item
            b = float(y @ q) / sy
            q = q + (a - b) * s
        return -q * m

    def _box_step(self, state: BoxState, oracle: Oracle, ctx: RunContext) -> bool:
        pg = ctx.project(state.x - state.g) - state.x  # projected gradient step
        if float(pg.abs().max()) <= self.tolerance_grad:
            return True
        free = self._free(state, ctx)
        d = self._direction(state, free)
        gd = float(state.g @ d)
        if not gd < 0:  # not a descent direction: forget the curvature pairs
            state.s.clear()
            state.y.clear()
            d = -state.g * free.to(state.g.dtype)
            gd = float(state.g @ d)
        t = self.lr
        if not state.s:  # first step: scale like torch's LBFGS does
            t = min(1.0, 1.0 / float(state.g.abs().sum())) * self.lr
        c1 = 1e-4
        while True:
            x_new = ctx.project(state.x + t * d)
            f_new, g_new = oracle.value_and_grad(x_new)
            if f_new <= state.f + c1 * float(state.g @ (x_new - state.x)):
                break
            t *= 0.5
            if float((x_new - state.x).abs().max()) <= self.tolerance_change:
                return True
        s_k, y_k = x_new - state.x, g_new - state.g
        if float(s_k @ y_k) > 1e-10 * float(y_k @ y_k):
            state.s.append(s_k)
            state.y.append(y_k)
            if len(state.s) > self.history_size:
                state.s.pop(0)
                state.y.pop(0)
        done = abs(f_new - state.f) <= self.tolerance_change * max(1.0, abs(state.f))
        state.x, state.f, state.g = x_new, f_new, g_new
        state.steps += 1
        return done or float(s_k.abs().max()) <= self.tolerance_change
