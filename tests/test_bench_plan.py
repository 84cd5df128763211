"""One plan for every consumer: keys stay what earlier versions stored, skip reasons are the
capability check's own words, and "evaluations to reach a target" has one definition."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.bench import MethodEntry, ProblemEntry, Spec, Store, run_spec, summarize_store
from optarena.bench.plan import Subject, choose_methods, plan_problem, run_key
from optarena.bench.targets import (
    Target,
    default_targets,
    ecdf_targets,
    first_reach,
    hits_from_history,
)

ALL_PROBLEMS = tuple(ProblemEntry(n) for n in ("sphere", "rosenbrock", "step", "hs07"))


def _old_key(task) -> str:
    """The run key exactly as earlier versions wrote it (the text of every stored key)."""
    text = json.dumps(
        {
            "problem": task.problem,
            "params": json.loads(task.problem_params),
            "method": task.method,
            "options": json.loads(task.options_json),
            "bounds": task.bounds,
            "seed": task.seed,
            "budget": {
                "evals": task.budget.evals,
                "grad_evals": task.budget.grad_evals,
                "seconds": task.budget.seconds,
                "target": task.budget.target,
            },
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()


def test_keys_are_those_of_earlier_versions() -> None:
    plan = Spec(ALL_PROBLEMS, (MethodEntry("adam", {"lr": 0.1}), MethodEntry("*")), 2, 50).plan()
    assert plan.tasks
    for t in plan.tasks:
        assert t.key == _old_key(t)
        assert t.bounds == (t.method != "adam" and plan_bounds(t.method))
    # a key written by an earlier version for sphere (dim 2, float64), pso, seed 0, 50 evals
    sphere = Subject.of(oa.problems.get("sphere"))
    key = run_key("sphere", sphere.params_json, "pso", "{}", True, 0, oa.Budget(evals=50))
    assert key == _old_key(
        next(t for t in plan.tasks if (t.problem, t.method) == ("sphere", "pso"))
    )


def test_a_key_stored_by_an_earlier_version_is_found_again() -> None:
    spec = Spec((ProblemEntry("sphere", {"dim": 3}),), (MethodEntry("pso"),), (0,), 120)
    key = "35e0ad35c0a8e4f100792f64944e60c4a9fa4e2addd66410fdacc5fe7cab87aa"
    assert spec.plan().keys == [key]


def plan_bounds(method: str) -> bool:
    info = next(i for i in oa.methods() if i.name == method)
    return info.is_global or info.requires_bounds


@pytest.mark.parametrize("problem", ["step", "hs07"])
def test_skip_reasons_are_the_refusals_minimize_raises(problem: str) -> None:
    prob = oa.problems.get(problem)
    plan = plan_problem(Subject.of(prob), [MethodEntry("*")], oa.Budget(evals=20), (0,))
    skipped = {s.label: s.reason for s in plan.skipped if s.problem == problem}
    assert skipped, f"some method cannot run on {problem}"
    choices = {c.label: c for c in choose_methods([MethodEntry("*")])[0]}
    for label, reason in skipped.items():
        c = choices[label]
        box = prob.bounds if c.info.is_global or c.info.requires_bounds else None
        with pytest.raises(ValueError) as err:
            oa.minimize(prob, method=c.method, bounds=box, budget=20, seed=0, **c.options)
        # the same check: only the name of what is refused differs
        assert str(err.value) == reason.replace(f"problem {problem}", f"objective {problem!r}")


def test_a_global_method_asks_for_a_box_only_when_there_is_one() -> None:
    obj = oa.Objective(lambda x: (x**2).sum(), name="free")
    subject = Subject("free", has_box=False, registered=False)
    plan = plan_problem(subject, [MethodEntry("cmaes"), MethodEntry("pso"),
                                  MethodEntry("nelder_mead", bounds="always")],
                        oa.Budget(evals=30), (0,), keyed=False)  # fmt: skip
    assert [(t.label, t.bounds) for t in plan.tasks] == [("cmaes", False)]
    reasons = {s.label: s.reason for s in plan.skipped}
    assert "needs bounds" in reasons["pso"]
    assert "no box" in reasons["nelder_mead"]
    assert oa.minimize(obj, x0=torch.ones(2), method="cmaes", budget=30, seed=0).nfev == 30


def test_first_reach_is_the_first_row_at_or_below_each_target() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        best = rng.normal(size=int(rng.integers(0, 40)))
        best[rng.random(best.size) < 0.1] = np.nan
        values = rng.normal(size=5)
        got = first_reach(best, values)
        for v, i in zip(values, got, strict=True):
            rows = np.flatnonzero(best <= v)
            assert i == (rows[0] if rows.size else best.size)


def test_targets_have_one_definition() -> None:
    assert [t.value for t in default_targets(1.0)] == [2.0, 1.001, 1.000001]
    assert default_targets(None) == ()
    assert ecdf_targets(None, [np.inf]) is None
    np.testing.assert_allclose(ecdf_targets(None, [3.0, 2.0], [1.0, 0.1]), [3.0, 2.1])
    np.testing.assert_allclose(ecdf_targets(0.5, [3.0], [1.0]), [1.5])
    hits = hits_from_history(
        np.array([5.0, 3.0, 3.0, 0.5]),
        np.array([1, 2, 3, 4]),
        np.array([0.1, 0.2, 0.3, 0.4]),
        [Target(4.0, "a"), Target(0.1, "b")],
    )
    assert hits == ((2, 0.2), None)


def test_store_summary_and_in_memory_hits_agree(tmp_path) -> None:
    spec = Spec((ProblemEntry("rosenbrock"),), (MethodEntry("pso"), MethodEntry("lbfgs")), 3, 300)
    report = run_spec(spec, tmp_path / "r.sqlite", progress=False)
    with Store(tmp_path / "r.sqlite") as st:
        summary = summarize_store(st, keys=report.keys)
        by_label: dict[str, list] = {}
        for r in st.runs():
            h = st.history(r["run_id"])
            tg = default_targets(r["f_opt"])
            by_label.setdefault(r["label"], []).append(
                hits_from_history(h["best_f"], h["evals"], h["seconds"], tg)
            )
    for row in summary.rows:
        for i, ts in enumerate(row.targets):
            hit = [h[i] for h in by_label[row.label] if h[i] is not None]
            assert ts.hits == len(hit)
            if hit:
                assert ts.median_evals == float(np.median([h[0] for h in hit]))
