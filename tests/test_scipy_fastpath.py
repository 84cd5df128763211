"""The one-point-at-a-time path of the scipy methods (numpy from scipy to the objective).

``Oracle.value_array`` and the scipy adapter's ``ScipyPoints`` evaluate scipy's points without
a tensor per call when the run is float64 on the CPU. These tests check that the path keeps
every guarantee of the general one, on numpy and torch objectives: counts equal real calls,
the budget is exact, History rows are the points evaluated and their values, the best point
is one of them, NaN ranks +inf, bounds hold, and the objective cannot corrupt the record.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import scipy.optimize as so
import torch
from torch.overrides import TorchFunctionMode

import optarena as oa
from optarena.budget import Budget
from optarena.core.evaluator import Evaluator
from optarena.core.oracle import Oracle, StopRun
from optarena.core.scope import CAP_SPENT, Scope, ScopeEnded
from optarena.methods.scipy._adapter import ScipyPoints

METHODS = ("nelder_mead", "powell", "dual_annealing", "cobyla")
KINDS = ("numpy", "torch")
BOX = (-2.0, 2.0)


class Calls:
    """Rosenbrock's function that keeps a copy of every point it is given and its value."""

    def __init__(self, kind: str, nan_above: float | None = None) -> None:
        self.kind = kind
        self.nan_above = nan_above
        self.points: list[np.ndarray] = []
        self.values: list[float] = []

    def __call__(self, x):
        if self.kind == "torch":
            assert isinstance(x, torch.Tensor)
            xn = x.detach().numpy().copy()
        else:
            assert isinstance(x, np.ndarray)
            xn = x.copy()
        f = float(np.sum(100.0 * (xn[1:] - xn[:-1] ** 2) ** 2 + (1.0 - xn[:-1]) ** 2))
        if self.nan_above is not None and xn[0] > self.nan_above:
            f = math.nan
        self.points.append(xn)
        self.values.append(f)
        if self.kind == "torch":
            return torch.tensor(f, dtype=torch.float64)
        return f

    def objective(self) -> oa.Objective:
        if self.kind == "numpy":
            return oa.Objective.from_numpy(self)
        return oa.Objective(self, gradient="none", vectorize=False)


def _run(method: str, fn: Calls, budget: int | Budget, d: int = 3, **kw) -> oa.Result:
    opts: dict = {"seed": 3, "record_x": True}
    if method == "dual_annealing":
        opts["bounds"] = BOX
        opts["local_search_gradient"] = False
    opts.update(kw)
    x0 = np.linspace(-1.2, 1.0, d)
    return oa.minimize(fn.objective(), x0, method, budget=budget, **opts)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_counts_budget_and_history_are_the_real_calls(method: str, kind: str) -> None:
    fn = Calls(kind)
    res = _run(method, fn, 150)
    assert res.nfev == len(fn.points) <= 150
    if method == "dual_annealing":  # a global method spends its whole budget
        assert res.nfev == 150
    h = res.history
    assert len(h) == res.nfev
    np.testing.assert_array_equal(h.x, np.array(fn.points))
    np.testing.assert_array_equal(h.f, np.array(fn.values))
    assert list(h.evals) == list(range(1, res.nfev + 1))
    assert np.all(np.diff(h.seconds) >= 0)
    # the best point is an evaluated one, with its value, the lowest seen
    i = int(np.argmin(h.f))
    assert res.fun == h.f[i] == h.best_f[-1]
    assert res.best_eval == i + 1
    np.testing.assert_array_equal(res.x.numpy(), h.x[i])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ("nelder_mead", "powell"))
def test_points_are_the_ones_scipy_asks_for(method: str, kind: str) -> None:
    """Unbounded, the run evaluates exactly scipy's own sequence of points."""
    fn = Calls(kind)
    res = _run(method, fn, 300)
    asked: list[np.ndarray] = []

    def reference(x: np.ndarray) -> float:
        asked.append(np.array(x))
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

    opts = {"maxfev": res.nfev, "maxiter": 10**9}
    if method == "nelder_mead":
        opts |= {"xatol": 1e-8, "fatol": 1e-12, "adaptive": True}
        so.minimize(reference, np.linspace(-1.2, 1.0, 3), method="Nelder-Mead", options=opts)
    else:
        opts |= {"xtol": 1e-8, "ftol": 1e-12}
        so.minimize(reference, np.linspace(-1.2, 1.0, 3), method="Powell", options=opts)
    np.testing.assert_array_equal(res.history.x, np.array(asked[: res.nfev]))


@pytest.mark.parametrize("method", METHODS)
def test_budget_is_exact_and_stops_mid_iteration(method: str) -> None:
    for budget in (1, 2, 7, 23):
        fn = Calls("numpy")
        res = _run(method, fn, budget, d=4)
        assert res.nfev == len(fn.points) == len(res.history)
        assert res.nfev <= budget
        if res.stop_reason is oa.StopReason.MAX_EVALS:
            assert res.nfev == budget


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_bounds_hold_at_every_evaluation(method: str, kind: str) -> None:
    fn = Calls(kind)
    lo, hi = np.array([0.5, -2.0, 0.4]), np.array([2.0, 2.0, 0.6])
    x0 = np.array([1.0, -1.0, 0.5])
    kw: dict = {"seed": 1, "record_x": True}
    if method == "dual_annealing":
        kw["local_search_gradient"] = False
    res = oa.minimize(fn.objective(), x0, method, bounds=(lo, hi), budget=120, **kw)
    pts = np.array(fn.points)
    assert (pts >= lo).all() and (pts <= hi).all()
    np.testing.assert_array_equal(res.history.x, pts)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_nan_values_rank_as_inf(method: str, kind: str) -> None:
    fn = Calls(kind, nan_above=-1.0)
    res = _run(method, fn, 120)
    f = res.history.f
    assert np.isnan(f).any()  # the raw values are kept
    assert math.isfinite(res.fun) and res.fun == np.nanmin(f)
    assert float(res.x[0]) <= -1.0
    best = res.history.best_f
    assert np.all(np.diff(best[np.isfinite(best)]) <= 0)


@pytest.mark.parametrize("method", METHODS)
def test_numpy_objective_cannot_corrupt_the_record(method: str) -> None:
    clean = Calls("numpy")

    def vandal(x: np.ndarray) -> float:
        f = clean(x)
        x += 1e6  # scribbles on the array it was given
        return f

    a = _run(method, Calls("numpy"), 80)
    b = oa.minimize(
        oa.Objective.from_numpy(vandal),
        np.linspace(-1.2, 1.0, 3),
        method,
        budget=80,
        seed=3,
        record_x=True,
        **({"bounds": BOX, "local_search_gradient": False} if method == "dual_annealing" else {}),
    )
    np.testing.assert_array_equal(a.history.x, b.history.x)
    np.testing.assert_array_equal(a.history.f, b.history.f)
    assert torch.equal(a.x, b.x)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_history_on_numpy(method: str) -> None:
    runs = [_run(method, Calls("numpy"), 100) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].history.x, runs[1].history.x)
    np.testing.assert_array_equal(runs[0].history.f, runs[1].history.f)


@pytest.mark.parametrize("method", ("nelder_mead", "powell"))
def test_float32_run_takes_the_general_path_with_the_same_guarantees(method: str) -> None:
    fn = Calls("torch")
    x0 = torch.tensor([-1.2, 1.0, 0.5], dtype=torch.float32)
    res = oa.minimize(fn.objective(), x0, method, budget=60, record_x=True)
    assert res.x.dtype == torch.float32
    assert res.nfev == len(fn.points)
    np.testing.assert_array_equal(res.history.x, np.array(fn.points, dtype=np.float64))


@pytest.mark.parametrize("method", ("nelder_mead", "powell"))
def test_plain_numpy_function_probe_is_counted_once(method: str) -> None:
    """minimize(f) on a plain numpy function decides its kind at the first call (the probe):
    that call is the first evaluation, and the fast path takes over after it. The call with a
    tensor, which raised before the call with numpy, is counted too (value NaN)."""
    fn = Calls("numpy")
    calls = []

    def plain(x):
        calls.append(type(x))
        return fn(np.asarray(x, dtype=np.float64))

    x0 = np.array([-1.2, 1.0, 0.5])
    res = oa.minimize(plain, x0, method, budget=50, record_x=True)
    assert res.nfev == len(calls) == len(fn.points) + 1 == len(res.history)
    assert calls[0] is torch.Tensor and np.isnan(res.history.f[0])
    np.testing.assert_array_equal(res.history.x, np.array([x0, *fn.points]))


def test_exception_in_numpy_objective_names_index_and_keeps_best() -> None:
    calls = {"n": 0}

    def boom(x: np.ndarray) -> float:
        calls["n"] += 1
        if calls["n"] == 6:
            raise ZeroDivisionError("boom")
        return float(x @ x)

    with pytest.raises(oa.ObjectiveError) as err:
        oa.minimize(oa.Objective.from_numpy(boom), np.ones(3), "nelder_mead", budget=50)
    e = err.value
    assert e.evaluation == 6 and isinstance(e.__cause__, ZeroDivisionError)
    assert e.result is not None and e.result.nfev == 5 and len(e.result.history) == 5
    assert math.isfinite(e.result.fun)


def test_non_scalar_value_is_refused_as_on_the_general_path() -> None:
    with pytest.raises(oa.ObjectiveError, match="scalar"):
        oa.minimize(oa.Objective.from_numpy(lambda x: x * 2.0), np.ones(3), "powell", budget=9)


def test_target_and_seconds_budgets_on_the_fast_path() -> None:
    res = oa.minimize(
        oa.Objective.from_numpy(lambda x: float(x @ x)),
        np.ones(3),
        "nelder_mead",
        budget=Budget(evals=5000, target=0.5),
    )
    assert res.stop_reason is oa.StopReason.TARGET_REACHED
    assert res.fun <= 0.5 and res.history.f[-1] == res.fun

    def slow(x: np.ndarray) -> float:
        time.sleep(0.002)
        return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))

    res = oa.minimize(
        oa.Objective.from_numpy(slow),
        np.full(6, -1.0),
        "nelder_mead",
        budget=Budget(seconds=0.1),
        stall=None,
    )
    assert res.stop_reason is oa.StopReason.MAX_SECONDS
    assert len(res.history) == res.nfev


def test_oracle_value_array_counts_records_and_keeps_the_point() -> None:
    obj = oa.Objective.from_numpy(lambda x: float(x @ x) if x[0] < 5 else math.nan)
    oracle = Oracle(obj, torch.zeros(2, dtype=torch.float64), Budget(evals=4))
    pts = [np.array([1.0, 2.0]), np.array([0.5, 0.0]), np.array([9.0, 0.0])]
    assert [oracle.value_array(p) for p in pts] == [5.0, 0.25, math.inf]
    assert oracle.nfev == 3 and oracle.best_eval == 2 and oracle.best_f == 0.25
    np.testing.assert_array_equal(oracle.best_x.numpy(), [0.5, 0.0])
    assert oracle.last_f == math.inf
    np.testing.assert_array_equal(oracle.history.x, np.array(pts))
    np.testing.assert_array_equal(oracle.history.f, [5.0, 0.25, math.nan])
    # a point of another dtype or shape takes the general path (copied, checked)
    assert oracle.value_array(np.array([0.0, 0.0], dtype=np.float32)) == 0.0
    with pytest.raises(StopRun):
        oracle.value_array(np.zeros(2))
    assert oracle.nfev == 4 and len(oracle.history) == 4


def test_composite_sub_runs_count_every_call() -> None:
    """multistart hands nelder_mead a scoped view of the Oracle: counts still hold."""
    fn = Calls("numpy")
    res = oa.minimize(
        fn.objective(),
        np.array([-1.2, 1.0, 0.5]),
        "multistart",
        bounds=BOX,
        budget=200,
        seed=0,
        record_x=True,
        local="nelder_mead",
    )
    assert res.nfev == len(fn.points) == len(res.history)
    np.testing.assert_array_equal(res.history.x, np.array(fn.points))


class TorchCalls(TorchFunctionMode):
    """Counts the torch functions and tensor methods called while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("method", ("nelder_mead", "powell", "dual_annealing"))
def test_numpy_objective_makes_no_tensor_per_evaluation(method: str) -> None:
    """A numpy function is evaluated on numpy arrays from scipy to the objective: the torch
    work of a run (set-up, the result) does not grow with the number of evaluations."""
    counts = []
    for budget in (60, 600):
        fn = Calls("numpy")
        extra = {} if method == "dual_annealing" else {"stall": None}
        with TorchCalls() as calls:
            res = _run(method, fn, budget, d=4, **extra)
        assert res.nfev == len(fn.points)
        counts.append((calls.n, res.nfev))
    (small, n_small), (large, n_large) = counts
    assert n_large > n_small + 100
    assert large - small < 10, counts


# -- inside composites: a Scope forwards numpy points to the Oracle -------------------------


@pytest.fixture
def general_path(monkeypatch: pytest.MonkeyPatch):
    """Within a test, a function that runs its argument with every scipy point taken through
    the general path (a tensor per point, ``evaluator.value``), as before the fast path."""

    def run(thunk):
        init = ScipyPoints.__init__

        def general(self, *args, **kwargs) -> None:
            init(self, *args, **kwargs)
            self._lean = False

        with monkeypatch.context() as m:
            m.setattr(ScipyPoints, "__init__", general)
            return thunk()

    return run


COMPOSITES = {
    "chain_nelder_mead": ("chain", {"phases": ("random_search", "nelder_mead")}),
    "chain_powell": ("chain", {"phases": ("pso", "powell"), "switch": 0.3}),
    "multistart_nelder_mead": ("multistart", {"local": "nelder_mead", "starts": 4}),
    "multistart_powell": ("multistart", {"local": "powell", "starts": 4, "dedup": 0.0}),
    "multistart_capped": ("multistart", {"local": "nelder_mead", "start_evals": 37}),
}


def _composite(name: str, fn: Calls, budget: int, d: int = 4) -> oa.Result:
    method, opts = COMPOSITES[name]
    x0 = np.linspace(-1.2, 1.0, d)
    return oa.minimize(
        fn.objective(), x0, method, bounds=BOX, budget=budget, seed=5, record_x=True, **opts
    )


def _same_run(a: oa.Result, b: oa.Result) -> None:
    assert a.nfev == b.nfev and a.stop_reason is b.stop_reason
    np.testing.assert_array_equal(a.history.x, b.history.x)
    np.testing.assert_array_equal(a.history.f, b.history.f)
    np.testing.assert_array_equal(a.history.best_f, b.history.best_f)
    assert torch.equal(a.x, b.x) and a.fun == b.fun and a.best_eval == b.best_eval
    assert a.info == b.info  # the sub-runs' starts, values, evaluations and how each ended


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_fast_path_runs_as_the_general_path(name: str, general_path) -> None:
    """Seeded composite runs with nelder_mead / powell inside, on the fast and the general
    path: the same points, values, counts, History, caps and sub-run records."""
    fn = Calls("numpy")
    fast = _composite(name, fn, 700)
    assert fast.nfev == len(fn.points) == len(fast.history)
    np.testing.assert_array_equal(fast.history.x, np.array(fn.points))
    slow = general_path(lambda: _composite(name, Calls("numpy"), 700))
    _same_run(fast, slow)
    if name == "multistart_capped":  # each start's cap ended it mid-run, then the next began
        assert fast.info["ended"].get(CAP_SPENT, 0) >= 2
        assert max(fast.info["start_evals"]) == 37


class Counted(Calls):
    """Calls that also notes, at each call, how many torch calls a ``TorchCalls`` has seen."""

    def __init__(self, torch_calls: TorchCalls) -> None:
        super().__init__("numpy")
        self.torch_calls = torch_calls
        self.marks: list[int] = []

    def __call__(self, x):
        self.marks.append(self.torch_calls.n)
        return super().__call__(x)


def _torch_between_calls(name: str, path) -> tuple[oa.Result, np.ndarray]:
    """A composite run, and for each evaluation after the first whether torch was called
    since the previous evaluation."""
    with TorchCalls() as calls:
        fn = Counted(calls)
        res = path(lambda: _composite(name, fn, 1400))
    assert res.nfev == len(fn.points) == len(fn.marks)
    return res, np.diff(fn.marks) > 0


@pytest.mark.parametrize("name", ["chain_nelder_mead", "chain_powell"])
def test_chain_local_phase_makes_no_tensor_per_evaluation(name: str, general_path) -> None:
    """In a chain's local phases nelder_mead and powell hand numpy points through the Scope to
    the Oracle: no torch call between two of their evaluations (the general path makes
    some before every one)."""
    for path, most in ((lambda run: run(), 0.0), (general_path, 1.0)):
        res, torch_before = _torch_between_calls(name, path)
        local = [p for p in res.info["phases"] if p["method"] in ("nelder_mead", "powell")]
        assert sum(p["last_eval"] - p["first_eval"] for p in local) > 300
        for p in local:  # evaluation e is entry e - 2 of torch_before
            between = torch_before[p["first_eval"] - 1 : p["last_eval"] - 1]
            assert between.mean() == most, (p, between.mean())


def test_multistart_starts_make_no_tensor_per_evaluation(general_path) -> None:
    """Inside multistart, powell's evaluations make no torch call: only the set-up of each
    start does (its duplicate watch, which compares tensors, is off here)."""
    res, torch_before = _torch_between_calls("multistart_powell", lambda run: run())
    assert res.nfev == 1400 and res.info["starts"] == 4
    assert torch_before.sum() <= 4 * res.info["starts"], torch_before.sum()
    _, general = _torch_between_calls("multistart_powell", general_path)
    assert general.all()


def _scoped(cap: int | None, watch=None, budget: int = 50) -> tuple[Oracle, Scope, Scope]:
    obj = oa.Objective.from_numpy(lambda x: float(x @ x) if x[0] < 5 else math.nan)
    oracle = Oracle(obj, torch.zeros(2, dtype=torch.float64), Budget(evals=budget))
    outer = Scope(oracle, cap=None if cap is None else cap + 1)
    return oracle, outer, Scope(outer, cap=cap, watch=watch)


POINTS = [[1.0, 2.0], [9.0, 0.0], [0.5, 0.0], [0.25, 0.0], [0.75, 0.0], [0.0, 0.1]]


def _scope_record(cap: int | None, fast: bool) -> tuple:
    """Everything a (nested) Scope and its Oracle keep after evaluating POINTS one by one."""
    seen: list[tuple[int, float, float]] = []
    oracle, outer, scope = _scoped(cap, lambda s: seen.append((s.used, s.best_f, s.last_f)))
    assert isinstance(scope, Evaluator)
    got, ended = [], None
    try:
        for p in POINTS:
            x = np.array(p)
            got.append(scope.value_array(x) if fast else scope.value(torch.from_numpy(x)))
    except ScopeEnded as e:
        ended = (e.why, e.scope is scope)
    assert scope.best_x is None or scope.best_x.dtype == torch.float64
    kept = (scope.used, scope.best_f, scope.best_eval, scope.first_f, scope.last_f)
    parents = (outer.best_f, outer.used, oracle.nfev, oracle.best_eval, oracle.best_f)
    rows = (oracle.history.x.tolist(), oracle.history.f.tolist(), oracle.history.best_f.tolist())
    return got, ended, seen, kept, parents, scope.best()[0].tolist(), rows


@pytest.mark.parametrize("cap", [None, 1, 4])
def test_scope_value_array_keeps_what_value_keeps(cap: int | None) -> None:
    """A (nested) Scope's value_array counts, caps, watches and keeps its best, first and last
    value exactly as value does for the same points; the cap ends the sub-run the same way."""
    fast, slow = _scope_record(cap, True), _scope_record(cap, False)
    np.testing.assert_equal(fast, slow)  # NaN (the History's raw value) equals NaN here
    got, ended = fast[:2]
    assert len(got) == (len(POINTS) if cap is None else cap)
    assert ended == (None if cap is None else (CAP_SPENT, True))
    assert got[:2] == [5.0, math.inf][: len(got)]


def test_scope_value_array_with_other_points_or_a_transform_takes_value() -> None:
    """A float32 point, or a merit Scope (which needs the constraint values), is evaluated by
    value: converted, transformed, counted once."""

    class Double:
        def __call__(self, vals, want_grad):
            return 2.0, []

        def batch(self, vals):
            raise AssertionError

    oracle, _, scope = _scoped(None)
    assert scope.value_array(np.array([1.0, 1.0], dtype=np.float32)) == 2.0
    assert scope.best_x is not None and scope.best_x.dtype == torch.float64
    merit = Scope(oracle, transform=Double())
    assert merit.value_array(np.array([1.0, 0.0])) == 3.0
    assert oracle.nfev == 2 and oracle.history.f.tolist() == [2.0, 1.0]
