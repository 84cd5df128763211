"""The COCO/BBOB problems: the values are cocoex's, the protocol's box, start and optimum hold,
and optarena imports and lists its problems without cocoex."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.problems import get

cocoex = pytest.importorskip("cocoex")

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = range(1, 25)


@pytest.fixture(scope="module")
def suite():
    """cocoex's own bbob suite (the observed interface the COCO experiments use)."""
    return cocoex.Suite("bbob", "", "")


def box_points(dim: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-5.0, 5.0, size=(n, dim))


@pytest.mark.parametrize("dim", [2, 5, 10, 20])
def test_values_are_the_suites_one_point_and_batched(suite, dim: int) -> None:
    for f in FUNCTIONS:
        for inst in (1, 5):
            p = get("bbob", function=f, instance=inst, dim=dim)
            ref = suite.get_problem_by_function_dimension_instance(f, dim, inst)
            X = box_points(dim, 8, seed=f * 100 + inst)
            want = np.array([ref(x) for x in X])
            one = np.array([float(p.fn(torch.from_numpy(x))) for x in X])
            batch = p.batched(torch.from_numpy(X))
            assert batch.dtype == torch.float64 and batch.shape == (8,)
            np.testing.assert_array_equal(one, want, err_msg=f"f{f} i{inst} d{dim}")
            np.testing.assert_array_equal(batch.numpy(), want, err_msg=f"f{f} i{inst} d{dim}")


@pytest.mark.parametrize("dim", [2, 5, 10])
def test_f_opt_is_reached_at_x_opt_by_the_suites_own_measure(suite, dim: int) -> None:
    for f in FUNCTIONS:
        for inst in range(1, 6):
            p = get("bbob", function=f, instance=inst, dim=dim)
            assert p.x_opt is not None and p.f_opt is not None
            assert bool((p.x_opt.abs() <= 5.0).all()), f"f{f}: optimum outside the box"
            value = float(p.fn(p.x_opt))
            assert value == pytest.approx(p.f_opt, abs=1e-12 * (1 + abs(p.f_opt)))
            ref = suite.get_problem_by_function_dimension_instance(f, dim, inst)
            assert ref(p.x_opt.numpy()) == pytest.approx(value, abs=1e-12)
            # cocoex's final target is its f_opt + 1e-8: hit at x_opt, and at x0 exactly
            # when x0 is within 1e-8 of our f_opt
            assert ref.final_target_hit
            other = suite.get_problem_by_function_dimension_instance(f, dim, inst)
            other(p.x0.numpy())
            assert bool(other.final_target_hit) == (float(p.fn(p.x0)) <= p.f_opt + 1e-8)


def test_the_protocol_box_start_and_metadata() -> None:
    p = get("bbob", function=21, instance=3, dim=10)
    lo, hi = p.bounds
    assert torch.equal(lo, torch.full((10,), -5.0, dtype=torch.float64))
    assert torch.equal(hi, -lo)
    assert p.x0.dtype == torch.float64 and bool((p.x0.abs() <= 4.0).all())
    assert p.params == {"function": 21, "instance": 3, "dim": 10, "x0_seed": 0}
    assert "bbob_f021_i03_d10" in p.description and "Gallagher 101" in p.description
    assert not p.differentiable and p.objective().gradient == "none"
    assert p.name == "bbob"  # the registered name: the arena rebuilds runs from it


def test_start_points_are_reproducible_and_spread() -> None:
    a = get("bbob", function=1, instance=1, dim=5)
    assert torch.equal(a.x0, get("bbob", function=1, instance=1, dim=5).x0)
    others = [
        get("bbob", function=1, instance=2, dim=5).x0,
        get("bbob", function=2, instance=1, dim=5).x0,
        get("bbob", function=1, instance=1, dim=5, x0_seed=1).x0,
    ]
    assert all(not torch.equal(a.x0, o) for o in others)
    starts = torch.stack([get("bbob", function=f, instance=1, dim=20).x0 for f in FUNCTIONS])
    # uniform in [-4, 4]: mean near 0, spread near 8 / sqrt(12) = 2.31 over 480 draws
    assert abs(float(starts.mean())) < 0.4 and 2.0 < float(starts.std()) < 2.6
    assert float(starts.abs().max()) <= 4.0


def test_a_run_counts_and_records_cocoex_values(suite) -> None:
    p = get("bbob", function=15, instance=2, dim=5)
    res = oa.minimize(p, method="random_search", bounds=p.bounds, budget=300, seed=3)
    assert res.nfev == 300
    ref = suite.get_problem_by_function_dimension_instance(15, 5, 2)
    assert ref(res.x_numpy()) == res.fun
    assert res.fun >= p.f_opt


def test_gradient_methods_refuse_it_before_evaluating() -> None:
    p = get("bbob", function=1, instance=1, dim=2)
    calls = []
    obj = oa.Objective(lambda x: calls.append(1) or p.fn(x), gradient="none", default_x0=p.x0)
    with pytest.raises((ValueError, TypeError), match="gradient"):
        oa.minimize(obj, method="lbfgs", budget=10)
    assert calls == []


def test_the_function_survives_pickling_for_worker_processes() -> None:
    p = get("bbob", function=7, instance=4, dim=3)
    X = torch.from_numpy(box_points(3, 5, seed=0))
    fn = pickle.loads(pickle.dumps(p.fn))
    batched = pickle.loads(pickle.dumps(p.batched))
    assert torch.equal(batched(X), p.batched(X))
    assert torch.equal(fn(X[0]), p.fn(X[0]))


def test_wrong_shapes_are_refused_not_read_past() -> None:
    # cocoex reads d doubles from whatever it gets: a short x would read foreign memory
    p = get("bbob", function=1, instance=1, dim=5)
    with pytest.raises(ValueError, match="takes 5 values"):
        p.fn(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="rows of 5"):
        p.batched(torch.zeros(4, 3, dtype=torch.float64))
    assert p.batched(torch.zeros(0, 5, dtype=torch.float64)).shape == (0,)


def test_float32_points_give_float32_values_of_the_same_function() -> None:
    p = get("bbob", function=10, instance=1, dim=4)
    x = torch.tensor([0.5, -1.25, 2.0, 3.5], dtype=torch.float32)
    got = p.fn(x)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(float(p.fn(x.double())), rel=1e-6)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"function": 0}, ValueError, "function must be in 1..24"),
        ({"function": 25}, ValueError, "function must be in 1..24"),  # cocoex would abort
        ({"function": 1.0}, TypeError, "function must be an int"),
        ({"instance": 0}, ValueError, "instance must be >= 1"),
        ({"dim": 0}, ValueError, "dim must be >= 1"),
        ({"dim": True}, TypeError, "dim must be an int"),
        ({"x0_seed": -1}, ValueError, "x0_seed must be >= 0"),
        ({"d": 2}, TypeError, "unknown parameter"),
    ],
)
def test_bad_parameters(params: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        get("bbob", **params)


def test_the_spec_plans_the_protocol_grid() -> None:
    from optarena.bench.spec import load_spec

    plan = load_spec(ROOT / "benchmarks" / "specs" / "bbob.toml").plan()
    grid = {(t.params["function"], t.params["instance"], t.params["dim"]) for t in plan.tasks}
    assert grid == {(f, i, d) for f in FUNCTIONS for i in range(1, 6) for d in (2, 5, 10, 20)}
    labels = {t.label for t in plan.tasks}
    assert {"cmaes", "cmaes_ipop", "pso", "differential_evolution", "auto"} <= labels
    assert not plan.skipped
    for t in plan.tasks:
        assert t.budget.evals == 1000 * t.params["dim"] and t.bounds and t.seed == 0
    one = plan.tasks[0]
    assert one.f_opt == one.build_problem().f_opt


_WITHOUT_COCOEX = """
import importlib.abc, sys

class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "cocoex" or name.startswith("cocoex."):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Missing())
import optarena as oa
from optarena.cli import main
assert "bbob" not in oa.problems.names() and "sphere" in oa.problems.names()
try:
    oa.problems.get("bbob", function=1)
except ImportError as e:
    assert "optarena[bbob]" in str(e), e
else:
    raise SystemExit("get('bbob') without cocoex did not raise")
assert main(["problems"]) == 0
print("ok")
"""


def test_optarena_works_without_cocoex_and_says_what_to_install() -> None:
    out = subprocess.run(
        [sys.executable, "-c", _WITHOUT_COCOEX], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_import_optarena_does_not_import_cocoex() -> None:
    code = (
        "import sys, optarena as oa; oa.problems.names(); "
        "assert 'cocoex' not in sys.modules; oa.problems.get('bbob'); "
        "assert 'cocoex' in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
