"""Composites spend the budget they are given and stop on offset-invariant tests: adding a
constant to f never makes a chain, a multistart or auto stop earlier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa

F64 = torch.float64
BOX = (-5.12, 5.12)


def rastrigin(x: torch.Tensor) -> torch.Tensor:
    return 10 * x.shape[-1] + (x**2 - 10 * torch.cos(2 * math.pi * x)).sum(-1)


def rastrigin_np(x: np.ndarray) -> float:
    return float(10 * x.size + (x**2 - 10 * np.cos(2 * np.pi * x)).sum())


@pytest.mark.parametrize("method", ["chain", "multistart", "auto"])
def test_defaults_spend_the_whole_budget_on_rastrigin(method: str) -> None:
    x0 = torch.full((5,), 3.0, dtype=F64)
    res = oa.minimize(rastrigin, x0, method, bounds=BOX, budget=5000, seed=0)
    assert res.nfev == 5000 and res.stop_reason is oa.StopReason.MAX_EVALS


def test_auto_spends_the_budget_without_gradient() -> None:
    obj = oa.Objective.from_numpy(rastrigin_np)
    res = oa.minimize(obj, np.full(5, 3.0), "auto", bounds=BOX, budget=5000, seed=0)
    assert res.nfev == 5000


def test_declared_differences_run_the_plan_without_gradient() -> None:
    """gradient="fd" keeps the sampling and the fallback: the same run as gradient="none"."""
    runs = []
    for gradient in ("none", "fd"):
        obj = oa.Objective.from_numpy(rastrigin_np, gradient=gradient)
        runs.append(oa.minimize(obj, np.full(5, 3.0), "auto", bounds=BOX, budget=3000, seed=1))
    none, fd = runs
    assert fd.info["auto"]["method"] == none.info["auto"]["method"]
    np.testing.assert_array_equal(fd.history.f, none.history.f)


def shifted_sphere(offset: float):
    target = torch.linspace(-1.0, 2.0, 4, dtype=F64)

    def f(x: torch.Tensor) -> torch.Tensor:
        return ((x - target) ** 2 * torch.tensor([1.0, 10.0, 100.0, 1000.0], dtype=F64)).sum(
            -1
        ) + offset

    return f


@pytest.mark.parametrize("method", ["chain", "multistart", "auto"])
def test_adding_a_constant_never_stops_a_composite_earlier(method: str) -> None:
    x0 = torch.full((4,), 3.0, dtype=F64)
    used = []
    for offset in (0.0, 1e3):
        res = oa.minimize(shifted_sphere(offset), x0, method, bounds=(-5, 5), budget=3000, seed=0)
        used.append(res.nfev)
    assert used[1] >= used[0]
