"""Classic test functions, batched and differentiable, each with bounds and known optimum.

Every function is written once over the last axis, so the same code evaluates one point
``(d,)`` and a population ``(n, d)``, and autograd differentiates it. Where the textbook
formula has an infinite derivative at a single point (a square root at zero), ``tiny`` (the
smallest normal number of the dtype) is added under the root: values do not change, and
gradients stay finite everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ._base import Problem, register_problem

__all__ = [
    "SCHWEFEL_F_OPT_PER_DIM",
    "SCHWEFEL_X_OPT",
    "STYBLINSKI_TANG_F_OPT_PER_DIM",
    "STYBLINSKI_TANG_X_OPT",
]

# Schwefel: maximizer of x sin(sqrt|x|) on [-500, 500] and 418.9829 minus its maximum, so
# f_opt is 1.2727566e-5 per dimension, not 0 (418.9829 is a rounding of 418.98288727...).
SCHWEFEL_X_OPT = 420.96874635998203
SCHWEFEL_F_OPT_PER_DIM = 1.2727566266076575e-05
# Styblinski-Tang: the root of 4x^3 - 32x + 5 near -2.9035 and the value per dimension there.
STYBLINSKI_TANG_X_OPT = -2.903534027771177
STYBLINSKI_TANG_F_OPT_PER_DIM = -39.16616570377142


def _check_dim(dim: int, minimum: int = 1) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise TypeError(f"dim must be an int, got {type(dim).__name__}")
    if dim < minimum:
        raise ValueError(f"dim must be >= {minimum}, got {dim}")


def _full(dim: int, value: float, dtype: torch.dtype) -> torch.Tensor:
    return torch.full((dim,), float(value), dtype=dtype)


def _make(
    name: str,
    f: Callable[[torch.Tensor], torch.Tensor],
    *,
    dim: int,
    dtype: torch.dtype,
    x0: float,
    half_width: float,
    f_opt: float,
    x_opt: float,
    description: str,
) -> Problem:
    """A Problem over the box [-half_width, half_width]^dim, starting at (x0, ..., x0)."""
    _check_dim(dim)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    return Problem(
        name=name,
        fn=f,
        batched=f,
        x0=_full(dim, x0, dtype),
        bounds=(_full(dim, -half_width, dtype), _full(dim, half_width, dtype)),
        f_opt=f_opt,
        x_opt=_full(dim, x_opt, dtype),
        params={"dim": dim, "dtype": dtype},
        description=description,
    )


def _sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum(dim=-1)


@register_problem("sphere")
def sphere(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Sum of squares; the simplest sanity check (minimum 0 at the origin)."""
    return _make(
        "sphere",
        _sphere,
        dim=dim,
        dtype=dtype,
        x0=3.0,
        half_width=5.0,
        f_opt=0.0,
        x_opt=0.0,
        description="f(x) = sum x_i^2.",
    )


def _ellipsoid(x: torch.Tensor) -> torch.Tensor:
    d = x.shape[-1]
    exponents = torch.arange(d, dtype=x.dtype, device=x.device) * (6.0 / max(d - 1, 1))
    return (10.0**exponents * x**2).sum(dim=-1)


@register_problem("ellipsoid")
def ellipsoid(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Axis-aligned ellipsoid with condition number 1e6: tests scaling, not multimodality."""
    return _make(
        "ellipsoid",
        _ellipsoid,
        dim=dim,
        dtype=dtype,
        x0=3.0,
        half_width=5.0,
        f_opt=0.0,
        x_opt=0.0,
        description="f(x) = sum 10^(6 (i-1)/(d-1)) x_i^2 (condition number 1e6).",
    )


def _rastrigin(x: torch.Tensor) -> torch.Tensor:
    return 10.0 * x.shape[-1] + (x**2 - 10.0 * torch.cos(2 * math.pi * x)).sum(dim=-1)


@register_problem("rastrigin")
def rastrigin(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Rastrigin: a sphere covered by a regular grid of about 10^d local minima."""
    return _make(
        "rastrigin",
        _rastrigin,
        dim=dim,
        dtype=dtype,
        x0=3.0,
        half_width=5.12,
        f_opt=0.0,
        x_opt=0.0,
        description="f(x) = 10 d + sum (x_i^2 - 10 cos(2 pi x_i)).",
    )


def _ackley(x: torch.Tensor) -> torch.Tensor:
    tiny = torch.finfo(x.dtype).tiny
    r = torch.sqrt((x**2).mean(dim=-1) + tiny)
    c = torch.cos(2 * math.pi * x).mean(dim=-1)
    # Written as two differences so the value at the optimum is exactly 0.
    return 20.0 * (1.0 - torch.exp(-0.2 * r)) + (math.e - torch.exp(c))


@register_problem("ackley")
def ackley(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Ackley: a nearly flat outer region with a deep funnel at the origin."""
    return _make(
        "ackley",
        _ackley,
        dim=dim,
        dtype=dtype,
        x0=3.0,
        half_width=32.768,
        f_opt=0.0,
        x_opt=0.0,
        description="f(x) = -20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e.",
    )


def _griewank(x: torch.Tensor) -> torch.Tensor:
    i = torch.arange(1, x.shape[-1] + 1, dtype=x.dtype, device=x.device)
    return 1.0 + (x**2).sum(dim=-1) / 4000.0 - torch.cos(x / torch.sqrt(i)).prod(dim=-1)


@register_problem("griewank")
def griewank(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Griewank: a wide bowl with product-coupled oscillations (minimum 0 at the origin)."""
    return _make(
        "griewank",
        _griewank,
        dim=dim,
        dtype=dtype,
        x0=100.0,
        half_width=600.0,
        f_opt=0.0,
        x_opt=0.0,
        description="f(x) = 1 + sum x_i^2 / 4000 - prod cos(x_i / sqrt(i)).",
    )


def _schwefel(x: torch.Tensor) -> torch.Tensor:
    tiny = torch.finfo(x.dtype).tiny
    s = (x * torch.sin(torch.sqrt(x.abs() + tiny))).sum(dim=-1)
    return 418.9829 * x.shape[-1] - s


@register_problem("schwefel")
def schwefel(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Schwefel: deceptive, its best minimum lies near the box corner, far from the next best."""
    return _make(
        "schwefel",
        _schwefel,
        dim=dim,
        dtype=dtype,
        x0=100.0,
        half_width=500.0,
        f_opt=SCHWEFEL_F_OPT_PER_DIM * dim,
        x_opt=SCHWEFEL_X_OPT,
        description="f(x) = 418.9829 d - sum x_i sin(sqrt|x_i|); minimum 1.27e-5 d at "
        "x_i = 420.9687.",
    )


def _levy(x: torch.Tensor) -> torch.Tensor:
    w = 1.0 + (x - 1.0) / 4.0
    first = torch.sin(math.pi * w[..., 0]) ** 2
    mid = (w[..., :-1] - 1.0) ** 2 * (1.0 + 10.0 * torch.sin(math.pi * w[..., :-1] + 1.0) ** 2)
    last = (w[..., -1] - 1.0) ** 2 * (1.0 + torch.sin(2 * math.pi * w[..., -1]) ** 2)
    return first + mid.sum(dim=-1) + last


@register_problem("levy")
def levy(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Levy: many local minima along ridges (minimum 0 at (1, ..., 1))."""
    return _make(
        "levy",
        _levy,
        dim=dim,
        dtype=dtype,
        x0=-5.0,
        half_width=10.0,
        f_opt=0.0,
        x_opt=1.0,
        description="Levy's function with w_i = 1 + (x_i - 1) / 4.",
    )


def _styblinski_tang(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (x**4 - 16.0 * x**2 + 5.0 * x).sum(dim=-1)


@register_problem("styblinski_tang")
def styblinski_tang(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Styblinski-Tang: 2^d local minima; starts in the basin of the worse one (x_i = 2.7468)."""
    return _make(
        "styblinski_tang",
        _styblinski_tang,
        dim=dim,
        dtype=dtype,
        x0=3.0,
        half_width=5.0,
        f_opt=STYBLINSKI_TANG_F_OPT_PER_DIM * dim,
        x_opt=STYBLINSKI_TANG_X_OPT,
        description="f(x) = 0.5 sum (x_i^4 - 16 x_i^2 + 5 x_i); minimum -39.166 d at "
        "x_i = -2.9035.",
    )
