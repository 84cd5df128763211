"""The values of a batch of points: the declared batched function, vectorized chunks, a loop.

:func:`batch_values` is what ``Objective._values`` runs. The declared ``batched`` function is
called in chunks of :func:`auto_chunk` rows; without one, the vectorized paths are tried
fastest first (the direct path of a feed-forward ``nn.Sequential``, then ``torch.func.vmap``),
each in balanced chunks, and a path that fails is turned off for good with one warning, the
next one taking over from the failing chunk; the loop over single points comes last. No
counting here: the Oracle counts what this returns.

The user's function (the loop, the declared ``batched`` function) runs in the caller's autograd
mode, which a run keeps as the user's: an objective may train a model inside. Only ``vmap``
and the direct network path run under ``no_grad``: a function ``vmap`` can vectorize computes
the same values in either mode, and one that differentiates inside fails under ``vmap`` and
goes to the loop. A function that failed ``vmap`` once is remembered for the process (one
warning, no second attempt), whichever Objective wraps it.

Under a run's evaluation settings (:mod:`.memory`: ``minimize(memory=, eval_dtype=)``)
chunks are made small enough for the memory cap's estimate, and every path receives the
points in the evaluation dtype (numpy functions excepted: they get float64 arrays).

A ``deadline`` (a ``time.perf_counter()`` reading, the Budget's seconds) is checked between
chunks and between the loop's points: a batch cut short by the clock ends with
:class:`BatchCut`, holding the values of the rows done. One call of the function is never
interrupted.
"""

from __future__ import annotations

import time
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import ObjectiveDefinitionError
from .memory import current, eval_rows

if TYPE_CHECKING:
    from .objective import Objective

__all__ = ["BatchCut", "RowError", "auto_chunk", "balanced", "batch_values", "vmap_failed"]

# Functions torch.func.vmap could not vectorize (keyed by the function, not the Objective: a
# plain function is wrapped in a new Objective by every minimize() call).
_NO_VMAP: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


class RowError(Exception):
    """Row ``index`` of a batch raised; ``done`` holds the values of the rows before it."""

    def __init__(self, index: int, done: np.ndarray) -> None:
        super().__init__(f"row {index} of the batch raised")
        self.index = index
        self.done = done

    def __reduce__(self) -> tuple[type[RowError], tuple[int, np.ndarray]]:
        # rebuilt from index and done (the default passes the message alone to __init__)
        return (type(self), (self.index, self.done))


class BatchCut(Exception):
    """The deadline passed between chunks: ``done`` holds the values of the rows evaluated."""

    def __init__(self, done: np.ndarray) -> None:
        super().__init__(f"time is up after {done.shape[0]} rows of the batch")
        self.done = done


def _key(fn: Any) -> Any:
    """What identifies a function across Objectives (a bound method is made anew each time)."""
    return getattr(fn, "__func__", fn)


def vmap_failed(obj: Objective) -> bool:
    """True when vmap failed on this objective or on its function before."""
    if obj._vmap_failed:
        return True
    try:
        return _key(obj.fn) in _NO_VMAP
    except TypeError:  # not weak-referenceable: remembered by this Objective only
        return False


def _late(deadline: float | None) -> bool:
    return deadline is not None and time.perf_counter() >= deadline


def auto_chunk(chunk_size: int | None, dim: int, itemsize: int = 8) -> int:
    """Rows per batched call: ``chunk_size``, else about 256 KiB of inputs so that
    intermediate activations stay in cache; under a memory cap, at most the rows whose input
    and three temporaries of its size (``4 dim itemsize`` bytes a row) fit half the cap."""
    rows = chunk_size or max(16, min(4096, 32768 // max(dim, 1)))
    return eval_rows(4 * dim * itemsize, rows)


def _cast(obj: Objective, X: torch.Tensor) -> torch.Tensor:
    """``X`` in the run's evaluation dtype (itself when none is set, it already is, or the
    function is a numpy one)."""
    dtype = current().dtype
    if dtype is None or X.dtype == dtype or obj.backend == "numpy":
        return X
    return X.to(dtype)


def _itemsize(X: torch.Tensor) -> int:
    dtype = current().dtype
    return (X.dtype if dtype is None else dtype).itemsize


def balanced(n: int, step: int) -> int:
    """Rows per chunk for n rows in chunks of at most ``step``, as equal as possible (100 rows
    at 32 per chunk run as 4 x 25, not 3 x 32 + 4: every chunk pays a fixed cost)."""
    if n <= step:
        return max(n, 1)
    return -(-n // -(-n // step))


def batch_values(
    obj: Objective, X: torch.Tensor, deadline: float | None = None
) -> tuple[np.ndarray, str]:
    """Values of the rows of ``X`` (a private copy) and how they were computed.

    Raises :class:`RowError` (chained to the cause) when a row or chunk raises, with the
    values of the rows before it, so that they are counted and recorded; :class:`BatchCut`
    when ``deadline`` passed between chunks.
    """
    n = X.shape[0]
    if n == 0:
        return np.empty(0), "none"
    current().saw_batch(n)
    if not obj.decided:  # the first row tells what the function is (see .kinds)
        try:
            first = obj._value(_cast(obj, X[0]).clone())
        except BaseException as e:
            raise RowError(0, np.empty(0)) from e
        head = np.array([first])
        if n == 1:
            return head, "loop"
        if _late(deadline):
            raise BatchCut(head)
        try:
            rest, kind = batch_values(obj, X[1:], deadline)
        except RowError as e:
            raise RowError(e.index + 1, np.concatenate([head, e.done])) from e.__cause__
        except BatchCut as e:
            raise BatchCut(np.concatenate([head, e.done])) from None
        return np.concatenate([head, rest]), kind
    if obj.batched is not None:
        return _declared(obj, obj.batched, X, deadline), "batched"
    out = np.empty(n)
    start = 0
    if obj.vectorize:
        for kind, path, step in _vector_paths(obj, X.shape[1], _itemsize(X)):
            vfn = torch.func.vmap(obj.fn) if path is None else path
            step = balanced(n - start, step)
            s = start
            try:
                with torch.no_grad():
                    for s in range(start, n, step):
                        if s > start and _late(deadline):
                            raise BatchCut(out[:s].copy())
                        y = vfn(_cast(obj, X[s : s + step]))
                        out[s : s + step] = np.asarray(
                            torch.as_tensor(y).detach().cpu().double().reshape(-1)
                        )
                return out, kind
            except BatchCut:
                raise
            except Exception as e:  # next path from this chunk; real errors re-raise
                start = s
                _vector_failed(obj, kind, e)
            except BaseException as e:  # Ctrl-C: keep the chunks already done
                raise RowError(s, out[:s].copy()) from e
    for i in range(start, n):
        if i > start and _late(deadline):
            raise BatchCut(out[:i].copy())
        try:
            out[i] = obj._value(_cast(obj, X[i]).clone())
        except BaseException as e:  # Ctrl-C too: the rows already done must be kept
            raise RowError(i, out[:i].copy()) from e
    return out, "loop"


def _declared(
    obj: Objective, batched: Callable[[Any], Any], X: torch.Tensor, deadline: float | None
) -> np.ndarray:
    """The declared batched function over the rows of ``X``, in chunks of ``auto_chunk``, in
    the caller's autograd mode (it is the user's function)."""
    n = X.shape[0]
    step = auto_chunk(obj.chunk_size, X.shape[1], _itemsize(X))
    if n <= step and obj.backend == "torch":  # one call, no copy into a buffer
        return _checked(obj, batched(_cast(obj, X)), n).copy()
    out = np.empty(n)
    for s in range(0, n, step):
        if s > 0 and _late(deadline):
            raise BatchCut(out[:s].copy())
        chunk = X[s : s + step]
        try:
            if obj.backend == "numpy":
                y = batched(chunk.detach().cpu().double().numpy())
            else:
                y = batched(_cast(obj, chunk))
        except BaseException as e:  # the chunks already done are kept and counted
            raise RowError(s, out[:s].copy()) from e
        out[s : s + step] = _checked(obj, y, chunk.shape[0])
    return out


def _checked(obj: Objective, y: Any, n: int) -> np.ndarray:
    """The declared batched function's output as n float64 values (checked)."""
    if type(y) is torch.Tensor and y.ndim == 1 and y.dtype == torch.float64 and y.is_cpu:
        yv = (y.detach() if y.requires_grad else y).numpy()  # the common case, as is
    else:
        yv = torch.as_tensor(y).detach().to("cpu", torch.float64).reshape(-1).numpy()
    if yv.shape[0] != n:
        raise ObjectiveDefinitionError(
            f"batched objective {obj.name!r} returned {yv.shape[0]} values for {n} points"
        )
    return yv


def _vector_paths(
    obj: Objective, dim: int, itemsize: int
) -> list[tuple[str, Callable[[torch.Tensor], Any] | None, int]]:
    """The vectorized ways to evaluate chunks (name, function, rows per chunk), fastest
    first, minus those that failed; None stands for ``torch.func.vmap(obj.fn)``."""
    paths: list[tuple[str, Callable[[torch.Tensor], Any] | None, int]] = []
    if obj._module_batched is not None:
        net = obj._module_batched
        rows = eval_rows(net.row_bytes(itemsize), obj.chunk_size or net.rows_per_chunk)
        paths.append(("module", net, rows))
    if not vmap_failed(obj):
        rows = auto_chunk(obj.chunk_size, dim, itemsize)
        paths.append(("vmap", None, rows))  # made when reached: it costs tens of microseconds
    return paths


def _vector_failed(obj: Objective, kind: str, error: Exception) -> None:
    """Turn a failed vectorized path off for this objective, with one warning."""
    if kind == "module":  # the direct network path is an optimization: vmap takes over
        obj._module_batched = None
        warnings.warn(
            f"objective {obj.name!r}: the direct population path for this nn.Sequential "
            f"is off ({type(error).__name__}: {error}); populations use torch.func.vmap "
            "from now on",
            RuntimeWarning,
            stacklevel=6,
        )
        return
    obj._vmap_failed = True
    try:
        if _key(obj.fn) in _NO_VMAP:
            return  # this function failed vmap before (another Objective): warned then
        _NO_VMAP[_key(obj.fn)] = True
    except TypeError:  # not weak-referenceable: this Objective remembers it
        pass
    warnings.warn(
        f"objective {obj.name!r} cannot be vectorized with torch.func.vmap "
        f"({type(error).__name__}: {error}); populations are evaluated one point at a "
        "time. Pass batched= to evaluate them in one call.",
        RuntimeWarning,
        stacklevel=6,
    )
