"""The reference problems of SEEDS.md (the tutorials this project reproduces and improves on).

Data and start points use private seeded generators that reproduce the tutorials'
``torch.manual_seed(42)`` / ``np.random.seed(42)`` draws without touching the global RNGs.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..constraints import Ineq
from ._base import Problem, register_problem

__all__ = ["mlp_identity_data"]

# Certified global minimum of mlp_identity with the tutorial's data (SEEDS.md section 1).
MLP_IDENTITY_F_OPT = 0.783054161501


def mlp_identity_data(data_seed: int = 42) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets of mlp_identity, drawn exactly as the tutorial did.

    The tutorial seeded torch, built the network (whose default initialization consumes 10
    uniform draws: 4 + 4 weights, 2 biases), then drew ``randn(32, 2)`` in float32 and
    converted to float64, and multiplied column 1 by 1000. The same stream is replayed here
    on a private generator.
    """
    g = torch.Generator().manual_seed(data_seed)
    for shape in ((2, 2), (2, 2), (2,)):  # the two Linear layers' default initialization
        torch.empty(shape).uniform_(generator=g)
    inputs = torch.randn(32, 2, generator=g).to(torch.float64)
    inputs[:, 1] *= 1000.0
    return inputs, inputs.clone()


def _mlp_forward(x: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    w1 = x[0:4].reshape(2, 2)
    w2 = x[4:8].reshape(2, 2)
    b2 = x[8:10]
    return torch.relu(inputs @ w1.T) @ w2.T + b2


# Rows per block of mlp_identity's batched function (see batched below).
BLOCK = 512


@register_problem("mlp_identity")
def mlp_identity(data_seed: int = 42, x0_seed: int = 42) -> Problem:
    """Ill-conditioned identity regression with a 2-2-2 ReLU network (10 parameters)."""
    inputs, target = mlp_identity_data(data_seed)

    def fn(x: torch.Tensor) -> torch.Tensor:
        return torch.mean((_mlp_forward(x, inputs) - target) ** 2)

    u0, u1 = inputs[:, 0], inputs[:, 1]
    t0, t1 = target[:, 0], target[:, 1]
    scale = 2 * inputs.shape[0]

    def batched(X: torch.Tensor) -> torch.Tensor:
        # The 2-2-2 network written out unit by unit with fused multiply-adds: broadcasting
        # over (n, 32) beats batched 2x2 matrix products by 3x at populations of 1,000, and
        # each op saved counts at 100 (benchmarks/throughput.py). Blocks of BLOCK rows keep
        # the dozen (rows, 32) temporaries in cache: 2x faster per row at 10,000 rows.
        if X.shape[0] > BLOCK:
            return torch.cat([block(X[i : i + BLOCK]) for i in range(0, X.shape[0], BLOCK)])
        return block(X)

    def block(X: torch.Tensor) -> torch.Tensor:
        w = X.T.unsqueeze(-1)  # (10, n, 1)
        h0 = torch.addcmul(w[0] * u0, w[1], u1).relu_()
        h1 = torch.addcmul(w[2] * u0, w[3], u1).relu_()
        r0 = torch.addcmul(torch.addcmul(w[8] - t0, w[4], h0), w[5], h1)
        r1 = torch.addcmul(torch.addcmul(w[9] - t1, w[6], h0), w[7], h1)
        return (r0.square_().sum(dim=1) + r1.square_().sum(dim=1)) / scale

    x0 = torch.from_numpy(0.1 * np.random.RandomState(x0_seed).randn(10))
    known = data_seed == 42
    return Problem(
        name="mlp_identity",
        fn=fn,
        batched=batched,
        x0=x0,
        bounds=(-torch.ones(10, dtype=torch.float64), torch.ones(10, dtype=torch.float64)),
        f_opt=MLP_IDENTITY_F_OPT if known else None,
        x_opt=torch.tensor(_MLP_X_OPT, dtype=torch.float64) if known else None,
        params={"data_seed": data_seed, "x0_seed": x0_seed},
        description="Linear(2,2,no bias)-ReLU-Linear(2,2) fitting the identity on inputs whose "
        "column 1 is 1000 times column 0; MSE; flat order W1, W2, b2.",
    )


@register_problem("abs_square")
def abs_square(dtype: torch.dtype = torch.float32) -> Problem:
    """f(x) = |x^2| from x0 = 2.5 (the notebook's first example)."""
    return Problem(
        name="abs_square",
        fn=lambda x: torch.abs(x**2).sum(),
        x0=torch.tensor([2.5], dtype=dtype),
        bounds=(torch.tensor([-5.0], dtype=dtype), torch.tensor([5.0], dtype=dtype)),
        f_opt=0.0,
        x_opt=torch.zeros(1, dtype=dtype),
        params={"dtype": dtype},
        description="|x^2| in one dimension.",
    )


def _wavy(x: torch.Tensor) -> torch.Tensor:
    return (x**2 / 20 + torch.tanh(torch.sin(x))).sum()


@register_problem("wavy_bowl")
def wavy_bowl(dtype: torch.dtype = torch.float32) -> Problem:
    """f(x) = x^2/20 + tanh(sin(x)) from x0 = 8: a bowl with many local minima."""
    return Problem(
        name="wavy_bowl",
        fn=_wavy,
        x0=torch.tensor([8.0], dtype=dtype),
        bounds=(torch.tensor([-10.0], dtype=dtype), torch.tensor([10.0], dtype=dtype)),
        f_opt=WAVY_F_OPT,
        x_opt=torch.tensor([WAVY_X_OPT], dtype=dtype),
        params={"dtype": dtype},
        description="x^2/20 + tanh(sin(x)); global minimum near x = -1.28046.",
    )


@register_problem("rosenbrock")
def rosenbrock(
    a: float = 1.0, b: float = 5.0, dim: int = 2, dtype: torch.dtype = torch.float32
) -> Problem:
    """Rosenbrock sum_i (a - x_i)^2 + b (x_{i+1} - x_i^2)^2; SEEDS.md uses a=1, b=5, float32."""
    if dim < 2:
        raise ValueError(f"rosenbrock needs dim >= 2, got {dim}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        return ((a - x[:-1]) ** 2 + b * (x[1:] - x[:-1] ** 2) ** 2).sum()

    def batched(X: torch.Tensor) -> torch.Tensor:
        return ((a - X[:, :-1]) ** 2 + b * (X[:, 1:] - X[:, :-1] ** 2) ** 2).sum(dim=1)

    x0 = torch.tensor([(-1.0) ** (i + 1) for i in range(dim)], dtype=dtype)
    return Problem(
        name="rosenbrock",
        fn=fn,
        batched=batched,
        x0=x0,
        bounds=(torch.full((dim,), -2.0, dtype=dtype), torch.full((dim,), 2.0, dtype=dtype)),
        f_opt=0.0,
        x_opt=_rosenbrock_x_opt(a, dim, dtype),
        params={"a": a, "b": b, "dim": dim, "dtype": dtype},
        description="Rosenbrock's banana valley; minimum 0 at (1, ..., 1) for a = 1.",
    )


def _rosenbrock_x_opt(a: float, dim: int, dtype: torch.dtype) -> torch.Tensor | None:
    if dim == 2:
        return torch.tensor([a, a * a], dtype=dtype)
    if a in (0.0, 1.0):
        return torch.full((dim,), float(a), dtype=dtype)
    return None


def _flower_fn(a: float, b: float, c: float):
    def fn(x: torch.Tensor) -> torch.Tensor:
        return a * torch.linalg.vector_norm(x) + b * torch.sin(c * torch.atan2(x[1], x[0]))

    return fn


@register_problem("flower")
def flower(
    a: float = 1.0, b: float = 1.0, c: float = 4.0, dtype: torch.dtype = torch.float32
) -> Problem:
    """a*||x|| + b*sin(c*atan2(x2, x1)) from (20, 20); infimum -b approached near the origin."""
    return Problem(
        name="flower",
        fn=_flower_fn(a, b, c),
        x0=torch.tensor([20.0, 20.0], dtype=dtype),
        bounds=(torch.full((2,), -25.0, dtype=dtype), torch.full((2,), 25.0, dtype=dtype)),
        f_opt=-float(b),
        x_opt=None,
        params={"a": a, "b": b, "c": c, "dtype": dtype},
        description="Flower-shaped valleys; undefined (non-differentiable) at the origin.",
    )


@register_problem("flower_constrained")
def flower_constrained(dtype: torch.dtype = torch.float32) -> Problem:
    """flower subject to x1^2 + x2^2 >= 2, from (0.5, 0.5); optimum sqrt(2) - 1."""
    angle = math.radians(67.5)
    r = math.sqrt(2.0)
    return Problem(
        name="flower_constrained",
        fn=_flower_fn(1.0, 1.0, 4.0),
        x0=torch.tensor([0.5, 0.5], dtype=dtype),
        bounds=(torch.full((2,), -25.0, dtype=dtype), torch.full((2,), 25.0, dtype=dtype)),
        f_opt=math.sqrt(2.0) - 1.0,
        x_opt=torch.tensor([r * math.cos(angle), r * math.sin(angle)], dtype=dtype),
        constraints=(Ineq(lambda x: (x**2).sum() - 2.0, name="outside_disk"),),
        params={"dtype": dtype},
        description="The flower function outside the disk of radius sqrt(2).",
    )


# Global minimum of wavy_bowl (Brent's method in float64 from the bracket [-2, -0.5]).
WAVY_X_OPT = -1.280459446797556
WAVY_F_OPT = -0.661470591797071

# A certified minimizer of mlp_identity (data seed 42), found by SLSQP with the exact gradient
# and rescaled per hidden unit (ReLU is positively homogeneous) so that it lies in [-1, 1]^10.
_MLP_X_OPT: list[float] = [
    0.00018697095246222325,
    -1.0,
    0.0002861587956371476,
    1.0,
    0.000186725377796298,
    0.0002862156728722421,
    -0.9999999802505993,
    0.9999999145939997,
    -0.019444234317669923,
    9.50331198005738e-06,
]
