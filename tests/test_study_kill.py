"""A study killed with ``kill -9`` resumes from its store without running finished trials
again: in a process with a thread pool, and from a spec file on Dask (``local:2``)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from optarena.study import trials_frame
from optarena.study.spec import run_spec

ROOT = Path(__file__).resolve().parents[1]

OBJECTIVE = '''
import time


def train(config, trial):
    """A slow objective that logs each call; every third trial is poor from its first step."""
    with open(config["log"], "a") as fh:
        fh.write(f"{trial.number} {config['x']!r}\\n")
    poor = 100.0 if trial.number % 3 == 2 else 0.0
    for step in range(3):
        trial.report(step, config["x"] ** 2 + poor + 1.0 / (step + 1))
        time.sleep(0.1 + 0.1 * (trial.number % 2))
    return config["x"] ** 2
'''


def _stored(path: Path) -> list[int]:
    """Numbers of the trials in the store (none while it is being created)."""
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return [r[0] for r in conn.execute("SELECT number FROM trials ORDER BY number")]
    except sqlite3.OperationalError:  # the schema is not there yet
        return []


def _calls(log: Path) -> list[tuple[int, str]]:
    if not log.exists():
        return []
    return [(int(a), b) for a, b in (line.split() for line in log.read_text().splitlines())]


def _kill_when(
    proc: subprocess.Popen, store: Path, log: Path, n: int, timeout: float = 120
) -> list[int]:
    """``kill -9`` the process (and its workers) once ``n`` trials are stored and a trial
    is running (called, not stored)."""
    t0 = time.monotonic()
    try:
        while len(_stored(store)) < n or len(_calls(log)) <= len(_stored(store)):
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the study ended before it was killed: {err.decode()[-2000:]}")
            if time.monotonic() - t0 > timeout:
                pytest.fail("the study stored too few trials in time")
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return _stored(store)


def _check_resumed(before: list[int], calls_before: int, log: Path, n_trials: int) -> None:
    calls = _calls(log)
    again = [number for number, _ in calls[calls_before:]]
    assert not set(again) & set(before), "a finished trial was run again"
    x_of: dict[int, str] = {}
    for number, x in calls:  # a trial run again (in flight at the kill) has the same params
        assert x_of.setdefault(number, x) == x
    assert sorted(x_of) == list(range(n_trials))


def test_a_killed_study_resumes_without_running_finished_trials(tmp_path) -> None:
    (tmp_path / "slow_objective.py").write_text(OBJECTIVE)
    store, log = tmp_path / "s.sqlite", tmp_path / "calls.log"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        from concurrent.futures import ThreadPoolExecutor
        sys.path.insert(0, {str(tmp_path)!r})
        from slow_objective import train
        from optarena.space import Fixed, Real
        from optarena.study import optimize
        with ThreadPoolExecutor(2) as ex:
            optimize(train, {{"x": Real(-2.0, 2.0), "log": Fixed({str(log)!r})}}, n_trials=9,
                     in_flight=2, executor=ex, seed=0, store={str(store)!r}, name="k")
    """)
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)  # fmt: skip
    before = _kill_when(proc, store, log, 3)
    calls_before = len(_calls(log))
    assert calls_before > len(before)  # some trials were running when it died
    sys.path.insert(0, str(tmp_path))
    try:
        from slow_objective import train
    finally:
        sys.path.remove(str(tmp_path))
    from optarena.space import Fixed, Real
    from optarena.study import optimize

    with pytest.warns(UserWarning, match="one trial at a time"):  # resumed in this process
        study = optimize(train, {"x": Real(-2.0, 2.0), "log": Fixed(str(log))}, n_trials=9,
                         in_flight=2, executor=None, seed=0, store=store, name="k")  # fmt: skip
    assert study.resumed == len(before) and study.n_trials == 9
    _check_resumed(before, calls_before, log, 9)
    assert sorted(trials_frame(store, "k").number) == list(range(9))


def test_a_spec_study_on_dask_survives_kill_9_and_stores_pruned_trials(tmp_path) -> None:
    pytest.importorskip("distributed")
    (tmp_path / "slow_objective.py").write_text(OBJECTIVE)
    log = tmp_path / "calls.log"
    spec = tmp_path / "sweep.toml"
    spec.write_text(
        textwrap.dedent(f"""
        [study]
        name = "sweep"
        objective = "slow_objective:train"
        method = "tpe"
        n_trials = 8
        in_flight = 2
        dask = "local:2"
        store = "sweep.sqlite"
        seed = 1
        pruner = {{type = "median", n_startup_trials = 1}}

        [study.space]
        x = {{type = "real", lo = -2.0, hi = 2.0, log = false}}
        log = {{type = "fixed", value = {str(log)!r}}}
    """)
    )
    store = tmp_path / "sweep.sqlite"
    cmd = [sys.executable, "-m", "optarena.cli", "study", str(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    before = _kill_when(proc, store, log, 3)
    calls_before = len(_calls(log))
    study = run_spec(spec)  # resumes on a new local:2 cluster
    assert study.resumed == len(before) and study.n_trials == 8
    _check_resumed(before, calls_before, log, 8)
    frame = trials_frame(store, "sweep")
    assert sorted(frame.number) == list(range(8))
    pruned = frame[frame.status == "pruned"]
    poor = frame[frame.number % 3 == 2]  # launched once trial 0 or 1 completed: pruned
    assert (poor.status == "pruned").all() and (poor.value > 100).all()
    assert set(pruned.number) >= set(poor.number) and len(pruned) >= 2
