"""The Evaluator protocol: what a method may ask of the run it is part of.

Methods depend on this protocol, never on a concrete class: the run's :class:`Oracle` and a
:class:`~optarena.core.scope.Scope` (a capped, watched, optionally transformed view of a
parent evaluator used by composites) both satisfy it. Only the Oracle writes counts, the best
point and the History.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from ..budget import Budget
    from ..constraints import ConstraintSet
    from ..result import History
    from .objective import Objective

__all__ = ["BatchRunner", "Evaluated", "Evaluator"]


@runtime_checkable
class Evaluator(Protocol):
    """Counted evaluations of one run (or of a sub-run inside it)."""

    objective: Objective
    dim: int
    dtype: torch.dtype
    device: torch.device
    budget: Budget
    constraints: ConstraintSet
    history: History
    best_x: torch.Tensor | None
    best_f: float
    last_f: float

    @property
    def nfev(self) -> int: ...

    @property
    def ngev(self) -> int: ...

    @property
    def elapsed(self) -> float: ...

    def remaining_evals(self) -> int | None: ...

    def as_tensor(self, x: Any) -> torch.Tensor: ...

    def value(self, x: Any) -> float: ...

    def value_array(self, x: np.ndarray) -> float:
        """f(x) at a float64 numpy point of shape ``(d,)`` that the caller never writes to
        again, counted and recorded as :meth:`value` does, without a tensor per call where
        the run allows (any other point or run: :meth:`value`)."""
        ...

    def value_and_grad(
        self, x: Any, *, stop_on_nonfinite: bool = True
    ) -> tuple[float, torch.Tensor]: ...

    def values(self, X: Any) -> torch.Tensor: ...

    def values_and_grads(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]: ...

    def fd_values_and_grads(
        self,
        X: torch.Tensor,
        f0: torch.Tensor | None = None,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    def best(self) -> tuple[torch.Tensor, float]: ...


@dataclass
class Evaluated:
    """What a :class:`BatchRunner` hands back to the Oracle for one batch.

    ``X`` and ``f`` are the rows to record, in order (NaN for lost attempts); ``values`` are
    the values of the leading rows of the batch that were evaluated (all of them unless the
    budget or an error cut the batch short); ``error`` is raised after recording: an
    exception of the objective, an executor error or a ``KeyboardInterrupt``.
    """

    X: torch.Tensor
    f: np.ndarray
    values: np.ndarray
    mode: str = ""
    error: BaseException | None = None


class BatchRunner(Protocol):
    """Evaluates batches elsewhere (workers); the Oracle records what it returns."""

    lost_attempts: int
    lost_evals: int
    batches: int

    def evaluate(self, X: torch.Tensor, first: int, left: int | None) -> Evaluated: ...

    def close(self) -> None: ...
