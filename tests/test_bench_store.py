"""The SQLite results store: schema, migrations, WAL, atomic writes, plain-SQL queries."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace

import numpy as np
import pytest

from optarena.bench import MethodEntry, ProblemEntry, Spec
from optarena.bench.runner import execute, versions
from optarena.bench.store import (
    APPLICATION_ID,
    MIGRATIONS,
    SCHEMA_VERSION,
    RunRecord,
    Store,
    StoreError,
    migrate,
    schema_version,
)


def _task(method: str = "nelder_mead", seed: int = 0, budget: int = 60):
    spec = Spec(
        problems=(ProblemEntry("rosenbrock"),),
        methods=(MethodEntry(method),),
        seeds=(seed,),
        budget=budget,
        name="store-test",
    )
    return spec.plan().tasks[0]


@pytest.fixture(scope="module")
def record() -> RunRecord:
    rec = execute(_task())
    assert rec.status == "ok" and rec.nfev == 60
    return rec


def _conn(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_new_store_has_schema_wal_and_identity(tmp_path) -> None:
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        assert st.version == SCHEMA_VERSION == max(MIGRATIONS)
    c = _conn(path)
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    cols = {r[1]: r[2] for r in c.execute("PRAGMA table_info(history)")}
    assert cols == {
        "run_id": "INTEGER",
        "eval": "INTEGER",
        "grad_evals": "INTEGER",
        "seconds": "REAL",
        "f": "REAL",
        "best_f": "REAL",
    }
    run_cols = {r[1]: r[2] for r in c.execute("PRAGMA table_info(runs)")}
    for name in ("problem", "problem_params", "method", "options", "seed", "budget", "status",
                 "fun", "nfev", "ngev", "elapsed", "stop_reason", "optarena_version",
                 "torch_version", "numpy_version", "scipy_version", "python_version"):  # fmt: skip
        assert name in run_cols
    # Nothing is pickled: no column of any table is declared as a BLOB.
    declared = [r[2] for t in ("runs", "history") for r in c.execute(f"PRAGMA table_info({t})")]
    assert "BLOB" not in declared and "" not in declared


def _v2(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT ''")


def _broken(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE half_done (a INTEGER)")
    raise RuntimeError("migration failed on purpose")


def test_migrations_apply_in_order_and_keep_data(tmp_path, record) -> None:
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        st.write(record)
    c = _conn(path)
    nxt = SCHEMA_VERSION + 1  # a migration to the version after this code's newest
    assert migrate(c, {**MIGRATIONS, nxt: _v2}) == nxt
    assert schema_version(c) == nxt
    assert c.execute("SELECT host, nfev FROM runs").fetchall() == [("", record.nfev)]
    # Opening a file newer than this code knows is refused with advice.
    c.close()
    with pytest.raises(StoreError, match="newer than this optarena knows"):
        Store(path)


def test_a_failing_migration_leaves_the_previous_version(tmp_path) -> None:
    c = _conn(tmp_path / "r.sqlite")
    with pytest.raises(RuntimeError, match="on purpose"):
        migrate(c, {1: MIGRATIONS[1], 2: _broken})
    assert schema_version(c) == 1
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "half_done" not in tables and "runs" in tables
    with pytest.raises(StoreError, match="no migration to schema version 3"):
        migrate(c, {1: MIGRATIONS[1], 2: _v2, 4: _v2})
    assert schema_version(c) == 2


def test_refuses_foreign_files_and_missing_stores(tmp_path) -> None:
    other = tmp_path / "other.sqlite"
    c = _conn(other)
    c.execute("CREATE TABLE mine (a INTEGER)")
    c.close()
    with pytest.raises(StoreError, match="not an optarena store"):
        Store(other)
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    text = tmp_path / "notes.txt"
    text.write_text("this is not a database, " * 100)
    with pytest.raises(StoreError, match="not a usable SQLite file"):
        Store(text)


def test_round_trip_of_a_real_run(tmp_path, record) -> None:
    with Store(tmp_path / "r.sqlite") as st:
        run_id = st.write(record)
        (row,) = st.runs()
        assert row["run_id"] == run_id and row["key"] == record.key
        assert row["fun"] == record.fun and row["nfev"] == record.nfev
        assert row["status"] == "ok" and row["stop_reason"] == "max_evals"
        assert json.loads(row["x"]) == record.x
        assert json.loads(row["budget"])["evals"] == 60 and row["budget_evals"] == 60
        assert json.loads(row["problem_params"])["b"] == 5.0
        assert row["torch_version"] == versions()["torch"]
        h = st.history(run_id)
        for col in ("evals", "grad_evals", "seconds", "f", "best_f"):
            np.testing.assert_array_equal(h[col], record.history[col])
        assert st.runs(problem="rosenbrock", method="nelder_mead")[0]["run_id"] == run_id
        assert st.runs(problem="sphere") == []
        with pytest.raises(ValueError, match="unknown run column"):
            st.runs(color="red")


def test_plain_sql_queries_work_on_the_tables(tmp_path, record) -> None:
    path = tmp_path / "r.sqlite"
    with Store(path) as st:
        st.write(record)
        st.write(replace(record, key="other", seed=1, label="copy"))
    c = _conn(path)
    rows = c.execute(
        "SELECT r.label, count(*), max(h.eval), min(h.best_f) FROM runs r "
        "JOIN history h USING (run_id) GROUP BY r.label ORDER BY r.label"
    ).fetchall()
    assert rows == [("copy", 60, 60, record.fun), ("nelder_mead", 60, 60, record.fun)]
    target = float(np.median(record.history["f"]))
    (first,) = c.execute(
        "SELECT min(eval) FROM history JOIN runs USING (run_id) WHERE label = ? AND best_f <= ?",
        ("copy", target),
    ).fetchone()
    assert first == int(record.history["evals"][np.argmax(record.history["best_f"] <= target)])


def test_nan_and_inf_values_survive(tmp_path, record) -> None:
    h = {k: np.array(v) for k, v in record.history.items()}
    h["f"][0] = math.nan
    h["best_f"][0] = math.inf
    with Store(tmp_path / "r.sqlite") as st:
        run_id = st.write(replace(record, history=h, fun=math.inf))
        back = st.history(run_id)
        assert math.isnan(back["f"][0]) and back["best_f"][0] == math.inf
        assert st.runs()[0]["fun"] == math.inf
        (null,) = st.query("SELECT count(*) FROM history WHERE f IS NULL")[0]
        assert null == 1


def test_a_run_is_written_whole_or_not_at_all(tmp_path, record) -> None:
    bad = {k: np.array(v) for k, v in record.history.items()}
    bad["evals"][-1] = bad["evals"][0]  # a repeated evaluation index breaks the primary key
    with Store(tmp_path / "r.sqlite") as st:
        with pytest.raises(sqlite3.IntegrityError):
            st.write(replace(record, history=bad))
        assert st.count() == 0
        assert st.query("SELECT count(*) FROM history")[0][0] == 0
        st.write(record)
        with pytest.raises(sqlite3.IntegrityError):
            st.write(record)  # the same key twice
        assert st.count() == 1


def test_replace_and_delete_take_the_history_along(tmp_path, record) -> None:
    short = {k: np.asarray(v)[:10] for k, v in record.history.items()}
    with Store(tmp_path / "r.sqlite") as st:
        st.write(record)
        st.write(replace(record, nfev=10, history=short, status="error"), replace=True)
        assert st.count() == 1 and st.statuses() == {record.key: "error"}
        assert st.query("SELECT count(*) FROM history")[0][0] == 10
        assert st.delete([record.key, "absent"]) == 1
        assert st.query("SELECT count(*) FROM history")[0][0] == 0


def test_to_pandas(tmp_path, record) -> None:
    pytest.importorskip("pandas")
    with Store(tmp_path / "r.sqlite") as st:
        st.write(record)
        assert len(st.to_pandas("history")) == record.nfev
        assert list(st.to_pandas()["method"]) == ["nelder_mead"]
        with pytest.raises(ValueError, match="'runs' or 'history'"):
            st.to_pandas("sqlite_master")
