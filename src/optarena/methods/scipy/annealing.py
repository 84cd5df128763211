"""Dual annealing (scipy): generalized simulated annealing plus a bounded local search.

scipy's ``dual_annealing`` drives the loop itself, so it is an external-family method: every
call it makes goes through the Oracle, which counts it and stops the run when the Budget is
spent (scipy's own ``maxiter``/``maxfun`` are lifted so the Budget alone limits the run).

The local search (L-BFGS-B) uses the objective's exact gradient when it has one
(``local_search_gradient=None``, the default): each probe is one forward+backward evaluation
instead of the ``d + 1`` finite-difference probes scipy would otherwise spend, and L-BFGS-B
is restarted with a fresh memory where it stalls short of a stationary point. On the
tutorial's ``mlp_identity`` this reaches the certified minimum (to 1e-6) within 1,000
evaluations in 40 of 40 seeded runs (at most 907), where finite differences need several
thousand.

scipy's annealing compares values and their differences; the local search's stops are made
offset-invariant too (each L-BFGS-B attempt sees f relative to its start point's value), so
a constant added to f changes no decision, and on values that f + c represents exactly the
run evaluates the same points (``local_search_gradient=False`` excepted: scipy's own search).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.optimize as so
import torch

from ...budget import StopReason
from ...core.evaluator import Evaluator
from .._base import ExternalMethod, Outcome, RunContext
from .._params import param
from .._registry import register
from ._adapter import ScipyPoints
from ._local_search import (
    FD_FTOL,
    FD_GTOL,
    GRAD_FTOL,
    GRAD_GTOL,
    NO_LIMIT,
    box_arrays,
    local_lbfgsb,
    local_lbfgsb_fd,
    local_search_maxiter,
)

__all__ = ["DualAnnealing"]


@register(
    "dual_annealing",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    requires_bounds=True,
    stochastic=True,
    is_global=True,
    roles={"global": 4},
)
@dataclass(frozen=True)
class DualAnnealing(ExternalMethod):
    """Dual annealing (scipy): generalized simulated annealing with L-BFGS-B local searches.

    Args:
        initial_temp: starting temperature, in (0.01, 5e4]; higher explores more widely.
        restart_temp_ratio: re-anneal when the temperature falls to this fraction of
            ``initial_temp``, in (0, 1).
        visit: tail parameter of the visiting distribution, in (1, 3); larger jumps further.
        accept: acceptance parameter, in (-1e4, -5]; lower accepts uphill moves less often.
        no_local_search: plain generalized simulated annealing, without local searches.
        local_search_gradient: ``None`` uses the objective's exact gradient in the local
            search when it has one, else finite differences; ``True`` requires the gradient;
            ``False`` runs scipy's own L-BFGS-B with its finite differences (each probe
            counted), exactly as plain ``scipy.optimize.dual_annealing``, with scipy's
            ``ftol`` relative to |f| (so the one setting whose stops move with a constant
            added to f).
        local_ftol, local_gtol: L-BFGS-B stopping tolerances of each local search. ``None``
            means (2.2e-9, 1e-5) with finite differences, scipy's, and (3e-12, 1e-8) with the
            exact gradient, where an iteration costs one evaluation instead of ``d + 1``.
            Except with ``local_search_gradient=False``, ``local_ftol`` is relative to the
            decrease within one L-BFGS-B attempt (at least 1), never to |f|, and an attempt
            that stops above a stationary point is followed by another from there.
        start: ``"x0"`` starts the annealing at the given x0; ``"random"`` at a uniform point
            of the box, as ``scipy.optimize.dual_annealing`` does without x0.

    The callback is called whenever scipy finds a new best point (scipy has no other hook).
    """

    #: Comparisons and differences of values; the local search sees f relative to its start:
    #: f + c searches the same points where it is exact.
    rank_based: ClassVar[bool] = True

    initial_temp: float = param(5230.0, gt=0.01, le=5e4)
    restart_temp_ratio: float = param(2e-5, gt=0, lt=1)
    visit: float = param(2.62, gt=1, lt=3)
    accept: float = param(-5.0, gt=-1e4, le=-5)
    no_local_search: bool = param(False)
    local_search_gradient: bool | None = param(
        None, "use the objective's exact gradient in the local search (None: when it has one)"
    )
    local_ftol: float | None = param(None, "L-BFGS-B ftol of each local search", ge=0)
    local_gtol: float | None = param(None, "L-BFGS-B gtol of each local search", ge=0)
    start: str = param(
        "x0",
        "where the annealing starts: at x0 or at a uniform point of the box",
        choices=("x0", "random"),
    )

    def validate(self) -> None:
        if self.no_local_search and self.local_search_gradient:
            raise ValueError(
                "local_search_gradient=True has no effect with no_local_search=True; "
                "drop one of the two"
            )

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        lo, hi = box_arrays(ctx, self.name)
        flat = np.flatnonzero(lo >= hi)
        if flat.size:
            i = int(flat[0])
            raise ValueError(
                f"dual_annealing needs lower < upper in every coordinate, but index {i} has "
                f"lower == upper == {lo[i]}; fix that variable inside the objective instead, "
                "or use differential_evolution, which accepts equal bounds"
            )
        if self.local_search_gradient and not oracle.objective.has_gradient:
            raise ValueError(
                "local_search_gradient=True needs an objective with a gradient, but "
                f"{oracle.objective.name!r} has none; use local_search_gradient=None or False"
            )

    def _uses_gradient(self, oracle: Evaluator) -> bool:
        if self.no_local_search or self.local_search_gradient is False:
            return False
        return oracle.objective.has_gradient

    def _minimizer_kwargs(
        self, oracle: Evaluator, ctx: RunContext, lo: np.ndarray, hi: np.ndarray
    ) -> dict[str, Any]:
        """scipy's local search: bounded L-BFGS-B with the exact gradient when the run uses
        it, else with forward differences on the annealing function; with stops that a
        constant added to f does not move (``_local_search.Referenced``), except with
        ``local_search_gradient=False``: scipy's own L-BFGS-B, as plain scipy runs it."""
        maxiter = local_search_maxiter(lo.size)
        exact = self._uses_gradient(oracle)
        fd_ftol = FD_FTOL if self.local_ftol is None else self.local_ftol
        fd_gtol = FD_GTOL if self.local_gtol is None else self.local_gtol
        if self.local_search_gradient is False:
            options = {"maxiter": maxiter, "ftol": fd_ftol, "gtol": fd_gtol}
            return {"method": "L-BFGS-B", "bounds": so.Bounds(lo, hi), "options": options}
        ftol = GRAD_FTOL if self.local_ftol is None else self.local_ftol
        gtol = GRAD_GTOL if self.local_gtol is None else self.local_gtol

        def local_method(fun: Any, x0: np.ndarray, **_: Any) -> so.OptimizeResult:
            # scipy calls this as a custom ``minimize`` method with the scalar annealing
            # function ``fun`` (counted by scipy's wrapper and by the Oracle)
            if not (exact and oracle.objective.has_gradient):
                # differences; also a plain function found by its first call to be numpy
                return local_lbfgsb_fd(fun, x0, lo, hi, maxiter=maxiter, ftol=fd_ftol, gtol=fd_gtol)
            # the exact value and gradient instead; the iteration cap is scipy's times
            # (d + 1), so a local search may spend as many evaluations as one with finite
            # differences would
            return local_lbfgsb(
                oracle, ctx, x0, lo, hi, maxiter=maxiter * (lo.size + 1), ftol=ftol, gtol=gtol
            )

        return {"method": local_method}

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        lo, hi = box_arrays(ctx, self.name)
        iteration = 0

        value = ScipyPoints(oracle, ctx, clip=True).value

        def fun(x: np.ndarray) -> float:
            return value(x)[0]

        def callback(x: np.ndarray, f: float, context: int) -> None:
            nonlocal iteration
            iteration += 1
            ctx.notify(oracle, iteration, torch.as_tensor(np.array(x)), float(f))

        try:
            res = so.dual_annealing(
                fun,
                so.Bounds(lo, hi),
                maxiter=NO_LIMIT,
                maxfun=NO_LIMIT,
                minimizer_kwargs=self._minimizer_kwargs(oracle, ctx, lo, hi),
                initial_temp=self.initial_temp,
                restart_temp_ratio=self.restart_temp_ratio,
                visit=self.visit,
                accept=self.accept,
                no_local_search=self.no_local_search,
                rng=ctx.rng,
                callback=callback if ctx.callback is not None else None,
                x0=ctx.x0.detach().cpu().double().numpy() if self.start == "x0" else None,
            )
        except ValueError as e:
            if oracle.nfev == 0:
                raise
            # scipy gives up after 1,000 random restarts that all had non-finite values.
            return Outcome(StopReason.METHOD_FAILED, f"scipy.optimize.dual_annealing: {e}")
        # Reached only if scipy stops on its own limits, which are lifted above.
        msg = res.message
        return Outcome(
            StopReason.METHOD_FAILED, "; ".join(msg) if isinstance(msg, list) else str(msg)
        )
