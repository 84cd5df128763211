"""method="auto": the choice follows the facts (and says so), and on the SEEDS.md problems it
finds the optimum cheaply without any tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena import problems
from optarena.methods.composite.auto import Auto

# Best-known minima of mlp_identity for other data seeds (benchmarks/auto_mlp.py: 300 SLSQP
# and 300 BFGS starts each agree to 12 digits); data seed 42 is the certified optimum.
F_MLP = {
    42: 0.783054161501,
    1: 0.382911134116,
    4: 0.587402778754,
}


def evals_to(res: oa.Result, f_opt: float, rel: float = 1e-6) -> int | None:
    return res.history.evals_to_reach(f_opt + rel * abs(f_opt))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mlp_identity_with_gradient_within_300_evaluations(seed: int) -> None:
    res = oa.minimize(problems.get("mlp_identity"), method="auto", budget=300, seed=seed)
    n = evals_to(res, F_MLP[42])
    assert n is not None and n <= 300
    assert res.info["auto"]["method"] == "multistart(bfgs, race)"
    assert "gradient" in res.info["auto"]["reason"]


@pytest.mark.parametrize(("data_seed", "seed"), [(1, 0), (1, 5), (4, 3), (4, 8)])
def test_mlp_identity_other_data_where_slsqp_from_x0_fails(data_seed: int, seed: int) -> None:
    p = problems.get("mlp_identity", data_seed=data_seed)
    assert oa.minimize(p, method="slsqp", budget=300).fun > 1e4  # a dead-ReLU basin
    res = oa.minimize(p, method="auto", budget=300, seed=seed)
    n = evals_to(res, F_MLP[data_seed])
    assert n is not None and n <= 300


@pytest.mark.parametrize("seed", [0, 7])
def test_mlp_identity_without_gradient_within_2000_evaluations(seed: int) -> None:
    p = problems.get("mlp_identity")
    obj = p.objective(gradient="none")
    res = oa.minimize(obj, p.x0, method="auto", bounds=p.bounds, budget=2000, seed=seed)
    n = evals_to(res, F_MLP[42])
    assert n is not None and n <= 2000
    assert res.ngev > 0  # forward differences, each probe counted as an evaluation
    assert "no gradient" in res.info["auto"]["reason"]


def test_constraints_go_to_a_method_that_handles_them() -> None:
    p = problems.get("flower_constrained", dtype=torch.float64)
    res = oa.minimize(p, method="auto", budget=500, seed=0)
    assert res.info["auto"]["method"] == "slsqp"
    assert res.fun == pytest.approx(p.f_opt, abs=1e-9) and res.feasible


def test_noisy_values_go_to_a_population_method() -> None:
    res = oa.minimize(problems.get("noisy", scale=1e-3), method="auto", budget=1500, seed=0)
    assert res.info["auto"]["method"] == "cmaes"
    assert "noisy" in res.info["auto"]["reason"]
    assert res.fun < 0.05


def test_non_smooth_function_falls_back_to_cmaes() -> None:
    p = problems.get("step")
    res = oa.minimize(p, method="auto", bounds=p.bounds, budget=3000, seed=0)
    assert "fallback" in res.info["auto"]
    assert res.fun < 0.1 and res.nfev <= 3000


def test_large_dimension_uses_lbfgs_from_x0() -> None:
    d = 300
    target = torch.linspace(-1, 1, d, dtype=torch.float64)
    res = oa.minimize(
        lambda x: ((x - target) ** 2 * torch.arange(1, d + 1)).sum(),
        torch.zeros(d, dtype=torch.float64),
        "auto",
        budget=400,
        seed=0,
    )
    assert res.info["auto"]["method"].startswith("lbfgs")
    assert res.fun < 1e-6


@pytest.mark.parametrize("name", ["abs_square", "wavy_bowl", "rosenbrock", "flower"])
def test_seed_problems_need_no_tuning(name: str) -> None:
    p = problems.get(name)
    res = oa.minimize(p, method="auto", budget=3000, seed=0)
    assert math.isfinite(res.fun)
    assert res.fun == pytest.approx(p.f_opt, abs=1e-5)  # float32 problems


def test_auto_is_reproducible_and_validated() -> None:
    p = problems.get("mlp_identity")
    a, b = (oa.minimize(p, method="auto", budget=200, seed=4) for _ in range(2))
    np.testing.assert_array_equal(a.history.f, b.history.f)
    with pytest.raises(ValueError, match="patience"):
        Auto(patience=0)
    with pytest.raises(TypeError, match="unknown option"):
        oa.minimize(p, method="auto", speed=3)


def test_difference_races_hand_a_creeping_search_to_the_global_search() -> None:
    """Forward-difference lanes creep near the optimum of bbob's attractive sector (f6, d = 5:
    3e-7 after 5,000 evaluations); past their share of the budget the races stop, and the
    global search reaches 1e-8."""
    pytest.importorskip("cocoex")
    p = problems.get("bbob", function=6, instance=1, dim=5)
    res = oa.minimize(p, method="auto", bounds=p.bounds, budget=5000, seed=0)
    assert "no more progress" in res.info["auto"]["races"]
    assert res.nfev == 5000 and res.fun - p.f_opt < 1e-8


def test_a_space_with_discrete_parameters_goes_to_a_method_that_models_them() -> None:
    space = oa.Space({"x": oa.Real(-2, 2), "k": oa.Int(-5, 5), "c": oa.Choice(["a", "b", "c"])})

    def f(cfg: dict) -> float:
        return (cfg["x"] - 0.5) ** 2 + (cfg["k"] - 3) ** 2 + (cfg["c"] != "b")

    res = oa.minimize(f, space=space, method="auto", budget=200, seed=0)
    assert res.info["auto"]["method"] == "catcma"
    assert "k, c" in res.info["auto"]["reason"]
    assert res.config["k"] == 3 and res.config["c"] == "b"
    reals = oa.Space({"x": oa.Real(-2, 2), "y": oa.Real(-2, 2)})
    res = oa.minimize(lambda c: c["x"] ** 2 + c["y"] ** 2, space=reals, method="auto",
                      budget=200, seed=0)  # fmt: skip
    assert res.info["auto"]["method"] != "catcma"


def test_difference_races_end_after_their_evaluations_per_dimension() -> None:
    """On bbob's attractive sector at d = 10 the difference lanes still descend after 6,000 of
    10,000 evaluations, creeping at 1e-7 where CMA-ES from their best point reaches 1e-8: the
    races end after RACE_PER_DIM evaluations per dimension whatever their progress."""
    pytest.importorskip("cocoex")
    from optarena.methods.composite.auto import RACE_PER_DIM

    p = problems.get("bbob", function=6, instance=1, dim=10)
    res = oa.minimize(p, method="auto", bounds=p.bounds, budget=10_000, seed=100_601)
    used = int(res.info["auto"]["races"].split()[2])
    assert RACE_PER_DIM * 10 <= used < RACE_PER_DIM * 10 + 100  # the cap, within one batch
    assert res.nfev == 10_000 and res.fun - p.f_opt < 1e-8


@pytest.mark.parametrize(("d", "races"), [(10, True), (12, False)])
def test_no_difference_races_above_their_dimension(d: int, races: bool) -> None:
    """Above RACE_MAX_DIM (bbob d = 20: the races lost 21 of 195 triples to the global search
    alone) rule 4 hands the whole budget to the global search; at d = 10 the races run."""
    from optarena.methods.composite.auto import RACE_MAX_DIM

    assert 10 <= RACE_MAX_DIM < 12
    g = torch.Generator().manual_seed(d)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    scale = 10.0 ** torch.linspace(0, 2, d, dtype=torch.float64)
    obj = oa.Objective(lambda x: ((scale * (q @ (x - 1.0))) ** 2).sum(), gradient="none")
    res = oa.minimize(obj, torch.zeros(d, dtype=torch.float64), "auto", bounds=(-5, 5),
                      budget=3000, seed=0)  # fmt: skip
    info = res.info["auto"]
    assert res.nfev == 3000
    assert (info.get("races") == f"none above d = {RACE_MAX_DIM}") is not races
    assert ("cohorts" in info) is races  # without races, the global search spent it all
