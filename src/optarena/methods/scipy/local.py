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

from ...budget import StopReason
from ...core.evaluator import Evaluator
from ...core.oracle import Oracle
from .._base import Outcome, RunContext
from .._params import param
from .._registry import register
from ._adapter import ScipyConstraints, ScipyMethod, ScipyRun
from ._kkt import kkt_residual
from ._local_search import NO_LIMIT
from ._outside import OutsideProbes

__all__ = ["BFGS", "COBYLA", "LBFGSB", "SLSQP", "NelderMead", "Powell", "TrustConstr"]

#: Bounds beyond this magnitude reach scipy's trust-constr and Powell as infinite (see there).
HUGE_BOUND = 1e150


def open_huge(lower: np.ndarray, upper: np.ndarray) -> so.Bounds:
    """The box for scipy with bounds beyond +-HUGE_BOUND opened to +-inf. Every evaluation
    still stays in the run's box: the points scipy asks for are clipped into it."""
    lower = np.where(lower < -HUGE_BOUND, -np.inf, lower)
    upper = np.where(upper > HUGE_BOUND, np.inf, upper)
    return so.Bounds(lower, upper)


@register(
    "slsqp",
    family="external",
    needs_grad=True,
    supports_bounds=True,
    supports_constraints=True,
    roles={"local": 2, "constrained": 1},
)
@dataclass(frozen=True)
class SLSQP(ScipyMethod):
    """Sequential least squares programming (scipy), with the exact gradient."""

    _scipy_name: ClassVar[str] = "SLSQP"
    _uses_grad: ClassVar[bool] = True
    ftol: float = param(1e-12, "precision goal for the value in the stopping test", gt=0)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "ftol": self.ftol}

    def _finish(
        self, res: so.OptimizeResult, oracle: Oracle, run: ScipyRun, ctx: RunContext
    ) -> Outcome:
        """A failure at a feasible point where the first-order conditions hold is a solution.

        ``ftol`` is an absolute goal for f: near the precision of f's rounding (1e-12 on a
        value of 17, as on Hock-Schittkowski 71) the line search finds no descent at the
        solution and scipy ends on "Positive directional derivative for linesearch", or on
        another rounding symptom, where the answer is right. The best point is then checked:
        feasible, and stationary to ``sqrt(ftol)`` relative (the accuracy of x that a value
        accurate to ``ftol`` implies). A point that fails the check stays a failure.
        """
        outcome = super()._finish(res, oracle, run, ctx)
        if res.success:
            return outcome
        return self._checked(outcome, oracle, run, ctx)

    def _stalled(
        self, message: str, oracle: Oracle, run: ScipyRun, ctx: RunContext
    ) -> Outcome | None:
        """The stall rule ended the run: converged only where the first-order conditions hold
        (a wrong gradient also stalls SLSQP, on a point that is no solution)."""
        return self._checked(Outcome(StopReason.METHOD_FAILED, message), oracle, run, ctx)

    def _checked(self, outcome: Outcome, oracle: Oracle, run: ScipyRun, ctx: RunContext) -> Outcome:
        """``outcome`` (a failure), or CONVERGED when the best point passes the KKT check."""
        x = oracle.best_x
        if x is None or run.best_grad is None or not oracle.best_feasible:
            return outcome
        lower = upper = None
        if ctx.lower is not None and ctx.upper is not None:
            lower = ctx.lower.detach().cpu().double().numpy()
            upper = ctx.upper.detach().cpu().double().numpy()
        residual = kkt_residual(oracle, x, run.best_grad, lower, upper)
        info = {**outcome.info, "kkt_residual": residual}
        if residual <= math.sqrt(self.ftol):
            return Outcome(
                StopReason.CONVERGED,
                f"first-order (KKT) conditions hold at the best point to {residual:.2g} "
                f"(relative); scipy's own test at ftol={self.ftol:g} could not be met there "
                f"for rounding: {outcome.message}",
                info,
            )
        return Outcome(
            outcome.reason,
            f"{outcome.message}; the best point is not stationary (KKT residual "
            f"{residual:.2g}, relative)",
            info,
        )


@register(
    "lbfgsb",
    family="external",
    needs_grad=True,
    supports_bounds=True,
    quasi_newton="limited",
    roles={"local": 3, "merit": 1},
)
@dataclass(frozen=True)
class LBFGSB(ScipyMethod):
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
class BFGS(ScipyMethod):
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
class TrustConstr(ScipyMethod):
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

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        if ctx.lower is None or ctx.upper is None:
            return
        lo, hi = ctx.lower.detach().cpu().double(), ctx.upper.detach().cpu().double()
        far = (lo > HUGE_BOUND) | (hi < -HUGE_BOUND)
        if bool(far.any()):
            i = int(far.nonzero()[0, 0])
            raise ValueError(
                f"trust_constr cannot search a box beyond +-{HUGE_BOUND:g} (index {i} has "
                f"[{float(lo[i])}, {float(hi[i])}]): its interior point method squares the "
                "distances to the bounds, which overflow; rescale the variables"
            )

    def _scipy_bounds(self, lower: np.ndarray, upper: np.ndarray) -> so.Bounds:
        """Bounds beyond +-1e150 reach scipy as infinite: its interior point method squares
        the distances to them, which overflow, and then it loops without evaluating."""
        return open_huge(lower, upper)

    def _constraints(self, cons: ScipyConstraints) -> list[Any]:
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
class NelderMead(ScipyMethod):
    """Nelder-Mead simplex (scipy): gradient-free local search."""

    _scipy_name: ClassVar[str] = "Nelder-Mead"
    # an iteration is at most d + 2 evaluations (reflect, contract, shrink d points): the
    # wall test's window of 2 d + 2 covers it, so no per-iteration callback is needed
    _marks_iterations: ClassVar[bool] = False
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
class Powell(ScipyMethod):
    """Powell's conjugate direction method (scipy): gradient-free local search.

    scipy's ``ftol`` is relative to |f|, so on f + c a positive value stops earlier; the
    default 0 stops when an iteration gains nothing (or on the stall rule), which no constant
    added to f moves.
    """

    _scipy_name: ClassVar[str] = "Powell"
    xtol: float = param(1e-8, "relative error in x acceptable for convergence", gt=0)
    ftol: float = param(
        0.0,
        "stop when an iteration reduces f by at most ftol * |f| (scipy's test; 0: by nothing)",
        ge=0,
    )

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "maxfev": NO_LIMIT, "xtol": self.xtol, "ftol": self.ftol}

    def _scipy_bounds(self, lower: np.ndarray, upper: np.ndarray) -> so.Bounds:
        """Bounds beyond +-1e150 reach scipy as infinite: its bounded line search divides
        the span between them, which overflows to NaN coordinates (and a golden-section
        search over +-1e150 takes thousands of evaluations)."""
        return open_huge(lower, upper)


@register(
    "cobyla",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
    roles={"local": 7, "constrained": 3},
)
@dataclass(frozen=True)
class COBYLA(ScipyMethod):
    """COBYLA (scipy): gradient-free, linear approximations in a trust region."""

    _scipy_name: ClassVar[str] = "COBYLA"
    rhobeg: float = param(0.5, "initial trust-region radius (the first step's size)", gt=0)
    tol: float = param(1e-10, "final accuracy: a lower bound on the trust-region radius", gt=0)

    def _options(self) -> dict[str, Any]:
        return {"maxiter": NO_LIMIT, "rhobeg": self.rhobeg, "tol": self.tol}

    def _restart(self, kwargs: dict[str, Any], attempt: int) -> dict[str, Any]:
        """A restart after a collapse against non-finite values: a trust region a quarter
        as large each time, so the linear models are built from nearby finite points."""
        options = {**kwargs["options"], "rhobeg": self.rhobeg * 0.25**attempt}
        options["tol"] = min(self.tol, options["rhobeg"])
        return {**kwargs, "options": options}

    def _wrap(self, fun: Any, cons: ScipyConstraints, ctx: RunContext) -> tuple[Any, Any]:
        """COBYLA treats the bounds as constraints it may violate on the way (its first
        simplex steps ``rhobeg`` past a start on the bound): probes outside the box are
        answered by linear extrapolation from two evaluations inside (``_outside``)."""
        if ctx.lower is None or ctx.upper is None:
            return fun, cons
        outside = OutsideProbes(
            cons.oracle,
            ctx.lower.detach().cpu().double().numpy(),
            ctx.upper.detach().cpu().double().numpy(),
        )
        return outside.objective(fun), _OutsideConstraints(cons, outside)

    def _constraints(self, cons: ScipyConstraints) -> list[Any]:
        out: list[Any] = []
        for i, c in enumerate(cons.oracle.constraints.items):
            out.append({"type": "ineq", "fun": cons.fun(i)})
            if c.kind == "eq":  # COBYLA takes inequalities only: h = 0 as h >= 0 and -h >= 0
                out.append({"type": "ineq", "fun": cons.fun(i, sign=-1.0)})
        return out


class _OutsideConstraints(ScipyConstraints):
    """COBYLA's constraints: as :class:`ScipyConstraints` in the box, extrapolated outside."""

    def __init__(self, inside: ScipyConstraints, outside: OutsideProbes) -> None:
        super().__init__(inside.oracle, inside.point)
        self.inside, self.outside = inside, outside

    def fun(self, i: int, sign: float = 1.0) -> Any:
        return self.outside.constraint(self.inside.fun(i, sign), i, sign)
