"""Guarantees 1-7 of the design, checked for every registered method (selected by capability)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.methods import get_method_class

ALL = [i.name for i in oa.methods()]
BOUNDED = [i.name for i in oa.methods() if i.supports_bounds]
STOCHASTIC = [i.name for i in oa.methods() if i.stochastic]
DIM = 3
LOWER, UPPER = -2.0, 2.0


class Counting:
    """A shifted sphere that counts its calls and records every point it sees."""

    def __init__(self, nan_region: bool = False, fail_at: int | None = None) -> None:
        self.calls = 0
        self.grad_calls = 0
        self.points: list[np.ndarray] = []
        self.nan_region = nan_region
        self.fail_at = fail_at

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if x.requires_grad:
            self.grad_calls += 1
        self.points.append(x.detach().numpy().copy())
        if self.fail_at is not None and self.calls == self.fail_at:
            raise ZeroDivisionError("boom")
        f = ((x - 0.3) ** 2).sum() + 1.0 + 0.5 * torch.sin(3 * x).sum() ** 2
        if self.nan_region and float(x.detach()[0]) > 0.5:
            return f * torch.nan
        return f


def kwargs_for(name: str, bounded: bool = False) -> dict:
    info = get_method_class(name).info
    kw: dict = {"seed": 7}
    if bounded or info.requires_bounds:
        kw["bounds"] = (LOWER, UPPER)
    return kw


def x0() -> torch.Tensor:
    return torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)


@pytest.mark.parametrize("name", ALL)
def test_counts_equal_real_calls_and_budget_holds(name: str) -> None:
    fn = Counting()
    obj = oa.Objective(fn, vectorize=False)
    res = oa.minimize(obj, x0(), name, budget=37, **kwargs_for(name))
    assert res.nfev == fn.calls
    assert res.ngev == fn.grad_calls
    assert res.nfev <= 37
    assert len(res.history) == res.nfev
    assert list(res.history.evals) == list(range(1, res.nfev + 1))


@pytest.mark.parametrize("name", ALL)
def test_result_is_best_evaluated_point(name: str) -> None:
    fn = Counting()
    res = oa.minimize(oa.Objective(fn, vectorize=False), x0(), name, budget=50, **kwargs_for(name))
    assert res.fun == pytest.approx(float(fn(res.x)), rel=0, abs=1e-12)
    fn.points.pop()  # the check call above
    seen = np.array(fn.points)
    assert any(np.array_equal(p, res.x.numpy()) for p in seen)
    assert res.fun == np.nanmin(res.history.f)
    assert res.history.best_f[-1] == res.fun
    if np.array_equal(seen[0], x0().numpy()):
        assert res.fun <= res.history.f[0]


@pytest.mark.parametrize("name", ALL)
def test_nan_region_ranks_as_inf(name: str) -> None:
    fn = Counting(nan_region=True)
    res = oa.minimize(
        oa.Objective(fn, vectorize=False),
        torch.tensor([0.2, -1.0, 0.5], dtype=torch.float64),
        name,
        budget=60,
        **kwargs_for(name),
    )
    assert math.isfinite(res.fun)
    assert float(res.x[0]) <= 0.5
    assert res.nfev <= 60


@pytest.mark.parametrize("name", ALL)
def test_all_non_finite_ends_cleanly(name: str) -> None:
    res = oa.minimize(lambda x: x.sum() * torch.nan, x0(), name, budget=40, **kwargs_for(name))
    assert res.fun == math.inf
    assert res.stop_reason in (oa.StopReason.NO_FINITE_VALUE, oa.StopReason.NON_FINITE)
    assert not res.success
    assert res.nfev <= 40
    assert torch.equal(res.x, x0())


@pytest.mark.parametrize("name", ALL)
def test_objective_exception_carries_index_and_best(name: str) -> None:
    fn = Counting(fail_at=5)
    with pytest.raises(oa.ObjectiveError) as err:
        oa.minimize(oa.Objective(fn, vectorize=False), x0(), name, budget=100, **kwargs_for(name))
    e = err.value
    assert e.evaluation == 5
    assert isinstance(e.__cause__, ZeroDivisionError)
    assert "evaluation 5" in str(e)
    assert e.result is not None
    assert e.result.nfev == 4
    assert e.result.stop_reason is oa.StopReason.ERROR
    assert math.isfinite(e.result.fun)


@pytest.mark.parametrize("name", ALL)
def test_keyboard_interrupt_keeps_best_so_far(name: str) -> None:
    calls = {"n": 0}

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return Counting()(x)

    res = oa.minimize(oa.Objective(fn, vectorize=False), x0(), name, budget=100, **kwargs_for(name))
    assert res.stop_reason is oa.StopReason.INTERRUPTED
    assert res.nfev == 4
    assert len(res.history) == 4
    assert math.isfinite(res.fun)


@pytest.mark.parametrize("name", BOUNDED)
def test_bounds_respected_at_every_evaluation(name: str) -> None:
    fn = Counting()
    lo, hi = torch.tensor([0.5, -2.0, 0.4]), torch.tensor([2.0, 2.0, 0.6])

    def far(x: torch.Tensor) -> torch.Tensor:  # unconstrained optimum outside the box
        fn(x)
        return ((x + 3.0) ** 2).sum()

    oa.minimize(oa.Objective(far, vectorize=False), x0(), name, bounds=(lo, hi), budget=60, seed=3)
    pts = np.array(fn.points)
    assert (pts >= lo.numpy() - 0.0).all() and (pts <= hi.numpy() + 0.0).all()


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_history(name: str) -> None:
    runs = [
        oa.minimize(
            oa.Objective(Counting(), vectorize=False), x0(), name, budget=40, **kwargs_for(name)
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].history.f, runs[1].history.f)
    np.testing.assert_array_equal(runs[0].history.x, runs[1].history.x)
    assert torch.equal(runs[0].x, runs[1].x)


@pytest.mark.parametrize("name", ALL)
def test_objective_cannot_corrupt_the_run(name: str) -> None:
    def vandal(x: torch.Tensor) -> torch.Tensor:
        f = Counting()(x)
        x.data.add_(1e6)  # scribbles on the point it was given
        return f

    clean = oa.minimize(
        oa.Objective(Counting(), vectorize=False), x0(), name, budget=30, **kwargs_for(name)
    )
    dirty = oa.minimize(
        oa.Objective(vandal, vectorize=False), x0(), name, budget=30, **kwargs_for(name)
    )
    np.testing.assert_array_equal(dirty.history.f, clean.history.f)


@pytest.mark.parametrize("name", ALL)
def test_target_stops_run(name: str) -> None:
    res = oa.minimize(
        lambda x: ((x - 0.3) ** 2).sum(),
        x0(),
        name,
        budget=oa.Budget(evals=500, target=1e30),
        **kwargs_for(name),
    )
    assert res.stop_reason is oa.StopReason.TARGET_REACHED
    assert res.nfev == 1 or get_method_class(name).info.family == "population"


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    ("x0", "bounds", "budget", "match"),
    [
        ([float("nan"), 0.0, 0.0], None, 10, "NaN"),
        ([[0.0, 0.0, 0.0]], None, 10, "1-D"),
        ([0.0, 0.0, 0.0], ([1, 1, 1], [0, 0, 0]), 10, "lower bound > upper"),
        ([3.0, 0.0, 0.0], ([-1, -1, -1], [1, 1, 1]), 10, "outside the bounds"),
        ([0.0, 0.0, 0.0], ([-1, float("nan"), -1], [1, 1, 1]), 10, "NaN"),
        ([0.0, 0.0, 0.0], ([-1, -1], [1, 1]), 10, "shape"),
        ([0.0, 0.0, 0.0], None, 0, "positive"),
        ([0.0, 0.0, 0.0], None, -5, "positive"),
    ],
)
def test_bad_input_rejected_before_any_evaluation(name, x0, bounds, budget, match) -> None:
    fn = Counting()
    kw = kwargs_for(name)
    kw.pop("bounds", None)
    info = get_method_class(name).info
    if bounds is None and info.requires_bounds:
        bounds = ([-5] * 3, [5] * 3)
    if bounds is not None and not info.supports_bounds:
        pytest.skip("method has no bounds")
    with pytest.raises(ValueError, match=match):
        oa.minimize(fn, x0, name, bounds=bounds, budget=budget, **kw)
    assert fn.calls == 0


@pytest.mark.parametrize("name", ALL)
def test_unknown_option_is_type_error(name: str) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        oa.minimize(Counting(), x0(), name, budget=5, not_an_option=1)


def test_unknown_method_suggests_names() -> None:
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        oa.minimize(Counting(), x0(), "adma")


@pytest.mark.parametrize(
    ("spelling", "name"),
    [("L-BFGS-B", "lbfgsb"), ("Nelder-Mead", "nelder_mead"), ("trust-constr", "trust_constr"),
     ("SLSQP", "slsqp")],
)  # fmt: skip
def test_scipy_method_names_resolve(spelling: str, name: str) -> None:
    assert get_method_class(spelling) is get_method_class(name)


@pytest.mark.parametrize("name", [i.name for i in oa.methods() if i.needs_grad])
def test_gradient_method_refuses_gradient_free_objective(name: str) -> None:
    fn = Counting()
    obj = oa.Objective.from_numpy(lambda x: float(fn(torch.from_numpy(x))))
    with pytest.raises(ValueError, match="needs a gradient"):
        oa.minimize(obj, x0(), name, budget=10, **kwargs_for(name))
    assert fn.calls == 0


@pytest.mark.parametrize("name", [i.name for i in oa.methods() if not i.supports_bounds])
def test_unsupported_bounds_refused(name: str) -> None:
    with pytest.raises(ValueError, match="does not support bounds"):
        oa.minimize(Counting(), x0(), name, bounds=(-5, 5), budget=10)


@pytest.mark.parametrize("name", [i.name for i in oa.methods() if not i.supports_constraints])
def test_unsupported_constraints_refused_with_ways_out(name: str) -> None:
    with pytest.raises(ValueError, match="Penalty") as err:
        oa.minimize(
            Counting(),
            x0(),
            name,
            constraints=[oa.Ineq(lambda x: x[0])],
            budget=10,
            **kwargs_for(name),
        )
    assert "never drops them" in str(err.value)


def test_methods_listing_has_capabilities() -> None:
    infos = oa.methods()
    assert len({i.name for i in infos}) == len(infos)
    for i in infos:
        assert i.family in ("gradient", "population", "external", "composite")
        assert i.summary, f"{i.name} has no docstring summary"
