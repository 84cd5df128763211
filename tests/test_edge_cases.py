"""Edge cases of counting, bounds and constraints that are easy to get wrong."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa


def test_nan_constraint_is_not_satisfied() -> None:
    con = oa.Ineq(lambda x: torch.sqrt(x[0] - 0.5))  # NaN below 0.5: not feasible there
    res = oa.minimize(
        lambda x: (x**2).sum(), [1.0, 1.0], "cobyla", constraints=[con], budget=200, seed=0
    )
    assert float(res.x[0]) >= 0.5 - 1e-8
    assert res.feasible


def test_batch_best_ignores_nan_rows_under_constraints() -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.where(x[0] > 0, torch.nan, (x**2).sum())

    con = oa.Ineq(lambda x: x[0])  # the feasible side is where f is NaN
    res = oa.minimize(
        f,
        [-0.5, 0.0],
        oa.Penalty("random_search", inner_evals=20),
        bounds=(-1, 1),
        constraints=[con],
        budget=60,
        seed=0,
    )
    assert math.isfinite(res.fun)
    assert res.stop_reason is not oa.StopReason.NO_FINITE_VALUE


@pytest.mark.parametrize("method", ["lbfgs", "lbfgsb", "slsqp"])
def test_finite_differences_respect_narrow_and_fixed_boxes(method: str) -> None:
    seen: list[np.ndarray] = []

    def g(x: np.ndarray) -> float:
        seen.append(x.copy())
        return float((x[0] - 3) ** 2 + (x[1] - 0.2) ** 2)

    lo, hi = np.array([1.0, 0.0]), np.array([1.0, 1e-9])  # x0 fixed, x1 in a tiny interval
    oa.minimize(
        oa.Objective.from_numpy(g, gradient="fd"), [1.0, 0.0], method, bounds=(lo, hi), budget=40
    )
    pts = np.array(seen)
    assert (pts >= lo).all() and (pts <= hi).all()


def test_grad_evals_budget_holds_for_batched_finite_differences() -> None:
    obj = oa.Objective.from_numpy(lambda x: float(((x - 1) ** 2).sum()), gradient="fd")
    res = oa.minimize(
        obj, [0.0, 0.0], "multistart", starts=8, budget=oa.Budget(evals=5000, grad_evals=5), seed=0
    )
    assert res.ngev <= 5
    assert res.stop_reason is oa.StopReason.MAX_GRAD_EVALS


def test_target_in_a_trimmed_last_batch_is_reported() -> None:
    res = oa.minimize(
        lambda x: (x**2).sum(),
        [0.5, 0.5],
        "random_search",
        bounds=(-1, 1),
        budget=oa.Budget(evals=45, target=1e30),
        seed=0,
    )
    assert res.stop_reason is oa.StopReason.TARGET_REACHED


def test_float32_problem_never_leaves_float64_bounds() -> None:
    seen: list[float] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        seen.append(float(x.detach()[0]))
        return -(x**2).sum()

    x0 = torch.tensor([0.05], dtype=torch.float32)
    for method in ("lbfgs", "pso", "adam"):
        seen.clear()
        oa.minimize(
            oa.Objective(f, vectorize=False), x0, method, bounds=(0.0, 0.1), budget=60, seed=0
        )
        assert max(seen) <= 0.1 and min(seen) >= 0.0, method


def test_penalty_does_not_stop_at_a_feasible_but_unfinished_point() -> None:
    res = oa.minimize(
        lambda x: ((x - 2) ** 2).sum(),
        [0.0, 0.0],
        oa.Penalty("lbfgs", inner_steps=1),
        bounds=(-5, 5),
        constraints=[oa.Ineq(lambda x: 1 - x)],
        budget=3000,
    )
    assert res.fun == pytest.approx(2.0, abs=1e-6)
    assert res.feasible


def test_penalty_with_kept_box_lbfgs_state_converges() -> None:
    res = oa.minimize(
        lambda x: ((x - 2) ** 2).sum(),
        [3.0, 3.0],
        oa.Penalty("lbfgs", inner_steps=1),
        bounds=(-5, 5),
        constraints=[oa.Ineq(lambda x: 1 - x)],
        budget=3000,
    )
    assert res.fun == pytest.approx(2.0, abs=1e-6)
    assert res.feasible
    assert res.nfev < 3000


@pytest.mark.parametrize("error", [ZeroDivisionError, KeyboardInterrupt])
def test_chunks_done_before_a_failing_chunk_are_kept(error: type[BaseException]) -> None:
    calls = {"n": 0}

    def batched(X: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 2:
            raise error
        return (X**2).sum(dim=1)

    obj = oa.Objective(lambda x: (x**2).sum(), batched=batched, chunk_size=8)
    kw = {"popsize": 20, "bounds": (-1, 1), "budget": 100, "seed": 0}
    if error is KeyboardInterrupt:
        res = oa.minimize(obj, [0.5, 0.5], "pso", **kw)
        assert res.stop_reason is oa.StopReason.INTERRUPTED
        assert res.nfev == 8  # the first chunk of the first generation
    else:
        with pytest.raises(oa.ObjectiveError) as err:
            oa.minimize(obj, [0.5, 0.5], "pso", **kw)
        assert err.value.evaluation == 9
        assert err.value.result is not None and err.value.result.nfev == 8


def test_wrapper_instances_take_their_inner_flags() -> None:
    p = oa.Penalty("cmaes")
    assert p.info.stochastic and p.info.is_global and not p.info.needs_grad
    assert oa.AugmentedLagrangian("lbfgs").info.needs_grad
    assert not type(p).info.stochastic  # the registered class keeps its own flags


def test_infeasible_runs_rank_last_in_comparisons() -> None:
    cmp = oa.compare(oa.problems.get("hs07"), ["penalty", "slsqp"], budget=50, seeds=1)
    rows = {r.label: r for r in cmp.summary.rows}
    assert rows["slsqp"].median == pytest.approx(-math.sqrt(3), rel=1e-8)
    assert rows["penalty"].median == math.inf


def test_summary_separates_runs_stored_with_different_budgets(tmp_path) -> None:
    from optarena.cli import main

    for budget in (100, 300):
        spec = tmp_path / f"s{budget}.toml"
        spec.write_text(
            f'name = "t"\nbudget = {budget}\nseeds = [0]\n[[problems]]\nname = "sphere"\n'
            '[[methods]]\nname = "pso"\n',
            encoding="utf-8",
        )
        assert (
            main(
                [
                    "bench",
                    str(spec),
                    "--store",
                    str(tmp_path / "r.sqlite"),
                    "--no-progress",
                    "--format",
                    "none",
                ]
            )
            == 0
        )
    from optarena.bench import Store, summarize_store

    with Store(tmp_path / "r.sqlite", create=False) as store:
        labels = sorted(r.label for r in summarize_store(store).rows)
    assert labels == ["pso [evals=100]", "pso [evals=300]"]
