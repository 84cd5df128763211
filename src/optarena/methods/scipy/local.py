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
from ...core.oracle import Oracle, StopRun
from .._base import ExternalMethod, Outcome, RunContext
from .._registry import register

__all__ = ["BFGS", "COBYLA", "LBFGSB", "SLSQP", "NelderMead", "Powell", "TrustConstr"]

_NO_LIMIT = 10**9


def _positive(**kw: Any) -> None:
    for k, v in kw.items():
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{k} must be a positive number or None, got {v!r}")


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
    stall: int | None = 200

    def __post_init__(self) -> None:
        if self.stall is not None and (not isinstance(self.stall, int) or self.stall <= 0):
            raise ValueError(f"stall must be a positive int or None, got {self.stall!r}")

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
    "slsqp", family="external", needs_grad=True, supports_bounds=True, supports_constraints=True
)
@dataclass(frozen=True)
class SLSQP(_ScipyMethod):
    """Sequential least squares programming (scipy), with the exact gradient."""

    _scipy_name: ClassVar[str] = "SLSQP"
    _uses_grad: ClassVar[bool] = True
    ftol: float = 1e-12

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(ftol=self.ftol)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "ftol": self.ftol}


@register("lbfgsb", family="external", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class LBFGSB(_ScipyMethod):
    """L-BFGS-B (scipy): limited-memory BFGS with native box bounds, exact gradient."""

    _scipy_name: ClassVar[str] = "L-BFGS-B"
    _uses_grad: ClassVar[bool] = True
    maxcor: int = 10
    ftol: float = 2.220446049250313e-09
    gtol: float = 1e-5
    maxls: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(maxcor=self.maxcor, ftol=self.ftol, gtol=self.gtol, maxls=self.maxls)

    def _options(self) -> dict[str, Any]:
        return {
            "maxiter": _NO_LIMIT,
            "maxfun": _NO_LIMIT,
            "maxcor": self.maxcor,
            "ftol": self.ftol,
            "gtol": self.gtol,
            "maxls": self.maxls,
        }


@register("bfgs", family="external", needs_grad=True, supports_bounds=False)
@dataclass(frozen=True)
class BFGS(_ScipyMethod):
    """BFGS quasi-Newton (scipy) with the exact gradient and a Wolfe line search."""

    _scipy_name: ClassVar[str] = "BFGS"
    _uses_grad: ClassVar[bool] = True
    gtol: float = 1e-5
    c1: float = 1e-4
    c2: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(gtol=self.gtol)
        if not 0 < self.c1 < self.c2 < 1:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={self.c1}, c2={self.c2}")

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "gtol": self.gtol, "c1": self.c1, "c2": self.c2}


@register(
    "trust_constr",
    family="external",
    needs_grad=True,
    supports_bounds=True,
    supports_constraints=True,
)
@dataclass(frozen=True)
class TrustConstr(_ScipyMethod):
    """Trust-region interior point / SQP (scipy trust-constr), exact gradient, BFGS Hessian."""

    _scipy_name: ClassVar[str] = "trust-constr"
    _uses_grad: ClassVar[bool] = True
    gtol: float = 1e-8
    xtol: float = 1e-8
    barrier_tol: float = 1e-8
    initial_tr_radius: float = 1.0
    hessian_update: str = "bfgs"

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(
            gtol=self.gtol,
            xtol=self.xtol,
            barrier_tol=self.barrier_tol,
            initial_tr_radius=self.initial_tr_radius,
        )
        if self.hessian_update not in ("bfgs", "sr1"):
            raise ValueError(f"hessian_update must be 'bfgs' or 'sr1', got {self.hessian_update!r}")

    def _options(self) -> dict[str, Any]:
        return {
            "maxiter": _NO_LIMIT,
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


@register("nelder_mead", family="external", needs_grad=False, supports_bounds=True)
@dataclass(frozen=True)
class NelderMead(_ScipyMethod):
    """Nelder-Mead simplex (scipy): gradient-free local search."""

    _scipy_name: ClassVar[str] = "Nelder-Mead"
    xatol: float = 1e-8
    fatol: float = 1e-12
    adaptive: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(xatol=self.xatol, fatol=self.fatol)

    def _options(self) -> dict[str, Any]:
        return {
            "maxiter": _NO_LIMIT,
            "maxfev": _NO_LIMIT,
            "xatol": self.xatol,
            "fatol": self.fatol,
            "adaptive": self.adaptive,
        }


@register("powell", family="external", needs_grad=False, supports_bounds=True)
@dataclass(frozen=True)
class Powell(_ScipyMethod):
    """Powell's conjugate direction method (scipy): gradient-free local search."""

    _scipy_name: ClassVar[str] = "Powell"
    xtol: float = 1e-8
    ftol: float = 1e-12

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(xtol=self.xtol, ftol=self.ftol)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "maxfev": _NO_LIMIT, "xtol": self.xtol, "ftol": self.ftol}


@register(
    "cobyla", family="external", needs_grad=False, supports_bounds=True, supports_constraints=True
)
@dataclass(frozen=True)
class COBYLA(_ScipyMethod):
    """COBYLA (scipy): gradient-free, linear approximations in a trust region."""

    _scipy_name: ClassVar[str] = "COBYLA"
    rhobeg: float = 0.5
    tol: float = 1e-10

    def __post_init__(self) -> None:
        super().__post_init__()
        _positive(rhobeg=self.rhobeg, tol=self.tol)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "rhobeg": self.rhobeg, "tol": self.tol}

    def _constraints(self, cons: _ScipyConstraints) -> list[Any]:
        out: list[Any] = []
        for i, c in enumerate(cons.oracle.constraints.items):
            out.append({"type": "ineq", "fun": cons.fun(i)})
            if c.kind == "eq":  # COBYLA takes inequalities only: h = 0 as h >= 0 and -h >= 0
                out.append({"type": "ineq", "fun": cons.fun(i, sign=-1.0)})
        return out
