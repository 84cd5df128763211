"""Chains: construction from names and strings, one shared Budget, the switch rules, which
phase found the best point, and the refusals made before any evaluation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import optarena as oa
from optarena import problems
from optarena.methods import resolve_method
from optarena.methods.composite.chain import Chain, choose_local
from optarena.methods.composite.multistart import MultiStart

F64 = torch.float64


class Counting:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return ((x - 0.3) ** 2).sum()


def sphere_numpy(x: np.ndarray) -> float:
    return float(((x - 0.3) ** 2).sum())


def test_string_and_class_build_the_same_chain() -> None:
    chain = resolve_method("cmaes>lbfgs", {"switch": 0.5})
    assert chain == Chain("cmaes", "lbfgs", switch=0.5)
    assert chain.label == "cmaes>lbfgs"
    assert Chain(phases=("pso", "slsqp")).label == "pso>slsqp"
    res = oa.minimize(Counting(), torch.zeros(3, dtype=F64), "cmaes>lbfgs", budget=300, seed=0)
    assert res.method == "cmaes>lbfgs"


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("cmaes",), {}, ValueError, "at least two phases"),
        (("cmaes", "lbgfs"), {}, ValueError, "Did you mean"),
        (("cmaes", "lbfgs"), {"switch": 1.5}, ValueError, "switch"),
        (("cmaes", "lbfgs"), {"polish": 0}, ValueError, "polish"),
        (("cmaes", "lbfgs"), {"lr": 0.1}, TypeError, "unknown option"),
        (("cmaes", 3), {}, TypeError, "phase"),
    ],
)
def test_bad_chains_are_refused_at_construction(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        Chain(*args, **kwargs)


def test_phases_share_one_budget_and_report_their_evaluations() -> None:
    fn = Counting()
    x0 = torch.tensor([2.0, -1.0, 0.5], dtype=F64)
    res = oa.minimize(oa.Objective(fn, vectorize=False), x0, "cmaes>lbfgs", budget=400, seed=1)
    assert res.nfev == fn.calls <= 400
    assert np.array_equal(res.history.x[0], x0.numpy())  # the start is evaluated first
    phases = res.info["phases"]
    # the polish ended with budget left: global search and polish again, until it is spent
    assert [p["method"] for p in phases] == ["cmaes", "lbfgs"] * (len(phases) // 2)
    assert res.nfev == 400 and res.info["rounds"] == len(phases) // 2 >= 2
    assert phases[0]["first_eval"] == 2
    for before, after in itertools.pairwise(phases):
        assert after["first_eval"] == before["last_eval"] + 1
    assert phases[-1]["last_eval"] == res.nfev
    best = res.best_eval
    owner = next(p for p in phases if p["first_eval"] <= best <= p["last_eval"])
    assert res.info["phase_of_best"] == owner["method"] == "lbfgs"
    assert res.fun < 1e-12


def test_switch_gives_the_global_phase_its_fraction_of_the_budget() -> None:
    res = oa.minimize(Counting(), torch.ones(3, dtype=F64), "pso>lbfgs", bounds=(-2, 2),
                      budget=600, switch=0.5, seed=0)  # fmt: skip
    first = res.info["phases"][0]
    assert first["ended"] == "share" and first["last_eval"] == 301


def test_global_phase_ends_when_it_stagnates() -> None:
    res = oa.minimize(Counting(), torch.ones(3, dtype=F64), Chain("pso", "lbfgs", window=60),
                      bounds=(-2, 2), budget=5000, seed=0)  # fmt: skip
    first = res.info["phases"][0]
    assert first["ended"] in ("stagnated", "converged")
    assert first["last_eval"] < 0.8 * 5000


def test_polish_starts_from_several_distinct_points() -> None:
    res = oa.minimize(problems.get("wavy_bowl", dtype=F64), method=Chain("cmaes", "slsqp",
                      polish=3), budget=2000, seed=0)  # fmt: skip
    # the first round polishes three points; later rounds (budget left) polish their own best
    assert [p["method"] for p in res.info["phases"]][:4] == ["cmaes", "slsqp", "slsqp", "slsqp"]
    assert res.fun == pytest.approx(-0.661470591797071, abs=1e-9)


def test_chain_reaches_the_global_minimum_of_wavy_bowl() -> None:
    p = problems.get("wavy_bowl", dtype=F64)
    res = oa.minimize(p, method="cmaes>lbfgs", budget=500, seed=0)
    assert res.fun == pytest.approx(p.f_opt, abs=1e-9)


def test_gradient_phase_on_a_gradient_free_objective_is_refused_before_evaluating() -> None:
    calls = {"n": 0}

    def f(x: np.ndarray) -> float:
        calls["n"] += 1
        return sphere_numpy(x)

    obj = oa.Objective.from_numpy(f)
    with pytest.raises(ValueError, match=r"needs a gradient.*'local'"):
        oa.minimize(obj, np.zeros(3), "cmaes>lbfgs", budget=100)
    assert calls["n"] == 0
    res = oa.minimize(obj, np.zeros(3), "cmaes>local", budget=800, seed=0)
    assert res.info["phases"][-1]["method"] == "powell"
    assert res.fun < 1e-8


def test_local_placeholder_follows_the_facts() -> None:
    assert choose_local(has_gradient=True, bounded=False) == "bfgs"
    assert choose_local(has_gradient=True, bounded=True) == "slsqp"
    assert choose_local(has_gradient=False, bounded=True) == "powell"


def test_box_requirements_are_checked_before_evaluating() -> None:
    fn = Counting()
    with pytest.raises(ValueError, match="needs bounds"):
        oa.minimize(fn, torch.zeros(3, dtype=F64), "pso>lbfgs", budget=100)
    with pytest.raises(ValueError, match="does not support bounds"):
        oa.minimize(fn, torch.zeros(3, dtype=F64), "cmaes>bfgs", bounds=(-1, 1), budget=100)
    assert fn.calls == 0


def test_every_phase_stays_in_the_box() -> None:
    seen: list[np.ndarray] = []

    def far(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().numpy().copy())
        return ((x + 3.0) ** 2).sum()

    lo, hi = torch.tensor([0.5, -2.0, 0.4]), torch.tensor([2.0, 2.0, 0.6])
    res = oa.minimize(oa.Objective(far, vectorize=False), torch.tensor([1.0, 0.0, 0.5]),
                      "cmaes>local", bounds=(lo, hi), budget=600, seed=0)  # fmt: skip
    pts = np.array(seen)
    assert (pts >= lo.numpy()).all() and (pts <= hi.numpy()).all()
    assert res.x[0] == pytest.approx(0.5) and res.x[2] == pytest.approx(0.4)


def test_a_nested_composite_reaching_the_target_ends_the_whole_chain() -> None:
    fn = Counting()
    chain = Chain(MultiStart("bfgs", 4), "slsqp")
    res = oa.minimize(oa.Objective(fn, vectorize=False), torch.ones(3, dtype=F64), chain,
                      budget=oa.Budget(evals=500, target=1e-3), seed=0)  # fmt: skip
    assert res.stop_reason is oa.StopReason.TARGET_REACHED
    assert [p["method"] for p in res.info["phases"]] == ["multistart(bfgs)"]
    assert res.nfev == fn.calls and res.fun <= 1e-3
