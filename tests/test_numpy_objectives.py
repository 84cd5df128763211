"""Plain numpy functions, as scipy users write them, handed to minimize() as they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.core.oracle import Oracle


def quadratic(x: np.ndarray) -> float:
    """scipy style: converts its input and returns a float."""
    x = np.asarray(x)
    return float(np.sum((x - 1.0) ** 2))


def numpy_scalar(x: np.ndarray) -> np.floating:
    """Returns a numpy scalar; np.sum of a tensor fails, so it only works on arrays."""
    return np.sum((x - 1.0) ** 2)


class Counting:
    def __init__(self, fn) -> None:
        self.fn, self.calls, self.kinds = fn, 0, []

    def __call__(self, x):
        self.calls += 1
        self.kinds.append(type(x).__name__)
        return self.fn(x)


@pytest.mark.parametrize("fn", [quadratic, numpy_scalar])
@pytest.mark.parametrize("name", ["auto", "nelder_mead", "cmaes"])
def test_a_numpy_function_is_minimized_as_a_black_box(fn, name: str) -> None:
    counted = Counting(fn)
    box = {"bounds": (-3, 3)} if name == "cmaes" else {}
    res = oa.minimize(counted, np.zeros(3), name, budget=600, seed=0, **box)
    assert res.fun < 1e-2
    np.testing.assert_allclose(np.asarray(res.x), np.ones(3), atol=0.1)
    assert isinstance(np.asarray(res.x), np.ndarray) and np.asarray(res.x).dtype == np.float64
    # every call is one counted evaluation, the first one with a tensor (which raised) too
    assert res.nfev == counted.calls and counted.kinds[-1] == "ndarray"
    assert counted.kinds[0] == "Tensor" and np.isnan(res.history.f[0])


@pytest.mark.parametrize("name", ["lbfgs", "adam", "slsqp"])
def test_gradient_methods_refuse_a_numpy_function_naming_fd(name: str) -> None:
    with pytest.raises(ValueError, match="gradient='fd'"):
        oa.minimize(quadratic, np.zeros(3), name, budget=100)


def test_a_torch_function_keeps_its_gradient() -> None:
    res = oa.minimize(lambda x: ((x - 1.0) ** 2).sum(), [0.0, 0.0], "lbfgs", budget=100)
    assert res.success and res.ngev > 0 and res.fun < 1e-12


def test_a_float_returning_tensor_function_is_a_black_box_not_a_numpy_one() -> None:
    seen = []

    def fn(x):
        seen.append(type(x))
        return float(torch.sum((x - 1.0) ** 2))  # torch ops, float out: no autograd gradient

    obj = oa.Objective(fn, backend="auto")
    res = oa.minimize(obj, torch.zeros(2), "nelder_mead", budget=200)
    assert obj.backend == "torch" and obj.gradient == "none"
    assert set(seen) == {torch.Tensor} and res.fun < 1e-4


def test_the_probe_is_the_runs_first_evaluation() -> None:
    """probe() calls the function at x0; the run counts those calls instead of repeating them:
    the call with a tensor that raised (History value NaN) and the one with numpy."""
    counted = Counting(quadratic)
    obj = oa.Objective(counted, backend="auto")
    x0 = torch.zeros(3, dtype=torch.float64)
    obj.probe(x0)
    assert counted.calls == 2 and obj.backend == "numpy"  # the tensor try raised, numpy did not
    oracle = Oracle(obj, x0, oa.Budget(evals=10))
    assert oracle.value(x0) == 3.0 and oracle.nfev == 2 and counted.calls == 2
    assert np.isnan(oracle.history.f[0]) and oracle.history.f[1] == 3.0 and oracle.best_eval == 2


def test_a_probe_the_run_does_not_start_from_is_counted_on_its_own() -> None:
    counted = Counting(lambda x: ((x - 1.0) ** 2).sum())
    obj = oa.Objective(counted, backend="auto")
    x0 = torch.zeros(2, dtype=torch.float64)
    obj.probe(x0)
    oracle = Oracle(obj, x0, oa.Budget(evals=10))
    oracle.values(torch.ones(3, 2, dtype=torch.float64))
    assert oracle.nfev == 4 and counted.calls == 1 + 1  # the probe, then one vmap call
    np.testing.assert_array_equal(oracle.history.f, [2.0, 0.0, 0.0, 0.0])


def test_a_probe_at_another_x0_is_dropped() -> None:
    obj = oa.Objective(lambda x: (x**2).sum(), backend="auto")
    obj.probe(torch.ones(2))
    oracle = Oracle(obj, torch.zeros(2), oa.Budget(evals=10))
    oracle.value(torch.zeros(2))
    assert oracle.nfev == 1 and oracle.history.f.tolist() == [0.0]


def test_result_x_converts_with_numpy() -> None:
    res = oa.minimize(quadratic, np.zeros(2), "nelder_mead", budget=200)
    np.testing.assert_array_equal(np.asarray(res.x), res.x_numpy())


def test_dual_annealing_defaults_on_a_plain_numpy_function() -> None:
    """The local search uses a gradient only when the objective has one: a plain numpy
    function's kind is decided before the run (it once asked a numpy function for one)."""

    def rosen(x: np.ndarray) -> float:
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))

    res = oa.minimize(rosen, np.zeros(3), "dual_annealing", bounds=[(-2, 2)] * 3, seed=0,
                      budget=500)  # fmt: skip
    assert res.nfev == 500 and res.ngev == 0 and res.stop_reason is oa.StopReason.MAX_EVALS
    assert res.fun < 1e-3
