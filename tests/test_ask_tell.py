"""The public ask/tell Optimizer: the same run as minimize, driven by the caller.

Every population method of the registry is checked against ``minimize`` for the same seed
(whole generations, one candidate at a time, with elite re-evaluation), with values told in
any order, with failures, across a save and restore mid-generation, against its budget and
against bad input.
"""

from __future__ import annotations

import io
import math
import time

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.budget import StopReason

INFO = {i.name: i for i in oa.methods()}
POPULATION = [n for n, i in INFO.items() if i.family == "population"]
D = 3


def sphere(x: torch.Tensor) -> float:
    """A cheap deterministic objective, shifted so the optimum is not the box's centre."""
    return float(((x.detach().double() - 0.3) ** 2).sum())


SPHERE = oa.Objective(sphere, vectorize=False)  # minimize calls it row by row, as a caller does


def setup(name: str) -> dict:
    """x0 and, for a method that takes them, bounds (the box methods need them)."""
    kw: dict = {"x0": torch.full((D,), 1.0, dtype=torch.float64)}
    if INFO[name].supports_bounds:
        kw["bounds"] = (-2.0, 2.0)
    return kw


def reference(name: str, budget: int, **options) -> oa.Result:
    """The run of ``minimize`` the ask/tell runs are compared with."""
    kw = setup(name)
    return oa.minimize(SPHERE, method=name, seed=3, budget=budget, **kw, **options)


def study(name: str, budget: int, **options) -> oa.Optimizer:
    return oa.Optimizer(name, seed=3, budget=budget, **setup(name), **options)


def budget_for(name: str, generations: int = 3) -> int:
    """A budget that ends inside generation ``generations + 1`` (the last one is trimmed)."""
    return generations * study(name, None).ask().shape[0] + 3


def values(X: torch.Tensor) -> list[float]:
    return [sphere(x) for x in X]


def same_history(a: oa.Result, b: oa.Result) -> None:
    assert a.nfev == b.nfev
    np.testing.assert_array_equal(a.history.f, b.history.f)
    np.testing.assert_array_equal(a.history.x, b.history.x)
    assert a.fun == b.fun and torch.equal(a.x, b.x) and a.best_eval == b.best_eval


def test_every_population_method_is_covered() -> None:
    assert {"cmaes", "pso", "random_search"} <= set(POPULATION)


# -- the same run as minimize ----------------------------------------------------------------


@pytest.mark.parametrize("name", POPULATION)
def test_generation_at_a_time_gives_minimizes_history(name: str) -> None:
    """The budget ends inside a generation: the last one is trimmed as minimize trims it."""
    budget = budget_for(name)
    ref = reference(name, budget)
    opt = study(name, budget)
    while not opt.done:
        X = opt.ask()
        opt.tell(X, values(X))
    res = opt.result()
    same_history(res, ref)
    assert res.stop_reason == ref.stop_reason == StopReason.MAX_EVALS
    assert opt.generation >= 3  # (a method may draw a smaller first generation)


@pytest.mark.parametrize("name", POPULATION)
def test_one_candidate_at_a_time_gives_minimizes_history(name: str) -> None:
    """Asynchronous use (ask one, tell one) hands the generation out in pieces; while all of
    it is out and not back, ask() hands out nothing."""
    budget = budget_for(name) + 2 * 3  # with the elite's second values
    ref = reference(name, budget, reevaluate_elite=2)
    opt = study(name, budget, reevaluate_elite=2)
    flight: list[torch.Tensor] = []  # two candidates in flight, told oldest first
    while not opt.done:
        X = opt.ask(1)
        if X.shape[0]:
            flight.append(X)
        else:  # the generation is all out and not all back
            assert flight and opt.in_flight == len(flight)
        if len(flight) == 2 or (X.shape[0] == 0 and flight):
            x = flight.pop(0)
            opt.tell(x, [sphere(x[0])])
    same_history(opt.result(), ref)


@pytest.mark.parametrize("name", POPULATION)
def test_elite_reevaluation_is_minimizes(name: str) -> None:
    budget = budget_for(name) + 2 * 3 - 1  # ends inside the elite's re-evaluation
    ref = reference(name, budget, reevaluate_elite=2)
    opt = study(name, budget, reevaluate_elite=2)
    while not opt.done:
        X = opt.ask()
        opt.tell(X, values(X))
    same_history(opt.result(), ref)


@pytest.mark.parametrize("name", POPULATION)
def test_values_told_in_any_order_reach_the_right_candidates(name: str) -> None:
    """Each generation told backwards: the method sees the same values (the next generations
    are minimize's), the History records them in the order told."""
    budget = budget_for(name)
    ref = reference(name, budget)
    opt = study(name, budget)
    order = []
    while not opt.done:
        X = opt.ask()
        rev = X.flip(0)
        opt.tell(rev, values(rev))
        order.append(X.shape[0])
    res = opt.result()
    rows, start = [], 0
    for k in order:  # minimize's rows, each generation reversed
        rows.extend(range(start + k - 1, start - 1, -1))
        start += k
    np.testing.assert_array_equal(res.history.x, ref.history.x[rows])
    np.testing.assert_array_equal(res.history.f, ref.history.f[rows])
    assert res.fun == ref.fun and torch.equal(res.x, ref.x)


def test_failures_are_counted_ranked_last_and_kept_with_their_message() -> None:
    opt = study("cmaes", 14)
    X = opt.ask()
    vals: list = values(X)
    vals[0], vals[3] = ValueError("diverged at lr=3"), math.nan
    opt.tell(X, vals)
    res = opt.result()
    assert res.nfev == 7
    assert np.isnan(res.history.f[[0, 3]]).all() and np.isfinite(res.history.f[[1, 2, 4]]).all()
    assert res.info["failures"] == [{"eval": 1, "error": "ValueError: diverged at lr=3"}]
    finite = [v for v in vals if isinstance(v, float) and math.isfinite(v)]
    assert res.fun == min(finite)
    # the method ranked them +inf, exactly as minimize ranks a function that fails there
    failing = {tuple(X[0].tolist()), tuple(X[3].tolist())}

    def bad_at_those(x: torch.Tensor) -> float:
        return math.nan if tuple(x.tolist()) in failing else sphere(x)

    ref = oa.minimize(
        oa.Objective(bad_at_those, vectorize=False),
        method="cmaes",
        seed=3,
        budget=14,
        **setup("cmaes"),
    )
    Y = opt.ask()
    opt.tell(Y, values(Y))
    np.testing.assert_array_equal(opt.result().history.x, ref.history.x)


@pytest.mark.filterwarnings("ignore:pso with a budget")
def test_all_failures_end_with_no_finite_value() -> None:
    opt = study("pso", 13)
    X = opt.ask()
    opt.tell(X, [RuntimeError("out of memory")] * X.shape[0])
    res = opt.result()
    assert opt.done and res.stop_reason == StopReason.NO_FINITE_VALUE and res.fun == math.inf
    assert len(res.info["failures"]) == 13 and not res.success


# -- saving and restoring --------------------------------------------------------------------


def _roundtrip(opt: oa.Optimizer, name: str, budget: int, **options) -> oa.Optimizer:
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    again = study(name, budget, **options)
    again.load_state_dict(torch.load(buf, weights_only=False))
    return again


@pytest.mark.parametrize("name", POPULATION)
def test_state_dict_mid_generation_continues_bit_identically(name: str) -> None:
    """Saved with part of a generation out and part told, and again inside the elite's
    re-evaluation: the restored study (a new object, as after a restart) continues exactly
    as the uninterrupted run."""
    budget = budget_for(name) + 2 * 3
    ref = reference(name, budget, reevaluate_elite=2)
    opt = study(name, budget, reevaluate_elite=2)
    X = opt.ask()
    opt.tell(X[:-1], values(X[:-1]))
    opt = _roundtrip(opt, name, budget, reevaluate_elite=2)
    opt.tell(X[-1:], values(X[-1:]))  # the candidate handed out before the restart
    E = opt.ask(1)  # inside the elite's second evaluation
    opt = _roundtrip(opt, name, budget, reevaluate_elite=2)
    opt.tell(E, values(E))
    while not opt.done:
        X = opt.ask()
        opt.tell(X, values(X))
    same_history(opt.result(), ref)
    assert opt.result().nfev == budget


def test_state_dict_is_refused_by_a_study_made_otherwise() -> None:
    saved = study("cmaes", 30).state_dict()
    other = oa.Optimizer("cmaes", seed=4, budget=30, **setup("cmaes"))
    with pytest.raises(ValueError, match="seed"):
        other.load_state_dict(saved)
    with pytest.raises(ValueError, match="state_dict"):
        study("cmaes", 30).load_state_dict({"format": 99})
    pso = oa.Optimizer("pso", seed=0, budget=30, **setup("pso"))
    with pytest.raises(ValueError, match=r"a study of method 'cmaes'.*Optimizer\('cmaes'"):
        pso.load_state_dict(saved)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_candidates_told_back_as_json_lists_are_found(dtype: torch.dtype) -> None:
    """A lab or cluster sends candidates as JSON: lists of Python floats (float64) that
    torch.as_tensor would read as float32, rounding a float64 study's candidates."""
    import json

    opt = oa.Optimizer("cmaes", x0=torch.zeros(3, dtype=dtype), bounds=(-2, 2), seed=0, budget=40)
    X = opt.ask()
    back = json.loads(json.dumps(X.tolist()))
    opt.tell(back[::-1], [float(sum(r)) for r in back[::-1]])
    X = opt.ask()
    opt.tell(X.numpy().tolist()[0], [1.0])  # one candidate as a flat list
    assert opt.nfev == len(back) + 1


# -- budget and convergence ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:pso with a budget")
def test_budget_counts_candidates_in_flight() -> None:
    opt = study("pso", 10)
    A = opt.ask(4)
    B = opt.ask()  # 13 in the generation, 10 in the budget, 4 of them out already
    assert (A.shape[0], B.shape[0]) == (4, 6)
    assert opt.ask().shape[0] == 0 and not opt.done  # all out, none back
    opt.tell(B, values(B))
    opt.tell(A, values(A))
    assert opt.done and opt.result().stop_reason == StopReason.MAX_EVALS
    assert opt.result().nfev == 10
    with pytest.raises(RuntimeError, match="ended"):
        opt.ask()
    with pytest.raises(RuntimeError, match="ended"):
        opt.tell(A, values(A))


def test_a_spent_clock_hands_out_nothing_and_keeps_the_values_in_flight() -> None:
    opt = oa.Optimizer("cmaes", seed=3, budget=oa.Budget(seconds=0.2), **setup("cmaes"))
    X = opt.ask(3)
    time.sleep(0.25)
    assert opt.ask().shape[0] == 0 and not opt.done  # 3 still in flight
    opt.tell(list(X), values(X))  # a list of 1-D tensors is a batch too
    assert opt.done and opt.result().stop_reason == StopReason.MAX_SECONDS
    assert opt.result().nfev == 3


def test_target_and_convergence_end_the_study_as_they_end_the_run() -> None:
    target = oa.Budget(evals=500, target=0.05)
    ref = oa.minimize(SPHERE, method="cmaes", seed=3, budget=target, **setup("cmaes"))
    opt = oa.Optimizer("cmaes", seed=3, budget=target, **setup("cmaes"))
    while not opt.done:
        X = opt.ask()
        opt.tell(X, values(X))
    assert opt.result().stop_reason == ref.stop_reason == StopReason.TARGET_REACHED
    same_history(opt.result(), ref)
    x0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
    ref = oa.minimize(SPHERE, x0, method="cmaes", seed=1, budget=5000, max_restarts=0)
    opt = oa.Optimizer("cmaes", x0, seed=1, budget=5000, max_restarts=0)
    while not opt.done:
        X = opt.ask()
        opt.tell(X, values(X))
    assert ref.stop_reason == StopReason.CONVERGED  # the run converged within its budget
    assert opt.result().stop_reason == StopReason.CONVERGED and opt.result().success
    same_history(opt.result(), ref)


# -- bad input -------------------------------------------------------------------------------


def test_bad_input_is_refused_and_records_nothing() -> None:
    opt = study("cmaes", 30)
    X = opt.ask(3)
    with pytest.raises(ValueError, match=r"matches no candidate ask\(\) handed out"):
        opt.tell(X + 1.0, values(X))
    with pytest.raises(ValueError, match=r"matches no candidate ask\(\) handed out"):
        opt.tell(opt.ask(1).clone().fill_(9.0), [1.0])  # one not yet handed out is unknown too
    with pytest.raises(ValueError, match="shape"):
        opt.tell(X[:, :2], values(X))
    with pytest.raises(ValueError, match="3 candidates but 2 values"):
        opt.tell(X, values(X)[:2])
    with pytest.raises(TypeError, match="value 1"):
        opt.tell(X, [1.0, "bad", 2.0])
    with pytest.raises(ValueError, match="positive int"):
        opt.ask(0)
    opt.tell(X[:0], [])  # nothing told: nothing recorded
    assert opt.nfev == 0 and opt.in_flight == 4
    opt.tell(X[1], values(X[1:2]))  # one candidate as a 1-D tensor
    with pytest.raises(ValueError, match="told already"):
        opt.tell(X[1:2], values(X[1:2]))
    with pytest.raises(ValueError, match="twice"):
        opt.tell(torch.stack([X[0], X[0]]), [1.0, 2.0])
    assert opt.nfev == 1


@pytest.mark.parametrize("name", ["lbfgs", "nelder_mead", "multistart"])
def test_methods_outside_the_population_family_are_refused_naming_those_that_work(
    name: str,
) -> None:
    if name not in INFO:
        pytest.skip(f"{name} is not registered")
    with pytest.raises(ValueError, match="population methods") as err:
        oa.Optimizer(name, x0=torch.zeros(2, dtype=torch.float64))
    assert all(p in str(err.value) for p in POPULATION)


def test_capabilities_are_checked_as_minimize_checks_them() -> None:
    with pytest.raises(ValueError, match="bounds"):
        oa.Optimizer("pso", x0=torch.zeros(2, dtype=torch.float64))  # pso searches a box
    with pytest.raises(TypeError):
        oa.Optimizer("cmaes", x0=torch.zeros(2, dtype=torch.float64), no_such_option=1)


@pytest.mark.parametrize(
    "given",
    [
        {"memory": "1GB"},
        {"eval_dtype": "float32"},
        {"memory": 1 << 30, "eval_dtype": torch.float16},
    ],
)
def test_memory_and_eval_dtype_are_refused_because_the_caller_evaluates(given: dict) -> None:
    """minimize's evaluation settings mean nothing when the caller evaluates: refused, named."""
    x0 = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="with ask/tell you evaluate") as err:
        oa.Optimizer("cmaes", x0=x0, **given)
    assert all(f"{name}=" in str(err.value) for name in given)
    opt = oa.Optimizer("cmaes", x0=x0, seed=0, memory=None, eval_dtype=None)  # the defaults
    assert opt.ask().dtype == torch.float64


# -- spaces ----------------------------------------------------------------------------------

SPACE = {
    "lr": oa.Real(1e-4, 1e-1, log=True),
    "width": oa.Int(8, 256, log=True),
    "act": oa.Choice(["relu", "tanh", "gelu"]),
    "epochs": 10,
}


def trial(c: dict) -> float:
    act = {"relu": 0.0, "tanh": 0.5, "gelu": 1.0}[c["act"]]
    return (math.log10(c["lr"]) + 2.5) ** 2 + (math.log2(c["width"]) - 6) ** 2 / 10 + act


def test_space_candidates_are_configurations_and_the_run_is_minimizes() -> None:
    ref = oa.minimize(trial, space=SPACE, method="cmaes", seed=2, budget=40)
    opt = oa.Optimizer("cmaes", space=SPACE, seed=2, budget=40)
    while not opt.done:
        configs = opt.ask()
        for c in configs:
            assert type(c["lr"]) is float and 1e-4 <= c["lr"] <= 1e-1
            assert type(c["width"]) is int and 8 <= c["width"] <= 256
            assert c["act"] in ("relu", "tanh", "gelu") and c["epochs"] == 10
        back = list(reversed(configs))  # any order, as dicts (copies are matched by value)
        opt.tell([dict(c) for c in back], [trial(c) for c in back])
    res = opt.result()
    assert isinstance(res, oa.space.SpaceResult)
    assert res.config == ref.config and res.fun == ref.fun and res.nfev == ref.nfev
    assert sorted(res.history.f.tolist()) == sorted(ref.history.f.tolist())
    with pytest.raises(ValueError, match=r"matches no candidate ask\(\) handed out"):
        opt2 = oa.Optimizer("cmaes", space=SPACE, seed=2, budget=40)
        opt2.ask(2)
        opt2.tell({"lr": 0.5, "width": 8, "act": "relu", "epochs": 10}, 1.0)


def test_the_elite_is_told_as_the_mean_of_its_two_values() -> None:
    """The one loop (minimize's and ask/tell's) tells the method, for the best rows of a
    generation, the mean of their first and second values, and their first value elsewhere."""
    from dataclasses import dataclass

    from optarena.methods._registry import get_method_class

    told: list[torch.Tensor] = []

    @dataclass(frozen=True)
    class Watched(get_method_class("cmaes")):  # the real CMA-ES, its tell() observed
        def tell(self, state, X, f, ctx):
            told.append(f.clone())
            return super().tell(state, X, f, ctx)

    noise = iter(np.random.default_rng(0).normal(size=1000))
    res = oa.minimize(
        oa.Objective(lambda x: sphere(x) + 0.1 * next(noise), vectorize=False),
        torch.ones(D, dtype=torch.float64),
        Watched(popsize=6, reevaluate_elite=2),
        seed=3,
        budget=16,
    )
    f = res.history.f
    first, again = f[:6], f[6:8]
    best = np.argsort(first, kind="stable")[:2]
    expect = first.copy()
    expect[best] = (first[best] + again) / 2
    np.testing.assert_array_equal(told[0].numpy(), expect)
    np.testing.assert_array_equal(res.history.x[6:8], res.history.x[best])
