"""Everything a user hands to minimize(), read and checked before the first evaluation.

The objective (function, Objective or Problem), x0, bounds, constraints, device and seed:
one place for the forms each accepts and the message each refusal gives.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .constraints import Constraint
from .core.objective import Objective
from .problems import Problem

__all__ = [
    "BoundsLike",
    "as_bounds",
    "as_constraints",
    "as_device",
    "as_objective",
    "as_seed",
    "as_x0",
]

BoundsLike = Any


def as_objective(objective: Any) -> tuple[Objective, Problem | None]:
    """The Objective for what the user passed (Objective, Problem or tensor function)."""
    if isinstance(objective, Objective):
        return objective, None
    if isinstance(objective, Problem):
        return objective.objective(), objective
    if isinstance(objective, str):
        raise TypeError(
            f"got the string {objective!r} as objective; for a test problem pass "
            f"optarena.problems.get({objective!r})"
        )
    if isinstance(objective, nn.Module):
        raise TypeError(
            "an nn.Module needs a loss: use Objective.from_module(module, loss, args=..., "
            "target=..., params=...) and pass that"
        )
    if callable(objective):
        return Objective(objective), None
    raise TypeError(
        "objective must be a function of a 1-D tensor, an optarena.Objective or a Problem, "
        f"got {type(objective).__name__}"
    )


def as_x0(x0: Any, objective: Objective, problem: Problem | None) -> torch.Tensor:
    if x0 is None:
        if problem is not None:
            return problem.x0.clone()
        d = objective.default_x0
        if d is None:
            raise ValueError("x0 is required: pass the start point as a 1-D tensor or array")
        return d
    ref = objective.default_x0 if problem is None else problem.x0
    if isinstance(x0, torch.Tensor):
        t = x0.detach().clone()
        if not t.is_floating_point():
            t = t.to(torch.float64)
    elif isinstance(x0, np.ndarray):
        t = torch.from_numpy(np.array(x0, dtype=np.float64 if x0.dtype.kind in "biu" else None))
    else:
        try:
            t = torch.as_tensor(np.asarray(x0, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise TypeError(f"x0 must be a 1-D array of numbers, got {x0!r}") from e
    if not t.is_floating_point():
        raise TypeError(f"x0 must hold real numbers, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim != 1:
        raise ValueError(
            f"x0 must be 1-D, got shape {tuple(t.shape)}; flatten it (x0.reshape(-1)) and "
            "reshape inside the objective"
        )
    if t.numel() == 0:
        raise ValueError("x0 is empty: there is nothing to optimize")
    if ref is not None:
        if t.numel() != ref.numel():
            raise ValueError(f"x0 has {t.numel()} entries, the objective expects {ref.numel()}")
        t = t.to(dtype=ref.dtype, device=ref.device)
    if not bool(torch.isfinite(t).all()):
        bad = torch.nonzero(~torch.isfinite(t)).reshape(-1).tolist()
        raise ValueError(f"x0 has NaN or infinite entries at indices {bad}; give a finite start")
    return t


def as_bounds(bounds: BoundsLike, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    if bounds is None:
        return None
    d = x0.numel()
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):  # scipy.optimize.Bounds
        bounds = (bounds.lb, bounds.ub)
    try:
        arr = np.asarray(
            [
                np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
                for b in bounds
            ]
            if not isinstance(bounds, np.ndarray | torch.Tensor)
            else np.asarray(bounds, dtype=np.float64),
            dtype=np.float64,
        )
    except (TypeError, ValueError) as e:
        raise TypeError(
            "bounds must be (lower, upper) with scalars or arrays of length d, or a list of "
            f"d (low, high) pairs; got {bounds!r}"
        ) from e
    if arr.shape == (2,):
        lo, hi = np.full(d, arr[0]), np.full(d, arr[1])
    elif arr.shape == (2, d):
        lo, hi = arr[0], arr[1]
    elif arr.shape == (d, 2):
        lo, hi = arr[:, 0], arr[:, 1]
    else:
        raise ValueError(
            f"bounds have shape {arr.shape}; expected (lower, upper) as two scalars or two "
            f"arrays of length {d}, or {d} (low, high) pairs"
        )
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("bounds contain NaN; use -inf/inf for a side without a bound")
    if (lo > hi).any():
        i = int(np.flatnonzero(lo > hi)[0])
        raise ValueError(f"lower bound > upper bound at index {i}: {lo[i]} > {hi[i]}")
    lower = torch.as_tensor(lo).to(dtype=x0.dtype, device=x0.device)
    upper = torch.as_tensor(hi).to(dtype=x0.dtype, device=x0.device)
    # Round inwards when the problem's dtype cannot hold the bounds exactly (float32 x0 with
    # float64 bounds), so that no evaluated point lies outside the box the user gave.
    if x0.dtype != torch.float64:
        lo_t, hi_t = torch.as_tensor(lo), torch.as_tensor(hi)
        low_cut = (lower.double().cpu() < lo_t).to(lower.device)
        high_cut = (upper.double().cpu() > hi_t).to(upper.device)
        lower = torch.where(low_cut, torch.nextafter(lower, upper), lower)
        upper = torch.where(high_cut, torch.nextafter(upper, lower), upper)
    outside = (x0 < lower) | (x0 > upper)
    if bool(outside.any()):
        i = int(torch.nonzero(outside)[0])
        raise ValueError(
            f"x0 is outside the bounds at index {i}: {float(x0[i])} not in "
            f"[{float(lower[i])}, {float(upper[i])}]; clip it into the box or widen the bounds"
        )
    return lower, upper


def as_constraints(constraints: Any) -> tuple[Constraint, ...]:
    if constraints is None:
        return ()
    if isinstance(constraints, Constraint):
        return (constraints,)
    if not isinstance(constraints, Sequence):
        raise TypeError("constraints must be a sequence of optarena.Ineq / optarena.Eq")
    out = tuple(constraints)
    for c in out:
        if not isinstance(c, Constraint):
            raise TypeError(
                f"constraints must be optarena.Ineq(fun) or optarena.Eq(fun), got {c!r}"
            )
    return out


def as_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be like 'cpu' or 'cuda:0', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no MPS device here")
    return dev


def as_seed(seed: Any) -> int:
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)
