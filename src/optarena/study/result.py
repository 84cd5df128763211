"""Study: what :func:`optarena.study.optimize` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..space import SpaceResult

__all__ = ["Study", "TrialRecord"]


@dataclass(frozen=True)
class TrialRecord:
    """One finished trial (Optuna's ``FrozenTrial`` names): ``number``, ``params`` (the
    configuration), ``value`` (None when failed, or pruned before any report), ``state``
    (``'complete'``, ``'pruned'`` or ``'failed'``) and ``error`` (the one-line error)."""

    number: int
    params: dict[str, Any]
    value: float | None
    state: str
    error: str | None = None


@dataclass(frozen=True, repr=False)
class Study:
    """A finished study: its best complete trial (``best_config``, ``best_trial``), counts by
    status, every trial as a DataFrame (``trials``, the :func:`~optarena.study.trials_frame`
    of this study; Optuna's list of trials is :meth:`get_trials`), the failed trials'
    tracebacks (:meth:`traceback`) and ``result``, the method's view as a
    :class:`~optarena.space.SpaceResult` (every value it was told, in the order told; pruned
    trials count with their last reported value)."""

    name: str
    method: str
    seed: int
    best_value: float
    best_config: dict[str, Any] | None
    best_number: int | None
    n_complete: int
    n_pruned: int
    n_failed: int
    resumed: int  # trials found in the store (not run again)
    result: SpaceResult
    trials: Any = field(default=None)  # pandas.DataFrame
    message: str = ""
    tracebacks: dict[int, str] = field(default_factory=dict)  # failed trials' tracebacks
    records: tuple[TrialRecord, ...] = ()  # every finished trial, by number

    @property
    def best_trial(self) -> TrialRecord | None:
        """The best complete trial (``number``, ``params``, ``value``, ``state``), or None."""
        if self.best_number is None:
            return None
        return next(t for t in self.records if t.number == self.best_number)

    def get_trials(self) -> list[TrialRecord]:
        """Every finished trial as a :class:`TrialRecord`, by number (Optuna's
        ``study.trials`` list; here ``trials`` is the DataFrame, as ``trials_dataframe()``)."""
        return list(self.records)

    def traceback(self, number: int) -> str | None:
        """The traceback of failed trial ``number`` (None if it has none: it completed, was
        pruned, returned NaN or its process died). The ``error`` column of ``trials`` holds
        its one-line message; :func:`~optarena.study.trial_traceback` reads it from a store."""
        if not any(t.number == number for t in self.records):
            raise KeyError(f"study {self.name!r} has no finished trial number {number}")
        return self.tracebacks.get(number)

    @property
    def n_trials(self) -> int:
        """Finished trials stored for this study (complete, pruned and failed)."""
        return self.n_complete + self.n_pruned + self.n_failed

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best configuration (``best_config``, under Optuna's name)."""
        return self.best_config

    def trials_dataframe(self) -> Any:
        """Every trial as a DataFrame (``trials``, under Optuna's name; its parameter
        columns are ``params_<name>`` as Optuna's are). Optuna's list of trials is
        :meth:`get_trials`; the best one is :attr:`best_trial`."""
        return self.trials

    def __repr__(self) -> str:
        best = (
            "no complete trial"
            if self.best_number is None
            else f"no finite value (best {self.best_value} at trial {self.best_number})"
            if not math.isfinite(self.best_value)
            else f"best {self.best_value:.6g} at trial {self.best_number} {self.best_config!r}"
        )
        resumed = f", {self.resumed} from the store" if self.resumed else ""
        msg = f"; {self.message}" if self.message else ""
        return (
            f"Study({self.name!r}, method={self.method!r}, seed={self.seed}: {self.n_trials} "
            f"trials ({self.n_complete} complete, {self.n_pruned} pruned, {self.n_failed} "
            f"failed{resumed}); {best}{msg})"
        )
