"""The path of a run through its evaluated points: iterates, generations or improvements,
and the frames an animation shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .runs import Trace, as_trace

__all__ = ["Recorder", "RunPath", "frame_indices", "run_path"]


class Recorder:
    """A callback for ``minimize`` that records ``nfev`` after every step or generation, so
    plots know where each generation of a population method starts and ends."""

    def __init__(self) -> None:
        self.nfev: list[int] = []

    def __call__(self, info: Any) -> None:
        self.nfev.append(int(info.nfev))


@dataclass(frozen=True)
class RunPath:
    """The path of one run through its evaluated points.

    Step ``k`` covers history rows ``starts[k]:ends[k]`` (one row for an iterate or an
    evaluation, a whole generation for population methods); ``points[k]`` is its best point,
    ``values[k]`` that point's value and ``evals[k]`` its 1-based evaluation index.
    """

    label: str
    kind: Literal["iterates", "generations", "improvements", "evaluations"]
    points: np.ndarray
    values: np.ndarray
    evals: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    all_x: np.ndarray
    all_f: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def population(self, k: int) -> np.ndarray:
        """Every point evaluated in step ``k`` (a generation's whole population)."""
        return self.all_x[self.starts[k] : self.ends[k]]

    @property
    def best(self) -> tuple[np.ndarray, float]:
        """The best evaluated point of the run and its value."""
        ranked = np.where(np.isfinite(self.all_f), self.all_f, np.inf)
        i = int(np.argmin(ranked))
        return self.all_x[i], float(self.all_f[i])


def _family(method: str) -> str | None:
    from ...methods import get_method_class

    try:
        return get_method_class(method).info.family if method else None
    except ValueError:
        return None


def _generation_slices(t: Trace, generations: Any) -> np.ndarray:
    n = len(t)
    if generations is None:  # rows evaluated as one batch share one timestamp
        cuts = np.flatnonzero(np.diff(t.seconds) != 0) + 1
        ends = np.r_[cuts, n]
    else:
        ends = np.asarray(getattr(generations, "nfev", generations), dtype=np.int64).reshape(-1)
        if ends.size and (np.any(np.diff(ends) < 0) or ends[0] < 0 or ends[-1] > n):
            raise ValueError(
                f"generation ends must be non-decreasing evaluation counts within 0..{n}"
            )
        ends = np.unique(ends[ends > 0])
        if ends.size == 0 or ends[-1] < n:
            ends = np.r_[ends, n]
    return np.column_stack([np.r_[0, ends[:-1]], ends]).astype(np.int64)


def run_path(
    run: Any,
    *,
    kind: Literal["auto", "iterates", "generations", "improvements", "evaluations"] = "auto",
    generations: Any = None,
    label: str | None = None,
) -> RunPath:
    """The path of a run that recorded its points.

    ``auto`` picks: generations for population methods (or when ``generations`` is given:
    a :class:`Recorder` or the ``nfev`` after each generation; otherwise batches are found
    from their shared timestamp; an unknown method without gradients whose history has such
    batches counts as one too), iterates (points where a gradient was evaluated) for
    gradient runs, and otherwise the improvements (each evaluated point that lowered the
    best-so-far value). ``evaluations`` gives every evaluated point in order.
    """
    t = as_trace(run)
    if t.x is None:
        raise ValueError(
            "this run did not record its points; run it with minimize(..., record_x=True)"
        )
    if len(t) == 0:
        raise ValueError("this run has no evaluations")
    grad_rows = np.flatnonzero(np.diff(np.r_[0, t.grad_evals]) > 0)
    if kind == "auto":
        family = _family(t.method)
        batched = len(t) > 1 and bool(np.any(np.diff(t.seconds) == 0))
        unknown_batches = family is None and not grad_rows.size and batched
        if generations is not None or family == "population" or unknown_batches:
            kind = "generations"
        elif grad_rows.size:
            kind = "iterates"
        else:
            kind = "improvements"
    ranked = np.where(np.isfinite(t.f), t.f, np.inf)
    if kind == "generations":
        sl = _generation_slices(t, generations)
    elif kind == "iterates":
        if not grad_rows.size:
            raise ValueError("this run evaluated no gradient, so it has no iterates")
        sl = np.column_stack([grad_rows, grad_rows + 1])
    elif kind in ("evaluations", "improvements"):
        rows = np.arange(len(t))
        if kind == "improvements":
            prev = np.r_[np.inf, np.minimum.accumulate(ranked)[:-1]]
            rows = rows[(ranked < prev)] if np.isfinite(ranked).any() else rows[:1]
        sl = np.column_stack([rows, rows + 1])
    else:
        raise ValueError(
            f"kind must be auto, iterates, generations, improvements or evaluations, not {kind!r}"
        )
    pick = np.array([s + int(np.argmin(ranked[s:e])) for s, e in sl], dtype=np.int64)
    return RunPath(
        label=label if label is not None else (t.method or "run"),
        kind=kind,
        points=t.x[pick],
        values=t.f[pick],
        evals=t.evals[pick],
        starts=sl[:, 0],
        ends=sl[:, 1],
        all_x=t.x,
        all_f=t.f,
    )


def frame_indices(n_steps: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spread step indices, always with the first and last."""
    if max_frames < 2:
        raise ValueError(f"max_frames must be >= 2, got {max_frames}")
    if n_steps <= 0:
        raise ValueError("nothing to animate: the run has no steps")
    if n_steps <= max_frames:
        return np.arange(n_steps)
    return np.unique(np.round(np.linspace(0, n_steps - 1, max_frames)).astype(np.int64))
