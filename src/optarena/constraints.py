"""Constraints as tensor functions: ``Ineq(fun)`` means fun(x) >= 0, ``Eq(fun)`` fun(x) == 0.

Each function may return a scalar or a vector (several constraints at once). Jacobians come
from autograd, so solvers that use them (SLSQP, trust-constr) get exact ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Constraint", "Eq", "Ineq"]


@dataclass(frozen=True)
class Constraint:
    """Base of :class:`Ineq` and :class:`Eq`: a tensor function and a feasibility tolerance."""

    fun: Callable[[torch.Tensor], torch.Tensor]
    tol: float = 1e-8
    name: str = ""

    kind = "base"

    def __post_init__(self) -> None:
        if not callable(self.fun):
            raise TypeError(
                f"{type(self).__name__} needs a callable, got {type(self.fun).__name__}"
            )
        if not (isinstance(self.tol, int | float) and self.tol >= 0):
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """The constraint function at ``x`` as a 1-D tensor."""
        return torch.as_tensor(self.fun(x)).reshape(-1)

    def violation(self, x: torch.Tensor) -> torch.Tensor:
        """Per-component violation (>= 0, 0 when satisfied)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Ineq(Constraint):
    """Inequality constraint ``fun(x) >= 0`` (scalar or componentwise)."""

    kind = "ineq"

    def violation(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(-self.values(x), min=0)


@dataclass(frozen=True)
class Eq(Constraint):
    """Equality constraint ``fun(x) == 0`` (scalar or componentwise)."""

    kind = "eq"

    def violation(self, x: torch.Tensor) -> torch.Tensor:
        return self.values(x).abs()
