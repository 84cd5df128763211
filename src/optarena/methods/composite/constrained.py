"""Penalty and AugmentedLagrangian: any method, gradient-based or not, made a constrained one.

Each outer iteration runs the inner method on a merit function (quadratic penalty, or the
Powell-Hestenes-Rockafellar augmented Lagrangian, see ``_merit.py``) through a transformed
:class:`~optarena.core.scope.Scope` of the run's evaluator: every objective and constraint
evaluation is still counted once by the Oracle, the whole run shares one Budget, and the best
point is ranked by feasibility first, then by the true objective.

Without constraints there is nothing to wrap: the inner method runs alone, once, on the
objective. An inner run that diverges (a non-finite value or gradient) does not end the run:
that outer iteration is run again from its best point by a more cautious copy of the inner
method (a line search, a smaller step: see ``_subrun.cautious``).

A population inner method (cmaes, pso) starts each outer iteration afresh, its initial spread a
fraction of its box, so the box sets the scale of the search. As in pycma's
``ConstrainedFitnessAL`` (``cma/constraints_handler.py``), where one CMA-ES run goes on while
only the merit's coefficients change, a later run goes on from where the last one ended, at
the scale the search has reached, never with a step size of the whole box: it runs in a box
around the last point whose half-width shrinks by ``box_shrink`` per outer iteration and
grows back by ``1 / box_shrink`` when the last run ended at its box's side (a box shrinking
on a fixed schedule held the iterate 0.03 outside a half-space: f* = 21.33 reported as
26.8). After the first run (a tenth of the budget: a global search) each run gets 100
evaluations per dimension (50 for a penalty; at most that tenth), so a larger budget buys
more outer iterations (more multiplier updates, a larger penalty weight) instead of longer
runs at the same weights. pycma's per-generation multiplier and penalty adaptation (Atamna
et al. 2017) is not taken: it needs an inner method that ranks each generation afresh.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from ...budget import StopReason
from ...core.evaluator import Evaluator
from ...core.scope import DIVERGED, Scope, ScopeEnded, sub_seed
from .._base import ExternalMethod, GradientMethod, Method, Outcome, RunContext
from .._params import param
from .._registry import Facts, MethodInfo, get_method_class, register, resolve_method
from ._inner import WrapperInfo, default_inner
from ._merit import PHR, Quadratic
from ._subrun import (
    MAX_CAUTION,
    cautious,
    check_inner,
    check_with_kind,
    describe_caution,
    inner_facts,
    method_like,
    run_scoped,
    sub_context,
)

__all__ = ["AugmentedLagrangian", "Penalty", "default_inner"]
#: A run that moved this fraction of its box's half-width ended at the box's side.
EDGE = 0.9


def _mapping(value: Any) -> str | None:
    return None if isinstance(value, Mapping) else "must be a mapping of option names to values"


@dataclass(frozen=True)
class _Wrapper(ExternalMethod):
    """Shared outer loop: run the inner method on a merit function, update it, repeat."""

    #: Evaluations per dimension of a population inner run after the first (at least 100).
    later_share: ClassVar[int] = 100

    inner: str | Method | None = param(  # noqa: RUF009 (a declared option is a field)
        None,
        "the method run on the merit function (None: chosen by role for the problem)",
        check=method_like,
    )
    inner_options: Mapping[str, Any] = param(
        {}, "options of the inner method when it is given by name", check=_mapping
    )
    rho0: float = param(1.0, "the first penalty weight", gt=0)
    factor: float = param(2.0, "what rho is multiplied by after an outer iteration", ge=1)
    tol: float | None = param(None, "largest violation accepted (None: the constraints')", ge=0)
    inner_steps: int | None = param(None, "steps of a gradient inner method per outer", ge=1)
    inner_evals: int | None = param(None, "evaluation cap of each inner run", ge=1)
    keep_inner_state: bool = param(True, "carry a gradient method's state across outers")
    box_shrink: float | None = param(
        0.25, "factor on a population inner method's box half-width per outer", gt=0, le=1
    )
    max_outer: int = param(200, "most outer iterations", ge=1)

    def validate(self) -> None:
        inner = self.inner_method()
        if isinstance(inner, _Wrapper):
            raise ValueError("a constraint wrapper cannot wrap another one")
        # This instance is as stochastic, global and gradient-hungry as its inner method (so
        # benchmark runs use every seed and the box); its refusal names the inner method. An
        # inner method chosen for the problem needs no gradient: one without is chosen then.
        own = type(self).info
        named = None if self.inner is None else inner.info
        free = get_method_class(default_inner(Facts(gradient="none"))).info
        picks = [inner.info] if named is not None else [inner.info, free]
        flags = {f: getattr(own, f) for f in MethodInfo.__dataclass_fields__}
        flags.update(
            needs_grad=named is not None and named.needs_grad,
            stochastic=any(i.stochastic for i in picks),
            is_global=any(i.is_global for i in picks),
            requires_bounds=inner.info.requires_bounds,
        )
        spelled = f"optarena.{type(self).__name__}"
        info = WrapperInfo(**flags, own=own, inner=named, spelled=spelled)
        object.__setattr__(self, "info", info)

    def inner_method(self, facts: Facts | None = None) -> Method:
        """The inner method instance: the named one (with inner_options), else the one chosen
        by role for a problem with ``facts`` (default: an objective with a gradient)."""
        name = self.inner if self.inner is not None else default_inner(facts)
        return resolve_method(name, dict(self.inner_options))

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        depends = self.info.inner is None or self.info.inner.needs_grad
        check_with_kind(self._check, ctx, oracle, depends)  # the inner method may depend on it

    def _check(self, ctx: RunContext, oracle: Evaluator) -> None:
        inner = self.inner_method(inner_facts(oracle, ctx))
        check_inner(inner, ctx, oracle, "inner method")

    def _tol(self, oracle: Evaluator) -> float:
        if self.tol is not None:
            return self.tol
        items = oracle.constraints.items
        return min((c.tol for c in items), default=1e-8)

    def _inner_cap(self, inner: Method, oracle: Evaluator, outer: int) -> int | None:
        """Evaluations of one population inner run: a tenth of the budget for the first (a
        global search of the whole box), then at most ``later_share`` times the dimension (a
        run from the last point in its trust box), so a larger budget buys more outer
        iterations: more multiplier updates, a larger penalty weight, a finer box."""
        if self.inner_evals is not None:
            return self.inner_evals
        if inner.info.family != "population":  # they end on their own
            return None
        total = oracle.budget.evals
        first = max(100, total // 10) if total is not None else 1000
        return first if outer == 1 else min(first, max(100, self.later_share * oracle.dim))

    def _run_inner(
        self,
        inner: Method,
        view: Scope,
        ctx: RunContext,
        x: torch.Tensor,
        outer: int,
        kept: dict[str, Any],
    ) -> tuple[torch.Tensor, str]:
        """One inner run from ``x`` on the merit function; its best point and how it ended."""
        lower, upper = ctx.lower, ctx.upper
        radius = kept.get("radius")
        if radius is not None and lower is not None and upper is not None:
            half = (upper - lower) / 2 * radius
            lower = torch.maximum(lower, x - half)
            upper = torch.minimum(upper, x + half)
        sub = RunContext(
            x0=x.detach().clone(),
            lower=lower,
            upper=upper,
            constraints=(),
            seed=sub_seed(ctx.seed, outer),
        )
        try:
            if isinstance(inner, GradientMethod) and self.inner_steps is not None:
                # A fixed number of steps per outer iteration; with keep_inner_state the same
                # optimizer state (e.g. L-BFGS curvature pairs) carries on as the merit changes.
                state = kept.get("state") if self.keep_inner_state else None
                if state is None:
                    state = inner.init(sub.x0.clone(), view, sub)
                    kept["state"] = state
                else:  # what it cached belongs to the previous merit function
                    inner.rebase(state, view)
                for _ in range(self.inner_steps):
                    if inner.step(state, view, sub):
                        break
                x_now = getattr(state, "x", None)
                if x_now is not None:
                    return x_now.detach().clone(), "steps"
            else:
                inner.run(view, sub)
        except ScopeEnded as end:
            if end.scope is not view:
                raise  # an enclosing sub-run ended
            why = end.why
        else:
            why = "ended"
        return (x if view.best_x is None else view.best_x), why

    def _trust(
        self, inner: Method, ctx: RunContext, x_before: torch.Tensor, x: torch.Tensor, kept: dict
    ) -> None:
        """The box of a population inner method's next run, around its start: the last
        box times ``box_shrink`` (the search refines), or times ``1 / box_shrink`` when the
        last run ended at its box's side (the box held it back: the solution lies further)."""
        if self.box_shrink is None or inner.info.family != "population":
            return
        if ctx.lower is None or ctx.upper is None:
            return
        radius = kept.get("radius", 1.0)
        half = (ctx.upper - ctx.lower).double() / 2 * radius
        moved = (x - x_before).double().abs()
        inside = (x > ctx.lower) & (x < ctx.upper)  # the user's box is no trust box's side
        blocked = bool(((moved >= EDGE * half) & inside & (half > 0)).any())
        kept["radius"] = min(1.0, radius / self.box_shrink if blocked else radius * self.box_shrink)

    def _measure(self, oracle: Evaluator, x: torch.Tensor) -> tuple[list[torch.Tensor], float]:
        vals = oracle.constraint_values(x)
        raw, _ = oracle.constraints.excess(vals)
        return vals, raw

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        inner = self.inner_method(inner_facts(oracle, ctx))
        kinds = tuple(c.kind for c in oracle.constraints.items)
        if not kinds:
            return self._alone(inner, oracle, ctx)
        tol = self._tol(oracle)
        x = ctx.x0.detach().clone()
        merit = self._initial_merit(kinds, oracle, x)
        prev_f = math.inf
        kept: dict[str, Any] = {}
        restarts: list[str] = []
        outer = 0
        while outer < self.max_outer:
            outer += 1
            view = Scope(oracle, cap=self._inner_cap(inner, oracle, outer), transform=merit)
            x_before = x
            x, why = self._run_inner(inner, view, ctx, x, outer, kept)
            self._trust(inner, ctx, x_before, x, kept)
            safer = cautious(inner) if why == DIVERGED and len(restarts) < MAX_CAUTION else None
            if safer is not None:
                # the inner run diverged: the same outer iteration again, from its best
                # point, with a more cautious copy of the inner method (kept from now on)
                inner, kept, outer = safer, {}, outer - 1
                restarts.append(describe_caution(inner))
                continue
            vals, viol = self._measure(oracle, x)
            f = float(oracle.value(x)) if view.best_x is None else self._f_at(oracle, x)
            ctx.notify(oracle, outer, x, f)
            # a population run that found nothing better than its start (swarms evaluate
            # it) proves nothing about convergence: the next one searches a smaller box
            stuck = inner.info.family == "population" and bool(torch.equal(x, x_before))
            if viol <= tol and why != DIVERGED and not stuck and self._settled(f, prev_f, outer):
                return Outcome(
                    StopReason.CONVERGED,
                    f"violation {viol:.3g} <= {tol:.3g} after {outer} outer iterations",
                    _info({"outer_iterations": outer}, restarts),
                )
            merit = self._update(merit, vals, viol)
            prev_f = f
        return Outcome(
            StopReason.METHOD_FAILED,
            f"no feasible point after {self.max_outer} outer iterations",
            _info({"outer_iterations": self.max_outer}, restarts),
        )

    def _alone(self, inner: Method, oracle: Evaluator, ctx: RunContext) -> Outcome:
        """No constraints: the inner method runs once, alone, on the objective (its own
        stopping rule decides; a diverged run is restarted cautiously as in a wrapper)."""
        restarts: list[str] = []
        why = run_scoped(inner, Scope(oracle), sub_context(ctx, ctx.x0, inner, 1), restarts)
        reason = StopReason(why) if why in StopReason._value2member_map_ else StopReason.CONVERGED
        message = f"no constraints: the inner method {inner.label!r} ran alone ({why})"
        return Outcome(reason, message, _info({}, restarts))

    def _f_at(self, oracle: Evaluator, x: torch.Tensor) -> float:
        """The objective at the inner run's best point, taken from the History (no new call)."""
        if oracle.history.has_x:
            xs = oracle.history.x
            hit = np.flatnonzero((xs == x.detach().cpu().double().numpy()).all(axis=1))
            if hit.size:
                return float(oracle.history.f[hit[-1]])
        return float(oracle.value(x))

    # hooks
    def _initial_merit(self, kinds: tuple[str, ...], oracle: Evaluator, x0: torch.Tensor) -> Any:
        raise NotImplementedError

    def _update(self, merit: Any, vals: list[torch.Tensor], viol: float) -> Any:
        raise NotImplementedError

    def _settled(self, f: float, prev_f: float, outer: int) -> bool:
        return True


def _info(info: dict[str, Any], restarts: list[str]) -> dict[str, Any]:
    """``info`` with the cautious restarts of diverged inner runs, when there were any."""
    return {**info, "cautious_restarts": restarts} if restarts else info


@register(
    "penalty",
    family="composite",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
)
@dataclass(frozen=True)
class Penalty(_Wrapper):
    """Quadratic penalty f + rho * (sum max(0, -g)^2 + sum h^2) around any inner method.

    rho starts at ``rho0`` and is multiplied by ``factor`` after every outer iteration until
    the inner result's violation is at most ``tol`` (default: the constraints' tolerance) and
    the objective changed by at most ``ftol`` (relative) since the previous outer iteration;
    ``stop_on_feasible=True`` stops at the first feasible inner result, as the tutorial did.
    ``inner_steps`` limits each inner run of a gradient method to that many steps (the
    tutorial's one L-BFGS step per rho); ``inner_evals`` caps each inner run's evaluations
    (default for population methods: a tenth of the budget for the first, then 50 per
    dimension). Population inner methods search a box around the current point whose
    half-width is multiplied by ``box_shrink`` at each outer iteration, divided by
    it when the run ended at the box's side (see the module docstring; 0.25 measured best for
    pso and cmaes on flower_constrained: 0.5 left pso 1e-4 from f* after 5,000 evaluations).
    Only the number of doublings of rho brings the penalty's minimizer to the boundary, so
    its later runs are half an augmented Lagrangian's: with 100 per dimension, 2,000
    evaluations left cmaes up to 9e-4 (relative) from f* on a half-space and a disk, with 50
    at most 8e-5.
    """

    later_share: ClassVar[int] = 50

    stop_on_feasible: bool = param(False, "stop at the first feasible inner result")
    ftol: float = param(1e-10, "relative change of f that counts as settled", ge=0)

    def _initial_merit(
        self, kinds: tuple[str, ...], oracle: Evaluator, x0: torch.Tensor
    ) -> Quadratic:
        return Quadratic(kinds, self.rho0)

    def _settled(self, f: float, prev_f: float, outer: int) -> bool:
        # The tutorial stopped as soon as the penalty vanished (stop_on_feasible=True); by
        # default the objective must also have stopped moving, so a feasible but unfinished
        # inner run does not end the search.
        return self.stop_on_feasible or abs(f - prev_f) <= self.ftol * (1 + abs(f))

    def _update(self, merit: Quadratic, vals: list[torch.Tensor], viol: float) -> Quadratic:
        return Quadratic(merit.kinds, merit.rho * self.factor)


@register(
    "augmented_lagrangian",
    family="composite",
    needs_grad=False,
    supports_bounds=True,
    supports_constraints=True,
    roles={"constrained": 4},
)
@dataclass(frozen=True)
class AugmentedLagrangian(_Wrapper):
    """Augmented Lagrangian (PHR) around any inner method, with multiplier updates.

    Multipliers follow lambda <- max(0, lambda - rho g), mu <- mu + rho h after each inner
    run; rho grows by ``factor`` when the violation did not shrink below ``shrink`` times the
    previous one (Nocedal & Wright, Numerical Optimization, 2nd ed., Framework 17.3).
    """

    factor: float = param(10.0, "what rho is multiplied by when the violation stalls", ge=1)
    shrink: float = param(0.25, "the violation must shrink by this factor, else rho grows", gt=0)
    ftol: float = param(1e-10, "relative change of f that counts as settled", ge=0)

    def _initial_merit(self, kinds: tuple[str, ...], oracle: Evaluator, x0: torch.Tensor) -> PHR:
        sizes = [v.numel() for v in oracle.constraint_values(x0)]
        lam = [torch.zeros(m, dtype=torch.float64) for m in sizes]
        return PHR(kinds, self.rho0, lam)

    def _update(self, merit: PHR, vals: list[torch.Tensor], viol: float) -> PHR:
        lam = []
        for kind, v, l0 in zip(merit.kinds, vals, merit.lam, strict=True):
            v = v.double()
            lam.append(
                torch.clamp(l0 - merit.rho * v, min=0) if kind == "ineq" else l0 + merit.rho * v
            )
        rho = merit.rho * self.factor if viol > self.shrink * merit.prev_viol else merit.rho
        return PHR(merit.kinds, rho, lam, prev_viol=viol)

    def _settled(self, f: float, prev_f: float, outer: int) -> bool:
        return abs(f - prev_f) <= self.ftol * (1 + abs(f))
