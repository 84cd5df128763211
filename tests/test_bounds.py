"""Box bounds for gradient methods: never evaluate outside, find the bound-constrained optimum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optarena as oa

GRADIENT_BOUNDED = [i.name for i in oa.methods() if i.family == "gradient" and i.supports_bounds]


def quadratic_outside(center: np.ndarray):
    """A convex quadratic whose unconstrained minimum `center` may lie outside the box."""
    c = torch.as_tensor(center)
    scale = torch.linspace(1.0, 4.0, len(center), dtype=torch.float64)
    seen: list[np.ndarray] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().numpy().copy())
        return (scale * (x - c) ** 2).sum() + 0.1 * torch.sin(x).sum()

    return f, seen


@pytest.mark.parametrize("method", ["lbfgs", "adam"])
@settings(max_examples=25, deadline=None)
@given(
    data=st.data(),
    dim=st.integers(1, 4),
)
def test_bounded_runs_never_leave_the_box(method: str, data: st.DataObject, dim: int) -> None:
    lo = np.array(data.draw(st.lists(st.floats(-5, 0), min_size=dim, max_size=dim)))
    width = np.array(data.draw(st.lists(st.floats(0.0, 3), min_size=dim, max_size=dim)))
    hi = lo + width
    center = np.array(data.draw(st.lists(st.floats(-10, 10), min_size=dim, max_size=dim)))
    t = np.array(data.draw(st.lists(st.floats(0, 1), min_size=dim, max_size=dim)))
    x0 = lo + t * width
    f, seen = quadratic_outside(center)
    opts = {"lr": 0.5} if method == "adam" else {}
    oa.minimize(f, x0, method, bounds=(lo, hi), budget=60, **opts)
    pts = np.array(seen)
    assert (pts >= lo).all() and (pts <= hi).all()


@pytest.mark.parametrize("method", GRADIENT_BOUNDED)
def test_every_bounded_gradient_method_stays_inside(method: str) -> None:
    lo, hi = np.array([-1.0, 0.5, -2.0]), np.array([1.0, 0.7, 2.0])
    f, seen = quadratic_outside(np.array([3.0, -4.0, 0.0]))
    oa.minimize(f, [0.0, 0.6, 1.0], method, bounds=(lo, hi), budget=80)
    pts = np.array(seen)
    assert (pts >= lo).all() and (pts <= hi).all()


def _reference(center: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    f, _ = quadratic_outside(center)
    res = oa.minimize(f, (lo + hi) / 2, "lbfgsb", bounds=(lo, hi), budget=500)
    return res.fun


@pytest.mark.parametrize(
    ("method", "opts", "budget"),
    [
        ("lbfgs", {}, 200),
        ("lbfgs", {"line_search": "strong_wolfe"}, 200),
        ("adam", {"lr": 0.05}, 3000),
        ("gd", {"lr": 0.05}, 2000),
    ],
)
def test_finds_bound_constrained_optimum(method: str, opts: dict, budget: int) -> None:
    lo, hi = np.array([-1.0, 0.5, -2.0]), np.array([1.0, 0.7, 2.0])
    center = np.array([3.0, -4.0, 0.0])
    f, _ = quadratic_outside(center)
    res = oa.minimize(f, [0.0, 0.6, 1.0], method, bounds=(lo, hi), budget=budget, **opts)
    assert res.fun == pytest.approx(_reference(center, lo, hi), abs=1e-6)
    assert float(res.x[0]) == pytest.approx(1.0) and float(res.x[1]) == pytest.approx(0.5)


def test_bounded_lbfgs_matches_lbfgsb_on_rosenbrock() -> None:
    p = oa.problems.get("rosenbrock", b=100.0, dim=6, dtype=torch.float64)
    x0 = torch.full((6,), -0.5, dtype=torch.float64)
    a = oa.minimize(p, x0, "lbfgs", bounds=(-2, 0.8), budget=2000)
    b = oa.minimize(p, x0, "lbfgsb", bounds=(-2, 0.8), budget=2000)
    assert a.fun == pytest.approx(b.fun, rel=1e-6, abs=1e-9)
    assert a.stop_reason is oa.StopReason.CONVERGED
