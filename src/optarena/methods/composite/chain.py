"""Chains: a global search, then a local polish of its best point(s), sharing one Budget.

``Chain("cmaes", "lbfgs")`` (or ``method="cmaes>lbfgs"``) runs each phase through a
:class:`~optarena.core.scope.Scope` of the run's evaluator: every evaluation is still counted
once by the Oracle, but a phase can be ended by the chain, when its share of the budget is
spent (``switch``) or, by default, when its best value has stopped improving (no improvement of
``rtol`` times the spread of its recent values over ``window`` evaluations: invariant to adding
a constant to f) or the phase converged on its own. The last phase starts from the best point
found so far (or from each of the ``polish`` best distinct points). When it ends with budget
left, the chain goes back to global search (a fresh start in the box and the best point in
turn, the global phase then its polish) until the budget is spent (``info["rounds"]``).
``result.info`` says which phase found the best point and which evaluations each phase spent.
The placeholder phase ``"local"`` and the default first phase are chosen from the registry by
role (``"local"``, ``"global"``), never by name. A phase that diverges (a non-finite value or
gradient) is run again from its best point by a more cautious copy of its method
(``result.info["phases"][i]["cautious_restarts"]``); the chain says ``converged`` only when its
last phase ended on its own, not when the budget cut it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...budget import StopReason
from ...core.errors import StopRun
from ...core.evaluator import Evaluator
from ...core.scope import CAP_SPENT, DIVERGED, Scope, ScopeEnded
from .._base import ExternalMethod, Method, Outcome, RunContext
from .._params import declared_params, param
from .._registry import Facts, candidates, register, resolve_method
from ._starts import draw_starts
from ._subrun import (
    budget_end,
    budget_left,
    check_inner,
    check_with_kind,
    inner_facts,
    run_scoped,
    sub_context,
)

__all__ = ["Chain", "choose_local", "distinct_best"]

#: The placeholder phase: the best local method for the problem (registry role "local").
LOCAL = "local"


def choose_local(has_gradient: bool, bounded: bool) -> str:
    """The registered method a ``"local"`` phase becomes for these facts: the first of the
    registry's ``"local"`` role that fits."""
    facts = Facts(gradient="autograd" if has_gradient else "none", bounded=bounded)
    found = candidates("local", facts)
    if not found:
        raise ValueError("no registered local method fits this problem")
    return found[0].name


def _default_phases() -> tuple[str, ...]:
    """A global search (the registry's first ``"global"`` method, default options), then
    ``"local"``."""
    return (candidates("global", Facts(gradient="none"))[0].name, LOCAL)


def _is_tuple(value: Any) -> str | None:
    return None if isinstance(value, tuple) else "must be a tuple of method names or Methods"


@register(
    "chain",
    family="composite",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
)
@dataclass(frozen=True, init=False)
class Chain(ExternalMethod):
    """Global search then local polish (``"cmaes>lbfgs"``), one Budget for all phases.

    Args:
        *phases: registered names or Method instances, run in order; ``"local"`` stands for
            the best local method for the objective (exact-gradient quasi-Newton when it has a
            gradient, else a derivative-free one). A gradient method named for an objective
            without gradient is refused before the run (never replaced silently, never run on
            differences the user did not ask for); for a plain function, after the one counted
            call at x0 that tells a numpy function from a torch one.
        switch: fraction of the evaluation budget given to the phases before the last (split
            equally); ``None`` ends each of them when it stagnates or converges.
        window: evaluations without progress that end a phase (``None``: ``max(100, 20 * d)``).
        rtol: progress is an improvement of the phase's best value by more than ``rtol`` times
            the spread of the values seen since the last progress (never relative to ``|f|``).
        max_global: with ``switch=None``, the largest fraction of the budget the phases before
            the last may spend, so the polish always gets evaluations.
        polish: how many distinct best points the last phase starts from, one after another,
            sharing what is left of the budget.
    """

    phases: tuple[str | Method, ...] = param(
        (), "the methods run in order (empty: a global search, then 'local')", check=_is_tuple
    )
    switch: float | None = param(None, gt=0, lt=1)
    window: int | None = param(None, ge=1)
    rtol: float = param(1e-4, ge=0)
    max_global: float = param(0.8, gt=0, lt=1)
    polish: int = param(1, ge=1)

    def __init__(self, *phases: str | Method, **options: Any) -> None:
        if "phases" in options:
            if phases:
                raise TypeError("give the phases either positionally or as phases=, not both")
            given = options.pop("phases")
            phases = tuple(given) if isinstance(given, list | tuple) else given
        declared = {p.name: p.default for p in declared_params(type(self))}
        unknown = sorted(set(options) - set(declared))
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown} for method {self.info.name!r}; its options are "
                f"{sorted(declared)}"
            )
        if phases == ():
            phases = _default_phases()
        object.__setattr__(self, "phases", phases)
        for name, default in declared.items():
            if name != "phases":
                object.__setattr__(self, name, options.get(name, default))
        self.__post_init__()

    def validate(self) -> None:
        if len(self.phases) < 2:
            raise ValueError(
                f"a chain needs at least two phases, got {list(self.phases)}; to run one "
                "method, pass it as the method itself"
            )
        for p in self.phases:
            if not isinstance(p, str | Method):
                raise TypeError(f"a phase is a method name or a Method instance, got {p!r}")
            if isinstance(p, str) and p != LOCAL:
                resolve_method(p, {})  # unknown names fail here, with suggestions

    @property
    def label(self) -> str:
        return ">".join(p.label if isinstance(p, Method) else p for p in self.phases)

    def resolved(self, oracle: Evaluator, ctx: RunContext) -> list[Method]:
        """The phases as Method instances, ``"local"`` replaced for this objective."""
        out = []
        for p in self.phases:
            if p == LOCAL:
                p = choose_local(oracle.objective.has_gradient, ctx.bounded)
            out.append(p if isinstance(p, Method) else resolve_method(p, {}))
        return out

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        depends = any(  # a 'local' phase, or a phase needing a gradient, depends on the kind
            p == LOCAL or (p if isinstance(p, Method) else resolve_method(p, {})).info.needs_grad
            for p in self.phases
        )
        check_with_kind(self._check, ctx, oracle, depends)

    def _check(self, ctx: RunContext, oracle: Evaluator) -> None:
        phases = self.resolved(oracle, ctx)
        facts = inner_facts(oracle, ctx)
        for i, m in enumerate(phases):
            role = "local phase" if i == len(phases) - 1 else f"phase {i + 1}"
            written = [p if j != i else LOCAL for j, p in enumerate(self.phases)]
            spelled = ">".join(p.label if isinstance(p, Method) else p for p in written)
            hint = (
                f"; in a chain, the phase {LOCAL!r} picks a local method that fits by itself "
                f"(method={spelled!r}), and no phase ever leaves the box"
            )
            check_inner(m, ctx, oracle, role, hint, facts)

    # -- running ---------------------------------------------------------------------------
    def _watch(self, oracle: Evaluator, n_global: int) -> Callable[[Scope], None]:
        """Ends a phase before the last: its share of a time budget, or (switch=None) when its
        best value made no progress in ``window`` evaluations. Progress is an improvement of
        more than ``rtol`` times the spread of the values seen since the last progress (never
        relative to ``|f|``): adding a constant to f changes nothing, and a search converging
        linearly, whose values spread like its distance to the minimum, never stagnates."""
        window = self.window or max(100, 20 * oracle.dim)
        seconds = oracle.budget.seconds
        share = (self.switch if self.switch is not None else self.max_global) / n_global
        mark = {"f": math.inf, "at": 0, "hi": -math.inf, "t0": oracle.elapsed}

        def watch(view: Scope) -> None:
            if seconds is not None and oracle.elapsed - mark["t0"] >= share * seconds:
                raise ScopeEnded(CAP_SPENT, view)
            if self.switch is not None:
                return
            f, old = view.best_f, mark["f"]
            if math.isfinite(view.last_f):
                mark["hi"] = max(mark["hi"], view.last_f)
            if f < old and (old == math.inf or old - f > self.rtol * (mark["hi"] - f)):
                mark["f"], mark["at"], mark["hi"] = f, view.used, f
            elif view.used - mark["at"] >= window:
                raise ScopeEnded("stagnated", view)

        return watch

    def _global_cap(self, oracle: Evaluator, n_global: int, k: int = 0) -> int | None:
        """A phase before the last may spend its fraction of the budget (in later rounds, of
        what is left)."""
        total = oracle.budget.evals if k == 0 else oracle.remaining_evals()
        if total is None:
            return None
        frac = self.switch / n_global if self.switch is not None else self.max_global / n_global
        return max(1, int(frac * total))

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        phases = self.resolved(oracle, ctx)
        record: list[dict[str, Any]] = []
        info: dict[str, Any] = {"phases": record}
        try:
            oracle.value(ctx.x0)  # the start: never returned worse, and the fallback polish
            last = self._round(phases, oracle, ctx, record, 0, oracle.best()[0])
            rounds = 1
            while budget_left(oracle):
                # the polish ended with budget left: global search again, from a fresh point
                # (odd rounds) or the best one (even rounds), then its polish
                sub = sub_context(ctx, ctx.x0, phases[0], 2000 + rounds)
                fresh = rounds % 2 == 1 and sub.lower is not None and sub.upper is not None
                x = draw_starts(sub, 1, "uniform")[0] if fresh else oracle.best()[0]
                before = oracle.nfev
                last = self._round(phases, oracle, ctx, record, rounds, x)
                rounds += 1
                info["rounds"] = rounds
                if oracle.nfev == before:
                    break  # a round that evaluates nothing would never end
        except StopRun as stop:
            _close(record, oracle, stop.reason.value)
            return Outcome(stop.reason, stop.message, self._info(info, oracle))
        ends = [r["ended"] for r in record[len(record) - last :]]  # the last polish's runs
        spent = budget_end(oracle)
        if spent is not None and ends[-1] == CAP_SPENT:
            return Outcome(spent, "the budget ended the last phase", self._info(info, oracle))
        if all(e == DIVERGED for e in ends):
            return Outcome(
                StopReason.NON_FINITE,
                "the last phase diverged (a non-finite value or gradient) from every start",
                self._info(info, oracle),
            )
        return Outcome(StopReason.CONVERGED, "all phases ended", self._info(info, oracle))

    def _round(
        self,
        phases: list[Method],
        oracle: Evaluator,
        ctx: RunContext,
        record: list[dict[str, Any]],
        k: int,
        x: torch.Tensor,
    ) -> int:
        """The phases once (round ``k``), the first from ``x``; returns how many runs the
        last phase made (one per polish start)."""
        n = len(phases) - 1
        found: torch.Tensor | None = None
        for i, m in enumerate(phases[:-1]):
            view = Scope(oracle, cap=self._global_cap(oracle, n, k), watch=self._watch(oracle, n))
            later = x if i == 0 or found is None else found
            start = oracle.best()[0] if k == 0 else later
            self._run_phase(m, view, sub_context(ctx, start, m, i + 1 + 3000 * k), record)
            found = view.best_x
        local = phases[-1]
        starts = self._polish_starts(oracle) if k == 0 or found is None else [found]
        for j, s in enumerate(starts):
            left = oracle.remaining_evals()
            cap = None if left is None else max(1, left // (len(starts) - j))
            view = Scope(oracle, cap=cap)
            self._run_phase(local, view, sub_context(ctx, s, local, 1000 + j + 3000 * k), record)
        return len(starts)

    def _run_phase(
        self, m: Method, view: Scope, sub: RunContext, record: list[dict[str, Any]]
    ) -> None:
        record.append({"method": m.label, "first_eval": view.nfev + 1, "last_eval": None})
        restarts: list[str] = []
        try:
            ended = run_scoped(m, view, sub, restarts)
        finally:
            if restarts:
                record[-1]["cautious_restarts"] = restarts
        _close(record, view, ended)

    def _polish_starts(self, oracle: Evaluator) -> list[torch.Tensor]:
        best = oracle.best()[0]
        if self.polish == 1 or not oracle.history.has_x or len(oracle.history) == 0:
            return [best]
        return distinct_best(oracle.history.x, oracle.history.f, self.polish, oracle)

    def _info(self, info: dict[str, Any], oracle: Evaluator) -> dict[str, Any]:
        at = getattr(oracle, "best_eval", None)
        phase = "start" if at == 1 else None
        for r in info["phases"]:
            if at is not None and r["first_eval"] <= at <= (r["last_eval"] or at):
                phase = r["method"]
        info["phase_of_best"] = phase
        return info


def distinct_best(
    xs: np.ndarray, fs: np.ndarray, k: int, oracle: Evaluator, tol: float = 1e-3
) -> list[torch.Tensor]:
    """Up to ``k`` best evaluated points, each farther than ``tol`` (relative) from the others."""
    order = np.argsort(np.where(np.isfinite(fs), fs, np.inf), kind="stable")
    chosen: list[np.ndarray] = []
    for i in order:
        if not np.isfinite(fs[i]):
            break
        x = xs[i]
        scale = 1.0 + np.abs(x).max()
        if all(np.abs(x - c).max() > tol * scale for c in chosen):
            chosen.append(x)
            if len(chosen) == k:
                break
    return [oracle.as_tensor(np.array(c)) for c in chosen] or [oracle.best()[0]]


def _close(record: list[dict[str, Any]], oracle: Evaluator, ended: str) -> None:
    if record and record[-1]["last_eval"] is None:
        record[-1]["last_eval"] = oracle.nfev
        record[-1]["ended"] = ended
