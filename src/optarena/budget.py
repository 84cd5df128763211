"""Budgets in objective evaluations, gradient evaluations, seconds and a target value.

A budget is a hard limit enforced by the Objective, so it means the same for every method:
no method can spend more evaluations than it was given, whatever its notion of "iteration".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from enum import StrEnum

__all__ = ["DEFAULT_EVALS", "Budget", "StopReason", "limit_message"]

#: Evaluations allowed when the caller gives no budget at all (so no run loops forever).
DEFAULT_EVALS = 10_000


class StopReason(StrEnum):
    """Why a run ended. The value is a short, stable string used in stores and tables."""

    MAX_EVALS = "max_evals"
    MAX_GRAD_EVALS = "max_grad_evals"
    MAX_SECONDS = "max_seconds"
    TARGET_REACHED = "target_reached"
    CONVERGED = "converged"
    NON_FINITE = "non_finite"
    NO_FINITE_VALUE = "no_finite_value"
    CALLBACK = "callback"
    INTERRUPTED = "interrupted"
    ERROR = "error"
    METHOD_FAILED = "method_failed"

    @property
    def is_budget(self) -> bool:
        """True when the run ended because a limit of the Budget was reached."""
        return self in (StopReason.MAX_EVALS, StopReason.MAX_GRAD_EVALS, StopReason.MAX_SECONDS)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Budget:
    """Limits of one run; ``None`` means no limit of that kind.

    ``evals`` counts objective evaluations (a forward+backward pass is one evaluation and one
    gradient evaluation), ``grad_evals`` gradient evaluations, ``seconds`` wall time, and
    ``target`` stops the run as soon as a value ``<= target`` has been evaluated.

    ``seconds`` is checked before every evaluation and, inside a population batch, between
    chunks (vmap chunks, chunks of a declared ``batched`` function, points of the loop); a
    batch cut by the clock keeps and counts the rows done. One call of the function is never
    interrupted, and gradient batches and executor batches are checked only before they start.
    """

    evals: int | None = None
    grad_evals: int | None = None
    seconds: float | None = None
    target: float | None = None

    def __post_init__(self) -> None:
        for name in ("evals", "grad_evals"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"Budget.{name} must be an int or None, got {type(v).__name__}")
            if v <= 0:
                raise ValueError(f"Budget.{name} must be positive, got {v}; use None for no limit")
        if self.seconds is not None:
            if not isinstance(self.seconds, int | float) or isinstance(self.seconds, bool):
                raise TypeError(f"Budget.seconds must be a number, got {self.seconds!r}")
            if not self.seconds > 0:
                raise ValueError(f"Budget.seconds must be positive, got {self.seconds}")
        if self.target is not None and (
            not isinstance(self.target, int | float) or math.isnan(self.target)
        ):
            raise ValueError(f"Budget.target must be a number, got {self.target!r}")

    @property
    def unlimited(self) -> bool:
        """True when no limit at all is set (such a run could go on forever)."""
        return self.evals is None and self.grad_evals is None and self.seconds is None

    @classmethod
    def coerce(cls, budget: Budget | int | None) -> Budget:
        """Turn the ``budget=`` argument of public functions into a Budget.

        An int means evaluations; ``None`` means :data:`DEFAULT_EVALS` evaluations; a Budget
        with no limit of any kind gets the same default evaluation limit, so a run always ends.
        """
        if budget is None:
            return cls(evals=DEFAULT_EVALS)
        if isinstance(budget, bool):
            raise TypeError("budget must be an int (evaluations) or a Budget, not a bool")
        if isinstance(budget, int):
            if budget <= 0:
                raise ValueError(f"budget must be a positive number of evaluations, got {budget}")
            return cls(evals=budget)
        if isinstance(budget, cls):
            if budget.unlimited:
                return cls(evals=DEFAULT_EVALS, target=budget.target)
            return budget
        raise TypeError(
            f"budget must be an int (evaluations), a Budget or None, got {type(budget).__name__}"
        )

    def binding(self, uses_gradient: bool, method: str = "the method") -> Budget:
        """This budget made sure to end a run of a method: the one rule for minimize and specs.

        ``grad_evals`` counts gradient evaluations, which a method that needs no gradient may
        never make (random_search, cmaes, nelder_mead, ...; a composite only through its inner
        methods), so a budget whose only limit is ``grad_evals`` could let such a run go on
        forever. It then also gets the default cap of :data:`DEFAULT_EVALS` evaluations, with
        a warning naming the fix. ``uses_gradient``: the method needs a gradient (every
        evaluation it makes is then one with a gradient, so ``grad_evals`` binds it).
        """
        if uses_gradient or self.evals is not None or self.seconds is not None:
            return self
        if self.grad_evals is None:  # no limit at all: coerce() has capped it already
            return self
        warnings.warn(
            f"Budget(grad_evals={self.grad_evals}) alone cannot stop {method}, which needs no "
            f"gradient and may evaluate without one; it is also capped at {DEFAULT_EVALS} "
            "evaluations. Give Budget(evals=...) or seconds=... to choose the limit",
            RuntimeWarning,
            stacklevel=3,
        )
        return replace(self, evals=DEFAULT_EVALS)


def limit_message(
    budget: Budget, reason: StopReason, best_eval: int | None, held_back: int = 0
) -> str:
    """What a run that ended on a limit of ``budget`` or on its target says (else ""), so a
    Result never ends with an empty message: which limit, and when the best value was found
    (``held_back``: evaluations of ``budget`` kept from the method, named beside it)."""
    grads = budget.grad_evals
    held = f" ({held_back} held back)" if held_back else ""
    limits = {
        StopReason.MAX_EVALS: f"the budget of {budget.evals} evaluations is spent{held}",
        StopReason.MAX_GRAD_EVALS: f"the budget of {grads} gradient evaluations is spent",
        StopReason.MAX_SECONDS: f"the time budget of {budget.seconds} s is spent",
        StopReason.TARGET_REACHED: f"the target {budget.target} is reached",
    }
    text = limits.get(reason, "")
    if text and best_eval is not None:
        text += f"; best value found at evaluation {best_eval}"
    return text
