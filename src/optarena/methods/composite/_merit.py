"""Merit terms of the constraint wrappers: quadratic penalty and augmented Lagrangian (PHR).

Each maps constraint values (``g(x) >= 0`` for inequalities, ``h(x) = 0`` for equalities) to
a term added to the objective, with the weights of its gradient (the Scope adds
``sum_i w_i @ J_i`` to the objective's gradient) and a batched version for populations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["PHR", "Quadratic"]


@dataclass
class Quadratic:
    """Quadratic penalty: rho * (sum max(0, -g)^2 + sum h^2)."""

    kinds: tuple[str, ...]
    rho: float

    def __call__(self, vals: list[torch.Tensor], want_grad: bool) -> tuple[float, list[Any]]:
        term = 0.0
        weights = []
        for kind, v in zip(self.kinds, vals, strict=True):
            r = torch.clamp(-v, min=0) if kind == "ineq" else v
            term += float((r**2).sum())
            weights.append(-2 * self.rho * r if kind == "ineq" else 2 * self.rho * r)
        return self.rho * term, weights

    def batch(self, vals: list[torch.Tensor]) -> torch.Tensor:
        n = vals[0].shape[0]
        total = torch.zeros(n, dtype=torch.float64)
        for kind, V in zip(self.kinds, vals, strict=True):
            r = torch.clamp(-V, min=0) if kind == "ineq" else V
            total = total + (r.double() ** 2).sum(dim=1)
        return self.rho * total


@dataclass
class PHR:
    """Powell-Hestenes-Rockafellar augmented Lagrangian terms for g >= 0 and h = 0."""

    kinds: tuple[str, ...]
    rho: float
    lam: list[torch.Tensor]
    prev_viol: float = math.inf

    def __call__(self, vals: list[torch.Tensor], want_grad: bool) -> tuple[float, list[Any]]:
        term = 0.0
        weights = []
        for kind, v, lam in zip(self.kinds, vals, self.lam, strict=True):
            v = v.double()
            if kind == "ineq":
                s = torch.clamp(lam - self.rho * v, min=0)
                term += float((s**2 - lam**2).sum()) / (2 * self.rho)
                weights.append(-s)
            else:
                term += float((lam * v + 0.5 * self.rho * v**2).sum())
                weights.append(lam + self.rho * v)
        return term, weights

    def batch(self, vals: list[torch.Tensor]) -> torch.Tensor:
        n = vals[0].shape[0]
        total = torch.zeros(n, dtype=torch.float64)
        for kind, V, lam in zip(self.kinds, vals, self.lam, strict=True):
            V = V.double()
            if kind == "ineq":
                s = torch.clamp(lam - self.rho * V, min=0)
                total = total + ((s**2 - lam**2).sum(dim=1)) / (2 * self.rho)
            else:
                total = total + (lam * V + 0.5 * self.rho * V**2).sum(dim=1)
        return total
