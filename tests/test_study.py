"""optarena.study: trials stored as they finish, failures, pruning, resume by replay."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from _study_cases import SPACE, quadratic
from optarena.bench.store import Store
from optarena.space import Int
from optarena.study import (
    MedianPruner,
    SuccessiveHalvingPruner,
    TrialPruned,
    optimize,
    reports_frame,
    trials_frame,
)
from optarena.study.trial import Finished


def test_trials_are_stored_with_status_error_and_reports(tmp_path) -> None:
    def f(c, trial):
        for step in range(3):
            trial.report(step, quadratic(c) + 1.0 / (step + 1))
        if trial.number == 2:
            raise RuntimeError("diverged")
        if trial.number == 4:
            return math.nan
        return quadratic(c)

    path = tmp_path / "s.sqlite"
    study = optimize(f, SPACE, method="random_search", n_trials=8, seed=3, store=path, name="a",
                     catch=RuntimeError)  # fmt: skip
    assert (study.n_complete, study.n_failed, study.n_pruned) == (6, 2, 0)
    frame = trials_frame(path, "a")
    with pytest.raises(KeyError, match=r"no study 'aa' .* Did you mean 'a'\? It holds: \['a'"):
        trials_frame(path, "aa")  # was an empty table
    assert list(frame.number) == list(range(8))
    assert list(frame.columns[:8]) == [
        "study", "number", "status", "value", "seconds", "error", "started", "finished"
    ]  # fmt: skip
    assert {"params_x", "params_n", "params_act"} <= set(frame.columns)
    failed = frame[frame.status == "failed"]
    assert list(failed.number) == [2, 4]
    assert failed.error.tolist() == ["RuntimeError: diverged", "the objective returned NaN"]
    assert failed.value.isna().all()
    ok = frame[frame.status == "complete"]
    for _, row in ok.iterrows():
        cfg = {"x": row.params_x, "n": int(row.params_n), "act": row.params_act}
        assert row.value == quadratic(cfg)
    assert study.best_value == ok.value.min()
    assert study.best_config == study.result.configs()[study.best_number]
    reports = reports_frame(path, "a")
    assert len(reports) == 8 * 3 and list(reports.columns) == ["study", "number", "step", "value"]
    # the method was told the failures as failures (NaN), the others' values
    told = study.result.history.f
    assert np.isnan(told[[2, 4]]).all() and np.allclose(told[ok.number], ok.value)
    errors = [e["error"] for e in study.result.info["failures"]]
    assert errors == [f"TrialFailed: {e}" for e in failed.error]
    assert "8 trials (6 complete, 0 pruned, 2 failed)" in repr(study)


def test_objective_of_one_parameter_gets_the_config_only() -> None:
    seen = []
    study = optimize(lambda c: seen.append(dict(c)) or quadratic(c), SPACE, n_trials=3, seed=0)
    assert len(seen) == 3 and study.n_complete == 3 and set(seen[0]) == {"x", "n", "act"}


def test_resume_replays_and_gives_the_same_trials_as_one_run(tmp_path) -> None:
    calls: list[int] = []

    def f(c, trial):
        calls.append(trial.number)
        return quadratic(c)

    once = optimize(f, SPACE, method="tpe", n_trials=14, seed=5, n_startup=4)
    path = tmp_path / "s.sqlite"
    optimize(f, SPACE, method="tpe", n_trials=6, seed=5, n_startup=4, store=path)
    calls.clear()
    again = optimize(f, SPACE, method="tpe", n_trials=14, n_startup=4, store=path)
    assert calls == list(range(6, 14))  # finished trials are not run again
    assert again.resumed == 6 and again.seed == 5
    cols = ["number", "status", "value", "params_x", "params_n", "params_act"]
    assert again.trials[cols].equals(once.trials[cols])


def test_resume_refuses_another_seed_space_or_method_and_a_changed_candidate(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    optimize(quadratic, SPACE, method="tpe", n_trials=3, seed=1, store=path)
    with pytest.raises(ValueError, match="stored with seed 1, not 2"):
        optimize(quadratic, SPACE, method="tpe", n_trials=4, seed=2, store=path)
    with pytest.raises(ValueError, match="stored with method tpe, not random_search"):
        optimize(quadratic, SPACE, method="random_search", n_trials=4, seed=1, store=path)
    with pytest.raises(ValueError, match="stored with space"):
        optimize(quadratic, {**SPACE, "n": Int(0, 6)}, n_trials=4, seed=1, store=path)
    with pytest.raises(ValueError, match="stored with options"):
        optimize(quadratic, SPACE, n_trials=4, seed=1, store=path, n_startup=3)
    conn = sqlite3.connect(path)
    params = json.loads(conn.execute("SELECT params FROM trials WHERE number = 1").fetchone()[0])
    params["x"] += 0.5
    conn.execute("UPDATE trials SET params = ? WHERE number = 1", (json.dumps(params),))
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="replaying trial 1 gives"):
        optimize(quadratic, SPACE, method="tpe", n_trials=4, seed=1, store=path)


def test_a_study_resumes_only_with_its_pruner(tmp_path) -> None:
    """The stored trials were pruned by the stored pruner: another one (or none) is refused
    as another seed is; the same pruner, by name or as an object, resumes."""

    def f(c, trial):
        trial.report(0, quadratic(c))
        return quadratic(c)

    path = tmp_path / "s.sqlite"
    run = {"method": "random_search", "seed": 0, "store": path}
    optimize(f, SPACE, n_trials=3, pruner=MedianPruner(n_startup_trials=1), **run)
    for other in (None, "median", SuccessiveHalvingPruner()):
        with pytest.raises(ValueError, match=r"stored with pruner .*n_startup_trials.*1"):
            optimize(f, SPACE, n_trials=4, pruner=other, **run)
    same = {"type": "median", "n_startup_trials": 1}
    study = optimize(f, SPACE, n_trials=5, pruner=same, **run)
    assert study.resumed == 3 and study.n_trials == 5
    optimize(quadratic, SPACE, n_trials=2, name="free", **run)  # no pruner, stored as none
    with pytest.raises(ValueError, match="stored with pruner None"):
        optimize(f, SPACE, n_trials=3, name="free", pruner="median", **run)


def test_in_flight_without_an_executor_warns_once_naming_executor() -> None:
    with pytest.warns(UserWarning, match=r"in_flight=3 with executor=None") as caught:
        study = optimize(quadratic, SPACE, n_trials=4, in_flight=3, seed=0)
    assert len(caught) == 1 and "pass executor=" in str(caught[0].message)
    assert caught[0].filename == __file__  # points at the caller's line
    assert study.n_complete == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        optimize(quadratic, SPACE, n_trials=2, seed=0)  # in_flight=1: nothing to say
        with ThreadPoolExecutor(2) as ex:
            optimize(quadratic, SPACE, n_trials=2, in_flight=2, executor=ex, seed=0)


def test_in_flight_trials_run_at_once_on_an_executor() -> None:
    lock, now, peak = threading.Lock(), [0], [0]

    def f(c):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.2)
        with lock:
            now[0] -= 1
        return quadratic(c)

    with ThreadPoolExecutor(3) as ex:
        study = optimize(f, SPACE, method="tpe", n_trials=9, in_flight=3, executor=ex, seed=0)
    assert peak[0] == 3 and study.n_complete == 9
    assert sorted(study.trials.number) == list(range(9))
    with Store(":memory:") as st:  # tpe proposes beside pending trials: its options stay
        with pytest.warns(UserWarning, match="one trial at a time"):  # no executor
            optimize(quadratic, SPACE, n_trials=2, in_flight=2, executor=None, store=st, seed=0)
        assert json.loads(st.query("SELECT options FROM studies")[0][0]) == {}


def test_pruned_trials_are_stored_as_pruned_and_told_their_last_value(tmp_path) -> None:
    def f(c, trial):
        v = quadratic(c)
        for step in range(4):
            trial.report(step, v + 10.0 / (step + 1))
        return v

    path = tmp_path / "s.sqlite"
    pr = MedianPruner(n_startup_trials=3)
    study = optimize(f, SPACE, method="random_search", n_trials=12, seed=0, store=path, pruner=pr)
    frame, reports = trials_frame(path), reports_frame(path)
    pruned = frame[frame.status == "pruned"]
    assert study.n_pruned == len(pruned) > 0
    for _, row in pruned.iterrows():
        mine = reports[reports.number == row.number]
        assert row.value == mine.value.iloc[-1] and len(mine) < 4  # stopped early
        assert row.number >= 3  # not before n_startup_trials complete ones
        assert study.result.history.f[row.number] == row.value


def _median_reference(reports, step, finished, n_startup):
    done = [f for f in finished if f.status == "complete"]
    if len(done) < n_startup:
        return False
    at = sorted(f.reports[step] for f in done if step in f.reports)
    if not at:
        return False
    k = len(at)
    med = at[k // 2] if k % 2 else 0.5 * (at[k // 2 - 1] + at[k // 2])
    return min(reports.values()) > med  # the trial's best so far, as Optuna compares


def test_median_pruner_compares_the_best_so_far_with_the_median_at_the_step() -> None:
    rng = np.random.default_rng(0)
    pr = MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    for _ in range(200):
        finished = [
            Finished(i, str(rng.choice(["complete", "pruned", "failed"])),
                     {s: float(rng.normal()) for s in range(int(rng.integers(0, 5)))})
            for i in range(int(rng.integers(0, 6)))
        ]  # fmt: skip
        step = int(rng.integers(0, 4))
        reports = {s: float(rng.normal()) for s in range(step + 1)}
        want = step >= 1 and _median_reference(reports, step, finished, 2)
        assert pr.prune(reports, step, finished) == want
    done = [Finished(i, "complete", {0: 1.0, 1: 1.0}) for i in range(2)]
    assert pr.prune({0: math.nan, 1: math.nan}, 1, done)  # every report NaN, past startup
    assert not pr.prune({0: math.nan, 1: math.nan}, 1, done[:1])  # startup: as Optuna, kept


def test_successive_halving_decides_as_optunas_in_a_sequential_study() -> None:
    optuna = pytest.importorskip("optuna")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    ref = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    study = optuna.create_study(pruner=ref)
    rng = np.random.default_rng(1)
    finished: list[Finished] = []
    n_pruned = 0
    for number in range(40):
        t = study.ask()
        values = rng.normal(size=12).cumsum() + rng.normal()
        reports: dict[int, float] = {}
        status = "complete"
        for step, v in enumerate(values.tolist()):
            t.report(v, step)
            reports[step] = v
            want = t.should_prune()
            assert ours.prune(reports, step, finished) == want, (number, step)
            if want:
                status = "pruned"
                break
        if status == "pruned":
            study.tell(t, state=optuna.trial.TrialState.PRUNED)
            n_pruned += 1
        else:
            study.tell(t, float(values[-1]))
        finished.append(Finished(number, status, reports))
    assert 0 < n_pruned < 40


def test_trial_pruned_raised_by_the_objective_and_bad_inputs() -> None:
    def f(c, trial):
        raise TrialPruned

    study = optimize(f, SPACE, n_trials=2, seed=0)
    assert study.n_pruned == 2 and study.best_config is None
    assert np.isnan(study.result.history.f).all()  # pruned before any report: told NaN
    with pytest.raises(ValueError, match="n_trials must be an int >= 1"):
        optimize(quadratic, SPACE, n_trials=0)
    with pytest.raises(ValueError, match="a pruner is None"):
        optimize(quadratic, SPACE, n_trials=1, pruner="hyperband")
    with pytest.raises(TypeError, match="executor must be"):
        optimize(quadratic, SPACE, n_trials=1, executor=3)


def test_the_store_holds_the_study_tables_of_the_contract(tmp_path) -> None:
    with Store(tmp_path / "s.sqlite") as st:
        cols = {
            t: [r[1] for r in st.query(f"PRAGMA table_info({t})")]
            for t in ("studies", "trials", "trial_reports")
        }
    assert cols == {
        "studies": ["study", "space", "method", "options", "seed", "in_flight", "pruner",
                    "created"],
        "trials": ["study", "number", "params", "status", "value", "seconds", "error", "told",
                   "started", "finished"],
        "trial_reports": ["study", "number", "step", "value"],
    }  # fmt: skip


def test_a_spec_study_from_the_command_line_is_an_arena_run(tmp_path, capsys) -> None:
    from optarena.bench.summary import summarize_store
    from optarena.cli import main

    (tmp_path / "quad_objective.py").write_text(
        "def f(config):\n    return (config['x'] - 1.0) ** 2 + config['n']\n"
    )
    params = {
        "x": {"type": "real", "lo": -2.0, "hi": 2.0, "log": False},
        "n": {"type": "int", "lo": 0, "hi": 3, "log": False},
    }
    space = {"version": 1, "params": params}
    (tmp_path / "space.json").write_text(json.dumps(space))
    spec = tmp_path / "quad.toml"
    spec.write_text(
        '[study]\nobjective = "quad_objective:f"\nspace = "space.json"\nmethod = "tpe"\n'
        'n_trials = 6\nseed = 0\nstore = "q.sqlite"\npruner = "successive_halving"\n'
        "[study.options]\nn_startup = 3\n"
    )
    with pytest.warns(UserWarning, match="never prunes"):  # the objective cannot report
        assert main(["study", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "Study('quad', method='tpe', seed=0: 6 trials (6 complete" in out
    frame = trials_frame(tmp_path / "q.sqlite", "quad")
    with Store(tmp_path / "q.sqlite") as st:
        (run,) = st.runs()
        assert run["problem"] == "study:quad" and run["nfev"] == 6
        assert run["fun"] == frame.value.min()
        assert "study:quad" in str(summarize_store(st))
        row = st.query("SELECT pruner, options FROM studies")[0]
        assert json.loads(row["pruner"])["type"] == "successive_halving"
        assert json.loads(row["options"]) == {"n_startup": 3}
    with pytest.warns(UserWarning, match="never prunes"):
        assert main(["study", str(spec), "--n-trials", "8"]) == 0  # resumed: 2 more trials
    assert len(trials_frame(tmp_path / "q.sqlite")) == 8
    with Store(tmp_path / "q.sqlite") as st:
        assert st.count() == 1 and st.runs()[0]["nfev"] == 8
        seconds = st.history(st.runs()[0]["run_id"])["seconds"]
        frame = trials_frame(st, "quad")  # across both calls, from the first trial's start
        assert np.allclose(np.sort(seconds), np.sort(frame.finished - frame.started.min()))


def test_a_study_resumes_with_another_in_flight_keeping_its_popsize(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    with ThreadPoolExecutor(2) as ex:
        optimize(quadratic, SPACE, n_trials=4, in_flight=2, executor=ex, seed=0, store=path)
    study = optimize(quadratic, SPACE, n_trials=6, in_flight=1, store=path)
    assert study.resumed == 4 and study.n_complete == 6
    with pytest.raises(ValueError, match="stored with options"):
        optimize(quadratic, SPACE, n_trials=7, popsize=3, store=path)


def test_an_arena_store_of_version_1_is_upgraded_and_takes_a_study(tmp_path) -> None:
    from optarena.bench.store import MIGRATIONS, SCHEMA_VERSION, migrate

    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, {1: MIGRATIONS[1]}) == 1
    conn.close()
    study = optimize(quadratic, SPACE, n_trials=3, seed=0, store=path, name="late")
    with Store(path) as st:
        assert st.version == SCHEMA_VERSION and st.count() == 1
    assert study.n_complete == 3 and len(trials_frame(path)) == 3
