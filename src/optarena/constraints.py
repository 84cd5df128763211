"""Constraints as tensor functions: ``Ineq(fun)`` means fun(x) >= 0, ``Eq(fun)`` fun(x) == 0.

Each function may return a scalar or a vector (several constraints at once). Jacobians come
from autograd, so solvers that use them (SLSQP, trust-constr) get exact ones, and populations
are evaluated in one batched call (``torch.func.vmap``, with a loop fallback). A function
autograd cannot differentiate (numpy code, scipy's constraint objects: see
``optarena.scipy_forms``) gives its Jacobian as ``jac``. ``linear(A, b)`` builds ``A x <= b``
as an Ineq.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

__all__ = ["Constraint", "ConstraintSet", "Eq", "Ineq", "linear"]


@dataclass(frozen=True)
class Constraint:
    """Base of :class:`Ineq` and :class:`Eq`: a tensor function and a feasibility tolerance.

    ``jac`` (optional) maps x to the ``(m, d)`` Jacobian of ``fun``; without it the Jacobian
    comes from autograd through ``fun``. Give it when ``fun`` is not torch-differentiable.
    """

    fun: Callable[[torch.Tensor], Any]
    tol: float = 1e-8
    name: str = ""
    jac: Callable[[torch.Tensor], Any] | None = None

    kind: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        if not callable(self.fun):
            raise TypeError(
                f"{type(self).__name__} needs a callable, got {type(self.fun).__name__}"
            )
        if not (isinstance(self.tol, int | float) and self.tol >= 0):
            raise ValueError(f"tol must be a number >= 0, got {self.tol!r}")
        if self.jac is not None and not callable(self.jac):
            raise TypeError(f"jac must be callable or None, got {type(self.jac).__name__}")

    def values(self, x: torch.Tensor) -> torch.Tensor:
        """The constraint function at ``x`` as a 1-D tensor."""
        y = self.fun(x)
        if not isinstance(y, torch.Tensor):
            y = torch.as_tensor(np.asarray(y, dtype=np.float64), dtype=x.dtype)
        return y.reshape(-1)

    def violation_of(self, values: torch.Tensor) -> torch.Tensor:
        """Per-component violation (>= 0, 0 when satisfied) from constraint values."""
        raise NotImplementedError

    def violation(self, x: torch.Tensor) -> torch.Tensor:
        """Per-component violation at ``x``."""
        return self.violation_of(self.values(x))


@dataclass(frozen=True)
class Ineq(Constraint):
    """Inequality constraint ``fun(x) >= 0`` (scalar or componentwise)."""

    kind: ClassVar[str] = "ineq"

    def violation_of(self, values: torch.Tensor) -> torch.Tensor:
        return torch.clamp(-values, min=0)


@dataclass(frozen=True)
class Eq(Constraint):
    """Equality constraint ``fun(x) == 0`` (scalar or componentwise)."""

    kind: ClassVar[str] = "eq"

    def violation_of(self, values: torch.Tensor) -> torch.Tensor:
        return values.abs()


def linear(A: Any, b: Any, tol: float = 1e-8, name: str = "linear") -> Ineq:
    """``A x <= b`` as an :class:`Ineq` (``b - A x >= 0``)."""
    A_t = torch.as_tensor(np.asarray(A, dtype=np.float64))
    b_t = torch.as_tensor(np.asarray(b, dtype=np.float64)).reshape(-1)
    if A_t.ndim != 2 or A_t.shape[0] != b_t.shape[0]:
        raise ValueError(
            f"linear(A, b) needs A of shape (m, d) and b of length m, got {tuple(A_t.shape)} "
            f"and {tuple(b_t.shape)}"
        )

    def fun(x: torch.Tensor) -> torch.Tensor:
        return b_t.to(x.dtype) - A_t.to(x.dtype) @ x

    return Ineq(fun, tol=tol, name=name)


def _given_jacobian(
    c: Constraint, jac: Callable[[torch.Tensor], Any], x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Values and the ``jac`` a constraint brought, checked to be ``(m, d)``."""
    with torch.no_grad():
        v = c.values(x.detach().clone())
        J = jac(x.detach().clone())
    if not isinstance(J, torch.Tensor):
        J = torch.as_tensor(np.asarray(J, dtype=np.float64))
    J = J.to(dtype=x.dtype, device=x.device)
    if J.numel() != v.numel() * x.numel():
        raise ValueError(
            f"the jac of constraint {c.name or c.fun!r} gave shape {tuple(J.shape)}; expected "
            f"({v.numel()}, {x.numel()}): one row per constraint value, one column per variable"
        )
    return v, J.reshape(v.numel(), x.numel())


class ConstraintSet:
    """Several constraints evaluated together: values, violations, Jacobians, batches."""

    def __init__(self, constraints: Sequence[Constraint]) -> None:
        self.items = tuple(constraints)
        # a function marked ``vmappable = False`` (numpy code) is evaluated row by row
        self._vmap_ok = [getattr(c.fun, "vmappable", True) for c in self.items]

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def values(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each constraint's values at ``x`` (no gradient)."""
        with torch.no_grad():
            return [c.values(x.detach().clone()) for c in self.items]

    def excess(self, vals: Sequence[torch.Tensor]) -> tuple[float, float]:
        """(max raw violation, max violation beyond each constraint's tolerance)."""
        raw = 0.0
        beyond = 0.0
        for c, v in zip(self.items, vals, strict=True):
            viol = torch.nan_to_num(c.violation_of(v), nan=math.inf)  # NaN: not satisfied
            if viol.numel():
                m = float(viol.max())
                raw = max(raw, m)
                beyond = max(beyond, m - c.tol if m > c.tol else 0.0)
        return raw, beyond

    def values_and_jacobians(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Each constraint's values and autograd Jacobian (shape (m_i, d)) at ``x``."""
        out = []
        for c in self.items:
            if c.jac is not None:
                out.append(_given_jacobian(c, c.jac, x))
                continue
            xx = x.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                v = c.values(xx)
                rows = []
                for i in range(v.numel()):
                    (g,) = torch.autograd.grad(
                        v[i], xx, retain_graph=i + 1 < v.numel(), allow_unused=True
                    )
                    rows.append(torch.zeros_like(xx) if g is None else g)
            jac = torch.stack(rows) if rows else torch.zeros(0, x.numel(), dtype=x.dtype)
            out.append((v.detach(), jac.detach()))
        return out

    def batch_values(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Each constraint's values for every row of ``X``: tensors of shape (n, m_i)."""
        n = X.shape[0]
        out = []
        for k, c in enumerate(self.items):
            V = None
            if self._vmap_ok[k]:
                try:
                    with torch.no_grad():
                        V = torch.func.vmap(c.values)(X.clone())
                except Exception:
                    self._vmap_ok[k] = False
            if V is None:
                with torch.no_grad():
                    V = torch.stack([c.values(X[i].clone()) for i in range(n)])
            out.append(V.reshape(n, -1))
        return out

    def batch_excess(self, vals: Sequence[torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Max raw violation and max violation beyond tolerance per row, from batch_values."""
        n = vals[0].shape[0] if vals else 0
        raw = np.zeros(n)
        beyond = np.zeros(n)
        for c, V in zip(self.items, vals, strict=True):
            viol = torch.nan_to_num(c.violation_of(V), nan=math.inf)  # NaN: not satisfied
            m = viol.max(dim=1).values.double().cpu().numpy() if viol.shape[1] else np.zeros(n)
            raw = np.maximum(raw, m)
            beyond = np.maximum(beyond, np.where(m > c.tol, m - c.tol, 0.0))
        return raw, beyond
