"""CatCMA with margin: integers that keep exploring, categoricals that are learned, restarts,
determinism and rank invariance, on spaces and on a plain box."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import optarena as oa
from _space_cases import mixed, picked
from optarena.methods._base import RunContext
from optarena.methods.population._mixed import variables
from optarena.methods.population.catcma import CatCMA
from optarena.space import Choice, Int, Real, Space

Z_STAR = (7, -13, 2, 19)


def int_only(config: dict[str, Any]) -> float:
    return float(sum((config[f"z{i}"] - z) ** 2 for i, z in enumerate(Z_STAR)))


INT_SPACE = Space({f"z{i}": Int(-20, 20) for i in range(4)})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_integers_never_stall_the_optimum_is_reached(seed: int) -> None:
    # without the margin a Gaussian whose spread falls inside one integer's cell stops moving;
    # with it every integer keeps a probability >= alpha of leaving its value
    res = oa.minimize(int_only, space=INT_SPACE, method="catcma", budget=400, seed=seed)
    assert res.fun == 0.0
    assert res.config == {f"z{i}": z for i, z in enumerate(Z_STAR)}


def test_an_integer_far_from_the_start_is_reached_on_a_log_scale() -> None:
    space = Space({"n": Int(1, 1000, log=True), "x": Real(-1.0, 1.0)})

    def f(c: dict[str, Any]) -> float:
        return abs(c["n"] - 731) + c["x"] ** 2

    res = oa.minimize(f, space=space, method="catcma", budget=600, seed=0)
    assert res.config["n"] == 731


def test_categoricals_are_learned_better_than_random_search() -> None:
    ours = [picked("catcma", s, 200) for s in range(3)]
    rand = [picked("random_search", s, 200) for s in range(3)]
    assert np.median(ours) > 0.5, ours  # random picks it 1 time in 8
    assert min(ours) > max(rand), (ours, rand)


MIXED = Space(
    {
        **{f"x{i}": Real(-2.0, 2.0) for i in range(3)},
        "z": Int(-10, 10),
        "c": Choice(["a", "b", "c"]),
        "lr": Real(1e-4, 1e-1, log=True),
    }
)


def test_same_seed_same_run_and_offsets_change_nothing() -> None:
    a = oa.minimize(mixed, space=MIXED, method="catcma", budget=300, seed=5)
    b = oa.minimize(mixed, space=MIXED, method="catcma", budget=300, seed=5)
    c = oa.minimize(lambda cf: mixed(cf) + 1e3, space=MIXED, method="catcma", budget=300, seed=5)
    assert a.configs() == b.configs() == c.configs()
    assert np.array_equal(a.history.f, b.history.f)
    assert a.config["c"] == "b" and a.config["z"] == 4


def test_candidates_are_box_encodings_of_their_draws() -> None:
    # every integer sits at its value's coordinate, every choice is an exact one-hot point
    seen: list[torch.Tensor] = []
    enc = MIXED.encoding
    lo, hi = torch.tensor(enc.lower), torch.tensor(enc.upper)
    ctx = RunContext(torch.tensor(enc.centre), lo, hi, (), 0)
    ctx.space = enc
    method = CatCMA()
    state = method.init(ctx.x0, ctx)
    for _ in range(5):
        X = method.ask(state, ctx)
        seen.append(X)
        state = method.tell(state, X, torch.rand(X.shape[0], generator=ctx.generator), ctx)
    vs = variables(ctx, "catcma")
    for X in seen:
        Xn = X.double().numpy()
        assert np.all(Xn >= enc.lower) and np.all(Xn <= enc.upper)
        for v in vs:
            block = Xn[:, v.start : v.start + v.size]
            if v.kind == "int":
                assert np.array_equal(block[:, 0], np.round(block[:, 0]))
            if v.kind == "cat":
                assert np.all(np.sort(block, axis=1)[:, :-1] == 0) and np.all(block.max(1) == 1)


@pytest.mark.parametrize("seed", [0, 1])
def test_a_plain_box_is_cma_es_and_restarts_spend_the_budget(seed: int) -> None:
    def rastrigin(x: torch.Tensor) -> torch.Tensor:
        return 10 * x.numel() + (x**2 - 10 * torch.cos(2 * torch.pi * x)).sum()

    x0, bounds = torch.full((4,), 3.0), [(-5.12, 5.12)] * 4
    one = oa.minimize(rastrigin, x0, CatCMA(max_restarts=0), bounds=bounds, budget=6000, seed=seed)
    assert one.nfev < 6000 and one.stop_reason.name == "CONVERGED"  # a single run ends
    res = oa.minimize(rastrigin, x0, "catcma", bounds=bounds, budget=6000, seed=seed)
    assert res.nfev == 6000  # IPOP restarts until the budget is spent
    assert res.fun <= one.fun and res.fun < 2.5
