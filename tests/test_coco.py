"""COCO/BBOB in the arena: COCO-format output that logs exactly the counted evaluations (serial,
in worker processes, after a kill and a resume), the per-group tables, and the spec's protocol
keys (grids, "N*dim" budgets, targets, coco_output)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from optarena.bench import Spec, Store, run_plan
from optarena.bench.coco import CocoError, points_path, write_coco
from optarena.bench.groups import ALL, bbob_runs, group_curves, group_tables, solved
from optarena.bench.runner import versions
from optarena.bench.spec import SpecError
from optarena.bench.store import RunRecord
from optarena.cli import main

pytest.importorskip("cocoex")

ROOT = Path(__file__).resolve().parents[1]


def small_spec(coco: Path | None, methods=("cmaes", "nelder_mead", "random_search")) -> Spec:
    data = {
        "name": "small",
        "seeds": [0],
        "budget": "30*dim",
        "problems": [
            {"name": "bbob", "grid": {"dim": [2, 3], "function": [1, 15], "instance": "1-2"}}
        ],
        "methods": list(methods),
    }
    if coco is not None:
        data["coco_output"] = str(coco)
    return Spec.from_dict(data)


def info_entries(folder: Path) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(function, dim) -> [(instance, evaluations)] as COCO's .info files list them."""
    out: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for info in folder.glob("bbobexp_f*.info"):
        lines = info.read_text().splitlines()
        for head, data in zip(lines[0::3], lines[2::3], strict=True):
            f = int(re.search(r"funcId = (\d+)", head).group(1))
            d = int(re.search(r"DIM = (\d+)", head).group(1))
            runs = [e.strip().split("|")[0].split(":") for e in data.split(",")[1:]]
            out.setdefault((f, d), []).extend((int(i), int(n)) for i, n in runs)
    return out


def tdat_runs(folder: Path, f: int, d: int) -> list[list[list[float]]]:
    """The runs of a .tdat file: each a list of rows (evaluations, 0, best f - f_opt, ...)."""
    runs: list[list[list[float]]] = []
    for line in (folder / f"data_f{f}" / f"bbobexp_f{f}_DIM{d}.tdat").read_text().splitlines():
        if line.startswith("%"):
            runs.append([])
        elif line.strip():
            runs[-1].append([float(v) for v in line.split()])
    return runs


def check_log_matches_store(store: Store, folder: Path, plan) -> int:
    """Every stored bbob run is in the COCO log once, with exactly its counted evaluations
    and its best value; returns the number of runs checked."""
    stored = {r["key"]: r for r in store.runs()}
    checked = 0
    for label in {t.label for t in plan.tasks}:
        entries = info_entries(folder / label)
        mine = [t for t in plan.tasks if t.label == label]
        assert sum(len(v) for v in entries.values()) == len(mine), label
        for (f, d), runs in entries.items():
            tasks = [t for t in mine if (t.params["function"], t.params["dim"]) == (f, d)]
            tdat = tdat_runs(folder / label, f, d)
            assert len(tdat) == len(tasks) == len(runs)
            for t, (inst, n), rows in zip(tasks, runs, tdat, strict=True):
                r = stored[t.key]
                assert inst == t.params["instance"] and n == r["nfev"] == rows[-1][0]
                gap = r["fun"] - r["f_opt"]
                assert rows[-1][2] == pytest.approx(gap, rel=1e-8, abs=1e-12)
                checked += 1
    return checked


def test_the_coco_log_holds_exactly_the_counted_evaluations(tmp_path: Path) -> None:
    plan = small_spec(tmp_path / "coco").plan()
    assert all(t.coco == str(tmp_path / "coco") for t in plan.tasks)
    with Store(tmp_path / "s.sqlite") as store:
        run_plan(plan, store, progress=False)
        report = write_coco(store, plan.tasks, plan.coco_output)
        assert report.runs == len(plan.tasks) and not report.missing
        assert report.evaluations == sum(r["nfev"] for r in store.runs())
        assert check_log_matches_store(store, tmp_path / "coco", plan) == len(plan.tasks)
        # batches (cmaes, random_search) and single points (nelder_mead) alike: the budget
        assert {r["nfev"] for r in store.runs()} <= {60, 90}


def _coco_files(folder: Path) -> dict[Path, bytes]:
    """The COCO files under ``folder`` (not the points files), by relative path."""
    return {
        p.relative_to(folder): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.relative_to(folder).parts[0] != ".points"
    }


@pytest.mark.parametrize("backend", ["processes", "dask"])
def test_worker_processes_write_the_same_log_as_a_serial_run(tmp_path: Path, backend) -> None:
    """Workers evaluate (and write the points); the log is the serial run's, byte for byte."""
    folders = {}
    for how in ("serial", backend):
        plan = small_spec(tmp_path / how, ("cmaes", "nelder_mead")).plan()
        with Store(tmp_path / f"{how}.sqlite") as store:
            if how == "dask":
                pytest.importorskip("distributed")
                from optarena.bench.dask_runner import run_plan_dask

                run_plan_dask(plan, store, "local:2", progress=False)
            else:
                run_plan(plan, store, workers=2 if how == "processes" else 1, progress=False)
            write_coco(store, plan.tasks, plan.coco_output)
            check_log_matches_store(store, tmp_path / how, plan)
        folders[how] = _coco_files(tmp_path / how)
    assert len(folders["serial"]) > 10 and folders[backend] == folders["serial"]


def test_a_killed_and_resumed_sweep_logs_every_run_once(tmp_path: Path) -> None:
    coco = tmp_path / "coco"
    plan = small_spec(coco, ("cmaes", "nelder_mead")).plan()
    first, killed = plan.tasks[: len(plan.tasks) // 2], plan.tasks[len(plan.tasks) // 2]
    with Store(tmp_path / "s.sqlite") as store:
        # the first sweep finished half the runs, then was killed in the middle of one run:
        # its points are on disk, the run is not in the store
        run_plan(type(plan)(plan.spec, first, (), plan.coco_output), store, progress=False)
        write_coco(store, plan.tasks, coco)
        problem = killed.build_problem()
        for x in torch.rand(7, problem.dim, dtype=torch.float64):
            problem.fn(x)
        assert points_path(coco, killed.key).stat().st_size == 7 * 8 * (problem.dim + 1)
        # the resumed sweep runs the rest (the killed run from its start) and rewrites the log
        report = run_plan(plan, store, progress=False)
        assert report.ran == len(plan.tasks) - len(first)
        write_coco(store, plan.tasks, coco)
        assert check_log_matches_store(store, coco, plan) == len(plan.tasks)
        # a points file that is not the stored run's evaluations is refused, not logged
        with points_path(coco, killed.key).open("ab") as fh:
            fh.write(np.zeros(problem.dim + 1).tobytes())
        with pytest.raises(CocoError, match="store counts"):
            write_coco(store, plan.tasks, coco)


def test_optarena_run_writes_one_bbob_run_in_coco_format(tmp_path: Path, capsys) -> None:
    argv = ["run", "bbob", "-p", "function=3", "-p", "dim=5", "-m", "cmaes", "-b", "400"]
    assert main([*argv, "--coco-output", str(tmp_path / "c"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert info_entries(tmp_path / "c" / "cmaes") == {(3, 5): [(1, out["nfev"])]}
    (row,) = [rows[-1] for rows in tdat_runs(tmp_path / "c" / "cmaes", 3, 5)]
    assert row[0] == out["nfev"] == 400
    assert row[2] == pytest.approx(out["fun"] - out["f_opt"], rel=1e-8)
    argv = ["run", "bbob", "-p", "dim=4", "-m", "cmaes", "-b", "50", "--coco-output", "c"]
    assert main(argv) == 1
    assert "COCO output exists for d in [2, 3, 5, 10, 20, 40]" in capsys.readouterr().err


def test_optarena_run_runs_a_small_variant_of_the_bbob_spec(tmp_path: Path, capsys) -> None:
    text = (ROOT / "benchmarks" / "specs" / "bbob.toml").read_text()
    small = re.sub(
        r"grid = \{.*\}", 'grid = { dim = [2], function = [1, 21], instance = "1-2" }', text
    )
    small = small.replace('budget = "1000*dim"', 'budget = "15*dim"')
    assert small != text and "15*dim" in small
    spec = tmp_path / "bbob_small.toml"
    spec.write_text(small)
    argv = ["run", str(spec), "--store", str(tmp_path / "s.sqlite"), "--coco-output",
            str(tmp_path / "coco"), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "solved fraction of (run, target) pairs per COCO function group" in captured.out
    plan = Spec.from_toml(spec).plan()
    with Store(tmp_path / "s.sqlite") as store:
        assert store.count() == len(plan.tasks) == 4 * 6
        assert {r["nfev"] for r in store.runs()} == {30}
        assert check_log_matches_store(store, tmp_path / "coco", plan) == 24


# -- the per-group tables --------------------------------------------------------------------
def _record(key: str, label: str, function: int, dim: int, best: list[float], f_opt: float):
    """A stored bbob run whose best value after evaluation i is ``best[i]``."""
    f = np.asarray(best, dtype=np.float64)
    n = len(f)
    params = {"function": function, "instance": 1, "dim": dim, "x0_seed": 0}
    return RunRecord(
        key=key, spec="hand", problem="bbob", problem_params=json.dumps(params, sort_keys=True),
        method=label, label=label, options="{}", bounds=True, seed=0, budget={"evals": n},
        status="ok", fun=float(f.min()), nfev=n, ngev=0, elapsed=0.1, stop_reason="max_evals",
        message="", best_eval=int(f.argmin()) + 1, x=None, f_opt=f_opt, versions=versions(),
        finished_at="2026-01-01T00:00:00+00:00",
        history={"evals": np.arange(1, n + 1), "grad_evals": np.zeros(n, np.int64),
                 "seconds": np.linspace(0, 1, n), "f": f, "best_f": np.minimum.accumulate(f)},
    )  # fmt: skip


def test_the_group_tables_count_on_a_hand_built_store(tmp_path: Path, capsys) -> None:
    fo = 100.0
    with Store(tmp_path / "hand.sqlite") as store:
        # d = 2: "a" solves 1e-1 and 1e-3 (not 1e-8) on f1, everything on f6, nothing on f21;
        # "b" solves only 1e-1 on f10. d = 5: "a" solves all three on f15.
        store.write(_record("1", "a", 1, 2, [fo + 5, fo + 0.05, fo + 5e-4, fo + 5e-4], fo))
        store.write(_record("2", "a", 6, 2, [fo + 1, fo, fo, fo], fo))
        store.write(_record("3", "a", 21, 2, [fo + 50, fo + 20, fo + 20, fo + 20], fo))
        store.write(_record("4", "b", 10, 2, [fo + 0.5, fo + 0.01, fo + 0.01, fo + 0.01], fo))
        store.write(_record("5", "a", 15, 5, [fo + 1e-9] * 10, fo))
        runs = bbob_runs(store)
        counts = solved(runs)
        assert counts[("a", 2, "separable")] == (2, 3)
        assert counts[("a", 2, "low or moderate conditioning")] == (3, 3)
        assert counts[("a", 2, "multimodal, weak global structure")] == (0, 3)
        assert counts[("a", 2, ALL)] == (5, 9)
        assert counts[("b", 2, "high conditioning, unimodal")] == (1, 3)
        assert counts[("b", 2, ALL)] == (1, 3)
        assert counts[("a", 5, ALL)] == (3, 3)
        assert ("a", 2, "high conditioning, unimodal") not in counts
        text = group_tables(store)
        assert "| a | 2 | 0.667 | 1.000 | - | - | 0.000 | 0.556 |" in text
        assert "| b | 2 | - | - | 0.333 | - | - | 0.333 |" in text
        assert "| a | 5 | - | - | - | 1.000 | - | 1.000 |" in text
        # the ECDF: 51 targets 1e2 ... 1e-8, against evaluations / d
        curves = {(c.label, c.dim, c.group): c for c in group_curves(runs)}
        deltas = 10.0 ** np.linspace(2, -8, 51)
        c = curves[("a", 2, "separable")]
        # f1: 5 -> evaluation 1 reaches every target >= 5, 0.05 -> evaluation 2, 5e-4 -> 3
        want = [np.sum(deltas >= 5), np.sum(deltas >= 0.05), np.sum(deltas >= 5e-4)]
        assert c.at(0.5) == pytest.approx(want[0] / 51)
        assert c.at(1.0) == pytest.approx(want[1] / 51)
        assert c.at(2.0) == c.at(1.5) == pytest.approx(want[2] / 51) and c.budget == 2.0
        assert curves[("a", 2, "low or moderate conditioning")].at(1.0) == 1.0
        assert curves[("a", 2, ALL)].at(2.0) == pytest.approx(
            (want[2] + 51 + np.sum(deltas >= 20)) / 153
        )
        assert curves[("a", 5, ALL)].at(0.2) == 1.0 and curves[("a", 5, ALL)].at(0.1) == 0.0
        assert group_tables(store, keys=["nothing"]) == ""
    assert main(["summary", str(tmp_path / "hand.sqlite"), "--targets", "1e-1,1e-3"]) == 0
    out = capsys.readouterr().out
    assert "targets 0.1, 0.001 on f - f_opt" in out and "| a | 5 | - | - | - | 1.000 |" in out
    assert "| a | 2 | 1.000 | 1.000 | - | - | 0.000 | 0.667 |" in out


def test_the_report_shows_the_group_table_and_ecdf(tmp_path: Path) -> None:
    from optarena.plot.report import write_report

    with Store(tmp_path / "hand.sqlite") as store:
        store.write(_record("1", "a", 1, 2, [5.0, 0.6, 0.5 + 1e-4], 0.5))  # 1e-1, 1e-3
        store.write(_record("2", "a", 22, 2, [5.0, 3.0, 1.0], 0.5))
    page = write_report(tmp_path / "hand.sqlite", tmp_path / "rep").read_text()
    section = page.split('<table id="bbob-groups">')[1].split("</table>")[0]
    assert "<td>0.667</td><td>-</td><td>-</td><td>-</td><td>0.000</td><td>0.333</td>" in section
    assert "runtime ECDF per function group" in page


# -- the spec expresses the protocol ---------------------------------------------------------
def _spec(**over) -> dict:
    data = {
        "budget": "1000*dim",
        "problems": [{"name": "bbob", "grid": {"dim": [2, 5, 10, 20], "function": [1]}}],
        "methods": ["random_search"],
        "seeds": [0],
    }
    return {**data, **over}


@pytest.mark.parametrize(
    ("budget", "per_dim"),
    [("1000*dim", 1000), (" dim * 7 ", 7), ({"evals": "20*dim", "seconds": 60}, 20)],
)
def test_a_per_dimension_budget_resolves_for_every_problem(budget, per_dim) -> None:
    plan = Spec.from_dict(_spec(budget=budget)).plan()
    assert sorted(t.params["dim"] for t in plan.tasks) == [2, 5, 10, 20]
    for t in plan.tasks:
        assert t.budget.evals == per_dim * t.params["dim"]
        assert t.budget.seconds == (60 if isinstance(budget, dict) else None)
    own = {"name": "bbob", "params": {"dim": 3}, "budget": "5*dim"}
    assert Spec.from_dict(_spec(problems=[own])).plan().tasks[0].budget.evals == 15


def test_grids_expand_in_order_and_targets_are_read() -> None:
    spec = Spec.from_dict(
        _spec(
            problems=[{"name": "bbob", "params": {"x0_seed": 3},
                       "grid": {"dim": [2, 5], "function": "7-8", "instance": [1]}}],
            targets=[1e-8, 1e-1, 1e-3],
        )
    )  # fmt: skip
    got = [(p.params["dim"], p.params["function"], p.params["x0_seed"]) for p in spec.problems]
    assert got == [(2, 7, 3), (2, 8, 3), (5, 7, 3), (5, 8, 3)]
    assert spec.plan().targets == (1e-1, 1e-3, 1e-8)


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"budget": "1000*d"}, r"'1000\*d' is not a budget.*N\*dim"),
        ({"budget": "0*dim"}, r"is not a budget"),
        ({"budget": "1e3*dim"}, r"is not a budget"),
        ({"budget": {"evals": "10*dim", "secs": 5}}, r"unknown key\(s\) \['secs'\]"),
        ({"targets": [1e-1, -1e-3]}, "targets must be distinct positive numbers"),
        ({"targets": [1e-1, 1e-1]}, "targets must be distinct positive numbers"),
        ({"targets": "1e-8"}, "targets must be distinct positive numbers"),
        ({"coco_output": ""}, "coco_output must be a folder name"),
        (
            {"problems": [{"name": "bbob", "grid": {"dim": []}}]},
            r"grid.dim must be a non-empty list",
        ),
        ({"problems": [{"name": "bbob", "grid": {"dim": "5-2"}}]}, "empty range"),
        ({"problems": [{"name": "bbob", "grid": {"dim": [2, 2]}}]}, "repeats a value"),
        (
            {"problems": [{"name": "bbob", "params": {"dim": 2}, "grid": {"dim": [5]}}]},
            "set in both params and grid",
        ),
        ({"problems": [{"name": "bbob", "grid": [2, 5]}]}, "grid must be a table"),
    ],
)
def test_bad_protocol_values_are_refused_with_a_clear_message(over, match) -> None:
    with pytest.raises(SpecError, match=match):
        Spec.from_dict(_spec(**over)).plan()


def test_coco_output_refuses_a_dimension_cocoex_cannot_log(tmp_path: Path) -> None:
    over = {"coco_output": str(tmp_path), "problems": [{"name": "bbob", "params": {"dim": 4}}]}
    with pytest.raises(SpecError, match=r"COCO output exists for d in \[2, 3, 5, 10, 20, 40\]"):
        Spec.from_dict(_spec(**over)).plan()
    # without COCO output, d = 4 is an ordinary bbob problem
    assert Spec.from_dict(_spec(problems=[{"name": "bbob", "params": {"dim": 4}}])).plan().tasks


def test_the_shipped_spec_states_the_protocol() -> None:
    spec = Spec.from_toml(ROOT / "benchmarks" / "specs" / "bbob.toml")
    assert spec.targets == (1e-1, 1e-3, 1e-8) and len(spec.problems) == 4 * 24 * 5
    plan = spec.plan()
    assert {t.budget.evals for t in plan.tasks} == {2000, 5000, 10000, 20000}
    assert all(t.coco is None for t in plan.tasks)  # COCO output only when asked for
    assert all(float(t.build_problem().x0.abs().max()) <= 4.0 for t in plan.tasks[:48])
