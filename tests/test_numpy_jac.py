"""A numpy function with scipy's jac=: every gradient method uses that gradient exactly."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
from scipy.optimize import rosen, rosen_der

import optarena as oa

GRADIENT = [i.name for i in oa.methods() if i.needs_grad]
X0 = np.array([1.3, 0.7, 0.8, 1.9, 1.2])


class Counted:
    def __init__(self) -> None:
        self.f = self.g = 0

    def fun(self, x: np.ndarray) -> float:
        self.f += 1
        return float(rosen(x))

    def jac(self, x: np.ndarray) -> np.ndarray:
        self.g += 1
        return rosen_der(x)


@pytest.mark.parametrize("name", GRADIENT)
def test_every_gradient_method_takes_jac_once_per_gradient_evaluation(name: str) -> None:
    c = Counted()
    res = oa.minimize(oa.Objective.from_numpy(c.fun, jac=c.jac), X0, name, budget=60)
    assert res.ngev > 0 and c.g == res.ngev and c.f == res.nfev <= 60
    assert res.fun < rosen(X0)


def test_bfgs_follows_scipys_path_with_the_same_gradient() -> None:
    ref = so.minimize(rosen, X0, method="BFGS", jac=rosen_der)
    res = oa.minimize(oa.Objective.from_numpy(rosen, jac=rosen_der), X0, "bfgs", budget=500)
    assert res.nfev == ref.nfev and res.fun == pytest.approx(ref.fun, rel=1e-6, abs=1e-12)
    both = oa.Objective.from_numpy(lambda x: (rosen(x), rosen_der(x)), jac=True)
    assert oa.minimize(both, X0, "bfgs", budget=500).fun == res.fun


def test_gradient_free_methods_never_call_jac() -> None:
    c = Counted()
    res = oa.minimize(oa.Objective.from_numpy(c.fun, jac=c.jac), X0, "nelder_mead", budget=50)
    assert c.g == 0 and c.f == res.nfev == 50


@pytest.mark.parametrize(
    ("obj", "error", "match"),
    [
        (lambda: oa.Objective.from_numpy(rosen, jac="yes"), TypeError, "jac must be a function"),
        (lambda: oa.Objective.from_numpy(rosen, jac=rosen_der, gradient="fd"), ValueError, "jac="),
    ],
)
def test_bad_jac_is_refused_when_declared(obj, error, match: str) -> None:
    with pytest.raises(error, match=match):
        obj()


@pytest.mark.parametrize(
    ("jac", "match"),
    [(lambda x: x[:2], "has 2 entries for 5 variables"), (True, "must return .value, gradient.")],
)
def test_a_gradient_of_the_wrong_form_is_named(jac, match: str) -> None:
    with pytest.raises(oa.ObjectiveError, match=match):
        oa.minimize(oa.Objective.from_numpy(rosen, jac=jac), X0, "bfgs", budget=10)
