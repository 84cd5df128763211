"""What one run hands a method: its context (start, bounds, constraints, seeded generators, the
user's callback), what the callback sees after each iteration, and how a run ended on its own.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..budget import StopReason
from ..core.errors import CallbackError, StopRun
from ..core.evaluator import Evaluator
from ._checkpoint import Checkpoint

__all__ = ["IterationInfo", "Outcome", "RunContext"]


@dataclass(frozen=True)
class IterationInfo:
    """What the callback sees after each iteration (step, generation or solver iteration)."""

    iteration: int
    nfev: int
    ngev: int
    best_f: float
    best_x: torch.Tensor | None
    x: torch.Tensor | None = None
    f: float | None = None
    checkpoint: Checkpoint | None = None
    phase: str | None = None  # the sub-run of a composite this iteration belongs to

    @property
    def fun(self) -> float:
        """scipy's ``intermediate_result.fun``: the value at ``x`` when the method has one
        iterate (``f``), else the best value so far (population and scipy-driven methods)."""
        return self.best_f if self.f is None else self.f


@dataclass
class RunContext:
    """Everything about one run except the objective: start, bounds, constraints, randomness."""

    x0: torch.Tensor
    lower: torch.Tensor | None
    upper: torch.Tensor | None
    constraints: tuple[Any, ...]
    seed: int
    callback: Callable[[IterationInfo], Any] | None = None
    resume: Checkpoint | None = None
    phase: str | None = None  # set by composites for their sub-runs ("outer: inner" nested)
    space: Any = None  # minimize(space=...): the space's box Encoding (space-aware methods)
    generator: torch.Generator = field(init=False)
    _rng: np.random.Generator | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(self.seed)

    @property
    def rng(self) -> np.random.Generator:
        """The run's numpy generator (seeded with ``seed``), made on first use (it is costly)."""
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self._rng = value

    @property
    def bounded(self) -> bool:
        """True when box bounds were given."""
        return self.lower is not None

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` clipped into the box (unchanged when there are no bounds)."""
        if self.lower is None or self.upper is None:
            return x
        return torch.minimum(torch.maximum(x, self.lower), self.upper)

    @property
    def made_under(self) -> dict[str, Any]:
        """What a checkpoint of this run must match to be resumed here (not x0: the state
        holds the iterate)."""
        box = None
        if self.lower is not None and self.upper is not None:
            box = (self.lower.detach().cpu().clone(), self.upper.detach().cpu().clone())
        return {
            "dimension": int(self.x0.numel()),
            "dtype": str(self.x0.dtype).removeprefix("torch."),
            "bounds": box,
            "seed": self.seed,
        }

    def notify(
        self,
        oracle: Evaluator,
        iteration: int,
        x: torch.Tensor | None,
        f: float | None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Call the user's callback; a truthy return ends the run, as does raising
        ``StopIteration`` (scipy's way). Any other exception in it ends the run with
        :class:`CallbackError` (an ObjectiveError: it carries the best so far)."""
        if self.callback is None:
            return
        best_x = None if oracle.best_x is None else oracle.best_x.clone()
        info = IterationInfo(
            iteration=iteration,
            nfev=oracle.nfev,
            ngev=oracle.ngev,
            best_f=oracle.best_f,
            best_x=best_x,
            x=None if x is None else x.detach().clone(),
            f=f,
            checkpoint=checkpoint,
            phase=self.phase,
        )
        try:
            stop = self.callback(info)
        except StopIteration:
            raise StopRun(
                StopReason.CALLBACK,
                f"stopped by the callback (it raised StopIteration after iteration {iteration}, "
                f"evaluation {oracle.nfev}); best so far kept",
            ) from None
        except Exception as e:
            hint = (
                ". The callback receives an IterationInfo (info.x, info.fun, info.best_x, "
                "info.best_f, info.nfev, info.iteration), not scipy's array xk"
                if isinstance(e, AttributeError) and "IterationInfo" in str(e)
                else ""
            )
            raise CallbackError(
                f"the callback raised {type(e).__name__} after iteration {iteration} "
                f"(evaluation {oracle.nfev}): {e}{hint}",
                oracle.nfev,
            ) from e
        if stop:
            raise StopRun(
                StopReason.CALLBACK,
                f"stopped by the callback (it returned {reprlib.repr(stop)} after iteration "
                f"{iteration}, evaluation {oracle.nfev}); best so far kept",
            )


@dataclass(frozen=True)
class Outcome:
    """How a method's run ended when it ended on its own (not through a StopRun)."""

    reason: StopReason
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)
