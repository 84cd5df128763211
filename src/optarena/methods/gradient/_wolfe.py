"""A strong Wolfe line search with a largest step, for L-BFGS inside a box.

torch's ``strong_wolfe`` search extrapolates without limit, so inside a box its trial points
could leave it. As L-BFGS-B does (Byrd, Lu, Nocedal & Zhu 1995), this search keeps to the
feasible segment x + t d, 0 < t <= t_max, t_max being where the segment meets the box: it
brackets and zooms by cubic interpolation (Nocedal & Wright, Algorithms 3.5 and 3.6, with
torch's constants c1 = 1e-4, c2 = 0.9 and at most 25 evaluations), and takes t_max when the
value still decreases enough there. ``lbfgs`` uses it when the first trial point is inside
the box (else its search along the projection arc, which can reach several bounds at once).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["largest_step", "segment_wolfe"]

C1, C2, MAX_LS = 1e-4, 0.9, 25

#: phi(t) -> (value, slope d'g at x + t d); the caller keeps the points it evaluated
Phi = Callable[[float], tuple[float, float]]


def largest_step(
    x: torch.Tensor, d: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
) -> float:
    """The largest t with x + t d inside [lower, upper] (inf when d never meets a wall)."""
    pos, neg = d > 0, d < 0
    steps = torch.full_like(d, math.inf)
    steps[pos] = (upper.expand_as(x)[pos] - x[pos]) / d[pos]
    steps[neg] = (lower.expand_as(x)[neg] - x[neg]) / d[neg]
    return max(0.0, float(steps.min())) if steps.numel() else math.inf


def _cubic(t1: float, f1: float, s1: float, t2: float, f2: float, s2: float) -> float:
    """The minimiser of the cubic through (t1, f1, slope s1) and (t2, f2, slope s2); nan
    when the cubic has none."""
    d1 = s1 + s2 - 3 * (f1 - f2) / (t1 - t2)
    sq = d1 * d1 - s1 * s2
    if not sq >= 0 or not math.isfinite(sq):
        return math.nan
    d2 = math.copysign(math.sqrt(sq), t2 - t1)
    return t2 - (t2 - t1) * ((s2 + d2 - d1) / (s2 - s1 + 2 * d2))


def _within(t: float, lo: float, hi: float, otherwise: float) -> float:
    """``t`` clamped to [lo, hi]; ``otherwise`` when t is not a number."""
    return min(max(t, lo), hi) if math.isfinite(t) else otherwise


def segment_wolfe(
    phi: Phi, t: float, t_max: float, f0: float, s0: float, width: float, tol: float
) -> float:
    """A step length t in (0, t_max] meeting the strong Wolfe conditions, or the best step
    with sufficient decrease the search found (0.0 when none: the search made no progress).

    ``s0 < 0`` is the slope at t = 0, ``width`` the largest entry of |d| (the bracket ends when
    it moves the point less than ``tol``)."""
    t = min(t, t_max)
    prev_t, prev_f, prev_s = 0.0, f0, s0
    evals = 0
    while evals < MAX_LS:
        f, s = phi(t)
        evals += 1
        if not (f <= f0 + C1 * t * s0) or (evals > 1 and f >= prev_f):
            return _zoom(phi, (prev_t, prev_f, prev_s), (t, f, s), f0, s0, width, tol, evals)
        if abs(s) <= -C2 * s0:
            return t
        if s >= 0:
            return _zoom(phi, (t, f, s), (prev_t, prev_f, prev_s), f0, s0, width, tol, evals)
        if t >= t_max:
            return t  # the wall: the value still decreases enough there
        prev_t, prev_f, prev_s, t = (
            t,
            f,
            s,
            min(t_max, _extrapolate(prev_t, prev_f, prev_s, t, f, s)),
        )
    return prev_t


def _extrapolate(t0: float, f0: float, s0: float, t1: float, f1: float, s1: float) -> float:
    """The next, longer trial step: the cubic's minimiser within [t1 + 0.01 (t1 - t0), 10 t1]."""
    lo, hi = t1 + 0.01 * (t1 - t0), 10 * t1
    return _within(_cubic(t0, f0, s0, t1, f1, s1), lo, hi, hi)


def _zoom(
    phi: Phi,
    low: tuple[float, float, float],
    high: tuple[float, float, float],
    f0: float,
    s0: float,
    width: float,
    tol: float,
    evals: int,
) -> float:
    """Nocedal & Wright's zoom: ``low`` has sufficient decrease and the lower value, the
    minimiser lies between ``low`` and ``high``; returns low's step when the bracket closes."""
    while evals < MAX_LS and abs(high[0] - low[0]) * width >= tol:
        lo, hi = min(low[0], high[0]), max(low[0], high[0])
        t = _within(_cubic(*low, *high), lo, hi, (lo + hi) / 2)
        if min(t - lo, hi - t) < 0.1 * (hi - lo):  # too near an end: bisect instead
            t = (lo + hi) / 2
        f, s = phi(t)
        evals += 1
        if not (f <= f0 + C1 * t * s0) or f >= low[1]:
            high = (t, f, s)
            continue
        if abs(s) <= -C2 * s0:
            return t
        if s * (high[0] - low[0]) >= 0:
            high = low
        low = (t, f, s)
    return low[0]
