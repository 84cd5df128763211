"""dual_annealing and differential_evolution: SEEDS.md targets, exact budgets, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.problems import get

F_STAR = 0.783054161501  # certified global minimum of mlp_identity (SEEDS.md section 1)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread; several threads contend on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- dual annealing: the tutorial's problem --------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dual_annealing_gradient_free_matches_tutorial(seed: int) -> None:
    """Tutorial settings (initial_temp=1, random start, finite-difference local search):
    the tutorial printed 0.78342942 after about 2,600 evaluations."""
    res = oa.minimize(
        get("mlp_identity"),
        method="dual_annealing",
        budget=2600,
        seed=seed,
        initial_temp=1.0,
        local_search_gradient=False,
        start="random",
    )
    assert res.fun <= 0.7835
    assert res.nfev == 2600
    assert res.ngev == 0
    assert res.stop_reason is oa.StopReason.MAX_EVALS


@pytest.mark.parametrize("seed", range(10))
def test_dual_annealing_exact_gradient_reaches_certified_minimum(seed: int) -> None:
    """SEEDS.md: with the exact gradient in its local search, f* (1e-6) within 1,000
    evaluations, on every seed (40 of 40 measured, at most 907 evaluations)."""
    res = oa.minimize(
        get("mlp_identity"),
        method="dual_annealing",
        budget=oa.Budget(evals=1000, target=F_STAR * (1 + 1e-6)),
        seed=seed,
    )
    assert res.stop_reason is oa.StopReason.TARGET_REACHED
    assert res.fun <= F_STAR * (1 + 1e-6)
    assert res.nfev <= 1000
    assert res.ngev > 0  # the local search used value_and_grad, not finite differences


def test_dual_annealing_gradient_free_when_objective_has_no_gradient() -> None:
    obj = oa.Objective.from_numpy(lambda x: float(((x - 0.3) ** 2).sum()))
    res = oa.minimize(obj, np.zeros(3), "dual_annealing", bounds=(-1, 1), budget=300, seed=0)
    assert res.ngev == 0
    assert res.fun < 1e-6


def test_dual_annealing_local_search_gradient_true_needs_a_gradient() -> None:
    calls = []
    obj = oa.Objective.from_numpy(lambda x: calls.append(1) or float((x**2).sum()))
    with pytest.raises(ValueError, match="local_search_gradient=True needs"):
        oa.minimize(obj, np.zeros(2), "dual_annealing", bounds=(-1, 1), local_search_gradient=True)
    assert not calls


def test_dual_annealing_non_finite_probe_ends_only_the_local_search() -> None:
    """The smooth part pulls the local search into a NaN region; the run must go on."""

    def fn(x: torch.Tensor) -> torch.Tensor:
        f = ((x - 1.0) ** 2).sum()
        return f * torch.nan if float(x.detach()[0]) > 0.5 else f

    res = oa.minimize(
        fn,
        torch.zeros(2, dtype=torch.float64),
        "dual_annealing",
        bounds=(-2, 2),
        budget=400,
        seed=1,
    )
    assert res.stop_reason is oa.StopReason.MAX_EVALS
    assert res.nfev == 400
    assert res.ngev > 0
    h = res.history
    gradient_step = np.diff(np.r_[0, h.grad_evals]) == 1
    bad_probes = np.flatnonzero(np.isnan(h.f) & gradient_step)
    assert bad_probes.size > 0  # the local search did probe the NaN region with the gradient
    assert bad_probes[0] < res.nfev - 100  # and the run went on well after the first such probe
    assert math.isfinite(res.fun) and float(res.x[0]) <= 0.5
    assert res.fun < 0.5  # the infimum 0.25 is on the NaN region's edge; f(x0) = 2


def test_dual_annealing_all_non_finite_ends_cleanly_after_scipy_gives_up() -> None:
    res = oa.minimize(
        lambda x: x.sum() * torch.nan, torch.zeros(2), "dual_annealing", bounds=(-1, 1), budget=5000
    )
    assert res.stop_reason is oa.StopReason.NO_FINITE_VALUE
    assert res.nfev == 1001  # x0, then scipy's 1,000 random restarts
    assert res.fun == math.inf


def test_dual_annealing_start_option() -> None:
    x0 = torch.tensor([0.25, -0.5], dtype=torch.float64)
    sphere = lambda x: (x**2).sum()  # noqa: E731
    given = oa.minimize(sphere, x0, "dual_annealing", bounds=(-1, 1), budget=5, seed=0)
    rand = oa.minimize(
        sphere, x0, "dual_annealing", bounds=(-1, 1), budget=5, seed=0, start="random"
    )
    np.testing.assert_array_equal(given.history.x[0], x0.numpy())
    assert not np.array_equal(rand.history.x[0], x0.numpy())
    assert np.all(np.abs(rand.history.x) <= 1.0)


def test_dual_annealing_needs_a_proper_box() -> None:
    calls = []

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return (x**2).sum()

    x0 = torch.zeros(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="lower < upper"):
        # two tensors are always (lower, upper); two lists of two could be scipy's pairs
        box = (torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 0.0]))
        oa.minimize(fn, x0, "dual_annealing", bounds=box)
    with pytest.raises(ValueError, match="finite bounds"):
        oa.minimize(fn, x0, "dual_annealing", bounds=(-math.inf, 1))
    with pytest.raises(ValueError, match="finite bounds"):
        oa.minimize(fn, x0, "differential_evolution", bounds=(-1, math.inf))
    assert not calls


# -- exact budgets -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("dual_annealing", {}),
        ("dual_annealing", {"local_search_gradient": False}),
        ("dual_annealing", {"no_local_search": True}),
        ("differential_evolution", {"tol": 0.0}),
        ("differential_evolution", {"tol": 0.0, "init": "sobol", "strategy": "rand1exp"}),
    ],
)
def test_budget_is_spent_exactly(method: str, options: dict) -> None:
    res = oa.minimize(get("rastrigin", dim=5), method=method, budget=777, seed=3, **options)
    assert res.nfev == 777
    assert len(res.history) == 777
    assert res.stop_reason is oa.StopReason.MAX_EVALS


# -- differential evolution --------------------------------------------------------------------
class BatchRecorder:
    """A batched sphere that records the size of every call."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        self.sizes.append(int(X.shape[0]))
        return ((X - 0.2) ** 2).sum(dim=1)


@pytest.mark.parametrize(("init", "members"), [("latinhypercube", 12), ("sobol", 16)])
def test_de_one_batched_call_per_generation(init: str, members: int) -> None:
    rec = BatchRecorder()
    obj = oa.Objective(lambda x: ((x - 0.2) ** 2).sum(), batched=rec, chunk_size=1024)
    generations = []
    res = oa.minimize(
        obj,
        torch.zeros(3, dtype=torch.float64),
        "differential_evolution",
        bounds=(-1, 1),
        budget=500,
        seed=0,
        popsize=4,
        init=init,
        tol=0,
        ftol=0,  # generations only: no value test, so no polish between them
        polish=False,
        callback=lambda info: generations.append(info.iteration),
    )
    # The start point alone, the rest of the first population, then one call per generation.
    assert rec.sizes[:2] == [1, members - 1]
    assert all(s == members for s in rec.sizes[2:-1])
    assert 0 < rec.sizes[-1] <= members
    assert sum(rec.sizes) == res.nfev == 500
    assert len(generations) == len(rec.sizes) - 3  # the last call was cut by the budget


def test_de_converges_and_polish_uses_the_exact_gradient() -> None:
    p = get("sphere", dim=3)
    opts = {
        "method": "differential_evolution",
        "budget": 20_000,
        "seed": 1,
        "atol": 1e-4,
        "restart": False,
    }
    plain = oa.minimize(p, polish=False, **opts)
    polished = oa.minimize(p, polish=True, **opts)
    assert plain.stop_reason is oa.StopReason.CONVERGED
    assert plain.ngev == 0
    assert polished.stop_reason is oa.StopReason.CONVERGED
    assert polished.ngev > 0
    assert polished.nfev > plain.nfev
    np.testing.assert_array_equal(polished.history.f[: plain.nfev], plain.history.f)
    assert polished.fun < 1e-12 < plain.fun


def test_de_polish_without_a_gradient_uses_counted_differences() -> None:
    calls = []

    def f(x: np.ndarray) -> float:
        calls.append(x.copy())
        return float(((x - 0.3) ** 2 * [1.0, 100.0]).sum())

    kw = {"bounds": (-1, 1), "budget": 20_000, "seed": 0, "restart": False, "ftol": 1e-3}
    plain = oa.minimize(oa.Objective.from_numpy(f), np.zeros(2), "differential_evolution",
                        polish=False, **kw)  # fmt: skip
    n_plain = len(calls)
    res = oa.minimize(oa.Objective.from_numpy(f), np.zeros(2), "differential_evolution", **kw)
    assert res.stop_reason is oa.StopReason.CONVERGED
    assert res.nfev == len(calls) - n_plain and res.nfev > plain.nfev
    assert res.ngev > 0  # forward-difference gradients, each 1 + d counted evaluations
    np.testing.assert_array_equal(res.history.f[: plain.nfev], plain.history.f)
    assert res.fun < 1e-9 < plain.fun


def test_de_finds_rastrigin_global_minimum() -> None:
    res = oa.minimize(get("rastrigin", dim=2), method="differential_evolution", budget=3000, seed=0)
    assert res.fun < 1e-6


def test_de_accepts_equal_bounds() -> None:
    res = oa.minimize(
        lambda x: ((x - 0.3) ** 2).sum(),
        torch.zeros(3, dtype=torch.float64),
        "differential_evolution",
        bounds=([-1, 0, -1], [1, 0, 1]),
        budget=300,
        seed=0,
    )
    assert np.all(res.history.x[:, 1] == 0.0)


@pytest.mark.parametrize("method", ["dual_annealing", "differential_evolution"])
def test_start_on_the_bounds(method: str) -> None:
    """x0 on a bound (scipy's [0, 1] rescaling can push it just outside) is accepted as is."""
    lo, hi = np.array([-0.3, 0.1, -7.1]), np.array([0.9, 0.7, 3.3])
    for x0 in (lo, hi):
        res = oa.minimize(lambda x: (x**2).sum(), x0, method, bounds=(lo, hi), budget=30, seed=0)
        np.testing.assert_array_equal(res.history.x[0], x0)
        assert res.nfev == 30


@pytest.mark.parametrize("method", ["dual_annealing", "differential_evolution"])
def test_callback_can_stop_the_run(method: str) -> None:
    seen = []

    def callback(info: oa.IterationInfo) -> bool:
        seen.append(info.nfev)
        return True

    res = oa.minimize(
        get("rastrigin", dim=3), method=method, budget=5000, seed=0, callback=callback
    )
    assert res.stop_reason is oa.StopReason.CALLBACK
    assert res.nfev == seen[-1]


# -- hyperparameters ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("dual_annealing", {"initial_temp": 0.0}),
        ("dual_annealing", {"initial_temp": 1e6}),
        ("dual_annealing", {"initial_temp": math.nan}),
        ("dual_annealing", {"restart_temp_ratio": 0.0}),
        ("dual_annealing", {"restart_temp_ratio": 1.0}),
        ("dual_annealing", {"visit": 1.0}),
        ("dual_annealing", {"visit": 3.0}),
        ("dual_annealing", {"accept": 0.0}),
        ("dual_annealing", {"accept": -2e4}),
        ("dual_annealing", {"local_search_gradient": "yes"}),
        ("dual_annealing", {"no_local_search": True, "local_search_gradient": True}),
        ("dual_annealing", {"no_local_search": 1}),
        ("dual_annealing", {"local_ftol": -1.0}),
        ("dual_annealing", {"local_gtol": math.inf}),
        ("dual_annealing", {"start": "middle"}),
        ("differential_evolution", {"strategy": "best3bin"}),
        ("differential_evolution", {"popsize": 0}),
        ("differential_evolution", {"popsize": 2.5}),
        ("differential_evolution", {"popsize": True}),
        ("differential_evolution", {"mutation": 2.0}),
        ("differential_evolution", {"mutation": -0.1}),
        ("differential_evolution", {"mutation": (0.5, 2.5)}),
        ("differential_evolution", {"mutation": (1.0, 0.5)}),
        ("differential_evolution", {"mutation": (0.1, 0.2, 0.3)}),
        ("differential_evolution", {"recombination": 1.5}),
        ("differential_evolution", {"init": "grid"}),
        ("differential_evolution", {"tol": -1.0}),
        ("differential_evolution", {"atol": math.nan}),
        ("differential_evolution", {"polish": "yes"}),
    ],
)
def test_bad_hyperparameters_raise_value_error(method: str, options: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(options))):
        oa.minimize(lambda x: (x**2).sum(), torch.zeros(2), method, bounds=(-1, 1), **options)


def test_mutation_range_is_stored_as_a_tuple() -> None:
    from optarena.methods import get_method_class

    m = get_method_class("differential_evolution")(mutation=[0.4, 0.9])
    assert m.mutation == (0.4, 0.9)
    assert hash(m) == hash(get_method_class("differential_evolution")(mutation=(0.4, 0.9)))


def test_local_search_restarts_where_lbfgsb_stalls() -> None:
    """From this start (dual annealing's first local search at seed 6, initial_temp=1),
    L-BFGS-B stops on "relative reduction of f" 2.9e-5 above the minimum, at a ReLU kink in
    an ill-conditioned valley; restarts with a fresh memory go on to within 1e-6 of f*."""
    import scipy.optimize as so

    from optarena.core.oracle import Oracle
    from optarena.methods import RunContext
    from optarena.methods.scipy._local_search import local_lbfgsb

    start = np.array(
        [0.6108213983060409, -0.42971861441435166, -0.42927922158851217, 0.6693822473740481,
         0.0012991282823158201, 0.08112703433352131, -0.7107590841660567, 0.5853943338402843,
         -0.7705655952311146, 0.20558294464319715]
    )  # fmt: skip
    lo, hi = -np.ones(10), np.ones(10)
    obj = get("mlp_identity").objective()

    def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = obj._value_and_grad(torch.tensor(x))
        return f, g.numpy()

    opts = {"maxiter": 660, "ftol": 1e-12, "gtol": 1e-8}
    bounds = so.Bounds(lo, hi)
    plain = so.minimize(fg, start, jac=True, method="L-BFGS-B", bounds=bounds, options=opts)
    # where plain L-BFGS-B stalls depends on the CPU's rounding (it reaches f* with the
    # portable kernels of ATEN_CPU_CAPABILITY=default); the restarted search must reach f*
    # either way, and does strictly better where the plain one stalls
    stalled = plain.fun > F_STAR * (1 + 1e-5)
    x0 = torch.from_numpy(start)
    oracle = Oracle(obj, x0, oa.Budget(evals=2000))
    box = torch.from_numpy(lo), torch.from_numpy(hi)
    ctx = RunContext(x0=x0, lower=box[0], upper=box[1], constraints=(), seed=0)
    res = local_lbfgsb(oracle, ctx, start, lo, hi, maxiter=660, ftol=1e-12, gtol=1e-8)
    assert res.fun <= F_STAR * (1 + 1e-6)
    assert res.fun < plain.fun or not stalled
    assert oracle.best_f == res.fun
    assert oracle.nfev < 400


GRID = 2.0**40  # values on this grid: f + 1000 is exact in float64


def grid_objective(offset: float, rastrigin: bool = False) -> oa.Objective:
    """The sphere (or Rastrigin) + offset with values rounded to multiples of 2^-40."""

    def f(X: torch.Tensor) -> torch.Tensor:
        v = (X * X).sum(-1)
        if rastrigin:
            v = v + 10 * X.shape[-1] - 10 * torch.cos(2 * math.pi * X).sum(-1)
        return torch.round(v * GRID) / GRID + offset

    return oa.Objective(lambda x: f(x[None])[0], batched=f)


def test_de_stopping_rules_ignore_an_offset() -> None:
    # selection compares values, the tests look at positions and value spreads: f + 1000
    # (exact on the grid) converges at the same generation after the same points
    x0 = torch.full((3,), 0.5, dtype=torch.float64)
    kw = {"bounds": (-1.0, 1.0), "seed": 0, "budget": 200_000, "restart": False, "polish": False}
    one = oa.minimize(grid_objective(0.0), x0, "differential_evolution", **kw)
    shifted = oa.minimize(grid_objective(1e3), x0, "differential_evolution", **kw)
    assert one.stop_reason is shifted.stop_reason is oa.StopReason.CONVERGED
    np.testing.assert_array_equal(one.history.x, shifted.history.x)
    assert shifted.fun - 1e3 == one.fun


def test_de_default_converges_polishes_and_restarts_with_budget_left() -> None:
    def sphere(X: torch.Tensor) -> torch.Tensor:
        return (X * X).sum(-1)

    obj = oa.Objective(lambda x: sphere(x[None])[0], batched=sphere)
    x0 = torch.full((3,), 0.5, dtype=torch.float64)
    kw = {"bounds": (-1.0, 1.0), "seed": 0, "budget": 200_000}
    one = oa.minimize(obj, x0, "differential_evolution", restart=False, **kw)
    # scipy's relative tol=0.01 stopped it at 0.0101 after 210 evaluations; the value spread
    # test ends the population, the polish (exact gradient) finishes the minimum
    assert one.stop_reason is oa.StopReason.CONVERGED
    assert one.fun < 1e-20 and one.ngev > 0
    res = oa.minimize(obj, x0, "differential_evolution", **{**kw, "budget": 3 * one.nfev})
    assert res.nfev == 3 * one.nfev and res.stop_reason is oa.StopReason.MAX_EVALS
    np.testing.assert_array_equal(res.history.f[: one.nfev], one.history.f)


def test_de_default_spends_the_budget_whatever_the_offset() -> None:
    lo = torch.full((5,), -5.12, dtype=torch.float64)
    x0 = torch.full((5,), 3.3, dtype=torch.float64)
    for offset in (0.0, 1e3):
        obj = grid_objective(offset, rastrigin=True)
        res = oa.minimize(obj, x0, "differential_evolution", bounds=(lo, -lo), budget=5000, seed=3)
        assert res.nfev == 5000 and len(res.history) == 5000, res.message
        assert res.stop_reason is oa.StopReason.MAX_EVALS
