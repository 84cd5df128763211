"""Targets and "evaluations to reach a target": one definition for tables, compare and pictures.

A run reaches a target ``t`` at the first History row whose best-so-far value is ``<= t``.
Summary tables (:mod:`optarena.bench.summary`, :func:`optarena.compare`) use a few targets,
by default ``f_opt + 10^k`` for k in 0, -3, -6; runtime ECDFs (:mod:`optarena.plot`) use many,
``f_opt + 10^k`` for 51 values of k from 2 down to -8 as COCO does, measured from the best
value any run found when the optimum is unknown.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "DEFAULT_DELTAS",
    "DEFAULT_TARGET_EXPONENTS",
    "Target",
    "as_targets",
    "default_targets",
    "ecdf_targets",
    "first_reach",
    "hits_from_history",
]

DEFAULT_TARGET_EXPONENTS = (0, -3, -6)
#: Default ECDF targets: f_opt + 10^k for 51 values of k from 2 down to -8 (as COCO).
DEFAULT_DELTAS = 10.0 ** np.linspace(2.0, -8.0, 51)


@dataclass(frozen=True)
class Target:
    """A value to reach (``best_f <= value``), with a short label for table headers."""

    value: float
    label: str


def default_targets(f_opt: float | None) -> tuple[Target, ...]:
    """``f_opt + 10^k`` for k in :data:`DEFAULT_TARGET_EXPONENTS`; none when f_opt is unknown."""
    if f_opt is None or not math.isfinite(f_opt):
        return ()
    return tuple(Target(f_opt + 10.0**k, f"f*+1e{k}") for k in DEFAULT_TARGET_EXPONENTS)


def as_targets(targets: Iterable[float | Target] | None, f_opt: float | None) -> tuple[Target, ...]:
    """Targets from explicit values (or Target objects), or the defaults from ``f_opt``."""
    if targets is None:
        return default_targets(f_opt)
    out = []
    for t in targets:
        if isinstance(t, Target):
            out.append(t)
        elif isinstance(t, int | float) and not isinstance(t, bool) and not math.isnan(t):
            out.append(Target(float(t), f"{float(t):.6g}"))
        else:
            raise TypeError(f"targets must be numbers, got {t!r}")
    return tuple(out)


def first_reach(best_f: np.ndarray, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """For each target value, the index of the first row with ``best_f <= value``
    (``len(best_f)`` when no row reaches it). NaN never reaches a target."""
    b = np.asarray(best_f, dtype=np.float64).reshape(-1)
    running = np.minimum.accumulate(np.where(np.isnan(b), np.inf, b)) if b.size else b
    # running is non-increasing: the first row at or below v is a sorted search in -running
    return np.searchsorted(-running, -np.asarray(values, np.float64), side="left")


def hits_from_history(
    best_f: np.ndarray, evals: np.ndarray, seconds: np.ndarray, targets: Sequence[Target]
) -> tuple[tuple[int, float] | None, ...]:
    """Evaluations and seconds at which ``best_f`` first reached each target (None: never)."""
    idx = first_reach(best_f, [t.value for t in targets])
    n = len(best_f)
    return tuple(
        (int(evals[i]), float(seconds[i])) if i < n else None for i in (int(j) for j in idx)
    )


def ecdf_targets(
    f_opt: float | None,
    best_found: Iterable[float] = (),
    deltas: Sequence[float] | np.ndarray = tuple(DEFAULT_DELTAS),
) -> np.ndarray | None:
    """The ECDF targets of one problem: ``f_opt + deltas``, or (optimum unknown) the best
    finite value in ``best_found`` plus ``deltas``; None when neither exists."""
    ref = f_opt
    if ref is None or not math.isfinite(ref):
        finite = [float(v) for v in best_found if math.isfinite(v)]
        if not finite:
            return None
        ref = min(finite)
    return float(ref) + np.asarray(deltas, dtype=np.float64).reshape(-1)
