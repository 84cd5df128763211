"""Runs as plain arrays: :class:`Trace`, a read-only copy of a History's columns.

A Trace is read from a Result, a History, a mapping of columns such as a results store's rows,
or hand-made arrays; :func:`group_runs` groups runs by label for every picture.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["AXIS_LABELS", "Axis", "Trace", "as_trace", "group_runs"]

Axis = Literal["evals", "grad_evals", "seconds"]
AXIS_LABELS = {
    "evals": "objective evaluations",
    "grad_evals": "gradient evaluations",
    "seconds": "seconds",
}


@dataclass(frozen=True)
class Trace:
    """The columns of one run's History (one row per objective evaluation) and its labels.

    ``x`` holds the evaluated points, shape ``(n, d)``, or is None when they were not recorded.
    """

    evals: np.ndarray
    grad_evals: np.ndarray
    seconds: np.ndarray
    f: np.ndarray
    best_f: np.ndarray
    x: np.ndarray | None = None
    method: str = ""
    seed: int | None = None

    def __post_init__(self) -> None:
        n = self.f.shape[0]
        for name in ("evals", "grad_evals", "seconds", "best_f"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"Trace.{name} has shape {getattr(self, name).shape}, not ({n},)")
        if self.x is not None and (self.x.ndim != 2 or self.x.shape[0] != n):
            raise ValueError(f"Trace.x must have shape ({n}, d), got {self.x.shape}")

    def __len__(self) -> int:
        return int(self.f.shape[0])

    @classmethod
    def from_values(
        cls,
        f: Sequence[float] | np.ndarray,
        *,
        grad_evals: Sequence[int] | np.ndarray | None = None,
        seconds: Sequence[float] | np.ndarray | None = None,
        x: np.ndarray | None = None,
        method: str = "",
        seed: int | None = None,
    ) -> Trace:
        """A Trace from raw values in evaluation order; best-so-far computed as a History does
        (NaN and inf rank as +inf). Without ``seconds`` the timing is unknown (NaN)."""
        fa = np.asarray(f, dtype=np.float64).reshape(-1)
        n = fa.shape[0]
        ranked = np.where(np.isfinite(fa), fa, np.inf)
        return cls(
            evals=np.arange(1, n + 1, dtype=np.int64),
            grad_evals=np.zeros(n, np.int64) if grad_evals is None else np.asarray(grad_evals),
            seconds=np.full(n, np.nan) if seconds is None else np.asarray(seconds, np.float64),
            f=fa,
            best_f=np.minimum.accumulate(ranked) if n else ranked,
            x=None if x is None else np.asarray(x, dtype=np.float64).reshape(n, -1),
            method=method,
            seed=seed,
        )


def as_trace(run: Any) -> Trace:
    """A Trace for a Result, a History, a Trace, or a mapping with History column names."""
    if isinstance(run, Trace):
        return run
    history = getattr(run, "history", None)
    if history is not None and hasattr(history, "best_f"):
        t = _from_columns(history, getattr(history, "has_x", False))
        return _relabel(t, str(getattr(run, "method", "")), getattr(run, "seed", None))
    if hasattr(run, "best_f") and hasattr(run, "evals"):
        return _from_columns(run, getattr(run, "has_x", False))
    if _is_columns(run):
        cols = {k: np.asarray(v) for k, v in run.items() if k in ("f", "grad_evals", "seconds")}
        t = Trace.from_values(
            cols["f"], grad_evals=cols.get("grad_evals"), seconds=cols.get("seconds")
        )
        x = run.get("x")
        return Trace(
            t.evals,
            t.grad_evals,
            t.seconds,
            t.f,
            np.asarray(run.get("best_f", t.best_f), dtype=np.float64),
            None if x is None else np.asarray(x, dtype=np.float64).reshape(len(t), -1),
            str(run.get("method", "")),
            run.get("seed"),
        )
    raise TypeError(
        "a run must be an optarena Result, a History, a plot.Trace or a mapping of History "
        "columns ('f', optionally 'grad_evals', 'seconds', 'best_f', 'x'); got "
        f"{type(run).__name__}"
    )


def _from_columns(h: Any, has_x: bool) -> Trace:
    return Trace(
        evals=np.asarray(h.evals, dtype=np.int64),
        grad_evals=np.asarray(h.grad_evals, dtype=np.int64),
        seconds=np.asarray(h.seconds, dtype=np.float64),
        f=np.asarray(h.f, dtype=np.float64),
        best_f=np.asarray(h.best_f, dtype=np.float64),
        x=np.asarray(h.x, dtype=np.float64) if has_x else None,
    )


def _relabel(t: Trace, method: str, seed: int | None) -> Trace:
    return Trace(t.evals, t.grad_evals, t.seconds, t.f, t.best_f, t.x, method, seed)


def _is_columns(obj: Any) -> bool:
    """A mapping of History columns (not a mapping of labels that happens to hold "f")."""
    if not (isinstance(obj, Mapping) and "f" in obj):
        return False
    try:
        return np.asarray(obj["f"]).dtype.kind in "fiub"
    except (TypeError, ValueError):
        return False


def _is_run(obj: Any) -> bool:
    return (
        isinstance(obj, Trace)
        or hasattr(obj, "history")
        or hasattr(obj, "best_f")
        or _is_columns(obj)
    )


def group_runs(runs: Any) -> dict[str, list[Trace]]:
    """Runs grouped by label: one run, a list of runs (grouped by method name), a mapping
    label -> run(s), or an object holding such a mapping as ``.results`` or ``.runs``."""
    if _is_run(runs):
        t = as_trace(runs)
        return {t.method or "run": [t]}
    for attr in ("results", "runs"):
        inner = getattr(runs, attr, None)
        if isinstance(inner, Mapping):
            return group_runs(inner)
    groups: dict[str, list[Trace]] = {}
    if isinstance(runs, Mapping):
        for label, value in runs.items():
            items = [value] if _is_run(value) else list(value)
            groups[str(label)] = [as_trace(r) for r in items]
    elif isinstance(runs, Iterable) and not isinstance(runs, str | bytes):
        for i, r in enumerate(runs):
            t = as_trace(r)
            groups.setdefault(t.method or f"run {i + 1}", []).append(t)
    else:
        raise TypeError(f"cannot read runs from {type(runs).__name__}")
    empty = [k for k, v in groups.items() if not v]
    if not groups or empty:
        raise ValueError(f"no runs to plot{' for ' + ', '.join(empty) if empty else ''}")
    return groups
