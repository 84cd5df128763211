"""What users hand to minimize() is read as they mean it: bounds in scipy's and optarena's
forms (an ambiguous one refused with both spellings), real x0 only, seeds that fit, and a
budget that always ends the run."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.optimize as so
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import optarena as oa
from optarena.budget import DEFAULT_EVALS
from optarena.inputs import MAX_SEED, Bounds, as_bounds


def far_quadratic(target: float = 5.0):
    """A quadratic whose minimum lies outside the test boxes, recording every evaluated x
    (one point at a time, or a population through its batched form)."""
    seen: list[np.ndarray] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().double().numpy().copy())
        return ((x - target) ** 2).sum()

    def batched(X: torch.Tensor) -> torch.Tensor:
        seen.extend(X.detach().double().numpy().copy())
        return ((X - target) ** 2).sum(dim=1)

    return oa.Objective(f, batched=batched), seen


def box(bounds, d: int) -> tuple[list[float], list[float]]:
    lo, hi = as_bounds(bounds, torch.zeros(d, dtype=torch.float64) + 0.5)
    return lo.tolist(), hi.tolist()


# -- scipy's bounds, read as scipy reads them -------------------------------------------------
def test_scipy_pairs_with_none_give_scipy_answer() -> None:
    """scipy's tutorial form ((0, None), ...) was refused; now it is read as pairs."""
    f, _ = far_quadratic()
    bnds = ((0, None), (2, 3))
    res = oa.minimize(f, [0.5, 2.5], "lbfgsb", bounds=bnds)
    ref = so.minimize(lambda x: ((x - 5.0) ** 2).sum(), [0.5, 2.5], method="L-BFGS-B", bounds=bnds)
    np.testing.assert_allclose(res.x.numpy(), ref.x, atol=1e-6)
    np.testing.assert_allclose(res.x.numpy(), [5.0, 3.0], atol=1e-6)


def test_two_by_two_pairs_for_two_variables_are_refused_with_both_spellings() -> None:
    """[(0, 1), (2, 3)] used to be read as lower=(0, 1), upper=(2, 3): x = (2, 3), where
    scipy gives (1, 3). Both readings fit, so it is refused and the message spells both."""
    f, seen = far_quadratic()
    with pytest.raises(ValueError, match="two ways") as err:
        oa.minimize(f, [0.5, 2.5], "lbfgsb", bounds=[(0, 1), (2, 3)])
    msg = str(err.value)
    assert "x[0] in [0, 1] and x[1] in [2, 3]" in msg  # scipy's reading
    assert "x[0] in [0, 2] and x[1] in [1, 3]" in msg  # the (lower, upper) reading
    assert "Bounds(lower=[0.0, 2.0], upper=[1.0, 3.0])" in msg
    assert "scipy.optimize.Bounds([0.0, 2.0], [1.0, 3.0])" in msg
    assert not seen
    # each spelling the message gives runs and means what it says
    for spelled, want in [
        (Bounds(lower=[0.0, 2.0], upper=[1.0, 3.0]), [1.0, 3.0]),
        (so.Bounds([0.0, 2.0], [1.0, 3.0]), [1.0, 3.0]),
        (Bounds(lower=[0.0, 1.0], upper=[2.0, 3.0]), [2.0, 3.0]),
        ((np.array([0.0, 1.0]), np.array([2.0, 3.0])), [2.0, 3.0]),
        ((torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])), [2.0, 3.0]),
    ]:
        res = oa.minimize(f, [0.5, 2.5], "lbfgsb", bounds=spelled)
        np.testing.assert_allclose(res.x.numpy(), want, atol=1e-6)


@pytest.mark.parametrize(
    "bounds",
    [[(0, 1), (2, 3)], ((0, 1), (2, 3)), ([0, 1], [2, 3]), np.array([[0, 1], [2, 3]])],
)
def test_every_spelling_of_an_ambiguous_table_is_refused(bounds) -> None:
    with pytest.raises(ValueError, match="two ways"):
        box(bounds, 2)


@pytest.mark.parametrize(
    ("x0", "bounds", "says"),
    [([5.0, 5.0], [(-1, 1), (-1, 1)], "x[0] in [-1, 1] and x[1] in [-1, 1]"),
     ([0.0, 0.0], [(1, 2), (1, 2)], "x[0] in [1, 2] and x[1] in [1, 2]")],
)  # fmt: skip
def test_a_table_whose_readings_both_miss_x0_says_x0_is_outside_either_box(
    x0: list[float], bounds, says: str
) -> None:
    """Was refused as ambiguous only, which hid the mistake: x0 outside the box either way."""
    with pytest.raises(ValueError, match=r"x0 = .* lies outside the bounds either way") as err:
        oa.minimize(lambda x: (x * x).sum(), x0, "lbfgsb", bounds=bounds)
    assert says in str(err.value)


def test_a_table_that_reads_the_same_both_ways_is_accepted() -> None:
    assert box([(0.5, 0.5), (0.5, 0.5)], 2) == ([0.5, 0.5], [0.5, 0.5])


@pytest.mark.parametrize(
    ("bounds", "want"),
    [
        # as (lower, upper) x[0] would be in [-4, -6]: only scipy's pairs are a box
        ([(-4, 0), (-6, -1)], ([-4.0, -6.0], [0.0, -1.0])),
        # as pairs x[1] would be in [1, 0]: only (lower, upper) is a box
        (([-1, 0], [1, 0]), ([-1.0, 0.0], [1.0, 0.0])),
    ],
)
def test_a_table_that_is_a_box_only_one_way_is_read_that_way(bounds, want) -> None:
    x0 = torch.tensor([-1.0, -1.0]) if want[0][1] < 0 else torch.tensor([0.0, 0.0])
    lo, hi = as_bounds(bounds, x0.double())
    assert (lo.tolist(), hi.tolist()) == want


def test_a_table_that_is_a_box_neither_way_is_refused_as_scipy_reads_it() -> None:
    with pytest.raises(ValueError, match=r"lower bound > upper bound at index 0: 1\.0 > 0\.0"):
        box([(1, 0), (2, -1)], 2)


@pytest.mark.parametrize(
    ("bounds", "d", "want"),
    [
        ((0, 1), 3, ([0, 0, 0], [1, 1, 1])),  # two scalars broadcast
        ((None, 1), 2, ([-math.inf] * 2, [1, 1])),
        ([(0, 1), (0, 2), (-1, 3)], 3, ([0, 0, -1], [1, 2, 3])),  # scipy pairs
        (
            [(0, None), (None, 2), (None, None)],
            3,
            ([0, -math.inf, -math.inf], [math.inf, 2, math.inf]),
        ),
        ([(0, 1)], 1, ([0], [1])),
        (([0, 0, -1], [1, 2, 3]), 3, ([0, 0, -1], [1, 2, 3])),  # (lower, upper)
        ((0, [1, 2, 3]), 3, ([0, 0, 0], [1, 2, 3])),
        (np.array([[0, 1], [0, 2], [-1, 3]]), 3, ([0, 0, -1], [1, 2, 3])),  # (d, 2) array
        (np.array([[0, 0, -1], [1, 2, 3]]), 3, ([0, 0, -1], [1, 2, 3])),  # (2, d) array
        (so.Bounds(0, [1, 2, 3]), 3, ([0, 0, 0], [1, 2, 3])),
        (so.Bounds([0, 0, 0], [1, 2, 3], keep_feasible=True), 3, ([0, 0, 0], [1, 2, 3])),
        (so.Bounds(), 2, ([-math.inf] * 2, [math.inf] * 2)),
        (Bounds(0, None), 2, ([0, 0], [math.inf] * 2)),
        (Bounds(upper=[1, 2]), 2, ([-math.inf] * 2, [1, 2])),
    ],
)
def test_accepted_forms(bounds, d: int, want) -> None:
    assert box(bounds, d) == (list(map(float, want[0])), list(map(float, want[1])))


@pytest.mark.parametrize(
    ("bounds", "match"),
    [
        (([0, None, 0], [1, 1, 1]), "None marks an open side only in"),
        (([0, 0], [1, 1]), r"2 entries \(shape \(2,\)\) for 3 variables"),
        ([(0, 1)] * 4, "4 entries .* for 3 variables"),
        ("box", "bounds are given as"),
        (np.zeros((2, 2, 2)), "shape"),
        ([(1, 0), (0, 1), (0, 1)], "lower bound > upper bound at index 0"),
        ([(0, math.nan), (0, 1), (0, 1)], "NaN"),
    ],
)
def test_refused_forms_say_what_is_accepted(bounds, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        box(bounds, 3)


def test_problem_bounds_of_two_variables_still_work() -> None:
    """A Problem's bounds are two tensors: (lower, upper) whatever the dimension."""
    p = oa.problems.get("rosenbrock")
    assert p.x0.numel() == 2
    res = oa.minimize(p.objective(), p.x0, "pso", bounds=p.bounds, budget=200, seed=0)
    lo, hi = p.bounds
    X = res.history.x
    assert ((lo.numpy() <= X) & (hi.numpy() >= X)).all()


@st.composite
def box_and_form(draw: st.DrawFn, finite: bool = False):
    """A box of dimension 1..4 and one accepted spelling of it."""
    d = draw(st.integers(1, 4))
    side = st.floats(-5, 5) if finite else st.one_of(st.floats(-5, 5), st.none())
    lo = [draw(side) for _ in range(d)]
    # zero-width boxes are drawn for the reading; methods get boxes of some width
    width = [draw(st.floats(0.01 if finite else 0, 4)) for _ in range(d)]
    hi = [None if lo[i] is None and draw(st.booleans()) else (lo[i] or 0.0) + width[i]
          for i in range(d)]  # fmt: skip
    lo_f = np.array([-math.inf if v is None else v for v in lo])
    hi_f = np.array([math.inf if v is None else v for v in hi])
    forms = {
        "pairs": list(zip(lo, hi, strict=True)),
        "Bounds": Bounds(lo_f, hi_f),
        "scipy": so.Bounds(lo_f, hi_f),
        "arrays": (lo_f, hi_f),
        "tensors": (torch.from_numpy(lo_f), torch.from_numpy(hi_f)),
        "lists": (lo_f.tolist(), hi_f.tolist()),
        "array2d": np.stack([lo_f, hi_f], axis=1),
    }
    name = draw(st.sampled_from(sorted(forms)))
    return d, lo_f, hi_f, name, forms[name]


@settings(max_examples=150, deadline=None)
@given(case=box_and_form())
def test_every_accepted_form_reads_to_the_box(case) -> None:
    d, lo, hi, name, form = case
    x0 = torch.from_numpy(np.clip(np.zeros(d), lo, hi))
    try:
        lower, upper = as_bounds(form, x0)
    except ValueError as e:
        # only a 2x2 table of numbers for d = 2 may be refused: when both readings are
        # boxes and differ (either reading of the other swaps hi[0] and lo[1])
        assert d == 2 and name in ("pairs", "lists", "array2d") and "two ways" in str(e)
        assert lo[0] <= lo[1] and hi[0] <= hi[1]  # so the other reading is a box too
        return
    assert lower.shape == upper.shape == (d,)
    assert bool((lower <= upper).all())
    np.testing.assert_array_equal(lower.numpy(), lo)
    np.testing.assert_array_equal(upper.numpy(), hi)


BOUNDED = [
    i.name
    for i in oa.methods()
    if i.supports_bounds and not i.supports_constraints and i.family != "composite"
]


@pytest.mark.parametrize("method", BOUNDED)
@settings(max_examples=6, deadline=None)
@given(case=box_and_form(finite=True), seed=st.integers(0, 2**32))
def test_a_method_with_bounds_only_evaluates_inside_them(method: str, case, seed: int) -> None:
    _, lo, hi, _, form = case
    f, seen = far_quadratic(target=7.0)
    x0 = (lo + hi) / 2
    try:
        oa.minimize(f, x0, method, bounds=form, budget=60, seed=seed)
    except ValueError as e:  # the ambiguous table, or a method needing a box of width > 0
        assert not seen
        assert "two ways" in str(e) or "lower < upper" in str(e)
        return
    X = np.array(seen)
    assert len(X) and ((lo <= X) & (hi >= X)).all()


# -- x0 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "x0",
    [
        torch.tensor([1 + 2j, 0.5 + 0j]),
        np.array([1 + 2j, 0.5]),
        [1 + 2j, 0.5],
        torch.tensor([1.0, 0.5], dtype=torch.complex128),  # zero imaginary part: still complex
    ],
    ids=["torch", "numpy", "list", "torch_real_valued"],
)
def test_complex_x0_is_refused(x0) -> None:
    """A torch complex x0 used to lose its imaginary part without a word."""
    f, seen = far_quadratic()
    with pytest.raises(TypeError, match=r"x0 is complex.*view_as_real"):
        oa.minimize(f, x0, "lbfgs")
    assert not seen


@pytest.mark.parametrize(
    "x0",
    [
        torch.tensor([1, 2]),
        np.array([1, 2]),
        [1, 2],
        torch.tensor([True, False]),
        np.array([1, 0], bool),
    ],
)
def test_int_and_bool_x0_become_float64(x0) -> None:
    f, seen = far_quadratic(target=0.0)
    res = oa.minimize(f, x0, "lbfgs", budget=50)
    assert seen[0].dtype == np.float64
    np.testing.assert_array_equal(seen[0], np.asarray(x0, dtype=np.float64))
    assert res.x.dtype == torch.float64 and res.fun < 1e-12


# -- seeds ------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [2**64, 2**63, 2**100, np.uint64(2**64 - 1)])
def test_seed_beyond_64_bits_is_refused_before_evaluating(seed) -> None:
    """A seed >= 2**64 used to fail with "Overflow when unpacking long long"."""
    f, seen = far_quadratic()
    with pytest.raises(ValueError, match=r"at most 2\*\*63 - 1.*seed % 2\*\*63"):
        oa.minimize(f, [0.0, 0.0], "pso", bounds=(-1, 1), seed=seed, budget=20)
    assert not seen


def test_largest_seed_runs_and_is_kept() -> None:
    f, _ = far_quadratic()
    a = oa.minimize(f, [0.0, 0.0], "pso", bounds=(-1, 1), seed=MAX_SEED, budget=80)
    b = oa.minimize(f, [0.0, 0.0], "pso", bounds=(-1, 1), seed=np.int64(MAX_SEED), budget=80)
    assert a.seed == MAX_SEED
    np.testing.assert_array_equal(a.history.f, b.history.f)


# -- a budget that binds ----------------------------------------------------------------------
def test_grad_evals_alone_gets_the_evaluation_cap_on_a_gradient_free_method() -> None:
    """Budget(grad_evals=N) never stopped random_search (1.35 million evaluations in 20 s).
    The objective refuses to run past the cap, so the old behaviour fails here, not hangs."""
    calls = []

    def rows(X: torch.Tensor) -> torch.Tensor:
        calls.extend([1] * X.shape[0])
        if len(calls) > DEFAULT_EVALS:
            raise RuntimeError("ran past the default evaluation cap")
        return (X**2).sum(dim=1)

    f = oa.Objective(lambda x: rows(x[None])[0], batched=rows)
    with pytest.warns(RuntimeWarning, match=r"grad_evals=5\) alone cannot stop.*Budget\(evals"):
        res = oa.minimize(
            f, [0.5, 0.5], "random_search", bounds=(-1, 1), budget=oa.Budget(grad_evals=5)
        )
    assert res.nfev == len(calls) == DEFAULT_EVALS
    assert res.stop_reason == oa.StopReason.MAX_EVALS


def test_grad_evals_alone_still_binds_a_gradient_method_without_warning() -> None:
    f, seen = far_quadratic()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = oa.minimize(f, [0.5, 0.5], "adam", budget=oa.Budget(grad_evals=7))
    assert res.ngev == res.nfev == len(seen) == 7


def test_a_budget_with_another_limit_is_left_alone() -> None:
    b = oa.Budget(grad_evals=5, seconds=1.0)
    assert b.binding(uses_gradient=False) is b
    c = oa.Budget(grad_evals=5, evals=30)
    assert c.binding(uses_gradient=False) is c
    with pytest.warns(RuntimeWarning):
        d = oa.Budget(grad_evals=5, target=0.1).binding(uses_gradient=False)
    assert (d.evals, d.grad_evals, d.target) == (DEFAULT_EVALS, 5, 0.1)


def test_a_table_whose_other_reading_excludes_x0_is_read_the_way_that_holds_it() -> None:
    """scipy's commonest spelling for two variables: [(-2, 2), (-2, 2)] from x0 = 0. Read as
    (lower, upper) it would fix x = (-2, 2), excluding x0: it is scipy's box."""
    lo, hi = as_bounds([(-2, 2), (-2, 2)], torch.zeros(2, dtype=torch.float64))
    assert (lo.tolist(), hi.tolist()) == ([-2.0, -2.0], [2.0, 2.0])
    # rows read as (lower, upper) hold x0 = (0.5, 2.5); scipy's pairs [0, 1] x [0.5, 3] too
    with pytest.raises(ValueError, match="two ways"):
        as_bounds([(0, 1), (0.5, 3)], torch.tensor([0.5, 2.5], dtype=torch.float64))
    # only (lower, upper) holds x0 = (1.5, 2): x[0] in [0, 0.5] would exclude it
    lo, hi = as_bounds([(0, 0.5), (2, 3)], torch.tensor([1.5, 2.0], dtype=torch.float64))
    assert (lo.tolist(), hi.tolist()) == ([0.0, 0.5], [2.0, 3.0])


@pytest.mark.parametrize(
    ("bounds", "centre"),
    [
        ([(-1, 1), (0, 4), (2, 3)], [0.0, 2.0, 2.5]),  # scipy's pairs
        ([(-1, 3)], [1.0]),
        ([(-5, 5), (-5, 5)], [0.0, 0.0]),  # scipy's reading, the centre then chooses it
        ((np.array([-1.0, 0.0]), np.array([1.0, 4.0])), [0.0, 2.0]),
        ((torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0])), [0.0, 2.0]),
        (Bounds(lower=-1.0, upper=[1.0, 3.0, 5.0]), [0.0, 1.0, 2.0]),
        (so.Bounds([-1.0, 0.0], [1.0, 4.0]), [0.0, 2.0]),
    ],
)
def test_without_x0_finite_bounds_start_at_their_centre(bounds, centre: list[float]) -> None:
    """scipy's differential_evolution(func, bounds) needs no x0: neither does minimize."""
    seen: list[np.ndarray] = []
    f = oa.Objective.from_numpy(lambda x: seen.append(x.copy()) or float(np.sum(x * x)))
    res = oa.minimize(f, method="nelder_mead", bounds=bounds, budget=5)
    np.testing.assert_array_equal(seen[0], centre)
    assert res.x.dtype == torch.float64 and res.x.shape == (len(centre),)


@pytest.mark.parametrize(
    "bounds",
    [None, (-1, 1), [(-1, None), (0, 1)], Bounds(-1.0, 1.0), so.Bounds(-1.0, 1.0)],
)
def test_without_x0_bounds_that_give_no_centre_say_x0_is_required(bounds) -> None:
    with pytest.raises(ValueError, match="x0 is required"):
        oa.minimize(lambda x: (x * x).sum(), method="nelder_mead", bounds=bounds, budget=5)
