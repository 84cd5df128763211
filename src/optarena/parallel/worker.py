"""What runs on a worker: the objective kept per process, one chunk evaluated, errors made
portable.

The executors pickle :func:`evaluate_chunk` by its module path, so this module must stay
importable by name in every worker process (and light: it imports the core only).
"""

from __future__ import annotations

import pickle
import threading
import traceback
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

from ..core.objective import Objective, RowError

__all__ = ["CACHE_SIZE", "claimed_before", "evaluate_chunk"]

#: Objectives each worker process keeps unpickled between chunks (least recently used first out).
CACHE_SIZE = 4

_CACHE: OrderedDict[str, Objective] = OrderedDict()
_CACHE_LOCK = threading.Lock()


class WorkerError(RuntimeError):
    """Stands for an exception of the objective that cannot travel back from the worker."""


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
    return WorkerError(f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}")


def claimed_before(claim: str) -> bool:
    """Claim a Dask chunk attempt on the scheduler; True when it was claimed already.

    The claim is a ``distributed.Event`` named after the attempt, kept by the scheduler, so it
    outlives the worker: when a worker dies mid-chunk, Dask reruns the task elsewhere, and the
    rerun finds the event set instead of calling the objective a second time unseen.
    """
    from distributed import Event

    event = Event(claim)
    if event.is_set():
        return True
    event.set()
    return False


def evaluate_chunk(
    digest: str, payload: Any, X: Any, label: Any, claim: str | None = None
) -> tuple[Any, ...]:
    """Evaluate one chunk on a worker; failures of the objective come back as values.

    Returns ``("ok", values, mode)``, ``("raised", row, values_before, exc, traceback_text)``,
    ``("unloadable", message)`` or, for a Dask rerun of an attempt already claimed (its first
    run died with its worker), ``("lost",)``. Anything the executor raises instead is its own
    failure (a dead worker, a lost connection).
    """
    del label  # only there to make the submission unique
    if claim is not None and claimed_before(claim):
        return ("lost",)
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
