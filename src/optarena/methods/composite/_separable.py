"""A coordinate-wise global line search from a point, with a test of separability on the way.

After HCMA's STEP ("Select The Easiest Point": Loshchilov, Schoenauer & Sebag, "Bi-population
CMA-ES algorithms with surrogate models and line searches", GECCO 2013 BBOB workshop) and
Brent-STEP (Posik & Baudis, "Dimension selection in axis-parallel Brent-STEP method for
black-box optimization of separable continuous functions", GECCO 2015): on a separable
function, f = sum_i g_i(x_i) + c, one global 1-D search per coordinate finds the global
minimum, where a population method sees a multimodal landscape (separable Rastrigin: 10^d
local minima).

Each coordinate's search, the others fixed at the best point:

1. a grid of ``grid`` cell centres across the box (one batch);
2. the ``keep`` best local minima of the grid, each refined by ``steps`` golden-section steps
   in the bracket of its neighbours;
3. the best of them refined by golden section until its bracket is ``tol`` of the box width.

Golden section compares values only and the grid is fixed, so adding a constant to f changes
no point evaluated. The search is a batch plus single points inside the box, so bounds hold.

Separability is tested before the sweep (:func:`coupled`: three evaluations, the change of f
along the first coordinate at two settings of the others), and as it goes: after coordinate
``k >= 1`` moved, coordinate ``k - 1``'s slice is probed again at one grid point. On a
separable function the difference between that point and the best point is what it was when
coordinate ``k - 1`` was searched (up to rounding); when it differs by more than
``SEPARABLE_RTOL`` of itself, the function is not separable and the sweep ends.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...core.evaluator import Evaluator
from ...core.scope import Scope, ScopeEnded, sub_seed
from .._context import RunContext

__all__ = [
    "SEPARABLE_RTOL",
    "SEPARABLE_SHARE",
    "Sweep",
    "coordinate_sweep",
    "coupled",
    "separable_phase",
    "sweep_cost",
]

#: The golden ratio's conjugate: each golden-section step keeps this share of the bracket.
_G = (math.sqrt(5.0) - 1.0) / 2.0
#: Relative change of the probed difference above which the function is not separable.
SEPARABLE_RTOL = 1e-6
#: The most of a run's budget a sweep may take: it runs only when a whole sweep fits in it
#: (bbob, 1000 d evaluations: about 12 %), and its Scope is capped at it.
SEPARABLE_SHARE = 0.15
#: The search of one coordinate: grid points across the box, grid minima refined, golden
#: steps for each, and the final bracket as a share of the box width. On bbob's separable
#: Rastrigin functions (f3, f4; d = 20, instances 1-5) 100 of 100 coordinates reach their
#: global minimum to 1e-9 with these; with 40 grid points, 84 and 76.
GRID, KEEP, STEPS, TOL = 60, 4, 6, 1e-9
#: The sub-seed of the point drawn for the test of coupling.
_SALT = 30_000


@dataclass
class Sweep:
    """What a sweep did: coordinates searched, whether it ended on evidence of coupling."""

    x: torch.Tensor
    f: float
    coordinates: int = 0
    separable: bool = True
    moved: list[int] = field(default_factory=list)


def sweep_cost(grid: int, keep: int, steps: int, tol: float) -> int:
    """An upper bound on the evaluations of one coordinate's search (before its share of the
    separability probes)."""
    final = math.ceil(math.log(tol * grid / (4.0 * _G**steps)) / math.log(_G)) + 2
    return grid + keep * (steps + 2) + max(final, 0)


def _golden(
    f: Callable[[float], float],
    a: float,
    b: float,
    best: tuple[float, float],
    steps: int | None,
    width: float,
) -> tuple[tuple[float, float], float, float]:
    """Golden-section search of ``f`` on ``[a, b]`` for ``steps`` steps (``None``: until the
    bracket is ``width`` wide). Returns the best (value, point), including ``best``, and the
    final bracket."""
    c, d = b - _G * (b - a), a + _G * (b - a)
    fc, fd = f(c), f(d)
    best = min(best, (fc, c), (fd, d))
    k = 0
    while b - a > width and (steps is None or k < steps):
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _G * (b - a)
            fc = f(c)
            best = min(best, (fc, c))
        else:
            a, c, fc = c, d, fd
            d = a + _G * (b - a)
            fd = f(d)
            best = min(best, (fd, d))
        k += 1
    return best, a, b


def _grid_minima(values: list[float], keep: int) -> list[int]:
    """The indices of the ``keep`` best local minima of a sequence of values, best first."""
    n = len(values)
    found = [
        j
        for j in range(n)
        if (j == 0 or values[j] <= values[j - 1]) and (j == n - 1 or values[j] <= values[j + 1])
    ]
    found.sort(key=lambda j: (values[j], j))
    return found[:keep]


def coordinate_sweep(
    view: Evaluator,
    x: torch.Tensor,
    fx: float,
    lower: torch.Tensor,
    upper: torch.Tensor,
    *,
    grid: int = GRID,
    keep: int = KEEP,
    steps: int = STEPS,
    tol: float = TOL,
    shift: float = 0.0,
) -> Sweep:
    """One sweep of global 1-D searches over the coordinates of ``x`` (value ``fx``) inside
    ``[lower, upper]``, evaluated through ``view``; ends early when the function shows it is
    not separable. ``shift`` moves the grid by that share of a cell (a second sweep samples
    the first one's cell edges). The best point is the evaluator's, and the returned one (an
    end of the budget is raised)."""
    x = x.detach().clone()
    lo_all, hi_all = lower.tolist(), upper.tolist()
    out = Sweep(x, fx)
    probe: tuple[int, float, float] | None = None  # (coordinate, point, f(point) - f(best))

    def at(i: int, t: float) -> torch.Tensor:
        y = x.clone()
        y[i] = t
        return y

    for i in range(x.numel()):
        lo, hi = lo_all[i], hi_all[i]
        if not hi > lo:
            continue
        h = (hi - lo) / grid
        ts = [min(hi, lo + (j + 0.5 + shift) * h) for j in range(grid)]
        X = x.unsqueeze(0).repeat(grid, 1)
        X[:, i] = torch.tensor(ts, dtype=x.dtype, device=x.device)
        fs = [float(v) for v in view.values(X)]

        def f(t: float, i: int = i) -> float:
            return view.value(at(i, t))

        found: list[tuple[tuple[float, float], float, float]] = []
        for j in _grid_minima(fs, keep):
            a, b = max(lo, ts[j] - h), min(hi, ts[j] + h)
            found.append(_golden(f, a, b, (fs[j], ts[j]), steps, 0.0))
        (fb, tb), a, b = min(found, key=lambda r: r[0])
        w = max(b - a, tol * (hi - lo))
        (fb, tb), _, _ = _golden(
            f, max(lo, tb - w), min(hi, tb + w), (fb, tb), None, tol * (hi - lo)
        )
        out.coordinates = i + 1
        if fb < fx:
            x[i], fx = tb, fb
            out.moved.append(i)
            out.x, out.f = x.clone(), fx
        if probe is not None and out.moved and out.moved[-1] == i:
            k, t, diff = probe  # the previous coordinate's slice, now that this one moved
            now_diff = view.value(at(k, t)) - fx
            if not abs(now_diff - diff) <= SEPARABLE_RTOL * abs(diff):
                out.separable = False
                return out
        finite = [(v, t) for v, t in zip(fs, ts, strict=True) if math.isfinite(v)]
        top = max(finite) if finite and math.isfinite(fx) else None
        probe = (i, top[1], top[0] - fx) if top is not None and top[0] > fx else None
    return out


def coupled(view: Evaluator, x: torch.Tensor, fx: float, y: torch.Tensor) -> bool:
    """Whether the first coordinate is coupled to the others, from three evaluations: the
    change of f when x's first coordinate takes y's, beside the same change with the other
    coordinates at y's (equal on a separable function, up to ``SEPARABLE_RTOL``)."""
    if x.numel() < 2:
        return False
    P = torch.stack([x.clone(), y.clone(), y.clone()])
    P[0, 0] = y[0]
    P[1, 0] = x[0]
    f1, f2, f3 = (float(v) for v in view.values(P))
    d_x, d_y = f1 - fx, f3 - f2
    return not abs(d_x - d_y) <= SEPARABLE_RTOL * max(abs(d_x), abs(d_y))


def separable_phase(oracle: Evaluator, ctx: RunContext, info: dict[str, object]) -> None:
    """Coordinate sweeps from ``ctx.x0`` when the box is finite and a whole sweep fits in
    ``SEPARABLE_SHARE`` of the evaluations left (else nothing), each in a Scope capped at that
    share. First x0 and a test of coupling (:func:`coupled`, with a point drawn in the box
    from the run's seed): a coupled function costs four evaluations. A second sweep, on a
    grid shifted by half a cell, follows a first one that searched every coordinate and
    found no coupling (a coordinate whose grid missed its global basin gets another chance).
    What they did goes to ``info["separable"]``, their evaluations to
    ``info["separable_evaluations"]``; an end of the run is raised."""
    lo, hi = ctx.lower, ctx.upper
    if lo is None or hi is None or oracle.remaining_evals() is None:
        return
    if not bool(torch.isfinite(lo).all() and torch.isfinite(hi).all()):
        return
    x, fx, done, used = ctx.x0.detach().clone(), math.nan, [], 0
    for shift in (0.0, 0.5):
        cap = int(SEPARABLE_SHARE * (oracle.remaining_evals() or 0))
        if oracle.dim * sweep_cost(GRID, KEEP, STEPS, TOL) > cap:
            break
        scope = Scope(oracle, cap=cap)
        try:
            if math.isnan(fx):
                fx = scope.value(x)
                gen = torch.Generator().manual_seed(sub_seed(ctx.seed, _SALT))
                u = torch.rand(x.shape, generator=gen, dtype=torch.float64)
                y = (lo + u.to(lo) * (hi - lo)).clamp(lo, hi).to(x)
                if coupled(scope, x, fx, y):
                    done.append(f"not separable: coupled coordinates ({scope.used} evaluations)")
                    used += scope.used
                    break
            sweep = coordinate_sweep(scope, x, fx, lo, hi, shift=shift)
        except ScopeEnded as end:
            if end.scope is not scope:
                raise
            done.append(f"a sweep ended by its share ({scope.used} evaluations)")
            used += scope.used
            break
        used += scope.used
        x, fx = sweep.x, sweep.f
        verdict = "separable" if sweep.separable else "not separable"
        done.append(
            f"{verdict}: {sweep.coordinates} of {oracle.dim} coordinates searched, "
            f"{len(sweep.moved)} moved, {scope.used} evaluations"
        )
        if not sweep.separable or sweep.coordinates < oracle.dim:
            break
    if done:
        info["separable"] = "; ".join(done)
        info["separable_evaluations"] = used
