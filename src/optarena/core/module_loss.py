"""The direct population path's losses: mean squared and mean absolute error, without vmap.

``torch.func.vmap`` over ``nn.functional.mse_loss`` costs a fixed few tens of microseconds
per call and a copy of the outputs; for the network path's outputs, a tensor of the call that
may be overwritten, ``(out - target)`` squared (or its absolute value) is computed in place
and reduced over each candidate's entries, as torch defines these losses for an output of the
target's shape (the sum is taken in another order: equal to rounding). Any other loss, a
target of another shape or dtype, or a loss module with hooks keeps the vmap'd loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["DirectLoss", "direct_loss"]

_FUNCTIONS: dict[Any, bool] = {F.mse_loss: True, F.l1_loss: False}  # True: squared
_MODULES: dict[type[nn.Module], bool] = {nn.MSELoss: True, nn.L1Loss: False}


class DirectLoss:
    """``self(out) -> (n,)``: ``loss(out[i], target)`` for every candidate ``i`` of
    ``out`` ``(n, batch, features)``, which it overwrites; ``generic`` answers whatever it
    does not reproduce (read at each call: a loss module's reduction and hooks may change)."""

    def __init__(
        self,
        squared: bool,
        target: torch.Tensor,
        generic: Callable[[torch.Tensor], torch.Tensor],
        module: nn.Module | None = None,
    ) -> None:
        self.squared = squared
        self.target = target
        self.generic = generic
        self.module = module

    def _reduction(self) -> str:
        m = self.module
        if m is None:
            return "mean"
        if m._forward_hooks or m._forward_pre_hooks:
            return "hooked"
        return str(getattr(m, "reduction", ""))

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        reduction = self._reduction()
        t = self.target
        if (
            reduction not in ("mean", "sum")
            or out.shape[1:] != t.shape
            or out.dtype != t.dtype
            or out.device != t.device
        ):
            return self.generic(out)
        d = out.sub_(t)
        d = d.square_() if self.squared else d.abs_()
        return d.mean(dim=(1, 2)) if reduction == "mean" else d.sum(dim=(1, 2))


def direct_loss(
    loss: Any, target: Any, dtype: torch.dtype, generic: Callable[[torch.Tensor], torch.Tensor]
) -> DirectLoss | None:
    """A :class:`DirectLoss` for ``loss(output, target)`` when ``loss`` is
    ``nn.functional.mse_loss`` / ``l1_loss`` (their default mean reduction) or an
    ``nn.MSELoss`` / ``nn.L1Loss`` module and ``target`` a 2-D tensor of the output's
    ``dtype``; else None."""
    if not isinstance(target, torch.Tensor) or target.ndim != 2 or target.dtype != dtype:
        return None
    if type(target) is not torch.Tensor and not isinstance(target, nn.Parameter):
        return None  # a tensor subclass may define its own arithmetic
    try:
        squared = _FUNCTIONS.get(loss)
    except TypeError:  # an unhashable callable
        squared = None
    if squared is not None:
        return DirectLoss(squared, target, generic)
    squared = _MODULES.get(type(loss))
    if squared is not None:
        return DirectLoss(squared, target, generic, module=loss)
    return None
