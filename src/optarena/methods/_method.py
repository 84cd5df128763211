"""The base of every method (options validated at construction, its name, checkpoint and
restore of a run state) and the external family, whose solver runs the whole loop itself.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, ClassVar

from ..core.evaluator import Evaluator
from ._checkpoint import Checkpoint, differences
from ._context import Outcome, RunContext
from ._params import validate_params
from ._registry import MethodInfo

__all__ = ["ExternalMethod", "Method"]


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


class ExternalMethod(Method):
    """Methods run by an external solver (scipy) that calls the Oracle itself."""

    def solve(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        raise NotImplementedError

    def run(self, oracle: Evaluator, ctx: RunContext) -> Outcome:
        return self.solve(oracle, ctx)
