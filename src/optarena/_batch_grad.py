"""Values and gradients of a batch of points, for :meth:`Oracle.values_and_grads`.

The evaluation side only: how the rows of a batch get their values and gradients (autograd
through the objective's ``batched`` function, ``vmap`` in chunks, or a loop; forward
differences for objectives with ``gradient="fd"``). Counting, the budget and the History stay
with the Oracle.
"""

from __future__ import annotations

import math
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .budget import StopReason

if TYPE_CHECKING:
    from .oracle import Oracle

__all__ = ["RowFailure", "exact_rows", "fd_batch"]


class RowFailure(Exception):
    """Row ``index`` of a gradient batch raised ``cause``; ``f`` holds the rows before it."""

    def __init__(self, index: int, f: np.ndarray, cause: BaseException) -> None:
        super().__init__(f"row {index} raised")
        self.index, self.f, self.cause = index, f, cause


_NO_VMAP: weakref.WeakSet[Any] = weakref.WeakSet()  # objectives whose gradient vmap failed


def exact_rows(obj: Any, X: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Values and autograd gradients of the rows of ``X``: the objective's ``batched``
    function differentiated once (rows are independent, so the gradient of the sum is each
    row's gradient), else ``vmap(grad_and_value(fn))`` in chunks, else a loop."""
    n, d = X.shape
    step = obj._auto_chunk(d)
    if obj not in _NO_VMAP and (obj.batched is not None or obj.vectorize):
        try:
            f = np.empty(n)
            G = torch.empty_like(X)
            for s in range(0, n, step):
                f[s : s + step], G[s : s + step] = _chunk(obj, X[s : s + step].clone())
            return f, G
        except Exception:  # the loop below evaluates row by row; a real error re-raises there
            _NO_VMAP.add(obj)
    f = np.empty(n)
    G = torch.empty_like(X)
    for i in range(n):
        try:
            f[i], G[i] = obj._value_and_grad(X[i].clone())
        except BaseException as e:
            raise RowFailure(i, f[:i].copy(), e) from e
    return f, G


def _chunk(obj: Any, X: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Values and gradients of one chunk of rows, in one differentiated call."""
    if obj.batched is not None:
        Xg = X.requires_grad_(True)
        with torch.enable_grad():
            y = torch.as_tensor(obj.batched(Xg)).reshape(-1)
            if not y.requires_grad:
                raise TypeError("the batched function is not differentiable by autograd")
            (g,) = torch.autograd.grad(y.sum(), Xg, allow_unused=True)
        g = torch.zeros_like(X) if g is None else g
        return y.detach().cpu().double().numpy(), g.detach()
    g, y = torch.func.vmap(torch.func.grad_and_value(obj.fn))(X)
    return torch.as_tensor(y).detach().cpu().double().reshape(-1).numpy(), g.detach()


def fd_steps(
    rel: float, X: torch.Tensor, lower: torch.Tensor | None, upper: torch.Tensor | None
) -> torch.Tensor:
    """Forward-difference steps that keep every probe in the box: forward where it fits, else
    backward, else the wider side's distance (0 for a fixed variable: its derivative is 0)."""
    h = rel * torch.clamp(X.abs(), min=1.0)
    if upper is None and lower is None:
        return h
    up = torch.full_like(X, math.inf) if upper is None else upper.expand_as(X)
    lo = torch.full_like(X, -math.inf) if lower is None else lower.expand_as(X)
    room_up, room_lo = up - X, X - lo
    wide = torch.where(room_up >= room_lo, room_up, -room_lo)
    return torch.where(h <= room_up, h, torch.where(h <= room_lo, -h, wide))


def fd_batch(
    oracle: Oracle,
    X: torch.Tensor,
    f0: torch.Tensor | None = None,
    upper: torch.Tensor | None = None,
    lower: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and forward-difference gradients of the rows of ``X`` from one batch of values.

    Probes ``x + h_i e_i`` with ``h_i = fd_step * max(1, |x_i|)`` (backward where the step
    would leave the box), every probe one counted evaluation; ``f0`` reuses known values.
    """
    n, d = X.shape
    limit = oracle.budget.grad_evals
    if limit is not None and oracle.ngev + n > limit:  # gradients left decide the rows done
        from .oracle import StopRun

        left = limit - oracle.ngev
        if left > 0:
            fd_batch(oracle, X[:left], None if f0 is None else f0[:left], upper, lower)
        raise StopRun(StopReason.MAX_GRAD_EVALS)
    h = fd_steps(oracle.objective.fd_step, X, lower, upper)
    P = X.unsqueeze(1).repeat(1, d, 1)
    idx = torch.arange(d, device=X.device)
    P[:, idx, idx] += h
    rows = P.reshape(n * d, d) if f0 is not None else torch.cat([X, P.reshape(n * d, d)])
    vals = oracle.values(rows)
    if f0 is None:
        f0, vals = vals[:n], vals[n:]
    taken = P[:, idx, idx] - X  # the steps actually taken in floating point
    G = (vals.reshape(n, d) - f0.unsqueeze(1)) / taken
    G = torch.where(taken != 0, G, torch.zeros_like(G))
    oracle.ngev += n
    return f0, G
