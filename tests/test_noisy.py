"""Noisy objectives report an honest best: a re-evaluated estimate, counted and reserved."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena import Objective

SIGMA = 0.1
CENTER = 0.5


def noisy_sphere(seed: int = 0, noisy: bool = True) -> tuple[Objective, list[int]]:
    """A sphere plus N(0, SIGMA^2) noise from its own seeded stream, and a call counter."""
    rng = np.random.default_rng(seed)
    calls = [0]

    def f(x: torch.Tensor) -> float:
        calls[0] += 1
        return float(((x.numpy() - CENTER) ** 2).sum() + SIGMA * rng.standard_normal())

    obj = Objective(f, gradient="none", vectorize=False, noisy=noisy, name="noisy_sphere")
    return obj, calls


def clean(x: torch.Tensor) -> float:
    return float(((x.double() - CENTER) ** 2).sum())


X0 = torch.zeros(3, dtype=torch.float64)


def test_the_luckiest_sample_is_below_the_true_minimum_without_the_declaration() -> None:
    obj, _ = noisy_sphere(noisy=False)
    res = oa.minimize(obj, X0, "cmaes", budget=1000, seed=1)
    assert res.fun < 0.0  # the true minimum is 0: the reported best is luck
    assert "noise" not in res.info


@pytest.mark.parametrize("method", ["cmaes", "pso", "random_search", "nelder_mead"])
def test_declared_noisy_reports_an_estimate_within_standard_errors(method: str) -> None:
    obj, calls = noisy_sphere()
    bounds = (-2.0, 2.0) if method in ("pso", "random_search") else None
    res = oa.minimize(obj, X0, method, budget=1000, seed=1, bounds=bounds)
    noise = res.info["noise"]
    k = noise["reevaluations"]
    assert k == 10 and noise["reserved"] == 40
    assert res.nfev == calls[0] <= 1000
    se = noise["fun_se"]
    assert 0.3 * SIGMA / math.sqrt(k) < se < 3 * SIGMA / math.sqrt(k)
    assert abs(res.fun - clean(res.x)) <= 4 * se
    assert noise["raw_best"] < res.fun  # the raw best sample was the lucky one
    # the estimate is the mean of the last k evaluations, all at the reported point
    assert res.fun == pytest.approx(float(np.mean(res.history.f[-k:])), rel=1e-12)
    assert np.all(res.history.x[-k:] == res.x.numpy())


def test_noisy_runs_repeat_with_the_seed() -> None:
    runs = []
    for _ in range(2):
        obj, _ = noisy_sphere(seed=3)
        runs.append(oa.minimize(obj, X0, "cmaes", budget=600, seed=5))
    a, b = runs
    assert np.array_equal(a.history.f, b.history.f)
    assert np.array_equal(a.history.x, b.history.x)
    assert a.fun == b.fun and torch.equal(a.x, b.x)


@pytest.mark.parametrize("budget", [160, 161, 500, 777])
@pytest.mark.parametrize("method", ["cmaes", "pso", "powell"])
def test_budget_is_never_exceeded_and_counts_are_calls(method: str, budget: int) -> None:
    obj, calls = noisy_sphere()
    bounds = (-2.0, 2.0) if method == "pso" else None
    res = oa.minimize(obj, X0, method, budget=budget, seed=2, bounds=bounds)
    assert res.nfev == calls[0] == len(res.history) <= budget
    assert res.info["noise"]["reevaluations"] == min(10, budget // 80)


def test_explicit_reevaluate_and_refusals_before_any_evaluation() -> None:
    obj, calls = noisy_sphere()
    res = oa.minimize(obj, X0, "cmaes", budget=300, seed=1, reevaluate=4)
    assert res.info["noise"]["reevaluations"] == 4 and res.nfev == calls[0] <= 300
    assert res.message.startswith("the budget of 300 evaluations is spent (16 held back)")
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="reevaluate"):
            oa.minimize(obj, X0, "cmaes", budget=300, reevaluate=bad)
    before = calls[0]
    with pytest.raises(ValueError, match="budget"):
        oa.minimize(obj, X0, "cmaes", budget=40, reevaluate=10)
    assert calls[0] == before
    # a small budget gets no default re-evaluation, and says so (was silent)
    small = oa.minimize(noisy_sphere()[0], X0, "cmaes", budget=100, seed=1)
    assert small.info["noise"]["reevaluations"] == 0 and small.nfev == 100
    assert "luckiest raw sample of a noisy objective" in small.message
    told = oa.minimize(noisy_sphere()[0], X0, "cmaes", budget=300, seed=1, reevaluate=0)
    assert "noise" not in told.info  # asked for none: nothing to say


def test_a_problem_declared_noisy_is_reevaluated() -> None:
    p = oa.problems.get("noisy", base="sphere", scale=SIGMA)
    res = oa.minimize(p, method="cmaes", budget=800, seed=0)
    assert res.info["noise"]["reevaluations"] == 10
    assert res.nfev <= 800


def test_objectives_not_declared_noisy_are_unchanged() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return ((x - CENTER) ** 2).sum()

    res = oa.minimize(f, X0, "cmaes", budget=400, seed=1)
    assert "noise" not in res.info
    assert res.fun == res.history.f[res.best_eval - 1]
    # no generation re-evaluates points: every evaluated point is new
    assert len(np.unique(res.history.x, axis=0)) == len(res.history)


def test_population_loop_averages_the_elite_on_noisy_objectives() -> None:
    obj, calls = noisy_sphere()
    res = oa.minimize(obj, X0, "cmaes", budget=300, seed=1, reevaluate=0, popsize=10)
    xs = res.history.x
    # each generation: 10 points, then its 2 best evaluated again (2 + 10 // 20)
    first = xs[:10]
    again = xs[10:12]
    assert all(any(np.array_equal(a, row) for row in first) for a in again)
    assert res.nfev == calls[0]
    off = oa.minimize(
        noisy_sphere()[0],
        X0,
        "cmaes",
        budget=300,
        seed=1,
        reevaluate=0,
        popsize=10,
        reevaluate_elite=0,
    )
    assert len(np.unique(off.history.x, axis=0)) == len(off.history)


def test_an_interrupted_noisy_run_keeps_its_raw_best() -> None:
    obj, calls = noisy_sphere()
    res = oa.minimize(obj, X0, "cmaes", budget=500, seed=1, callback=lambda info: True)
    assert res.info["noise"]["reevaluations"] == 0
    assert res.nfev == calls[0] < 500
