"""Method families and their one shared run loop each.

A method implements only its own update:
- gradient family: ``init(x0, oracle, ctx) -> state`` and ``step(state, oracle, ctx) -> done``;
- population family: ``init(x0, ctx) -> state``, ``ask(state, ctx) -> X``,
  ``tell(state, X, f, ctx)`` and optionally ``converged(state)``;
- external solver: ``solve(oracle, ctx) -> (StopReason, message)``.
The loops here call the user's callback and turn convergence into a stop reason; counting,
budgets and the best point are the Oracle's business.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..budget import StopReason
from ..core.oracle import Oracle, StopRun
from ._params import validate_params
from ._registry import MethodInfo

__all__ = [
    "Checkpoint",
    "ExternalMethod",
    "GradientMethod",
    "IterationInfo",
    "Method",
    "Outcome",
    "PopulationMethod",
    "RunContext",
]


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


@dataclass(frozen=True)
class Checkpoint:
    """A deep copy of a population method's state and of the run's random generators.

    Pass it to ``minimize(..., resume=checkpoint)`` (same objective, method and seed) to
    continue exactly as the uninterrupted run would have; counts and history start afresh.
    """

    method: str
    generation: int
    state: Any
    torch_rng: torch.Tensor
    numpy_rng: dict[str, Any]


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
    generator: torch.Generator = field(init=False)
    _rng: np.random.Generator | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(self.seed)

    @property
    def rng(self) -> np.random.Generator:
        """The run's numpy generator (seeded with ``seed``), made on first use: most methods
        draw from ``generator`` only, and making one costs more than a short run's step."""
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

    def notify(
        self,
        oracle: Oracle,
        iteration: int,
        x: torch.Tensor | None,
        f: float | None,
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Call the user's callback; a truthy return ends the run."""
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
        )
        if self.callback(info):
            raise StopRun(StopReason.CALLBACK, "the callback asked to stop")


@dataclass(frozen=True)
class Outcome:
    """How a method's run ended when it ended on its own (not through a StopRun)."""

    reason: StopReason
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)


class Method:
    """Base of every method: a frozen dataclass of hyperparameters plus ``info``.

    Options declared with :func:`~optarena.methods._params.param` are validated at
    construction; cross-option rules go in :meth:`validate` (methods do not define
    ``__post_init__``).
    """

    info: ClassVar[MethodInfo]

    def __post_init__(self) -> None:
        validate_params(self)
        self.validate()

    def validate(self) -> None:
        """Checks that involve several options (raise ValueError); declared ones are done."""

    @property
    def name(self) -> str:
        """The registered name."""
        return self.info.name

    @property
    def label(self) -> str:
        """How results name this method (the registered name; composites say more)."""
        return self.info.name

    def check(self, ctx: RunContext, oracle: Oracle) -> None:
        """Method-specific validation before the first evaluation (raise ValueError)."""

    def run(self, oracle: Oracle, ctx: RunContext) -> Outcome:  # pragma: no cover - abstract
        """Run until convergence; limits end the run through StopRun."""
        raise NotImplementedError


class GradientMethod(Method):
    """Methods that step from one iterate using values and gradients."""

    def init(self, x0: torch.Tensor, oracle: Oracle, ctx: RunContext) -> Any:
        raise NotImplementedError

    def step(self, state: Any, oracle: Oracle, ctx: RunContext) -> bool:
        """One step; returns True when the method has converged."""
        raise NotImplementedError

    def run(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        state = self.init(ctx.x0.clone(), oracle, ctx)
        it = 0
        while True:
            done = self.step(state, oracle, ctx)
            it += 1
            ctx.notify(oracle, it, getattr(state, "x", None), oracle.last_f)
            if done:
                return Outcome(StopReason.CONVERGED, f"converged after {it} steps")


class PopulationMethod(Method):
    """Ask/tell methods: each generation is evaluated as one batch.

    ``init``, ``ask``, ``tell`` and ``converged`` run under ``torch.no_grad`` (the callback
    does not); a method that needs autograd inside them opens ``torch.enable_grad()``.
    """

    def init(self, x0: torch.Tensor, ctx: RunContext) -> Any:
        raise NotImplementedError

    def ask(self, state: Any, ctx: RunContext) -> torch.Tensor:
        raise NotImplementedError

    def tell(self, state: Any, X: torch.Tensor, f: torch.Tensor, ctx: RunContext) -> Any:
        raise NotImplementedError

    def converged(self, state: Any) -> bool:
        """True when the population has collapsed and further generations are pointless."""
        return False

    def stop_message(self, state: Any, generation: int) -> str:
        """Why ``converged`` held, for the Result's message (methods may say more)."""
        return f"population converged after {generation} generations"

    def checkpoint(self, state: Any, generation: int, ctx: RunContext) -> Checkpoint:
        """A deep copy of ``state`` and the run's generators, to resume from later."""
        return Checkpoint(
            method=self.info.name,
            generation=generation,
            state=copy.deepcopy(state),
            torch_rng=ctx.generator.get_state(),
            numpy_rng=copy.deepcopy(ctx.rng.bit_generator.state),
        )

    def restore(self, cp: Checkpoint, ctx: RunContext) -> tuple[Any, int]:
        """The state and generation of a checkpoint, with the generators set back to it."""
        if cp.method != self.info.name:
            raise ValueError(f"checkpoint is from method {cp.method!r}, not {self.info.name!r}")
        ctx.generator.set_state(cp.torch_rng)
        ctx.rng.bit_generator.state = copy.deepcopy(cp.numpy_rng)
        return copy.deepcopy(cp.state), cp.generation

    def run(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        # init/ask/tell run under one no_grad for the whole run instead of one per batch (a
        # method that differentiates inside them uses torch.enable_grad there)
        with torch.no_grad():
            return self._loop(oracle, ctx)

    def _loop(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        if ctx.resume is not None:
            state, gen = self.restore(ctx.resume, ctx)
        else:
            state, gen = self.init(ctx.x0.clone(), ctx), 0
        while True:
            X = self.ask(state, ctx)
            f = oracle.values(X)
            state = self.tell(state, X, f, ctx)
            gen += 1
            if ctx.callback is not None:
                with torch.enable_grad():  # the user's callback runs as it would elsewhere
                    ctx.notify(oracle, gen, None, None, self.checkpoint(state, gen, ctx))
            if self.converged(state):
                return Outcome(StopReason.CONVERGED, self.stop_message(state, gen))


class ExternalMethod(Method):
    """Methods run by an external solver (scipy) that calls the Oracle itself."""

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        raise NotImplementedError

    def run(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        return self.solve(oracle, ctx)
