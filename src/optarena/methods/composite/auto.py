"""``method="auto"``: a method chosen from the problem's facts, stated in ``result.info["auto"]``.

The facts are the ones a run knows before its first evaluation: whether the objective has a
gradient (``objective.has_gradient``; ``gradient="none"`` declares it non-differentiable),
whether it is noisy, the bounds, the constraints, the dimension and the budget. Candidates are
selected from the registry by their capability flags and the roles methods declare
(:func:`candidates`); among those that fit, the ranks the methods declare for a role
(measured on the SEEDS.md problems) decide. No method is named here: a method registered
later with a role's flags is a candidate at once.

The plans, in order of the rules that pick them:

0. a search space (``minimize(space=...)``) with integers or categoricals: a method of the
   ``mixed`` role, which models them natively (CatCMA: a categorical law learned jointly with
   the Gaussian) rather than searching their box encoding.
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
   or meaningless), CMA-ES with BIPOP restarts takes over. Past a share of the budget the races
   go on only while they progress, and never past ``RACE_PER_DIM`` evaluations per dimension;
   then the global search spends the rest (restarts). Above ``RACE_MAX_DIM`` no races: the
   global search alone. On a finite box with budget for it, one coordinate-wise sweep comes
   first (:mod:`._separable`): a separable function (separable Rastrigin) is solved there, a
   coupled one costs four evaluations.
5. a gradient and ``d > dense_max``: L-BFGS with strong-Wolfe line search from x0 (the start
   of a model's parameters carries its initialization), then batched L-BFGS cohorts.

Above ``linear_above`` parameters every gradient-free search (rules 2 and 4, the fallback and
the searches that spend what is left) is a method of the ``large_scale`` role, whose memory
and time per generation are linear in the dimension (a full covariance of 10^5 parameters
would need 80 GB); rule 4 is then that search alone, restarted from the best point while the
budget lasts, since dense difference quasi-Newton lanes are quadratic in memory too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ...budget import StopReason
from ...core.errors import StopRun
from ...core.evaluator import Evaluator
from ...core.scope import Scope, ScopeEnded
from .._base import ExternalMethod, Method, Outcome, RunContext
from .._params import param
from .._registry import Facts, MethodInfo, get_method_class, method_infos, register, resolve_method
from .._registry import candidates as role_candidates
from ._race_watch import progress_watch
from ._separable import separable_phase
from ._subrun import budget_left, check_inner, inner_facts, run_scoped, sub_context

__all__ = ["ROLES", "Auto", "Plan", "candidates"]

#: Share of the budget the difference-based races (rule 4) spend in any case; past it they go on
#: only while they progress (:func:`progress_watch`), else the global search takes the rest.
#: Their lanes reach 1e-5..1e-7 of the optimum of an ill-conditioned function within a few
#: hundred evaluations per dimension and then creep (bbob, d = 5); the share lets
#: mlp_identity's lanes (SEEDS.md, no gradient) cross their plateaus (1,020-1,190 of 2,000).
RACE_SHARE = 0.6
#: The window of that test, as a share of the budget, and the least progress it counts.
RACE_WINDOW, RACE_RTOL = 0.1, 1e-3
#: The races end after this many evaluations per dimension whatever their progress (about 300
#: forward-difference gradients shared by the lanes): lanes that still descend there creep
#: towards the optimum of an ill-conditioned function, where CMA-ES from their best point
#: finishes sooner (bbob d = 10: f6 1e-8 reached by none of 5 creeping runs, by all 5 with the
#: cap), and never below ``RACE_MIN_EVALS`` (at d = 2 the lanes' later progress pays).
#: Below ``RACE_SHARE`` of a budget of 2,000 at d = 10 (mlp_identity), it never binds.
RACE_PER_DIM, RACE_MIN_EVALS = 300, 1500
#: Above this dimension rule 4 runs no races: the global search from the best point spends
#: the budget. bbob, 1000 d evaluations, instances 1-5: at d = 20 the races lose 21 of 195
#: triples (f8-f10, f12, f17), at d = 10 they win 8 of 315 (f12, f16, f21, f22).
RACE_MAX_DIM = 10

#: The roles auto fills, and how (registry roles, or the flags of the batched lanes).
ROLES = {
    "constrained": "a method that handles the constraints itself (rule 1)",
    "global": "a gradient-free global search (rule 2, and the fallback of rule 4)",
    "dense_lanes": "a dense quasi-Newton method the batched lanes run (rules 3 and 4)",
    "limited_lanes": "a limited-memory quasi-Newton method the batched lanes run (rule 5)",
    "from_x0": "a limited-memory method run from x0 first (rule 5)",
    "restarts": "the composite that races cohorts of batched starts (rules 3 to 5)",
    "large_scale": "a linear-memory gradient-free search (every global search above "
    "linear_above parameters)",
    "mixed": "a search that models integers and categoricals natively (rule 0)",
}


def candidates(facts: Facts, role: str) -> list[str]:
    """The registered methods auto considers for ``role`` on a problem with ``facts``,
    preferred first: the registry's methods for that role that fit the facts (a global search
    is gradient-free whatever the objective offers), or for the lanes the methods flagged
    ``batched_lanes`` with that curvature model (the lanes keep to the box themselves)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} for auto; its roles: {sorted(ROLES)}")
    if role.endswith("_lanes"):
        kind = role.removesuffix("_lanes")
        need_grad = facts.has_gradient
        return [
            i.name
            for i in method_infos()
            if i.batched_lanes and i.quasi_newton == kind and (need_grad or not i.needs_grad)
        ]
    if role in ("global", "large_scale", "mixed"):
        facts = replace(facts, gradient="none")
    if role == "constrained":
        facts = replace(facts, constrained=True)
    return [i.name for i in role_candidates(role, facts)]


def _first(facts: Facts, role: str) -> MethodInfo:
    """The preferred registered method for ``role`` (ValueError when none fits)."""
    found = candidates(facts, role)
    if not found:
        raise ValueError(f"auto found no registered method for {ROLES[role]} on this problem")
    return get_method_class(found[0]).info


@dataclass(frozen=True)
class Plan:
    """What auto will run: a name for the result, the reason, and how to run it."""

    label: str
    reason: str
    run: Callable[[Evaluator, RunContext, dict[str, Any]], Outcome]
    first: Method | None = None  # the first method, checked before any evaluation


@register(
    "auto",
    family="composite",
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
            nothing better than the best point so far, by more than a thousandth of the
            spread of their starting values (``None``: 3 with a gradient, 1 with
            differences, whose lanes stall short of the optimum on ill-conditioned functions
            and leave the rest of the budget to the global search).
        linear_above: above this many parameters the gradient-free searches are
            linear-memory methods (the ``large_scale`` role) and rule 4 is such a search.
    """

    dense_max: int = param(200, ge=1)
    lanes: int | None = param(None, ge=2)
    race: int = param(5, ge=1)
    patience: int | None = param(None, ge=1)
    linear_above: int = param(1000, ge=1)

    # -- choosing ----------------------------------------------------------------------------
    def plan(self, oracle: Evaluator, ctx: RunContext) -> Plan:
        """The plan for this problem, decided from its facts before any evaluation."""
        obj, d = oracle.objective, oracle.dim
        grad = obj.gradient == "autograd"  # declared differences: the plan without gradient
        facts = inner_facts(oracle, ctx)
        discrete = [] if ctx.space is None else ctx.space.space.discrete
        if discrete and candidates(facts, "mixed"):
            why = (
                f"a search space with integer or categorical parameters ({', '.join(discrete)}):"
                " a method that models them natively"
            )
            return self._single(_first(facts, "mixed"), "mixed", why)
        if ctx.constraints:
            why = "constraints: a method that handles them natively" + (
                " with exact gradients and Jacobians" if obj.has_gradient else ", without gradient"
            )
            return self._single(_first(facts, "constrained"), "constrained", why)
        large = d > self.linear_above
        if obj.noisy or (large and not grad):
            why = (
                "noisy values: a population method, no differences of noise"
                if obj.noisy
                else f"no gradient, d={d} > {self.linear_above}: a linear-memory population "
                "method, restarted from the best point while the budget lasts"
            )
            plan = self._global(facts, why, d)
            method = plan.first
            assert method is not None

            def again(oracle: Evaluator, ctx: RunContext, info: dict[str, Any]) -> Outcome:
                out = method.run(oracle, ctx)
                if out.reason is StopReason.CONVERGED and budget_left(oracle):
                    return _rest(method, oracle, ctx, info)
                return out

            return replace(plan, run=again)
        if grad and d <= self.dense_max:
            return self._races(
                facts,
                f"gradient, d={d} <= {self.dense_max}: batched BFGS starts raced by "
                "successive halving, new cohorts while the budget lasts",
                sample=0,
                d=d,
            )
        if grad:
            return self._large(facts, d)
        return self._races(
            facts,
            "no gradient, values not noisy: forward-difference BFGS starts (best 8 of 64 "
            "sampled points) raced by successive halving; CMA-ES if differences make no progress",
            sample=64,
            d=d,
        )

    def _single(self, info: MethodInfo, role: str, why: str) -> Plan:
        method = resolve_method(info.name, info.options_for(role))

        def run(oracle: Evaluator, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            return method.run(oracle, ctx)

        return Plan(method.label, why, run, method)

    def _global(self, facts: Facts, why: str, d: int) -> Plan:
        """The global search: a linear-memory one above ``linear_above`` parameters (the
        ordinary global role when none is registered)."""
        if d > self.linear_above and candidates(facts, "large_scale"):
            return self._single(_first(facts, "large_scale"), "large_scale", why)
        return self._single(_first(facts, "global"), "global", why)

    def _races(self, facts: Facts, why: str, sample: int, d: int) -> Plan:
        fd = sample > 0
        lanes = self.lanes or (8 if fd else 16)
        fallback = self._global(facts, "", d) if fd else None
        rest = self._global(facts, "", d).first
        # the lanes run dense BFGS on differences too: their gradient comes from the probes
        local = _first(replace(facts, gradient="fd") if fd else facts, "dense_lanes").name
        restarts = get_method_class(_first(facts, "restarts").name)

        def cohort(k: int) -> Method:
            return restarts(
                local,
                starts=lanes,
                lanes=lanes,
                race=self.race,
                sample=sample,
                include_x0=k == 0,
                fd_gradient=fd,
                more_starts=False,
            )

        def run(oracle: Evaluator, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            patience = self.patience or (1 if fd else 3)
            left = oracle.budget.evals
            if fd:  # on a box: one coordinate-wise sweep first (a separable f ends there)
                separable_phase(oracle, ctx, info)
            if fd and left is not None and oracle.dim > RACE_MAX_DIM:
                info["races"] = f"none above d = {RACE_MAX_DIM}"
                out = Outcome(StopReason.CONVERGED, "no races")
            elif not fd or left is None:
                out = _cohorts(oracle, oracle, ctx, cohort, info, fallback, patience)
            else:  # difference lanes creep on ill-conditioned functions: a share of the budget
                view = Scope(oracle, watch=_races_watch(left - oracle.nfev, oracle.dim))
                try:
                    out = _cohorts(view, oracle, ctx, cohort, info, fallback, patience)
                except ScopeEnded as end:
                    if end.scope is not view:
                        raise
                    info["races"] = f"stopped after {view.used} evaluations: no more progress"
                    out = Outcome(StopReason.CONVERGED, "the raced starts stopped progressing")
            if out.reason is StopReason.CONVERGED and rest is not None and budget_left(oracle):
                return _rest(rest, oracle, ctx, info)
            return out

        if fd and rest is not None and d > RACE_MAX_DIM:
            why = (
                f"no gradient, values not noisy, d={d} > {RACE_MAX_DIM}: {rest.label} from the "
                "best point while the budget lasts (no difference races)"
            )
            return Plan(rest.label, why, run, rest)
        label = f"{restarts.info.name}({local}{', fd' if fd else ''}, race)"
        return Plan(label, why, run, cohort(0))

    def _large(self, facts: Facts, d: int) -> Plan:
        start = _first(facts, "from_x0")
        first = resolve_method(start.name, start.options_for("from_x0"))
        local = _first(facts, "limited_lanes").name
        restarts = get_method_class(_first(facts, "restarts").name)
        lanes = self.lanes or 4

        def cohort(k: int) -> Method:
            return restarts(local, starts=lanes, lanes=lanes, race=self.race, more_starts=False)

        def run(oracle: Evaluator, ctx: RunContext, info: dict[str, Any]) -> Outcome:
            _phase(first, oracle, ctx, 0)
            return _cohorts(oracle, oracle, ctx, cohort, info, None, self.patience or 3, salt=1)

        why = (
            f"gradient, d={d} > {self.dense_max}: L-BFGS (strong Wolfe) from x0, then raced "
            "restarts"
        )
        return Plan(f"{first.label}>{restarts.info.name}({local})", why, run, first)

    # -- running -------------------------------------------------------------------------------
    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        if ctx.resume is None:
            oracle.objective.probe(ctx.x0)  # a plain function's kind decides the plan
        plan = self.plan(oracle, ctx)
        if plan.first is not None:
            check_inner(plan.first, ctx, oracle, "chosen method")

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        plan = self.plan(oracle, ctx)
        info: dict[str, Any] = {"method": plan.label, "reason": plan.reason}
        try:
            out = plan.run(oracle, ctx, info)
        except StopRun as stop:
            out = Outcome(stop.reason, stop.message)
        key = self.info.name  # result.info[key] says what was chosen and why
        if "cohorts" in info:  # raced cohorts: their totals are in info; the last one apart
            return Outcome(out.reason, out.message, {key: {**info, "last_cohort": out.info}})
        return Outcome(out.reason, out.message, {**out.info, key: info})


def _phase(method: Method, oracle: Evaluator, ctx: RunContext, salt: int) -> None:
    """Run ``method`` from the best point so far (an end of the run is raised as StopRun)."""
    x = oracle.best()[0] if oracle.best_x is not None else ctx.x0
    run_scoped(method, Scope(oracle), sub_context(ctx, x, method, salt))


def _cohorts(
    view: Evaluator,
    oracle: Evaluator,
    ctx: RunContext,
    cohort: Callable[[int], Method],
    info: dict[str, Any],
    fallback: Plan | None,
    patience: int,
    salt: int = 0,
) -> Outcome:
    """Raced cohorts, evaluated through ``view`` (``oracle`` or a capped share of it), from new
    starts until ``patience`` cohorts in a row improve nothing (or the budget ends the run); a
    cohort that makes no progress over its own starting values hands the rest of the budget
    to ``fallback``."""
    k = stale = 0
    while stale < patience:
        before = oracle.best_f
        ms = cohort(k)
        out = ms.run(view, sub_context(ctx, ctx.x0, ms, salt + k))
        k += 1
        info["cohorts"] = k
        info["starts"] = info.get("starts", 0) + len(out.info.get("start_values") or [])
        if out.reason is not StopReason.CONVERGED:
            return out
        start = out.info.get("start_best", math.inf)
        end = min(out.info["start_values"] or [math.inf])
        spread = out.info.get("start_spread", 0.0)  # of the starts' values: offset-invariant
        if fallback is not None and not start - end > 1e-3 * spread:
            info["fallback"] = f"{fallback.label}: cohort {k} made no progress on its starts"
            out = fallback.run(oracle, sub_context(ctx, oracle.best()[0], ms, 10_000), info)
            if out.reason is StopReason.CONVERGED and fallback.first and budget_left(oracle):
                return _rest(fallback.first, oracle, ctx, info)
            return out
        gain = before - oracle.best_f  # inf when the first cohort found the first finite value
        stale = stale + 1 if not gain > 1e-3 * spread else 0
    return Outcome(StopReason.CONVERGED, f"{patience} cohorts in a row found nothing better")


def _races_watch(budget: int, dim: int) -> Callable[[Scope], None]:
    """The end of the races (:func:`progress_watch`) with this module's settings."""
    cap = max(RACE_PER_DIM * dim, RACE_MIN_EVALS)
    return progress_watch(budget, cap, RACE_SHARE, RACE_WINDOW, RACE_RTOL)


def _rest(method: Method, oracle: Evaluator, ctx: RunContext, info: dict[str, Any]) -> Outcome:
    """The plan ended with budget left: ``method`` (the global search) from the best point
    so far, again and again, until the budget is spent (an end of the run is raised)."""
    runs = 0
    while budget_left(oracle):
        before = oracle.nfev
        x = oracle.best()[0]
        run_scoped(method, Scope(oracle), sub_context(ctx, x, method, 20_000 + runs))
        runs += 1
        info["continued"] = f"{method.label} from the best point ({runs} runs)"
        if oracle.nfev == before:
            break  # a run that evaluates nothing would never end
    return Outcome(StopReason.CONVERGED, "the global search ended from the best point")
