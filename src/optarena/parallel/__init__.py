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
  which carries the best-so-far Result like any ObjectiveError.
- What is counted: every attempt this process submitted and lost (all its points, whether the
  worker died before, during or after evaluating them). Dask's scheduler itself reruns a
  task whose worker died (``distributed.scheduler.allowed-failures``, default 3): on a Dask
  ``Client`` each attempt first claims its label on the scheduler (a ``distributed.Event``),
  and a rerun that finds it claimed returns without calling the objective and is counted
  here as a lost attempt, so the objective never runs more often than ``nfev`` says. Through
  ``client.get_executor()`` there is no claim and such reruns stay unseen.
- A chunk slower than ``timeout`` cannot be interrupted where it runs. On a Dask
  ``Client`` the workers still running the batch's late chunks are restarted through their
  nannies before the run ends, so the next run finds them free; a worker without a nanny,
  ``client.get_executor()`` or a ``concurrent.futures`` pool keeps running the evaluation
  until it returns.
- A ``ProcessPoolExecutor`` cannot replace a dead process: once broken, the run ends with
  ExecutorError at the next submission. Dask's nannies restart dead workers.

The objective travels to the workers pickled once per run (with cloudpickle when it is
installed, so lambdas and closures travel too; it comes with the ``dask`` extra), is sent to
every Dask worker once (``scatter``), and is kept by each worker process for the following
chunks. A ``ThreadPoolExecutor`` shares the objective itself, unpickled. Workers keep their
own torch thread settings: one torch thread per worker thread (``OMP_NUM_THREADS=1`` in their
environment) keeps chunks from competing for the same cores.
"""

from ..core.evaluator import Evaluated
from .client import ParallelRun
from .config import Parallel
from .errors import ExecutorError, RemoteTraceback

__all__ = ["Evaluated", "ExecutorError", "Parallel", "ParallelRun", "RemoteTraceback"]
