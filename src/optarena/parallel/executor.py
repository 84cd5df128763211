"""Batches of evaluations on other processes or machines: ``minimize(..., executor=...)``.

When one evaluation takes seconds (training a model for a hyperparameter setting, running a
simulation), a population is evaluated on many cores or machines at once. The batch the Oracle
is asked to evaluate (a generation of a population method, or the probes of a
finite-difference gradient) is split into contiguous chunks; each chunk is evaluated as one
batch (``Objective._values``: the declared batched function, ``vmap`` or a loop) on a worker of
a ``concurrent.futures.Executor`` or of a Dask ``distributed.Client``, and the values are put
back in row order. Counting, the budget, the best point and the History stay with the run's
Oracle in this process, so a seeded run gives the same History whatever the number of workers
or chunks, and the same as without an executor, as long as the value of a point does not
depend on the other points of its batch (true for loops and for row-wise ``vmap``; a batched
matrix product may round differently for another batch size).

Faults:

- The objective raising on a worker surfaces exactly as it does locally: an
  :class:`~optarena.ObjectiveError` naming the evaluation, chained to the original exception
  (itself chained to the worker's traceback), the rows before it recorded. Chunks evaluated
  concurrently after the failing one are discarded, like the rows a local loop never reached.
- A chunk lost with its worker (the process died: ``KilledWorker`` from Dask,
  ``BrokenProcessPool`` from a process pool) is submitted again up to ``retries`` times. Each
  lost attempt counts its points as evaluations with NaN values in the History (they were
  spent), and ``result.info`` holds ``worker_retries`` (lost attempts) and ``lost_evals``
  (their evaluations); a chunk lost on every attempt, a chunk
  slower than ``timeout`` or an executor that breaks ends the run with :class:`ExecutorError`,
  which carries the best-so-far Result like any ObjectiveError. Dask's scheduler itself reruns
  a task whose worker died up to ``distributed.scheduler.allowed-failures`` times (default 3)
  before it reports ``KilledWorker``; those reruns are invisible here and not counted.
- A ``ProcessPoolExecutor`` cannot replace a dead process: once broken, the run ends with
  ExecutorError at the next submission. Dask's nannies restart dead workers.

The objective travels to the workers pickled once per run (with cloudpickle when it is
installed, so lambdas and closures travel too; it comes with the ``dask`` extra), is sent to
every Dask worker once (``scatter``), and is kept by each worker process for the following
chunks. A ``ThreadPoolExecutor`` shares the objective itself, unpickled. Workers keep their
own torch thread settings: one torch thread per worker thread (``OMP_NUM_THREADS=1`` in their
environment) keeps chunks from competing for the same cores.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import pickle
import queue
import sys
import threading
import time
import traceback
import uuid
from collections import OrderedDict
from concurrent.futures import BrokenExecutor, CancelledError, Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import ObjectiveError
from ..core.evaluator import Evaluated
from ..core.objective import Objective, RowError

__all__ = ["Evaluated", "ExecutorError", "Parallel", "ParallelRun", "RemoteTraceback"]

#: Objectives each worker process keeps unpickled between chunks (least recently used first out).
CACHE_SIZE = 4
#: Longest single wait for a result, so that Ctrl-C and deadlines are seen promptly.
_POLL = 0.5


class ExecutorError(ObjectiveError):
    """The workers could not deliver a chunk's values: a worker died on every attempt, the
    chunk took longer than ``timeout``, or the executor broke or refused the work.

    Like any :class:`~optarena.ObjectiveError`, ``evaluation`` is the 1-based index of the
    first evaluation that could not be obtained and ``result`` the best-so-far Result;
    ``attempts`` counts the submissions of the chunk. Chained to the executor's exception.
    """

    def __init__(self, message: str, evaluation: int, attempts: int) -> None:
        super().__init__(message, evaluation)
        self.attempts = attempts


class RemoteTraceback(Exception):
    """The traceback of an exception raised on a worker (its ``__cause__`` there)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class _WorkerError(RuntimeError):
    """Stands for an exception of the objective that cannot travel back from the worker."""


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
        if not (isinstance(self.executor, Executor) or _dask_client(self.executor) is not None):
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
        client = _dask_client(self.executor)
        if client is not None:
            return max(1, sum(client.nthreads().values()))
        workers = getattr(self.executor, "_max_workers", None)  # process and thread pools
        if isinstance(workers, int) and workers > 0:
            return workers
        return os.cpu_count() or 1

    def open(self, objective: Objective) -> ParallelRun:
        """Start a run: ship the objective (pickled once) and fix the number of chunks."""
        return ParallelRun(self, objective)


class ParallelRun:
    """One run's use of a :class:`Parallel`: the shipped objective and the fault counters.

    ``lost_attempts`` counts the chunk attempts lost with their worker and recorded (those of
    chunks after a failure are discarded with their values), ``lost_evals`` the evaluations
    they were counted as, ``batches`` the batches evaluated here.
    """

    def __init__(self, parallel: Parallel, objective: Objective) -> None:
        self.parallel = parallel
        self.name = objective.name
        self.chunks = parallel.default_chunks()
        self.lost_attempts = 0
        self.lost_evals = 0
        self.batches = 0
        self._client = _dask_client(parallel.executor)
        self._direct = self._client is not None and self._client is parallel.executor
        self._remote: Any = None
        self._run_id = uuid.uuid4().hex
        if isinstance(parallel.executor, ThreadPoolExecutor):
            self._payload: Any = objective  # threads share the object itself
            self._digest = ""
            return
        try:
            blob = _dumps(objective)
        except Exception as e:
            raise TypeError(
                f"objective {objective.name!r} cannot be sent to the workers: pickling it failed "
                f"({type(e).__name__}: {e}). Workers run in other processes and receive the "
                "objective pickled: define its function at module level or without "
                "unpicklable state (open files, locks, generators); lambdas and closures need "
                "cloudpickle (pip install 'optarena[dask]'); a ThreadPoolExecutor needs no "
                "pickling"
            ) from e
        self._digest = hashlib.blake2b(blob, digest_size=16).hexdigest()
        self._payload = blob
        if self._client is not None:
            self._scatter()

    def _scatter(self) -> None:
        """Put the pickled objective on every Dask worker once (tasks refer to it)."""
        assert self._client is not None
        timeout = self.parallel.timeout
        self._remote = self._client.scatter(
            self._payload,
            broadcast=True,
            hash=False,
            **({} if timeout is None else {"timeout": timeout}),
        )

    def close(self) -> None:
        """Release what the run left on the cluster (the scattered objective)."""
        if self._remote is not None:
            remote, self._remote = self._remote, None
            with contextlib.suppress(Exception):  # the cluster may be gone: nothing to free
                remote.release()

    # -- evaluating one batch --------------------------------------------------------------------
    def evaluate(self, X: torch.Tensor, first: int, left: int | None) -> Evaluated:
        """Evaluate the rows of ``X`` in chunks; ``first`` is the 1-based index of the first
        evaluation, ``left`` the evaluations the budget still allows (None: no limit).

        Never raises for a failure of the objective or the workers: the outcome says which
        rows to record and what to raise after recording them (Ctrl-C included).
        """
        self.batches += 1
        chunks = [_Chunk(s, e) for s, e in _split(X.shape[0], self.chunks)]
        arrived: queue.SimpleQueue[Any] = queue.SimpleQueue()
        interrupted: BaseException | None = None
        try:
            for c in chunks:
                self._submit(c, X, arrived)
                if c.fatal is not None:  # refused: later chunks would not be used
                    break
            self._gather(chunks, X, arrived, left)
        except KeyboardInterrupt as e:  # keep what has arrived, like a local loop
            interrupted = e
        finally:
            _cancel(chunks)
        return self._assemble(X, chunks, first, left, interrupted)

    def _submit(self, c: _Chunk, X: torch.Tensor, arrived: queue.SimpleQueue[Any]) -> None:
        """Submit one attempt of chunk ``c``; a refusal makes the chunk fatal."""
        c.attempts += 1
        c.future = None
        if self._remote is not None and getattr(self._remote, "status", "finished") != "finished":
            self._scatter()  # the scattered objective was lost with the last worker holding it
        payload = self._remote if self._remote is not None else self._payload
        # the label makes every submission distinct (Dask keys pure tasks by their arguments)
        label = (self._run_id, self.batches, c.start, c.attempts)
        rows = _to_wire(X[c.start : c.stop])
        try:
            if self._direct:
                fut = self._client.submit(  # type: ignore[union-attr]
                    _evaluate_chunk, self._digest, payload, rows, label, pure=False
                )
            else:
                fut = self.parallel.executor.submit(
                    _evaluate_chunk, self._digest, payload, rows, label
                )
        except Exception as e:  # shut down, or broken by an earlier death
            c.fatal = (f"the executor refused the chunk ({type(e).__name__}: {e})", e)
            return
        c.future = fut
        if self.parallel.timeout is not None:
            c.deadline = time.monotonic() + self.parallel.timeout
        fut.add_done_callback(arrived.put)

    def _gather(
        self,
        chunks: list[_Chunk],
        X: torch.Tensor,
        arrived: queue.SimpleQueue[Any],
        left: int | None,
    ) -> None:
        """Collect chunks in any order until each one before the first failure is resolved.

        The first failure in row order wins, as in a local loop: chunks after it are cancelled
        and their values, if any arrive, are not used.
        """
        stop = next((i for i, c in enumerate(chunks) if c.fatal is not None), len(chunks))
        _cancel(chunks[stop + 1 :])
        while True:
            waiting = [c for c in chunks[:stop] if not c.resolved]
            if not waiting:
                return
            now = time.monotonic()
            deadlines = [c.deadline for c in waiting if c.deadline is not None]
            wait = min([_POLL, *(max(0.0, d - now) for d in deadlines)])
            try:
                fut = arrived.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                late = [i for i, c in enumerate(chunks[:stop]) if c.overdue(now)]
                if late:
                    chunks[late[0]].timed_out = True
                    stop = late[0]
                    _cancel(chunks[stop:])
                continue
            i = next((i for i, c in enumerate(chunks[:stop]) if c.future is fut), None)
            if i is None:
                continue  # a chunk no longer needed, or a cancelled attempt
            c = chunks[i]
            c.future = None
            failed = self._take(c, fut, chunks, i, X, arrived, left)
            if failed:
                stop = i
                _cancel(chunks[stop + 1 :])

    def _take(
        self,
        c: _Chunk,
        fut: Any,
        chunks: list[_Chunk],
        i: int,
        X: torch.Tensor,
        arrived: queue.SimpleQueue[Any],
        left: int | None,
    ) -> bool:
        """Use the finished attempt ``fut`` of chunk ``c``; True when the chunk failed for good."""
        try:
            outcome = fut.result(timeout=self.parallel.timeout)  # done; Dask still fetches it
        except (Exception, CancelledError) as e:
            if not _is_lost(e):
                c.fatal = (f"the executor failed ({type(e).__name__}: {e})", e)
                return True
            c.lost += 1
            if c.lost > self.parallel.retries:
                c.fatal = (
                    f"a worker died while evaluating it, on each of {c.attempts} attempts "
                    f"(retries={self.parallel.retries}); the objective may crash its process "
                    "at these points (segfault, os._exit, out of memory)",
                    e,
                )
                return True
            if left is not None and _spent_before(chunks, i) >= left:
                c.skipped = True  # the budget ends before a retry could be recorded
                return False
            self._submit(c, X, arrived)
            return c.fatal is not None
        kind = outcome[0]
        if kind == "ok":
            c.values, c.mode = np.asarray(outcome[1], dtype=np.float64), str(outcome[2])
            return False
        if kind == "raised":
            _, index, done, exc, text = outcome
            exc.__cause__ = RemoteTraceback(text)
            c.raised = (int(index), np.asarray(done, dtype=np.float64), exc)
            return True
        c.fatal = (f"a worker could not load objective {self.name!r}: {outcome[1]}", None)
        return True

    def _assemble(
        self,
        X: torch.Tensor,
        chunks: list[_Chunk],
        first: int,
        left: int | None,
        interrupted: BaseException | None,
    ) -> Evaluated:
        """The rows to record in History order (lost attempts as NaN rows before their chunk's
        values), cut where the budget ends, and the error to raise after recording them."""
        room = math.inf if left is None else left
        xs: list[torch.Tensor] = []
        fs: list[np.ndarray] = []
        done: list[np.ndarray] = []
        error: BaseException | None = None
        mode = ""

        def put(rows: torch.Tensor, f: np.ndarray) -> int:
            nonlocal room
            take = int(min(rows.shape[0], room))
            xs.append(rows[:take])
            fs.append(f[:take])
            room -= take
            return take

        for c in chunks:
            rows = X[c.start : c.stop]
            for _ in range(c.lost):  # counted: those evaluations were spent
                take = put(rows, np.full(rows.shape[0], np.nan))
                self.lost_attempts += take > 0
                self.lost_evals += take
            if room <= 0:
                break
            if c.values is not None:
                mode = mode or c.mode
                take = put(rows, c.values)
                done.append(c.values[:take])
                if take < rows.shape[0]:
                    break
                continue
            if c.raised is not None:
                index, before, exc = c.raised
                take = put(rows[:index], before)
                done.append(before[:take])
                if take == index and room > 0:  # the failing evaluation is within the budget
                    error = exc
            elif c.fatal is not None or c.timed_out:
                error = self._error(c, first + sum(x.shape[0] for x in xs))
            break
        if error is None and interrupted is not None:
            error = interrupted
        Xr = torch.cat(xs) if xs else X[:0]
        return Evaluated(
            X=Xr,
            f=np.concatenate(fs) if fs else np.empty(0),
            values=np.concatenate(done) if done else np.empty(0),
            mode=mode,
            error=error,
        )

    def _error(self, c: _Chunk, evaluation: int) -> ExecutorError:
        size = c.stop - c.start
        what = f"a chunk of {size} point{'s' if size > 1 else ''} (evaluation {evaluation} onwards)"
        if c.timed_out:
            message, cause = (
                f"no result within timeout={self.parallel.timeout:g} s: the objective is slower "
                "than that (raise Parallel(..., timeout=...)), or no worker is running it",
                None,
            )
        else:
            assert c.fatal is not None
            message, cause = c.fatal
        err = ExecutorError(f"{what} of objective {self.name!r}: {message}", evaluation, c.attempts)
        err.__cause__ = cause
        return err


@dataclass
class _Chunk:
    """Rows ``start:stop`` of a batch and the state of their evaluation."""

    start: int
    stop: int
    future: Any = None
    deadline: float | None = None
    attempts: int = 0
    lost: int = 0
    values: np.ndarray | None = None
    mode: str = ""
    raised: tuple[int, np.ndarray, BaseException] | None = None
    fatal: tuple[str, BaseException | None] | None = None
    timed_out: bool = False
    skipped: bool = False

    @property
    def resolved(self) -> bool:
        """True when nothing more is awaited for this chunk."""
        return (
            self.values is not None
            or self.raised is not None
            or self.fatal is not None
            or self.timed_out
            or self.skipped
        )

    def overdue(self, now: float) -> bool:
        """True when the current attempt is past its deadline."""
        return not self.resolved and self.deadline is not None and now >= self.deadline


# -- helpers ---------------------------------------------------------------------------------------
def _dask_client(executor: Any) -> Any:
    """The Dask client behind ``executor`` (a Client or its executor), else None."""
    dist = sys.modules.get("distributed")
    if dist is None:  # nobody made a Dask client without importing distributed
        return None
    if isinstance(executor, dist.Client):
        return executor
    from distributed.cfexecutor import ClientExecutor

    if isinstance(executor, ClientExecutor):
        return executor._client
    return None


def _to_wire(rows: torch.Tensor) -> Any:
    """Rows as they travel: a numpy copy for CPU floats (no tensor sharing machinery between
    processes, and Dask serializes it without a copy), else a tensor copy."""
    if rows.device.type == "cpu" and rows.dtype in (torch.float64, torch.float32):
        return rows.detach().numpy().copy()
    return rows.detach().clone()


def _dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle when available (lambdas, closures), else the standard pickle."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with the dask extra
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """``min(parts, n)`` contiguous slices of ``range(n)``, sizes differing by at most one."""
    m = max(1, min(parts, n))
    size, extra = divmod(n, m)
    out, start = [], 0
    for j in range(m):
        stop = start + size + (j < extra)
        out.append((start, stop))
        start = stop
    return out


def _spent_before(chunks: list[_Chunk], i: int) -> int:
    """Evaluations recorded before chunk ``i``'s next attempt (known so far)."""
    before = sum((c.stop - c.start) * (1 + c.lost) for c in chunks[:i])
    return before + (chunks[i].stop - chunks[i].start) * chunks[i].lost


def _cancel(chunks: list[_Chunk]) -> None:
    for c in chunks:
        if c.future is not None:
            c.future.cancel()
            c.future = None


def _is_lost(e: BaseException) -> bool:
    """True for the executors' ways of saying that a worker died with the task."""
    if isinstance(e, BrokenExecutor | CancelledError):
        return True
    dist = sys.modules.get("distributed")
    return dist is not None and isinstance(e, dist.KilledWorker)


# -- the worker side -------------------------------------------------------------------------------
_CACHE: OrderedDict[str, Objective] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def _load(digest: str, payload: Any) -> Objective:
    """The objective of a chunk, unpickled once per worker process and kept for the next."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        return payload  # a thread pool: the object itself
    with _CACHE_LOCK:
        obj = _CACHE.get(digest)
        if obj is not None:
            _CACHE.move_to_end(digest)
            return obj
    obj = pickle.loads(payload)
    with _CACHE_LOCK:
        _CACHE[digest] = obj
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return obj


def _portable(exc: BaseException) -> BaseException:
    """``exc`` when it survives pickling, else a stand-in that names its type and message."""
    if isinstance(exc, Exception):
        try:
            back = pickle.loads(pickle.dumps(exc))
            if type(back) is type(exc):
                return exc
        except Exception:
            pass
    return _WorkerError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")


def _evaluate_chunk(digest: str, payload: Any, X: Any, label: Any) -> tuple[Any, ...]:
    """Evaluate one chunk on a worker; failures of the objective come back as values.

    Returns ``("ok", values, mode)``, ``("raised", row, values_before, exc, traceback_text)``
    or ``("unloadable", message)``. Anything the executor raises instead is its own failure
    (a dead worker, a lost connection).
    """
    del label  # only there to make the submission unique
    try:
        objective = _load(digest, payload)
    except Exception as e:
        return ("unloadable", f"{type(e).__name__}: {e}")
    if isinstance(X, np.ndarray):  # Dask may hand over a read-only view of its buffer
        X = torch.from_numpy(X if X.flags.writeable else X.copy())
    try:
        values, mode = objective._values(X)
    except RowError as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        text = "".join(traceback.format_exception(cause))
        return ("raised", e.index, e.done, _portable(cause), text)
    except BaseException as e:  # a batched or vmapped call raised as a whole
        text = "".join(traceback.format_exception(e))
        return ("raised", 0, np.empty(0), _portable(e), text)
    return ("ok", values, mode)
