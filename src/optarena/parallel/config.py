"""``Parallel``: where and how the batches of a run are evaluated (the user's settings, checked)."""

from __future__ import annotations

import os
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from ..core.objective import Objective
from .client import ParallelRun, dask_client

__all__ = ["Parallel"]


@dataclass(frozen=True)
class Parallel:
    """Where and how batches of evaluations run: ``minimize(..., executor=Parallel(...))``.

    Passing an executor or a client directly to ``minimize`` uses these defaults.

    Args:
        executor: a ``concurrent.futures.Executor`` (``ProcessPoolExecutor``,
            ``ThreadPoolExecutor``, Dask's ``client.get_executor()``, ...) or a
            ``distributed.Client``.
        chunks: pieces each batch is split into, each evaluated as one batch by one worker.
            ``None``: the number of worker threads of the Dask cluster when the run starts, or
            the executor's ``max_workers``, else ``os.cpu_count()``. More chunks than workers
            balance uneven evaluation times; the results do not depend on it.
        retries: how many times a chunk lost with its worker is submitted again.
        timeout: seconds a chunk may take from its submission to its result; ``None`` waits
            as long as it takes. A slower chunk ends the run with :class:`ExecutorError` (it
            is not retried: it would be as slow again).
    """

    executor: Any
    chunks: int | None = None
    retries: int = 2
    timeout: float | None = 3600.0

    def __post_init__(self) -> None:
        if isinstance(self.executor, Parallel):
            raise TypeError("Parallel takes an executor or a client, not another Parallel")
        if not (isinstance(self.executor, Executor) or dask_client(self.executor) is not None):
            raise TypeError(
                "executor must be a concurrent.futures.Executor (e.g. ProcessPoolExecutor, "
                "client.get_executor()) or a distributed.Client, got "
                f"{type(self.executor).__name__}"
            )
        if self.chunks is not None and (
            isinstance(self.chunks, bool) or not isinstance(self.chunks, int) or self.chunks < 1
        ):
            raise ValueError(f"chunks must be a positive int or None, got {self.chunks!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError(f"retries must be an int >= 0, got {self.retries!r}")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries}")
        if self.timeout is not None and (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, int | float)
            or not self.timeout > 0
        ):
            raise ValueError(
                f"timeout must be a positive number of seconds or None, got {self.timeout!r}"
            )

    @classmethod
    def coerce(cls, executor: Any) -> Parallel:
        """The ``executor=`` argument of ``minimize`` as a Parallel (defaults for a bare one)."""
        return executor if isinstance(executor, Parallel) else cls(executor)

    def default_chunks(self) -> int:
        """Chunks per batch when ``chunks`` is None: the parallelism the executor offers."""
        if self.chunks is not None:
            return self.chunks
        client = dask_client(self.executor)
        if client is not None:
            return max(1, sum(client.nthreads().values()))
        workers = getattr(self.executor, "_max_workers", None)  # process and thread pools
        if isinstance(workers, int) and workers > 0:
            return workers
        return os.cpu_count() or 1

    def open(self, objective: Objective) -> ParallelRun:
        """Start a run: ship the objective (pickled once) and fix the number of chunks."""
        return ParallelRun(self, objective)
