"""The results store: runs and per-evaluation histories in SQLite, as plain tables.

One file, standard library only, WAL mode, queryable with any SQLite client::

    SELECT label, count(*), min(fun), avg(nfev) FROM runs GROUP BY label;
    SELECT r.label, h.eval, h.best_f FROM runs r JOIN history h USING (run_id)
    WHERE r.problem = 'mlp_identity' ORDER BY r.run_id, h.eval;

The schema version lives in ``PRAGMA user_version``; :data:`MIGRATIONS` maps each version to
the function that upgrades the previous one, applied in order, each in one transaction. A run
(its row and its whole history) is written in one transaction when it has finished, so a store
never holds a half-written run, whenever the writing process is killed. Nothing is pickled:
parameters, options and points are JSON text; histories are real columns (a NaN value is
stored as NULL).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .study_tables import v2_studies, v3_study_asks

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "RunRecord",
    "Store",
    "StoreError",
    "migrate",
    "schema_version",
]

#: ``PRAGMA application_id`` of optarena stores (the bytes "opta").
APPLICATION_ID = 0x6F707461
#: Points with more entries than this are not stored (``x`` is NULL), to keep rows small.
MAX_STORED_DIM = 10_000


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says what to do."""


def _v1(conn: sqlite3.Connection) -> None:
    """Version 1: runs, per-evaluation history."""
    conn.execute(
        """
        CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY,
            key TEXT NOT NULL UNIQUE,          -- hash of what determines the run's numbers
            spec TEXT NOT NULL,                -- name of the spec that asked for it
            problem TEXT NOT NULL,
            problem_params TEXT NOT NULL,      -- JSON, every factory parameter
            method TEXT NOT NULL,
            label TEXT NOT NULL,
            options TEXT NOT NULL,             -- JSON, as passed to the method
            bounds INTEGER NOT NULL,           -- 1 when the problem's box was given
            seed INTEGER NOT NULL,             -- the seed passed to minimize
            budget TEXT NOT NULL,              -- JSON: evals, grad_evals, seconds, target
            budget_evals INTEGER,
            status TEXT NOT NULL CHECK (status IN ('ok', 'error')),
            fun REAL,                          -- best value found (inf: none finite)
            nfev INTEGER NOT NULL,
            ngev INTEGER NOT NULL,
            elapsed REAL NOT NULL,
            stop_reason TEXT,
            message TEXT NOT NULL DEFAULT '',
            best_eval INTEGER,
            x TEXT,                            -- JSON list, the best point
            f_opt REAL,                        -- the problem's known optimum, if any
            optarena_version TEXT NOT NULL,
            torch_version TEXT NOT NULL,
            numpy_version TEXT NOT NULL,
            scipy_version TEXT NOT NULL,
            python_version TEXT NOT NULL,
            finished_at TEXT NOT NULL          -- UTC, ISO 8601
        )
        """
    )
    conn.execute("CREATE INDEX runs_problem_method ON runs (problem, method)")
    conn.execute(
        """
        CREATE TABLE history (
            run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            eval INTEGER NOT NULL,             -- 1-based objective evaluation index
            grad_evals INTEGER NOT NULL,       -- gradient evaluations so far
            seconds REAL NOT NULL,             -- since the start of the run
            f REAL,                            -- value as returned (NULL for NaN)
            best_f REAL NOT NULL,              -- best finite value so far (inf before)
            PRIMARY KEY (run_id, eval)
        ) WITHOUT ROWID
        """
    )
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")


#: ``MIGRATIONS[v]`` upgrades a store from version ``v - 1`` to ``v`` (0 is an empty file).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {
    1: _v1,
    2: v2_studies,
    3: v3_study_asks,
}
SCHEMA_VERSION = max(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version recorded in the file (0 for a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection,
    migrations: Mapping[int, Callable[[sqlite3.Connection], None]] = MIGRATIONS,
) -> int:
    """Bring the file to the newest version in ``migrations``, one transaction per step.

    A failing step is rolled back and leaves the file at the previous version. Returns the
    final version. ``conn`` must be in autocommit mode (``isolation_level=None``).
    """
    target = max(migrations)
    current = schema_version(conn)
    if current > target:
        raise StoreError(
            f"the store has schema version {current}, newer than this optarena knows "
            f"({target}); upgrade optarena to read it"
        )
    for version in range(current + 1, target + 1):
        if version not in migrations:
            raise StoreError(f"no migration to schema version {version}")
        conn.execute("BEGIN IMMEDIATE")
        try:
            migrations[version](conn)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return target


@dataclass(frozen=True)
class RunRecord:
    """A finished run as the store keeps it (built by the runner from a Result)."""

    key: str
    spec: str
    problem: str
    problem_params: str
    method: str
    label: str
    options: str
    bounds: bool
    seed: int
    budget: Mapping[str, Any]
    status: str
    fun: float | None
    nfev: int
    ngev: int
    elapsed: float
    stop_reason: str | None
    message: str
    best_eval: int | None
    x: list[float] | None
    f_opt: float | None
    versions: Mapping[str, str]
    finished_at: str
    history: Mapping[str, np.ndarray] = field(default_factory=dict)


_RUN_COLUMNS = (
    "key", "spec", "problem", "problem_params", "method", "label", "options", "bounds", "seed",
    "budget", "budget_evals", "status", "fun", "nfev", "ngev", "elapsed", "stop_reason",
    "message", "best_eval", "x", "f_opt", "optarena_version", "torch_version", "numpy_version",
    "scipy_version", "python_version", "finished_at",
)  # fmt: skip
_HISTORY_COLUMNS = ("evals", "grad_evals", "seconds", "f", "best_f")


class Store:
    """An optarena results file (SQLite). Only one process should write to it at a time.

    Opening creates the file (and its schema) when it does not exist, unless ``create`` is
    False, and upgrades an older schema through :data:`MIGRATIONS`.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(
                f"no store at {str(self.path)!r}; create one with "
                f"`optarena bench SPEC.toml --store {self.path}`"
            )
        if self.path.parent and not self.path.parent.exists():
            raise StoreError(f"directory {str(self.path.parent)!r} does not exist")
        try:
            self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._setup()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path} is not a usable SQLite file: {e}") from e

    def _setup(self) -> None:
        conn = self.conn
        conn.row_factory = sqlite3.Row
        app = int(conn.execute("PRAGMA application_id").fetchone()[0])
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app != APPLICATION_ID and (tables or schema_version(conn)):
            conn.close()
            raise StoreError(
                f"{self.path} is an SQLite file but not an optarena store; pick another path"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        try:
            migrate(conn)
        except BaseException:
            conn.close()
            raise

    # -- context management ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        """Schema version of the file."""
        return schema_version(self.conn)

    # -- writing --------------------------------------------------------------------------------
    def write(self, rec: RunRecord, *, replace: bool = False) -> int:
        """Store one finished run and its history in one transaction; returns its run_id.

        With ``replace`` an existing run of the same key (and its history) is replaced.
        """
        budget_json = json.dumps(dict(rec.budget), sort_keys=True, separators=(",", ":"))
        x_json = None
        if rec.x is not None and len(rec.x) <= MAX_STORED_DIM:
            x_json = json.dumps([float(v) for v in rec.x])
        row = (
            rec.key, rec.spec, rec.problem, rec.problem_params, rec.method, rec.label,
            rec.options, int(rec.bounds), int(rec.seed), budget_json, rec.budget.get("evals"),
            rec.status, rec.fun, int(rec.nfev), int(rec.ngev), float(rec.elapsed),
            rec.stop_reason, rec.message, rec.best_eval, x_json, rec.f_opt,
            rec.versions["optarena"], rec.versions["torch"], rec.versions["numpy"],
            rec.versions["scipy"], rec.versions["python"], rec.finished_at,
        )  # fmt: skip
        cols = [np.asarray(rec.history[c]) for c in _HISTORY_COLUMNS] if rec.history else []
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                cur.execute("DELETE FROM runs WHERE key = ?", (rec.key,))
            cur.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_RUN_COLUMNS))})",
                row,
            )
            run_id = int(cur.lastrowid or 0)
            if cols and len(cols[0]):
                n = len(cols[0])
                cur.executemany(
                    "INSERT INTO history VALUES (?, ?, ?, ?, ?, ?)",
                    zip(
                        [run_id] * n,
                        cols[0].astype(np.int64).tolist(),
                        cols[1].astype(np.int64).tolist(),
                        cols[2].astype(np.float64).tolist(),
                        cols[3].astype(np.float64).tolist(),
                        cols[4].astype(np.float64).tolist(),
                        strict=True,
                    ),
                )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return run_id

    def delete(self, keys: Iterable[str]) -> int:
        """Remove the runs with these keys (and their histories); returns how many."""
        keys = list(keys)
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            n = 0
            for k in keys:
                n += cur.execute("DELETE FROM runs WHERE key = ?", (k,)).rowcount
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return n

    # -- reading --------------------------------------------------------------------------------
    def query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        """Rows of any SQL query (``row["column"]`` or ``tuple(row)``)."""
        return self.conn.execute(sql, params).fetchall()

    def statuses(self) -> dict[str, str]:
        """The status of every stored run, by key."""
        return {r["key"]: r["status"] for r in self.query("SELECT key, status FROM runs")}

    def count(self) -> int:
        """Number of stored runs."""
        return int(self.conn.execute("SELECT count(*) FROM runs").fetchone()[0])

    def runs(self, **where: Any) -> list[dict[str, Any]]:
        """Stored runs as dicts, optionally filtered by equality (``runs(problem="sphere")``)."""
        bad = sorted(set(where) - set(_RUN_COLUMNS) - {"run_id"})
        if bad:
            raise ValueError(f"unknown run column(s) {bad}; columns: {list(_RUN_COLUMNS)}")
        sql = "SELECT * FROM runs"
        if where:
            sql += " WHERE " + " AND ".join(f"{k} = ?" for k in where)
        rows = self.query(sql + " ORDER BY run_id", list(where.values()))
        return [dict(r) for r in rows]

    def selected_runs(self, keys: Iterable[str] | None = None) -> list[sqlite3.Row]:
        """The runs with these keys (every run when None), in the order they were stored."""
        if keys is None:
            return self.query("SELECT * FROM runs ORDER BY run_id")
        with self._selection("SELECT run_id FROM runs WHERE key = ?", keys):
            return self.query("SELECT r.* FROM runs r JOIN _sel USING (run_id) ORDER BY run_id")

    def best_changes(self, run_ids: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
        """Per run, the history rows where the best-so-far value changes (and the first row):
        every row at which a target can first be reached, without reading whole histories.
        Columns ``evals``, ``seconds``, ``best_f``; runs without history are absent."""
        with self._selection("SELECT ?", run_ids):
            rows = self.conn.execute(
                "SELECT run_id, eval, seconds, best_f FROM ("
                " SELECT h.run_id, h.eval, h.seconds, h.best_f, LAG(h.best_f) OVER"
                " (PARTITION BY h.run_id ORDER BY h.eval) AS prev"
                " FROM history h JOIN _sel USING (run_id))"
                " WHERE prev IS NULL OR best_f != prev ORDER BY run_id, eval"
            ).fetchall()
        by_run: dict[int, list[tuple[int, float, float]]] = {}
        for run_id, ev, sec, best in rows:
            by_run.setdefault(run_id, []).append((ev, sec, best))
        out = {}
        for run_id, items in by_run.items():
            arr = np.array(items, dtype=np.float64).reshape(-1, 3)
            out[run_id] = {
                "evals": arr[:, 0].astype(np.int64),
                "seconds": arr[:, 1],
                "best_f": arr[:, 2],
            }
        return out

    @contextlib.contextmanager
    def _selection(self, select: str, values: Iterable[Any]) -> Iterator[None]:
        """A temporary table ``_sel(run_id)`` filled by ``INSERT ... select`` per value."""
        self.conn.execute("CREATE TEMP TABLE IF NOT EXISTS _sel (run_id INTEGER PRIMARY KEY)")
        self.conn.execute("DELETE FROM _sel")
        try:
            self.conn.executemany(f"INSERT OR IGNORE INTO _sel {select}", [(v,) for v in values])
            yield
        finally:
            self.conn.execute("DELETE FROM _sel")

    def history(self, run_id: int) -> dict[str, np.ndarray]:
        """The history of one run as columns (``f`` holds NaN where NULL was stored)."""
        rows = self.conn.execute(
            "SELECT eval, grad_evals, seconds, f, best_f FROM history WHERE run_id = ? "
            "ORDER BY eval",
            (run_id,),
        ).fetchall()
        arr = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 5)
        return {
            "evals": arr[:, 0].astype(np.int64),
            "grad_evals": arr[:, 1].astype(np.int64),
            "seconds": arr[:, 2],
            "f": arr[:, 3],
            "best_f": arr[:, 4],
        }

    def to_pandas(self, table: str = "runs") -> Any:
        """A table (``runs`` or ``history``) as a pandas DataFrame (needs pandas)."""
        if table not in ("runs", "history"):
            raise ValueError(f"table must be 'runs' or 'history', got {table!r}")
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("Store.to_pandas() needs pandas: pip install pandas") from e
        return pd.read_sql_query(f"SELECT * FROM {table}", self.conn)
