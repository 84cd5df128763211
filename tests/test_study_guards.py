"""optarena.study: one process per study on a store (refused at the start), and NaN reports
pruned where Optuna's pruners prune them."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from _study_cases import SPACE, quadratic
from optarena.space import Real
from optarena.study import MedianPruner, SuccessiveHalvingPruner, optimize
from optarena.study.trial import Finished


def test_a_second_run_of_the_same_study_is_refused_at_the_start(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    started, release = threading.Event(), threading.Event()
    results: list = []

    def slow(c: dict) -> float:
        started.set()
        assert release.wait(30)
        return quadratic(c)

    run = threading.Thread(
        target=lambda: results.append(optimize(slow, SPACE, n_trials=2, seed=0, store=path))
    )
    run.start()
    try:
        assert started.wait(30)
        calls: list[int] = []
        with pytest.raises(RuntimeError, match=r"study 'study' in .* is being run by another"):
            optimize(lambda c: calls.append(1) or 0.0, SPACE, n_trials=2, store=path)
        assert calls == []  # refused before any trial or replay
        other = optimize(quadratic, SPACE, n_trials=2, seed=0, store=path, name="other")
        assert other.n_complete == 2  # another study on the same store runs meanwhile
    finally:
        release.set()
        run.join(60)
    assert results[0].n_complete == 2
    again = optimize(quadratic, SPACE, n_trials=3, store=path)  # the lock went with the run
    assert again.resumed == 2 and again.n_complete == 3


def test_a_finished_study_leaves_no_lock_file_and_the_next_lock_still_excludes(
    tmp_path,
) -> None:
    from optarena.bench.store import Store
    from optarena.study.lock import _lock_path, study_lock

    path = tmp_path / "s.sqlite"
    optimize(quadratic, SPACE, n_trials=2, seed=0, store=path)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".lock"] == []
    with Store(path) as st:
        lock = _lock_path(st, "study")
        assert lock is not None
        with study_lock(st, "study"):
            assert lock.exists()
            with pytest.raises(RuntimeError, match="another process"), study_lock(st, "study"):
                pass
        assert not lock.exists()
    again = optimize(quadratic, SPACE, n_trials=3, store=path)
    assert again.resumed == 2 and again.n_complete == 3


def test_a_study_held_by_another_process_is_refused_with_its_pid(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    code = textwrap.dedent(f"""
        import sys, time
        from optarena.space import Real
        from optarena.study import optimize

        def f(c):
            print("running", flush=True)
            time.sleep(60)
            return 0.0

        optimize(f, {{"x": Real(0.0, 1.0)}}, n_trials=1, store={str(path)!r}, name="s")
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "running"
        with pytest.raises(RuntimeError, match=rf"run by another process \(pid {proc.pid}\)"):
            optimize(lambda c: c["x"], {"x": Real(0.0, 1.0)}, n_trials=1, store=path, name="s")
    finally:
        proc.kill()
        proc.wait()
    study = optimize(lambda c: c["x"], {"x": Real(0.0, 1.0)}, n_trials=1, store=path, name="s")
    assert study.n_complete == 1  # killed: its lock went with it, the study resumes


def _optuna_decisions(optuna, pruner, values_per_trial):
    """Optuna's prune decision at every report of a sequential study."""
    study = optuna.create_study(pruner=pruner)
    out = []
    for values in values_per_trial:
        t = study.ask()
        pruned = False
        for step, v in enumerate(values):
            t.report(v, step)
            out.append(t.should_prune())
            if out[-1]:
                pruned = True
                break
        if pruned:
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(t, float(np.nanmin(values)) if not np.isnan(values).all() else 0.0)
    return out


def _our_decisions(pruner, values_per_trial):
    finished: list[Finished] = []
    out = []
    for number, values in enumerate(values_per_trial):
        reports: dict[int, float] = {}
        status = "complete"
        for step, v in enumerate(values):
            reports[step] = v
            out.append(pruner.prune(reports, step, finished))
            if out[-1]:
                status = "pruned"
                break
        finished.append(Finished(number, status, dict(reports)))
    return out


@pytest.mark.parametrize("kind", ["median", "successive_halving"])
def test_nan_reports_are_pruned_where_optunas_pruners_prune_them(kind) -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(2)
    trials = []
    for _ in range(30):
        values = rng.normal(size=6).cumsum()
        values[rng.random(6) < 0.3] = math.nan  # NaN reports, from the first trial on
        trials.append(values.tolist())
    trials[0] = [math.nan] * 6  # all NaN during the startup trials
    if kind == "median":
        ours = MedianPruner(n_startup_trials=3, n_warmup_steps=1)
        ref = optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    else:
        ours = SuccessiveHalvingPruner(min_resource=2, reduction_factor=2)
        ref = optuna.pruners.SuccessiveHalvingPruner(min_resource=2, reduction_factor=2)
    want = _optuna_decisions(optuna, ref, trials)
    assert _our_decisions(ours, trials) == want
    assert any(want) and not all(want)
    assert not MedianPruner(n_startup_trials=5).prune({0: math.nan}, 0, [])  # startup: kept
