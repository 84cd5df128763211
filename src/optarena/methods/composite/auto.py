"""``method="auto"``: a method chosen from the problem's facts, stated in ``result.info["auto"]``.

The facts are the ones a run knows before its first evaluation: whether the objective has a
gradient (``objective.has_gradient``; ``gradient="none"`` declares it non-differentiable),
whether it is noisy, the bounds, the constraints, the dimension and the budget. Candidates are
selected from the registry by their capability flags; among those that qualify, a short
preference order (measured on the SEEDS.md problems) decides.

The plans, in order of the rules that pick them:

1. constraints: a local method that handles them natively (SLSQP with exact gradients and
   Jacobians; COBYLA without gradient).
2. noisy values: CMA-ES with BIPOP restarts (differences of noisy values are noise).
3. a gradient and ``d <= dense_max``: cohorts of 16 batched BFGS starts raced by successive
   halving (:class:`MultiStart` with ``race=5``), repeated from new starts while budget lasts.
   On mlp_identity the starts bound for the global basin are ahead after five iterations, long
   before they converge (about half the starts fall into dead-ReLU basins).
4. no gradient, values not noisy: the same races with forward-difference gradients, 8 starts
   picked as the best of 64 sampled points; when a cohort makes no progress over its starting
   values (a piecewise-constant or otherwise non-smooth function, where differences are zero
   or meaningless), CMA-ES with BIPOP restarts takes over.
5. a gradient and ``d > dense_max``: L-BFGS with strong-Wolfe line search from x0 (the start
   of a model's parameters carries its initialization), then batched L-BFGS cohorts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...budget import StopReason
from ...core.oracle import Oracle, StopRun
from .._base import ExternalMethod, Method, Outcome, RunContext
from .._registry import MethodInfo, method_infos, register, resolve_method
from .chain import PhaseOracle, check_phase, run_in_view, sub_context
from .multistart import MultiStart

__all__ = ["Auto", "Plan"]

# Preference orders among the methods that the flags allow (first present wins).
_CONSTRAINED = ("slsqp", "trust_constr", "cobyla", "augmented_lagrangian")
_GLOBAL_FREE = ("cmaes", "differential_evolution", "pso", "dual_annealing")


@dataclass(frozen=True)
class Plan:
    """What auto will run: a name for the result, the reason, and how to run it."""

    label: str
    reason: str
    run: Callable[[Oracle, RunContext, dict[str, Any]], Outcome]
    first: Method | None = None  # the first method, checked before any evaluation


def _pick(ok: Callable[[MethodInfo], bool], preference: tuple[str, ...]) -> str | None:
    """The first name of ``preference`` whose registry flags satisfy ``ok``."""
    usable = {i.name for i in method_infos() if ok(i)}
    return next((n for n in preference if n in usable), None)


@register(
    "auto",
    family="external",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
    stochastic=True,
    is_global=True,
)
@dataclass(frozen=True)
class Auto(ExternalMethod):
    """A method chosen from the problem's facts and the registry's flags (no tuning).

    Args:
        dense_max: largest dimension for the dense (batched BFGS) plans; above it, L-BFGS.
        lanes: starts per raced cohort (``None``: 16 with a gradient, 8 with differences).
        race: rounds before the first halving of a cohort.
        patience: the raced plans end (converged) after this many cohorts in a row found
            nothing better than the best point so far.
    """

    dense_max: int = 200
    lanes: int | None = None
    race: int = 5
    patience: int = 3

    def __post_init__(self) -> None:
        for k in ("dense_max", "race", "patience"):
            v = getattr(self, k)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{k} must be an int >= 1, got {v!r}")
        if self.lanes is not None and not (
            isinstance(self.lanes, int) and not isinstance(self.lanes, bool) and self.lanes >= 2
        ):
            raise ValueError(f"lanes must be an int >= 2 or None, got {self.lanes!r}")

    # -- choosing ----------------------------------------------------------------------------
    def plan(self, oracle: Oracle, ctx: RunContext) -> Plan:
        """The plan for this problem, decided from its facts before any evaluation."""
        obj, d = oracle.objective, oracle.dim
        grad = obj.has_gradient
        if ctx.constraints:
            name = _pick(
                lambda i: (
                    i.supports_constraints
                    and (grad or not i.needs_grad)
                    and (not ctx.bounded or i.supports_bounds)
                    and i.name != self.info.name
                ),
                _CONSTRAINED,
            )
            assert name is not None
            why = "constraints: a method that handles them natively" + (
                " with exact gradients and Jacobians" if grad else ", without gradient"
            )
            return self._single(name, why)
        if obj.noisy:
            return self._global("noisy values: a population method, no differences of noise")
        if grad and d <= self.dense_max:
            return self._races(
                "bfgs",
                f"gradient, d={d} <= {self.dense_max}: batched BFGS starts raced by "
                "successive halving, new cohorts while the budget lasts",
                sample=0,
            )
        if grad:
            return self._large(d)
        return self._races(
            "bfgs",
            "no gradient, values not noisy: forward-difference BFGS starts (best 8 of 64 "
            "sampled points) raced by successive halving; CMA-ES if differences make no progress",
            sample=64,
        )

    def _single(self, name: str, why: str) -> Plan:
        method = resolve_method(name, {})

        def run(oracle: Oracle, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            return method.run(oracle, ctx)

        return Plan(method.label, why, run, method)

    def _global(self, why: str) -> Plan:
        name = _pick(lambda i: i.is_global and not i.needs_grad, _GLOBAL_FREE)
        assert name is not None
        options = {"restarts": "bipop"} if name == "cmaes" else {}
        method = resolve_method(name, options)

        def run(oracle: Oracle, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            return method.run(oracle, ctx)

        return Plan(method.label, why, run, method)

    def _races(self, local: str, why: str, sample: int) -> Plan:
        fd = sample > 0
        lanes = self.lanes or (8 if fd else 16)
        fallback = self._global("") if fd else None

        def cohort(k: int) -> MultiStart:
            return MultiStart(
                local,
                starts=lanes,
                lanes=lanes,
                race=self.race,
                sample=sample,
                include_x0=k == 0,
                fd_gradient=fd,
            )

        def run(oracle: Oracle, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            return _cohorts(oracle, ctx, cohort, info, fallback, self.patience)

        label = f"multistart({local}{', fd' if fd else ''}, race)"
        return Plan(label, why, run, cohort(0))

    def _large(self, d: int) -> Plan:
        first = resolve_method("lbfgs", {"line_search": "strong_wolfe"})
        lanes = self.lanes or 4

        def cohort(k: int) -> MultiStart:
            return MultiStart("lbfgs", starts=lanes, lanes=lanes, race=self.race)

        def run(oracle: Oracle, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            _phase(first, oracle, ctx, 0)
            return _cohorts(oracle, ctx, cohort, info, None, self.patience, salt=1)

        why = (
            f"gradient, d={d} > {self.dense_max}: L-BFGS (strong Wolfe) from x0, then raced "
            "restarts"
        )
        return Plan("lbfgs>multistart(lbfgs)", why, run, first)

    # -- running -------------------------------------------------------------------------------
    def check(self, ctx: RunContext, oracle: Oracle) -> None:
        plan = self.plan(oracle, ctx)
        if plan.first is not None:
            check_phase(plan.first, ctx, oracle, "chosen method")

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        plan = self.plan(oracle, ctx)
        info: dict[str, Any] = {"method": plan.label, "reason": plan.reason}
        try:
            out = plan.run(oracle, ctx, info)
        except StopRun as stop:
            out = Outcome(stop.reason, stop.message)
        if "cohorts" in info:  # raced cohorts: their totals are in info; the last one apart
            return Outcome(out.reason, out.message, {"auto": {**info, "last_cohort": out.info}})
        return Outcome(out.reason, out.message, {**out.info, "auto": info})


def _phase(method: Method, oracle: Oracle, ctx: RunContext, salt: int) -> None:
    """Run ``method`` from the best point so far (an end of the run is raised as StopRun)."""
    x = oracle.best()[0] if oracle.best_x is not None else ctx.x0
    run_in_view(method, PhaseOracle(oracle), sub_context(ctx, x, method, salt))


def _cohorts(
    oracle: Oracle,
    ctx: RunContext,
    cohort: Callable[[int], MultiStart],
    info: dict[str, Any],
    fallback: Plan | None,
    patience: int,
    salt: int = 0,
) -> Outcome:
    """Raced cohorts from new starts until ``patience`` cohorts in a row improve nothing (or
    the budget ends the run); a cohort that makes no progress over its own starting values
    hands the rest of the budget to ``fallback``."""
    k = stale = 0
    while stale < patience:
        before = oracle.best_f
        ms = cohort(k)
        out = ms.run(oracle, sub_context(ctx, ctx.x0, ms, salt + k))
        k += 1
        info["cohorts"] = k
        info["starts"] = info.get("starts", 0) + len(out.info.get("start_values") or [])
        if out.reason is not StopReason.CONVERGED:
            return out
        start = out.info.get("start_best", math.inf)
        end = min(out.info["start_values"] or [math.inf])
        if fallback is not None and not end < start - 1e-3 * abs(start):
            info["fallback"] = f"{fallback.label}: cohort {k} made no progress on its starts"
            return fallback.run(oracle, sub_context(ctx, oracle.best()[0], ms, 10_000), info)
        stale = stale + 1 if not oracle.best_f < before else 0
    return Outcome(StopReason.CONVERGED, f"{patience} cohorts in a row found nothing better")
