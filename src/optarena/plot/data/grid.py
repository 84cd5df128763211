"""A function on a 1-D or 2-D grid (curves and landscapes), evaluated in batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["Grid", "evaluate_points", "grid_1d", "grid_2d"]


def _torch_fn(problem: Any) -> tuple[Callable[[torch.Tensor], Any], Any, torch.dtype]:
    fn = getattr(problem, "fn", problem)
    if not callable(fn):
        raise TypeError(f"expected a Problem or a function of a 1-D tensor, got {problem!r}")
    x0 = getattr(problem, "x0", None)
    dtype = x0.dtype if isinstance(x0, torch.Tensor) else torch.float64
    return fn, getattr(problem, "batched", None), dtype


def evaluate_points(problem: Any, points: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """f at each row of ``points`` (float64, NaN where not finite), using the problem's batched
    function when it has one, else ``torch.vmap``, else a loop."""
    fn, batched, dtype = _torch_fn(problem)
    pts = np.asarray(points, dtype=np.float64)
    out = np.empty(pts.shape[0])
    with torch.no_grad():
        for s in range(0, pts.shape[0], chunk):
            X = torch.as_tensor(pts[s : s + chunk]).to(dtype)
            out[s : s + chunk] = _batch_values(fn, batched, X)
    return np.where(np.isfinite(out), out, np.nan)


def _batch_values(fn: Callable, batched: Callable | None, X: torch.Tensor) -> np.ndarray:
    if batched is not None:
        return _flat(batched(X), X.shape[0])
    try:
        return _flat(torch.vmap(fn)(X), X.shape[0])
    except Exception:  # functions vmap cannot trace (data-dependent control flow, numpy)
        return np.array([float(torch.as_tensor(fn(row))) for row in X])


def _flat(v: Any, n: int) -> np.ndarray:
    arr = torch.as_tensor(v).detach().cpu().double().reshape(-1).numpy()
    if arr.shape[0] != n:
        raise ValueError(f"the function returned {arr.shape[0]} values for {n} points")
    return arr


@dataclass(frozen=True)
class Grid:
    """A function on a 1-D or 2-D grid: ``z`` has shape ``(len(x),)`` or ``(len(y), len(x))``.

    For 2-D grids ``levels`` are log-spaced contour levels of ``z - shift`` (``shift`` is 0
    when every value is positive, else just below the minimum, so log levels also work for
    functions with negative values).
    """

    x: np.ndarray
    y: np.ndarray | None
    z: np.ndarray
    shift: float = 0.0
    levels: np.ndarray | None = None


def _box(problem: Any, bounds: Any, dim: int) -> np.ndarray:
    if bounds is None:
        pb = getattr(problem, "bounds", None)
        if pb is None:
            raise ValueError("the function has no bounds: pass bounds=(lower, upper)")
        bounds = pb
    lo, hi = (np.broadcast_to(_np(b), (dim,)).astype(np.float64) for b in bounds)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (lo < hi).all()):
        raise ValueError(f"plot bounds must be finite with lower < upper, got {lo} and {hi}")
    return np.stack([lo, hi])


def _np(v: Any) -> np.ndarray:
    if isinstance(v, torch.Tensor):
        return v.detach().cpu().double().numpy()
    return np.asarray(v, dtype=np.float64)


def _check_dim(problem: Any, dim: int) -> None:
    d = getattr(problem, "dim", None)
    if d is not None and d != dim:
        raise ValueError(f"{getattr(problem, 'name', 'the problem')} has {d} variables, not {dim}")


def grid_1d(problem: Any, *, bounds: Any = None, resolution: int = 400) -> Grid:
    """f on ``resolution`` evenly spaced points of a 1-D problem's interval."""
    _check_dim(problem, 1)
    box = _box(problem, bounds, 1)
    x = np.linspace(box[0, 0], box[1, 0], int(resolution))
    return Grid(x, None, evaluate_points(problem, x[:, None]))


def grid_2d(problem: Any, *, bounds: Any = None, resolution: int = 200, levels: int = 30) -> Grid:
    """f on a ``resolution`` x ``resolution`` grid with ``levels`` log-spaced contour levels."""
    _check_dim(problem, 2)
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    box = _box(problem, bounds, 2)
    x = np.linspace(box[0, 0], box[1, 0], int(resolution))
    y = np.linspace(box[0, 1], box[1, 1], int(resolution))
    X, Y = np.meshgrid(x, y)
    z = evaluate_points(problem, np.column_stack([X.ravel(), Y.ravel()])).reshape(X.shape)
    finite = z[np.isfinite(z)]
    if finite.size == 0:
        raise ValueError("the function is not finite anywhere on the plotted region")
    lo, hi = float(finite.min()), float(finite.max())
    if lo > 0:
        shift, bottom = 0.0, max(lo, hi * 1e-6)
    else:  # shift so the minimum sits 1e-4 of the range above zero
        span = max(hi - lo, 1e-300)
        shift, bottom = lo - span * 1e-4, span * 1e-4
    top = max(hi - shift, bottom * 10)
    return Grid(x, y, z, shift, np.geomspace(bottom, top, int(levels)))
