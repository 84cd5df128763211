"""Pruners: stop a trial early from the values it reports (``trial.report(step, value)``).

A pruner decides from the trial's own reports and a *snapshot*: the reports of the trials
that had finished when the trial was launched (the trial may run in another process, so it
cannot see trials that finish while it runs). For a given launch order the decisions are
therefore deterministic. Values are minimized; a NaN report is pruned where Optuna's pruners
prune it: at or past the next rung's step (successive halving), once the startup trials and
warmup steps are past (median).
"""

from __future__ import annotations

import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from .trial import Finished

__all__ = ["MedianPruner", "Pruner", "SuccessiveHalvingPruner", "as_pruner"]


class Pruner(ABC):
    """Decides whether a running trial should stop at the step it just reported."""

    @abstractmethod
    def prune(self, reports: Mapping[int, float], step: int, finished: Sequence[Finished]) -> bool:
        """True to stop the trial whose values so far are ``reports`` (``step`` just came)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The pruner as a JSON-able dict (``as_pruner`` reads it back)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pruner) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items())))

    def __repr__(self) -> str:
        d = self.to_dict()
        args = ", ".join(f"{k}={v!r}" for k, v in d.items() if k != "type")
        return f"{type(self).__name__}({args})"


def _int(name: str, value: Any, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return value


class MedianPruner(Pruner):
    """Stop a trial when its best value so far is worse (larger) than the median of the
    values that the *complete* trials of the snapshot reported at this step, as Optuna's
    MedianPruner does. Nothing is pruned before ``n_startup_trials`` trials (and at least
    one) have completed, nor at steps below ``n_warmup_steps``; past them a trial whose every
    report is NaN is pruned, one with a finite report is judged by its best finite value
    (Optuna 5.1's ``_percentile.py``: a NaN report during the startup trials is no reason to
    stop)."""

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        self.n_startup_trials = _int("n_startup_trials", n_startup_trials, 0)
        self.n_warmup_steps = _int("n_warmup_steps", n_warmup_steps, 0)

    def prune(self, reports: Mapping[int, float], step: int, finished: Sequence[Finished]) -> bool:
        complete = [f for f in finished if f.status == "complete"]
        if not complete or step < self.n_warmup_steps or len(complete) < self.n_startup_trials:
            return False
        mine = [v for s, v in reports.items() if s <= step and not math.isnan(v)]
        if not mine:  # every report NaN: pruned (past the startup trials and warmup steps)
            return True
        value = min(mine)
        others = [f.reports[step] for f in complete if step in f.reports]
        others = [v for v in others if not math.isnan(v)]
        return bool(others) and value > statistics.median(others)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "median", "n_startup_trials": self.n_startup_trials,
                "n_warmup_steps": self.n_warmup_steps}  # fmt: skip


class SuccessiveHalvingPruner(Pruner):
    """Asynchronous successive halving (ASHA, Li et al. 2018) as Optuna documents it: rung
    ``r`` sits at step ``min_resource * reduction_factor ** (min_early_stopping_rate + r)``;
    a trial reaching a rung goes on only if its value there is among the best
    ``1 / reduction_factor`` of the values trials recorded at that rung (the snapshot's and
    its own). With fewer than ``reduction_factor`` values, only the best goes on. A trial's
    value at a rung is the one it reported at its first step at or past the rung."""

    def __init__(
        self, min_resource: int = 1, reduction_factor: int = 3, min_early_stopping_rate: int = 0
    ) -> None:
        self.min_resource = _int("min_resource", min_resource, 1)
        self.reduction_factor = _int("reduction_factor", reduction_factor, 2)
        self.min_early_stopping_rate = _int("min_early_stopping_rate", min_early_stopping_rate, 0)

    def _rung_step(self, rung: int) -> int:
        return self.min_resource * self.reduction_factor ** (self.min_early_stopping_rate + rung)

    def _at_rung(self, reports: Mapping[int, float], rung: int) -> tuple[int, float] | None:
        """(step, value) of the first report at or past the rung, if any."""
        past = [s for s in reports if s >= self._rung_step(rung)]
        return None if not past else (min(past), reports[min(past)])

    def prune(self, reports: Mapping[int, float], step: int, finished: Sequence[Finished]) -> bool:
        value = reports[step]
        if math.isnan(value):  # as Optuna: pruned at or past the next rung not yet reached
            before, rung = max((s for s in reports if s < step), default=-1), 0
            while self._rung_step(rung) <= before:
                rung += 1
            return step >= self._rung_step(rung)
        rung = 0
        while self._rung_step(rung) <= step:
            here = self._at_rung(reports, rung)
            if here is not None and here[0] == step:  # this report is the trial's rung value
                competing = [value]
                for f in finished:
                    v = self._at_rung(f.reports, rung)
                    if v is not None and not math.isnan(v[1]):
                        competing.append(v[1])
                competing.sort()
                keep = max(len(competing) // self.reduction_factor, 1)
                if value > competing[keep - 1]:
                    return True
            rung += 1
        return False

    def to_dict(self) -> dict[str, Any]:
        return {"type": "successive_halving", "min_resource": self.min_resource,
                "reduction_factor": self.reduction_factor,
                "min_early_stopping_rate": self.min_early_stopping_rate}  # fmt: skip


_KINDS: dict[str, type[Pruner]] = {
    "median": MedianPruner,
    "successive_halving": SuccessiveHalvingPruner,
}


def as_pruner(pruner: Pruner | str | Mapping[str, Any] | None) -> Pruner | None:
    """A pruner from an instance, a name (``"median"``, ``"successive_halving"``: default
    settings) or a dict ``{"type": name, **settings}`` (as in a spec file); None: no pruning."""
    if pruner is None or isinstance(pruner, Pruner):
        return pruner
    if isinstance(pruner, str):
        pruner = {"type": pruner}
    if not isinstance(pruner, Mapping) or pruner.get("type") not in _KINDS:
        raise ValueError(
            f"a pruner is None, a Pruner, one of {sorted(_KINDS)} or a dict with 'type' one "
            f"of them, got {pruner!r}"
        )
    settings = {k: v for k, v in pruner.items() if k != "type"}
    try:
        return _KINDS[pruner["type"]](**settings)
    except TypeError as e:
        raise ValueError(f"pruner {pruner['type']!r}: {e}") from None
