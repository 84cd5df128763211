"""Study: what :func:`optarena.study.optimize` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..space import SpaceResult

__all__ = ["Study"]


@dataclass(frozen=True, repr=False)
class Study:
    """A finished study: its best complete trial, counts by status, every trial as a
    DataFrame (``trials``, the :func:`~optarena.study.trials_frame` of this study) and
    ``result``, the method's view as a :class:`~optarena.space.SpaceResult` (every value it
    was told, in the order told; pruned trials count with their last reported value)."""

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
        columns are ``params_<name>`` as Optuna's are)."""
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
