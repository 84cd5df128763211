"""auto's coordinate-wise sweep (methods/composite/_separable.py): on a box without gradient it
solves a separable multimodal function within its share of the budget, ends after about two
coordinates on a coupled one, evaluates the same points when a constant is added to f, keeps
to the box and to the budget."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.methods.composite._separable import (
    GRID,
    KEEP,
    SEPARABLE_SHARE,
    STEPS,
    TOL,
    sweep_cost,
)

GRID_F = 2.0**30


def _x_opt(d: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(d)
    return torch.rand(d, generator=g, dtype=torch.float64) * 8 - 4


def rastrigin_sep(d: int, offset: float = 0.0):
    """Separable Rastrigin with bbob f3's per-coordinate scaling (conditioning 10), shifted
    optimum in [-4, 4]^d, f* = ``offset``: 10^d local minima in [-5, 5]^d; a black box
    (no gradient), as on bbob. Values are multiples of 2^-30, so f + 1000 is exact in
    float64: two runs can differ only through a rule of the method, never through rounding."""
    x_opt = _x_opt(d)
    s = 10.0 ** (0.5 * torch.arange(d, dtype=torch.float64) / max(d - 1, 1))

    def f(x: torch.Tensor) -> torch.Tensor:
        z = s * (x - x_opt)
        v = (z**2 + 10 * (1 - torch.cos(2 * math.pi * z))).sum()
        return torch.round(v * GRID_F) / GRID_F + offset

    return oa.Objective(f, gradient="none")


def rastrigin_rotated(d: int):
    """The same function in rotated coordinates: not separable."""
    g = torch.Generator().manual_seed(100 + d)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    inner = rastrigin_sep(d)
    x_opt = _x_opt(d)
    return oa.Objective(lambda x: inner.fn(x_opt + q @ (x - x_opt)), gradient="none")


def x0_of(d: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(7)
    return torch.rand(d, generator=g, dtype=torch.float64) * 8 - 4


def test_separable_rastrigin_d10_solved_within_the_sweeps_share() -> None:
    d, budget = 10, 10_000
    res = oa.minimize(rastrigin_sep(d), x0_of(d), "auto", bounds=(-5, 5), budget=budget, seed=0)
    reached = res.history.evals_to_reach(1e-8)
    assert reached is not None and reached <= SEPARABLE_SHARE * budget, (reached, res.fun)
    assert res.info["auto"]["separable"].startswith("separable: 10 of 10 coordinates")
    assert res.nfev == budget


def test_coupled_function_costs_four_evaluations() -> None:
    d, budget = 10, 10_000
    res = oa.minimize(rastrigin_rotated(d), x0_of(d), "auto", bounds=(-5, 5), budget=budget)
    info = res.info["auto"]
    assert info["separable"] == "not separable: coupled coordinates (4 evaluations)"
    assert info["separable_evaluations"] == 4  # x0 and the three points of the test
    assert res.nfev == budget


def test_coupling_among_later_coordinates_ends_the_sweep_where_it_shows() -> None:
    """The first coordinate is separable from the others (the test before the sweep passes),
    coordinates 3 and 4 are coupled: the sweep ends once coordinate 4 has moved."""
    d, budget = 6, 6000
    inner = rastrigin_sep(d)

    def f(x: torch.Tensor) -> torch.Tensor:
        return inner.fn(x) + 3.0 * (x[3] - x[4]) ** 2

    obj = oa.Objective(f, gradient="none")
    res = oa.minimize(obj, x0_of(d), "auto", bounds=(-5, 5), budget=budget, seed=0)
    info = res.info["auto"]
    assert info["separable"].startswith("not separable: 5 of 6 coordinates searched")
    assert info["separable_evaluations"] <= 4 + 5 * (sweep_cost(GRID, KEEP, STEPS, TOL) + 1)
    assert res.nfev == budget


@pytest.mark.parametrize("d", [2, 5])
def test_adding_a_constant_changes_no_point_of_the_sweeps(d: int) -> None:
    budget = 1000 * d
    runs = [
        oa.minimize(rastrigin_sep(d, c), x0_of(d), "auto", bounds=(-5, 5), budget=budget, seed=3)
        for c in (0.0, 1e3)
    ]
    n = runs[0].info["auto"]["separable_evaluations"]
    assert n == runs[1].info["auto"]["separable_evaluations"]
    assert n > d * GRID  # the sweeps ran
    np.testing.assert_array_equal(runs[0].history.x[:n], runs[1].history.x[:n])


def test_sweeps_keep_to_an_asymmetric_box_and_the_exact_budget() -> None:
    d, budget = 4, 4000
    lower = torch.tensor([-1.0, -5.0, 0.5, -2.0], dtype=torch.float64)
    upper = torch.tensor([3.0, -2.0, 4.0, 2.5], dtype=torch.float64)
    inner, calls = rastrigin_sep(d), [0]

    def single(x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return inner.fn(x)

    def batched(X: torch.Tensor) -> torch.Tensor:
        calls[0] += X.shape[0]
        return torch.stack([inner.fn(x) for x in X])

    x0 = (lower + upper) / 2
    obj = oa.Objective(single, batched=batched, gradient="none")
    res = oa.minimize(obj, x0, "auto", bounds=(lower, upper), budget=budget, seed=1)
    X = res.history.x
    n = res.info["auto"]["separable_evaluations"]
    assert n > d * GRID
    assert (lower.numpy() <= X).all() and (upper.numpy() >= X).all()
    assert res.nfev == calls[0] == len(X) == budget
    # the box-constrained separable optimum is reached coordinate by coordinate: no point of
    # the whole run is better than the sweeps' best
    assert res.history.best_f[n - 1] == res.fun


def test_no_sweep_without_a_box_or_with_a_small_budget() -> None:
    d = 4
    free = oa.minimize(rastrigin_sep(d), x0_of(d), "auto", budget=4000, seed=0)
    assert "separable" not in free.info["auto"]
    small = oa.minimize(rastrigin_sep(d), x0_of(d), "auto", bounds=(-5, 5), budget=1000, seed=0)
    assert "separable" not in small.info["auto"]
