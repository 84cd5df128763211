"""The population family: a method draws and updates generations (``init``, ``ask``, ``tell``),
:class:`Generations` turns them into batches to evaluate (re-evaluating the elite on a noisy
objective) and :meth:`PopulationMethod.run` is the loop over it that ``minimize`` runs; the
public ask/tell ``Optimizer`` drives the same :class:`Generations`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import KW_ONLY, dataclass
from typing import Any, ClassVar

import torch

from ..budget import StopReason
from ..core.errors import StopRun
from ..core.evaluator import Evaluator
from ..core.memory import current
from ._context import Outcome, RunContext
from ._method import Method
from ._params import param

__all__ = ["Generations", "PopulationMethod"]


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

    def ask_more(self, state: Any, ctx: RunContext, pending: torch.Tensor, k: int) -> torch.Tensor:
        """Optional: ``k`` candidates proposed beside the rows ``pending`` (handed out, not
        told yet), for a method that can learn a generation row by row (``tpe``: pending rows
        are its constant liars). The ask/tell Optimizer then hands out any number of
        candidates and tells each value at once. Not supported by default (see
        :meth:`has_ask_more`): a method supports it by defining this method."""
        raise NotImplementedError(f"{self.info.name} proposes whole generations only")

    @classmethod
    def has_ask_more(cls) -> bool:
        """Whether this method defines :meth:`ask_more` (proposes beside pending rows)."""
        return cls.ask_more is not PopulationMethod.ask_more

    def converged(self, state: Any) -> bool:
        """True when the population has collapsed and further generations are pointless."""
        return False

    def stop_message(self, state: Any, generation: int) -> str:
        """Why ``converged`` held, for the Result's message (methods may say more)."""
        return f"population converged after {generation} generations"

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        # init/ask/tell run under one no_grad; the user's function and callback in the user's mode
        user_mode = torch.is_grad_enabled()
        start = _from_weights(oracle, ctx)
        f0 = oracle.value(ctx.x0) if start else math.inf
        try:
            with torch.no_grad():
                out = self._loop(oracle, ctx, user_mode)
        except StopRun:  # the budget or the clock ended the run: the same question
            if start and not oracle.best_f < f0:
                _nothing_better(self, oracle, ctx)
            raise
        if start and not oracle.best_f < f0:
            _nothing_better(self, oracle, ctx)
        return out

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
        capped = current().memory is not None and run.elite == 0  # an elite needs the whole
        while True:
            rows = self._chunk_rows(run.state, ctx) if capped else None
            if rows is None:
                X = run.batch()
                with torch.set_grad_enabled(user_mode):
                    f = oracle.values(X)
                if not run.take(f):  # the elite's second evaluation is next
                    continue
            else:
                run.state = self._chunked_generation(run.state, oracle, ctx, rows, user_mode)
                run.generation += 1
            end = self._end_of_generation(run, oracle, ctx, user_mode)
            if end is not None:
                return end

    def _chunk_rows(self, state: Any, ctx: RunContext) -> int | None:
        """Under a memory cap: the rows of a generation to draw and evaluate at a time, or
        None when the whole generation fits (or the method cannot split one: the default)."""
        return None

    def _chunked_generation(
        self, state: Any, oracle: Evaluator, ctx: RunContext, rows: int, user_mode: bool
    ) -> Any:
        """Draw, evaluate and learn one generation ``rows`` at a time (methods whose
        ``_chunk_rows`` gives a number); the new state."""
        raise NotImplementedError(f"{type(self).__name__} does not split its generations")

    def _end_of_generation(
        self, run: Generations, oracle: Evaluator, ctx: RunContext, user_mode: bool
    ) -> Outcome | None:
        """After a generation was learned: the callback (with a checkpoint when it wants one),
        then the Outcome when the method has converged (None: go on)."""
        if ctx.callback is not None:
            with torch.set_grad_enabled(user_mode):
                wants = getattr(ctx.callback, "wants_checkpoint", True)
                cp = self.checkpoint(run.state, run.generation, ctx) if wants else None
                ctx.notify(oracle, run.generation, None, None, cp)
        if self.converged(run.state):
            return Outcome(StopReason.CONVERGED, self.stop_message(run.state, run.generation))
        return None


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


def _from_weights(oracle: Evaluator, ctx: RunContext) -> bool:
    """A run of its own (no resume, not a composite's phase) on a module's parameters: their
    current values, the start, are evaluated first, so the Result is never a network worse
    than the one the user had (the population is drawn around it and never contains it)."""
    module = getattr(oracle.objective, "_parameters", None) is not None
    return module and ctx.resume is None and ctx.phase is None


def _nothing_better(method: PopulationMethod, oracle: Evaluator, ctx: RunContext) -> None:
    """Say why a run from a module's weights kept them: its first steps were too large."""
    rms = float(ctx.x0.double().square().mean().sqrt())
    warnings.warn(
        f"{method.label} found nothing better than the module's current weights in "
        f"{oracle.nfev} evaluations: its initial step size is large against their scale "
        f"(root mean square {rms:.3g}); give a smaller one (sigma0= for the CMA-ES and NES "
        "methods, e.g. a tenth of that scale)",
        RuntimeWarning,
        stacklevel=4,
    )
