"""The gradient family: a method steps from one iterate (``init``, ``step``) and this loop runs
it, calling the callback after each step and ending on the method's own convergence test.
"""

from __future__ import annotations

from typing import Any

import torch

from ..budget import StopReason
from ..core.evaluator import Evaluator
from ._context import Outcome, RunContext
from ._method import Method

__all__ = ["GradientMethod"]


class GradientMethod(Method):
    """Methods that step from one iterate using values and gradients.

    A checkpointable gradient method saves its state as plain tensors (:meth:`save_state`,
    e.g. a torch optimizer's ``state_dict()``) and rebuilds it in :meth:`load_state`.
    """

    def init(self, x0: torch.Tensor, oracle: Evaluator, ctx: RunContext) -> Any:
        raise NotImplementedError

    def step(self, state: Any, oracle: Evaluator, ctx: RunContext) -> bool:
        """One step; returns True when the method has converged."""
        raise NotImplementedError

    def rebase(self, state: Any, oracle: Evaluator) -> None:
        """The objective changed under this state (a new merit function): recompute what the
        state caches from the old one, such as a stored value and gradient (default: none)."""

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        if ctx.resume is not None:
            state, it = self.restore(ctx.resume, ctx)
        else:
            state, it = self.init(ctx.x0.clone(), oracle, ctx), 0
        # a checkpoint is a deep copy: made only for a callback that may read it
        keep = self.checkpointable and getattr(
            ctx.callback, "wants_checkpoint", ctx.callback is not None
        )
        while True:
            done = self.step(state, oracle, ctx)
            it += 1
            cp = self.checkpoint(state, it, ctx) if keep else None
            ctx.notify(oracle, it, getattr(state, "x", None), oracle.last_f, cp)
            if done:
                return Outcome(StopReason.CONVERGED, f"converged after {it} step{'s' * (it != 1)}")
