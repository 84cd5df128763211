"""Plot data functions: exact arrays for small hand-made histories, and real runs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.plot import (
    Recorder,
    Trace,
    as_trace,
    convergence_data,
    ecdf_data,
    evaluate_points,
    frame_indices,
    grid_1d,
    grid_2d,
    group_runs,
    quantiles,
    run_path,
    y_scale,
)
from optarena.plot.data import step_values

INF = math.inf


def tr(f, **kw) -> Trace:
    return Trace.from_values(f, **kw)


# -- traces and grouping ------------------------------------------------------------------------
def test_trace_from_values_ranks_nan_and_inf_last():
    t = tr([math.nan, 4.0, INF, 3.0, 5.0])
    np.testing.assert_array_equal(t.evals, [1, 2, 3, 4, 5])
    np.testing.assert_array_equal(t.best_f, [INF, 4.0, 4.0, 3.0, 3.0])
    assert math.isnan(t.f[0])


def test_trace_rejects_mismatched_columns():
    with pytest.raises(ValueError, match="best_f"):
        Trace(np.arange(3), np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2))


def test_as_trace_reads_a_result_a_history_and_a_mapping():
    p = oa.problems.get("rosenbrock")
    r = oa.minimize(p, method="lbfgs", budget=30)
    t = as_trace(r)
    assert t.method == "lbfgs" and t.seed == r.seed and len(t) == r.nfev
    np.testing.assert_array_equal(t.best_f, r.history.best_f)
    np.testing.assert_array_equal(t.x, r.history.x)
    np.testing.assert_array_equal(as_trace(r.history).f, r.history.f)
    m = as_trace({"f": [3.0, 1.0], "method": "m", "seed": 4})
    assert (m.method, m.seed, m.best_f.tolist()) == ("m", 4, [3.0, 1.0])
    with pytest.raises(TypeError, match="a run must be"):
        as_trace(42)


def test_group_runs_by_method_mapping_and_results_attribute():
    a1, a2, b = tr([1.0], method="a"), tr([2.0], method="a"), tr([3.0], method="b")
    assert {k: len(v) for k, v in group_runs([a1, b, a2]).items()} == {"a": 2, "b": 1}
    assert list(group_runs({"x": a1, "y": [b, a2]})) == ["x", "y"]

    class Holder:
        def __init__(self) -> None:
            self.results = {"only": (a1, a2)}

    assert len(group_runs(Holder())["only"]) == 2
    assert list(group_runs(a1)) == ["a"]
    hist = {"f": np.array([2.0, 1.0]), "best_f": np.array([2.0, 1.0])}
    assert list(group_runs({"f": [hist], "g": [a1]})) == ["f", "g"]  # labels, not columns
    assert group_runs({"lab": [hist, hist]})["lab"][1].best_f.tolist() == [2.0, 1.0]
    with pytest.raises(ValueError, match="no runs"):
        group_runs([])
    with pytest.raises(ValueError, match="for y"):
        group_runs({"x": [a1], "y": []})
    with pytest.raises(TypeError):
        group_runs(3.5)


# -- convergence --------------------------------------------------------------------------------
def test_step_values_are_right_continuous():
    xs = np.array([1.0, 3.0, 3.0, 6.0])
    ys = np.array([5.0, 4.0, 2.0, 1.0])
    got = step_values(xs, ys, np.array([0.5, 1.0, 2.9, 3.0, 5.0, 6.0, 9.0]))
    np.testing.assert_array_equal(got, [INF, 5.0, 5.0, 2.0, 2.0, 1.0, 1.0])


def test_quantiles_interpolate_and_keep_inf_last():
    v = np.array([[1.0, INF, INF], [2.0, 2.0, INF], [INF, 1.0, INF]])
    q25, med, q75 = quantiles(v, (0.25, 0.5, 0.75))
    np.testing.assert_array_equal(q25, [1.5, 1.5, INF])
    np.testing.assert_array_equal(med, [2.0, 2.0, INF])
    np.testing.assert_array_equal(q75, [INF, INF, INF])
    with pytest.raises(ValueError):
        quantiles(v, (1.5,))


def test_median_and_quartiles_on_the_common_grid_of_change_points():
    a = tr([5.0, 5.0, 5.0, 1.0, 1.0, 1.0], method="m")  # changes at 1 and 4, ends at 6
    b = tr([4.0, 2.0, 2.0], method="m")  # changes at 1 and 2, ends at 3
    (c,) = convergence_data([a, b])
    assert c.label == "m" and c.n_runs == 2
    np.testing.assert_array_equal(c.x, [1, 2, 3, 4, 6])
    # a: 5 5 5 1 1; b: 4 2 2 2 2 (its final value holds after its end)
    np.testing.assert_allclose(c.median, [4.5, 3.5, 3.5, 1.5, 1.5])
    np.testing.assert_allclose(c.lower, [4.25, 2.75, 2.75, 1.25, 1.25])
    np.testing.assert_allclose(c.upper, [4.75, 4.25, 4.25, 1.75, 1.75])
    (g,) = convergence_data([a, b], f_opt=1.0, band=(0.0, 1.0))
    np.testing.assert_allclose(g.median, [3.5, 2.5, 2.5, 0.5, 0.5])
    np.testing.assert_allclose(g.lower, [3.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(g.upper, [4.0, 4.0, 4.0, 1.0, 1.0])


def test_a_run_without_a_finite_value_yet_is_inf_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (c,) = convergence_data(tr([math.nan, INF, 2.0, 3.0]))
    np.testing.assert_array_equal(c.x, [1, 3, 4])
    np.testing.assert_array_equal(c.median, [INF, 2.0, 2.0])


def test_seconds_axis_counts_runs_not_started_as_inf():
    a = tr([3.0, 2.0, 1.0], seconds=[0.1, 0.2, 0.3])
    b = tr([5.0, 0.5], seconds=[0.15, 0.25])
    (c,) = convergence_data({"m": [a, b]}, axis="seconds")
    np.testing.assert_allclose(c.x, [0.1, 0.15, 0.2, 0.25, 0.3])
    np.testing.assert_allclose(c.median, [INF, 4.0, 3.5, 1.25, 0.75])


def test_grad_evals_axis_and_its_errors():
    t = tr([4.0, 3.0, 2.0, 1.0], grad_evals=[1, 1, 2, 3])
    (c,) = convergence_data(t, axis="grad_evals")
    np.testing.assert_array_equal(c.x, [1, 2, 3])
    np.testing.assert_array_equal(c.median, [3.0, 2.0, 1.0])  # last row at each count
    with pytest.raises(ValueError, match="no gradient evaluations"):
        convergence_data(tr([1.0, 0.5]), axis="grad_evals")
    with pytest.raises(ValueError, match="no seconds recorded"):
        convergence_data(t, axis="seconds")
    with pytest.raises(ValueError, match="axis must be"):
        convergence_data(t, axis="iterations")  # type: ignore[arg-type]


def test_y_scale_log_floor_symlog_and_linear():
    (gap,) = convergence_data(tr([3.0, 1e-3, 0.0]), f_opt=0.0)
    ys = y_scale([gap], gap=True)
    assert ys.kind == "log" and ys.floor == pytest.approx(1e-4) and ys.n_clipped == 3
    (raw,) = convergence_data(tr([30.0, -0.9, -1.0]))
    s = y_scale([raw], gap=False)
    assert s.kind == "symlog" and s.linthresh == pytest.approx(0.1)
    (pos,) = convergence_data(tr([30.0, 2.0]))
    p = y_scale([pos], gap=False)
    assert p.kind == "log" and p.n_clipped == 0 and p.floor == pytest.approx(0.1)
    assert y_scale([pos], gap=False, kind="linear").kind == "linear"
    with pytest.raises(ValueError, match="yscale"):
        y_scale([pos], gap=False, kind="cubic")


def test_convergence_data_of_real_runs_matches_their_histories():
    p = oa.problems.get("rosenbrock")
    runs = [oa.minimize(p, method="nelder_mead", budget=40, seed=s) for s in (0, 1)]
    (c,) = convergence_data(runs)
    assert c.n_runs == 2 and c.x[0] == 1 and c.x[-1] == 40
    want = step_values(runs[0].history.evals.astype(float), runs[0].history.best_f, c.x)
    np.testing.assert_array_equal(c.median, want)  # deterministic: both runs are equal


# -- landscapes ---------------------------------------------------------------------------------
def test_evaluate_points_uses_the_batched_function():
    base = oa.problems.get("rosenbrock")
    calls = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        calls.append(X.shape[0])
        return base.batched(X)

    p = oa.problems.Problem(name="r", fn=base.fn, x0=base.x0, bounds=base.bounds, batched=batched)
    pts = np.array([[1.0, 1.0], [0.0, 0.0], [-1.0, 1.0]])
    np.testing.assert_allclose(evaluate_points(p, pts, chunk=2), [0.0, 1.0, 4.0])
    assert calls == [2, 1]


def test_evaluate_points_without_batched_function_vmap_or_loop():
    pts = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(evaluate_points(lambda x: (x**2).sum(), pts), [5.0, 10.0])

    def scalar_python(x: torch.Tensor) -> torch.Tensor:  # .item() defeats vmap: loop fallback
        return torch.tensor(float(x[0].item()) - 2.0 * float(x[1].item()))

    np.testing.assert_allclose(evaluate_points(scalar_python, pts), [-3.0, 5.0])
    nan = evaluate_points(lambda x: torch.log(x).sum(), np.array([[-1.0, 1.0], [1.0, 1.0]]))
    assert math.isnan(nan[0]) and nan[1] == 0.0


def test_grid_2d_shifts_negative_functions_for_log_levels():
    g = grid_2d(oa.problems.get("flower"), bounds=(-2.0, 2.0), resolution=40, levels=12)
    assert g.z.shape == (40, 40) and g.x[0] == -2.0 and g.y[-1] == 2.0
    zmin = np.nanmin(g.z)
    assert zmin < 0 and g.shift < zmin
    ratios = g.levels[1:] / g.levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert g.levels[0] == pytest.approx((np.nanmax(g.z) - zmin) * 1e-4, rel=1e-6)
    assert g.levels[-1] == pytest.approx(np.nanmax(g.z) - g.shift)


def test_grid_2d_positive_function_is_not_shifted_and_bounds_are_checked():
    g = grid_2d(lambda x: 1.0 + (x**2).sum(), bounds=([-1.0, -2.0], [1.0, 2.0]), resolution=5)
    assert g.shift == 0.0 and g.levels[0] == pytest.approx(1.0)
    np.testing.assert_allclose(g.y, [-2.0, -1.0, 0.0, 1.0, 2.0])
    assert g.z[2, 2] == 1.0 and g.z[0, 0] == 6.0
    with pytest.raises(ValueError, match="bounds"):
        grid_2d(lambda x: (x**2).sum())
    with pytest.raises(ValueError, match="lower < upper"):
        grid_2d(lambda x: (x**2).sum(), bounds=(1.0, 1.0))
    with pytest.raises(ValueError, match="not 2"):
        grid_2d(oa.problems.get("wavy_bowl"))


def test_grid_1d_of_abs_square():
    g = grid_1d(oa.problems.get("abs_square"), resolution=11)
    np.testing.assert_allclose(g.x, np.linspace(-5, 5, 11))
    np.testing.assert_allclose(g.z, g.x**2)


# -- paths --------------------------------------------------------------------------------------
X7 = np.arange(14, dtype=float).reshape(7, 2)


def test_iterates_are_the_rows_where_a_gradient_was_evaluated():
    t = tr([5.0, 4.0, 6.0, 3.0, 2.0], grad_evals=[1, 1, 2, 2, 3], x=X7[:5], method="lbfgs")
    p = run_path(t)
    assert p.kind == "iterates"
    np.testing.assert_array_equal(p.evals, [1, 3, 5])
    np.testing.assert_array_equal(p.points, X7[[0, 2, 4]])
    np.testing.assert_array_equal(p.values, [5.0, 6.0, 2.0])


def test_generations_from_shared_timestamps_and_from_a_recorder():
    f = [9.0, 5.0, 3.0, 4.0, 8.0, 1.0, 7.0]
    t = tr(f, seconds=[0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0], x=X7, method="swarm")
    p = run_path(t)
    assert p.kind == "generations"
    np.testing.assert_array_equal(p.starts, [0, 1, 4])
    np.testing.assert_array_equal(p.ends, [1, 4, 7])
    np.testing.assert_array_equal(p.evals, [1, 3, 6])  # best of each generation
    np.testing.assert_array_equal(p.population(1), X7[1:4])
    rec = Recorder()
    for n in (1, 4):  # the last (trimmed) generation ended the run before any callback
        rec(oa.IterationInfo(iteration=0, nfev=n, ngev=0, best_f=0.0, best_x=None))
    q = run_path(tr(f, x=X7), generations=rec)
    np.testing.assert_array_equal(q.ends, [1, 4, 7])
    assert q.best[1] == 1.0 and q.best[0].tolist() == [10.0, 11.0]
    with pytest.raises(ValueError, match="non-decreasing"):
        run_path(t, generations=[4, 2])
    with pytest.raises(ValueError, match="non-decreasing"):
        run_path(t, generations=[8])


def test_improvements_evaluations_and_missing_points():
    t = tr([5.0, 6.0, 3.0, math.nan, 3.0, 1.0], x=X7[:6])
    p = run_path(t)
    assert p.kind == "improvements"
    np.testing.assert_array_equal(p.evals, [1, 3, 6])
    assert len(run_path(t, kind="evaluations")) == 6
    with pytest.raises(ValueError, match="no gradient"):
        run_path(t, kind="iterates")
    with pytest.raises(ValueError, match="kind must be"):
        run_path(t, kind="steps")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="record_x=True"):
        run_path(tr([1.0, 2.0]))


def test_path_of_a_real_gradient_run():
    p = oa.problems.get("rosenbrock")
    r = oa.minimize(p, method="lbfgs", line_search="strong_wolfe", budget=50)
    path = run_path(r)
    h = r.history
    grad_rows = np.flatnonzero(np.diff(np.r_[0, h.grad_evals]) > 0)
    assert path.kind == "iterates" and len(path) == r.ngev
    np.testing.assert_array_equal(path.points, h.x[grad_rows])
    np.testing.assert_allclose(path.points[0], p.x0.double().numpy())


def test_frame_indices_are_bounded_and_keep_both_ends():
    idx = frame_indices(1000, 7)
    assert len(idx) == 7 and idx[0] == 0 and idx[-1] == 999
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(frame_indices(4, 10), [0, 1, 2, 3])
    with pytest.raises(ValueError):
        frame_indices(10, 1)
    with pytest.raises(ValueError):
        frame_indices(0, 10)


# -- ECDF ---------------------------------------------------------------------------------------
def test_ecdf_fractions_weigh_problems_and_targets_equally():
    runs = {
        "P": {"a": [tr([10.0, 5.0, 0.5])], "b": [tr([0.1])]},
        "Q": {"a": [tr([2.0, 0.5]), tr([3.0, 3.0, 3.0])]},
    }
    a, b = ecdf_data(runs, targets={"P": [6.0, 1.0], "Q": [1.0]})
    assert (a.label, b.label) == ("a", "b")
    np.testing.assert_array_equal(a.evals, [2, 3])
    np.testing.assert_allclose(a.fraction, [0.5, 0.75])
    assert a.max_evals == 3
    np.testing.assert_array_equal(b.evals, [1])  # b never ran on Q: half the pairs unreached
    np.testing.assert_allclose(b.fraction, [0.5])


def test_ecdf_targets_from_f_opt_or_the_best_value_found():
    runs = {"R": {"a": [tr([4.0, 2.0])], "b": [tr([3.0])]}}
    a, b = ecdf_data(runs, deltas=[0.0, 1.0])  # targets 2 and 3 (best found: 2)
    np.testing.assert_array_equal(a.evals, [2])
    np.testing.assert_allclose(a.fraction, [1.0])
    np.testing.assert_allclose(b.fraction, [0.5])
    a, b = ecdf_data(runs, f_opt={"R": 0.0}, deltas=[3.0, 10.0])  # targets 3 and 10
    np.testing.assert_array_equal(a.evals, [1, 2])
    np.testing.assert_allclose(a.fraction, [0.5, 1.0])
    with pytest.raises(ValueError, match="finite value"):
        ecdf_data({"S": [tr([math.nan])]})
    with pytest.raises(ValueError, match="no problems"):
        ecdf_data({})


def test_highlighted_ranks_the_lowest_final_medians():
    from optarena.plot.data import highlighted

    finals = {"a": 3.0, "b": 1.0, "c": INF, "d": 2.0, "e": 1.0}
    curves = convergence_data({k: [tr([10.0, v])] for k, v in finals.items()})
    assert highlighted(curves, 3) == [None, 0, None, 2, 1]  # ties by label: b before e
    assert highlighted(curves, 10) == [3, 0, 4, 2, 1]  # never finite: last
    assert highlighted(curves, 0) == [None] * 5
