"""Bounded L-BFGS-B local searches fed with exact gradients, shared by the scipy global methods
(the local phase of dual annealing and the polish of differential evolution), and the finite
box those methods search.

Every probe goes through the evaluator, so it is counted; a non-finite probe ends one local
search, not the run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.optimize as so

from ...core.evaluator import Evaluator
from .._base import RunContext

__all__ = [
    "FD_FTOL",
    "FD_GTOL",
    "GRAD_FTOL",
    "GRAD_GTOL",
    "NO_LIMIT",
    "box_arrays",
    "local_lbfgsb",
    "local_search_maxiter",
]

NO_LIMIT = 10**9  # scipy's own iteration and evaluation limits, lifted: the Budget decides
# L-BFGS-B tolerances of the local search: scipy's defaults with finite differences, tighter
# with the exact gradient. The defaults stop early in ill-conditioned valleys: on mlp_identity
# at 1e-5 to 1e-4 above the minimum; with these, 1e-7 to 1e-13 within 3,000 evaluations.
FD_FTOL, FD_GTOL = 2.220446049250313e-09, 1e-05
GRAD_FTOL, GRAD_GTOL = 1e-12, 1e-08


class _NonFinite(Exception):
    """A local-search probe had a non-finite value or gradient (ends that local search)."""


def box_arrays(ctx: RunContext, method: str) -> tuple[np.ndarray, np.ndarray]:
    """The bounds as float64 arrays, or ValueError when they are missing or infinite, or
    when the width ``upper - lower`` overflows (scipy scales by it: samples would be inf)."""
    if ctx.lower is None or ctx.upper is None:
        raise ValueError(f"method {method!r} searches a box and needs bounds=(lower, upper)")
    lo = ctx.lower.detach().cpu().double().numpy()
    hi = ctx.upper.detach().cpu().double().numpy()
    bad = np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"method {method!r} needs finite bounds, but index {i} has [{lo[i]}, {hi[i]}]; "
            "give a finite box that contains the region worth searching"
        )
    with np.errstate(over="ignore"):
        wide = np.flatnonzero(~np.isfinite(hi - lo))
    if wide.size:
        i = int(wide[0])
        raise ValueError(
            f"method {method!r} samples the box uniformly, but its width upper - lower "
            f"overflows to inf at index {i} ([{lo[i]}, {hi[i]}]), so samples would be inf or "
            "NaN; give a finite box whose width is representable (below 1.7e308), the range "
            "you want searched"
        )
    return lo, hi


def local_search_maxiter(dim: int) -> int:
    """scipy's iteration limit for one dual-annealing local search: 6 d within [100, 1000]."""
    return min(max(6 * dim, 100), 1000)


def local_lbfgsb(
    oracle: Evaluator,
    ctx: RunContext,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    maxiter: int,
    ftol: float,
    gtol: float,
) -> so.OptimizeResult:
    """Bounded L-BFGS-B from ``x0`` fed with ``oracle.value_and_grad`` (every call counted).

    A probe whose value or gradient is not finite ends this local search, not the run: the
    evaluation is counted and ranked +inf by the Oracle, and the best finite point this search
    evaluated is returned (``fun=inf`` if none), so a global method can go on searching
    elsewhere. L-BFGS-B itself cannot step from a NaN gradient, and its line search would
    otherwise end abnormally with a corrupted curvature memory.
    """
    best_f, best_x = math.inf, np.array(x0, dtype=np.float64)
    nfev = 0

    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        nonlocal best_f, best_x, nfev
        f, g = oracle.value_and_grad(
            ctx.project(oracle.as_tensor(np.asarray(x, np.float64))), stop_on_nonfinite=False
        )
        nfev += 1
        gn = g.detach().cpu().double().numpy()
        if not (math.isfinite(f) and np.isfinite(gn).all()):
            raise _NonFinite
        if f < best_f:
            best_f, best_x = f, np.array(x, dtype=np.float64)
        return f, gn

    try:  # a bad probe ends this search (checked above), not the run
        res = _lbfgsb_restarted(fun_and_grad, x0, lower, upper, maxiter, ftol, gtol)
    except _NonFinite:
        return so.OptimizeResult(
            x=best_x, fun=best_f, success=False, nfev=nfev, njev=nfev, message="non-finite probe"
        )
    if not (math.isfinite(float(res.fun)) and float(res.fun) <= best_f):
        res.x, res.fun = best_x, best_f
    return res


def _lbfgsb_restarted(
    fun_and_grad: Any,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    maxiter: int,
    ftol: float,
    gtol: float,
    restarts: int = 10,
) -> so.OptimizeResult:
    """L-BFGS-B, restarted with a fresh memory where it stalls short of a stationary point.

    In ill-conditioned valleys with ReLU kinks (mlp_identity) L-BFGS-B ends on "relative
    reduction of f" with a projected gradient far above ``gtol``: its curvature pairs no
    longer describe the function. A restart from that point with an empty memory (a
    projected-gradient step first) goes on: from 2.9e-5 above the minimum to 3.6e-7 in 60
    evaluations there. Restarts stop once an attempt gains less than ``1e-10 * max(1, |f|)``,
    at a real stationary point, or when ``maxiter`` iterations are spent in all.
    """
    bounds = so.Bounds(lower, upper)
    x = np.asarray(x0, dtype=np.float64)
    f_start = math.inf
    iters = evals = 0
    res: so.OptimizeResult | None = None
    for _ in range(restarts + 1):
        res = so.minimize(
            fun_and_grad,
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={
                "maxiter": maxiter - iters,
                "maxfun": NO_LIMIT,
                "ftol": ftol,
                "gtol": gtol,
            },
        )
        iters += int(res.nit)
        evals += int(res.nfev)
        fun = float(res.fun)
        projected = np.clip(res.x - res.jac, lower, upper) - res.x
        stationary = float(np.abs(projected).max(initial=0.0)) <= gtol
        gained = f_start - fun
        if stationary or iters >= maxiter or not gained > 1e-10 * max(1.0, abs(fun)):
            break
        x, f_start = np.asarray(res.x, dtype=np.float64), fun
    assert res is not None
    res.nit, res.nfev, res.njev = iters, evals, evals  # totals over the attempts
    return res
