"""Where trials run: in this process, on a ``concurrent.futures.Executor``, or on Dask.

Each backend submits :func:`~.trial.run_trial` calls and waits for the first to finish; a
trial whose worker process died (Dask's ``KilledWorker``, a broken process pool) comes back
as a failed outcome, so the study goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import pickle
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .trial import Outcome

__all__ = ["Backend", "backend"]


class Backend:
    """Submit calls and collect them as they finish (``concurrent.futures`` style)."""

    def __init__(self, executor: cf.Executor | None) -> None:
        self.executor = executor

    def check(self, objective: Callable[..., Any]) -> None:
        """Refuse, before any trial, an objective a process pool cannot send (a lambda, a
        local function): pickle would fail on every trial, in a thread of the pool."""
        if not isinstance(self.executor, cf.ProcessPoolExecutor):
            return
        try:
            pickle.dumps(objective)
        except Exception as e:
            raise TypeError(
                f"the objective {objective!r} cannot be sent to a process pool ({e}): define it "
                "at the top level of an importable module, or use a ThreadPoolExecutor or "
                "executor='local:N' (Dask sends lambdas and local functions by value)"
            ) from e

    def submit(self, fn: Callable[..., Outcome], *args: Any) -> Any:
        if self.executor is not None:
            return self.executor.submit(fn, *args)
        fut: cf.Future[Outcome] = cf.Future()  # in this process: run now
        try:
            fut.set_result(fn(*args))
        except BaseException as e:
            fut.set_exception(e)
            if not isinstance(e, Exception):
                raise
        return fut

    def wait_first(self, futures: Iterable[Any]) -> list[Any]:
        done, _ = cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)
        return list(done)

    def outcome(self, fut: Any, number: int) -> Outcome:
        try:
            return fut.result()
        except cf.process.BrokenProcessPool as e:
            return _lost(number, e)

    def cancel(self, futures: Iterable[Any]) -> None:
        for f in futures:
            f.cancel()


class DaskBackend(Backend):
    """Trials as Dask tasks on a ``distributed.Client`` (never retried as pure tasks)."""

    def __init__(self, client: Any) -> None:
        super().__init__(None)
        self.client = client

    def submit(self, fn: Callable[..., Outcome], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def wait_first(self, futures: Iterable[Any]) -> list[Any]:
        from distributed import wait

        done, _ = wait(list(futures), return_when="FIRST_COMPLETED")
        return list(done)

    def outcome(self, fut: Any, number: int) -> Outcome:
        from distributed import KilledWorker

        try:
            out = fut.result()
        except KilledWorker as e:
            out = _lost(number, e)
        fut.release()
        return out

    def cancel(self, futures: Iterable[Any]) -> None:
        self.client.cancel(list(futures))


def _lost(number: int, e: BaseException) -> Outcome:
    now = time.time()
    error = f"{type(e).__name__}: the process running the trial died ({e})"
    return Outcome(number, "failed", None, error, now, now, 0.0)


@contextlib.contextmanager
def backend(executor: Any) -> Iterator[Backend]:
    """The backend for ``executor``: None (this process, one trial at a time), a
    ``concurrent.futures.Executor``, a ``distributed.Client``, or a Dask address or
    ``"local:N"`` (N single-thread worker processes, closed at the end)."""
    if executor is None or isinstance(executor, cf.Executor):
        yield Backend(executor)
        return
    if isinstance(executor, str) or type(executor).__name__ == "Client":
        from ..bench.dask_runner import connect

        with connect(executor) as client:
            yield DaskBackend(client)
        return
    raise TypeError(
        "executor must be None, a concurrent.futures.Executor, a distributed.Client, a Dask "
        f"scheduler address or 'local:N', got {executor!r}"
    )
