"""Summaries of many runs: final-value statistics and evaluations/seconds to reach targets.

The same numbers come from in-process Results (:func:`optarena.compare`) and from a store
(:func:`summarize_store`). Targets default to ``f_opt + 10^k`` for k in 0, -3, -6 when the
problem's optimum is known. Success is reaching the tightest target; without targets (an
unknown optimum) there is no success rate, and tables show "-". The "stop" column says why
the runs ended (``converged``, ``max_evals``, ``non_finite``, ``error``, ...), with counts
when the runs of a method ended differently.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .store import Store
from .targets import (
    DEFAULT_TARGET_EXPONENTS,
    Target,
    as_targets,
    default_targets,
    hits_from_history,
)

__all__ = [
    "DEFAULT_TARGET_EXPONENTS",
    "RunOutcome",
    "Summary",
    "SummaryRow",
    "Target",
    "TargetStat",
    "as_targets",
    "default_targets",
    "hits_from_history",
    "summarize",
    "summarize_store",
]


@dataclass(frozen=True)
class RunOutcome:
    """What the summary needs from one run."""

    group: str
    label: str
    method: str
    status: str
    fun: float | None
    nfev: int
    elapsed: float
    hits: tuple[tuple[int, float] | None, ...]  # (evaluations, seconds) per target, or None
    stop_reason: str | None = None  # why the run ended (a StopReason value), None: unknown


@dataclass(frozen=True)
class TargetStat:
    """How the runs of one method did against one target."""

    target: Target
    hits: int
    median_evals: float | None
    median_seconds: float | None


@dataclass(frozen=True)
class SummaryRow:
    """Statistics of one method (label) on one problem over its runs."""

    problem: str
    label: str
    method: str
    runs: int
    errors: int
    median: float
    q1: float
    q3: float
    best: float
    success: float | None  # share of runs that reached the tightest target; None: no target
    median_evals: float
    median_seconds: float
    targets: tuple[TargetStat, ...]
    stops: tuple[tuple[str, int], ...] = ()  # (stop reason, runs), most frequent first

    def as_dict(self) -> dict[str, Any]:
        """Flat columns (one group of three per target) for CSV and pandas."""
        d: dict[str, Any] = {
            "problem": self.problem,
            "method": self.label,
            "registered_method": self.method,
            "runs": self.runs,
            "errors": self.errors,
            "median": self.median,
            "q1": self.q1,
            "q3": self.q3,
            "best": self.best,
            "success_rate": self.success,
            "stop_reasons": _fmt_stops(self.stops, ":", ";"),
            "median_evals_used": self.median_evals,
            "median_seconds_used": self.median_seconds,
        }
        for ts in self.targets:
            d[f"target {ts.target.label}"] = ts.target.value
            d[f"hits {ts.target.label}"] = ts.hits
            d[f"evals to {ts.target.label}"] = ts.median_evals
            d[f"seconds to {ts.target.label}"] = ts.median_seconds
        return d


def _quantile(sorted_vals: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile that keeps ``inf`` meaningful (inf - inf is not NaN)."""
    if not sorted_vals:
        return math.nan
    pos = q * (len(sorted_vals) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = sorted_vals[lo], sorted_vals[hi]
    if a == b or math.isinf(b):
        return a if a == b else b
    return a + (b - a) * (pos - lo)


def _median(vals: Sequence[float]) -> float | None:
    return _quantile(sorted(vals), 0.5) if vals else None


def summarize(
    outcomes: Iterable[RunOutcome], targets: Mapping[str, Sequence[Target]]
) -> list[SummaryRow]:
    """One row per (problem, method label), ranked within each problem by median value."""
    groups: dict[tuple[str, str], list[RunOutcome]] = {}
    for o in outcomes:
        groups.setdefault((o.group, o.label), []).append(o)
    rows: list[SummaryRow] = []
    for (group, label), runs in groups.items():
        tg = tuple(targets.get(group, ()))
        ok = [r for r in runs if r.status == "ok"]
        vals = sorted(r.fun if r.fun is not None else math.inf for r in ok)
        stats = []
        for i, t in enumerate(tg):
            hit = [r.hits[i] for r in runs if r.hits[i] is not None]
            stats.append(
                TargetStat(
                    t,
                    len(hit),
                    _median([h[0] for h in hit if h is not None]),
                    _median([h[1] for h in hit if h is not None]),
                )
            )
        success = None  # without a target (an unknown optimum) success has no meaning
        if tg:
            tightest = min(range(len(tg)), key=lambda i: tg[i].value)
            success = stats[tightest].hits / len(runs)
        reasons: dict[str, int] = {}
        for r in runs:
            why = r.stop_reason or ("error" if r.status == "error" else "unknown")
            reasons[why] = reasons.get(why, 0) + 1
        rows.append(
            SummaryRow(
                problem=group,
                label=label,
                method=runs[0].method,
                runs=len(runs),
                errors=len(runs) - len(ok),
                median=_quantile(vals, 0.5),
                q1=_quantile(vals, 0.25),
                q3=_quantile(vals, 0.75),
                best=vals[0] if vals else math.nan,
                success=success,
                median_evals=_median([r.nfev for r in runs]) or 0.0,
                median_seconds=_median([r.elapsed for r in runs]) or 0.0,
                targets=tuple(stats),
                stops=tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
            )
        )
    order = {g: i for i, g in enumerate(dict.fromkeys(o[0] for o in groups))}

    def rank(r: SummaryRow) -> tuple[Any, ...]:
        m = r.median if not math.isnan(r.median) else math.inf
        ok = -1.0 if r.success is None else -r.success
        return (order[r.problem], math.isnan(r.median), m, ok, r.best, r.label)

    return sorted(rows, key=rank)


# -- formatting --------------------------------------------------------------------------------
def _fmt_value(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.7g}"


def _fmt_count(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"


def _fmt_seconds(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _fmt_stops(stops: Sequence[tuple[str, int]], sep: str = " ", join: str = ", ") -> str:
    """``"converged"`` when every run stopped for one reason, else ``"max_evals 3, error 1"``."""
    if len(stops) == 1:
        return stops[0][0]
    return join.join(f"{why}{sep}{n}" for why, n in stops)


@dataclass(frozen=True)
class Summary:
    """Summary rows with the targets they were measured against, ready to print or export."""

    rows: tuple[SummaryRow, ...]
    targets: Mapping[str, tuple[Target, ...]]

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per row (the CSV columns)."""
        return [r.as_dict() for r in self.rows]

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table, best median first within each problem."""
        labels = list(dict.fromkeys(ts.target.label for r in self.rows for ts in r.targets))
        header = ["problem", "method", "runs", "median", "q1", "q3", "best", "success", "stop"]
        for lab in labels:
            header += [f"evals to {lab}", f"s to {lab}"]
        header += ["evals used", "s used"]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in self.rows:
            runs = f"{r.runs}" + (f" ({r.errors} err)" if r.errors else "")
            cells = [
                r.problem,
                r.label,
                runs,
                _fmt_value(r.median),
                _fmt_value(r.q1),
                _fmt_value(r.q3),
                _fmt_value(r.best),
                "-" if r.success is None else f"{r.success:.0%}",
                _fmt_stops(r.stops),
            ]
            by_label = {ts.target.label: ts for ts in r.targets}
            for lab in labels:
                ts = by_label.get(lab)
                if ts is None:
                    cells += ["", ""]
                else:
                    ev = _fmt_count(ts.median_evals)
                    cells += [f"{ev} ({ts.hits}/{r.runs})", _fmt_seconds(ts.median_seconds)]
            cells += [_fmt_count(r.median_evals), _fmt_seconds(r.median_seconds)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        """The rows as CSV (one column per statistic, three per target)."""
        recs = self.records()
        fields = list(dict.fromkeys(k for rec in recs for k in rec))
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        for rec in recs:
            w.writerow({k: ("" if v is None else v) for k, v in rec.items()})
        return buf.getvalue()

    def table(self, fmt: str = "markdown") -> str:
        """The table as ``"markdown"`` or ``"csv"``."""
        if fmt == "markdown":
            return self.markdown()
        if fmt == "csv":
            return self.csv()
        raise ValueError(f"format must be 'markdown' or 'csv', got {fmt!r}")

    def to_pandas(self) -> Any:
        """The rows as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_pandas() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.records())

    def __str__(self) -> str:
        return self.markdown()


# -- from a store ------------------------------------------------------------------------------
def _group_names(pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Display names of (problem, params JSON) pairs: the name, plus params that differ."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    pairs = list(dict.fromkeys(pairs))
    for name, pj in pairs:
        by_name.setdefault(name, []).append(json.loads(pj))
    out = {}
    for name, pj in pairs:
        variants = by_name[name]
        if len(variants) == 1:
            out[(name, pj)] = name
            continue
        params = json.loads(pj)
        differ = sorted(k for k in params if len({json.dumps(v.get(k)) for v in variants}) > 1)
        inner = ",".join(f"{k}={params[k]}" for k in differ)
        out[(name, pj)] = f"{name}({inner})"
    return out


def summarize_store(
    store: Store,
    *,
    keys: Iterable[str] | None = None,
    labels: Mapping[str, str] | None = None,
    targets: Iterable[float | Target] | None = None,
) -> Summary:
    """Summary of the runs in ``store`` (only ``keys`` if given).

    ``labels`` maps keys to method labels (a spec's labels); stored labels are used otherwise.
    ``targets`` are absolute values for every problem; by default each problem's f_opt gives
    its own.
    """
    rows = store.selected_runs(keys)
    names = _group_names((r["problem"], r["problem_params"]) for r in rows)
    explicit = None if targets is None else as_targets(targets, None)
    tmap: dict[str, tuple[Target, ...]] = {}
    for r in rows:
        g = names[(r["problem"], r["problem_params"])]
        if g not in tmap:
            tmap[g] = explicit if explicit is not None else default_targets(r["f_opt"])
    changes = store.best_changes(r["run_id"] for r in rows)
    hits: dict[int, tuple[tuple[int, float] | None, ...]] = {}
    for r in rows:
        tg = tmap[names[(r["problem"], r["problem_params"])]]
        c = changes.get(r["run_id"])
        if c is None:  # no stored history: no target reached
            hits[r["run_id"]] = (None,) * len(tg)
        else:
            hits[r["run_id"]] = hits_from_history(c["best_f"], c["evals"], c["seconds"], tg)

    def label_of(r: Any) -> str:
        return str((labels or {}).get(r["key"], r["label"]))

    # Runs of one label stored with different budgets are different experiments: the label
    # then carries the budget, so a row never pools them.
    budgets: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        g = names[(r["problem"], r["problem_params"])]
        budgets.setdefault((g, label_of(r)), set()).add(str(r["budget"]))

    def shown(r: Any) -> str:
        g = names[(r["problem"], r["problem_params"])]
        lab = label_of(r)
        if len(budgets[(g, lab)]) == 1:
            return lab
        spent = {k: v for k, v in json.loads(r["budget"]).items() if v is not None}
        return f"{lab} [{', '.join(f'{k}={v}' for k, v in sorted(spent.items()))}]"

    outcomes = [
        RunOutcome(
            group=names[(r["problem"], r["problem_params"])],
            label=shown(r),
            method=r["method"],
            status=r["status"],
            fun=r["fun"],
            nfev=r["nfev"],
            elapsed=r["elapsed"],
            hits=hits[r["run_id"]],
            stop_reason=r["stop_reason"],
        )
        for r in rows
    ]
    return Summary(tuple(summarize(outcomes, tmap)), tmap)
