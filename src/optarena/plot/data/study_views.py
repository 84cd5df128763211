"""The arrays behind the study pictures: best value over trials and parallel coordinates,
computed from :class:`~optarena.plot.data.study.StudyTrials` without matplotlib."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .study import ParamColumn, StudyTrials

__all__ = [
    "BestValueData",
    "ParallelAxis",
    "ParallelData",
    "best_value_data",
    "log_values",
    "parallel_data",
]

#: Values are drawn on a log axis when all are positive and span more than this ratio.
LOG_SPAN = 100.0


def log_values(values: np.ndarray) -> bool:
    """Whether objective values read better on a log axis: all positive, over 2 decades."""
    v = values[np.isfinite(values)]
    return bool(v.size and v.min() > 0 and v.max() / v.min() > LOG_SPAN)


@dataclass(frozen=True)
class BestValueData:
    """Complete trials (``number``, ``value``), the running best over them (``best``, one per
    complete trial, a step function of the trial number), pruned trials with their last
    reported value (NaN when none) and the numbers of failed trials."""

    number: np.ndarray
    value: np.ndarray
    best: np.ndarray
    pruned_number: np.ndarray
    pruned_value: np.ndarray
    failed_number: np.ndarray
    n_nonfinite: int  # complete trials whose value is missing or not finite


def best_value_data(trials: StudyTrials) -> BestValueData:
    """The data of the best-value-over-trials picture."""
    ok = trials.complete
    value = trials.value[ok]
    pruned = trials.status == "pruned"
    return BestValueData(
        number=trials.number[ok],
        value=value,
        best=np.minimum.accumulate(value) if value.size else value,
        pruned_number=trials.number[pruned],
        pruned_value=trials.value[pruned],
        failed_number=trials.number[trials.status == "failed"],
        n_nonfinite=int(((trials.status == "complete") & ~ok).sum()),
    )


@dataclass(frozen=True)
class ParallelAxis:
    """One vertical axis: each line's height in [0, 1] (NaN where the parameter is absent)
    and the tick heights with their labels."""

    name: str
    height: np.ndarray
    ticks: np.ndarray
    labels: list[str]
    log: bool = False


@dataclass(frozen=True)
class ParallelData:
    """The objective's axis first, then one per parameter; one line per complete trial."""

    axes: list[ParallelAxis]
    value: np.ndarray
    number: np.ndarray
    value_log: bool


def _numeric_axis(name: str, v: np.ndarray, log: bool, integer: bool) -> ParallelAxis:
    t = np.log10(v) if log else v.astype(np.float64)
    fin = t[np.isfinite(t)]
    if fin.size == 0:
        return ParallelAxis(name, np.full(v.size, np.nan), np.array([]), [], log)
    lo, hi = float(fin.min()), float(fin.max())
    span = hi - lo
    height = (t - lo) / span if span > 0 else np.where(np.isnan(t), np.nan, 0.5)
    tick_t = np.linspace(lo, hi, 5) if span > 0 else np.array([lo])
    tick_v = 10.0**tick_t if log else tick_t
    if integer:
        tick_v = np.unique(np.round(tick_v))
        tick_t = np.log10(tick_v) if log else tick_v
    ticks = (tick_t - lo) / span if span > 0 else np.full(tick_t.size, 0.5)
    labels = [f"{x:.0f}" if integer else f"{x:.3g}" for x in tick_v]
    return ParallelAxis(name, height, ticks, labels, log)


def _choice_axis(col: ParamColumn, rows: np.ndarray) -> ParallelAxis:
    k = len(col.categories)
    idx = col.values[rows].astype(np.float64)
    idx[idx < 0] = np.nan
    scale = max(k - 1, 1)
    height = idx / scale if k > 1 else np.where(np.isnan(idx), np.nan, 0.5)
    ticks = np.arange(k) / scale if k > 1 else np.full(k, 0.5)
    return ParallelAxis(col.name, height, ticks, [str(c) for c in col.categories])


def parallel_data(trials: StudyTrials, params: list[str] | None = None) -> ParallelData:
    """Parallel-coordinate data of the complete trials: numbers scaled to the range seen (in
    log10 for log-scale parameters), categories at their index among the options."""
    rows = np.flatnonzero(trials.complete)
    value = trials.value[rows]
    vlog = log_values(value)
    axes = [_numeric_axis("value", value, vlog, integer=False)]
    for name in trials.params if params is None else params:
        col = trials.params[name]
        if col.kind == "choice":
            axes.append(_choice_axis(col, rows))
        else:
            axes.append(_numeric_axis(name, col.values[rows], col.log, col.kind == "int"))
    return ParallelData(axes, value, trials.number[rows], vlog)
