"""Classic test functions, batched and differentiable, each with bounds and known optimum."""

from __future__ import annotations

import torch

from ._base import Problem, register_problem


@register_problem("sphere")
def sphere(dim: int = 10, dtype: torch.dtype = torch.float64) -> Problem:
    """Sum of squares; the simplest sanity check (minimum 0 at the origin)."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return Problem(
        name="sphere",
        fn=lambda x: (x**2).sum(),
        batched=lambda X: (X**2).sum(dim=1),
        x0=torch.full((dim,), 3.0, dtype=dtype),
        bounds=(torch.full((dim,), -5.0, dtype=dtype), torch.full((dim,), 5.0, dtype=dtype)),
        f_opt=0.0,
        x_opt=torch.zeros(dim, dtype=dtype),
        params={"dim": dim, "dtype": dtype},
        description="f(x) = sum x_i^2.",
    )
