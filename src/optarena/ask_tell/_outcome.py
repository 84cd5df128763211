"""An ask/tell study's Result: as ``minimize`` reports a run, noisy estimate included."""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

from ..budget import StopReason
from ..core.noise import reserve
from ..result import Result
from ..space.run import space_result

if TYPE_CHECKING:
    from .optimizer import Optimizer

__all__ = ["study_result"]


def study_result(opt: Optimizer) -> Result:
    """The study so far (see ``Optimizer.result``)."""
    o = opt._oracle
    x, fun = o.best()
    reason, message = opt.stop_reason, opt._message
    if reason is None:
        reason = StopReason.CALLBACK
        message = f"open study: {o.nfev} evaluations told, {opt.in_flight} in flight"
        if opt._reeval is not None:
            message += "; re-evaluating the best points (noisy study)"
    if o.best_x is None and reason is not StopReason.CALLBACK:
        message = (message + "; " if message else "") + "no finite objective value was seen"
        reason = StopReason.NO_FINITE_VALUE
    failures = [{"eval": i, "error": e} for i, e in sorted(opt.failures.items())]
    res = Result(
        x=x,
        fun=fun if math.isfinite(fun) else math.inf,
        nfev=o.nfev,
        ngev=0,
        elapsed=o.elapsed,
        stop_reason=reason,
        history=o.history,
        method=opt.method.label,
        seed=opt.seed,
        message=message,
        best_eval=o.best_eval,
        info={"failures": failures, "generations": opt._run.generation},
    )
    res = _noise(opt, res)
    if opt.space is None:
        return res
    return space_result(res, opt.space, o.nfev - opt.cache_hits, opt.cache_hits)


def _noise(opt: Optimizer, res: Result) -> Result:
    """A noisy study's Result with the re-evaluated estimate as ``minimize`` gives it (its
    ``fun`` the mean of ``k`` fresh values, ``info["noise"]``); before the estimate, the raw
    best sample and why it is not one yet."""
    k, est = opt._k, opt._estimate
    if k == 0:
        return res
    if est is None:
        why = "open study" if opt.stop_reason is None else str(opt.stop_reason)
        note = {"reevaluations": 0, "raw_best": res.fun, "skipped": why}
        return dataclasses.replace(res, info={**res.info, "noise": note})
    message = res.message + "; " if res.message else ""
    message += f"value averaged over {k} re-evaluations of the best point (noisy objective)"
    return dataclasses.replace(
        res,
        x=est.x.clone(),
        fun=est.fun if math.isfinite(est.fun) else math.inf,
        best_eval=est.index,
        message=message,
        info={**res.info, "noise": {**est.info, "reserved": reserve(k)}},
    )
