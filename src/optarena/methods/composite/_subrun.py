"""What every composite does with an inner method: check it, give it a context, run it in a Scope.

An inner method's capability check is :meth:`MethodInfo.refusal` with the facts of the problem
it will see (:func:`inner_facts`); its RunContext has its start, the box when it supports one
and its own seed (:func:`sub_context`); it runs through a :class:`Scope` of the run's evaluator
(:func:`run_scoped`), which tells the end of the sub-run from the end of the whole run. A sub-run
that diverges (a non-finite value or gradient) is run again from its best point by a more
cautious copy of its method (:func:`cautious`), read from the method's declared options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from ...budget import StopReason
from ...core.errors import StopRun
from ...core.evaluator import Evaluator
from ...core.scope import DIVERGED, Scope, ScopeEnded, sub_seed
from .._base import Method, RunContext
from .._registry import Facts

__all__ = [
    "MAX_CAUTION",
    "budget_end",
    "budget_left",
    "cautious",
    "check_inner",
    "check_with_kind",
    "describe_caution",
    "inner_facts",
    "method_like",
    "run_scoped",
    "sub_context",
]

#: How a method's own Outcome can end a whole composite run, not just its sub-run.
_ENDS_RUN = (StopReason.TARGET_REACHED, StopReason.CALLBACK, StopReason.INTERRUPTED)
#: Most cautious restarts of one diverged sub-run (each a step size ten times smaller).
MAX_CAUTION = 3
#: What a cautious copy divides a declared step size by.
_STEP_CUT = 10.0
#: The declared options a cautious copy may change: a line search, then the step size.
_CAUTION_OPTIONS = ("line_search", "lr")


def method_like(value: Any) -> str | None:
    """What is wrong with an inner-method option (a registered name or a Method instance)."""
    return None if isinstance(value, str | Method) else "must be a method name or a Method"


def check_with_kind(
    check: Callable[[RunContext, Evaluator], None],
    ctx: RunContext,
    evaluator: Evaluator,
    depends: bool = True,
) -> None:
    """Run a composite's ``check`` before any call, then, for a plain function whose kind is
    still unknown (torch or numpy; with an autograd gradient or not), again once its first call
    at x0 has told it: the inner methods a composite chooses, and whether they fit, depend on
    it. The first pass refuses what no kind would fix (a box, constraints) without calling the
    function; the call is the run's first evaluation, counted (as ``minimize`` does for a
    method that needs a gradient). ``depends=False`` (every inner method named and none
    needing a gradient) makes no call: the run then starts exactly as its inner method's."""
    check(ctx, evaluator)
    obj = evaluator.objective
    if obj.decided or not depends:
        return
    left = evaluator.remaining_evals()
    obj.probe(ctx.x0, retry=left is None or left > 1)
    check(ctx, evaluator)


def inner_facts(evaluator: Evaluator, ctx: RunContext, *, bounded: bool | None = None) -> Facts:
    """The facts an inner method sees: the objective's gradient and the box (its constraints,
    if any, are the composite's business; workers are the run's, not the inner method's)."""
    obj = evaluator.objective
    return Facts(
        gradient=obj.gradient,
        bounded=ctx.bounded if bounded is None else bounded,
        subject=f"objective {obj.name!r}",
    )


def check_inner(
    method: Method,
    ctx: RunContext,
    evaluator: Evaluator,
    role: str,
    hint: str = "",
    facts: Facts | None = None,
) -> None:
    """Refuse, before any evaluation, an inner method that cannot run on this problem (the
    registry's one capability check, then the method's own ``check``)."""
    reason = method.info.refusal(facts or inner_facts(evaluator, ctx), role=role)
    if reason is not None:
        raise ValueError(reason + hint)
    method.check(ctx, evaluator)


def sub_context(ctx: RunContext, x0: torch.Tensor, method: Method, salt: int) -> RunContext:
    """A RunContext for one sub-run: its start, the bounds when the method supports them, its
    own seed (:func:`~optarena.core.scope.sub_seed`) and the run's callback."""
    bounded = method.info.supports_bounds
    return RunContext(
        x0=x0.detach().clone(),
        lower=ctx.lower if bounded else None,
        upper=ctx.upper if bounded else None,
        constraints=(),
        seed=sub_seed(ctx.seed, salt),
        callback=ctx.callback,
        phase=method.label if ctx.phase is None else f"{ctx.phase}: {method.label}",
        space=ctx.space,
    )


def cautious(method: Method) -> Method | None:
    """A copy of ``method`` that takes shorter, safer steps, from its declared options: a line
    search where it offers one and runs without (option ``line_search``), else its step size
    (option ``lr``) divided by 10; None when it declares neither (no safer variant exists)."""
    declared = {p.name: p for p in method.info.options}
    change: dict[str, Any] = {}
    search = declared.get("line_search")
    if search is not None and getattr(method, "line_search", None) is None:
        safer = [c for c in search.choices or () if c is not None]
        if safer:
            change["line_search"] = safer[0]
    step = declared.get("lr")
    if not change and step is not None and isinstance(getattr(method, "lr", None), int | float):
        smaller = method.lr / _STEP_CUT  # type: ignore[attr-defined]
        if step.problem(smaller) is None:
            change["lr"] = smaller
    return dataclasses.replace(method, **change) if change else None  # type: ignore[type-var]


def budget_end(evaluator: Evaluator) -> StopReason | None:
    """The limit of the run's Budget that is spent, if any (a sub-run ended by its share of
    the budget then ended the run: the composite must not call that convergence)."""
    left = evaluator.remaining_evals()
    if left is not None and left <= 0:
        return StopReason.MAX_EVALS
    b = evaluator.budget
    if b.grad_evals is not None and evaluator.ngev >= b.grad_evals:
        return StopReason.MAX_GRAD_EVALS
    if b.seconds is not None and evaluator.elapsed >= b.seconds:
        return StopReason.MAX_SECONDS
    return None


def budget_left(evaluator: Evaluator) -> bool:
    """Whether a composite should go on searching with what is left: the run has a limit of
    evaluations or seconds, some of it is left, and ``evaluator`` is the run's own or a capped
    share of it (an uncapped sub-run, one iteration of a penalty method, returns to its
    composite, which decides what follows)."""
    b = evaluator.budget
    if b.evals is None and b.seconds is None:
        return False
    if isinstance(evaluator, Scope) and evaluator.cap is None:
        return False
    return budget_end(evaluator) is None


def run_scoped(
    method: Method, scope: Scope, sub: RunContext, restarts: list[str] | None = None
) -> str:
    """Run ``method`` through ``scope``; returns how the sub-run ended.

    The sub-run's own end (its cap, its watch, a non-finite gradient) ends the sub-run only; an
    end of the whole run (budget, target, callback), even when a nested composite reported it
    as an Outcome, is raised again as StopRun so that the composite stops too. A sub-run that
    diverged is run again in the same Scope (its cap and watch go on) from its best point by
    :func:`cautious` copies of the method, at most :data:`MAX_CAUTION` times; the label of each
    copy is appended to ``restarts``.
    """
    why = _run_once(method, scope, sub)
    for attempt in range(1, MAX_CAUTION + 1):
        if why != DIVERGED:
            return why
        safer = cautious(method)
        if safer is None:
            return why
        method = safer
        if restarts is not None:
            restarts.append(describe_caution(method))
        x = scope.best_x if scope.best_x is not None else sub.x0
        again = RunContext(
            x0=x.detach().clone(),
            lower=sub.lower,
            upper=sub.upper,
            constraints=sub.constraints,
            seed=sub_seed(sub.seed, attempt),
            callback=sub.callback,
            phase=sub.phase,
            space=sub.space,
        )
        why = _run_once(method, scope, again)
    return why


def describe_caution(method: Method) -> str:
    """``label(option=value, ...)`` with the options a cautious copy may have changed."""
    shown = [f"{k}={getattr(method, k)!r}" for k in _CAUTION_OPTIONS if hasattr(method, k)]
    return f"{method.label}({', '.join(shown)})"


def _run_once(method: Method, scope: Scope, sub: RunContext) -> str:
    try:
        out = method.run(scope, sub)
    except ScopeEnded as end:
        if end.scope is not scope:
            raise  # an enclosing sub-run ended
        return end.why
    except StopRun as stop:
        if stop.reason is not StopReason.NON_FINITE:
            raise
        return stop.reason.value
    if out.reason.is_budget or out.reason in _ENDS_RUN:
        raise StopRun(out.reason, out.message)
    return out.reason.value
