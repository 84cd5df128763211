"""Non-differentiable and noisy variants of registered problems.

- ``step``: any problem evaluated at the nearest point of a grid, f(round(x / h) * h):
  piecewise constant, so its gradient is zero almost everywhere and useless. It is declared
  ``differentiable=False``, and gradient methods refuse it before evaluating.
- ``quantized_mlp_identity``: the tutorial network with its weights rounded to a grid before
  the forward pass, as in low-precision inference; also declared non-differentiable.
- ``noisy``: a problem plus Gaussian noise of a given scale. The noise of the k-th evaluation
  is drawn from a counter-based generator (Philox keyed by the user's seed, counter k), so it
  is independent across evaluations, reproducible from the seed, the same whether points come
  one at a time or in batches, and never touches a global RNG.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ._base import Problem, get, register_problem
from .seeds import mlp_identity

__all__ = ["CounterNoise"]


def _base_problem(base: str | Problem, base_params: dict[str, Any] | None) -> Problem:
    if isinstance(base, Problem):
        if base_params:
            raise ValueError("base_params only apply when base is a problem name")
        return base
    if not isinstance(base, str):
        raise TypeError(f"base must be a problem name or a Problem, got {type(base).__name__}")
    if base_params is not None and not isinstance(base_params, dict):
        raise TypeError(f"base_params must be a dict, got {type(base_params).__name__}")
    return get(base, **(base_params or {}))


def _check_positive(name: str, value: Any) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _grid(h: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> round(x / h) * h``: the nearest point of the grid h Z^d (ties to even)."""

    def q(x: torch.Tensor) -> torch.Tensor:
        return torch.round(x / h) * h

    return q


def _quantized(base: Problem, h: float, name: str, params: dict[str, Any], desc: str) -> Problem:
    """``base`` evaluated on the grid of step ``h``, declared non-differentiable."""
    q = _grid(h)
    base_fn, base_batched = base.fn, base.batched
    f_opt = x_opt = None
    if base.x_opt is not None and torch.equal(q(base.x_opt), base.x_opt):
        # The minimizer is a grid point, so the grid cannot do better than the base problem.
        f_opt, x_opt = base.f_opt, base.x_opt.clone()
    return Problem(
        name=name,
        fn=lambda x: base_fn(q(x)),
        batched=None if base_batched is None else (lambda X: base_batched(q(X))),
        x0=base.x0.clone(),
        bounds=base.bounds,
        f_opt=f_opt,
        x_opt=x_opt,
        differentiable=False,
        noisy=base.noisy,
        constraints=base.constraints,
        params=params,
        description=desc,
    )


@register_problem("step")
def step(
    base: str | Problem = "sphere", h: float = 0.1, base_params: dict[str, Any] | None = None
) -> Problem:
    """A problem rounded to a grid: f(round(x / h) * h), piecewise constant (no gradient)."""
    h = _check_positive("h", h)
    p = _base_problem(base, base_params)
    params = {"base": base, "h": h, "base_params": dict(base_params or {})}
    return _quantized(p, h, "step", params, f"{p.name} evaluated on the grid h Z^d with h = {h:g}.")


@register_problem("quantized_mlp_identity")
def quantized_mlp_identity(h: float = 2.0**-6, data_seed: int = 42, x0_seed: int = 42) -> Problem:
    """mlp_identity with its parameters rounded to multiples of ``h`` before the forward pass."""
    h = _check_positive("h", h)
    params = {"h": h, "data_seed": data_seed, "x0_seed": x0_seed}
    desc = f"mlp_identity with weights quantized to multiples of {h:g}; non-differentiable."
    return _quantized(mlp_identity(data_seed, x0_seed), h, "quantized_mlp_identity", params, desc)


class CounterNoise:
    """Standard normal draws indexed by an evaluation counter (Philox keyed by ``seed``).

    Draw k comes from its own Philox stream (key ``seed``, counter ``k`` in the high word), so
    draws are independent, reproducible and do not depend on how evaluations are batched.
    ``reset()`` starts the sequence again.
    """

    def __init__(self, seed: int) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if not 0 <= seed < 2**128:
            raise ValueError(f"seed must be in [0, 2**128), got {seed}")
        self.seed = int(seed)
        self.count = 0

    def reset(self) -> None:
        """Start the sequence of draws again from the first one."""
        self.count = 0

    def draw(self, n: int) -> np.ndarray:
        """The next ``n`` draws (one per evaluation)."""
        out = np.empty(n)
        for i in range(n):
            bits = np.random.Philox(key=self.seed, counter=(self.count + i) << 192)
            out[i] = np.random.Generator(bits).standard_normal()
        self.count += n
        return out


@register_problem("noisy")
def noisy(
    base: str | Problem = "sphere",
    scale: float = 0.01,
    seed: int = 0,
    base_params: dict[str, Any] | None = None,
) -> Problem:
    """A problem plus Gaussian noise: f(x) + scale * z_k, z_k drawn anew at every evaluation.

    The gradient is the base problem's (the noise does not depend on x). ``x_opt`` is the
    noise-free problem's minimizer; ``f_opt`` is None because the value there is random (the
    noise-free optimum is the base problem's ``f_opt``). Build the problem again (or call
    ``problem.fn.noise.reset()``) to replay the same noise sequence.
    """
    scale = _check_positive("scale", scale)
    p = _base_problem(base, base_params)
    noise = CounterNoise(seed)
    base_fn, base_batched = p.fn, p.batched

    def fn(x: torch.Tensor) -> torch.Tensor:
        return base_fn(x) + scale * float(noise.draw(1)[0])

    def batched(X: torch.Tensor) -> torch.Tensor:
        if base_batched is not None:
            clean = base_batched(X)
        else:
            clean = torch.stack([base_fn(x) for x in X])
        z = torch.as_tensor(noise.draw(X.shape[0]), dtype=clean.dtype, device=clean.device)
        return clean + scale * z

    fn.noise = noise  # type: ignore[attr-defined]
    batched.noise = noise  # type: ignore[attr-defined]
    return Problem(
        name="noisy",
        fn=fn,
        batched=batched,
        x0=p.x0.clone(),
        bounds=p.bounds,
        f_opt=None,
        x_opt=None if p.x_opt is None else p.x_opt.clone(),
        differentiable=p.differentiable,
        noisy=True,
        constraints=p.constraints,
        params={"base": base, "scale": scale, "seed": seed, "base_params": dict(base_params or {})},
        description=f"{p.name} plus Gaussian noise of standard deviation {scale:g} "
        f"(seed {seed}, independent at every evaluation).",
    )
