"""catcma's focus phase: once the discrete mode stands still, its single moves are probed at
fixed reals and CMA-ES runs on the reals alone; the mixed search resumes after it."""

from __future__ import annotations

import io
import statistics
from typing import Any

import numpy as np
import pytest
import torch

import optarena as oa
from _space_cases import mixed
from optarena.methods._base import RunContext
from optarena.methods.population._catcma_focus import enter, leave, neighbours, take
from optarena.methods.population.catcma import CatCMA
from optarena.problems import space_problem
from optarena.space import Choice, Int, Real, Space

SPACE = Space(
    {
        **{f"x{i}": Real(-2.0, 2.0) for i in range(3)},
        "z": Int(-10, 10),
        "c": Choice(["a", "b", "c"]),
        "lr": Real(1e-4, 1e-1, log=True),
    }
)


def _setup(space: Space) -> tuple[CatCMA, Any, RunContext, list, list]:
    enc = space.encoding
    ctx = RunContext(
        torch.tensor(enc.centre), torch.tensor(enc.lower), torch.tensor(enc.upper), (), 0
    )
    ctx.space = enc
    method = CatCMA()
    gauss, cats = method._vars(ctx)
    return method, method.init(ctx.x0, ctx), ctx, gauss, cats


def test_neighbours_are_every_single_discrete_move_inside_the_ranges() -> None:
    space = Space({"x": Real(0.0, 1.0), "z": Int(0, 5), "c": Choice(["a", "b", "c", "d"])})
    _m, _st, _ctx, gauss, cats = _setup(space)
    enc = space.encoding
    at_edge = enc.encode({"x": 0.25, "z": 0, "c": "b"})
    rows = [enc.decode(r) for r in neighbours(at_edge, gauss, cats)]
    # z = 0 has one neighbour (1), c has three other options; x never moves
    assert sorted((r["z"], r["c"]) for r in rows) == [(0, "a"), (0, "c"), (0, "d"), (1, "b")]
    assert all(r["x"] == 0.25 for r in rows)
    inside = [
        enc.decode(r) for r in neighbours(enc.encode({"x": 0.5, "z": 3, "c": "a"}), gauss, cats)
    ]
    assert sorted(r["z"] for r in inside if r["c"] == "a") == [2, 4]


def test_take_moves_the_mixed_search_to_the_probed_mode() -> None:
    _m, st, _ctx, gauss, cats = _setup(SPACE)
    q0 = st.q.numpy()[0].copy()
    q0[:] = [0.1, 0.7, 0.2]
    st.q = torch.from_numpy(q0[None].copy())
    target = SPACE.encoding.encode({"x0": 0, "x1": 0, "x2": 0, "z": 6, "c": "c", "lr": 1e-3})
    take(st, gauss, cats, target)
    z = next(j for j, v in enumerate(gauss) if v.kind == "int")
    assert gauss[z].index(st.mean.numpy()[z]) == 6 + 10  # cell of 6 in [-10, 10]
    np.testing.assert_array_equal(st.q.numpy()[0], [0.1, 0.2, 0.7])  # b and c swapped


def test_leaving_the_focus_phase_hands_the_reals_gaussian_back() -> None:
    method, st, _ctx, gauss, _cats = _setup(SPACE)
    reals = [v for v in gauss if v.kind == "real"]
    r = np.array([j for j, v in enumerate(gauss) if v.kind == "real"])
    rng = np.random.default_rng(0)
    M = rng.standard_normal((len(gauss), len(gauss)))
    st.C = torch.from_numpy(M @ M.T + np.eye(len(gauss)))
    st.sigma = 0.7
    sub = method._fresh(6, np.zeros(len(reals)), reals, [], 0)
    enter(st, gauss, sub)
    # the focus phase starts from the mixed search's marginal Gaussian of the reals
    np.testing.assert_allclose(sub.C.numpy(), st.C.numpy()[np.ix_(r, r)])
    assert sub.sigma == st.sigma
    sub.mean = torch.full((len(reals),), 0.3, dtype=torch.float64)
    sub.sigma, sub.C = 0.01, torch.eye(len(reals), dtype=torch.float64) * 4.0
    leave(st, gauss)
    assert st.sub is None and st.calm == 0
    np.testing.assert_allclose(st.mean.numpy()[r], 0.3)
    cov = st.sigma**2 * st.C.numpy()
    np.testing.assert_allclose(cov[np.ix_(r, r)], 0.01**2 * 4.0 * np.eye(len(reals)))
    others = np.setdiff1d(np.arange(len(gauss)), r)
    assert np.all(cov[np.ix_(r, others)] == 0)  # the reals start afresh, uncorrelated


def _phases(space: Space, fn: Any, budget: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """Each generation of a catcma run: its phase (mixed, probe or focus) and candidates."""
    seen: list[tuple[str, np.ndarray]] = []

    class Watched(CatCMA):
        def tell(self, state, X, f, ctx):  # type: ignore[no-untyped-def]
            phase = "probe" if state.probe is not None else "focus" if state.sub else "mixed"
            seen.append((phase, X.double().numpy().copy()))
            return super().tell(state, X, f, ctx)

    oa.minimize(fn, space=space, method=Watched(), budget=budget, seed=seed)
    return seen


def _f(c: dict[str, Any]) -> float:
    return mixed({k: c[k] for k in ("x0", "x1", "x2", "z", "c")}) + (c["lr"] - 0.01) ** 2


def test_focus_candidates_hold_the_mode_and_draw_only_the_reals() -> None:
    gens = _phases(SPACE, _f, 600, 1)
    enc = SPACE.encoding
    discrete = [b.start + i for b in enc.layout() if b.kind != "real" for i in range(b.size)]
    real = [b.start for b in enc.layout() if b.kind == "real"]
    focus = [X for phase, X in gens if phase == "focus"]
    assert focus and any(phase == "probe" for phase, _ in gens)
    for X in focus:
        assert np.all(X[:, discrete] == X[:1, discrete])  # the mode, held
        assert np.all(np.ptp(X[:, real], axis=0) > 0)  # every real drawn
        assert np.all(enc.lower <= X) and np.all(enc.upper >= X)
    first = next(i for i, (phase, _) in enumerate(gens) if phase == "probe")
    X = gens[first][1]  # the mode itself, then its single moves at the same reals
    assert np.all(X[:, real] == X[:1, real])
    assert np.all(np.isin(np.sum(X[1:, discrete] != X[:1, discrete], axis=1), (1, 2)))


@pytest.mark.parametrize("seed", [2, 11])
def test_a_level_worth_less_than_the_reals_spread_is_found(seed: int) -> None:
    # on these seeds the mixed search alone settles a choice on its second-best level (offset 1
    # where the reals still spread by more) and ends 1,000 evaluations there; the probe at the
    # mean's reals sees the level's difference exactly
    p = space_problem("mixed_categorical")
    plain = oa.minimize(p, space=p.space, method=CatCMA(focus=None), budget=1000, seed=seed)
    res = oa.minimize(p, space=p.space, method="catcma", budget=1000, seed=seed)
    assert not p.solved(plain.config)
    assert p.solved(res.config) and res.fun < 1  # a discrete mistake costs 1 or more


def test_the_reals_converge_faster_once_the_integers_settle() -> None:
    # the same runs with and without the focus phase: an order of magnitude apart at 1,000
    p = space_problem("mixed_integer")
    on = [oa.minimize(p, space=p.space, method="catcma", budget=1000, seed=s).fun for s in range(5)]
    off = [
        oa.minimize(p, space=p.space, method=CatCMA(focus=None), budget=1000, seed=s).fun
        for s in range(5)
    ]
    assert statistics.median(on) < statistics.median(off) / 10, (on, off)


def test_saved_and_restored_through_every_phase_the_run_is_the_same() -> None:
    f = _f
    ref = oa.minimize(f, space=SPACE, method="catcma", budget=400, seed=2)
    opt = oa.Optimizer("catcma", space=SPACE, budget=400, seed=2)
    while not opt.done:
        configs = opt.ask()
        opt.tell(configs, [f(c) for c in configs])
        buf = io.BytesIO()
        torch.save(opt.state_dict(), buf)
        buf.seek(0)
        opt = oa.Optimizer("catcma", space=SPACE, budget=400, seed=2)
        opt.load_state_dict(torch.load(buf, weights_only=False))
    res = opt.result()
    np.testing.assert_array_equal(res.history.f, ref.history.f)
    np.testing.assert_array_equal(res.history.x, ref.history.x)
    assert {"probe", "focus"} <= {phase for phase, _ in _phases(SPACE, f, 400, 2)}
