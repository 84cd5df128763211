"""The optarena command: every subcommand through main([...]), errors without tracebacks."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import optarena as oa
from optarena.bench import Store
from optarena.cli import COMMANDS, main

ROOT = Path(__file__).resolve().parents[1]

SPEC = """
name = "cli"
seeds = 2
budget = 80
problems = ["sphere", {name = "rosenbrock", params = {b = 100.0}}]
methods = ["nelder_mead", {name = "pso", label = "swarm"}]
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_methods_lists_the_registry(capsys) -> None:
    code, out, _ = run(capsys, "methods")
    assert code == 0
    for info in oa.methods():
        assert f"| {info.name} " in out
    code, out, _ = run(capsys, "methods", "--json")
    data = json.loads(out)
    assert [d["name"] for d in data] == [i.name for i in oa.methods()]
    assert {"needs_grad", "supports_bounds", "is_global"} <= set(data[0])


def test_problems_lists_dimension_and_optimum(capsys) -> None:
    code, out, _ = run(capsys, "problems")
    assert code == 0
    for name in oa.problems.names():
        assert f"| {name} " in out
    assert "0.783054161501" in out
    code, out, _ = run(capsys, "problems", "--json")
    rows = {r["problem"]: r for r in json.loads(out)}
    assert rows["mlp_identity"]["dim"] == 10 and rows["rosenbrock"]["f_opt"] == 0.0


def test_run_prints_the_same_result_as_minimize(capsys) -> None:
    code, out, _ = run(
        capsys, "run", "rosenbrock", "--method", "lbfgs", "-o", "line_search=strong_wolfe",
        "--budget", "200", "--seed", "3", "-p", "b=100.0", "--json",
    )  # fmt: skip
    assert code == 0
    got = json.loads(out)
    ref = oa.minimize(
        oa.problems.get("rosenbrock", b=100.0),
        method="lbfgs",
        line_search="strong_wolfe",
        budget=200,
        seed=3,
    )
    assert got["fun"] == ref.fun and got["nfev"] == ref.nfev == len(ref.history)
    assert got["options"] == {"line_search": "strong_wolfe"} and got["params"]["b"] == 100.0
    assert got["x"] == ref.x_numpy().tolist() and got["stop_reason"] == ref.stop_reason.value
    code, out, _ = run(capsys, "run", "sphere", "-m", "pso", "-b", "100")
    assert code == 0 and "evaluations  100" in out and "f* = 0" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "nowhere"], "unknown problem 'nowhere'"),
        (["run", "sphere", "-m", "adma"], "unknown method 'adma'"),
        (["run", "sphere", "-m", "adam", "-o", "lrr=1"], r"unknown option\(s\) \['lrr'\]"),
        (["run", "sphere", "-m", "adam", "-o", "lr"], "must look like key=value"),
        (["run", "sphere", "-m", "adam", "-b", "0"], "positive number of evaluations"),
        (["run", "flower_constrained", "-m", "adam"], "cannot run here"),
        (["summary", "missing.sqlite"], "no store at"),
        (["bench", "missing.toml"], "does not exist"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(capsys, tmp_path, monkeypatch, argv, message) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith("optarena: error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert re.search(message, err), err


def test_bad_usage_exits_2(capsys) -> None:
    assert run(capsys, "bogus")[0] == 2
    assert run(capsys)[0] == 2
    assert run(capsys, "run")[0] == 2  # the problem is required
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for cmd in COMMANDS:
        assert cmd.name in out


def test_bench_then_summary(capsys, tmp_path) -> None:
    spec = tmp_path / "cli.toml"
    spec.write_text(SPEC)
    db = tmp_path / "r.sqlite"
    code, out, err = run(capsys, "bench", str(spec), "--store", str(db), "--no-progress")
    assert code == 0, err
    assert "6 runs planned, 0 already in" in err  # 2 problems x (nelder_mead + 2 pso seeds)
    assert "| swarm |" in out and "| nelder_mead |" in out
    with Store(db) as st:
        assert st.count() == 6
    code, out, err = run(capsys, "bench", str(spec), "--store", str(db), "--no-progress")
    assert code == 0 and "6 already in" in err and "0 ran now" in err
    code, out, _ = run(capsys, "summary", str(db), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {(r["problem"], r["method"]) for r in rows} == {
        (p, m) for p in ("sphere", "rosenbrock") for m in ("nelder_mead", "swarm")
    }
    assert {r["runs"] for r in rows if r["method"] == "swarm"} == {"2"}
    code, out, _ = run(capsys, "summary", str(db), "--problem", "sphere")
    assert code == 0 and "rosenbrock" not in out and "| sphere |" in out
    target = tmp_path / "table.md"
    assert run(capsys, "summary", str(db), "--out", str(target))[0] == 0
    assert target.read_text().startswith("| problem |")
    assert run(capsys, "summary", str(db), "--problem", "ackley")[0] == 1


def test_bad_spec_is_rejected_before_a_store_is_created(capsys, tmp_path) -> None:
    spec = tmp_path / "bad.toml"
    spec.write_text(SPEC.replace('"nelder_mead"', '"nelder_meed"'))
    db = tmp_path / "r.sqlite"
    code, _, err = run(capsys, "bench", str(spec), "--store", str(db))
    assert code == 1 and "unknown method 'nelder_meed'" in err and "nelder_mead" in err
    assert not db.exists()


def test_demo_writes_the_fair_table(capsys, tmp_path) -> None:
    from optarena.demo import demo_spec

    out_dir = tmp_path / "demo"
    argv = ["demo", "--out", str(out_dir), "--budget", "40", "--seeds", "2", "--workers", "1",
            "--no-progress", "--no-plot"]  # fmt: skip
    code, out, _ = run(capsys, *argv)
    assert code == 0
    plan = demo_spec(40, 2).plan()
    rows = list(csv.DictReader(io.StringIO((out_dir / "summary.csv").read_text())))
    assert {r["method"] for r in rows} == {t.label for t in plan.tasks}
    assert all(int(float(r["median_evals_used"])) <= 40 for r in rows)
    md = (out_dir / "summary.md").read_text()
    assert "mlp_identity" in md and "| adam(lr=1.0) |" in md and "| adam(lr=1.0) |" in out
    # the stop column says why each method's runs ended, as stored
    with Store(out_dir / "results.sqlite") as st:
        stored = {r["label"]: r["stop_reason"] for r in st.runs() if r["label"] == "lbfgs"}
    header, _, *lines = [ln for ln in md.splitlines() if ln.startswith("|")]
    cols = [c.strip() for c in header.strip("|").split("|")]
    lbfgs = next(ln for ln in lines if "| lbfgs |" in ln)
    cells = dict(zip(cols, [c.strip() for c in lbfgs.strip("|").split("|")], strict=True))
    assert cells["stop"] == stored["lbfgs"]
    infos = {i.name: i for i in oa.methods()}
    assert all(
        t.bounds == (infos[t.method].is_global or infos[t.method].requires_bounds)
        for t in plan.tasks
    )
    code, out, _ = run(capsys, *argv)  # a second call resumes from the store
    assert code == 0 and f"{len(plan.tasks)} already in" in out


def test_a_real_process_reports_errors_without_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "optarena.cli", "run", "sphere", "--method", "adma"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("optarena: error: unknown method 'adma'")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_a_reader_that_stops_early_is_no_error() -> None:
    """``optarena methods | head -1``: the pipe closes before the table is written."""
    import subprocess
    import sys

    code = "import sys; from optarena.cli import main; sys.exit(main(['methods']))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # as head does after its lines, here before the first is written
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 0, err
    assert "Broken pipe" not in err and "Traceback" not in err, err
