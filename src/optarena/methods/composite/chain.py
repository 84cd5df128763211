"""Chains: a global search, then a local polish of its best point(s), sharing one Budget.

``Chain("cmaes", "lbfgs")`` (or ``method="cmaes>lbfgs"``) runs each phase through a view of the
run's Oracle (:class:`PhaseOracle`): every evaluation is still counted once by the Oracle, but
a phase can be ended by the chain, when its share of the budget is spent (``switch``) or, by
default, when its best value has stopped improving (no relative improvement ``rtol`` over
``window`` evaluations) or the phase converged on its own. The last phase starts from the best
point found so far (or from each of the ``polish`` best distinct points). ``result.info`` says
which phase found the best point and which evaluations each phase spent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ...budget import StopReason
from ...core.oracle import Oracle, StopRun
from .._base import ExternalMethod, Method, Outcome, RunContext
from .._checks import is_number
from .._registry import method_infos, register, resolve_method

__all__ = [
    "Chain",
    "PhaseDone",
    "PhaseOracle",
    "choose_local",
    "run_in_view",
    "sub_context",
]

#: Local methods for the placeholder phase ``"local"``, in order of preference: the
#: evaluations each needed to reach mlp_identity's optimum from good starts (median: bfgs 27,
#: slsqp 55, lbfgsb and lbfgs over 180) and, without gradient, the derivative-free ones.
_LOCAL_PREFERENCE = ("bfgs", "slsqp", "lbfgsb", "lbfgs", "powell", "nelder_mead", "cobyla")


class PhaseDone(BaseException):
    """A phase (or one start of a multi-start) was ended through its view of the Oracle."""

    def __init__(self, why: str, view: PhaseOracle) -> None:
        super().__init__(why)
        self.why = why
        self.view = view


class PhaseOracle:
    """The run's Oracle as one phase sees it: same counting, plus a cap and a watch.

    ``cap`` limits the evaluations of this phase (the phase ends with :class:`PhaseDone` once
    they are spent, a last batch trimmed to what is left); ``watch(view)`` is called after every
    evaluation or batch and may end the phase too. ``best_x``/``best_f`` are this phase's own.
    Everything else (objective, history, constraints, budget, ...) is the Oracle's.
    """

    def __init__(
        self,
        oracle: Oracle,
        cap: int | None = None,
        watch: Callable[[PhaseOracle], None] | None = None,
    ) -> None:
        self.main = oracle
        self.cap = cap
        self.watch = watch
        self.start = oracle.nfev
        self.best_x: torch.Tensor | None = None
        self.best_f = math.inf
        self.last_f = math.nan
        self.first_f = math.inf  # value at the phase's start (best of its first batch)

    def __getattr__(self, name: str) -> Any:
        if name == "main":  # not set yet (copying): never recurse
            raise AttributeError(name)
        return getattr(self.main, name)

    @property
    def nfev(self) -> int:
        return self.main.nfev

    @property
    def used(self) -> int:
        """Evaluations spent by this phase."""
        return self.main.nfev - self.start

    def remaining_evals(self) -> int | None:
        left = self.main.remaining_evals()
        if self.cap is None:
            return left
        mine = self.cap - self.used
        return mine if left is None else min(mine, left)

    def _gate(self, n: int = 1) -> int:
        if self.cap is None:
            return n
        left = self.cap - self.used
        if left <= 0:
            raise PhaseDone("share", self)
        return min(n, left)

    def _keep(self, x: torch.Tensor, f: float) -> None:
        if math.isnan(self.last_f):  # the phase's first evaluation (or batch)
            self.first_f = f
        if f < self.best_f:
            self.best_f, self.best_x = f, x.detach().clone()
        self.last_f = f
        if self.watch is not None:
            self.watch(self)

    def value(self, x: Any) -> float:
        self._gate()
        xt = self.main.as_tensor(x)
        f = self.main.value(xt)
        self._keep(xt, f)
        return f

    def value_and_grad(
        self, x: Any, *, stop_on_nonfinite: bool = True
    ) -> tuple[float, torch.Tensor]:
        self._gate()
        xt = self.main.as_tensor(x)
        f, g = self.main.value_and_grad(xt, stop_on_nonfinite=stop_on_nonfinite)
        self._keep(xt, f)
        return f, g

    def values(self, X: Any) -> torch.Tensor:
        Xt = torch.as_tensor(X).detach().to(device=self.main.device, dtype=self.main.dtype)
        k = self._gate(Xt.shape[0]) if Xt.shape[0] else 0
        f = self.main.values(Xt[:k])
        if k:
            i = int(torch.argmin(f))
            self._keep(Xt[i], float(f[i]))
            self.last_f = float(f[-1])
        if k < Xt.shape[0]:
            raise PhaseDone("share", self)
        return f


#: How a method's own Outcome can end a whole composite run, not just its phase.
_ENDS_RUN = (StopReason.TARGET_REACHED, StopReason.CALLBACK, StopReason.INTERRUPTED)


def run_in_view(method: Method, view: PhaseOracle, sub: RunContext) -> str:
    """Run one phase through its view; returns how the phase ended.

    The phase's own end (its cap, its watch, a non-finite gradient) ends the phase only; an
    end of the whole run (budget, target, callback), even when a nested composite reported it
    as an Outcome, is raised again as StopRun so that the composite stops too.
    """
    try:
        out = method.run(view, sub)  # type: ignore[arg-type]
    except PhaseDone as done:
        if done.view is not view:
            raise  # an enclosing phase ended
        return done.why
    except StopRun as stop:
        if stop.reason is not StopReason.NON_FINITE:
            raise
        return stop.reason.value
    if out.reason.is_budget or out.reason in _ENDS_RUN:
        raise StopRun(out.reason, out.message)
    return out.reason.value


def sub_context(ctx: RunContext, x0: torch.Tensor, method: Method, salt: int) -> RunContext:
    """A RunContext for one phase: its start, the bounds when it supports them, its own seed."""
    bounded = method.info.supports_bounds
    return RunContext(
        x0=x0.detach().clone(),
        lower=ctx.lower if bounded else None,
        upper=ctx.upper if bounded else None,
        constraints=(),
        seed=(ctx.seed * 1_000_003 + salt) % (2**63),
        callback=ctx.callback,
    )


def choose_local(has_gradient: bool, bounded: bool) -> str:
    """The registered local method a ``"local"`` phase becomes for these facts (by flags)."""
    usable = {
        i.name
        for i in method_infos()
        if not i.is_global
        and not i.stochastic
        and i.family != "population"
        and (has_gradient or not i.needs_grad)
        and (not bounded or i.supports_bounds)
    }
    for name in _LOCAL_PREFERENCE:
        if name in usable:
            return name
    raise ValueError("no registered local method fits this problem")  # pragma: no cover


def check_phase(method: Method, ctx: RunContext, oracle: Oracle, role: str) -> None:
    """Refuse, before any evaluation, a phase that cannot run on this problem."""
    info = method.info
    if info.needs_grad and not oracle.objective.has_gradient:
        raise ValueError(
            f"the {role} {info.name!r} needs a gradient, but objective "
            f"{oracle.objective.name!r} has none (gradient={oracle.objective.gradient!r}); "
            "name a derivative-free method (e.g. 'powell', 'nelder_mead') or 'local', which "
            "picks one by itself"
        )
    if info.requires_bounds and not ctx.bounded:
        raise ValueError(f"the {role} {info.name!r} searches a box and needs bounds=(lower, upper)")
    if ctx.bounded and not info.supports_bounds:
        raise ValueError(
            f"the {role} {info.name!r} does not support bounds, and the chain never lets a "
            "phase leave the box; use one that does (e.g. 'lbfgs', 'slsqp', 'powell')"
        )
    method.check(ctx, oracle)


@register(
    "chain",
    family="external",
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
            without gradient is refused before any evaluation (never replaced silently).
        switch: fraction of the evaluation budget given to the phases before the last (split
            equally); ``None`` ends each of them when it stagnates or converges.
        window: evaluations without a relative improvement of ``rtol`` that end a phase
            (``None``: ``max(100, 20 * d)``).
        rtol: the relative improvement of the phase's best value that counts as progress.
        max_global: with ``switch=None``, the largest fraction of the budget the phases before
            the last may spend, so the polish always gets evaluations.
        polish: how many distinct best points the last phase starts from, one after another,
            sharing what is left of the budget.
    """

    phases: tuple[str | Method, ...]
    switch: float | None
    window: int | None
    rtol: float
    max_global: float
    polish: int

    def __init__(
        self,
        *phases: str | Method,
        switch: float | None = None,
        window: int | None = None,
        rtol: float = 1e-4,
        max_global: float = 0.8,
        polish: int = 1,
        **unknown: Any,
    ) -> None:
        if "phases" in unknown:
            if phases:
                raise TypeError("give the phases either positionally or as phases=, not both")
            phases = tuple(unknown.pop("phases"))
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)} for method 'chain'; its options are "
                "['max_global', 'phases', 'polish', 'rtol', 'switch', 'window']"
            )
        values = {
            "phases": tuple(phases) or ("cmaes", "local"),
            "switch": switch,
            "window": window,
            "rtol": rtol,
            "max_global": max_global,
            "polish": polish,
        }
        for k, v in values.items():
            object.__setattr__(self, k, v)
        self.__post_init__()

    def __post_init__(self) -> None:
        if len(self.phases) < 2:
            raise ValueError(f"a chain needs at least two phases, got {list(self.phases)}")
        for p in self.phases:
            if not isinstance(p, str | Method):
                raise TypeError(f"a phase is a method name or a Method instance, got {p!r}")
            if isinstance(p, str) and p != "local":
                resolve_method(p, {})  # unknown names fail here, with suggestions
        if self.switch is not None and not (is_number(self.switch) and 0 < self.switch < 1):
            raise ValueError(f"switch must be a fraction in (0, 1) or None, got {self.switch!r}")
        if self.window is not None and not (_int(self.window) and self.window > 0):
            raise ValueError(f"window must be a positive int or None, got {self.window!r}")
        if not (is_number(self.rtol) and self.rtol >= 0):
            raise ValueError(f"rtol must be a number >= 0, got {self.rtol!r}")
        if not (is_number(self.max_global) and 0 < self.max_global < 1):
            raise ValueError(f"max_global must be a fraction in (0, 1), got {self.max_global!r}")
        if not (_int(self.polish) and self.polish >= 1):
            raise ValueError(f"polish must be an int >= 1, got {self.polish!r}")

    @property
    def label(self) -> str:
        return ">".join(p.label if isinstance(p, Method) else p for p in self.phases)

    def resolved(self, oracle: Oracle, ctx: RunContext) -> list[Method]:
        """The phases as Method instances, ``"local"`` replaced for this objective."""
        out = []
        for p in self.phases:
            if p == "local":
                p = choose_local(oracle.objective.has_gradient, ctx.bounded)
            out.append(p if isinstance(p, Method) else resolve_method(p, {}))
        return out

    def check(self, ctx: RunContext, oracle: Oracle) -> None:
        phases = self.resolved(oracle, ctx)
        for i, m in enumerate(phases):
            role = "local phase" if i == len(phases) - 1 else f"phase {i + 1}"
            check_phase(m, ctx, oracle, role)

    # -- running ---------------------------------------------------------------------------
    def _watch(self, oracle: Oracle, n_global: int) -> Callable[[PhaseOracle], None]:
        """Ends a phase before the last: its share of a time budget, or (switch=None) when its
        best value made no relative progress of ``rtol`` in ``window`` evaluations."""
        window = self.window or max(100, 20 * oracle.dim)
        seconds = oracle.budget.seconds
        share = (self.switch if self.switch is not None else self.max_global) / n_global
        mark = {"f": math.inf, "at": 0, "t0": oracle.elapsed}

        def watch(view: PhaseOracle) -> None:
            if seconds is not None and oracle.elapsed - mark["t0"] >= share * seconds:
                raise PhaseDone("share", view)
            if self.switch is not None:
                return
            f, old = view.best_f, mark["f"]
            if f < old and (old == math.inf or f < old - self.rtol * abs(old)):
                mark["f"], mark["at"] = f, view.used
            elif view.used - mark["at"] >= window:
                raise PhaseDone("stagnated", view)

        return watch

    def _global_cap(self, oracle: Oracle, n_global: int) -> int | None:
        total = oracle.budget.evals
        if total is None:
            return None
        frac = self.switch / n_global if self.switch is not None else self.max_global / n_global
        return max(1, int(frac * total))

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        phases = self.resolved(oracle, ctx)
        record: list[dict[str, Any]] = []
        info: dict[str, Any] = {"phases": record}
        try:
            oracle.value(ctx.x0)  # the start: never returned worse, and the fallback polish
            for i, m in enumerate(phases[:-1]):
                n = len(phases) - 1
                view = PhaseOracle(oracle, self._global_cap(oracle, n), self._watch(oracle, n))
                best = oracle.best()[0]
                self._run_phase(m, view, sub_context(ctx, best, m, i + 1), record)
            local = phases[-1]
            starts = self._polish_starts(oracle)
            for j, x in enumerate(starts):
                left = oracle.remaining_evals()
                cap = None if left is None else max(1, left // (len(starts) - j))
                view = PhaseOracle(oracle, cap)
                self._run_phase(local, view, sub_context(ctx, x, local, 1000 + j), record)
        except StopRun as stop:
            _close(record, oracle, stop.reason.value)
            return Outcome(stop.reason, stop.message, self._info(info, oracle))
        return Outcome(StopReason.CONVERGED, "all phases ended", self._info(info, oracle))

    def _run_phase(
        self, m: Method, view: PhaseOracle, sub: RunContext, record: list[dict[str, Any]]
    ) -> None:
        record.append({"method": m.label, "first_eval": view.nfev + 1, "last_eval": None})
        _close(record, view.main, run_in_view(m, view, sub))

    def _polish_starts(self, oracle: Oracle) -> list[torch.Tensor]:
        best = oracle.best()[0]
        if self.polish == 1 or not oracle.history.has_x or len(oracle.history) == 0:
            return [best]
        return distinct_best(oracle.history.x, oracle.history.f, self.polish, oracle)

    def _info(self, info: dict[str, Any], oracle: Oracle) -> dict[str, Any]:
        at = oracle.best_eval
        phase = "start" if at == 1 else None
        for r in info["phases"]:
            if at is not None and r["first_eval"] <= at <= (r["last_eval"] or at):
                phase = r["method"]
        info["phase_of_best"] = phase
        return info


def distinct_best(
    xs: np.ndarray, fs: np.ndarray, k: int, oracle: Oracle, tol: float = 1e-3
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


def _close(record: list[dict[str, Any]], oracle: Oracle, ended: str) -> None:
    if record and record[-1]["last_eval"] is None:
        record[-1]["last_eval"] = oracle.nfev
        record[-1]["ended"] = ended


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
