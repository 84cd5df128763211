"""Restoring an ask/tell study with candidates out, and what tell() and ask() say when refused.

After ``load_state_dict`` nobody holds the candidates that were out when the study was saved
(the process that evaluated them is gone): ``ask()`` hands them out again, first, and an
``ask()`` never comes back empty while nothing is out, so the README loop always ends.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import random

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.budget import StopReason
from optarena.space import Choice, Int, Real

INFO = {i.name: i for i in oa.methods()}
POPULATION = [n for n, i in INFO.items() if i.family == "population"]
D = 4


def f(x: torch.Tensor) -> float:
    return float(((x.detach().double() - 0.5) ** 2).sum())


def kw(name: str, budget: int | None) -> dict:
    out: dict = {"x0": torch.zeros(D, dtype=torch.float64), "seed": 0, "budget": budget}
    if INFO[name].supports_bounds:
        out["bounds"] = (-2.0, 2.0)
    return out


def restored(opt: oa.Optimizer, name: str, budget: int | None, **options) -> oa.Optimizer:
    """``opt`` saved, pickled and loaded into a new study, as after the process died."""
    again = oa.Optimizer(name, **kw(name, budget), **options)
    again.load_state_dict(pickle.loads(pickle.dumps(opt.state_dict())))
    return again


def finish(opt: oa.Optimizer, n: int | None = None, limit: int = 10_000) -> None:
    """The README loop, which must end; an empty ask() only while candidates are out."""
    for _ in range(limit):
        if opt.done:
            return
        X = opt.ask(n)
        assert len(X) > 0, f"ask() gave nothing with {opt.in_flight} in flight, not done"
        opt.tell(X, [f(x) for x in X])
    raise AssertionError("the study did not end")


def test_the_reported_loop_ends_after_a_restore_with_candidates_out() -> None:
    """The report: cmaes, 5 of 8 told, saved, restored; the loop spun with 3 in flight."""
    a = oa.Optimizer("cmaes", **kw("cmaes", 400))
    X = a.ask()
    a.tell(X[:5], [f(x) for x in X[:5]])
    opt = restored(a, "cmaes", 400)
    assert opt.in_flight == 0  # nothing is out after a restore
    again = opt.ask()
    assert torch.equal(again, X[5:])  # the rows that were out, first
    assert opt.in_flight == 3
    opt.tell(again, [f(x) for x in again])
    finish(opt)
    ref = oa.minimize(oa.Objective(f, vectorize=False), method="cmaes", **kw("cmaes", 400))
    res = opt.result()  # told in the order asked: minimize's run
    assert res.nfev == 400 and opt.result().stop_reason == StopReason.MAX_EVALS
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    np.testing.assert_array_equal(res.history.x, ref.history.x)


@pytest.mark.parametrize("name", POPULATION)
def test_every_method_hands_out_again_what_was_out_and_reaches_minimizes_run(name: str) -> None:
    """Saved with rows out (in the generation, then in the elite's second evaluation):
    each restore hands them out again, one at a time too, and the study is minimize's."""
    popsize = oa.Optimizer(name, **kw(name, None)).ask().shape[0]
    budget = 3 * popsize + 5  # ends inside the fourth generation
    ref = oa.minimize(
        oa.Objective(f, vectorize=False), method=name, reevaluate_elite=2, **kw(name, budget)
    )
    opt = oa.Optimizer(name, reevaluate_elite=2, **kw(name, budget))
    X = opt.ask()
    opt.tell(X[:1], [f(x) for x in X[:1]])
    opt = restored(opt, name, budget, reevaluate_elite=2)
    for x in X[1:]:  # handed out again one by one, in the order first handed out
        assert torch.equal(opt.ask(1)[0], x)
        opt.tell(x, [f(x)])
    E = opt.ask()  # the elite's second evaluation
    opt = restored(opt, name, budget, reevaluate_elite=2)
    assert opt.in_flight == 0 and torch.equal(opt.ask(), E)
    opt.tell(E, [f(x) for x in E])
    finish(opt)
    res = opt.result()
    assert res.nfev == budget
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    np.testing.assert_array_equal(res.history.x, ref.history.x)


def test_tpe_keeping_candidates_in_flight_spends_its_budget_after_a_restore() -> None:
    """The report's second case: tpe with 3 in flight stopped giving candidates at 27 of
    30 evaluations and never ended."""
    a = oa.Optimizer("tpe", **kw("tpe", 30))
    for _ in range(5):
        x = a.ask(1)
        a.tell(x, [f(x[0])])
    out = a.ask(3)
    opt = restored(a, "tpe", 30)
    A = opt.ask(2)
    assert torch.equal(A, out[:2]) and opt.in_flight == 2
    B = opt.ask(2)
    assert torch.equal(B[:1], out[2:]) and not (B[1:] == out).all(1).any()  # then a new one
    assert opt.in_flight == 4
    opt.tell(torch.cat([B, A]), [f(x) for x in torch.cat([B, A])])
    finish(opt, n=1)
    assert opt.result().nfev == 30


def test_space_candidates_out_are_handed_out_again_as_configurations() -> None:
    space = {"lr": Real(1e-4, 1e-1, log=True), "width": Int(8, 64), "act": Choice(["a", "b"])}

    def g(c: dict) -> float:
        return (np.log10(c["lr"]) + 2) ** 2 + (c["width"] - 30) ** 2 / 100 + (c["act"] == "a")

    for name in ("cmaes", "tpe"):
        a = oa.Optimizer(name, space=space, seed=1, budget=40)
        cs = a.ask(4)
        a.tell(cs[:1], [g(cs[0])])
        opt = oa.Optimizer(name, space=space, seed=1, budget=40)
        opt.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
        again = opt.ask(3)
        assert again == cs[1:] and opt.in_flight == 3
        opt.tell(again[::-1], [g(c) for c in again[::-1]])  # any order, as usual
        while not opt.done:
            cs = opt.ask()
            assert cs, f"{name}: ask() gave nothing with {opt.in_flight} in flight"
            opt.tell(cs, [g(c) for c in cs])
        assert opt.result().nfev == 40


@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize("name", ["cmaes", "pso", "tpe", "random_search"])
def test_random_asks_tells_and_restores_never_stall(name: str, noisy: bool) -> None:
    """Any interleaving of ask(n), partial tells and restores (in a noisy study's
    re-evaluations too): an empty ask() only while candidates are out, and the study spends
    its budget."""
    rnd = random.Random(7)
    budget = 80
    opt = oa.Optimizer(name, noisy=noisy, reevaluate=2 * noisy, **kw(name, budget))
    out: list[torch.Tensor] = []
    for _ in range(2_000):
        if opt.done:
            break
        move = rnd.random()
        if move < 0.1:
            # what was out is lost with the process
            opt, out = restored(opt, name, budget, noisy=noisy, reevaluate=2 * noisy), []
        elif move < 0.5 and out:
            rnd.shuffle(out)
            k = rnd.randint(1, len(out))
            told, out = out[:k], out[k:]
            opt.tell(torch.stack(told), [f(x) for x in told])
        else:
            X = opt.ask(rnd.choice([None, 1, 2, 5]))
            assert len(X) > 0 or opt.in_flight > 0
            out += list(X)
    assert opt.done and opt.result().nfev == budget
    assert ("noise" in opt.result().info) == noisy


# -- messages --------------------------------------------------------------------------------


def test_a_candidate_changed_after_ask_is_refused_saying_tell_matches_by_exact_value() -> None:
    opt = oa.Optimizer("cmaes", **kw("cmaes", 40))
    X = opt.ask()
    X32 = X.float().double()  # a float32 round trip
    with pytest.raises(ValueError, match=r"exact value.*cast to float32") as err:
        opt.tell(X32, [f(x) for x in X32])
    assert "never handed out" not in str(err.value)
    space = {"a": Real(0.0, 1.0), "b": Int(1, 5)}
    sp = oa.Optimizer("cmaes", space=space, seed=0, budget=20)
    c = sp.ask(1)[0]
    with pytest.raises(ValueError, match=r"exact value.*key added"):
        sp.tell({**c, "note": "extra"}, [1.0])
    sp.tell(c, [1.0])  # as handed out, it is taken


def test_a_restore_under_another_seed_is_refused_in_the_optimizers_words() -> None:
    saved = oa.Optimizer("cmaes", **kw("cmaes", 40)).state_dict()
    other = oa.Optimizer("cmaes", **{**kw("cmaes", 40), "seed": 5})
    with pytest.raises(ValueError, match=r"load_state_dict\(\).*seed 0 \(saved study\)") as err:
        other.load_state_dict(saved)
    assert "resume=" not in str(err.value) and "Optimizer" in str(err.value)


def test_ask_after_the_end_says_why_without_a_dangling_colon() -> None:
    opt = oa.Optimizer("cmaes", **kw("cmaes", 8))
    finish(opt)
    with pytest.raises(RuntimeError) as err:
        opt.ask()
    msg = str(err.value)
    assert not msg.rstrip().endswith(":") and "budget of 8 evaluations is spent" in msg


# -- the saved form --------------------------------------------------------------------------


@pytest.mark.parametrize("name", POPULATION)
def test_state_dict_is_plain_data_torch_load_reads_by_default(name: str) -> None:
    """torch.save, then torch.load with its default weights_only=True (it refuses classes),
    continues the study exactly: the saved form holds no optarena or numpy class."""
    ref = oa.minimize(oa.Objective(f, vectorize=False), method=name, **kw(name, 120))
    opt = oa.Optimizer(name, **kw(name, 120))
    while not opt.done:
        X = opt.ask()
        opt.tell(X[:1], [f(X[0])])
        buf = io.BytesIO()
        torch.save(opt.state_dict(), buf)
        buf.seek(0)
        saved = torch.load(buf)
        opt = oa.Optimizer(name, **kw(name, 120))
        opt.load_state_dict(saved)
        X = opt.ask()  # what was out, handed out again
        opt.tell(X, [f(x) for x in X])
    res = opt.result()
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    np.testing.assert_array_equal(res.history.x, ref.history.x)


def test_a_state_holding_a_state_of_its_own_comes_back_as_its_class() -> None:
    """catcma's focus phase keeps a CMA state inside its state (None in a fresh one): it is
    rebuilt from the class its field declares."""
    from optarena.ask_tell._plain import plain, rebuilt
    from optarena.methods.population.catcma import CatCMAState

    space = {"a": Real(-1.0, 1.0), "n": Int(0, 3), "c": Choice(["x", "y"])}
    opt = oa.Optimizer("catcma", space=space, seed=0, budget=50)
    inner = opt._run.state
    outer = rebuilt(plain(dataclasses.replace(inner, sub=inner)), inner.__class__)
    assert isinstance(outer, CatCMAState) and isinstance(outer.sub, CatCMAState)
    assert torch.equal(outer.sub.C, inner.C) and outer.sub.sub is None


def test_a_study_saved_between_a_generation_and_its_elites_second_evaluation_restores() -> None:
    """Every row told, the elite's rows not asked yet: the restore used to fail reading the
    open batch's values, which were never made."""
    opt = oa.Optimizer("cmaes", reevaluate_elite=2, **kw("cmaes", 60))
    X = opt.ask()
    opt.tell(X, [f(x) for x in X])
    again = restored(opt, "cmaes", 60, reevaluate_elite=2)
    assert torch.equal(again.ask(), opt.ask())  # the elite, as the study saved would give it
