"""Everything a user hands to minimize(), read and checked before the first evaluation.

The objective (function, Objective or Problem), x0, bounds, constraints, device and seed (and,
from :mod:`optarena.core.memory`, the memory cap and the evaluation dtype): one place for the
forms each accepts and the message each refusal gives.
"""

from __future__ import annotations

import math
import numbers
import secrets
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import scipy.optimize as so
import torch
from torch import nn

from .constraints import Constraint
from .core.memory import as_eval_dtype, as_memory
from .core.objective import Objective
from .problems import Problem
from .scipy_forms import from_scipy, is_scipy_form

__all__ = [
    "MAX_SEED",
    "Bounds",
    "BoundsLike",
    "as_bounds",
    "as_constraints",
    "as_device",
    "as_eval_dtype",
    "as_memory",
    "as_objective",
    "as_seed",
    "as_x0",
]

BoundsLike = Any

#: The largest seed: seeds are stored as signed 64-bit integers (SQLite, torch generators).
MAX_SEED = 2**63 - 1


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
        return Objective(objective, backend="auto"), None  # numpy or torch: its first call tells
    raise TypeError(
        "objective must be a function of a 1-D tensor, an optarena.Objective or a Problem, "
        f"got {type(objective).__name__}"
    )


def _box_centre(bounds: Any) -> torch.Tensor:
    """The centre of finite bounds whose form gives their dimension (float64), else the
    ValueError saying that x0 is required."""
    need, d, read = "x0 is required: pass the start point as a 1-D tensor or array", 0, _box
    if isinstance(bounds, Bounds | so.Bounds):  # the sizes of its array sides
        scipy = isinstance(bounds, so.Bounds)  # whose scalar sides are arrays of one entry
        sides = [_numbers(v, 0.0, "bounds") for v in ((bounds.lb, bounds.ub) if scipy else bounds)]
        d = max([a.size for a in sides if a.ndim == 1 and not (scipy and a.size == 1)], default=0)
    elif isinstance(bounds, tuple | list) and len(bounds) == 2 and all(map(_is_array, bounds)):
        d = int(np.size(_numbers(bounds[0], 0.0, "lower")))
    elif isinstance(bounds, tuple | list) and all(map(_is_pair, bounds)):  # d (low, high) pairs
        d, read = len(bounds), _pairs  # scipy's reading (as_bounds resolves a 2x2 from it)
    lo, hi = read(bounds, d) if d > 0 else (np.array([np.inf]),) * 2
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        raise ValueError(f"{need}, or finite bounds as d (low, high) pairs (their centre starts)")
    return torch.from_numpy((lo + (hi - lo) / 2).astype(np.float64))


def _is_complex(x0: Any) -> bool:
    if isinstance(x0, torch.Tensor):
        return x0.is_complex()
    if isinstance(x0, np.ndarray):
        return x0.dtype.kind == "c"
    if isinstance(x0, complex | np.complexfloating):
        return True
    return isinstance(x0, list | tuple) and any(map(_is_complex, x0))


def as_x0(
    x0: Any, objective: Objective, problem: Problem | None, bounds: Any = None
) -> torch.Tensor:
    """x0 as a 1-D real tensor (ints and bools become float64; complex is refused); without
    one, the problem's, the module's parameters, or the centre of finite ``bounds`` (whose
    form gives d), as scipy's differential_evolution needs no x0."""
    if x0 is None:
        if problem is not None:
            return problem.x0.clone()
        d = objective.default_x0
        if d is None:
            return _box_centre(bounds)
        return d
    ref = objective.default_x0 if problem is None else problem.x0
    if _is_complex(x0):
        raise TypeError(
            "x0 is complex, but optarena minimizes over real numbers: optimize the real and "
            "imaginary parts as separate variables (torch.view_as_real(z).reshape(-1)) and "
            "rebuild z inside the objective (torch.view_as_complex(x.reshape(-1, 2)))"
        )
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


class Bounds(NamedTuple):
    """Box bounds written so that no other reading fits: ``lower <= x <= upper``.

    Each side is a scalar (the same for every coordinate), an array of length d, or ``None``
    (no bound on that side); ``-inf``/``inf`` entries leave one coordinate open.
    """

    lower: Any = None
    upper: Any = None


def _is_array(b: Any) -> bool:
    return isinstance(b, np.ndarray | torch.Tensor)


def _numbers(b: Any, open_side: float, what: str) -> np.ndarray:
    """A bound side as float64 (None: unbounded), or a TypeError that shows the forms."""
    if b is None:
        return np.asarray(open_side)
    if isinstance(b, torch.Tensor):
        b = b.detach().cpu()
    try:
        a = np.asarray(b, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be numbers; {_FORMS}; got {b!r}") from e
    if a.ndim > 1:
        raise ValueError(f"{what} has shape {a.shape}; {_FORMS}")
    return a


def _side(b: Any, open_side: float, d: int, what: str) -> np.ndarray:
    a = _numbers(b, open_side, what)
    if a.ndim == 1 and a.size != d:
        raise ValueError(
            f"{what} has {a.size} entries (shape {a.shape}) for {d} variables; {_FORMS}"
        )
    return np.broadcast_to(a, (d,)).astype(np.float64)


_FORMS = (
    "bounds are given as (lower, upper) (each a scalar or an array of length d), as d "
    "(low, high) pairs like scipy's, with None for an open side, or as optarena.Bounds(lower, "
    "upper) / scipy.optimize.Bounds(lb, ub)"
)


def _is_scalar(b: Any) -> bool:
    """A number (Python, numpy or a 0-d array/tensor) or None."""
    if b is None or isinstance(b, numbers.Real):
        return not isinstance(b, bool)
    return _is_array(b) and b.ndim == 0


def _is_pair(b: Any) -> bool:
    """A scipy (low, high) pair: a tuple or list of two numbers or None."""
    return isinstance(b, tuple | list) and len(b) == 2 and all(map(_is_scalar, b))


def _no_none(b: Any, what: str) -> Any:
    if b is None or (isinstance(b, tuple | list) and any(v is None for v in b)):
        raise ValueError(
            f"{what} contains None: None marks an open side only in (low, high) pairs; in "
            "(lower, upper) use -inf / inf"
        )
    return b


def _pairs(items: list[Any], d: int) -> tuple[np.ndarray, np.ndarray]:
    lo = [-math.inf if p[0] is None else p[0] for p in items]
    hi = [math.inf if p[1] is None else p[1] for p in items]
    return _side(lo, -math.inf, d, "low"), _side(hi, math.inf, d, "high")


def _rows(lower: Any, upper: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        _side(_no_none(lower, "lower"), -math.inf, d, "lower"),
        _side(_no_none(upper, "upper"), math.inf, d, "upper"),
    )


def _either(items: list[Any], d: int, x0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Two rows of two numbers for d = 2: the reading that is a box (low <= high), scipy's
    pairs when both are the same box. When both are boxes and differ, the one that holds x0
    (``[(-2, 2), (-2, 2)]`` from x0 = 0 is scipy's box: the other reading would fix x = (-2,
    2)); refused when both or neither hold it (saying so when neither does)."""
    pairs, rows = _pairs(items, d), _rows(items[0], items[1], d)
    if all(np.array_equal(a, b) for a, b in zip(pairs, rows, strict=True)):
        return pairs
    pairs_ok, rows_ok = (bool((lo <= hi).all()) for lo, hi in (pairs, rows))
    if pairs_ok and rows_ok:
        if x0 is not None:
            holds = [bool(((lo <= x0) & (x0 <= hi)).all()) for lo, hi in (pairs, rows)]
            if holds == [True, False]:
                return pairs
            if holds == [False, True]:
                return rows
            if holds == [False, False]:  # say so: the mistake may be x0, not the bounds
                raise ValueError(
                    f"x0 = {x0.tolist()} lies outside the bounds either way they are read; "
                    + _ambiguous(*pairs, *rows)
                )
        raise ValueError(_ambiguous(*pairs, *rows))
    return rows if rows_ok else pairs  # neither: scipy's reading, refused as not a box


def _box(bounds: Any, d: int, x0: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of length d from any accepted form (see :func:`as_bounds`)."""
    inf = math.inf
    if isinstance(bounds, Bounds):
        return _side(bounds.lower, -inf, d, "Bounds.lower"), _side(bounds.upper, inf, d, "upper")
    if isinstance(bounds, so.Bounds):  # keep_feasible holds anyway: see as_bounds
        # scipy keeps a scalar side as an array of one entry and broadcasts it
        lb, ub = (b.reshape(()) if np.size(b) == 1 else b for b in (bounds.lb, bounds.ub))
        return _side(lb, -inf, d, "Bounds.lb"), _side(ub, inf, d, "Bounds.ub")
    if _is_array(bounds):  # one array: two numbers, (d, 2) pairs or (2, d) rows
        a = np.asarray(bounds.detach().cpu() if isinstance(bounds, torch.Tensor) else bounds)
        if a.shape == (2,) or a.ndim == 2:
            bounds = a.tolist()
        else:
            raise ValueError(f"bounds as one array of shape {a.shape}; {_FORMS}")
    if not isinstance(bounds, tuple | list):
        raise TypeError(f"{_FORMS}; got {type(bounds).__name__}")
    items = list(bounds)
    if len(items) == 2 and (all(map(_is_array, items)) or all(map(_is_scalar, items))):
        # two arrays (tensors) are (lower, upper); two numbers (or None) broadcast
        return _side(items[0], -inf, d, "lower"), _side(items[1], inf, d, "upper")
    if len(items) == d and all(map(_is_pair, items)):
        has_none = any(v is None for p in items for v in p)
        return _either(items, d, x0) if d == 2 and not has_none else _pairs(items, d)
    if len(items) == 2:
        return _rows(items[0], items[1], d)
    raise ValueError(
        f"bounds have {len(items)} entries (shape ({len(items)}, ...)) for {d} variables; {_FORMS}"
    )


def _ambiguous(lo: np.ndarray, hi: np.ndarray, lo2: np.ndarray, hi2: np.ndarray) -> str:
    def box(a: np.ndarray, b: np.ndarray) -> str:
        return f"x[0] in [{a[0]:g}, {b[0]:g}] and x[1] in [{a[1]:g}, {b[1]:g}]"

    first = f"lower={lo.tolist()}, upper={hi.tolist()}"
    second = f"lower={lo2.tolist()}, upper={hi2.tolist()}"
    return (
        "bounds with 2 rows of 2 numbers for 2 variables can be read two ways, both boxes: "
        f"as scipy's (low, high) pairs, {box(lo, hi)}, or as (lower, upper), "
        f"{box(lo2, hi2)}. Write the first as optarena.Bounds({first}) or "
        f"scipy.optimize.Bounds({lo.tolist()}, {hi.tolist()}), the second as "
        f"optarena.Bounds({second}) (two numpy arrays or tensors are always (lower, upper))"
    )


def as_bounds(bounds: BoundsLike, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The box ``(lower, upper)`` as tensors like x0, from every form users write.

    Accepted: ``(lower, upper)`` with each a scalar or an array of length d; d ``(low, high)``
    pairs with ``None`` for an open side (scipy's form, read as scipy reads it);
    :class:`Bounds`; ``scipy.optimize.Bounds`` (its ``keep_feasible`` always holds: every
    evaluation of a method that takes bounds lies inside them). Two numpy arrays or tensors
    are ``(lower, upper)``. For d = 2, two rows of two numbers (no ``None``) may be either:
    the reading that gives a box (low <= high everywhere) is used; when both do and differ,
    the one that holds x0, and the input is refused with both spellings when both hold it.
    """
    if bounds is None:
        return None
    lo, hi = _box(bounds, x0.numel(), x0.detach().double().cpu().numpy().reshape(-1))
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
    """optarena constraints from Ineq / Eq objects and scipy's forms (``LinearConstraint``,
    ``NonlinearConstraint``, ``{"type": "ineq", "fun": ...}``), one or a sequence of them."""
    if constraints is None:
        return ()
    if isinstance(constraints, Constraint) or is_scipy_form(constraints):
        constraints = [constraints]
    if not isinstance(constraints, Sequence) or isinstance(constraints, str):
        raise TypeError(f"constraints must be a sequence of constraints; {_CONSTRAINT_FORMS}")
    out: list[Constraint] = []
    for c in constraints:
        if isinstance(c, Constraint):
            out.append(c)
        elif is_scipy_form(c):
            out.extend(from_scipy(c))
        else:
            raise TypeError(f"got {c!r} as a constraint; {_CONSTRAINT_FORMS}")
    return tuple(out)


_CONSTRAINT_FORMS = (
    "a constraint is optarena.Ineq(fun) (fun(x) >= 0) or optarena.Eq(fun) (fun(x) == 0), or "
    "scipy's LinearConstraint, NonlinearConstraint or {'type': 'ineq' | 'eq', 'fun': ...}"
)


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
    """The run's seed: an int in [0, MAX_SEED], or a fresh one drawn for ``None``.

    Larger ints are refused rather than reduced: reducing would give two seeds one stream.
    """
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if seed > MAX_SEED:
        raise ValueError(
            f"seed must be at most 2**63 - 1 (a signed 64-bit integer), got {seed}; to use a "
            "longer number such as a hash, reduce it yourself (e.g. seed % 2**63)"
        )
    return int(seed)
