"""scipy's constraint forms (LinearConstraint, NonlinearConstraint, the dict form) mean in
optarena exactly what they mean in scipy: scipy's own tutorial problems give scipy's answers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optarena as oa
from optarena.constraints import ConstraintSet
from optarena.inputs import Bounds, as_constraints
from optarena.scipy_forms import from_scipy

CONSTRAINED = [i.name for i in oa.methods() if i.supports_constraints]


def rosen(x):
    """scipy's Rosenbrock, written so it runs on tensors and arrays alike."""
    return (100.0 * (x[1:] - x[:-1] ** 2.0) ** 2.0 + (1 - x[:-1]) ** 2.0).sum()


# -- scipy's tutorial problems ----------------------------------------------------------------
def nocedal_16_4():
    """The example of scipy.optimize.minimize's docs (Nocedal & Wright, Example 16.4)."""
    fun = lambda x: (x[0] - 1) ** 2 + (x[1] - 2.5) ** 2  # noqa: E731
    cons = (
        {"type": "ineq", "fun": lambda x: x[0] - 2 * x[1] + 2},
        {"type": "ineq", "fun": lambda x: -x[0] - 2 * x[1] + 6},
        {"type": "ineq", "fun": lambda x: -x[0] + 2 * x[1] + 2},
    )
    return fun, cons, ((0, None), (0, None)), [2.0, 0.0]


@pytest.mark.parametrize("method", ["slsqp", "trust_constr", "cobyla", "auto"])
def test_dict_constraints_of_the_minimize_docs_give_scipys_answer(method: str) -> None:
    fun, cons, bnds, x0 = nocedal_16_4()
    ref = so.minimize(fun, x0, method="SLSQP", bounds=bnds, constraints=cons)
    res = oa.minimize(fun, x0, method, bounds=bnds, constraints=cons, budget=3000, seed=0)
    np.testing.assert_allclose(ref.x, [1.4, 1.7], atol=1e-6)
    np.testing.assert_allclose(res.x.numpy(), ref.x, atol=1e-5)
    assert res.feasible


def tutorial_constraints(jac: bool):
    """The constraints of scipy's tutorial ("Constrained minimization of multivariate scalar
    functions"): one LinearConstraint, a NonlinearConstraint, and the same as dicts."""
    linear = so.LinearConstraint([[1, 2], [2, 1]], [-np.inf, 1], [1, 1])
    cons_f = lambda x: [x[0] ** 2 + x[1], x[0] ** 2 - x[1]]  # noqa: E731
    cons_J = lambda x: [[2 * x[0], 1], [2 * x[0], -1]]  # noqa: E731
    nonlinear = so.NonlinearConstraint(cons_f, -np.inf, 1, **({"jac": cons_J} if jac else {}))
    ineq = {
        "type": "ineq",
        "fun": lambda x: np.array(
            [1 - x[0] - 2 * x[1], 1 - x[0] ** 2 - x[1], 1 - x[0] ** 2 + x[1]]
        ),
    }
    eq = {"type": "eq", "fun": lambda x: np.array([2 * x[0] + x[1] - 1])}
    if jac:
        ineq["jac"] = lambda x: np.array([[-1.0, -2.0], [-2 * x[0], -1.0], [-2 * x[0], 1.0]])
        eq["jac"] = lambda x: np.array([2.0, 1.0])
    return [linear, nonlinear], [eq, ineq], so.Bounds([0, -0.5], [1.0, 2.0])


@pytest.mark.parametrize("jac", [True, False], ids=["jac", "finite_differences"])
@pytest.mark.parametrize("method", ["slsqp", "trust_constr"])
def test_tutorial_objects_and_dicts_give_scipys_answer(method: str, jac: bool) -> None:
    objects, dicts, bounds = tutorial_constraints(jac)
    x0 = np.array([0.5, 0.0])
    ref = so.minimize(so.rosen, x0, method="SLSQP", constraints=dicts, bounds=bounds)
    np.testing.assert_allclose(ref.x, [0.4149, 0.1701], atol=1e-4)  # the tutorial's print
    for cons in (objects, dicts):
        res = oa.minimize(rosen, x0, method, constraints=cons, bounds=bounds, budget=3000)
        np.testing.assert_allclose(res.x.numpy(), ref.x, atol=1e-5)
        assert res.feasible


def hs71():
    f = lambda x: x[0] * x[3] * (x[0] + x[1] + x[2]) + x[2]  # noqa: E731
    product = so.NonlinearConstraint(lambda x: x[0] * x[1] * x[2] * x[3], 25, np.inf)
    sphere = so.NonlinearConstraint(lambda x: float(np.sum(np.square(x))), 40, 40)
    return f, [product, sphere], [(1, 5)] * 4, [1.0, 5.0, 5.0, 1.0]


def test_hock_schittkowski_71_with_nonlinear_constraints() -> None:
    f, cons, bnds, x0 = hs71()
    ref = so.minimize(f, x0, method="SLSQP", bounds=bnds, constraints=cons)
    np.testing.assert_allclose(ref.fun, 17.0140173, atol=1e-6)
    res = oa.minimize(f, x0, "slsqp", bounds=bnds, constraints=cons)
    np.testing.assert_allclose(res.x.numpy(), ref.x, atol=1e-5)
    np.testing.assert_allclose(res.fun, ref.fun, rtol=1e-8)
    assert res.max_violation <= 1e-7


def test_numpy_constraints_under_a_population_wrapper() -> None:
    """Not torch-differentiable, not vmappable: a population inner method still gets them
    (evaluated row by row) and the result is feasible."""
    fun, cons, _, x0 = nocedal_16_4()
    res = oa.minimize(
        fun,
        x0,
        oa.AugmentedLagrangian("cmaes", tol=1e-6),
        bounds=Bounds([0, 0], [4, 4]),
        constraints=cons,
        budget=4000,
        seed=0,
    )
    assert res.feasible
    np.testing.assert_allclose(res.x.numpy(), [1.4, 1.7], atol=1e-2)


# -- what each form turns into ----------------------------------------------------------------
def scipy_violation(A: np.ndarray, lb: np.ndarray, ub: np.ndarray, x: np.ndarray) -> float:
    """The largest violation of lb <= A x <= ub, as scipy means it."""
    v = A @ x
    return float(max(0.0, np.max(lb - v, initial=0.0), np.max(v - ub, initial=0.0)))


@settings(max_examples=100, deadline=None)
@given(data=st.data(), m=st.integers(1, 4), d=st.integers(1, 3))
def test_linear_constraint_violation_is_scipys(data: st.DataObject, m: int, d: int) -> None:
    floats = st.floats(-3, 3)
    A = np.array(
        data.draw(st.lists(st.lists(floats, min_size=d, max_size=d), min_size=m, max_size=m))
    )
    lb = np.array(
        data.draw(st.lists(st.sampled_from([-np.inf, -1.0, 0.0, 0.5]), min_size=m, max_size=m))
    )
    kind = data.draw(st.lists(st.sampled_from(["eq", "upper", "open"]), min_size=m, max_size=m))
    width = np.array(data.draw(st.lists(st.floats(0.1, 2), min_size=m, max_size=m)))
    ub = np.where(np.array(kind) == "open", np.inf, np.where(np.isfinite(lb), lb, 0.0) + width)
    ub = np.where((np.array(kind) == "eq") & np.isfinite(lb), lb, ub)
    x = np.array(data.draw(st.lists(floats, min_size=d, max_size=d)))
    cs = ConstraintSet(from_scipy(so.LinearConstraint(A, lb, ub)))
    raw, _ = cs.excess(cs.values(torch.from_numpy(x)))
    assert raw == pytest.approx(scipy_violation(A, lb, ub, x), abs=1e-12)
    kinds = [c.kind for c in cs.items]
    assert ("eq" in kinds) == bool(((lb == ub) & np.isfinite(lb)).any())
    # its Jacobian is autograd's: the rows of A, signs applied
    for c, (_, J) in zip(cs.items, cs.values_and_jacobians(torch.from_numpy(x)), strict=True):
        assert J.shape == (c.values(torch.from_numpy(x)).numel(), d)


def test_two_sided_nonlinear_constraint_splits_into_eq_and_both_sides() -> None:
    g = lambda x: np.array([x[0], x[0] + x[1], x[1], x[0] * x[1]])  # noqa: E731
    lb, ub = [0.0, 1.0, -np.inf, -np.inf], [2.0, 1.0, 3.0, np.inf]
    items = from_scipy(so.NonlinearConstraint(g, lb, ub))
    assert [c.kind for c in items] == ["eq", "ineq"]
    x = torch.tensor([3.0, 0.5], dtype=torch.float64)
    eq, ineq = (c.values(x).tolist() for c in items)
    assert eq == [3.5 - 1.0]  # x0 + x1 - 1
    assert ineq == [3.0 - 0.0, 2.0 - 3.0, 3.0 - 0.5]  # x0 - 0, 2 - x0, 3 - x1


@pytest.mark.parametrize("scheme", ["2-point", "3-point", "cs"])
def test_finite_difference_jacobians_match_the_given_one(scheme: str) -> None:
    g = lambda x: np.array([np.sin(x[0]) * x[1], x[0] ** 3 - x[1] ** 2])  # noqa: E731
    J = lambda x: np.array([[np.cos(x[0]) * x[1], np.sin(x[0])], [3 * x[0] ** 2, -2 * x[1]]])  # noqa: E731
    x = torch.tensor([0.7, -1.3], dtype=torch.float64)
    exact = ConstraintSet(from_scipy(so.NonlinearConstraint(g, -1, 1, jac=J)))
    approx = ConstraintSet(from_scipy(so.NonlinearConstraint(g, -1, 1, jac=scheme)))
    tol = {"2-point": 1e-6, "3-point": 1e-9, "cs": 1e-12}[scheme]
    for (va, Ja), (vb, Jb) in zip(
        exact.values_and_jacobians(x), approx.values_and_jacobians(x), strict=True
    ):
        torch.testing.assert_close(va, vb)
        torch.testing.assert_close(Ja, Jb, atol=tol, rtol=0)


def test_dict_args_reach_fun_and_jac_and_type_is_read_as_scipy_does() -> None:
    seen = []

    def fun(x, a, b):
        seen.append((x.dtype, a, b))
        return a - x[0] - b * x[1]

    c = {"type": "INEQ", "fun": fun, "jac": lambda x, a, b: np.array([-1.0, -b]), "args": (2, 3)}
    (item,) = as_constraints(c)
    x = torch.tensor([0.5, 0.25], dtype=torch.float32)
    v, J = ConstraintSet([item]).values_and_jacobians(x)[0]
    assert item.kind == "ineq" and v.dtype == torch.float32
    assert v.tolist() == [2 - 0.5 - 0.75] and J.tolist() == [[-1.0, -3.0]]
    assert seen[0] == (np.float64, 2, 3)  # numpy float64, as scipy calls it


def test_numpy_function_gets_a_copy_it_cannot_corrupt() -> None:
    def rude(x):
        v = x[0] - 1.0
        x[:] = 99.0
        return v

    (item,) = as_constraints({"type": "ineq", "fun": rude})
    x = torch.tensor([3.0, 4.0], dtype=torch.float64)
    ConstraintSet([item]).values_and_jacobians(x)
    assert x.tolist() == [3.0, 4.0]


def test_an_ineq_with_its_own_jac_uses_it() -> None:
    calls = []

    def jac(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return torch.tensor([[2.0, 0.0]], dtype=x.dtype)

    c = oa.Ineq(lambda x: x[0] ** 2 - 1, jac=jac)
    ((_, J),) = ConstraintSet([c]).values_and_jacobians(torch.tensor([5.0, 1.0]))
    assert calls and J.tolist() == [[2.0, 0.0]]  # not autograd's 10


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (so.LinearConstraint([[1, 1]], 0, 1, keep_feasible=True), "keep_feasible"),
        (so.NonlinearConstraint(lambda x: x[0], 0, 1, keep_feasible=True), "keep_feasible"),
        (so.LinearConstraint([[1, 1]], 2, 1), "lb > ub"),
        (so.NonlinearConstraint(lambda x: x, [0, 0], [1, 1, 1]), "lb has 2"),
        (so.NonlinearConstraint(lambda x: x[0], 0, 1, jac="5-point"), "jac must be"),
        ({"type": "ineq", "fun": lambda x: x[0], "jacobian": None}, "unknown key"),
        ({"type": "geq", "fun": lambda x: x[0]}, "'ineq'"),
        ({"type": "eq"}, "needs 'fun'"),
        ({"type": "eq", "fun": lambda x: x[0], "args": 3}, "args"),
        ("x >= 0", "a constraint is optarena.Ineq"),
        ([lambda x: x[0]], "a constraint is optarena.Ineq"),
    ],
)
def test_bad_constraints_are_refused_before_evaluating(bad, match: str) -> None:
    calls = []
    with pytest.raises((TypeError, ValueError), match=match):
        oa.minimize(lambda x: calls.append(1) or (x**2).sum(), [0.5, 0.5], "slsqp", constraints=bad)
    assert not calls


def test_a_wrong_number_of_values_or_jacobian_shape_says_so() -> None:
    g = so.NonlinearConstraint(lambda x: np.array([x[0], x[1], 1.0]), [0, 0], [1, 1])
    with pytest.raises(ValueError, match="returned 3 values, but lb/ub have 2"):
        oa.minimize(lambda x: (x**2).sum(), [0.5, 0.5], "slsqp", constraints=g)
    h = so.NonlinearConstraint(lambda x: x[0], 0, 1, jac=lambda x: np.ones(3))
    with pytest.raises(ValueError, match=r"jac gave shape \(3,\), expected \(1, 2\)"):
        oa.minimize(lambda x: (x**2).sum(), [0.5, 0.5], "slsqp", constraints=h)


@pytest.mark.parametrize("method", CONSTRAINED)
def test_every_constrained_method_takes_a_single_scipy_constraint(method: str) -> None:
    """One object, not a list, as scipy allows; selected by capability, never by name."""
    c = so.NonlinearConstraint(lambda x: x[0] + x[1], 1, np.inf)
    res = oa.minimize(
        lambda x: (x**2).sum(),
        [1.0, 1.0],
        method,
        constraints=c,
        bounds=(-2, 2),
        budget=1500,
        seed=0,
    )
    assert res.feasible or res.max_violation < 1e-4
    assert res.fun == pytest.approx(0.5, abs=0.05)
