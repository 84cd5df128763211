"""optarena.study: resuming replays asks and tells interleaved as they ran, whatever order
the trials finished in."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from _study_cases import SPACE, quadratic
from optarena.study import optimize, trials_frame


def test_resume_after_trials_finished_out_of_order_replays_the_asks_in_between(tmp_path) -> None:
    # Trial 2 runs until trial 4 has started: trial 3 finishes first, trial 4 is asked
    # after that tell, then trial 2 finishes before trial 4 (told order ..., 3, 2, 4). tpe
    # proposes beside trials in flight, so trial 4 is drawn from the values told before it
    # was asked; a replay that asks it after trial 2's tell draws another candidate.
    started4, done2 = threading.Event(), threading.Event()

    def f(c: dict, trial) -> float:
        if trial.number == 2:
            assert started4.wait(20)
            done2.set()
        elif trial.number == 4:
            started4.set()
            assert done2.wait(20)
            time.sleep(0.2)
        return quadratic(c)

    path = tmp_path / "s.sqlite"
    opts = {"method": "tpe", "n_startup": 2, "seed": 3, "store": path, "name": "s"}
    with ThreadPoolExecutor(2) as ex:
        first = optimize(f, SPACE, n_trials=5, in_flight=2, executor=ex, **opts)
    assert first.n_complete == 5
    again = optimize(quadratic, SPACE, n_trials=7, **opts)  # replays 5, runs 2 more
    assert again.resumed == 5 and again.n_complete == 7
    assert trials_frame(path, "s")["number"].tolist() == list(range(7))


def test_a_resumed_study_gives_its_best_configuration_in_the_spaces_order(tmp_path) -> None:
    path = tmp_path / "s.sqlite"
    opts = {"method": "random_search", "seed": 0, "store": path, "name": "s"}
    first = optimize(quadratic, SPACE, n_trials=4, **opts)
    again = optimize(quadratic, SPACE, n_trials=4, **opts)  # all from the store
    assert again.best_config == first.best_config
    assert list(again.best_config) == list(first.best_config) == ["x", "n", "act"]


def test_a_second_process_on_the_same_study_is_told_so_when_it_stores_a_trial(tmp_path) -> None:
    from optarena.bench.store import Store
    from optarena.study.tables import write_trial
    from optarena.study.trial import Outcome

    path = tmp_path / "s.sqlite"
    optimize(quadratic, SPACE, n_trials=2, seed=0, store=path, name="s")
    out = Outcome(1, "complete", 1.0, None, 0.0, 0.0, 0.0)
    with Store(path) as st, pytest.raises(RuntimeError, match="another process running this"):
        write_trial(st, "s", out, {"x": 0.0, "n": 0, "act": "relu"}, told=2)
    assert len(trials_frame(path, "s")) == 2


def test_a_version_2_store_gets_the_asks_table_by_migration(tmp_path) -> None:
    """Stores written by the first study schema (version 2, no asks table) are upgraded when
    opened, so a study resumed there records its asks like any other."""
    import sqlite3

    from optarena.bench.store import MIGRATIONS, SCHEMA_VERSION, Store, migrate

    path = tmp_path / "v2.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    assert migrate(conn, {1: MIGRATIONS[1], 2: MIGRATIONS[2]}) == 2
    conn.close()
    with Store(path) as st:
        assert st.version == SCHEMA_VERSION >= 3
        tables = {r[0] for r in st.query("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "study_asks" in tables
