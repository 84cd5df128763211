"""Ask/tell beyond one generation: ``ask(n)`` for a method that proposes beside candidates in
flight (tpe), and a space's configurations told before answered from their values."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.budget import StopReason
from optarena.methods import RunContext
from optarena.methods.population.random_search import RandomSearch
from optarena.methods.population.tpe import TPE
from optarena.space import Choice, Int, Real

D = 3


def sphere(x: torch.Tensor) -> float:
    return float(((x.detach().double() - 0.3) ** 2).sum())


def box_study(**kw) -> oa.Optimizer:
    x0 = torch.zeros(D, dtype=torch.float64)
    return oa.Optimizer("tpe", x0=x0, bounds=(-2.0, 2.0), seed=4, **kw)


def test_tpe_gives_the_candidates_asked_for_as_a_generation_of_that_size() -> None:
    """ask(5) on tpe (a generation of 1) gives 5 candidates: told 5 at a time, the study is
    minimize's with popsize=5 (pending candidates are liars as within a generation)."""
    opt = box_study(budget=37)
    while not opt.done:
        X = opt.ask(5)
        assert X.shape[0] == min(5, 37 - opt.nfev)
        opt.tell(X, [sphere(x) for x in X])
    ref = oa.minimize(
        oa.Objective(sphere, vectorize=False),
        torch.zeros(D, dtype=torch.float64),
        method="tpe",
        bounds=(-2.0, 2.0),
        seed=4,
        budget=37,
        popsize=5,
    )
    res = opt.result()
    np.testing.assert_array_equal(res.history.x, ref.history.x)
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    assert res.nfev == ref.nfev == 37


def test_tpe_with_k_in_flight_never_waits_and_learns_each_value_at_once() -> None:
    """Asynchronous use: three candidates always out, one told and one asked at a time."""
    opt = box_study(budget=40)
    flight = list(opt.ask(3))
    assert len(flight) == 3
    seen: list[torch.Tensor] = list(flight)
    while flight:
        x = flight.pop(0)
        opt.tell(x, [sphere(x)])
        if not opt.done and opt.nfev + len(flight) < 40:
            (y,) = opt.ask(1)  # never empty: tpe proposes beside those in flight
            flight.append(y)
            seen.append(y)
    res = opt.result()
    assert res.nfev == 40 and len(seen) == 40 and opt.done
    assert len({tuple(x.tolist()) for x in seen}) == 40
    assert opt.generation == 40  # each value reached the model when it was told
    assert res.fun < 0.5  # the model was used: far below a uniform draw's typical value


def test_other_methods_still_give_at_most_their_generation() -> None:
    opt = oa.Optimizer("cmaes", x0=torch.zeros(D, dtype=torch.float64), seed=0, popsize=6)
    assert opt.ask(10).shape[0] == 6
    assert opt.ask(1).shape[0] == 0  # all out, none back


def test_sequential_tpe_is_minimizes_run() -> None:
    """With one candidate at a time, the default tpe study is minimize's run."""
    opt = box_study(budget=25)
    while not opt.done:
        X = opt.ask(1)
        opt.tell(X, [sphere(X[0])])
    ref = oa.minimize(
        oa.Objective(sphere, vectorize=False),
        torch.zeros(D, dtype=torch.float64),
        method="tpe",
        bounds=(-2.0, 2.0),
        seed=4,
        budget=25,
    )
    np.testing.assert_array_equal(opt.result().history.x, ref.history.x)


# -- a space: configurations told before ---------------------------------------------------
SMALL = {"a": Choice(["x", "y", "z"]), "b": Int(0, 3), "c": Real(0.0, 1.0)}
TINY = {"a": Choice(["x", "y", "z"]), "b": Int(0, 3)}


def value(c: dict) -> float:
    return float(c["b"] + {"x": 2, "y": 0, "z": 1}[c["a"]] + (c.get("c", 0.5) - 0.5) ** 2)


def test_a_configuration_told_is_not_handed_out_again_and_is_counted_as_minimize_counts() -> None:
    """On a space of 12 configurations, tpe re-proposes many: ask hands out each at most once
    (one at a time, nothing else in flight); the History, nfev and cache_hits are those of
    minimize(space=), whose objective is called exactly for the configurations handed out."""
    calls: list[dict] = []

    def f(c: dict) -> float:
        calls.append(c)
        return value(c)

    ref = oa.minimize(f, space=TINY, method="tpe", seed=1, budget=40)
    ref_calls, calls[:] = list(calls), []
    opt = oa.Optimizer("tpe", space=TINY, seed=1, budget=40)
    handed: list[dict] = []
    while not opt.done:
        got = opt.ask(1)  # empty when repeats spent the rest of the budget
        if not got:
            assert opt.done and opt.stop_reason == StopReason.MAX_EVALS
            break
        (c,) = got
        assert c not in handed
        handed.append(c)
        opt.tell(c, f(c))
    res = opt.result()
    assert handed == ref_calls and res.cache_hits == ref.cache_hits > 0
    assert res.nfev == ref.nfev == 40
    np.testing.assert_array_equal(res.history.x, ref.history.x)
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    assert res.info["space"] == {"calls": len(handed), "cache_hits": res.cache_hits}
    assert f"{res.cache_hits} of 40 candidates repeated" in res.message


def test_repeats_count_against_the_budget_and_an_exhausted_space_ends_the_study() -> None:
    """random_search on 2 configurations: its first batch is handed out (copies in flight
    included), then every draw is a repeat: answered, counted, and after 1,000 in a row
    the study ends; with a budget, the repeats spend it."""
    space = {"a": Choice([1, 2])}
    opt = oa.Optimizer("random_search", space=space, seed=0, batch_size=50)
    first = opt.ask()
    assert len(first) == 50
    opt.tell(first, [float(c["a"]) for c in first])
    assert opt.ask() == [] and opt.done and opt.stop_reason == StopReason.CONVERGED
    res = opt.result()
    assert res.nfev == 1050 and res.cache_hits == 1000 and "exhausted" in res.message
    opt = oa.Optimizer("random_search", space=space, seed=0, batch_size=50, budget=70)
    opt.tell(first := opt.ask(), [float(c["a"]) for c in first])
    assert opt.ask() == [] and opt.done and opt.stop_reason == StopReason.MAX_EVALS
    assert opt.result().nfev == 70 and opt.result().cache_hits == 20


def test_failures_are_not_reused() -> None:
    space = {"a": Choice([1, 2])}
    opt = oa.Optimizer("random_search", space=space, seed=0, batch_size=10)
    first = opt.ask()
    opt.tell(first, [RuntimeError("out of memory")] * len(first))
    again = opt.ask()
    assert len(again) == 10 and opt.cache_hits == 0


@pytest.mark.parametrize("method", ["tpe", "cmaes"])
def test_the_cache_survives_a_save_and_restore(method: str) -> None:
    def run(save_at: int | None) -> oa.Result:
        opt = oa.Optimizer(method, space=SMALL, seed=2, budget=45)
        k = 0
        while not opt.done:
            cs = opt.ask(2)
            opt.tell(cs, [value(c) for c in cs])
            k += 1
            if k == save_at:
                saved = opt.state_dict()
                opt = oa.Optimizer(method, space=SMALL, seed=2, budget=45)
                opt.load_state_dict(saved)
        return opt.result()

    a, b = run(None), run(8)
    assert a.cache_hits == b.cache_hits
    np.testing.assert_array_equal(a.history.x, b.history.x)
    np.testing.assert_array_equal(a.history.f, b.history.f)


def test_a_noisy_study_hands_repeats_out() -> None:
    """A repeat of a noisy value is a new sample: nothing is answered from the cache."""
    space = {"a": Choice([1, 2])}
    opt = oa.Optimizer("random_search", space=space, seed=0, batch_size=10, noisy=True)
    while opt.nfev < 40:
        cs = opt.ask()
        opt.tell(cs, [float(c["a"]) for c in cs])
    assert opt.cache_hits == 0


@dataclass(frozen=True)
class AnyCount(RandomSearch):
    """Random search that hands out any number of draws: its draws ignore pending rows."""

    def ask_more(self, state, ctx: RunContext, pending: torch.Tensor, k: int) -> torch.Tensor:
        u = torch.rand((k, ctx.x0.numel()), generator=ctx.generator, dtype=ctx.x0.dtype)
        return ctx.lower + u * (ctx.upper - ctx.lower)


def test_ask_more_is_a_declared_optional_capability_the_optimizer_reads() -> None:
    assert TPE.has_ask_more() and AnyCount.has_ask_more() and not RandomSearch.has_ask_more()
    with pytest.raises(NotImplementedError, match="random_search proposes whole generations"):
        RandomSearch().ask_more(None, None, torch.empty(0, D), 1)  # type: ignore[arg-type]
    x0 = torch.zeros(D, dtype=torch.float64)
    given = {"x0": x0, "bounds": (-2.0, 2.0), "seed": 0, "budget": 12}
    assert oa.Optimizer(RandomSearch(batch_size=2), **given).ask(5).shape[0] == 2
    opt = oa.Optimizer(AnyCount(batch_size=2), **given)
    X = opt.ask(5)  # beyond its generation of 2: the rest from ask_more
    assert X.shape[0] == 5 and torch.equal(X[0], x0)
    opt.tell(X[3], [sphere(X[3])])  # told alone, at once
    assert opt.generation == 1 and opt.in_flight == 4
