"""The arena's view of a study: one run record (``runs`` and ``history`` tables), so that
``optarena summary``, the report and the convergence plots list the study as a run of its
method on the problem ``study:<name>`` (one History row per trial, in the order told)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np

from ..bench.runner import versions
from ..bench.store import RunRecord, Store
from ..budget import StopReason
from ..space import SpaceResult

__all__ = ["write_run_record"]


def write_run_record(
    store: Store,
    name: str,
    result: SpaceResult,
    method: str,
    options: str,
    n_trials: int,
    interrupted: bool = False,
    error: str | None = None,
) -> None:
    """Store (or replace, when the study was resumed) the study's run record. Its History's
    ``seconds`` are wall seconds from the study's first trial (across resumes), from the
    trials' stored times, in the order they were told. ``error``: the study stopped on a
    trial's exception (stop reason ``error``, the message says which)."""
    h = {k: v.copy() for k, v in result.history.as_dict().items()}
    times = store.query(
        "SELECT started, finished FROM trials WHERE study = ? ORDER BY told", (name,)
    )
    elapsed = float(result.elapsed)
    if len(times) == len(h["seconds"]) and times:
        t0 = min(r["started"] for r in times)
        h["seconds"] = np.array([r["finished"] - t0 for r in times], dtype=np.float64)
        elapsed = float(h["seconds"].max())
    fun = float(result.fun)
    reason, message = result.stop_reason, result.message
    if reason is StopReason.CALLBACK:  # the method had not stopped: the study ended it
        reason, message = StopReason.MAX_EVALS, f"{len(times)} trials stored"
        if interrupted:
            reason, message = StopReason.INTERRUPTED, f"interrupted with {len(times)} stored"
        if not math.isfinite(fun):
            reason, message = StopReason.NO_FINITE_VALUE, message + "; no finite value"
        if error is not None:  # a trial's exception stopped the study (catch= did not name it)
            reason, message = StopReason.ERROR, f"{len(times)} trials stored; {error}"
    rec = RunRecord(
        key=f"study:{name}",
        spec=name,
        problem=f"study:{name}",
        problem_params="{}",  # the space is the study's (studies table), not a problem's
        method=method,
        label=method,
        options=options,
        bounds=True,
        seed=int(result.seed),
        budget={"evals": int(n_trials)},
        status="ok",
        fun=fun if math.isfinite(fun) else math.inf,
        nfev=int(result.nfev),
        ngev=0,
        elapsed=elapsed,
        stop_reason=reason.value,
        message=message,
        best_eval=result.best_eval,
        x=result.x_numpy().tolist() if result.best_eval is not None else None,
        f_opt=None,
        versions=versions(),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        history=h,
    )
    store.write(rec, replace=True)
