"""The end of auto's difference-based races: a share of the budget, then progress or nothing.

Kept apart from the plans so that auto's module holds the choosing and this one the rule.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ...core.scope import Scope, ScopeEnded

__all__ = ["progress_watch"]


def progress_watch(
    budget: int, cap: int, share: float, window: float, rtol: float
) -> Callable[[Scope], None]:
    """A Scope watch that ends the races (``ScopeEnded("stagnated")``) once they spent
    ``share`` of ``budget`` and their best value made no progress in the last ``window`` of
    it (shares of ``budget``), or once they spent ``cap`` evaluations. Progress is an
    improvement of more than ``rtol`` times the spread of the values seen since the last
    progress (as a chain's phases measure it): adding a constant to f changes nothing, and
    lanes still descending keep the budget they use well."""
    after, span = share * budget, max(1, window * budget)
    mark = {"f": math.inf, "at": 0, "hi": -math.inf}

    def watch(view: Scope) -> None:
        if view.used >= cap:
            raise ScopeEnded("stagnated", view)
        f, old = view.best_f, mark["f"]
        if math.isfinite(view.last_f):
            mark["hi"] = max(mark["hi"], view.last_f)
        if f < old and (old == math.inf or old - f > rtol * (mark["hi"] - f)):
            mark["f"], mark["at"], mark["hi"] = f, view.used, f
        elif view.used >= after and view.used - mark["at"] >= span:
            raise ScopeEnded("stagnated", view)

    return watch
