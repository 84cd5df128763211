"""The values of a batch of points: the declared batched function, vectorized chunks, a loop.

:func:`batch_values` is what ``Objective._values`` runs. The declared ``batched`` function is
called in chunks of :func:`auto_chunk` rows; without one, the vectorized paths are tried
fastest first (the direct path of a feed-forward ``nn.Sequential``, then ``torch.func.vmap``),
each in balanced chunks, and a path that fails is turned off for good with one warning, the
next one taking over from the failing chunk; the loop over single points comes last. No
counting here: the Oracle counts what this returns.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .errors import ObjectiveDefinitionError

if TYPE_CHECKING:
    from .objective import Objective

__all__ = ["RowError", "auto_chunk", "balanced", "batch_values"]


class RowError(Exception):
    """Row ``index`` of a batch raised; ``done`` holds the values of the rows before it."""

    def __init__(self, index: int, done: np.ndarray) -> None:
        super().__init__(f"row {index} of the batch raised")
        self.index = index
        self.done = done

    def __reduce__(self) -> tuple[type[RowError], tuple[int, np.ndarray]]:
        # rebuilt from index and done (the default passes the message alone to __init__)
        return (type(self), (self.index, self.done))


def auto_chunk(chunk_size: int | None, dim: int) -> int:
    """Rows per batched call: ``chunk_size``, else about 256 KiB of inputs so that
    intermediate activations stay in cache."""
    return chunk_size or max(16, min(4096, 32768 // max(dim, 1)))


def balanced(n: int, step: int) -> int:
    """Rows per chunk for n rows in chunks of at most ``step``, as equal as possible (100 rows
    at 32 per chunk run as 4 x 25, not 3 x 32 + 4: every chunk pays a fixed cost)."""
    if n <= step:
        return max(n, 1)
    return -(-n // -(-n // step))


def batch_values(obj: Objective, X: torch.Tensor) -> tuple[np.ndarray, str]:
    """Values of the rows of ``X`` (a private copy) and how they were computed.

    Raises :class:`RowError` (chained to the cause) when a row or chunk raises, with the
    values of the rows before it, so that they are counted and recorded.
    """
    n = X.shape[0]
    if n == 0:
        return np.empty(0), "none"
    if obj.batched is not None:
        return _declared(obj, obj.batched, X), "batched"
    out = np.empty(n)
    start = 0
    if obj.vectorize:
        for kind, vfn, step in _vector_paths(obj, X.shape[1]):
            step = balanced(n - start, step)
            s = start
            try:
                with torch.no_grad():
                    for s in range(start, n, step):
                        y = vfn(X[s : s + step])
                        out[s : s + step] = np.asarray(
                            torch.as_tensor(y).detach().cpu().double().reshape(-1)
                        )
                return out, kind
            except Exception as e:  # next path from this chunk; real errors re-raise
                start = s
                _vector_failed(obj, kind, e)
            except BaseException as e:  # Ctrl-C: keep the chunks already done
                raise RowError(s, out[:s].copy()) from e
    for i in range(start, n):
        try:
            out[i] = obj._value(X[i].clone())
        except BaseException as e:  # Ctrl-C too: the rows already done must be kept
            raise RowError(i, out[:i].copy()) from e
    return out, "loop"


def _declared(obj: Objective, batched: Callable[[Any], Any], X: torch.Tensor) -> np.ndarray:
    """The declared batched function over the rows of ``X``, in chunks of ``auto_chunk``."""
    n = X.shape[0]
    step = auto_chunk(obj.chunk_size, X.shape[1])
    if n <= step and obj.backend == "torch":  # one call, no copy into a buffer
        if torch.is_grad_enabled():
            with torch.no_grad():
                y = batched(X)
        else:  # population runs are already under no_grad: skip the context's cost
            y = batched(X)
        return _checked(obj, y, n).copy()
    out = np.empty(n)
    for s in range(0, n, step):
        chunk = X[s : s + step]
        try:
            if obj.backend == "numpy":
                y = batched(chunk.detach().cpu().double().numpy())
            else:
                with torch.no_grad():
                    y = batched(chunk)
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


def _vector_paths(obj: Objective, dim: int) -> list[tuple[str, Callable[[torch.Tensor], Any], int]]:
    """The vectorized ways to evaluate chunks (name, function, rows per chunk), fastest
    first, minus those that failed."""
    paths: list[tuple[str, Callable[[torch.Tensor], Any], int]] = []
    if obj._module_batched is not None:
        rows = obj.chunk_size or obj._module_batched.rows_per_chunk
        paths.append(("module", obj._module_batched, rows))
    if not obj._vmap_failed:
        paths.append(("vmap", torch.func.vmap(obj.fn), auto_chunk(obj.chunk_size, dim)))
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
    warnings.warn(
        f"objective {obj.name!r} cannot be vectorized with torch.func.vmap "
        f"({type(error).__name__}: {error}); populations are evaluated one point at a "
        "time. Pass batched= to evaluate them in one call.",
        RuntimeWarning,
        stacklevel=6,
    )
