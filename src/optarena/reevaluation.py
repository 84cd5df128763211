"""The final estimate of a noisy run: the evaluations held back from the method's budget and
the re-evaluation of the best candidates that values the Result (``minimize(reevaluate=)``;
:mod:`optarena.core.noise` says how the point is chosen)."""

from __future__ import annotations

import dataclasses
import math

from .budget import Budget, StopReason, limit_message
from .core.errors import ObjectiveError, StopRun
from .core.noise import default_reevaluations, reevaluate_best, reserve
from .core.objective import Objective
from .core.oracle import Oracle
from .result import Result

__all__ = ["held_back", "reevaluations", "settle"]


def reevaluations(reevaluate: int | None, obj: Objective, bud: Budget) -> int:
    """Re-evaluations per point for the final estimate (``minimize(reevaluate=)``), checked
    against the budget before any evaluation."""
    if reevaluate is None:
        return default_reevaluations(bud.evals) if obj.noisy else 0
    if isinstance(reevaluate, bool) or not isinstance(reevaluate, int) or reevaluate < 0:
        raise ValueError(f"reevaluate must be an int >= 0 or None, got {reevaluate!r}")
    if bud.evals is not None and reserve(reevaluate) >= bud.evals:
        raise ValueError(
            f"reevaluate={reevaluate} holds back {reserve(reevaluate)} evaluations (4 per "
            f"re-evaluation), which leaves none of the budget of {bud.evals} to the method: "
            "give a larger budget or a smaller reevaluate"
        )
    return reevaluate


def held_back(bud: Budget, k: int) -> Budget:
    """The method's budget: the user's, less the evaluations reserved for re-evaluation."""
    if k == 0 or bud.evals is None:
        return bud
    return dataclasses.replace(bud, evals=bud.evals - reserve(k))


def settle(result: Result, oracle: Oracle, full: Budget, k: int, default: bool = False) -> Result:
    """A noisy run's Result with its best point chosen and valued by re-evaluation (see
    :mod:`optarena.core.noise`); other runs' Results unchanged. Skipped after an interruption
    or when no finite value was seen. ``default``: ``k`` is the default for the budget (a
    noisy run that gets none says why)."""
    if k == 0:
        if not (default and getattr(oracle.objective, "noisy", False)):
            return result
        why = "the budget is too small to hold back re-evaluations (reevaluate= sets them)"
        note = {"reevaluations": 0, "raw_best": result.fun, "skipped": why}
        message = result.message + "; " if result.message else ""
        message += "fun is the luckiest raw sample of a noisy objective: " + why
        return dataclasses.replace(result, message=message, info={**result.info, "noise": note})
    if result.stop_reason in (StopReason.INTERRUPTED, StopReason.CALLBACK) or (
        oracle.best_x is None
    ):
        note = {"reevaluations": 0, "raw_best": result.fun, "skipped": str(result.stop_reason)}
        return dataclasses.replace(result, info={**result.info, "noise": note})
    oracle.budget = Budget(evals=full.evals)  # the reserve; no clock or target for it
    try:
        est = reevaluate_best(oracle, k)
    except ObjectiveError as err:
        err.result = result
        raise
    except (StopRun, KeyboardInterrupt):
        est = None
    if est is None:
        note = {"reevaluations": 0, "raw_best": result.fun, "skipped": "re-evaluation stopped"}
        return dataclasses.replace(result, info={**result.info, "noise": note})
    violation = result.max_violation
    feasible = result.feasible
    if oracle.constraints:
        raw, beyond = oracle.constraints.excess(oracle.constraint_values(est.x))
        violation, feasible = raw, beyond <= 0
    message = result.message + "; " if result.message else ""
    if result.stop_reason is StopReason.MAX_EVALS and full.evals is not None:
        method_part = limit_message(held_back(full, k), result.stop_reason, None)
        whole = limit_message(full, result.stop_reason, None, reserve(k))
        message = message.replace(method_part, whole, 1)
    message += f"value averaged over {k} re-evaluations of the best point (noisy objective)"
    return dataclasses.replace(
        result,
        x=est.x,
        fun=est.fun if math.isfinite(est.fun) else math.inf,
        nfev=oracle.nfev,
        ngev=oracle.ngev,
        ncev=oracle.ncev,
        elapsed=oracle.elapsed,
        best_eval=est.index,
        message=message,
        max_violation=violation,
        feasible=feasible,
        info={**result.info, "noise": {**est.info, "reserved": reserve(k)}},
    )
