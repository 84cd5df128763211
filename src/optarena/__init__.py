"""optarena: every kind of optimizer behind one minimize(), compared fairly.

Budgets and histories are counted in objective evaluations (and gradient evaluations and
seconds), and every run returns the best point it actually evaluated.
"""

from __future__ import annotations

# ``methods`` is the methods package; called, it lists every method: optarena.methods()
from . import methods, problems, space, study
from .ask_tell import Optimizer
from .budget import Budget, StopReason
from .compare import Comparison, compare
from .constraints import Constraint, Eq, Ineq, linear
from .core.objective import Objective, ObjectiveDefinitionError
from .core.oracle import ObjectiveError
from .inputs import Bounds
from .methods import Checkpoint, IterationInfo, Method, MethodInfo
from .methods.composite.auto import Auto
from .methods.composite.chain import Chain
from .methods.composite.constrained import AugmentedLagrangian, Penalty
from .methods.composite.multistart import MultiStart
from .minimize import minimize
from .parallel import ExecutorError, Parallel
from .result import History, Result
from .space import Choice, Fixed, Int, Real, Space

__version__ = "0.1.0"


__all__ = [
    "AugmentedLagrangian",
    "Auto",
    "Bounds",
    "Budget",
    "Chain",
    "Checkpoint",
    "Choice",
    "Comparison",
    "Constraint",
    "Eq",
    "ExecutorError",
    "Fixed",
    "History",
    "Ineq",
    "Int",
    "IterationInfo",
    "Method",
    "MethodInfo",
    "MultiStart",
    "Objective",
    "ObjectiveDefinitionError",
    "ObjectiveError",
    "Optimizer",
    "Parallel",
    "Penalty",
    "Real",
    "Result",
    "Space",
    "StopReason",
    "__version__",
    "compare",
    "linear",
    "methods",
    "minimize",
    "problems",
    "space",
    "study",
]
