"""scipy's local methods against scipy itself, run in the same process: COBYLA from a start on
the bound, SLSQP's status at a solution its value tolerance cannot certify."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import torch

import optarena as oa
from optarena.budget import StopReason

F64 = torch.float64
HS71_X0 = [1.0, 5.0, 5.0, 1.0]


def hs71_f(x):
    return x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]


def hs71_c1(x):  # x1 x2 x3 x4 >= 25
    return x[0] * x[1] * x[2] * x[3] - 25


def hs71_c2(x):  # sum x^2 = 40
    return (x**2).sum() - 40


def hs71(method, **options):
    return oa.minimize(
        hs71_f,
        torch.tensor(HS71_X0, dtype=F64),
        method,
        bounds=(1.0, 5.0),
        constraints=[oa.Ineq(hs71_c1), oa.Eq(hs71_c2)],
        budget=3000,
        **options,
    )


def scipy_hs71(method: str, jac: bool) -> so.OptimizeResult:
    """scipy's own answer from the same start (exact gradients for SLSQP)."""

    def grad(x: np.ndarray) -> np.ndarray:
        return np.array(
            [x[3] * (2 * x[0] + x[1] + x[2]), x[0] * x[3], x[0] * x[3] + 1, x[0] * sum(x[:3])]
        )

    def j1(x: np.ndarray) -> np.ndarray:
        return np.array(
            [x[1] * x[2] * x[3], x[0] * x[2] * x[3], x[0] * x[1] * x[3], x[0] * x[1] * x[2]]
        )

    cons = [
        {"type": "ineq", "fun": hs71_c1, **({"jac": j1} if jac else {})},
        {"type": "eq", "fun": hs71_c2, **({"jac": lambda x: 2 * x} if jac else {})},
    ]
    return so.minimize(
        hs71_f,
        np.array(HS71_X0),
        jac=grad if jac else None,
        method=method,
        bounds=so.Bounds(np.ones(4), 5 * np.ones(4)),
        constraints=cons,
    )


def test_cobyla_from_a_start_on_the_bound_reaches_scipys_answer() -> None:
    # its first probes step past the bound; answered with the clipped point's values they
    # told COBYLA that nothing changes there, and it returned the infeasible start (f = 16)
    ref = scipy_hs71("COBYLA", jac=False)
    assert ref.success
    res = hs71("cobyla")
    assert res.success and res.feasible
    assert res.fun == pytest.approx(ref.fun, rel=1e-7)
    x = res.history.x
    assert (x >= 1.0).all() and (x <= 5.0).all()  # every evaluation inside the box


def test_cobyla_inside_the_box_is_unchanged() -> None:
    # probes inside the box go straight to the objective: a start away from the bounds on a
    # problem whose path stays inside gives scipy's own trajectory
    f = lambda x: ((x - torch.tensor([0.3, -0.2], dtype=F64)) ** 2).sum()  # noqa: E731
    res = oa.minimize(f, torch.zeros(2, dtype=F64), "cobyla", bounds=(-10.0, 10.0), budget=500)
    calls = []

    def g(x: np.ndarray) -> float:
        calls.append(x.copy())
        return float(((x - np.array([0.3, -0.2])) ** 2).sum())

    so.minimize(
        g,
        np.zeros(2),
        method="COBYLA",
        bounds=so.Bounds(-10 * np.ones(2), 10 * np.ones(2)),
        options={"maxiter": 10**9, "rhobeg": 0.5, "tol": 1e-10},
    )
    assert res.nfev == len(calls)
    np.testing.assert_array_equal(res.history.x, np.array(calls))


@pytest.mark.parametrize("ftol", [None, 1e-15])
def test_slsqp_reports_a_correct_hs71_answer_as_success(ftol: float | None) -> None:
    # with ftol at or below the rounding of f (about 17 here) scipy ends on "Positive
    # directional derivative for linesearch" at the solution: a correct, feasible answer
    ref = scipy_hs71("SLSQP", jac=True)
    assert ref.success
    res = hs71("slsqp", **({} if ftol is None else {"ftol": ftol}))
    assert res.success and res.feasible
    assert res.stop_reason is StopReason.CONVERGED
    assert res.fun == pytest.approx(ref.fun, rel=1e-8)


class _WrongGradient(torch.autograd.Function):
    """f(x) = sum (x - 1)^2 with a gradient that points the wrong way in x[1]."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        ctx.save_for_backward(x)
        return ((x - 1) ** 2).sum()

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        grad = 2 * (x - 1)
        grad[1] = -grad[1] + 3.0
        return g * grad


def test_slsqp_failure_at_a_wrong_point_stays_a_failure() -> None:
    # a line search that fails because the gradient is wrong is not dressed up as success
    res = oa.minimize(
        _WrongGradient.apply, torch.tensor([3.0, 3.0], dtype=F64), "slsqp", budget=500
    )
    assert not res.success
    assert res.stop_reason is StopReason.METHOD_FAILED
    assert res.info["kkt_residual"] > 1e-3
