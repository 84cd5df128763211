"""TPE: Optuna's split and Parzen estimators on spaces and boxes; categoricals learned,
conditional parameters fitted where active, batches, determinism and rank invariance; and the
space layout the space-aware methods read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import optarena as oa
from _space_cases import mixed, picked
from optarena.methods.population._parzen import Parzen, age_weights
from optarena.methods.population.tpe import TPE
from optarena.space import Choice, Int, Real, Space


def test_the_layout_names_every_block_with_its_kind_and_parent() -> None:
    space = Space(
        {
            "lr": Real(1e-4, 1e-1, log=True),
            "width": Int(8, 256, log=True),
            "size": Choice([16, 32, 64], ordered=True),
            "opt": Choice({"adam": {"beta1": Real(0.8, 0.99)}, "sgd": {"m": Int(0, 3)}}),
            "epochs": 10,
        }
    )
    enc = space.encoding
    blocks = {b.name: b for b in enc.layout()}
    assert list(blocks) == ["lr", "width", "size", "opt", "beta1", "m"]  # fixed: no block
    assert blocks["lr"].kind == "real" and blocks["lr"].log and blocks["lr"].lo == 1e-4
    assert blocks["width"].kind == "int" and blocks["width"].hi == 256
    assert blocks["size"].kind == "choice" and blocks["size"].ordered and blocks["size"].size == 1
    assert blocks["opt"].size == 2 and blocks["opt"].options == ("adam", "sgd")
    assert blocks["beta1"].parent == ("opt", 0) and blocks["m"].parent == ("opt", 1)
    assert sum(b.size for b in blocks.values()) == enc.dim
    for b in blocks.values():  # the blocks' boxes are the encoding's
        assert b.lower == tuple(enc.lower[b.start : b.start + b.size])
        assert b.upper == tuple(enc.upper[b.start : b.start + b.size])


def test_categoricals_are_learned_better_than_random_search() -> None:
    ours = [picked("tpe", s, 80) for s in range(3)]
    rand = [picked("random_search", s, 80) for s in range(3)]
    assert np.median(ours) > 0.35, ours  # random picks it 1 time in 8
    assert min(ours) > max(rand), (ours, rand)


COND = Space(
    {
        "kind": Choice({"lin": {"a": Real(-5.0, 5.0)}, "quad": {"b": Int(-20, 20)}}),
        "x": Real(-1.0, 1.0),
    }
)


def cond_f(c: dict[str, Any]) -> float:
    if c["kind"] == "lin":
        return 5.0 + abs(c["a"] - 2.0) + c["x"] ** 2
    return abs(c["b"] - 13) / 10 + c["x"] ** 2


def test_conditional_parameters_are_fitted_where_active() -> None:
    # the branch's integer is modelled only from trials that took the branch, so it is found
    # among uniform draws of the inactive coordinate too
    wins = 0
    for seed in range(3):
        seen: list[dict[str, Any]] = []

        def f(c: dict[str, Any], seen: list[dict[str, Any]] = seen) -> float:
            seen.append(c)
            return cond_f(c)

        res = oa.minimize(f, space=COND, method="tpe", budget=120, seed=seed)
        for c in seen:
            assert ("a" in c) == (c["kind"] == "lin") and ("b" in c) == (c["kind"] == "quad")
        wins += res.config["kind"] == "quad" and res.config["b"] == 13
        rnd = oa.minimize(cond_f, space=COND, method="random_search", budget=120, seed=seed)
        assert res.fun < rnd.fun
    assert wins >= 2


MIXED = Space(
    {
        **{f"x{i}": Real(-2.0, 2.0) for i in range(3)},
        "z": Int(-10, 10),
        "c": Choice(["a", "b", "c"]),
    }
)


@pytest.mark.parametrize("method", [TPE(), TPE(multivariate=False), TPE(popsize=4)])
def test_same_seed_same_run_and_offsets_change_nothing(method: TPE) -> None:
    a = oa.minimize(mixed, space=MIXED, method=method, budget=60, seed=3)
    b = oa.minimize(mixed, space=MIXED, method=method, budget=60, seed=3)
    c = oa.minimize(lambda cf: mixed(cf) + 1e3, space=MIXED, method=method, budget=60, seed=3)
    assert a.configs() == b.configs() == c.configs()
    assert a.fun < 4.0  # the model found the integer (and the reals near their optimum)


def test_a_batch_is_spread_by_pending_liars() -> None:
    # with the proposals of a generation told as pending (worst) trials, a batch does not
    # repeat one configuration
    res = oa.minimize(mixed, space=MIXED, method=TPE(popsize=8), budget=80, seed=0)
    configs = res.configs()
    for g in range(2, 10):  # generations after the 10 uniform trials
        batch = [tuple(sorted(c.items())) for c in configs[g * 8 : g * 8 + 8]]
        assert len(set(batch)) == len(batch)


def test_the_parzen_mixture_integrates_to_one_over_an_int_and_a_choice() -> None:
    space = Space({"z": Int(0, 6), "c": Choice(["a", "b", "c"])})
    from optarena.methods._base import RunContext
    from optarena.methods.population._mixed import variables

    enc = space.encoding
    ctx = RunContext(
        torch.tensor(enc.centre), torch.tensor(enc.lower), torch.tensor(enc.upper), (), 0
    )
    ctx.space = enc
    vs = list(variables(ctx, "tpe"))
    X = np.array([enc.encode({"z": z, "c": c}) for z, c in [(1, "a"), (5, "c"), (2, "a")]])
    for obs in (X, X[:0]):  # with observations, and the prior alone
        p = Parzen(obs, vs, 1.0)
        Y = np.array([[z, k] for z in range(7) for k in range(3)], dtype=float)
        assert np.exp(p.log_pdf(Y)).sum() == pytest.approx(1.0, abs=1e-9)
        draws = p.sample(np.random.default_rng(0), 500)
        assert set(draws[:, 0]) <= set(range(7)) and set(draws[:, 1]) <= {0, 1, 2}


def test_age_weights_follow_optuna() -> None:
    assert np.array_equal(age_weights(10), np.ones(10))
    w = age_weights(40)
    assert w.shape == (40,) and np.all(w[-25:] == 1) and w[0] == pytest.approx(1 / 40)
    assert np.all(np.diff(w) >= 0)


def test_on_a_box_every_coordinate_is_real() -> None:
    def sphere(x: torch.Tensor) -> torch.Tensor:
        return ((x - 0.3) ** 2).sum()

    res = oa.minimize(sphere, torch.zeros(3), "tpe", bounds=[(-2, 2)] * 3, budget=200, seed=0)
    rnd = oa.minimize(
        sphere, torch.zeros(3), "random_search", bounds=[(-2, 2)] * 3, budget=200, seed=0
    )
    assert res.fun < rnd.fun / 3 and res.nfev == 200
