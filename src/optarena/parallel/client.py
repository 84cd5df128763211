"""The client side of a run on workers: submit the chunks of a batch, gather them in any order,
retry the chunks lost with their worker, enforce the timeout, and assemble the rows to record.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import pickle
import queue
import sys
import time
import uuid
from concurrent.futures import BrokenExecutor, CancelledError, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..core.evaluator import Evaluated
from ..core.objective import Objective
from .chunks import Chunk, cancel, spent_before, split
from .errors import ExecutorError, RemoteTraceback, WorkerLost
from .worker import evaluate_chunk

if TYPE_CHECKING:
    from .config import Parallel

__all__ = ["ParallelRun", "dask_client"]

#: Longest single wait for a result, so that Ctrl-C and deadlines are seen promptly.
_POLL = 0.5


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
        self._client = dask_client(parallel.executor)
        self._direct = self._client is not None and self._client is parallel.executor
        self._remote: Any = None
        self._run_id = uuid.uuid4().hex
        self._claims: list[str] = []  # the Dask attempts' claim names, cleared at close()
        if isinstance(parallel.executor, ThreadPoolExecutor):
            self._payload: Any = objective  # threads share the object itself
            self._digest = ""
            return
        try:
            blob = dumps(objective)
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
        """Release what the run left on the cluster (the scattered objective, the claims)."""
        if self._remote is not None:
            remote, self._remote = self._remote, None
            with contextlib.suppress(Exception):  # the cluster may be gone: nothing to free
                remote.release()
        if self._claims and self._client is not None:
            claims, self._claims = self._claims, []
            with contextlib.suppress(Exception):
                self._client.sync(_clear_claims, self._client, claims)

    # -- evaluating one batch --------------------------------------------------------------------
    def evaluate(self, X: torch.Tensor, first: int, left: int | None) -> Evaluated:
        """Evaluate the rows of ``X`` in chunks; ``first`` is the 1-based index of the first
        evaluation, ``left`` the evaluations the budget still allows (None: no limit).

        Never raises for a failure of the objective or the workers: the outcome says which
        rows to record and what to raise after recording them (Ctrl-C included).
        """
        self.batches += 1
        chunks = [Chunk(s, e) for s, e in split(X.shape[0], self.chunks)]
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
            cancel(chunks)
        return self._assemble(X, chunks, first, left, interrupted)

    def _submit(self, c: Chunk, X: torch.Tensor, arrived: queue.SimpleQueue[Any]) -> None:
        """Submit one attempt of chunk ``c``; a refusal makes the chunk fatal."""
        c.attempts += 1
        c.future = None
        if self._remote is not None and getattr(self._remote, "status", "finished") != "finished":
            self._scatter()  # the scattered objective was lost with the last worker holding it
        payload = self._remote if self._remote is not None else self._payload
        # the label makes every submission distinct (Dask keys pure tasks by their arguments)
        label = (self._run_id, self.batches, c.start, c.attempts)
        rows = to_wire(X[c.start : c.stop])
        try:
            if self._direct:
                # Dask reruns a task whose worker died without telling us: the attempt claims
                # its label on the scheduler first, and a rerun finds it claimed (``"lost"``)
                claim = "optarena-" + "-".join(map(str, label))
                self._claims.append(claim)
                fut = self._client.submit(  # type: ignore[union-attr]
                    evaluate_chunk, self._digest, payload, rows, label, claim, pure=False
                )
            else:
                fut = self.parallel.executor.submit(
                    evaluate_chunk, self._digest, payload, rows, label
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
        chunks: list[Chunk],
        X: torch.Tensor,
        arrived: queue.SimpleQueue[Any],
        left: int | None,
    ) -> None:
        """Collect chunks in any order until each one before the first failure is resolved.

        The first failure in row order wins, as in a local loop: chunks after it are cancelled
        and their values, if any arrive, are not used.
        """
        stop = next((i for i, c in enumerate(chunks) if c.fatal is not None), len(chunks))
        cancel(chunks[stop + 1 :])
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
                    self._restart_busy(chunks[stop:])
                    cancel(chunks[stop:])
                continue
            i = next((i for i, c in enumerate(chunks[:stop]) if c.future is fut), None)
            if i is None:
                continue  # a chunk no longer needed, or a cancelled attempt
            c = chunks[i]
            c.future = None
            failed = self._take(c, fut, chunks, i, X, arrived, left)
            if failed:
                stop = i
                cancel(chunks[stop + 1 :])

    def _restart_busy(self, chunks: list[Chunk]) -> None:
        """Restart (through their nannies) the Dask workers still running these chunks.

        Neither Dask nor a process pool can interrupt a running Python call: cancelling a
        chunk that timed out would leave its worker busy with it for as long as it takes,
        and the next run would wait for it. Dask workers with a nanny are restarted here
        before the run ends (their other tasks are rerun by Dask); a worker without one, a
        Dask executor passed as ``client.get_executor()`` or a ``concurrent.futures`` pool
        keeps running the evaluation until it returns.
        """
        if not self._direct or self._client is None:
            return
        keys = {c.future.key for c in chunks if c.future is not None and not c.future.done()}
        if not keys:
            return
        with contextlib.suppress(Exception):  # best effort: the run ends with its error anyway
            busy = [w for w, ks in self._client.processing().items() if keys & set(ks)]
            if busy:
                self._client.restart_workers(busy, raise_for_error=False)

    def _take(
        self,
        c: Chunk,
        fut: Any,
        chunks: list[Chunk],
        i: int,
        X: torch.Tensor,
        arrived: queue.SimpleQueue[Any],
        left: int | None,
    ) -> bool:
        """Use the finished attempt ``fut`` of chunk ``c``; True when the chunk failed for good."""
        try:
            outcome = fut.result(timeout=self.parallel.timeout)  # done; Dask still fetches it
            if outcome[0] == "lost":
                raise WorkerLost(
                    f"the worker running attempt {c.attempts} of this chunk died; Dask reran "
                    "the task, which did not evaluate the chunk a second time"
                )
        except (Exception, CancelledError) as e:
            if not is_lost(e):
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
            if left is not None and spent_before(chunks, i) >= left:
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
        chunks: list[Chunk],
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

    def _error(self, c: Chunk, evaluation: int) -> ExecutorError:
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


# -- the executors' ways ------------------------------------------------------------------------
def dask_client(executor: Any) -> Any:
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


async def _clear_claims(client: Any, claims: list[str]) -> None:
    """Remove the run's claim events from the scheduler (a cleared event is deleted there)."""
    import asyncio

    await asyncio.gather(*(client.scheduler.event_clear(name=n) for n in claims))


def to_wire(rows: torch.Tensor) -> Any:
    """Rows as they travel: a numpy copy for CPU floats (no tensor sharing machinery between
    processes, and Dask serializes it without a copy), else a tensor copy."""
    if rows.device.type == "cpu" and rows.dtype in (torch.float64, torch.float32):
        return rows.detach().numpy().copy()
    return rows.detach().clone()


def dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle when available (lambdas, closures), else the standard pickle."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover - cloudpickle comes with the dask extra
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def is_lost(e: BaseException) -> bool:
    """True for the executors' ways of saying that a worker died with the task."""
    if isinstance(e, BrokenExecutor | CancelledError | WorkerLost):
        return True
    dist = sys.modules.get("distributed")
    return dist is not None and isinstance(e, dist.KilledWorker)
