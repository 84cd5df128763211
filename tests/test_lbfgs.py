"""The one quasi-Newton engine behind ``lbfgs`` in a box and the ``multistart`` lanes."""

from __future__ import annotations

import torch

import optarena as oa
from _reference import two_loop
from optarena.methods.gradient._quasi_newton import LimitedMemory, QuasiNewton

F64 = torch.float64


def test_direction_in_a_box_is_the_two_loop_step_on_the_free_variables() -> None:
    gen = torch.Generator().manual_seed(3)
    d, m = 6, 3
    A = torch.randn(d, d, dtype=F64, generator=gen)
    A = A @ A.T + torch.eye(d, dtype=F64)
    lo, hi = torch.full((d,), -1.0, dtype=F64), torch.full((d,), 1.0, dtype=F64)
    like = torch.zeros(1, d, dtype=F64)
    qn = QuasiNewton(LimitedMemory(1, m, d, like), 1, like, lo, hi)
    a = torch.zeros(1, dtype=torch.long)
    X = torch.zeros(1, d, dtype=F64)
    X[0, 0], X[0, 3] = 1.0, -1.0  # at the upper bound of x1 and the lower bound of x4
    G = torch.randn(1, d, dtype=F64, generator=gen)
    G[0, 0], G[0, 3] = -1.0, 2.0  # both pushed outwards: held at their bounds
    qn.start(a, X, torch.zeros(1, dtype=F64), G)
    for _ in range(5):  # more pairs than slots: the oldest are dropped
        s = torch.randn(1, d, dtype=F64, generator=gen)
        qn.update(a, s, s @ A)
    assert int(qn.model.cnt[0]) == m
    qn.direction(a)
    free = torch.ones(d, dtype=torch.bool)
    free[[0, 3]] = False
    k = int(qn.model.cnt[0])
    S, Y = qn.model.S[0, :k] * free, qn.model.Y[0, :k] * free
    want = -two_loop(S, Y, G[0] * free)
    torch.testing.assert_close(qn.D[0], want, rtol=1e-10, atol=1e-12)
    assert float(qn.gd[0]) < 0


def test_box_lbfgs_state_is_one_lane_of_the_engine_and_stays_in_the_box() -> None:
    seen: list[oa.IterationInfo] = []
    p = oa.problems.get("rosenbrock")
    res = oa.minimize(
        p, torch.tensor([-1.0, 0.5]), "lbfgs", bounds=(-2, 0.8), budget=300, callback=seen.append
    )
    state = seen[-1].checkpoint.state  # type: ignore[union-attr]
    assert isinstance(state.qn, QuasiNewton) and state.qn.X.shape == (1, 2)
    assert (res.history.x <= 0.8).all() and (res.history.x >= -2).all()
    torch.testing.assert_close(res.x, torch.tensor([0.8, 0.64]), atol=1e-5, rtol=0)


def test_float32_values_are_kept_wide_enough_for_the_armijo_test() -> None:
    # near a minimum, successive float32 values differ by less than a float32 ulp of f; a
    # run that compared them in float32 would backtrack until the budget was gone
    p = oa.problems.get("styblinski_tang")
    x0 = torch.full((10,), 3.0, dtype=torch.float32)
    res = oa.minimize(p, x0, "lbfgs", bounds=(-5, 5), budget=1500)
    assert res.stop_reason == oa.StopReason.CONVERGED and res.nfev < 50
