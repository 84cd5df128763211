"""The study tables of the results store (schema in :mod:`optarena.bench.study_tables`):
reading and writing studies and trials, and their pandas views."""

from __future__ import annotations

import difflib
import json
import math
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..bench.store import Store
from .trial import TRACEBACK_MARK, Outcome

__all__ = ["open_store", "reports_frame", "split_error", "trial_traceback", "trials_frame"]


def split_error(text: str | None) -> tuple[str | None, str | None]:
    """A stored error as (its ``"Type: message"`` line, the traceback or None)."""
    if text is None or TRACEBACK_MARK not in text:
        return text, None
    line, tb = text.split(TRACEBACK_MARK, 1)
    return line, tb


def dumps(value: Any) -> str:
    """Canonical JSON (sorted keys) of a configuration, options or a pruner."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


@contextmanager
def open_store(store: Store | str | Path | None) -> Iterator[Store]:
    """The store to use: a Store as given, a path opened (and closed at the end), or None
    for a store in memory (the study's trials live as long as the call)."""
    if isinstance(store, Store):
        yield store
        return
    st = Store(":memory:" if store is None else store)
    try:
        yield st
    finally:
        st.close()


#: When each trial was asked: after how many tells. Written as a trial is launched, so a
#: resume replays asks and tells interleaved as they ran (the candidates of a method that
#: proposes beside trials in flight, such as tpe, depend on the values told before).
def write_ask(store: Store, name: str, number: int, tells: int) -> None:
    """Record that trial ``number`` was asked after ``tells`` tells (before it is launched)."""
    store.conn.execute(
        "INSERT OR REPLACE INTO study_asks (study, number, tells) VALUES (?, ?, ?)",
        (name, number, tells),
    )


def stored_asks(store: Store, name: str) -> dict[int, int]:
    """``{number: tells}`` of every trial asked in study ``name`` (finished or not)."""
    rows = store.query("SELECT number, tells FROM study_asks WHERE study = ?", (name,))
    return {int(r["number"]): int(r["tells"]) for r in rows}


def study_row(store: Store, name: str) -> dict[str, Any] | None:
    """The stored description of study ``name``, or None."""
    rows = store.query("SELECT * FROM studies WHERE study = ?", (name,))
    return dict(rows[0]) if rows else None


def create_study(store: Store, name: str, row: Mapping[str, Any]) -> None:
    """Store a new study's description (space, method, options, seed, in_flight, pruner)."""
    store.conn.execute(
        "INSERT INTO studies (study, space, method, options, seed, in_flight, pruner, created)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (name, row["space"], row["method"], row["options"], row["seed"], row["in_flight"],
         row["pruner"], time.time()),
    )  # fmt: skip


def stored_trials(store: Store, name: str) -> list[dict[str, Any]]:
    """The finished trials of a study in the order they were told, each with its reports."""
    rows = [dict(r) for r in store.query(
        "SELECT * FROM trials WHERE study = ? ORDER BY told", (name,))]  # fmt: skip
    reports: dict[int, dict[int, float]] = {}
    for r in store.query(
        "SELECT number, step, value FROM trial_reports WHERE study = ? ORDER BY number, step",
        (name,),
    ):
        v = r["value"]
        reports.setdefault(r["number"], {})[r["step"]] = math.nan if v is None else float(v)
    for row in rows:
        row["params"] = json.loads(row["params"])
        row["reports"] = reports.get(row["number"], {})
        row["error"], row["traceback"] = split_error(row["error"])
    return rows


def write_trial(
    store: Store, name: str, out: Outcome, params: Mapping[str, Any], told: int
) -> None:
    """One finished trial and its reports, in one transaction."""
    cur = store.conn.cursor()
    cur.execute("BEGIN IMMEDIATE")
    try:
        cur.execute(
            "INSERT INTO trials (study, number, params, status, value, seconds, error, told,"
            " started, finished) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, out.number, dumps(dict(params)), out.status, out.value, out.seconds,
             out.stored_error(), told, out.started, out.finished),
        )  # fmt: skip
        cur.executemany(
            "INSERT INTO trial_reports (study, number, step, value) VALUES (?, ?, ?, ?)",
            [(name, out.number, s, None if math.isnan(v) else v) for s, v in out.reports.items()],
        )
        cur.execute("COMMIT")
    except sqlite3.IntegrityError as e:
        cur.execute("ROLLBACK")
        raise RuntimeError(
            f"study {name!r}: trial {out.number} is already in the store: is another process "
            "running this study on the same store? A study runs in one process (its trials "
            "run in parallel with in_flight and an executor)"
        ) from e
    except BaseException:
        cur.execute("ROLLBACK")
        raise


@contextmanager
def _reading(store: Store | str | Path) -> Iterator[Store]:
    if isinstance(store, Store):
        yield store
    else:
        with Store(store, create=False) as st:
            yield st


def trials_frame(store: Store | str | Path, study: str | None = None) -> Any:
    """The finished trials (of one study, or of every study) as a ``pandas.DataFrame``:
    ``study, number, status, value, seconds, error, started, finished`` and one column
    ``params_<name>`` per parameter (``error`` is the ``"Type: message"`` line; the traceback
    is kept in the store: :func:`trial_traceback`) (native values; NaN or None where a conditional
    parameter is absent), sorted by (study, number)."""
    import pandas as pd

    sql = "SELECT study, number, status, value, seconds, error, started, finished, params"
    sql += " FROM trials"
    with _reading(store) as st:
        if study is None:
            rows = st.query(sql + " ORDER BY study, number")
            spaces = st.query("SELECT study, space FROM studies ORDER BY study")
        else:
            rows = st.query(sql + " WHERE study = ? ORDER BY number", (study,))
            spaces = st.query("SELECT study, space FROM studies WHERE study = ?", (study,))
            if not spaces:  # a misspelled name: not an empty table
                held = [r["study"] for r in st.query("SELECT study FROM studies ORDER BY study")]
                close = difflib.get_close_matches(study, held, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise KeyError(f"no study {study!r} in {store}.{hint} It holds: {held or 'none'}")
    names: dict[str, None] = {}
    for s in spaces:  # the spaces' parameter order first, then any other key seen
        names.update(dict.fromkeys(_param_names(json.loads(s["space"]))))
    params = [json.loads(r["params"]) for r in rows]
    for p in params:
        names.update(dict.fromkeys(p))
    cols = ["study", "number", "status", "value", "seconds", "error", "started", "finished"]
    frame: dict[str, Any] = {c: [r[c] for r in rows] for c in cols}
    frame["error"] = [split_error(e)[0] for e in frame["error"]]
    out = pd.DataFrame(frame, columns=cols)
    out["value"] = pd.to_numeric(out["value"]).astype("float64")
    for n in names:
        values = [p.get(n) for p in params]
        out[f"params_{n}"] = _column(values)
    if len(spaces) == 1:  # the pictures read log scales and category order from it
        out.attrs["space"] = spaces[0]["space"]
    return out


def trial_traceback(store: Store | str | Path, study: str, number: int) -> str | None:
    """The traceback of failed trial ``number`` of ``study`` as stored (None when it has
    none: it completed, was pruned, returned NaN, or was stored by an older optarena)."""
    with _reading(store) as st:
        rows = st.query("SELECT error FROM trials WHERE study = ? AND number = ?", (study, number))
    if not rows:
        raise KeyError(f"study {study!r} has no finished trial number {number}")
    return split_error(rows[0]["error"])[1]


def _param_names(space: Mapping[str, Any]) -> list[str]:
    """Parameter names of a serialized space, depth first (conditional ones after their parent)."""
    out: list[str] = []

    def walk(params: Mapping[str, Any]) -> None:
        for name, d in params.items():
            out.append(name)
            for branch in d.get("branches") or []:
                walk(branch)

    walk(space.get("params", {}))
    return out


def _column(values: list[Any]) -> Any:
    """A column of native values: floats (NaN where absent), ints, else objects (None)."""
    import numpy as np
    import pandas as pd

    present = [v for v in values if v is not None]
    if present and all(isinstance(v, float) for v in present):
        return pd.Series([math.nan if v is None else v for v in values], dtype="float64")
    if present and len(present) == len(values) and all(type(v) is int for v in present):
        return pd.Series(values, dtype=np.int64)
    return pd.Series(values, dtype=object)


def reports_frame(store: Store | str | Path, study: str | None = None) -> Any:
    """The values trials reported (``study, number, step, value``), sorted by (study,
    number, step)."""
    import pandas as pd

    sql = "SELECT study, number, step, value FROM trial_reports"
    with _reading(store) as st:
        if study is None:
            rows = st.query(sql + " ORDER BY study, number, step")
        else:
            rows = st.query(sql + " WHERE study = ? ORDER BY number, step", (study,))
    cols = ["study", "number", "step", "value"]
    out = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    out["value"] = pd.to_numeric(out["value"]).astype("float64")
    return out
