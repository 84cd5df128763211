"""What every composite does with an inner method: check it, give it a context, run it in a Scope.

An inner method's capability check is :meth:`MethodInfo.refusal` with the facts of the problem
it will see (:func:`inner_facts`); its RunContext has its start, the box when it supports one
and its own seed (:func:`sub_context`); it runs through a :class:`Scope` of the run's evaluator
(:func:`run_scoped`), which tells the end of the sub-run from the end of the whole run.
"""

from __future__ import annotations

from typing import Any

import torch

from ...budget import StopReason
from ...core.errors import StopRun
from ...core.evaluator import Evaluator
from ...core.scope import Scope, ScopeEnded, sub_seed
from .._base import Method, RunContext
from .._registry import Facts

__all__ = ["check_inner", "inner_facts", "method_like", "run_scoped", "sub_context"]

#: How a method's own Outcome can end a whole composite run, not just its sub-run.
_ENDS_RUN = (StopReason.TARGET_REACHED, StopReason.CALLBACK, StopReason.INTERRUPTED)


def method_like(value: Any) -> str | None:
    """What is wrong with an inner-method option (a registered name or a Method instance)."""
    return None if isinstance(value, str | Method) else "must be a method name or a Method"


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
    )


def run_scoped(method: Method, scope: Scope, sub: RunContext) -> str:
    """Run ``method`` through ``scope``; returns how the sub-run ended.

    The sub-run's own end (its cap, its watch, a non-finite gradient) ends the sub-run only; an
    end of the whole run (budget, target, callback), even when a nested composite reported it
    as an Outcome, is raised again as StopRun so that the composite stops too.
    """
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
