"""A noisy ask/tell study reports what ``minimize`` reports on a noisy objective: its best
point chosen and valued by re-evaluation (guarantee 2), not the luckiest single sample."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.budget import StopReason
from optarena.space import Int, Real

INFO = {i.name: i for i in oa.methods()}
POPULATION = [n for n, i in INFO.items() if i.family == "population"]
BUDGET = 320  # 4 re-evaluations per point by default (5% of the budget)


def noisy() -> oa.Objective:
    """A sphere (>= 0) plus Gaussian noise drawn in call order: the same sequence of calls
    gets the same values, so an ask/tell study told in order can be compared with minimize."""
    rng = np.random.default_rng(0)

    def f(x: torch.Tensor) -> float:
        return float(((x.detach().double() - 0.3) ** 2).sum()) + 0.3 * rng.standard_normal()

    return oa.Objective(f, noisy=True, vectorize=False)


def kw(name: str, budget: int | oa.Budget = BUDGET) -> dict:
    out: dict = {"x0": torch.full((3,), 1.0, dtype=torch.float64), "seed": 3, "budget": budget}
    if INFO[name].supports_bounds:
        out["bounds"] = (-2.0, 2.0)
    return out


def run(opt: oa.Optimizer, f: oa.Objective, n: int | None = None) -> oa.Result:
    while not opt.done:
        X = opt.ask(n)
        opt.tell(X, [f.fn(x) for x in X])
    return opt.result()


@pytest.mark.parametrize("name", POPULATION)
def test_a_noisy_study_is_minimizes_noisy_run(name: str) -> None:
    ref = oa.minimize(noisy(), method=name, **kw(name))
    res = run(oa.Optimizer(name, noisy=True, **kw(name)), noisy())
    assert res.nfev == ref.nfev == BUDGET
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    np.testing.assert_array_equal(res.history.x, ref.history.x)
    assert res.fun == ref.fun and torch.equal(res.x, ref.x) and res.best_eval == ref.best_eval
    assert res.info["noise"] == ref.info["noise"]


def test_fun_is_the_re_evaluated_mean_with_its_standard_error_not_the_luckiest_sample() -> None:
    res = run(oa.Optimizer("cmaes", noisy=True, **kw("cmaes")), noisy())
    note = res.info["noise"]
    k = note["reevaluations"]
    assert k == 4 and note["reserved"] == 16
    last = res.history.f[-k:]  # the chosen point's k fresh values
    assert res.fun == pytest.approx(float(np.mean(last)), rel=1e-12)
    assert note["fun_se"] == pytest.approx(float(np.std(last, ddof=1)) / np.sqrt(k), rel=1e-9)
    assert note["raw_best"] < res.fun  # the lowest sample is biased low
    assert res.history.f[res.best_eval - 1] == pytest.approx(note["chosen_sample"])
    assert np.all(res.history.x[-k:] == res.x.numpy())  # the re-evaluations are of x


def test_re_evaluations_told_one_at_a_time_and_in_any_order_give_the_estimate() -> None:
    f = noisy()
    opt = oa.Optimizer("pso", noisy=True, reevaluate=3, **kw("pso"))
    while opt._reeval is None:  # the method's part, one candidate at a time
        x = opt.ask(1)
        opt.tell(x, [f.fn(x[0])])
    assert not opt.done and opt.result().info["noise"]["skipped"] == "open study"
    while not opt.done:
        X = opt.ask()
        assert len(X) > 0
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(1))
        opt.tell(X[order], [f.fn(x) for x in X[order]])
    res = opt.result()
    assert res.nfev == BUDGET and res.info["noise"]["reevaluations"] == 3
    assert res.stop_reason == StopReason.MAX_EVALS and "averaged over 3" in res.message


def test_a_restore_inside_the_re_evaluations_hands_out_again_what_was_out() -> None:
    ref = run(oa.Optimizer("cmaes", noisy=True, **kw("cmaes")), noisy())
    f = noisy()
    opt = oa.Optimizer("cmaes", noisy=True, **kw("cmaes"))
    while opt._reeval is None:
        X = opt.ask()
        opt.tell(X, [f.fn(x) for x in X])
    X = opt.ask(5)
    opt.tell(X[:2], [f.fn(x) for x in X[:2]])
    again = oa.Optimizer("cmaes", noisy=True, **kw("cmaes"))
    again.load_state_dict(pickle.loads(pickle.dumps(opt.state_dict())))
    assert again.in_flight == 0 and torch.equal(again.ask(3), X[2:])
    again.tell(X[2:], [f.fn(x) for x in X[2:]])
    res = run(again, f)
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    assert res.fun == ref.fun and res.info["noise"] == ref.info["noise"]
    ended = oa.Optimizer("cmaes", noisy=True, **kw("cmaes"))  # a study saved once ended
    ended.load_state_dict(pickle.loads(pickle.dumps(again.state_dict())))
    assert ended.done and ended.result().fun == ref.fun and torch.equal(ended.result().x, ref.x)


def test_a_target_ends_the_methods_part_and_its_candidates_out_are_refused_saying_why() -> None:
    f = noisy()
    opt = oa.Optimizer("cmaes", noisy=True, **kw("cmaes", oa.Budget(evals=BUDGET, target=0.5)))
    X = opt.ask()
    opt.tell(X[:1], [0.1])  # reaches the target with the rest of the generation out
    assert not opt.done and opt.in_flight == 0
    with pytest.raises(ValueError, match="re-evaluations of the best points"):
        opt.tell(X[1:2], [f.fn(X[1])])
    res = run(opt, f)
    assert res.stop_reason == StopReason.TARGET_REACHED and res.info["noise"]["reevaluations"]


def test_a_noisy_space_study_hands_out_its_re_evaluations_as_configurations() -> None:
    space = {"a": Real(-2.0, 2.0), "n": Int(0, 5)}
    rng = np.random.default_rng(1)
    opt = oa.Optimizer("cmaes", space=space, noisy=True, seed=0, budget=BUDGET)
    while not opt.done:
        cs = opt.ask()
        assert all(isinstance(c, dict) for c in cs)
        opt.tell(cs, [c["a"] ** 2 + (c["n"] - 2) ** 2 + 0.3 * rng.standard_normal() for c in cs])
    res = opt.result()
    assert res.nfev == BUDGET and res.info["noise"]["reevaluations"] == 4
    assert set(res.config) == {"a", "n"}


def test_without_re_evaluations_fun_is_the_lowest_sample_as_in_minimize() -> None:
    ref = oa.minimize(noisy(), method="cmaes", reevaluate=0, **kw("cmaes"))
    res = run(oa.Optimizer("cmaes", noisy=True, reevaluate=0, **kw("cmaes")), noisy())
    assert res.fun == ref.fun and "noise" not in res.info and res.nfev == BUDGET
    with pytest.raises(ValueError, match="reevaluate"):
        oa.Optimizer("cmaes", noisy=True, reevaluate=100, **kw("cmaes"))
