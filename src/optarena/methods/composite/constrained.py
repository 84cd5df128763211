"""Penalty and AugmentedLagrangian: any method, gradient-based or not, made a constrained one.

Each outer iteration runs the inner method on a merit function (quadratic penalty, or the
Powell-Hestenes-Rockafellar augmented Lagrangian) through a view of the run's Oracle: every
objective and constraint evaluation is still counted once by the Oracle, the whole run shares
one Budget, and the best point is ranked by feasibility first, then by the true objective.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...budget import StopReason
from ...core.oracle import Oracle
from .._base import ExternalMethod, GradientMethod, Method, Outcome, RunContext
from .._registry import register, resolve_method
from ..gradient.lbfgs import BoxState

__all__ = ["AugmentedLagrangian", "Penalty"]


class _InnerDone(BaseException):
    """The inner run of one outer iteration used its share of evaluations."""


class MeritOracle:
    """The Oracle as the inner method sees it: merit values, same counting underneath.

    ``terms(vals)`` maps constraint values (list of (m_i,) tensors) to (merit term, gradient
    weights) so that the merit is f + term and its gradient f' + sum_i w_i @ J_i.
    """

    def __init__(self, oracle: Oracle, merit: Any, cap: int | None) -> None:
        self.main = oracle
        self.merit = merit
        self.cap = cap
        self.start = oracle.nfev
        self.best_x: torch.Tensor | None = None
        self.best_f = math.inf
        self.last_f = math.nan
        self.history = oracle.history

    # the attributes methods read
    @property
    def objective(self) -> Any:
        return self.main.objective

    @property
    def dim(self) -> int:
        return self.main.dim

    @property
    def dtype(self) -> torch.dtype:
        return self.main.dtype

    @property
    def device(self) -> torch.device:
        return self.main.device

    @property
    def nfev(self) -> int:
        return self.main.nfev

    @property
    def ngev(self) -> int:
        return self.main.ngev

    @property
    def best_feasible(self) -> bool:
        return True  # the merit problem itself is unconstrained

    def as_tensor(self, x: Any) -> torch.Tensor:
        return self.main.as_tensor(x)

    def remaining_evals(self) -> int | None:
        left = self.main.remaining_evals()
        if self.cap is None:
            return left
        mine = self.cap - (self.main.nfev - self.start)
        return mine if left is None else min(mine, left)

    def _gate(self, n: int = 1) -> int:
        if self.cap is None:
            return n
        left = self.cap - (self.main.nfev - self.start)
        if left <= 0:
            raise _InnerDone
        return min(n, left)

    def _keep(self, x: torch.Tensor, m: float) -> float:
        m = m if math.isfinite(m) else math.inf
        if m < self.best_f:
            self.best_f, self.best_x = m, x.detach().clone()
        self.last_f = m
        return m

    def value(self, x: Any) -> float:
        self._gate()
        xt = self.as_tensor(x)
        f = self.main.value(xt)
        term, _ = self.merit(self.main.constraint_values(xt), want_grad=False)
        return self._keep(xt, f + term)

    def value_and_grad(
        self, x: Any, *, stop_on_nonfinite: bool = True
    ) -> tuple[float, torch.Tensor]:
        self._gate()
        xt = self.as_tensor(x)
        f, g = self.main.value_and_grad(xt, stop_on_nonfinite=stop_on_nonfinite)
        pairs = self.main.constraint_jacobians(xt)
        term, weights = self.merit([v for v, _ in pairs], want_grad=True)
        g = g.clone()
        for w, (_, jac) in zip(weights, pairs, strict=True):
            if jac.numel():
                g = g + (w.to(jac.dtype) @ jac).to(g.dtype)
        return self._keep(xt, f + term), g

    def values(self, X: Any) -> torch.Tensor:
        Xt = torch.as_tensor(X).detach().to(device=self.device, dtype=self.dtype)
        k = self._gate(Xt.shape[0])
        f = self.main.values(Xt[:k])
        cvals = self.main.constraint_batch_values(Xt[:k])
        term = self.merit.batch(cvals)
        m = f + term.to(f.dtype)
        m = torch.where(torch.isfinite(m), m, torch.full_like(m, math.inf))
        i = int(torch.argmin(m))
        self._keep(Xt[i], float(m[i]))
        self.last_f = float(m[-1])
        if k < Xt.shape[0]:
            raise _InnerDone
        return m


@dataclass
class _Quadratic:
    """Quadratic penalty: rho * (sum max(0, -g)^2 + sum h^2)."""

    kinds: tuple[str, ...]
    rho: float

    def __call__(self, vals: list[torch.Tensor], want_grad: bool) -> tuple[float, list[Any]]:
        term = 0.0
        weights = []
        for kind, v in zip(self.kinds, vals, strict=True):
            r = torch.clamp(-v, min=0) if kind == "ineq" else v
            term += float((r**2).sum())
            weights.append(-2 * self.rho * r if kind == "ineq" else 2 * self.rho * r)
        return self.rho * term, weights

    def batch(self, vals: list[torch.Tensor]) -> torch.Tensor:
        n = vals[0].shape[0]
        total = torch.zeros(n, dtype=torch.float64)
        for kind, V in zip(self.kinds, vals, strict=True):
            r = torch.clamp(-V, min=0) if kind == "ineq" else V
            total = total + (r.double() ** 2).sum(dim=1)
        return self.rho * total


@dataclass
class _PHR:
    """Powell-Hestenes-Rockafellar augmented Lagrangian terms for g >= 0 and h = 0."""

    kinds: tuple[str, ...]
    rho: float
    lam: list[torch.Tensor]
    prev_viol: float = math.inf

    def __call__(self, vals: list[torch.Tensor], want_grad: bool) -> tuple[float, list[Any]]:
        term = 0.0
        weights = []
        for kind, v, lam in zip(self.kinds, vals, self.lam, strict=True):
            v = v.double()
            if kind == "ineq":
                s = torch.clamp(lam - self.rho * v, min=0)
                term += float((s**2 - lam**2).sum()) / (2 * self.rho)
                weights.append(-s)
            else:
                term += float((lam * v + 0.5 * self.rho * v**2).sum())
                weights.append(lam + self.rho * v)
        return term, weights

    def batch(self, vals: list[torch.Tensor]) -> torch.Tensor:
        n = vals[0].shape[0]
        total = torch.zeros(n, dtype=torch.float64)
        for kind, V, lam in zip(self.kinds, vals, self.lam, strict=True):
            V = V.double()
            if kind == "ineq":
                s = torch.clamp(lam - self.rho * V, min=0)
                total = total + ((s**2 - lam**2).sum(dim=1)) / (2 * self.rho)
            else:
                total = total + (lam * V + 0.5 * self.rho * V**2).sum(dim=1)
        return total


@dataclass(frozen=True)
class _Wrapper(ExternalMethod):
    """Shared outer loop: run the inner method on a merit function, update it, repeat."""

    inner: str | Method = "lbfgsb"
    inner_options: Mapping[str, Any] = field(default_factory=dict)
    rho0: float = 1.0
    factor: float = 2.0
    tol: float | None = None
    inner_steps: int | None = None
    inner_evals: int | None = None
    keep_inner_state: bool = True
    box_shrink: float | None = 0.25
    max_outer: int = 200

    def __post_init__(self) -> None:
        if not (self.rho0 > 0 and math.isfinite(self.rho0)):
            raise ValueError(f"rho0 must be positive, got {self.rho0!r}")
        if not self.factor >= 1:
            raise ValueError(f"factor must be >= 1, got {self.factor!r}")
        if self.box_shrink is not None and not 0 < self.box_shrink <= 1:
            raise ValueError(f"box_shrink must be in (0, 1] or None, got {self.box_shrink!r}")
        if self.tol is not None and not self.tol >= 0:
            raise ValueError(f"tol must be >= 0, got {self.tol!r}")
        for k in ("inner_steps", "inner_evals", "max_outer"):
            v = getattr(self, k)
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise ValueError(f"{k} must be a positive int or None, got {v!r}")
        inner = self.inner_method()
        if isinstance(inner, _Wrapper):
            raise ValueError("a constraint wrapper cannot wrap another one")
        # This instance is as stochastic, global and gradient-hungry as its inner method (so
        # benchmark runs use every seed and the box, and minimize checks the gradient).
        own = type(self).info
        object.__setattr__(
            self,
            "info",
            dataclasses.replace(
                own,
                needs_grad=inner.info.needs_grad,
                stochastic=inner.info.stochastic,
                is_global=inner.info.is_global,
                requires_bounds=inner.info.requires_bounds,
            ),
        )

    def inner_method(self) -> Method:
        """The inner method instance (resolved from its name and inner_options)."""
        return resolve_method(self.inner, dict(self.inner_options))

    def check(self, ctx: RunContext, oracle: Oracle) -> None:
        inner = self.inner_method()
        info = inner.info
        if info.needs_grad and not oracle.objective.has_gradient:
            raise ValueError(
                f"the inner method {info.name!r} needs a gradient, but the objective has none; "
                "choose a gradient-free inner method (e.g. 'cmaes', 'pso', 'nelder_mead')"
            )
        if ctx.bounded and not info.supports_bounds:
            raise ValueError(f"the inner method {info.name!r} does not support bounds")
        if info.requires_bounds and not ctx.bounded:
            raise ValueError(f"the inner method {info.name!r} needs bounds=(lower, upper)")
        inner.check(ctx, oracle)

    def _tol(self, oracle: Oracle) -> float:
        if self.tol is not None:
            return self.tol
        items = oracle.constraints.items
        return min((c.tol for c in items), default=1e-8)

    def _inner_cap(self, inner: Method, oracle: Oracle) -> int | None:
        if self.inner_evals is not None:
            return self.inner_evals
        if isinstance(inner, GradientMethod) or inner.info.family == "external":
            return None
        total = oracle.budget.evals
        return max(100, total // 10) if total is not None else 1000

    def _run_inner(
        self,
        inner: Method,
        view: MeritOracle,
        ctx: RunContext,
        x: torch.Tensor,
        outer: int,
        kept: dict[str, Any],
    ) -> torch.Tensor:
        lower, upper = ctx.lower, ctx.upper
        if (
            self.box_shrink is not None
            and inner.info.family == "population"
            and lower is not None
            and upper is not None
            and outer > 1
        ):
            # Population methods search their whole box each time; from the second outer
            # iteration on, give them a box around the current point that halves each time
            # (never larger than the user's box), so later iterations refine instead of
            # rediscovering the basin.
            half = (upper - lower) / 2 * self.box_shrink ** (outer - 1)
            lower = torch.maximum(lower, x - half)
            upper = torch.minimum(upper, x + half)
        sub = RunContext(
            x0=x.detach().clone(),
            lower=lower,
            upper=upper,
            constraints=(),
            seed=(ctx.seed * 1_000_003 + outer) % (2**63),
        )
        try:
            if isinstance(inner, GradientMethod) and self.inner_steps is not None:
                # A fixed number of steps per outer iteration; with keep_inner_state the same
                # optimizer state (e.g. L-BFGS curvature pairs) carries on as the merit changes.
                state = kept.get("state") if self.keep_inner_state else None
                if state is None:
                    state = inner.init(sub.x0.clone(), view, sub)  # type: ignore[arg-type]
                    kept["state"] = state
                elif isinstance(state, BoxState):
                    # its value and gradient belong to the previous merit function
                    state.f, state.g = view.value_and_grad(state.x)
                for _ in range(self.inner_steps):
                    if inner.step(state, view, sub):  # type: ignore[arg-type]
                        break
                x_now = getattr(state, "x", None)
                if x_now is not None:
                    return x_now.detach().clone()
            else:
                inner.run(view, sub)  # type: ignore[arg-type]
        except _InnerDone:
            pass
        return x if view.best_x is None else view.best_x

    def _measure(self, oracle: Oracle, x: torch.Tensor) -> tuple[list[torch.Tensor], float]:
        vals = oracle.constraint_values(x)
        raw, _ = oracle.constraints.excess(vals)
        return vals, raw

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        inner = self.inner_method()
        kinds = tuple(c.kind for c in oracle.constraints.items)
        tol = self._tol(oracle)
        x = ctx.x0.detach().clone()
        merit = self._initial_merit(kinds, oracle, x) if kinds else _Quadratic(kinds, 0.0)
        prev_f = math.inf
        kept: dict[str, Any] = {}
        for outer in range(1, self.max_outer + 1):
            view = MeritOracle(oracle, merit, self._inner_cap(inner, oracle))
            x = self._run_inner(inner, view, ctx, x, outer, kept)
            vals, viol = self._measure(oracle, x)
            f = float(oracle.value(x)) if view.best_x is None else self._f_at(oracle, x)
            ctx.notify(oracle, outer, x, f)
            if not kinds:
                return Outcome(StopReason.CONVERGED, "no constraints: one inner run")
            if viol <= tol and self._settled(f, prev_f, outer):
                return Outcome(
                    StopReason.CONVERGED,
                    f"violation {viol:.3g} <= {tol:.3g} after {outer} outer iterations",
                    {"outer_iterations": outer},
                )
            merit = self._update(merit, vals, viol)
            prev_f = f
        return Outcome(
            StopReason.METHOD_FAILED,
            f"no feasible point after {self.max_outer} outer iterations",
            {"outer_iterations": self.max_outer},
        )

    def _f_at(self, oracle: Oracle, x: torch.Tensor) -> float:
        """The objective at the inner run's best point, taken from the History (no new call)."""
        if oracle.history.has_x:
            xs = oracle.history.x
            hit = np.flatnonzero((xs == x.detach().cpu().double().numpy()).all(axis=1))
            if hit.size:
                return float(oracle.history.f[hit[-1]])
        return float(oracle.value(x))

    # hooks
    def _initial_merit(self, kinds: tuple[str, ...], oracle: Oracle, x0: torch.Tensor) -> Any:
        raise NotImplementedError

    def _update(self, merit: Any, vals: list[torch.Tensor], viol: float) -> Any:
        raise NotImplementedError

    def _settled(self, f: float, prev_f: float, outer: int) -> bool:
        return True


@register(
    "penalty",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
)
@dataclass(frozen=True)
class Penalty(_Wrapper):
    """Quadratic penalty f + rho * (sum max(0, -g)^2 + sum h^2) around any inner method.

    rho starts at ``rho0`` and is multiplied by ``factor`` after every outer iteration until
    the inner result's violation is at most ``tol`` (default: the constraints' tolerance) and
    the objective changed by at most ``ftol`` (relative) since the previous outer iteration;
    ``stop_on_feasible=True`` stops at the first feasible inner result, as the tutorial did.
    ``inner_steps`` limits each inner run of a gradient method to that many steps (the
    tutorial's one L-BFGS step per rho); ``inner_evals`` caps each inner run's evaluations
    (default for population methods: a tenth of the budget). Population inner methods search
    a box around the current point whose half-width is multiplied by ``box_shrink`` at each
    outer iteration (0.25 measured best for pso and cmaes on flower_constrained: 0.5 left
    pso 1e-4 from f* after 5,000 evaluations, 0.25 and 0.2 about 1e-7).
    """

    stop_on_feasible: bool = False
    ftol: float = 1e-10

    def _initial_merit(
        self, kinds: tuple[str, ...], oracle: Oracle, x0: torch.Tensor
    ) -> _Quadratic:
        return _Quadratic(kinds, self.rho0)

    def _settled(self, f: float, prev_f: float, outer: int) -> bool:
        # The tutorial stopped as soon as the penalty vanished (stop_on_feasible=True); by
        # default the objective must also have stopped moving, so a feasible but unfinished
        # inner run does not end the search.
        return self.stop_on_feasible or abs(f - prev_f) <= self.ftol * (1 + abs(f))

    def _update(self, merit: _Quadratic, vals: list[torch.Tensor], viol: float) -> _Quadratic:
        return _Quadratic(merit.kinds, merit.rho * self.factor)


@register(
    "augmented_lagrangian",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
)
@dataclass(frozen=True)
class AugmentedLagrangian(_Wrapper):
    """Augmented Lagrangian (PHR) around any inner method, with multiplier updates.

    Multipliers follow lambda <- max(0, lambda - rho g), mu <- mu + rho h after each inner
    run; rho grows by ``factor`` when the violation did not shrink below ``shrink`` times the
    previous one (Nocedal & Wright, Numerical Optimization, 2nd ed., Framework 17.3).
    """

    factor: float = 10.0
    shrink: float = 0.25
    ftol: float = 1e-10

    def _initial_merit(self, kinds: tuple[str, ...], oracle: Oracle, x0: torch.Tensor) -> _PHR:
        sizes = [v.numel() for v in oracle.constraint_values(x0)]
        lam = [torch.zeros(m, dtype=torch.float64) for m in sizes]
        return _PHR(kinds, self.rho0, lam)

    def _update(self, merit: _PHR, vals: list[torch.Tensor], viol: float) -> _PHR:
        lam = []
        for kind, v, l0 in zip(merit.kinds, vals, merit.lam, strict=True):
            v = v.double()
            lam.append(
                torch.clamp(l0 - merit.rho * v, min=0) if kind == "ineq" else l0 + merit.rho * v
            )
        rho = merit.rho * self.factor if viol > self.shrink * merit.prev_viol else merit.rho
        return _PHR(merit.kinds, rho, lam, prev_viol=viol)

    def _settled(self, f: float, prev_f: float, outer: int) -> bool:
        return abs(f - prev_f) <= self.ftol * (1 + abs(f))
