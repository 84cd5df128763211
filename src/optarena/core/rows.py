"""Values and autograd gradients of a batch of points, for :meth:`Oracle.values_and_grads`.

The evaluation side only: how the rows of a batch get their values and gradients (autograd
through the objective's ``batched`` function, ``vmap`` in chunks, or a loop). Counting, the
budget and the History stay with the Oracle.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    pass

__all__ = ["RowFailure", "exact_rows"]


class RowFailure(Exception):
    """Row ``index`` of a gradient batch raised ``cause``; ``f`` holds the rows before it."""

    def __init__(self, index: int, f: np.ndarray, cause: BaseException) -> None:
        super().__init__(f"row {index} raised")
        self.index, self.f, self.cause = index, f, cause


_NO_VMAP: weakref.WeakSet[Any] = weakref.WeakSet()  # objectives whose gradient vmap failed
# objectives whose rows were seen connected to x by autograd (torch.func.grad gives zeros,
# not an error, for a value that does not depend on x: an all-zero chunk is checked once)
_CONNECTED: weakref.WeakSet[Any] = weakref.WeakSet()


def exact_rows(obj: Any, X: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """Values and autograd gradients of the rows of ``X``: the objective's ``batched``
    function differentiated once (rows are independent, so the gradient of the sum is each
    row's gradient), else ``vmap(grad_and_value(fn))`` in chunks, else a loop. A batch whose
    gradients are all exactly zero goes through the loop until the objective was once seen
    connected to x there (the loop refuses a value autograd does not connect to x)."""
    n, d = X.shape
    step = obj._auto_chunk(d)
    if obj.decided and obj not in _NO_VMAP and (obj.batched is not None or obj.vectorize):
        try:
            f = np.empty(n)
            G = torch.empty_like(X)
            for s in range(0, n, step):
                f[s : s + step], G[s : s + step] = _chunk(obj, X[s : s + step].clone())
            if obj in _CONNECTED or bool(G.any()):
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
    _CONNECTED.add(obj)  # every row's value reached x through autograd
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
        if g is None:  # not connected to x: the loop refuses it row by row
            raise TypeError("the batched function's values do not depend on X")
        return y.detach().cpu().double().numpy(), g.detach()
    g, y = torch.func.vmap(torch.func.grad_and_value(obj.fn))(X)
    return torch.as_tensor(y).detach().cpu().double().reshape(-1).numpy(), g.detach()
