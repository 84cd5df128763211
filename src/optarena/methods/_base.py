"""The method families in one import: what a method file subclasses and what it is handed.

A method implements only its own update; its family's module runs the one shared loop:
- gradient family (``_gradient``): ``init(x0, evaluator, ctx) -> state``,
  ``step(state, evaluator, ctx) -> done``;
- population family (``_population``): ``init(x0, ctx) -> state``, ``ask(state, ctx) -> X``,
  ``tell(state, X, f, ctx)`` and optionally ``converged(state)``, run as :class:`Generations`;
- external solver (``_method``): ``solve(oracle, ctx) -> Outcome``.
``_method`` holds the base :class:`Method` (options, checkpoint and restore), ``_context`` what a
run hands it (:class:`RunContext`) and what the callback sees. The loops call the user's callback
(with a :class:`Checkpoint` when the method is ``checkpointable``) and turn convergence into a
stop reason; counting, budgets and the best point are the evaluator's business (the run's Oracle,
or a view of it).
"""

from __future__ import annotations

from ._checkpoint import Checkpoint
from ._context import IterationInfo, Outcome, RunContext
from ._gradient import GradientMethod
from ._method import ExternalMethod, Method
from ._population import Generations, PopulationMethod

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
