"""Differential evolution (scipy), each generation evaluated as one batch through the Oracle.

scipy's ``differential_evolution`` runs with ``vectorized=True`` and ``updating="deferred"``:
it hands over a whole generation at once, which becomes one ``oracle.values`` call (one
``batched``/``vmap`` evaluation of the population). The start point is evaluated first on its
own, as every non-population method does, so a start that already meets the target, or that
makes the objective fail, costs one evaluation rather than a population.

A run spends its budget: when the population has converged (the spread of its values below
``ftol`` times that of its first generation, its positions within ``xtol`` of the box width,
or all its values equal) with budget left, the best point is polished with L-BFGS-B and DE
starts again from a new population drawn from the same seeded stream; the run's best point is
kept by the Oracle. These tests look at positions and at differences of values, never at a
tolerance relative to |f|, so adding a constant to f changes no decision.

The default population is smaller than scipy's 15 members per parameter: 16 members at d = 2
and 5 per parameter from d = 4 on, so a population converges within budgets of about 1000 d
evaluations and the polish and restarts get their share. On bbob (budget 1000 d) this solves
0.80 / 0.51 of the (function, instance, target) triples at d = 2 / 5, where 15 members per
parameter without polish solve 0.80 / 0.21 and scipy's own defaults 0.56 / 0.28.

The polish runs after each convergence, not at the end as scipy's does: with the exact
gradient when the objective has one, else with forward differences (each gradient one batch
of ``1 + d``), every call counted like all others.
"""

from __future__ import annotations

import contextlib
import math
import warnings
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
from ._local_search import (
    FD_GTOL,
    GRAD_GTOL,
    NO_LIMIT,
    Referenced,
    box_arrays,
    local_search_maxiter,
)

__all__ = ["DifferentialEvolution"]

STRATEGIES = (
    "best1bin",
    "best1exp",
    "best2bin",
    "best2exp",
    "currenttobest1bin",
    "currenttobest1exp",
    "rand1bin",
    "rand1exp",
    "rand2bin",
    "rand2exp",
    "randtobest1bin",
    "randtobest1exp",
)
INITS = ("latinhypercube", "sobol", "halton", "random")


def _mutation_problem(m: Any) -> str | None:
    """What is wrong with a mutation setting: a weight in [0, 2) or a (low, high) range."""
    if isinstance(m, list | tuple):
        if len(m) == 2 and all(_weight(v) for v in m) and m[0] <= m[1]:
            return None
        return "as a range must be (low, high) with 0 <= low <= high < 2"
    return None if _weight(m) else "must be a number in [0, 2) or a (low, high) range"


def _weight(v: Any) -> bool:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    return ok and 0 <= v < 2


@register(
    "differential_evolution",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    requires_bounds=True,
    stochastic=True,
    is_global=True,
    roles={"global": 2},
)
@dataclass(frozen=True)
class DifferentialEvolution(ExternalMethod):
    """Differential evolution (scipy), one batched objective call per generation.

    Args:
        strategy: how trial vectors are built, e.g. ``"best1bin"`` or ``"rand1exp"``.
        popsize: population size as a multiple of the number of varying parameters ``n``
            (at least 5 members; ``init="sobol"`` rounds up to a power of two); ``None``:
            ``max(5, ceil(16 / n))``.
        mutation: differential weight in [0, 2), or ``(low, high)`` for dithering, where a
            new weight is drawn uniformly from that range each generation.
        recombination: crossover probability in [0, 1].
        init: initial population: ``"latinhypercube"``, ``"sobol"``, ``"halton"`` or
            ``"random"``.
        tol, atol: scipy's test, converged when std(values) <= atol + tol * |mean(values)|.
            The default ``tol=0`` makes it offset-invariant (a positive ``tol`` is relative to
            |f|, so adding a constant to f changes when it fires).
        xtol: converged when every coordinate's spread over the population is at most
            ``xtol`` times the box width (0: never on this test).
        ftol: converged when the standard deviation of the population's values is at most
            ``ftol`` times that of the run's first generation (0: never on this test).
        restart: on convergence with budget left, start again from a new population until
            the budget is spent; ``False`` ends the run at the first convergence.
        polish: after each convergence, L-BFGS-B from the best point, with the exact
            gradient or forward differences (every call counted), stopping on the projected
            gradient, never on a relative decrease of f.

    With ``tol=0`` selection compares values and the convergence tests look at positions or
    differences of values, so no decision depends on a constant added to f.
    """

    #: Comparisons and spreads of values; the polish sees f relative to its start: f + c
    #: searches the same points where it is exact.
    rank_based: ClassVar[bool] = True

    strategy: str = param("best1bin", "how trial vectors are built", choices=STRATEGIES)
    popsize: int | None = param(None, ge=1)
    mutation: float | tuple[float, float] = param(
        (0.5, 1.0),
        "differential weight in [0, 2), or (low, high) to dither",
        check=_mutation_problem,
        accepts="a number in [0, 2) or a (low, high) range within it",
    )
    recombination: float = param(0.7, ge=0, le=1)
    init: str = param("latinhypercube", "initial population", choices=INITS)
    tol: float = param(0.0, "relative spread of the values that counts as converged", ge=0)
    atol: float = param(0.0, "absolute spread of the values that counts as converged", ge=0)
    xtol: float = param(
        1e-9, "population spread, times the box width, that counts as converged", ge=0
    )
    ftol: float = param(
        1e-4,
        "spread of the values, times the first generation's spread, that counts as converged",
        ge=0,
    )
    restart: bool = param(True, "start a new population on convergence, until the budget is spent")
    polish: bool = param(True, "L-BFGS-B from the best point after each convergence")

    def validate(self) -> None:
        if isinstance(self.mutation, list | tuple):  # stored as a tuple of floats
            object.__setattr__(self, "mutation", tuple(float(v) for v in self.mutation))

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        box_arrays(ctx, self.name)

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        lo, hi = box_arrays(ctx, self.name)
        # scipy stores member 0 (x0) rescaled to [0, 1] and rejects it when rounding puts a
        # coordinate on a bound just outside; it gets x0 nudged 1e-12 of the width inside. The
        # start point evaluated (first call below) is x0 itself.
        x0 = ctx.x0.detach().cpu().double().numpy()
        margin = 1e-12 * (hi - lo)
        x0_inside = np.clip(x0, lo + margin, hi - margin)
        first = True
        generation = 0

        def rows(a: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))
            return ctx.project(t.to(dtype=oracle.dtype, device=oracle.device))

        def population_values(x: np.ndarray) -> np.ndarray:
            # scipy passes the population as shape (d, S); the Oracle wants (S, d).
            nonlocal first
            X = rows(np.asarray(x).T)
            if not first:
                return oracle.values(X).cpu().double().numpy()
            first = False
            # Member 0 is x0, which scipy stores rescaled to [0, 1] (its last bits may
            # differ): evaluate the start point itself, alone, then the rest as one batch.
            f0 = oracle.values(ctx.x0[None, :])
            rest = oracle.values(X[1:])
            return torch.cat([f0, rest]).cpu().double().numpy()

        width = hi - lo
        limit = self.xtol * width
        spread0 = math.nan  # spread of the values of the current run's first generation

        def callback(intermediate_result: so.OptimizeResult) -> bool:
            nonlocal generation, spread0
            generation += 1
            if ctx.callback is not None:
                x = torch.as_tensor(np.array(intermediate_result.x))
                ctx.notify(oracle, generation, x, float(intermediate_result.fun))
            if self.ftol > 0:
                spread = _spread(intermediate_result.population_energies)
                if math.isnan(spread0):
                    spread0 = spread
                elif spread <= self.ftol * spread0:
                    return True
            if self.xtol <= 0:
                return False
            pop = intermediate_result.population
            return bool(np.all(np.ptp(pop, axis=0) <= limit))

        runs = 0
        while True:
            start = x0_inside if runs == 0 else None
            spread0 = math.nan
            res = self._run(population_values, callback, ctx, lo, hi, start)
            runs += 1
            info = {"generations": generation, "runs": runs}
            collapsed = str(res.message).startswith("callback")
            if not (res.success or collapsed):
                return Outcome(StopReason.METHOD_FAILED, str(res.message), info)
            if self.polish:
                _polish(oracle, rows, np.asarray(res.x, dtype=np.float64), lo, hi)
            message = "population collapsed" if collapsed else str(res.message)
            if not self.restart:
                return Outcome(StopReason.CONVERGED, message, info)

    def members_factor(self, lo: np.ndarray, hi: np.ndarray) -> int:
        """scipy's ``popsize`` (members per varying parameter): ``popsize``, by default
        ``max(5, ceil(16 / n))`` for ``n`` varying parameters (16 members at n = 2, 5 n from
        n = 4 on)."""
        if self.popsize is not None:
            return self.popsize
        n = max(1, int(np.count_nonzero(lo < hi)))
        return max(5, math.ceil(16 / n))

    def _run(
        self,
        population_values: Any,
        callback: Any,
        ctx: RunContext,
        lo: np.ndarray,
        hi: np.ndarray,
        x0: np.ndarray | None,
    ) -> so.OptimizeResult:
        """One scipy run from a new population (seeded by the run's stream), x0 in it if given."""
        with warnings.catch_warnings(), np.errstate(invalid="ignore", over="ignore"):
            # +inf values (non-finite objective) make scipy's convergence statistics inf/nan.
            warnings.simplefilter("ignore", RuntimeWarning)
            return so.differential_evolution(
                population_values,
                so.Bounds(lo, hi),
                strategy=self.strategy,
                maxiter=NO_LIMIT,
                popsize=self.members_factor(lo, hi),
                tol=self.tol,
                mutation=self.mutation,
                recombination=self.recombination,
                rng=ctx.rng,
                callback=callback,
                polish=False,
                init=self.init,
                atol=self.atol,
                updating="deferred",
                vectorized=True,
                x0=x0,
            )


class _NonFinite(Exception):
    """A polish probe had a non-finite value or difference quotient (ends the polish)."""


def _spread(values: np.ndarray) -> float:
    """Standard deviation of the finite ``values`` (NaN when fewer than two are finite):
    differences of values only, so a constant added to f leaves it unchanged."""
    finite = values[np.isfinite(values)]
    return float(np.std(finite)) if finite.size >= 2 else math.nan


def _polish(oracle: Evaluator, rows: Any, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """L-BFGS-B from ``x``: with the exact gradient when the objective has one, else forward
    differences (one batch of ``1 + d`` counted evaluations per gradient). Its relative
    ``ftol`` is off: it stops on the projected gradient, the line search or its iteration
    limit; and it sees f relative to the value at ``x`` (``Referenced``), so a constant added
    to f changes none of its numbers where f + c is exact."""
    exact = oracle.objective.has_gradient

    def fun_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
        if exact:
            f0, g = oracle.value_and_grad(rows(z[None, :])[0], stop_on_nonfinite=False)
        else:
            f, G = oracle.fd_values_and_grads(rows(z[None, :]))
            f0, g = float(f[0]), G[0]
        gn = g.detach().cpu().double().numpy()
        if not (math.isfinite(f0) and np.isfinite(gn).all()):
            raise _NonFinite
        return f0, gn

    maxiter = local_search_maxiter(x.size)
    with contextlib.suppress(_NonFinite):
        so.minimize(
            Referenced(fun_and_grad, x, jac=True),
            x,
            jac=True,
            method="L-BFGS-B",
            bounds=so.Bounds(lo, hi),
            options={
                "maxiter": maxiter * (x.size + 1) if exact else maxiter,
                "maxfun": NO_LIMIT,
                "ftol": 0.0,
                "gtol": GRAD_GTOL if exact else FD_GTOL,
            },
        )
