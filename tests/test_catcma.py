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
from optarena.methods.population._catcma_update import orthogonal_normal
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

    # float64: in float32 the values near a local minimum tie at one ulp, and when the single
    # run ends is then a random walk of the step size over ranks that are ties
    x0, bounds = torch.full((4,), 3.0, dtype=torch.float64), [(-5.12, 5.12)] * 4
    one = oa.minimize(rastrigin, x0, CatCMA(max_restarts=0), bounds=bounds, budget=6000, seed=seed)
    assert one.nfev < 6000 and one.stop_reason.name == "CONVERGED"  # a single run ends
    res = oa.minimize(rastrigin, x0, "catcma", bounds=bounds, budget=6000, seed=seed)
    assert res.nfev == 6000  # IPOP restarts until the budget is spent
    assert res.fun <= one.fun and res.fun < 2.5


def _whitened(state: Any, V: np.ndarray) -> np.ndarray:
    """The draws ``V`` of ``N(m, sigma^2 A C A)`` mapped back to the ``N(0, I)`` they came from."""
    D2, B = np.linalg.eigh(state.C.numpy())
    A, m = state.A.numpy(), state.mean.numpy()
    return ((V - m) / (state.sigma * A)) @ B / np.sqrt(D2)


def test_a_generation_draws_mutually_orthogonal_directions() -> None:
    # orthogonal sampling: the whitened draws of a generation, in blocks of n, are orthogonal,
    # so no direction is left unexplored by chance (independent draws are never orthogonal)
    enc = MIXED.encoding
    ctx = RunContext(
        torch.tensor(enc.centre), torch.tensor(enc.lower), torch.tensor(enc.upper), (), 3
    )
    ctx.space = enc
    method = CatCMA()
    state = method.init(ctx.x0, ctx)
    for _ in range(6):
        X = method.ask(state, ctx)  # the Gaussian it drew from changes only in tell
        Z = _whitened(state, state.V.numpy())
        n = Z.shape[1]
        assert Z.shape[0] > n  # two blocks: n draws, then the rest
        for block in (Z[:n], Z[n:]):
            gram = block @ block.T
            off = gram - np.diag(np.diag(gram))
            assert np.abs(off).max() < 1e-9 * np.diag(gram).max()
        state = method.tell(state, X, torch.rand(X.shape[0], generator=ctx.generator), ctx)


@pytest.mark.parametrize(("rows", "n"), [(40000, 3), (40000, 1), (7, 5)])
def test_orthogonal_draws_are_exactly_standard_normal_each(rows: int, n: int) -> None:
    # each draw is a uniform direction times a chi(n) length, i.e. N(0, I): the rank-mu
    # update and the margin's probabilities see the distribution they assume
    rng = np.random.default_rng(0)
    Z = np.vstack([orthogonal_normal(rng, rows, n) for _ in range(max(1, 40000 // rows))])
    assert Z.shape[1] == n
    np.testing.assert_allclose(Z.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(np.cov(Z.T).reshape(n, n), np.eye(n), atol=0.04)
    inside = np.mean(np.abs(Z) < 1.0)  # N(0, 1): 0.6827 of the mass within one sd
    assert abs(inside - 0.6827) < 0.01


def test_the_step_size_path_is_unbiased_under_random_selection() -> None:
    # with values that ignore the draws, the step-size path must be ~N(0, I): E|ps|^2 = n, as
    # with independent draws (a design whose weighted sums shrink would shrink sigma here)
    n = 8
    bounds = torch.full((n,), 1e3)
    sq = []
    for seed in range(12):
        ctx = RunContext(torch.zeros(n, dtype=torch.float64), -bounds, bounds, (), seed)
        method = CatCMA(max_restarts=0)
        state = method.init(ctx.x0, ctx)
        for g in range(40):
            X = method.ask(state, ctx)
            state = method.tell(state, X, torch.rand(X.shape[0], generator=ctx.generator), ctx)
            if g >= 10:
                sq.append(float(state.ps.square().sum()) / n)
    assert 0.88 < np.mean(sq) < 1.12, np.mean(sq)
