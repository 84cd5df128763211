"""Batched multi-start: counting of batched gradients, the compact L-BFGS product, starts,
racing, duplicates, refusals, and the mlp_identity results the method exists for."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from _reference import two_loop
from optarena import problems
from optarena.budget import Budget, StopReason
from optarena.core.oracle import Oracle, StopRun
from optarena.methods import RunContext
from optarena.methods.composite.multistart import MultiStart, draw_starts
from optarena.methods.gradient._quasi_newton import LimitedMemory, masked_product

F_MLP = 0.783054161501
F64 = torch.float64


def quartic(x: torch.Tensor) -> torch.Tensor:
    return ((x - 0.3) ** 4).sum() + (x**2).sum() * torch.sin(x).sum()


def oracle_for(obj: oa.Objective, budget: int = 1000, d: int = 3) -> Oracle:
    return Oracle(obj, torch.zeros(d, dtype=F64), Budget(evals=budget))


# -- Oracle.values_and_grads -----------------------------------------------------------
@pytest.mark.parametrize("kind", ["batched", "vmap", "loop"])
def test_values_and_grads_counts_each_row_once(kind: str) -> None:
    calls = {"n": 0}

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return quartic(x)

    def batched(X: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        return torch.stack([quartic(x) for x in X])

    obj = oa.Objective(fn, batched=batched if kind == "batched" else None, vectorize=kind != "loop")
    oracle = oracle_for(obj)
    X = torch.randn(5, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    f, G = oracle.values_and_grads(X)
    assert oracle.nfev == 5 and oracle.ngev == 5 and len(oracle.history) == 5
    assert calls["n"] == (5 if kind == "loop" else 1)
    for i in range(5):
        xi = X[i].clone().requires_grad_(True)
        y = quartic(xi)
        (g,) = torch.autograd.grad(y, xi)
        assert float(f[i]) == pytest.approx(float(y.detach()), rel=1e-12)
        torch.testing.assert_close(G[i], g)
    np.testing.assert_allclose(oracle.history.f, f.numpy())
    assert oracle.best_f == float(f.min())


def test_values_and_grads_is_trimmed_by_the_budget() -> None:
    oracle = oracle_for(oa.Objective(quartic), budget=3)
    with pytest.raises(StopRun) as stop:
        oracle.values_and_grads(torch.ones(5, 3, dtype=F64))
    assert stop.value.reason is StopReason.MAX_EVALS
    assert oracle.nfev == 3 and oracle.ngev == 3 and len(oracle.history) == 3


def test_values_and_grads_failure_names_the_row_and_keeps_the_rows_before() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if float(x.detach()[0]) > 2.5:
            raise ZeroDivisionError("boom")
        return quartic(x)

    oracle = oracle_for(oa.Objective(fn, vectorize=False))
    X = torch.arange(5, dtype=F64).unsqueeze(1).repeat(1, 3)
    with pytest.raises(oa.ObjectiveError) as err:
        oracle.values_and_grads(X)
    assert err.value.evaluation == 4
    assert isinstance(err.value.__cause__, ZeroDivisionError)
    assert oracle.nfev == 3 and len(oracle.history) == 3


def test_values_and_grads_uses_forward_differences_or_refuses_without_gradient() -> None:
    X = torch.tensor([[0.1, -0.4, 0.9], [1.0, 0.5, -0.2]], dtype=F64)
    oracle = oracle_for(oa.Objective(quartic, gradient="fd"))
    f, G = oracle.values_and_grads(X)
    assert oracle.nfev == 2 * 4 and oracle.ngev == 2
    torch.testing.assert_close(f, torch.tensor([float(quartic(x)) for x in X], dtype=F64))
    _, Gx = oracle_for(oa.Objective(quartic)).values_and_grads(X)
    torch.testing.assert_close(G, Gx, rtol=1e-6, atol=1e-6)
    with pytest.raises(oa.ObjectiveDefinitionError, match="no gradient"):
        oracle_for(oa.Objective(quartic, gradient="none")).values_and_grads(X)
    with pytest.raises(ValueError, match="shape"):
        oracle_for(oa.Objective(quartic)).values_and_grads(torch.ones(2, 4, dtype=F64))


def test_fd_values_and_grads_matches_the_gradient_and_counts_every_probe() -> None:
    obj = oa.Objective(quartic)
    oracle = oracle_for(obj)
    X = torch.tensor([[0.1, -0.4, 0.9], [1.0, 0.5, -0.2]], dtype=F64)
    upper = torch.tensor([2.0, 2.0, 0.9], dtype=F64)  # row 0 sits on the upper bound of x3
    f, G = oracle.fd_values_and_grads(X, None, None, upper)
    assert oracle.nfev == 2 * 4
    assert (oracle.history.x <= upper.numpy()).all()
    _, Gx = oracle_for(obj).values_and_grads(X)
    torch.testing.assert_close(G, Gx, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(f, torch.tensor([float(quartic(x)) for x in X], dtype=F64))


# -- the compact L-BFGS product -------------------------------------------------------------
def test_compact_lbfgs_product_equals_the_two_loop_recursion() -> None:
    gen = torch.Generator().manual_seed(1)
    lanes, m, d = 3, 4, 6
    A = torch.randn(d, d, dtype=F64, generator=gen)
    A = A @ A.T + torch.eye(d, dtype=F64)
    pairs = LimitedMemory(lanes, m, d, torch.zeros(1, dtype=F64))
    all_lanes = torch.arange(lanes)
    for k in range(7):  # more pairs than slots: the oldest are dropped
        s = torch.randn(lanes, d, dtype=F64, generator=gen)
        sub = all_lanes if k != 2 else all_lanes[:2]  # lanes may hold different counts
        pairs.push(sub, s[sub], (s @ A)[sub])
        g = torch.randn(lanes, d, dtype=F64, generator=gen)
        got = pairs.product(all_lanes, g, None)
        masked = masked_product(pairs.S, pairs.Y, pairs.cnt, g, torch.ones(lanes, d).bool())
        for j in range(lanes):
            c = int(pairs.cnt[j])
            want = two_loop(pairs.S[j, :c], pairs.Y[j, :c], g[j])
            torch.testing.assert_close(got[j], want, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(masked[j], want, rtol=1e-10, atol=1e-12)


# -- starts --------------------------------------------------------------------------------
def as_t(v: list[float] | None) -> torch.Tensor | None:
    return None if v is None else torch.tensor(v, dtype=F64)


def ctx(lower=None, upper=None, seed: int = 0) -> RunContext:
    return RunContext(
        x0=torch.tensor([0.5, 0.5], dtype=F64),
        lower=as_t(lower),
        upper=as_t(upper),
        constraints=(),
        seed=seed,
    )


def test_starts_fill_the_box_or_surround_x0_and_follow_the_seed() -> None:
    a = draw_starts(ctx([0, -1], [1, 3]), 50)
    assert (a[:, 0] >= 0).all() and (a[:, 0] <= 1).all() and (a[:, 1] >= -1).all()
    assert float(a[:, 1].max()) > 2  # the whole box, not a neighbourhood of x0
    torch.testing.assert_close(a, draw_starts(ctx([0, -1], [1, 3]), 50))
    assert not torch.equal(a, draw_starts(ctx([0, -1], [1, 3], seed=1), 50))
    g = draw_starts(ctx(), 2000, scale=0.1)
    torch.testing.assert_close(g.mean(0), torch.tensor([0.5, 0.5], dtype=F64), atol=0.01, rtol=0)
    assert float(g.std(0).mean()) == pytest.approx(0.1, rel=0.05)
    with pytest.raises(ValueError, match="finite bounds"):
        draw_starts(ctx(), 4, "sobol")


# -- behaviour -----------------------------------------------------------------------------
def test_duplicate_starts_stop_near_a_better_minimum() -> None:
    res = oa.minimize(
        lambda x: ((x - 1.0) ** 4).sum() + 1e-3 * ((x - 1.0) ** 2).sum(),
        torch.zeros(4, dtype=F64),
        MultiStart("bfgs", starts=12, lanes=2, scale=0.2, more_starts=False),
        seed=0,
    )
    assert res.fun < 1e-6  # gtol=1e-5 on a quartic
    assert res.info["ended"].get("duplicate", 0) >= 5
    assert res.info["starts"] == 12
    assert sum(res.info["start_evals"]) == res.nfev


def test_racing_prunes_half_of_a_cohort_at_each_rung() -> None:
    res = oa.minimize(problems.get("mlp_identity"), method=MultiStart("bfgs", 16, race=5), seed=0)
    assert res.info["ended"]["pruned"] >= 8
    assert res.history.evals_to_reach(F_MLP * (1 + 1e-6)) <= 300


def test_non_finite_starts_are_dropped_without_ending_the_run() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        f = ((x - 0.2) ** 2).sum()
        return f * torch.nan if float(x.detach()[0]) > 1.0 else f

    res = oa.minimize(
        fn, torch.zeros(2, dtype=F64), MultiStart("lbfgs", 8, scale=2.0, more_starts=False), seed=3
    )
    assert res.info["ended"].get("non_finite", 0) >= 1
    assert res.fun < 1e-12 and res.stop_reason is StopReason.CONVERGED


def test_sequential_local_methods_run_one_start_after_another() -> None:
    res = oa.minimize(
        problems.get("wavy_bowl", dtype=F64),
        method=MultiStart("slsqp", starts=6, more_starts=False),
        seed=0,
    )
    assert res.fun == pytest.approx(-0.661470591797071, abs=1e-9)
    assert res.info["starts"] == 6 and sum(res.info["start_evals"]) == res.nfev
    assert res.method == "multistart(slsqp)"


def test_gradient_free_objective_needs_fd_gradient_and_no_noise() -> None:
    calls = {"n": 0}

    def f(x: np.ndarray) -> float:
        calls["n"] += 1
        return float(((x - 0.3) ** 2).sum())

    obj = oa.Objective.from_numpy(f)
    with pytest.raises(ValueError, match="fd_gradient=True"):
        oa.minimize(obj, np.zeros(3), MultiStart("bfgs"))
    noisy = oa.Objective.from_numpy(f, noisy=True)
    with pytest.raises(ValueError, match="noisy"):
        oa.minimize(noisy, np.zeros(3), MultiStart("bfgs", fd_gradient=True))
    assert calls["n"] == 0
    res = oa.minimize(obj, np.zeros(3), MultiStart("bfgs", 4, fd_gradient=True), seed=0)
    assert res.fun < 1e-10 and res.ngev > 0


def test_bad_options_are_refused() -> None:
    for kw in ({"starts": 0}, {"race": -1}, {"sampling": "grid"}, {"dedup": -1.0}):
        with pytest.raises(ValueError):
            MultiStart(**kw)
    with pytest.raises(ValueError, match="Did you mean"):
        MultiStart("lbfgz")


def test_lbfgs_multistart_finds_the_certified_optimum_of_mlp_identity() -> None:
    mlp = problems.get("mlp_identity")
    res = oa.minimize(mlp, method=MultiStart("lbfgs", 64, more_starts=False), budget=40_000, seed=0)
    assert res.fun <= F_MLP * (1 + 1e-6)
    assert res.info["starts"] == 64 and res.stop_reason is StopReason.CONVERGED
    assert math.isfinite(res.info["start_best"])
