"""Method families and their one shared run loop each.

A method implements only its own update:
- gradient family: ``init(x0, evaluator, ctx) -> state``, ``step(state, evaluator, ctx) -> done``;
- population family: ``init(x0, ctx) -> state``, ``ask(state, ctx) -> X``,
  ``tell(state, X, f, ctx)`` and optionally ``converged(state)``, run as :class:`Generations`;
- external solver: ``solve(oracle, ctx) -> (StopReason, message)``.
The loops here call the user's callback (with a :class:`Checkpoint` when the method is
``checkpointable``) and turn convergence into a stop reason; counting, budgets and the best point
are the evaluator's business (the run's Oracle, or a view of it).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..budget import StopReason
from ..core.errors import CallbackError, StopRun
from ..core.evaluator import Evaluator
from ._checkpoint import Checkpoint, differences
from ._params import param, validate_params
from ._registry import MethodInfo

__all__ = [
    "Checkpoint",
    "ExternalMethod",
    "Generations",
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
    phase: str | None = None  # the sub-run of a composite this iteration belongs to


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
        """Call the user's callback; a truthy return ends the run. An exception in it ends
        the run with :class:`CallbackError` (an ObjectiveError: it carries the best so far)."""
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
        except Exception as e:
            raise CallbackError(
                f"the callback raised {type(e).__name__} after iteration {iteration} "
                f"(evaluation {oracle.nfev}): {e}",
                oracle.nfev,
            ) from e
        if stop:
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
    #: True when the run state is plain data (tensors, numbers, lists): the family loop hands
    #: the callback a :class:`Checkpoint` each iteration and ``minimize(resume=)`` continues it.
    checkpointable: ClassVar[bool] = False

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

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        """Method-specific validation before the first evaluation (raise ValueError)."""

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:  # pragma: no cover - abstract
        """Run until convergence; limits end the run through StopRun."""
        raise NotImplementedError

    # -- checkpoints (used when ``checkpointable``) -----------------------------------------
    def save_state(self, state: Any) -> Any:
        """``state`` as plain data that later steps cannot change (default: a deep copy)."""
        return copy.deepcopy(state)

    def load_state(self, saved: Any, ctx: RunContext) -> Any:
        """A live run state rebuilt from :meth:`save_state`'s data (default: a deep copy)."""
        return copy.deepcopy(saved)

    def checkpoint(self, state: Any, generation: int, ctx: RunContext) -> Checkpoint:
        """The run state after iteration ``generation`` and the run's generators, to resume."""
        rng = ctx._rng  # a generator never made yet is made from the seed after a resume too
        return Checkpoint(
            method=self.info.name,
            generation=generation,
            state=self.save_state(state),
            torch_rng=ctx.generator.get_state(),
            numpy_rng={} if rng is None else copy.deepcopy(rng.bit_generator.state),
            made_under=self._made_under(ctx),
        )

    def _made_under(self, ctx: RunContext) -> dict[str, Any]:
        """The run's facts and this method's plain options (numbers, strings, tuples...), which
        a checkpoint must match; options that are functions are the caller's to keep."""
        options = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if not callable(getattr(self, f.name))
        }
        return {**ctx.made_under, "options": options}

    def resume_mismatch(self, cp: Checkpoint, ctx: RunContext) -> str | None:
        """What differs between the run a checkpoint was made under and this one, or None."""
        if cp.method != self.info.name:
            return f"method {cp.method!r} (checkpoint) vs {self.info.name!r} (this run)"
        return differences(cp.made_under, self._made_under(ctx))

    def restore(self, cp: Checkpoint, ctx: RunContext) -> tuple[Any, int]:
        """The state and iteration of a checkpoint, with the generators set back to it; a
        checkpoint made under another dimension, dtype, box, seed or options is refused."""
        diff = self.resume_mismatch(cp, ctx)
        if diff is not None:
            raise ValueError(
                f"resume= got a checkpoint made under other settings: {diff}. Resume with the "
                "objective, bounds, seed and options of the run that made it"
            )
        ctx.generator.set_state(cp.torch_rng)
        if cp.numpy_rng:
            ctx.rng.bit_generator.state = copy.deepcopy(cp.numpy_rng)
        return self.load_state(cp.state, ctx), cp.generation


class GradientMethod(Method):
    """Methods that step from one iterate using values and gradients.

    A checkpointable gradient method saves its state as plain tensors (:meth:`save_state`,
    e.g. a torch optimizer's ``state_dict()``) and rebuilds it in :meth:`load_state`.
    """

    def init(self, x0: torch.Tensor, oracle: Evaluator, ctx: RunContext) -> Any:
        raise NotImplementedError

    def step(self, state: Any, oracle: Evaluator, ctx: RunContext) -> bool:
        """One step; returns True when the method has converged."""
        raise NotImplementedError

    def rebase(self, state: Any, oracle: Evaluator) -> None:
        """The objective changed under this state (a new merit function): recompute what the
        state caches from the old one, such as a stored value and gradient (default: none)."""

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        if ctx.resume is not None:
            state, it = self.restore(ctx.resume, ctx)
        else:
            state, it = self.init(ctx.x0.clone(), oracle, ctx), 0
        # a checkpoint is a deep copy: made only for a callback that may read it
        keep = self.checkpointable and getattr(
            ctx.callback, "wants_checkpoint", ctx.callback is not None
        )
        while True:
            done = self.step(state, oracle, ctx)
            it += 1
            cp = self.checkpoint(state, it, ctx) if keep else None
            ctx.notify(oracle, it, getattr(state, "x", None), oracle.last_f, cp)
            if done:
                return Outcome(StopReason.CONVERGED, f"converged after {it} steps")


@dataclass(frozen=True)
class PopulationMethod(Method):
    """Ask/tell methods: each generation is evaluated as one batch (see :class:`Generations`).

    ``init``, ``ask``, ``tell`` and ``converged`` run under ``torch.no_grad`` (the callback
    does not); a method that needs autograd inside them opens ``torch.enable_grad()``.
    Their states are tensors and numbers, so every population method is checkpointable.

    On a noisy objective the generation's best few candidates are evaluated once more and
    ``tell`` gets the mean of their two samples (``reevaluate_elite``: pycma's ``NoiseHandler``
    count, ``2 + popsize / 20``, without its adaptation); the re-evaluations are counted.
    """

    _: KW_ONLY
    reevaluate_elite: int | None = param(
        None,
        "candidates of each generation evaluated twice and averaged (None: 2 + popsize // 20 "
        "on an objective declared noisy, else 0)",
        ge=0,
    )

    checkpointable: ClassVar[bool] = True

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

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        # init/ask/tell run under one no_grad; the user's function and callback in the user's mode
        user_mode = torch.is_grad_enabled()
        with torch.no_grad():
            return self._loop(oracle, ctx, user_mode)

    def start(self, ctx: RunContext, noisy: bool = False) -> Generations:
        """The run from ``ctx`` (x0 or ``resume``) as batches; ``noisy``: elite re-evaluated."""
        if ctx.resume is not None:
            state, gen = self.restore(ctx.resume, ctx)
        else:
            state, gen = self.init(ctx.x0.clone(), ctx), 0
        elite = (-1 if noisy else 0) if self.reevaluate_elite is None else self.reevaluate_elite
        return Generations(self, ctx, state, gen, elite)

    def _loop(self, oracle: Evaluator, ctx: RunContext, user_mode: bool) -> Outcome:
        run = self.start(ctx, getattr(oracle.objective, "noisy", False))
        while True:
            X = run.batch()
            with torch.set_grad_enabled(user_mode):
                f = oracle.values(X)
            if not run.take(f):  # the elite's second evaluation is next
                continue
            if ctx.callback is not None:
                with torch.set_grad_enabled(user_mode):
                    wants = getattr(ctx.callback, "wants_checkpoint", True)
                    cp = self.checkpoint(run.state, run.generation, ctx) if wants else None
                    ctx.notify(oracle, run.generation, None, None, cp)
            if self.converged(run.state):
                return Outcome(StopReason.CONVERGED, self.stop_message(run.state, run.generation))


class Generations:
    """A population run as batches to evaluate, by the loop above or a caller (ask/tell): the
    generation ``ask`` drew, then its ``elite`` best rows again (-1: 2 + popsize // 20)."""

    def __init__(self, method: PopulationMethod, ctx: RunContext, state: Any, gen: int, elite: int):
        self.method, self.ctx, self.state, self.generation = method, ctx, state, gen
        self.elite = elite
        self.X: torch.Tensor | None = None  # the generation asked, until it is told
        self.f: torch.Tensor | None = None  # its first values while the elite is re-evaluated
        self.idx: torch.Tensor | None = None  # the elite's rows

    def batch(self) -> torch.Tensor:
        """The rows to evaluate next (asks the method for a generation when none is open)."""
        if self.X is None:
            self.X = self.method.ask(self.state, self.ctx)
        return self.X if self.idx is None else self.X[self.idx]

    def take(self, f: torch.Tensor) -> bool:
        """The values of :meth:`batch`'s rows (+inf for non-finite); False: the elite is next."""
        X = self.X
        assert X is not None, "take() before batch()"
        if self.idx is not None and self.f is not None:  # f: the elite's second values
            again, f = f, self.f.clone()
            f[self.idx] = (f[self.idx] + again) / 2
        elif self.elite != 0:
            r = 2 + X.shape[0] // 20 if self.elite < 0 else self.elite
            if (m := min(r, int(torch.isfinite(f).sum()))) > 0:  # +inf rows sort last
                self.f, self.idx = f, torch.argsort(f, stable=True)[:m]
                return False
        self.state = self.method.tell(self.state, X, f, self.ctx)
        self.generation += 1
        self.X = self.f = self.idx = None
        return True


class ExternalMethod(Method):
    """Methods run by an external solver (scipy) that calls the Oracle itself."""

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        raise NotImplementedError

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        return self.solve(oracle, ctx)
