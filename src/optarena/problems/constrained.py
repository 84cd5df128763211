"""Constrained test problems with known optima (beyond SEEDS.md's flower_constrained).

- ``rosenbrock_disk``: Rosenbrock (b = 100) inside the unit disk, the classic fmincon example.
- ``hs07``: Hock & Schittkowski problem 7, one nonlinear equality constraint.
- ``rosen_suzuki``: Hock & Schittkowski problem 43 (Rosen-Suzuki), three inequalities, d = 4.
"""

from __future__ import annotations

import math

import torch

from ..constraints import Eq, Ineq
from ._base import Problem, register_problem

F64 = torch.float64


@register_problem("rosenbrock_disk")
def rosenbrock_disk() -> Problem:
    """Rosenbrock (a=1, b=100) subject to x1^2 + x2^2 <= 1; optimum on the circle."""
    return Problem(
        name="rosenbrock_disk",
        fn=lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2,
        batched=lambda X: (1 - X[:, 0]) ** 2 + 100 * (X[:, 1] - X[:, 0] ** 2) ** 2,
        x0=torch.tensor([0.0, 0.0], dtype=F64),
        bounds=(torch.full((2,), -1.5, dtype=F64), torch.full((2,), 1.5, dtype=F64)),
        f_opt=0.04567480871950123,
        x_opt=torch.tensor([0.7864151530568466, 0.6176983139385898], dtype=F64),
        constraints=(Ineq(lambda x: 1 - (x**2).sum(), name="unit_disk"),),
        description="Rosenbrock's valley cut by the unit disk; the optimum lies on the circle.",
    )


@register_problem("hs07")
def hs07() -> Problem:
    """HS 7: min ln(1 + x1^2) - x2 s.t. (1 + x1^2)^2 + x2^2 = 4; f* = -sqrt(3) at (0, sqrt(3))."""
    return Problem(
        name="hs07",
        fn=lambda x: torch.log1p(x[0] ** 2) - x[1],
        x0=torch.tensor([2.0, 2.0], dtype=F64),
        bounds=(torch.full((2,), -4.0, dtype=F64), torch.full((2,), 4.0, dtype=F64)),
        f_opt=-math.sqrt(3.0),
        x_opt=torch.tensor([0.0, math.sqrt(3.0)], dtype=F64),
        constraints=(Eq(lambda x: (1 + x[0] ** 2) ** 2 + x[1] ** 2 - 4, name="hs07_eq"),),
        description="Hock-Schittkowski 7: one nonlinear equality constraint.",
    )


def _rosen_suzuki(x: torch.Tensor) -> torch.Tensor:
    return (
        x[0] ** 2
        + x[1] ** 2
        + 2 * x[2] ** 2
        + x[3] ** 2
        - 5 * x[0]
        - 5 * x[1]
        - 21 * x[2]
        + 7 * x[3]
    )


def _rosen_suzuki_cons(x: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [
            8 - x[0] ** 2 - x[1] ** 2 - x[2] ** 2 - x[3] ** 2 - x[0] + x[1] - x[2] + x[3],
            10 - x[0] ** 2 - 2 * x[1] ** 2 - x[2] ** 2 - 2 * x[3] ** 2 + x[0] + x[3],
            5 - 2 * x[0] ** 2 - x[1] ** 2 - x[2] ** 2 - 2 * x[0] + x[1] + x[3],
        ]
    )


@register_problem("rosen_suzuki")
def rosen_suzuki() -> Problem:
    """HS 43 (Rosen-Suzuki): a convex quadratic under three quadratic inequalities; f* = -44."""
    return Problem(
        name="rosen_suzuki",
        fn=_rosen_suzuki,
        x0=torch.zeros(4, dtype=F64),
        bounds=(torch.full((4,), -5.0, dtype=F64), torch.full((4,), 5.0, dtype=F64)),
        f_opt=-44.0,
        x_opt=torch.tensor([0.0, 1.0, 2.0, -1.0], dtype=F64),
        constraints=(Ineq(_rosen_suzuki_cons, name="rosen_suzuki"),),
        description="Hock-Schittkowski 43: three inequality constraints, two active.",
    )
