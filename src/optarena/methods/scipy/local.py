"""scipy.optimize.minimize methods, fed with exact autograd gradients.

``slsqp``, ``lbfgsb``, ``bfgs`` and ``trust_constr`` always receive the objective's own
gradient (autograd, or finite differences only when the objective was declared with
``gradient="fd"``, each probe counted): scipy's internal finite differences never stand in for
it silently. scipy's own iteration limits are lifted so that the Budget alone limits the run;
every call scipy makes goes through the Oracle and is counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.optimize as so
import torch

from ...budget import StopReason
from ...core.errors import StopRun
from ...core.oracle import Oracle
from .._base import ExternalMethod, Outcome, RunContext
from .._params import param
from .._registry import register
from ._local_search import NO_LIMIT

__all__ = ["BFGS", "COBYLA", "LBFGSB", "SLSQP", "NelderMead", "Powell", "TrustConstr"]


class _ScipyConstraints:
    """Constraint values and exact Jacobians for scipy, counted by the Oracle, memoized per x."""

    def __init__(self, oracle: Oracle, point: Any) -> None:
        self.oracle = oracle
        self.point = point
        self._jac_x: np.ndarray | None = None
        self._jacs: list[np.ndarray] = []

    def fun(self, i: int, sign: float = 1.0) -> Any:
        def f(xk: np.ndarray) -> np.ndarray:
            vals = self.oracle.constraint_values(self.point(xk))
            return sign * vals[i].detach().cpu().double().numpy()

        return f

    def jac(self, i: int, sign: float = 1.0) -> Any:
        def j(xk: np.ndarray) -> np.ndarray:
            xk = np.asarray(xk, dtype=np.float64)
            if self._jac_x is None or not np.array_equal(self._jac_x, xk):
                pairs = self.oracle.constraint_jacobians(self.point(xk))
                self._jacs = [jac.detach().cpu().double().numpy() for _, jac in pairs]
                self._jac_x = xk.copy()
            return sign * self._jacs[i]

        return j


@dataclass(frozen=True)
class _ScipyMethod(ExternalMethod):
    """Shared machinery: wrap the Oracle as scipy's fun/jac and run scipy.optimize.minimize."""

    _scipy_name: ClassVar[str] = ""
    _uses_grad: ClassVar[bool] = False
    stall: int | None = param(
        200, "stop after this many evaluations without a better value (None: never)", gt=0
    )

    def _options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _extra(self, oracle: Oracle, ctx: RunContext) -> dict[str, Any]:
        return {}

    def _constraints(self, cons: _ScipyConstraints) -> list[Any]:
        """scipy's constraint objects for this method (dicts with exact Jacobians)."""
        out: list[Any] = []
        for i, c in enumerate(cons.oracle.constraints.items):
            out.append({"type": c.kind, "fun": cons.fun(i), "jac": cons.jac(i)})
        return out

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        project = ctx.project if ctx.bounded and self.info.supports_bounds else (lambda t: t)
        iteration = 0
        mark = {"best": math.inf, "at": 0}

        def watch() -> None:
            # scipy's own tests can go on forever at a solution (SLSQP with a tight ftol on
            # some equality-constrained problems); stop once the best value has not moved for
            # `stall` evaluations.
            best = oracle.best_f
            if best < mark["best"] - 1e-15 * max(1.0, abs(best)) or not oracle.best_feasible:
                mark["best"], mark["at"] = best, oracle.nfev
            elif self.stall is not None and oracle.nfev - mark["at"] >= self.stall:
                raise StopRun(
                    StopReason.CONVERGED, f"no improvement in the last {self.stall} evaluations"
                )

        def point(xk: np.ndarray) -> torch.Tensor:
            return project(oracle.as_tensor(np.asarray(xk, dtype=np.float64)))

        def fun(xk: np.ndarray) -> float:
            f = oracle.value(point(xk))
            watch()
            return f

        def fun_and_grad(xk: np.ndarray) -> tuple[float, np.ndarray]:
            f, g = oracle.value_and_grad(point(xk))
            watch()
            return f, g.detach().cpu().double().numpy()

        def callback(xk: Any, *args: Any) -> None:
            nonlocal iteration
            iteration += 1
            x = xk.x if isinstance(xk, so.OptimizeResult) else xk
            ctx.notify(oracle, iteration, torch.as_tensor(np.asarray(x)), None)

        kwargs: dict[str, Any] = {"method": self._scipy_name, "options": self._options()}
        kwargs.update(self._extra(oracle, ctx))
        if ctx.constraints:
            kwargs["constraints"] = self._constraints(_ScipyConstraints(oracle, point))
        if self._uses_grad:
            kwargs["jac"] = True
        if ctx.bounded and self.info.supports_bounds:
            assert ctx.lower is not None and ctx.upper is not None
            kwargs["bounds"] = so.Bounds(
                ctx.lower.detach().cpu().double().numpy(),
                ctx.upper.detach().cpu().double().numpy(),
            )
        if ctx.callback is not None:
            kwargs["callback"] = callback
        x0 = ctx.x0.detach().cpu().double().numpy()
        res = so.minimize(fun_and_grad if self._uses_grad else fun, x0, **kwargs)
        message = str(res.message)
        if res.success:
            return Outcome(StopReason.CONVERGED, message, {"scipy_status": int(res.status)})
        return Outcome(StopReason.METHOD_FAILED, message, {"scipy_status": int(res.status)})


@register(
    "slsqp",
    family="external",
    needs_grad=True,
    supports_bounds=True,
    supports_constraints=True,
    roles={"local": 2, "constrained": 1},
)
@dataclass(frozen=True)
class SLSQP(_ScipyMethod):
    """Sequential least squares programming (scipy), with the exact gradient."""

    _scipy_name: ClassVar[str] = "SLSQP"
    _uses_grad: ClassVar[bool] = True
    ftol: float = param(1e-12, "precision goal for the value in the stopping test", gt=0)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "ftol": self.ftol}


@register(
    "lbfgsb",
    family="external",
    needs_grad=True,
    supports_bounds=True,
    quasi_newton="limited",
    roles={"local": 3, "merit": 1},
)
@dataclass(frozen=True)
class LBFGSB(_ScipyMethod):
    """L-BFGS-B (scipy): limited-memory BFGS with native box bounds, exact gradient."""

    _scipy_name: ClassVar[str] = "L-BFGS-B"
    _uses_grad: ClassVar[bool] = True
    maxcor: int = param(10, "correction pairs kept (the memory of the Hessian estimate)", gt=0)
    ftol: float = param(
        2.220446049250313e-09, "stop when the relative reduction of f falls below this", gt=0
    )
    gtol: float = param(1e-5, "stop when the largest projected gradient entry is below this", gt=0)
    maxls: int = param(20, "most line-search steps per iteration", gt=0)

    def _options(self) -> dict[str, Any]:
        return {
            "maxiter": NO_LIMIT,
            "maxfun": NO_LIMIT,
            "maxcor": self.maxcor,
            "ftol": self.ftol,
            "gtol": self.gtol,
            "maxls": self.maxls,
        }


@register(
    "bfgs",
    family="external",
    needs_grad=True,
    supports_bounds=False,
    batched_lanes=True,
    quasi_newton="dense",
    roles={"local": 1},
)
@dataclass(frozen=True)
class BFGS(_ScipyMethod):
    """BFGS quasi-Newton (scipy) with the exact gradient and a Wolfe line search."""

    _scipy_name: ClassVar[str] = "BFGS"
    _uses_grad: ClassVar[bool] = True
    gtol: float = param(1e-5, "stop when the gradient norm is below this", gt=0)
    c1: float = param(1e-4, "Armijo (sufficient decrease) constant of the line search", gt=0, lt=1)
    c2: float = param(0.9, "curvature constant of the line search", gt=0, lt=1)

    def validate(self) -> None:
        if not self.c1 < self.c2:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={self.c1}, c2={self.c2}")

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "gtol": self.gtol, "c1": self.c1, "c2": self.c2}


@register(
    "trust_constr",
    family="external",
    needs_grad=True,
    supports_bounds=True,
    supports_constraints=True,
    roles={"constrained": 2},
)
@dataclass(frozen=True)
class TrustConstr(_ScipyMethod):
    """Trust-region interior point / SQP (scipy trust-constr), exact gradient, BFGS Hessian."""

    _scipy_name: ClassVar[str] = "trust-constr"
    _uses_grad: ClassVar[bool] = True
    gtol: float = param(1e-8, "stop when the Lagrangian gradient norm is below this", gt=0)
    xtol: float = param(1e-8, "stop when the trust radius is below this", gt=0)
    barrier_tol: float = param(1e-8, "barrier parameter at which the interior point ends", gt=0)
    initial_tr_radius: float = param(1.0, "initial trust-region radius", gt=0)
    hessian_update: str = param(
        "bfgs", "quasi-Newton update of the Hessian estimate", choices=("bfgs", "sr1")
    )

    def _options(self) -> dict[str, Any]:
        return {
            "maxiter": NO_LIMIT,
            "gtol": self.gtol,
            "xtol": self.xtol,
            "barrier_tol": self.barrier_tol,
            "initial_tr_radius": self.initial_tr_radius,
        }

    def _extra(self, oracle: Oracle, ctx: RunContext) -> dict[str, Any]:
        return {"hess": so.BFGS() if self.hessian_update == "bfgs" else so.SR1()}

    def _constraints(self, cons: _ScipyConstraints) -> list[Any]:
        out: list[Any] = []
        for i, c in enumerate(cons.oracle.constraints.items):
            upper = 0.0 if c.kind == "eq" else np.inf
            out.append(
                so.NonlinearConstraint(cons.fun(i), 0.0, upper, jac=cons.jac(i), hess=so.BFGS())
            )
        return out


@register(
    "nelder_mead", family="external", needs_grad=False, supports_bounds=True, roles={"local": 6}
)
@dataclass(frozen=True)
class NelderMead(_ScipyMethod):
    """Nelder-Mead simplex (scipy): gradient-free local search."""

    _scipy_name: ClassVar[str] = "Nelder-Mead"
    xatol: float = param(
        1e-8, "absolute change of x between iterations that counts as converged", gt=0
    )
    fatol: float = param(
        1e-12, "absolute change of f between iterations that counts as converged", gt=0
    )
    adaptive: bool = param(True, "adapt the simplex parameters to the dimension (Gao & Han 2012)")

    def _options(self) -> dict[str, Any]:
        return {
            "maxiter": NO_LIMIT,
            "maxfev": NO_LIMIT,
            "xatol": self.xatol,
            "fatol": self.fatol,
            "adaptive": self.adaptive,
        }


@register("powell", family="external", needs_grad=False, supports_bounds=True, roles={"local": 5})
@dataclass(frozen=True)
class Powell(_ScipyMethod):
    """Powell's conjugate direction method (scipy): gradient-free local search."""

    _scipy_name: ClassVar[str] = "Powell"
    xtol: float = param(1e-8, "relative error in x acceptable for convergence", gt=0)
    ftol: float = param(1e-12, "relative error in f acceptable for convergence", gt=0)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "maxfev": NO_LIMIT, "xtol": self.xtol, "ftol": self.ftol}


@register(
    "cobyla",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
    roles={"local": 7, "constrained": 3},
)
@dataclass(frozen=True)
class COBYLA(_ScipyMethod):
    """COBYLA (scipy): gradient-free, linear approximations in a trust region."""

    _scipy_name: ClassVar[str] = "COBYLA"
    rhobeg: float = param(0.5, "initial trust-region radius (the first step's size)", gt=0)
    tol: float = param(1e-10, "final accuracy: a lower bound on the trust-region radius", gt=0)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "rhobeg": self.rhobeg, "tol": self.tol}

    def _constraints(self, cons: _ScipyConstraints) -> list[Any]:
        out: list[Any] = []
        for i, c in enumerate(cons.oracle.constraints.items):
            out.append({"type": "ineq", "fun": cons.fun(i)})
            if c.kind == "eq":  # COBYLA takes inequalities only: h = 0 as h >= 0 and -h >= 0
                out.append({"type": "ineq", "fun": cons.fun(i, sign=-1.0)})
        return out
