"""Benchmark sweeps on a Dask cluster: each run a Dask task, every result stored here.

Workers only compute: a task runs one run with the runner's own :func:`execute` (one torch
thread, as in a local sweep) and returns its :class:`RunRecord`; this process, which owns the
store, writes each record as it arrives, one transaction per run. Workers never open the
SQLite file, so the store stays consistent and an interrupted sweep resumes exactly like a
local one: runs already stored are skipped, the others are run again.

``cluster`` is the address of a running scheduler (``"tcp://10.0.0.5:8786"``), ``"local:N"``
for a cluster of N single-threaded worker processes on this machine (bound to 127.0.0.1,
closed at the end), or a ``distributed.Client``. A run whose worker died on every attempt the
scheduler allows (``KilledWorker``: it crashes its process, or runs out of memory) is stored
as an error, like a run whose objective raised; ``retry_errors=True`` runs it again.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .plan import Plan, Task
from .runner import (
    BenchReport,
    execute,
    pending,
    progress_bar,
    record_from_result,
    save_record,
    spec_and_store,
    torch_threads,
)
from .spec import Spec
from .store import RunRecord, Store

__all__ = ["connect", "run_plan_dask", "run_spec_dask"]

_LOCAL = re.compile(r"local(?::(\d+))?")


def _run_task(task: Task) -> RunRecord:
    """One run on a worker, with one torch thread (the numbers of a serial local run)."""
    with torch_threads(1):
        return execute(task)


@contextlib.contextmanager
def connect(cluster: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (see the module docstring), closed on exit
    unless it was passed in."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("Dask sweeps need dask: pip install 'optarena[dask]'") from e
    if isinstance(cluster, Client):
        yield cluster
        return
    if not isinstance(cluster, str) or not cluster.strip():
        raise TypeError(
            f"cluster must be a scheduler address, 'local:N' or a distributed.Client, "
            f"got {cluster!r}"
        )
    m = _LOCAL.fullmatch(cluster.strip())
    if m is None:
        with Client(cluster.strip()) as client:
            yield client
        return
    n = int(m.group(1)) if m.group(1) is not None else None
    if n is not None and n < 1:
        raise ValueError(f"'local:N' needs N >= 1 worker processes, got {cluster!r}")
    with (
        LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            # its HTTP routes (health, metrics) on a free loopback port, never a fixed one
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
        ) as lc,
        Client(lc) as client,
    ):
        yield client


def run_plan_dask(
    plan: Plan,
    store: Store,
    cluster: Any,
    *,
    progress: bool | None = None,
    retry_errors: bool = False,
) -> BenchReport:
    """Run the planned tasks that ``store`` lacks on a Dask cluster; returns what was done.

    Same selection and report as :func:`optarena.bench.run_plan`; ``cluster`` is an address,
    ``"local:N"`` or a ``distributed.Client``. Ctrl-C cancels the runs not finished yet;
    those already stored stay, and the next call resumes.
    """
    todo, report, status = pending(plan, store, retry_errors)
    if not todo:
        return report
    from distributed import KilledWorker, as_completed

    with connect(cluster) as client, progress_bar(len(todo), plan.spec, progress) as bar:
        # a fresh key per submission: a rerun never meets a cancelled task of an earlier one
        futures = {
            client.submit(_run_task, t, key=f"optarena-run-{t.key[:16]}-{uuid.uuid4().hex[:8]}"): t
            for t in todo
        }
        try:
            for fut in as_completed(futures):
                task = futures[fut]
                try:
                    rec = fut.result()
                except KilledWorker as e:
                    rec = record_from_result(
                        task, None, "error", f"the worker running it died ({e})"
                    )
                fut.release()
                bar.update(1)
                save_record(store, rec, report, status)
        except BaseException:
            client.cancel(list(futures))
            raise
    return report


def run_spec_dask(
    spec: Spec | str | Path,
    store: Store | str | Path,
    cluster: Any,
    *,
    progress: bool | None = None,
    retry_errors: bool = False,
) -> BenchReport:
    """Validate ``spec`` (a Spec or a TOML path), then run what ``store`` lacks on ``cluster``."""
    with spec_and_store(spec, store) as (plan, st):
        return run_plan_dask(plan, st, cluster, progress=progress, retry_errors=retry_errors)
