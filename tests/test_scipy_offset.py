"""The scipy methods' stopping rules do not move when a constant is added to f.

Every method whose class lives in ``optarena.methods.scipy`` runs with default options on a
function and on the same function + 1000, same seed. The values lie on a grid of 2^-30, so
f + 1000 is exact in float64 and so are differences of values: any difference between the two
runs comes from a rule of the method that looks at |f|, not from the rounding of the sum. The
shifted run must not stop earlier, and (where the method's arithmetic uses only comparisons
and differences of values) must evaluate the same points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.core.oracle import Oracle
from optarena.methods import get_method_class, method_infos
from optarena.methods.scipy._adapter import ScipyRun

OFFSET = 1e3
GRID = 2.0**30
BUDGET = 1500
SCIPY = sorted(
    i.name
    for i in method_infos()
    if get_method_class(i.name).__module__.startswith("optarena.methods.scipy.")
)
#: Methods whose stopping test is scipy's own relative one, kept as a user option with
#: scipy's default.
RELATIVE = {
    # ftol is L-BFGS-B's "relative reduction of f" (factr * epsmch against max(|f|, 1)),
    # with scipy's default 2.2e-9: users tune it as they do in scipy
    "lbfgsb": "scipy's ftol, relative to |f|, with scipy's default",
}
#: Methods that stop no earlier on f + c but do arithmetic in which f + c rounds otherwise.
ROUNDS = {
    # the interior point method minimizes f - mu * sum(log s): the sum rounds differently
    "trust_constr": "barrier terms are added to f",
}


def grid_rosenbrock(offset: float) -> oa.Objective:
    """Rosenbrock in d = 4 with values rounded to multiples of 2^-30 (its own gradient), +
    ``offset``; batched too."""

    def f(X: torch.Tensor) -> torch.Tensor:
        v = (100 * (X[..., 1:] - X[..., :-1] ** 2) ** 2 + (1 - X[..., :-1]) ** 2).sum(-1)
        q = torch.round(v.detach() * GRID) / GRID
        return v + (q - v.detach()) + offset

    return oa.Objective(lambda x: f(x[None])[0], batched=f, name="grid_rosenbrock")


def run(name: str, offset: float, budget: int = BUDGET, **options: object) -> oa.Result:
    x0 = torch.tensor([-1.2, 1.0, -1.2, 1.0], dtype=torch.float64)
    kw: dict[str, object] = {"budget": budget, "seed": 1, "record_x": True, **options}
    if get_method_class(name).info.supports_bounds:
        kw["bounds"] = (-3.0, 3.0)
    return oa.minimize(grid_rosenbrock(offset), x0, name, **kw)


def test_the_selection_covers_the_scipy_family() -> None:
    assert {"dual_annealing", "differential_evolution", "powell", "nelder_mead"} <= set(SCIPY)
    assert set(RELATIVE) | set(ROUNDS) <= set(SCIPY)


@pytest.mark.parametrize("name", [n for n in SCIPY if n not in RELATIVE])
def test_a_constant_added_to_f_stops_nothing_earlier(name: str) -> None:
    one, shifted = run(name, 0.0), run(name, OFFSET)
    assert shifted.nfev >= one.nfev, (one.message, shifted.message)
    assert shifted.stop_reason is one.stop_reason
    if name in ROUNDS:
        return
    assert shifted.nfev == one.nfev
    np.testing.assert_array_equal(one.history.x, shifted.history.x)
    assert shifted.fun - OFFSET == one.fun


@pytest.mark.parametrize(
    "options",
    [{}, {"local_ftol": 1e-6}, {"gradient": "none"}],
    ids=["exact_gradient", "loose_ftol", "differences"],
)
def test_dual_annealing_local_search_ignores_an_offset(options: dict[str, object]) -> None:
    # the local search's L-BFGS-B stopped on "relative reduction of f" against |f|: at
    # f + 1000 a thousand times earlier, with other points after it. (local_search_gradient
    # =False is scipy's own search, ftol relative to |f|, kept as plain scipy runs it.)
    options = dict(options)
    objective = {"gradient": options.pop("gradient", "autograd")}
    runs = []
    for offset in (0.0, OFFSET):
        f = grid_rosenbrock(offset)
        obj = oa.Objective(f.fn, batched=f.batched, name=f.name, **objective)
        x0 = torch.tensor([-1.2, 1.0, -1.2, 1.0], dtype=torch.float64)
        kw = {"bounds": (-3.0, 3.0), "budget": BUDGET, "seed": 1, "record_x": True}
        runs.append(oa.minimize(obj, x0, "dual_annealing", **kw, **options))
    one, shifted = runs
    assert one.nfev == shifted.nfev == BUDGET
    assert (one.ngev > 0) == (objective["gradient"] == "autograd")
    np.testing.assert_array_equal(one.history.x, shifted.history.x)
    assert shifted.fun - OFFSET == one.fun


def test_dual_annealing_numpy_function_ignores_an_offset() -> None:
    def numpy_fn(offset: float) -> oa.Objective:
        def f(x: np.ndarray) -> float:
            v = float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))
            return round(v * GRID) / GRID + offset

        return oa.Objective.from_numpy(f)

    x0 = np.array([-1.2, 1.0, -1.2, 1.0])
    kw = {"bounds": (-3.0, 3.0), "budget": 2000, "seed": 4, "record_x": True}
    one = oa.minimize(numpy_fn(0.0), x0, "dual_annealing", **kw)
    shifted = oa.minimize(numpy_fn(OFFSET), x0, "dual_annealing", **kw)
    np.testing.assert_array_equal(one.history.x, shifted.history.x)


def test_powell_default_does_not_stop_earlier_on_an_offset() -> None:
    # scipy's ftol test, 2 (f_old - f) <= ftol (|f_old| + |f|), fired a thousand times
    # earlier on f + 1000 with the former default ftol=1e-12 (1,615 against 1,773 evaluations)
    one, shifted = run("powell", 0.0, 4000), run("powell", OFFSET, 4000)
    assert one.stop_reason is oa.StopReason.CONVERGED
    assert shifted.nfev == one.nfev < 4000


@pytest.mark.parametrize("offset", [0.0, OFFSET])
def test_stall_watch_counts_gains_whatever_the_offset(offset: float) -> None:
    # gains of 2^-42 each: below 1e-15 * |f| at f ~ 1000, so the stall watch took them for no
    # gain and stopped a run still improving
    obj = oa.Objective.from_numpy(lambda x: float(x[0]) + offset)
    oracle = Oracle(obj, torch.zeros(1, dtype=torch.float64), oa.Budget(evals=100))
    watch = ScipyRun(oracle, stall=2)
    for k in range(40):
        x = np.array([-k * 2.0**-42])
        f = oracle.value_array(x)
        assert math.isfinite(f)
        watch.seen(x, f)  # raises _Stalled (a StopRun) when it takes the run for stalled
    assert oracle.nfev == 40
