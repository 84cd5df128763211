"""Specs are checked before running; the runner resumes, records errors, and a sweep killed
with SIGKILL midway and run again holds every run exactly once, equal to a serial run."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from optarena.bench import (
    MethodEntry,
    ProblemEntry,
    Spec,
    SpecError,
    Store,
    load_spec,
    run_spec,
    summarize_store,
)
from optarena.problems import Problem, names, register_problem

ROOT = Path(__file__).resolve().parents[1]

# -- test problems, registered in this process only (serial runs) -----------------------------
_ARMED = {"ctrl_c": False}


def _register(name: str, factory) -> None:
    if name not in names():
        register_problem(name)(factory)


def _step_problem() -> Problem:
    return Problem(
        name="bench_test_step",
        fn=lambda x: torch.floor(x).abs().sum(),
        x0=torch.full((2,), 2.5, dtype=torch.float64),
        bounds=(
            torch.full((2,), -3.0, dtype=torch.float64),
            torch.full((2,), 3.0, dtype=torch.float64),
        ),
        f_opt=0.0,
        differentiable=False,
    )


def _raising_problem() -> Problem:
    x0 = torch.tensor([1.0, 1.0], dtype=torch.float64)

    def fn(x: torch.Tensor) -> torch.Tensor:
        if not torch.equal(x, x0):
            raise ZeroDivisionError("the objective broke")
        return (x**2).sum()

    return Problem(name="bench_test_raises", fn=fn, x0=x0, f_opt=0.0)


def _ctrl_c_problem() -> Problem:
    calls = [0]

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if _ARMED["ctrl_c"] and calls[0] == 5:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to this process
            time.sleep(1.0)  # the handler raises KeyboardInterrupt during the sleep
        return (x**2).sum()

    return Problem(name="bench_test_ctrl_c", fn=fn, x0=torch.ones(2, dtype=torch.float64))


_register("bench_test_step", _step_problem)
_register("bench_test_raises", _raising_problem)
_register("bench_test_ctrl_c", _ctrl_c_problem)


_HOOK: dict = {"fn": None}


def _hook_problem() -> Problem:
    def fn(x: torch.Tensor) -> torch.Tensor:
        hook, _HOOK["fn"] = _HOOK["fn"], None
        if hook is not None:
            hook()
        return (x**2).sum()

    return Problem(name="bench_test_hook", fn=fn, x0=torch.ones(2, dtype=torch.float64))


_register("bench_test_hook", _hook_problem)


def small_spec(**kw) -> Spec:
    base = dict(
        problems=(ProblemEntry("sphere", {"dim": 3}), ProblemEntry("rosenbrock")),
        methods=(MethodEntry("nelder_mead"), MethodEntry("pso"), MethodEntry("adam", {"lr": 0.1})),
        seeds=(0, 1),
        budget=120,
        name="small",
    )
    base.update(kw)
    return Spec(**base)


# -- validation before running ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"problems": (ProblemEntry("spheer"),)},
            "unknown problem 'spheer'.*'sphere'",
        ),
        (
            {"problems": (ProblemEntry("sphere", {"size": 3}),)},
            r"unknown parameter\(s\) \['size'\]",
        ),
        ({"problems": (ProblemEntry("sphere", {"dtype": "float99"}),)}, "not a torch dtype"),
        ({"methods": (MethodEntry("adma"),)}, "unknown method 'adma'.*Did you mean 'adam'"),
        (
            {"methods": (MethodEntry("adam", {"learning_rate": 1}),)},
            r"unknown option\(s\) \['learning_rate'\]",
        ),
        ({"methods": (MethodEntry("adam", {"lr": -1.0}),)}, r"lr.*(positive|> 0)"),
        ({"methods": (MethodEntry("adam", {"lr": object()}),)}, "only numbers, strings"),
        ({"methods": (MethodEntry("pso", bounds="sometimes"),)}, "bounds must be one of"),
        ({"methods": (MethodEntry("adam"), MethodEntry("adam", {}, "adam"))}, "used twice"),
        ({"methods": (MethodEntry("adam"), MethodEntry("adam", {}, "again"))}, "are the same runs"),
        ({"methods": (MethodEntry("*", {"lr": 1.0}),)}, "takes no options"),
        ({"budget": 0}, "positive number of evaluations"),
        ({"budget": -5}, "positive number of evaluations"),
        ({"budget": "lots"}, "number of evaluations or a table"),
        ({"budget": {"evals": 0}}, "must be positive"),
        ({"budget": {"evls": 10}}, r"unknown key\(s\) \['evls'\]"),
        ({"budget": {"target": 1.0}}, "sets no limit"),
        ({"budget": None}, "has no budget"),
        ({"seeds": 0}, "positive count"),
        ({"seeds": [1, 1]}, "repeated seeds"),
        ({"seeds": [-1]}, "non-negative"),
        ({"problems": ()}, "no problems"),
        ({"methods": ()}, "no methods"),
    ],
)
def test_bad_specs_are_rejected_before_running(tmp_path, change, message) -> None:
    spec = small_spec(**change)
    with pytest.raises(SpecError, match=message):
        spec.plan()
    store = tmp_path / "never.sqlite"
    with pytest.raises(SpecError, match=message):
        run_spec(spec, store)
    assert not store.exists()


def test_bounds_policies_must_match_capabilities() -> None:
    import optarena

    unbounded = [i.name for i in optarena.methods() if not i.supports_bounds]
    boxed = [i.name for i in optarena.methods() if i.requires_bounds]
    assert boxed, "the registry should hold a method that needs a box"
    with pytest.raises(SpecError, match="needs bounds"):
        small_spec(methods=(MethodEntry(boxed[0], bounds="never"),)).plan()
    for name in unbounded[:1]:
        with pytest.raises(SpecError, match="does not support bounds"):
            small_spec(methods=(MethodEntry(name, bounds="always"),)).plan()


def test_bad_toml_files_name_the_problem(tmp_path) -> None:
    cases = {
        'budget = 10\nproblems = ["sphere"]\nmethods = ["adam"]\ncolour = 1': "top-level key",
        'problems = ["sphere"]\nmethods = ["adam"]': "needs `budget`",
        'budget = 10\nproblems = [{name = "sphere", parms = {}}]\nmethods = ["adam"]': "parms",
        'budget = 10\nproblems = ["sphere"]\nmethods = [{options = {lr = 1}}]': "needs name",
        "budget = = 10": "not valid TOML",
    }
    for i, (text, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}.toml"
        path.write_text(text)
        with pytest.raises(SpecError, match=message) as err:
            load_spec(path)
        assert str(path) in str(err.value)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "absent.toml")


@pytest.mark.parametrize("name", ["seeds.toml", "classic.toml"])
def test_shipped_specs_are_valid(name) -> None:
    plan = load_spec(ROOT / "benchmarks" / "specs" / name).plan()
    assert plan.tasks and len(set(plan.keys)) == len(plan.keys)


# -- planning ----------------------------------------------------------------------------------
def test_keys_and_seeds_come_from_the_spec_not_the_order() -> None:
    a = small_spec().plan()
    b = small_spec(
        problems=tuple(reversed(small_spec().problems)),
        methods=tuple(reversed(small_spec().methods)),
    ).plan()
    assert sorted(a.keys) == sorted(b.keys)
    by_key = {t.key: t for t in b.tasks}
    for t in a.tasks:
        assert by_key[t.key].seed == t.seed and by_key[t.key].label == t.label
    # Any change to what determines the numbers changes the key.
    assert set(small_spec(budget=121).plan().keys).isdisjoint(a.keys)
    rosen = small_spec(problems=(ProblemEntry("rosenbrock", {"b": 100.0}),)).plan()
    assert set(rosen.keys).isdisjoint(a.keys)
    # Writing a default parameter out does not.
    explicit = small_spec(problems=(ProblemEntry("sphere", {"dim": 3, "dtype": "float64"}),))
    assert set(explicit.plan().keys) <= set(a.keys)


def test_deterministic_methods_run_once_stochastic_once_per_seed() -> None:
    plan = small_spec(seeds=4).plan()
    count = {}
    for t in plan.tasks:
        count[(t.problem, t.method)] = count.get((t.problem, t.method), 0) + 1
    assert count[("sphere", "pso")] == 4
    assert count[("sphere", "nelder_mead")] == 1 and count[("sphere", "adam")] == 1
    every = small_spec(seeds=4, deterministic_once=False).plan()
    assert len(every.tasks) == 2 * 3 * 4


def test_inapplicable_pairs_are_skipped_with_a_reason() -> None:
    spec = small_spec(
        problems=(ProblemEntry("bench_test_step"), ProblemEntry("flower_constrained")),
        methods=(MethodEntry("adam"), MethodEntry("nelder_mead"), MethodEntry("pso")),
    )
    plan = spec.plan()
    reasons = {(s.problem, s.label): s.reason for s in plan.skipped}
    assert "needs a gradient" in reasons[("bench_test_step", "adam")]
    assert "constraints" in reasons[("flower_constrained", "pso")]
    ran = {(t.problem, t.method) for t in plan.tasks}
    assert ("bench_test_step", "nelder_mead") in ran and ("bench_test_step", "pso") in ran
    assert all(t.bounds == (t.method == "pso") for t in plan.tasks)


def test_wildcard_adds_every_other_method() -> None:
    import optarena

    spec = small_spec(methods=(MethodEntry("adam", {"lr": 0.1}), MethodEntry("*")))
    plan = spec.plan()
    methods = {t.method for t in plan.tasks} | {s.label for s in plan.skipped}
    assert methods == {i.name for i in optarena.methods()}
    assert [t.options for t in plan.tasks if t.method == "adam"] == [{"lr": 0.1}] * 2


# -- running ----------------------------------------------------------------------------------
def test_resume_skips_finished_runs(tmp_path) -> None:
    spec = small_spec()
    path = tmp_path / "r.sqlite"
    first = run_spec(spec, path, progress=False)
    assert first.ran == first.planned == len(spec.plan().tasks) and first.already_done == 0
    again = run_spec(spec, path, progress=False)
    assert again.ran == 0 and again.already_done == first.planned
    with Store(path) as st:
        victim = st.runs(method="pso")[0]
        st.delete([victim["key"]])
    third = run_spec(spec, path, progress=False)
    assert third.ran == 1
    with Store(path) as st:
        assert st.count() == first.planned
        redone = st.runs(key=victim["key"])[0]
        assert redone["fun"] == victim["fun"] and redone["nfev"] == victim["nfev"]
        summary = summarize_store(st, keys=spec.plan().keys)
        assert {r.label for r in summary.rows} == {"nelder_mead", "pso", "adam(lr=0.1)"}


def test_a_run_stored_meanwhile_by_another_writer_is_kept(tmp_path) -> None:
    from optarena.bench.runner import record_from_result

    spec = small_spec(
        problems=(ProblemEntry("bench_test_hook"),), methods=(MethodEntry("nelder_mead"),)
    )
    (task,) = spec.plan().tasks
    path = tmp_path / "r.sqlite"

    def other_writer() -> None:  # another process finishes the same run while this one runs
        with Store(path) as other:
            other.write(record_from_result(task, None, "error", "written by the other"))

    _HOOK["fn"] = other_writer
    try:
        report = run_spec(spec, path, progress=False)
    finally:
        _HOOK["fn"] = None
    assert report.ran == 0 and report.already_done == 1
    with Store(path) as st:
        (row,) = st.runs()
        assert row["message"] == "written by the other"


def test_problem_variants_are_told_apart_in_summaries(tmp_path) -> None:
    spec = small_spec(
        problems=(ProblemEntry("rosenbrock"), ProblemEntry("rosenbrock", {"b": 100.0})),
        methods=(MethodEntry("nelder_mead"),),
    )
    path = tmp_path / "r.sqlite"
    run_spec(spec, path, progress=False)
    with Store(path) as st:
        groups = {r.problem for r in summarize_store(st).rows}
    assert groups == {"rosenbrock(b=5.0)", "rosenbrock(b=100.0)"}


def test_an_objective_error_is_that_runs_failure_only(tmp_path) -> None:
    spec = small_spec(
        problems=(ProblemEntry("bench_test_raises"), ProblemEntry("sphere", {"dim": 3})),
        methods=(MethodEntry("nelder_mead"),),
    )
    path = tmp_path / "r.sqlite"
    report = run_spec(spec, path, progress=False)
    assert report.ran == 2 and report.errors == 1
    with Store(path) as st:
        (bad,) = st.runs(status="error")
        (good,) = st.runs(status="ok")
        assert bad["problem"] == "bench_test_raises" and good["problem"] == "sphere"
        assert "ZeroDivisionError" in bad["message"] and "evaluation 2" in bad["message"]
        assert bad["nfev"] == 1 and bad["fun"] == 2.0  # the best-so-far before the error
        assert len(st.history(bad["run_id"])["f"]) == 1
    assert run_spec(spec, path, progress=False).ran == 0  # an error is a finished run ...
    retry = run_spec(spec, path, progress=False, retry_errors=True)  # ... unless asked
    assert retry.ran == 1 and retry.errors == 1
    with Store(path) as st:
        assert st.count() == 2


def test_ctrl_c_keeps_finished_runs_and_stores_no_partial_run(tmp_path) -> None:
    spec = small_spec(
        problems=(ProblemEntry("sphere", {"dim": 3}), ProblemEntry("bench_test_ctrl_c")),
        methods=(MethodEntry("nelder_mead"),),
    )
    path = tmp_path / "r.sqlite"
    # Ctrl-C raises KeyboardInterrupt as in a terminal, even if this process was started
    # with SIGINT ignored (as background jobs are).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    _ARMED["ctrl_c"] = True
    try:
        with pytest.raises(KeyboardInterrupt):
            run_spec(spec, path, progress=False)
    finally:
        _ARMED["ctrl_c"] = False
        signal.signal(signal.SIGINT, before)
    with Store(path) as st:
        assert [r["problem"] for r in st.runs()] == ["sphere"]
    report = run_spec(spec, path, progress=False)
    assert report.already_done == 1 and report.ran == 1


def test_workers_must_be_positive(tmp_path) -> None:
    with pytest.raises(ValueError, match="workers must be a positive int"):
        run_spec(small_spec(), tmp_path / "r.sqlite", workers=0)


# -- killed midway with SIGKILL, resumed with two workers, equal to a serial run ----------------
KILL_SPEC = """
name = "kill"
seeds = [0, 1, 2]
deterministic_once = false
budget = 800
problems = [{name = "rosenbrock"}, {name = "sphere", params = {dim = 5}}]
methods = [
  "nelder_mead",
  {name = "adam", options = {lr = 0.05}},
  "cmaes",
  "pso",
]
"""


def _count_runs(path: Path) -> int:
    """Stored runs, read as any SQLite client would (a read-write connection can recover the
    WAL index a killed writer left behind; a read-only one may not)."""
    if not path.exists():
        return 0
    try:
        c = sqlite3.connect(path, timeout=5.0)
        try:
            return int(c.execute("SELECT count(*) FROM runs").fetchone()[0])
        finally:
            c.close()
    except sqlite3.OperationalError:
        return 0  # the schema is not created yet


def _bench(spec: Path, store: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "optarena.cli", "bench", str(spec), "--store", str(store),
           "--workers", "2", "--no-progress", "--format", "none"]  # fmt: skip
    return subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # workers of the killed sweep, if any linger
        os.killpg(proc.pid, signal.SIGKILL)


def test_killed_sweep_resumes_to_exactly_the_serial_results(tmp_path) -> None:
    spec_path = tmp_path / "kill.toml"
    spec_path.write_text(KILL_SPEC)
    spec = load_spec(spec_path)
    plan = spec.plan()
    total = len(plan.tasks)
    assert total == 24
    store = tmp_path / "parallel.sqlite"

    proc = _bench(spec_path, store)
    try:
        deadline = time.monotonic() + 120
        while _count_runs(store) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no run was stored in time"
            time.sleep(0.02)
        # freeze the whole sweep (parent and workers) before counting, so the count is the
        # number of runs stored at the kill, whatever the machine's speed
        os.killpg(proc.pid, signal.SIGSTOP)
        at_kill = _count_runs(store)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        _kill_group(proc)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert _count_runs(store) == at_kill  # nothing was written after the freeze
    assert 3 <= at_kill < total, "the sweep must be killed midway"
    with Store(store) as st:  # what survived is whole: every stored run has its full history
        assert st.query("PRAGMA integrity_check")[0][0] == "ok"
        for row in st.runs():
            assert len(st.history(row["run_id"])["f"]) == row["nfev"]

    again = run_spec(spec, store, workers=2, progress=False)  # resume, two workers again
    assert again.already_done == at_kill and again.ran == total - at_kill

    serial = tmp_path / "serial.sqlite"
    run_spec(spec, serial, workers=1, progress=False)
    with Store(store) as par, Store(serial) as ser:
        dup = par.query("SELECT key FROM runs GROUP BY key HAVING count(*) > 1")
        assert dup == []
        par_runs = {r["key"]: r for r in par.runs()}
        ser_runs = {r["key"]: r for r in ser.runs()}
        assert set(par_runs) == set(ser_runs) == set(plan.keys)
        fields = ("status", "fun", "nfev", "ngev", "stop_reason", "best_eval", "x", "seed")
        for key, p in par_runs.items():
            s = ser_runs[key]
            assert {f: p[f] for f in fields} == {f: s[f] for f in fields}, p["label"]
            hp, hs = par.history(p["run_id"]), ser.history(s["run_id"])
            for col in ("evals", "grad_evals", "f", "best_f"):
                np.testing.assert_array_equal(hp[col], hs[col])
