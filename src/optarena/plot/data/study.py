"""Study data: the trials of a hyperparameter study as plain arrays, for the study pictures.

The source is a table in the ``trials_frame`` layout (columns ``study, number, status, value``
and one ``params_<name>`` per parameter; a pandas DataFrame or a mapping of columns), from a
study store (:func:`store_trials` reads one with plain SQL) or from ``minimize(f, space=...)``
(:func:`result_trials`). The space (``space=``, or ``frame.attrs["space"]``) says which
parameters are log-scale and the order of the categories; without it, numbers are linear and
categories sorted.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "ParamColumn",
    "StudyTrials",
    "param_importance",
    "result_trials",
    "store_trials",
    "study_trials",
]

STATUSES = ("complete", "pruned", "failed")
_PREFIX = "params_"


@dataclass(frozen=True)
class ParamColumn:
    """One parameter over the trials. ``kind`` is "real", "int" or "choice"; ``values`` holds
    floats (NaN where the parameter is absent) for numbers and category indices (-1 absent)
    for choices, whose labels are ``categories``. ``bounds`` is the space's ``(lo, hi)`` of a
    number parameter (None without a space): the axis a picture draws it on."""

    name: str
    kind: Literal["real", "int", "choice"]
    values: np.ndarray
    log: bool = False
    categories: tuple[Any, ...] = ()
    bounds: tuple[float, float] | None = None

    @property
    def present(self) -> np.ndarray:
        """Rows where the parameter was set (a conditional one is absent elsewhere)."""
        return self.values >= 0 if self.kind == "choice" else ~np.isnan(self.values)


@dataclass(frozen=True)
class StudyTrials:
    """The trials of one study, sorted by number: ``status`` per trial, ``value`` (NaN where
    none was recorded) and one :class:`ParamColumn` per parameter."""

    study: str
    number: np.ndarray
    status: np.ndarray
    value: np.ndarray
    params: dict[str, ParamColumn]

    def __len__(self) -> int:
        return int(self.number.size)

    @property
    def complete(self) -> np.ndarray:
        """Complete trials with a finite value: the ones whose value means the objective."""
        return (self.status == "complete") & np.isfinite(self.value)

    def counts(self) -> dict[str, int]:
        """Trials per status (``complete`` counts those without a finite value too)."""
        return {s: int((self.status == s).sum()) for s in STATUSES}


def _columns(frame: Any) -> dict[str, list[Any]]:
    if hasattr(frame, "to_dict") and hasattr(frame, "columns"):  # a pandas DataFrame
        return {str(c): frame[c].tolist() for c in frame.columns}
    if isinstance(frame, Mapping):
        return {str(k): list(v) for k, v in frame.items()}
    raise TypeError(
        f"expected a trials table (pandas DataFrame or mapping of columns), got "
        f"{type(frame).__name__}"
    )


def _missing(v: Any) -> bool:
    if v is None:
        return True
    try:
        return bool(isinstance(v, float | np.floating) and math.isnan(v)) or v is _pd_na()
    except TypeError:
        return False


def _pd_na() -> Any:
    try:
        import pandas as pd

        return pd.NA
    except ImportError:  # pragma: no cover - depends on the environment
        return None


def _space_params(space: Any) -> dict[str, Any]:
    """``name -> parameter`` of a Space, its dict form or its JSON (``{}`` for None)."""
    if space is None:
        return {}
    from ...space import Space

    if isinstance(space, str):
        space = Space.from_json(space)
    elif isinstance(space, Mapping) and "params" in space and "version" in space:
        space = Space.from_dict(space)
    elif not isinstance(space, Space):
        space = Space(space)
    out: dict[str, Any] = {}
    for name, p in space.walk():
        out.setdefault(name, p)
    return out


def _param_column(name: str, raw: list[Any], spec: Any) -> ParamColumn:
    from ...space import Choice, Int, Real

    here = [v for v in raw if not _missing(v)]
    if isinstance(spec, Choice):
        cats: list[Any] = list(spec.options)
        for v in here:  # a value the space does not name still gets a category
            if not any(_same(v, c) for c in cats):
                cats.append(v)
    elif isinstance(spec, Real | Int) or (
        here
        and all(isinstance(v, int | float | np.integer | np.floating) for v in here)
        and not any(isinstance(v, bool | np.bool_) for v in here)
    ):
        kind = "int" if isinstance(spec, Int) or (
            spec is None and here and all(float(v).is_integer() for v in here)
        ) else "real"  # fmt: skip
        vals = np.array([np.nan if _missing(v) else float(v) for v in raw], dtype=np.float64)
        log = bool(getattr(spec, "log", False))
        bounds = None if spec is None else (float(spec.lo), float(spec.hi))
        return ParamColumn(name, kind, vals, log=log, bounds=bounds)  # type: ignore[arg-type]
    else:
        cats = sorted(dict.fromkeys(here), key=lambda v: (type(v).__name__, str(v)))
    idx = np.array(
        [-1 if _missing(v) else next(i for i, c in enumerate(cats) if _same(v, c)) for v in raw],
        dtype=np.int64,
    )
    return ParamColumn(name, "choice", idx, categories=tuple(cats))


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.generic):
        a = a.item()
    if isinstance(b, np.generic):
        b = b.item()
    return type(a) is type(b) and a == b


def study_trials(frame: Any, *, study: str | None = None, space: Any = None) -> StudyTrials:
    """The trials of one study of ``frame`` (``study=`` picks it when the frame holds several)
    as arrays; ``space`` (a Space, its dict or JSON; default ``frame.attrs["space"]``) gives
    log scales and category order."""
    if space is None:
        space = getattr(frame, "attrs", {}).get("space")
    cols = _columns(frame)
    missing = [c for c in ("number", "status", "value") if c not in cols]
    if missing:
        raise ValueError(f"a trials table needs the columns {missing}; got {sorted(cols)}")
    n = len(cols["number"])
    studies = cols.get("study", ["study"] * n)
    names = list(dict.fromkeys(str(s) for s in studies))
    if study is None:
        if len(names) > 1:
            raise ValueError(f"the table holds the studies {names}; pick one with study=")
        study = names[0] if names else "study"
    rows = [i for i in range(n) if str(studies[i]) == study]
    if n and not rows:
        raise ValueError(f"no trials of study {study!r}; the table holds {names}")
    rows.sort(key=lambda i: int(cols["number"][i]))
    from ...space import Fixed

    specs = _space_params(space)
    params = {}
    for col, raw in cols.items():
        name = col[len(_PREFIX) :]
        if col.startswith(_PREFIX) and not isinstance(specs.get(name), Fixed):
            params[name] = _param_column(name, [raw[i] for i in rows], specs.get(name))
    order = [n for n in specs if n in params] + [n for n in params if n not in specs]
    value = [cols["value"][i] for i in rows]
    return StudyTrials(
        study=study,
        number=np.array([int(cols["number"][i]) for i in rows], dtype=np.int64),
        status=np.array([str(cols["status"][i]) for i in rows], dtype=object),
        value=np.array([np.nan if _missing(v) else float(v) for v in value], dtype=np.float64),
        params={k: params[k] for k in order},
    )


def store_trials(store: Any) -> dict[str, tuple[dict[str, list[Any]], dict[str, Any]]]:
    """Every study of a results store: ``name -> (columns in the trials_frame layout, its row
    of the studies table as a dict, {} when absent)``, read with plain SQL; ``{}`` when the
    store has no trials table."""
    have = {r[0] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "trials" not in have:
        return {}
    info: dict[str, dict[str, Any]] = {}
    if "studies" in have:
        info = {r["study"]: dict(r) for r in store.query("SELECT * FROM studies")}
    rows = store.query(
        "SELECT study, number, params, status, value, seconds, error, started, finished "
        "FROM trials ORDER BY study, number"
    )
    by_study: dict[str, list[Any]] = {}
    for r in rows:
        by_study.setdefault(r["study"], []).append(r)
    out = {}
    for name, rs in by_study.items():
        configs = [json.loads(r["params"]) for r in rs]
        cols: dict[str, list[Any]] = {c: [r[c] for r in rs] for c in _TRIAL_COLUMNS}
        for k in dict.fromkeys(k for c in configs for k in c):
            cols[_PREFIX + k] = [c.get(k) for c in configs]
        out[name] = (cols, info.get(name, {}))
    return out


_TRIAL_COLUMNS = ("study", "number", "status", "value", "seconds", "error", "started", "finished")


def result_trials(result: Any, *, study: str = "minimize") -> Any:
    """The History of ``minimize(f, space=...)`` (a SpaceResult) as a DataFrame in the
    trials_frame layout: one complete trial per evaluation (a non-finite value is a failed
    trial), ``seconds`` the wall time since the previous evaluation was recorded (a population
    evaluated at once shows its time on its first row, 0 on the others), no start or finish
    times; ``attrs["space"]`` holds the space's dict, so the pictures know its log scales."""
    import pandas as pd

    h = result.to_pandas()
    f = h["f"].to_numpy(dtype=np.float64)
    ok = np.isfinite(f)
    sec = np.diff(np.r_[0.0, h["seconds"].to_numpy(dtype=np.float64)])
    out = pd.DataFrame(
        {
            "study": study,
            "number": np.arange(len(h), dtype=np.int64),
            "status": np.where(ok, "complete", "failed"),
            "value": np.where(ok, f, np.nan),
            "seconds": sec,
            "error": [
                None if g else f"the objective returned {v}" for g, v in zip(ok, f, strict=True)
            ],
            "started": np.nan,
            "finished": np.nan,
        }
    )
    skip = {"evals", "seconds", "f", "best_f", "cached"}
    for c in h.columns:
        if c not in skip:
            out[_PREFIX + c] = h[c]
    # no space, or one JSON cannot hold: the pictures fall back to linear axes
    with contextlib.suppress(AttributeError, TypeError):
        out.attrs["space"] = result.space.to_dict()
    return out


def _groups(col: ParamColumn, rows: np.ndarray, bins: int) -> np.ndarray:
    """A group id per row: the category (choices), the value (few distinct numbers) or its
    quantile bin; absent values form a group of their own."""
    v = col.values[rows]
    if col.kind == "choice":
        return v.astype(np.int64)
    out = np.full(v.size, -1, dtype=np.int64)
    ok = ~np.isnan(v)
    distinct = np.unique(v[ok])
    if distinct.size <= bins:
        out[ok] = np.searchsorted(distinct, v[ok])
    else:
        edges = np.unique(np.quantile(v[ok], np.linspace(0, 1, bins + 1))[1:-1])
        out[ok] = np.searchsorted(edges, v[ok], side="right")
    return out


def param_importance(
    trials: StudyTrials,
    *,
    bins: int | None = None,
    on: Literal["rank", "value"] = "rank",
    params: Sequence[str] | None = None,
    normalize: bool = True,
) -> dict[str, float]:
    """Each parameter's share of the variation of the objective it explains on its own,
    normalised to sum to 1 (largest first; all zero when none explains more than chance);
    ``normalize=False`` gives the fractions themselves (how much each explains at all).

    Per parameter, the complete trials are grouped (choices by category, numbers by
    ``bins`` quantile bins, default about sqrt(n)/2 in [2, 10]; a conditional parameter
    only over the trials that set it, so it is not credited with its parent's effect) and
    the correlation ratio eta^2 = between-group / total sum of squares of the objective
    is corrected for the groups' count (epsilon^2 = (SSB - (k-1) SSW/(n-k)) / SST, clipped at
    0), so a noise parameter scores near 0. ``on="rank"`` (default) uses the values' ranks,
    so a few huge losses do not dominate. Limits: it sees main effects only (a parameter that
    matters through an interaction scores low), binning hides effects finer than a bin,
    and with few trials (< ~30) the shares are noisy. Needs 3 complete trials.
    """
    rows = np.flatnonzero(trials.complete)
    if rows.size < 3:
        raise ValueError(f"parameter importance needs at least 3 complete trials, got {rows.size}")
    y = trials.value[rows]
    if on == "rank":
        y = np.argsort(np.argsort(y, kind="stable"), kind="stable").astype(np.float64)
    elif on != "value":
        raise ValueError(f"on must be 'rank' or 'value', got {on!r}")
    names = list(trials.params) if params is None else list(params)
    k_bins = bins if bins is not None else int(min(10, max(2, round(math.sqrt(rows.size) / 2))))
    sst = float(((y - y.mean()) ** 2).sum())
    raw: dict[str, float] = {}
    for name in names:
        col = trials.params[name]
        here = col.present[rows]  # a conditional parameter: only its branch's trials
        g = _groups(col, rows[here], k_bins)
        yh = y[here]
        ids, inv = np.unique(g, return_inverse=True)
        k, n = ids.size, yh.size
        if k < 2 or sst == 0.0:
            raw[name] = 0.0
            continue
        means = np.bincount(inv, weights=yh) / np.bincount(inv)
        ssb = float((np.bincount(inv) * (means - yh.mean()) ** 2).sum())
        ssw = float(((yh - yh.mean()) ** 2).sum()) - ssb
        corr = (k - 1) * ssw / (n - k) if n > k else ssb
        raw[name] = max(0.0, (ssb - corr) / sst)
    total = sum(raw.values()) if normalize else 1.0
    shares = {k: (v / total if total > 0 else 0.0) for k, v in raw.items()}
    return dict(sorted(shares.items(), key=lambda kv: -kv[1]))
