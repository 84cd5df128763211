"""The bbob Problem's objective evaluates through cocoex's C function on numpy arrays: one point
costs about the C call, with the values, counts, batching and declarations of the tensor path."""

from __future__ import annotations

import pickle
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

import optarena as oa

pytest.importorskip("cocoex")

from optarena.problems import get
from optarena.problems.bbob import BBOBFunction


class CountedBare:
    """cocoex's own function behind a counter of the points it receives (one per row)."""

    def __init__(self, bare: Any) -> None:
        self.bare, self.points = bare, 0

    def __call__(self, x: np.ndarray) -> Any:
        self.points += 1 if np.ndim(x) == 1 else len(x)
        return self.bare(x)


@pytest.fixture
def tensor_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every call of the tensor forms of BBOBFunction (the real ones, counted)."""
    calls: list[int] = []
    call, batched = BBOBFunction.__call__, BBOBFunction.batched

    def counted_call(self: BBOBFunction, x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return call(self, x)

    def counted_batched(self: BBOBFunction, X: torch.Tensor) -> torch.Tensor:
        calls.append(len(X))
        return batched(self, X)

    monkeypatch.setattr(BBOBFunction, "__call__", counted_call)
    monkeypatch.setattr(BBOBFunction, "batched", counted_batched)
    return calls


@pytest.mark.parametrize(("function", "dim"), [(1, 2), (8, 10), (15, 5)])
def test_one_point_runs_make_no_tensor_call_and_count_every_c_call(
    function: int, dim: int, tensor_calls: list[int]
) -> None:
    p = get("bbob", function=function, instance=1, dim=dim)
    bare = CountedBare(p.fn.bare)
    p.fn._bare = bare
    for method in ("nelder_mead", "dual_annealing", "powell"):
        before = bare.points
        res = oa.minimize(p, method=method, bounds=p.bounds, budget=300, seed=0, record_x=True)
        assert res.nfev == bare.points - before <= 300
        assert float(p.fn(res.x)) == res.fun  # the returned point has the returned value
    assert tensor_calls == [1, 1, 1]  # only the three checks above
    assert p.objective().backend == "numpy"


def test_one_point_values_equal_the_batched_path_and_the_tensor_function() -> None:
    p = get("bbob", function=15, instance=3, dim=6)
    obj = p.objective()
    X = np.random.default_rng(0).uniform(-5.0, 5.0, size=(40, 6))
    one = np.array([obj._value_array(x) for x in X])
    assert np.array_equal(one, obj.evaluate_batch(X))
    assert np.array_equal(one, [obj.evaluate(torch.from_numpy(x)) for x in X])
    assert np.array_equal(one, p.batched(torch.from_numpy(X)).numpy())
    assert np.array_equal(one, [float(p.fn(torch.from_numpy(x))) for x in X])
    assert np.array_equal(one, p.fn.bare(X))


def test_populations_use_one_c_call_per_chunk(tensor_calls: list[int]) -> None:
    p = get("bbob", function=8, instance=2, dim=4)
    obj = p.objective()
    bare = CountedBare(p.fn.bare)
    p.fn._bare = bare
    res = oa.minimize(obj, method="cmaes", bounds=p.bounds, budget=200, seed=1, record_x=True)
    assert res.nfev == bare.points == 200
    assert tensor_calls == []
    assert np.array_equal(res.history.f, p.fn.array_values(res.history.x))


def test_the_objective_keeps_its_declarations_and_pickles() -> None:
    p = get("bbob", function=7, instance=4, dim=3)
    obj = p.objective()
    assert obj.gradient == "none" and not obj.has_gradient and obj.name == "bbob"
    assert torch.equal(obj.default_x0, p.x0)
    with pytest.raises(ValueError, match="gradient"):  # refused before any evaluation
        oa.minimize(p, method="lbfgs", budget=10)
    copy = pickle.loads(pickle.dumps(obj))  # worker processes rebuild the C function
    assert copy.evaluate(p.x0) == obj.evaluate(p.x0) == float(p.fn(p.x0))
    fd = p.objective(gradient="fd")  # finite differences stay available on request
    assert fd.has_gradient and fd.backend == "numpy"


def test_points_of_any_dtype_or_layout_reach_the_c_function_as_float64() -> None:
    p = get("bbob", function=10, instance=1, dim=4)
    obj = p.objective()
    x64 = np.array([0.5, -1.25, 2.0, 3.5])
    ref = float(p.fn.bare(x64))
    strided = np.zeros(8)
    strided[::2] = x64
    assert obj.evaluate(torch.from_numpy(x64).float()) == ref  # exact in float32
    assert obj.evaluate(x64.reshape(1, 4)) == ref
    assert p.fn.array_value(strided[::2]) == ref
    assert p.fn.array_value(x64.tolist()) == ref
    frozen = x64.copy()
    frozen.flags.writeable = False  # cocoex itself refuses read-only buffers
    assert p.fn.array_value(frozen) == ref
    rows = np.stack([frozen, frozen])
    rows.flags.writeable = False
    assert p.fn.array_values(rows).tolist() == [ref, ref]
    with pytest.raises(ValueError, match="takes 4 values"):
        p.fn.array_value(np.zeros(5))
    with pytest.raises(ValueError, match="rows of 4"):
        p.fn.array_values(np.zeros((2, 3)))
    assert p.fn.array_values(np.zeros((0, 4))).shape == (0,)
    res = oa.minimize(p, x0=p.x0.float(), method="nelder_mead", budget=50, seed=0)
    assert res.nfev == 50 and np.isfinite(res.fun)


def test_a_replaced_function_or_batched_path_is_the_one_evaluated() -> None:
    p = get("bbob", function=1, instance=1, dim=3)
    seen: list[int] = []

    def logged(x: torch.Tensor) -> torch.Tensor:
        seen.append(1)
        return p.fn(x)

    wrapped = replace(p, fn=logged, batched=None)  # a wrapper (a logger, a transform) wins
    res = oa.minimize(wrapped, method="nelder_mead", budget=40, seed=0)
    assert wrapped.objective().backend == "torch" and len(seen) == res.nfev == 40
    rows: list[int] = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        rows.append(len(X))
        return p.batched(X)

    own = replace(p, batched=batched)
    res = oa.minimize(own, method="cmaes", bounds=p.bounds, budget=60, seed=0)
    assert sum(rows) == res.nfev == 60
    looped = replace(p, batched=None).objective()  # no batched path: one point at a time
    assert looped.backend == "numpy" and looped.batched is None
