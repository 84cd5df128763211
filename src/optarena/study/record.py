"""The arena's view of a study: one run record (``runs`` and ``history`` tables), so that
``optarena summary``, the report and the convergence plots list the study as a run of its
method on the problem ``study:<name>`` (one History row per trial, in the order told)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import numpy as np

from ..bench.runner import versions
from ..bench.store import RunRecord, Store
from ..space import SpaceResult
from .tables import dumps

__all__ = ["write_run_record"]


def write_run_record(
    store: Store, name: str, result: SpaceResult, method: str, options: str, n_trials: int
) -> None:
    """Store (or replace, when the study was resumed) the study's run record. Its History's
    ``seconds`` are wall seconds from the study's first trial (across resumes), from the
    trials' stored times, in the order they were told."""
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
    rec = RunRecord(
        key=f"study:{name}",
        spec=name,
        problem=f"study:{name}",
        problem_params=dumps({"space": json.loads(result.space.to_json())} if result.space else {}),
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
        stop_reason=result.stop_reason.value,
        message=result.message,
        best_eval=result.best_eval,
        x=result.x_numpy().tolist() if result.best_eval is not None else None,
        f_opt=None,
        versions=versions(),
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        history=h,
    )
    store.write(rec, replace=True)
