"""CMA-ES's per-generation work at large d, where C is sampled through its Cholesky factor:
which d x d operations a generation runs (read with torch's profiler), and that the cheaper
products give what the plain ones give."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

import optarena as oa
from optarena.methods import RunContext
from optarena.methods.population._cma import (
    CHOLESKY_DIM,
    TPA_DIM,
    TRI_BLOCK,
    CMAState,
    decompose,
    sample,
    whiten,
)
from optarena.methods.population.cmaes import CMAES


def sphere(X: torch.Tensor) -> torch.Tensor:
    """A cheap batched objective."""
    return (X * X).sum(dim=1)


def ops_of(fn: Callable[[], object]) -> dict[str, int]:
    """How many times each aten operator ran inside ``fn()``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.key: e.count for e in prof.key_averages()}


def started(d: int, generations: int, seed: int = 0) -> tuple[CMAES, CMAState, RunContext]:
    """A CMA-ES state on the sphere in dimension ``d`` after ``generations`` generations."""
    method = CMAES(sigma0=0.5)
    x0 = torch.linspace(-1, 1, d, dtype=torch.float64)
    ctx = RunContext(x0=x0, lower=None, upper=None, constraints=(), seed=seed)
    state = method.init(x0.clone(), ctx)
    with torch.no_grad():
        for _ in range(generations):
            X = method.ask(state, ctx)
            state = method.tell(state, X, sphere(X), ctx)
    return method, state, ctx


def test_cholesky_runs_start_without_a_matrix_of_eigenvectors() -> None:
    _, s, _ = started(CHOLESKY_DIM, 0)
    assert s.B is None and s.D is None  # the diagonal start is its own Cholesky factor
    torch.testing.assert_close(s.BD @ s.BD.T, s.C)
    _, s, _ = started(CHOLESKY_DIM - 1, 0)  # below: B diag(D) as in the tutorial
    assert s.B is not None and torch.equal(s.B, torch.eye(CHOLESKY_DIM - 1, dtype=torch.float64))


def test_covariance_update_is_one_product_on_the_cholesky_path() -> None:
    method, s, ctx = started(CHOLESKY_DIM + 30, 3)
    X = method.ask(s, ctx)
    f = sphere(X)
    ops = ops_of(lambda: method.tell(s, X, f, ctx))
    assert ops.get("aten::addmm_", 0) == 1  # rank-one and rank-mu parts together
    assert "aten::addr_" not in ops


def test_cholesky_factor_is_computed_without_a_symmetrizing_pass() -> None:
    _, s, _ = started(CHOLESKY_DIM + 30, 4)
    C = s.C.clone()
    ops = ops_of(lambda: decompose(s))
    assert "aten::linalg_cholesky_ex" in ops
    assert not {"aten::add", "aten::mul_", "aten::linalg_eigh"} & set(ops)  # no d x d pass
    assert s.B is None and torch.equal(s.BD, torch.tril(s.BD))
    C = torch.tril(C) + torch.tril(C, -1).T  # what the factorization reads
    torch.testing.assert_close(s.BD @ s.BD.T, C, rtol=1e-10, atol=1e-12 * float(C.abs().max()))


def test_tpa_mirrored_pair_needs_no_triangular_solve_while_the_factor_stands() -> None:
    method, s, ctx = started(TPA_DIM, 1)
    with torch.no_grad():  # past a refresh of the factor, to a tell that did not refresh it
        while s.eigen_generation == 0 or s.generation == s.eigen_generation:
            X = method.ask(s, ctx)
            s = method.tell(s, X, sphere(X), ctx)
    assert s.shift is not None
    ops = ops_of(lambda: method.ask(s, ctx))
    assert "aten::linalg_solve_triangular" not in ops
    assert s.mirrored and s.z is not None
    ref = whiten(s, (s.shift / s.sigma).unsqueeze(0))[0]  # the direction by a solve
    got = s.z[0]
    torch.testing.assert_close(got / got.norm(), ref / ref.norm(), rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(s.z[1], -s.z[0])


def test_triangular_sampling_equals_the_full_product() -> None:
    _, s, _ = started(CHOLESKY_DIM, 0)
    g = torch.Generator().manual_seed(1)
    for d in (TRI_BLOCK - 1, TRI_BLOCK + 1, 2 * TRI_BLOCK + 3):
        A = torch.randn(d, d, generator=g, dtype=torch.float64)
        L = torch.linalg.cholesky(A @ A.T / d + torch.eye(d, dtype=torch.float64))
        s.BD, s.B, s.D = L, None, None
        z = torch.randn(7, d, generator=g, dtype=torch.float64)
        y = sample(s, z)
        assert y.shape == (7, d)
        ref = z @ L.T
        torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


def test_large_d_runs_repeat_exactly_with_a_seed() -> None:
    d = 2 * TRI_BLOCK + 3
    x0 = torch.linspace(-1, 1, d, dtype=torch.float64)
    runs = [
        oa.minimize(oa.Objective(sphere, batched=sphere), x0, "cmaes", budget=600, seed=5)
        for _ in range(2)
    ]
    assert np.array_equal(runs[0].history.f, runs[1].history.f)
    assert torch.equal(runs[0].x, runs[1].x)
    assert runs[0].fun < float(sphere(x0[None])[0])
