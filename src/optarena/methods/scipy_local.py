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

from ..budget import StopReason
from ..oracle import Oracle
from ._base import ExternalMethod, Outcome, RunContext
from ._registry import register

__all__ = ["BFGS", "COBYLA", "LBFGSB", "SLSQP", "NelderMead", "Powell", "TrustConstr"]

_NO_LIMIT = 10**9


def _positive(**kw: Any) -> None:
    for k, v in kw.items():
        if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValueError(f"{k} must be a positive number or None, got {v!r}")


@dataclass(frozen=True)
class _ScipyMethod(ExternalMethod):
    """Shared machinery: wrap the Oracle as scipy's fun/jac and run scipy.optimize.minimize."""

    _scipy_name: ClassVar[str] = ""
    _uses_grad: ClassVar[bool] = False

    def _options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _extra(self, oracle: Oracle, ctx: RunContext) -> dict[str, Any]:
        return {}

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        project = ctx.project if ctx.bounded and self.info.supports_bounds else (lambda t: t)
        iteration = 0

        def point(xk: np.ndarray) -> torch.Tensor:
            return project(oracle.as_tensor(np.asarray(xk, dtype=np.float64)))

        def fun(xk: np.ndarray) -> float:
            return oracle.value(point(xk))

        def fun_and_grad(xk: np.ndarray) -> tuple[float, np.ndarray]:
            f, g = oracle.value_and_grad(point(xk))
            return f, g.detach().cpu().double().numpy()

        def callback(xk: Any, *args: Any) -> None:
            nonlocal iteration
            iteration += 1
            x = xk.x if isinstance(xk, so.OptimizeResult) else xk
            ctx.notify(oracle, iteration, torch.as_tensor(np.asarray(x)), None)

        kwargs: dict[str, Any] = {"method": self._scipy_name, "options": self._options()}
        kwargs.update(self._extra(oracle, ctx))
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


@register("slsqp", family="external", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class SLSQP(_ScipyMethod):
    """Sequential least squares programming (scipy), with the exact gradient."""

    _scipy_name: ClassVar[str] = "SLSQP"
    _uses_grad: ClassVar[bool] = True
    ftol: float = 1e-12

    def __post_init__(self) -> None:
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
        _positive(gtol=self.gtol)
        if not 0 < self.c1 < self.c2 < 1:
            raise ValueError(f"need 0 < c1 < c2 < 1, got c1={self.c1}, c2={self.c2}")

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "gtol": self.gtol, "c1": self.c1, "c2": self.c2}


@register("trust_constr", family="external", needs_grad=True, supports_bounds=True)
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


@register("nelder_mead", family="external", needs_grad=False, supports_bounds=True)
@dataclass(frozen=True)
class NelderMead(_ScipyMethod):
    """Nelder-Mead simplex (scipy): gradient-free local search."""

    _scipy_name: ClassVar[str] = "Nelder-Mead"
    xatol: float = 1e-8
    fatol: float = 1e-12
    adaptive: bool = True

    def __post_init__(self) -> None:
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
        _positive(xtol=self.xtol, ftol=self.ftol)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "maxfev": _NO_LIMIT, "xtol": self.xtol, "ftol": self.ftol}


@register("cobyla", family="external", needs_grad=False, supports_bounds=True)
@dataclass(frozen=True)
class COBYLA(_ScipyMethod):
    """COBYLA (scipy): gradient-free, linear approximations in a trust region."""

    _scipy_name: ClassVar[str] = "COBYLA"
    rhobeg: float = 0.5
    tol: float = 1e-10

    def __post_init__(self) -> None:
        _positive(rhobeg=self.rhobeg, tol=self.tol)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": _NO_LIMIT, "rhobeg": self.rhobeg, "tol": self.tol}
