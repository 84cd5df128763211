"""A sweep's worker processes never outlive it and a dead worker never hangs it: the pool
reports a death at once, finishes the other worker's run, and a killed `optarena bench`
leaves no process behind (benchmarks/kill_sweep.py runs 20 trials of each kind)."""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pytest
import torch

from optarena.bench import Store
from optarena.bench.pool import WorkerDied, run_in_workers
from optarena.cli import main
from optarena.problems import Problem, names, register_problem

ROOT = Path(__file__).resolve().parents[1]
# "fork" starts these tasks' workers without importing torch again (the tasks use none of it)
CTX = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


def _task(arg: tuple[str, str]) -> str:
    """``("die", dir)`` kills its own process after leaving its pid in ``dir``; ``("wait", dir)``
    returns once that process is gone (the parent has seen the death and reaped it)."""
    kind, where = arg
    pid_file = Path(where) / "died.pid"
    if kind == "die":
        pid_file.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "wait":
        while True:
            if pid_file.exists() and pid_file.read_text():
                pid = int(pid_file.read_text())
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    return "waited"
            time.sleep(0.01)
    return kind


def test_a_dead_worker_stops_the_pool_after_the_runs_in_progress(tmp_path) -> None:
    tasks = [("wait", str(tmp_path)), ("die", str(tmp_path)), ("more", ""), ("more", "")]
    got = []
    with pytest.raises(WorkerDied, match=r"\(killed by SIGKILL\) while running \(.die."):
        run_in_workers(
            tasks,
            2,
            _task,
            lambda task, value: got.append((task[0], value)),
            ctx=CTX,
        )
    assert got == [("wait", "waited")]  # finished and handed over; nothing else started


def test_an_exception_in_the_work_is_raised_in_the_parent(tmp_path) -> None:
    with pytest.raises(ValueError, match="too many values to unpack"):
        run_in_workers([("a", "b", "c")], 1, _task, lambda *a: None, ctx=CTX)


def _kill_sweep():
    spec = importlib.util.spec_from_file_location(
        "kill_sweep", ROOT / "benchmarks" / "kill_sweep.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize("kind", ["parent-kill", "worker-kill"])
def test_a_killed_bench_leaves_nothing_behind(tmp_path, kind) -> None:
    wrong = _kill_sweep().trial(kind, tmp_path)
    assert wrong is None, wrong


def _sigterm_problem() -> Problem:
    calls = [0]

    def fn(x: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        if calls[0] == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` from another terminal
        return (x**2).sum()

    return Problem(name="bench_test_sigterm", fn=fn, x0=torch.ones(2, dtype=torch.float64))


if "bench_test_sigterm" not in names():
    register_problem("bench_test_sigterm")(_sigterm_problem)


def test_sigterm_stops_the_cli_like_ctrl_c(tmp_path, capsys) -> None:
    """SIGTERM ends `optarena bench` as Ctrl-C does: the run in progress is not stored, the
    finished ones are, the exit status is 143, and the handler is restored afterwards."""
    spec = tmp_path / "term.toml"
    spec.write_text(
        'name = "term"\nbudget = 50\nmethods = ["nelder_mead"]\n'
        'problems = [{name = "sphere", params = {dim = 2}}, {name = "bench_test_sigterm"}]\n'
    )
    store = tmp_path / "t.sqlite"
    before = signal.getsignal(signal.SIGTERM)
    status = main(["bench", str(spec), "--store", str(store), "--no-progress"])
    assert signal.getsignal(signal.SIGTERM) == before
    assert status == 128 + signal.SIGTERM
    assert "terminated (SIGTERM); finished runs are kept" in capsys.readouterr().err
    with Store(store) as st:
        assert [r["problem"] for r in st.runs()] == ["sphere"]
