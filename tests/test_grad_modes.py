"""The user's function runs as the user wrote it: in the user's autograd mode, with gradients
that autograd really connects to x, and with callbacks whose errors keep the best so far."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.core.errors import CallbackError, ObjectiveError
from optarena.core.oracle import Oracle

GRADIENT_METHODS = ["lbfgs", "adam", "lbfgsb", "slsqp", "gd"]


def _disconnected_new_tensor(x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(float((x.detach() ** 2).sum()) + 2.0, requires_grad=True)


_extra = torch.nn.Parameter(torch.tensor(1.0))


def _disconnected_other_parameter(x: torch.Tensor) -> torch.Tensor:
    return (x.detach() ** 2).sum() + 2.0 * _extra**2


@pytest.mark.parametrize("fn", [_disconnected_new_tensor, _disconnected_other_parameter])
@pytest.mark.parametrize("name", GRADIENT_METHODS)
def test_a_value_autograd_does_not_connect_to_x_is_refused(fn, name: str) -> None:
    with pytest.raises(ObjectiveError, match="does not depend on x through autograd") as err:
        oa.minimize(fn, torch.ones(2, dtype=torch.float64), name, budget=50)
    assert "gradient='fd'" in str(err.value) and "gradient='none'" in str(err.value)


def test_a_disconnected_batch_is_refused_by_the_batched_gradient_path() -> None:
    """vmap's gradient of a value that ignores x is zeros, not an error: the rows path checks."""
    obj = oa.Objective(lambda x: (x.detach() ** 2).sum() + 0.0 * _extra)
    oracle = Oracle(obj, torch.zeros(2), oa.Budget(evals=100))
    with pytest.raises(ObjectiveError, match="does not depend on x"):
        oracle.values_and_grads(torch.ones(4, 2))


def test_the_batched_gradient_path_still_returns_a_genuine_zero_gradient() -> None:
    obj = oa.Objective(lambda x: ((x - 1.0) ** 2).sum())
    oracle = Oracle(obj, torch.zeros(2), oa.Budget(evals=100))
    f, G = oracle.values_and_grads(torch.ones(3, 2))
    assert torch.equal(G, torch.zeros(3, 2)) and torch.equal(f, torch.zeros(3))


@pytest.mark.parametrize("name", ["lbfgs", "adam", "gd"])
def test_a_step_function_does_not_report_convergence(name: str) -> None:
    res = oa.minimize(lambda x: torch.floor(x).sum(), torch.tensor([0.5, 0.5]), name, budget=50)
    assert not res.success
    assert res.stop_reason is oa.StopReason.METHOD_FAILED
    assert "exactly zero" in res.message and res.nfev == 1


@pytest.mark.parametrize("name", ["lbfgs", "adam", "gd"])
def test_a_genuine_stationary_start_is_a_success(name: str) -> None:
    res = oa.minimize(lambda x: ((x - 1.0) ** 2).sum(), torch.ones(2), name, budget=50)
    assert res.success and res.stop_reason is oa.StopReason.CONVERGED
    assert res.fun == 0.0


def _train_inside(x: torch.Tensor) -> torch.Tensor:
    """Hyperparameter search as tutorials write it: train with backward(), return a loss."""
    gen = torch.Generator().manual_seed(0)
    data = torch.randn(32, 3, generator=gen, dtype=torch.float64)
    target = data @ torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=float(abs(x[0])) + 1e-3)
    for _ in range(3):
        opt.zero_grad()
        loss = ((data @ w - target) ** 2).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return ((data @ w - target) ** 2).mean() + x[1] ** 2


@pytest.mark.parametrize("name", ["cmaes", "pso", "random_search", "nelder_mead"])
def test_an_objective_that_trains_a_model_runs_under_gradient_free_methods(name: str) -> None:
    x0 = torch.tensor([0.05, 0.5], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the first run learns vmap fails
        res = oa.minimize(_train_inside, x0, name, bounds=(-1, 1), budget=40, seed=0)
    assert res.nfev == 40 and np.isfinite(res.fun)
    assert res.fun <= float(_train_inside(x0))


def test_a_function_that_fails_vmap_warns_once_per_process() -> None:
    def no_vmap(x: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float((x**2).sum()), dtype=torch.float64)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for seed in range(3):
            oa.minimize(no_vmap, torch.ones(2), "pso", bounds=(-2, 2), budget=40, seed=seed)
    assert sum("vmap" in str(w.message) for w in caught) == 1


def test_the_population_loop_gives_the_user_their_grad_mode() -> None:
    modes: list[bool] = []

    def spy(x: torch.Tensor) -> torch.Tensor:
        modes.append(torch.is_grad_enabled())
        return float((x**2).sum())  # not vmappable: evaluated point by point

    oa.minimize(oa.Objective(spy, vectorize=False), torch.ones(2), "pso", bounds=(-2, 2), budget=20)
    with torch.no_grad():
        oa.minimize(
            oa.Objective(spy, vectorize=False), torch.ones(2), "pso", bounds=(-2, 2), budget=20
        )
    assert modes[:20] == [True] * 20 and modes[20:] == [False] * 20


@pytest.mark.parametrize("name", ["pso", "lbfgs", "nelder_mead", "cmaes"])
def test_an_error_in_the_callback_keeps_the_best_so_far(name: str) -> None:
    def callback(info: oa.IterationInfo) -> None:
        if info.iteration == 1:
            raise RuntimeError("boom")

    with pytest.raises(CallbackError, match="callback raised RuntimeError") as err:
        oa.minimize(
            lambda x: ((x - 0.5) ** 2).sum(),
            torch.ones(2),
            name,
            bounds=(-2, 2),
            callback=callback,
            budget=500,
            seed=0,
        )
    assert isinstance(err.value, ObjectiveError)
    assert isinstance(err.value.__cause__, RuntimeError)
    res = err.value.result
    assert res is not None and res.stop_reason is oa.StopReason.ERROR
    assert res.nfev > 0 and res.fun == float(np.min(res.history.f))


def test_the_seconds_limit_cuts_a_slow_population_between_points() -> None:
    def slow(x: torch.Tensor) -> float:
        time.sleep(0.01)
        return float((x**2).sum())

    obj = oa.Objective(slow, vectorize=False)
    t = time.perf_counter()
    res = oa.minimize(
        obj,
        torch.ones(2),
        "pso",
        bounds=(-2, 2),
        seed=0,
        popsize=200,
        budget=oa.Budget(seconds=0.2),
    )
    took = time.perf_counter() - t
    assert res.stop_reason is oa.StopReason.MAX_SECONDS
    # one generation of 200 points takes 2 s; the run ends within a few evaluations of 0.2 s
    assert 0 < res.nfev < 200 and took < 1.5
    assert res.history.f.shape[0] == res.nfev and res.fun == float(np.min(res.history.f))


def test_the_seconds_limit_cuts_a_batched_function_between_chunks() -> None:
    calls: list[int] = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        calls.append(X.shape[0])
        time.sleep(0.05)
        return (X**2).sum(1)

    obj = oa.Objective(lambda x: (x**2).sum(), batched=batched, chunk_size=10)
    res = oa.minimize(
        obj,
        torch.ones(2),
        "random_search",
        bounds=(-2, 2),
        seed=0,
        batch_size=1000,
        budget=oa.Budget(seconds=0.2),
    )
    assert res.stop_reason is oa.StopReason.MAX_SECONDS
    assert res.nfev == sum(calls) < 1000
