"""compare(): equal budgets, seeds, summary statistics that match the runs, skipped methods."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.bench import MethodEntry
from optarena.bench.summary import RunOutcome, Summary, Target, default_targets, summarize
from optarena.compare import Comparison, compare


def shifted_sphere(shift: float = 3.0, dim: int = 3) -> oa.problems.Problem:
    """A sphere whose minimum (at ``shift``) lies outside its box [-1, 1]^d."""
    return oa.problems.Problem(
        name="shifted_sphere",
        fn=lambda x: ((x - shift) ** 2).sum(),
        batched=lambda X: ((X - shift) ** 2).sum(dim=1),
        x0=torch.zeros(dim, dtype=torch.float64),
        bounds=(-torch.ones(dim, dtype=torch.float64), torch.ones(dim, dtype=torch.float64)),
        f_opt=0.0,
    )


@pytest.fixture(scope="module")
def comparison() -> Comparison:
    return compare(
        "rosenbrock",
        ["nelder_mead", ("adam", {"lr": 0.05}), "pso"],
        budget=300,
        seeds=3,
    )


def test_runs_per_method_and_equal_budgets(comparison) -> None:
    assert comparison.problem == "rosenbrock" and comparison.seeds == (0, 1, 2)
    assert set(comparison.results) == {"nelder_mead", "adam(lr=0.05)", "pso"}
    assert len(comparison.results["pso"]) == 3  # stochastic: one run per seed
    assert len(comparison.results["nelder_mead"]) == 1  # deterministic: the same for any seed
    assert [r.seed for r in comparison.results["pso"]] == [0, 1, 2]
    for runs in comparison.results.values():
        assert all(r.nfev <= 300 for r in runs)
    assert comparison.results["adam(lr=0.05)"][0].nfev == 300


def test_summary_statistics_match_the_results(comparison) -> None:
    f_opt = oa.problems.get("rosenbrock").f_opt
    assert [t.value for t in comparison.targets] == [f_opt + 1.0, f_opt + 1e-3, f_opt + 1e-6]
    rows = {r.label: r for r in comparison.rows}
    for label, runs in comparison.results.items():
        row = rows[label]
        funs = np.array([r.fun for r in runs])
        assert row.runs == len(runs) and row.errors == 0
        assert row.median == pytest.approx(np.median(funs))
        assert row.q1 == pytest.approx(np.percentile(funs, 25))
        assert row.q3 == pytest.approx(np.percentile(funs, 75))
        assert row.best == funs.min()
        for ts in row.targets:
            reached = [r.history.evals_to_reach(ts.target.value) for r in runs]
            hits = [e for e in reached if e is not None]
            assert ts.hits == len(hits)
            assert ts.median_evals == (np.median(hits) if hits else None)
        tight = min(comparison.targets, key=lambda t: t.value).value
        assert row.success == np.mean([r.fun <= tight for r in runs])
    medians = [r.median for r in comparison.rows]
    assert medians == sorted(medians)  # best first


def test_tables_and_dataframe(comparison) -> None:
    md = comparison.table()
    lines = md.strip().splitlines()
    assert lines[0].startswith("| problem | method | runs | median")
    assert len(lines) == 2 + len(comparison.rows)
    for label in comparison.results:
        assert f"| {label} |" in md
    assert "evals to f*+1e-3" in md
    rows = list(csv.DictReader(io.StringIO(comparison.table("csv"))))
    assert {r["method"] for r in rows} == set(comparison.results)
    pso = next(r for r in rows if r["method"] == "pso")
    assert (
        int(pso["runs"]) == 3
        and float(pso["median"])
        == comparison.rows[[r.label for r in comparison.rows].index("pso")].median
    )
    pd = pytest.importorskip("pandas")
    df = comparison.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 3
    with pytest.raises(ValueError, match="'markdown' or 'csv'"):
        comparison.table("html")


def test_gradient_methods_are_skipped_on_a_function_without_gradient() -> None:
    obj = oa.Objective(lambda x: (x**2).sum(), gradient="none", name="no_grad")
    c = compare(obj, ["adam", "nelder_mead"], budget=50, seeds=1, x0=torch.ones(2))
    assert "gradient" in c.skipped["adam"]
    assert set(c.results) == {"nelder_mead"} and c.targets == ()
    assert "Skipped: adam" in c.table()
    # without a known optimum there is no target, so no success rate: "-", never "100%"
    assert c.rows[0].success is None
    header, _, row = c.table().splitlines()[:3]
    cells = dict(zip(_cells(header), _cells(row), strict=True))
    assert cells["success"] == "-"
    assert cells["stop"] == c.results["nelder_mead"][0].stop_reason.value
    assert "success_rate" in c.summary.csv() and ",," in c.summary.csv()


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_the_stop_column_counts_how_the_runs_ended() -> None:
    tg = (Target(0.1, "t"),)

    def run(why, status="ok"):
        return RunOutcome("p", "m", "m", status, 1.0, 10, 0.5, (None,), why)

    (row,) = summarize([run("max_evals"), run("converged"), run("max_evals"),
                        run(None, "error")], {"p": tg})  # fmt: skip
    assert row.stops == (("max_evals", 2), ("converged", 1), ("error", 1))
    assert row.success == 0.0
    text = Summary((row,), {"p": tg}).markdown()
    cells = dict(zip(_cells(text.splitlines()[0]), _cells(text.splitlines()[2]), strict=True))
    assert cells["stop"] == "max_evals 2, converged 1, error 1" and cells["success"] == "0%"
    (same,) = summarize([run("converged"), run("converged")], {"p": tg})
    assert Summary((same,), {"p": tg}).records()[0]["stop_reasons"] == "converged"


def test_bounds_go_to_global_methods_unless_asked() -> None:
    c = compare(
        shifted_sphere(),
        {
            "local": "nelder_mead",
            "local_boxed": MethodEntry("nelder_mead", bounds="always"),
            "global": ("pso", {}),
        },
        budget=400,
        seeds=2,
    )
    assert c.results["local"][0].fun < 1e-6  # left the box: no bounds by default
    for label in ("local_boxed", "global"):
        for r in c.results[label]:
            assert bool((r.x.abs() <= 1 + 1e-12).all())
            assert r.fun >= 3 * 2.0**2 - 1e-9


def test_objective_errors_are_reported_and_the_rest_runs() -> None:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if float(x.detach()[0]) > 0.5:
            raise RuntimeError("out of range")
        return ((x - 1) ** 2).sum()

    c = compare(oa.Objective(fn), ["lbfgs", "powell"], budget=100, seeds=1, x0=torch.zeros(2))
    assert any("out of range" in m for msgs in c.errors.values() for m in msgs)
    rows = {r.label: r for r in c.rows}
    assert set(rows) == {"lbfgs", "powell"}
    assert sum(r.errors for r in rows.values()) == sum(len(m) for m in c.errors.values())


def test_explicit_targets_and_input_errors() -> None:
    c = compare("sphere", ["lbfgs"], budget=50, seeds=1, targets=[1.0, 1e-8])
    assert [t.value for t in c.targets] == [1.0, 1e-8]
    with pytest.raises(TypeError, match="method options go with each method"):
        compare("sphere", ["adam"], budget=50, lr=0.1)
    with pytest.raises(ValueError, match="used twice"):
        compare("sphere", ["adam", ("adam", {})], budget=50)
    with pytest.raises(ValueError, match="unknown method"):
        compare("sphere", ["adma"], budget=50)
    with pytest.raises(ValueError, match="positive number of evaluations"):
        compare("sphere", ["adam"], budget=0)
    with pytest.raises(ValueError, match="repeated seeds"):
        compare("sphere", ["adam"], budget=10, seeds=[1, 1])


def test_summarize_handles_infinite_values_and_errors() -> None:
    tg = (Target(1.0, "a"), Target(0.1, "b"))

    def run(fun, hits, status="ok"):
        return RunOutcome("p", "m", "m", status, fun, 10, 0.5, hits)

    rows = summarize(
        [
            run(0.05, ((3, 0.1), (7, 0.2))),
            run(math.inf, (None, None)),
            run(math.inf, (None, None)),
            run(None, (None, None), status="error"),
        ],
        {"p": tg},
    )
    (row,) = rows
    assert row.runs == 4 and row.errors == 1
    assert row.median == math.inf and row.q1 == math.inf and row.best == 0.05
    assert row.success == 0.25 and row.targets[0].median_evals == 3
    assert default_targets(None) == () and default_targets(math.nan) == ()


def test_a_function_without_x0_is_refused_before_any_run() -> None:
    """Without ``x0=`` every method would fail alike and the table would be empty: refuse."""
    calls = []

    def f(x):
        calls.append(1)
        return ((x - 1) ** 2).sum()

    with pytest.raises(TypeError, match=r"x0=\.\.\."):
        oa.compare(f, ["lbfgs", "cmaes"], budget=50)
    assert calls == []
