"""Bounded L-BFGS-B local searches fed with exact gradients, shared by the scipy global methods
(the local phase of dual annealing and the polish of differential evolution), and the finite
box those methods search.

Every probe goes through the evaluator, so it is counted; a non-finite probe ends one local
search, not the run. L-BFGS-B sees each attempt's values relative to its start point's, so
none of its stopping tests changes when a constant is added to f.
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
    "Referenced",
    "box_arrays",
    "lbfgsb_restarted",
    "local_lbfgsb",
    "local_lbfgsb_fd",
    "local_search_maxiter",
]

NO_LIMIT = 10**9  # scipy's own iteration and evaluation limits, lifted: the Budget decides
# L-BFGS-B tolerances of the local search: scipy's defaults with finite differences, tighter
# with the exact gradient. The defaults stop early in ill-conditioned valleys: on mlp_identity
# at 1e-5 to 1e-4 above the minimum; with these, 1e-7 to 1e-13 within 3,000 evaluations.
# Against values relative to each attempt's start (Referenced), ftol=3e-12 with the gradient
# brings dual annealing to f* on mlp_identity within 1,000 evaluations on 40 of 40 seeds with
# AVX-512 kernels and 39 of 40 with torch's portable ones (ATEN_CPU_CAPABILITY=default; the
# code before Referenced: 39, seed 23 there too); 1e-11 measured 40 and 38, 1e-12 39 and 37.
FD_FTOL, FD_GTOL = 2.220446049250313e-09, 1e-05
GRAD_FTOL, GRAD_GTOL = 3e-12, 1e-08
#: A restarted L-BFGS-B attempt that gains no more than this fraction of the search's whole
#: decrease (at least 1) ends the search.
RESTART_GAIN = 1e-10


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

    def fun_and_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = oracle.value_and_grad(
            ctx.project(oracle.as_tensor(np.asarray(x, np.float64))), stop_on_nonfinite=False
        )
        gn = g.detach().cpu().double().numpy()
        if not (math.isfinite(f) and np.isfinite(gn).all()):
            raise _NonFinite
        return f, gn

    referenced = Referenced(fun_and_grad, x0, jac=True)
    try:  # a bad probe ends this search (checked above), not the run
        return lbfgsb_restarted(referenced, x0, lower, upper, maxiter, ftol, gtol)
    except _NonFinite:
        return so.OptimizeResult(
            x=referenced.best_x,
            fun=referenced.best_f,
            success=False,
            nfev=referenced.nfev,
            njev=referenced.nfev,
            message="non-finite probe",
        )


def local_lbfgsb_fd(
    fun: Any,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    maxiter: int,
    ftol: float,
    gtol: float,
) -> so.OptimizeResult:
    """Bounded L-BFGS-B from ``x0`` on a value-only ``fun`` (scipy's forward differences,
    each probe a call of ``fun``), restarted and with the offset-invariant stops of
    :func:`lbfgsb_restarted`."""
    referenced = Referenced(fun, x0, jac=False)
    return lbfgsb_restarted(referenced, x0, lower, upper, maxiter, ftol, gtol, restarts=10)


class Referenced:
    """The function L-BFGS-B sees in one attempt: ``f - f_ref``, where ``f_ref`` is the
    attempt's first finite value (its start point's), and the best finite point of all calls.

    L-BFGS-B's ``ftol`` test is relative to ``max(|f|, 1)``: on ``f + 1000`` it would stop
    at a reduction a thousand times larger. Against ``f - f_ref`` it is relative to the
    decrease within the attempt (at least 1), which a constant added to f leaves unchanged;
    on values that ``f + c`` represents exactly, scipy sees the same numbers either way.
    """

    def __init__(self, fun: Any, x0: np.ndarray, jac: bool) -> None:
        self.fun, self.jac = fun, jac
        self.ref = math.nan  # the current attempt's reference value (NaN: none yet)
        self.best_f, self.best_x = math.inf, np.array(x0, dtype=np.float64)
        self.nfev = 0

    def new_attempt(self) -> None:
        """The next call's value (if finite) becomes the reference."""
        self.ref = math.nan

    def __call__(self, x: np.ndarray) -> Any:
        self.nfev += 1
        out = self.fun(x)
        f = float(out[0] if self.jac else out)
        if math.isfinite(f):
            if f < self.best_f:
                self.best_f, self.best_x = f, np.array(x, dtype=np.float64)
            if self.ref != self.ref:
                self.ref = f
        shifted = f - self.ref if self.ref == self.ref else f
        return (shifted, out[1]) if self.jac else shifted


def lbfgsb_restarted(
    referenced: Referenced,
    x0: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    maxiter: int,
    ftol: float,
    gtol: float,
    restarts: int = 10,
) -> so.OptimizeResult:
    """L-BFGS-B, restarted with a fresh memory (and reference value) where it stops short of
    a stationary point; returns the best point evaluated, with its value.

    In ill-conditioned valleys with ReLU kinks (mlp_identity) L-BFGS-B ends on "relative
    reduction of f" with a projected gradient far above ``gtol``: its curvature pairs no
    longer describe the function. A restart from that point with an empty memory (a
    projected-gradient step first) goes on: from 2.9e-5 above the minimum to 3.6e-7 in 60
    evaluations there. Each attempt's ``ftol`` is relative to its own decrease (see
    :class:`Referenced`), so an attempt that began far above the minimum and stopped early is
    followed by one at the scale of what is left. Restarts stop once an attempt gains no more
    than ``RESTART_GAIN * max(1, decrease of the whole search)`` (decreases: a constant added
    to f changes nothing), at a stationary point, or when ``maxiter`` iterations are spent.
    """
    bounds = so.Bounds(lower, upper)
    x = np.asarray(x0, dtype=np.float64)
    iters = evals = 0
    total = 0.0  # the decrease of the whole search so far
    res: so.OptimizeResult | None = None
    for attempt in range(restarts + 1):
        referenced.new_attempt()
        res = so.minimize(
            referenced,
            x,
            jac=True if referenced.jac else None,
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
        # the attempt's decrease: its values are relative to its start point's
        gained = -float(res.fun) if referenced.ref == referenced.ref else 0.0
        total += gained
        projected = np.clip(res.x - res.jac, lower, upper) - res.x
        stationary = float(np.abs(projected).max(initial=0.0)) <= gtol
        small = not gained > RESTART_GAIN * max(1.0, total)
        if stationary or iters >= maxiter or (attempt and small):
            break
        x = np.asarray(res.x, dtype=np.float64)
    assert res is not None
    res.nit, res.nfev, res.njev = iters, evals, evals  # totals over the attempts
    res.x, res.fun = referenced.best_x, referenced.best_f  # f itself, not f - f_ref
    return res
