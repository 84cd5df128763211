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

import asyncio
import contextlib
import logging
import re
import signal
import threading
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


def _check_address(address: str) -> None:
    """Refuse, before a Client is made (a failed one lingers and stalls the exit), a string
    that is neither ``local:N`` nor ``[protocol://]host:port``."""
    protocol, _, rest = address.rpartition("://")
    if protocol not in ("", "tcp", "tls"):  # inproc://, ucx://, ...: Dask reads them
        return
    if address.startswith("local") or ":" not in rest or not rest.rsplit(":", 1)[1].isdigit():
        raise ValueError(
            f"{address!r} is neither 'local:N' (N worker processes on this machine, e.g. "
            "'local:2') nor a Dask scheduler address such as 'tcp://host:8786'; threads in "
            "this process: concurrent.futures.ThreadPoolExecutor(n)"
        )


@contextlib.contextmanager
def connect(cluster: Any) -> Iterator[Any]:
    """A ``distributed.Client`` for ``cluster`` (see the module docstring), closed on exit
    unless it was passed in."""
    try:
        from distributed import Client
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
        _check_address(cluster.strip())
        with Client(cluster.strip()) as client:
            yield client
        return
    n = int(m.group(1)) if m.group(1) is not None else None
    if n is not None and n < 1:
        raise ValueError(f"'local:N' needs N >= 1 worker processes, got {cluster!r}")
    with _local_cluster(n) as client:
        yield client


# Seconds a worker process of a "local:N" cluster gets to exit on its own once idle. Python's
# exit after torch takes about 1.5 s on an idle machine and several on a loaded one, past the
# 4 s after which distributed's own close kills it (with tracebacks and warnings).
EXIT_GRACE = 60.0
CLIENT_CLOSE_TIMEOUT = 10.0
# What a shutdown of workers still running cancelled tasks logs, every line expected: the
# kill of a busy worker, its cancelled tasks, connections closed under them, and (after a
# Ctrl-C, which reaches the workers too) the restart of workers the signal ended.
_SHUTDOWN_NOISE = (
    "Worker process still alive after",
    "ended with CancelledError",
    "CommClosedError",
    "Restarting worker",
)
_SHUTDOWN_ERRORS = ("CommClosedError", "StreamClosedError", "CancelledError")
_LOGGERS = (
    "distributed",
    "distributed.nanny",
    "distributed.core",
    "distributed.worker",
    "distributed.worker.state_machine",
    "distributed.scheduler",
    "distributed.batched",
    "distributed.comm",
    "tornado.application",
    "asyncio",
)


class _ShutdownNoise(logging.Filter):
    """Drops the records a shutdown of busy workers makes by design (see _SHUTDOWN_NOISE);
    any other record, warning or error, passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(s in text for s in _SHUTDOWN_NOISE):
            return False
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or type(exc).__name__ not in _SHUTDOWN_ERRORS


def _filterers() -> list[logging.Filterer]:
    """The loggers that shutdown noise comes from, and the handlers their records reach (a
    logger's filter does not see its children's records; a handler's does)."""
    loggers = [logging.getLogger(name) for name in _LOGGERS] + [logging.getLogger()]
    handlers = {id(h): h for lg in loggers for h in lg.handlers}
    return [*loggers, *handlers.values()]


def _quiet_shutdown() -> None:
    """Install the shutdown filter in this process (run on a worker: in that worker)."""
    noise = _ShutdownNoise()
    for f in _filterers():
        f.addFilter(noise)


def _bounded(call: Any, seconds: float = 5.0) -> Any:
    """``call()``, or None when it raises or takes over ``seconds`` (workers that a Ctrl-C
    reached may never answer; the shutdown must not wait for them)."""
    out: list[Any] = [None]

    def target() -> None:
        with contextlib.suppress(Exception):
            out[0] = call()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    return out[0]


def _leave_interrupts_to_the_parent() -> None:
    """(Run on each worker of a "local:N" cluster.) Ignore SIGINT: Ctrl-C in a terminal
    reaches the whole process group, and a worker process it ended would print its own
    tracebacks; the parent cancels the runs and closes the workers itself."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _running_tasks(dask_worker: Any) -> int:
    """(Run on a worker.) How many tasks its threads are running, cancelled ones included: a
    busy worker's shutdown is quieted, since it will be killed mid-task."""
    busy = len(dask_worker.active_threads)
    if busy:
        _quiet_shutdown()
    return busy


def _loud_again() -> None:
    for f in _filterers():
        for noise in [x for x in f.filters if isinstance(x, _ShutdownNoise)]:
            f.removeFilter(noise)


async def _close_workers(cluster: Any, timeout: float) -> None:
    """Close every worker's nanny with ``timeout`` seconds for its process to exit."""
    await asyncio.gather(*(w.close(timeout=timeout) for w in list(cluster.workers.values())))


@contextlib.contextmanager
def _local_cluster(n: int | None) -> Iterator[Any]:
    """A client of a new LocalCluster of ``n`` single-threaded processes, shut down cleanly:
    the client first, then (when no task is running) each worker given ``EXIT_GRACE`` seconds
    to exit, then the scheduler. Workers still running tasks (an interrupted sweep, cancelled)
    are killed after distributed's short wait, and only the messages that kill makes by
    design are silenced."""
    from distributed import Client, LocalCluster

    lc = LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        # its HTTP routes (health, metrics) on a free loopback port, never a fixed one
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    client, interrupted = None, True
    try:
        client = Client(lc)
        _bounded(lambda: client.run(_leave_interrupts_to_the_parent))
        yield client
        interrupted = False
    finally:
        _shut_down(lc, client, interrupted)


def _shut_down(lc: Any, client: Any, interrupted: bool) -> None:
    """Close ``client`` then ``lc`` (see :func:`_local_cluster`); never raises over the error
    that ended the block, and leaves the loggers as it found them. After an error or Ctrl-C
    (``interrupted``) workers may be busy or gone: the quick way, quietly."""
    busy = True  # unless the workers say they are idle
    if interrupted:
        _quiet_shutdown()
    if client is not None and client.status == "running":
        ran = _bounded(lambda: client.run(_running_tasks, on_error="return"))
        busy = interrupted or ran is None or not all(v == 0 for v in ran.values())
    if busy and not interrupted:
        _quiet_shutdown()
    try:
        with contextlib.suppress(Exception):
            if client is not None:
                client.close(timeout=CLIENT_CLOSE_TIMEOUT)
            if not busy:
                lc.sync(_close_workers, lc, EXIT_GRACE)
        lc.close(timeout=EXIT_GRACE)
    finally:
        if busy:
            _loud_again()


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
