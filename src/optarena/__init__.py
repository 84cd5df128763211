"""optarena: every kind of optimizer behind one minimize(), compared fairly.

Budgets and histories are counted in objective evaluations (and gradient evaluations and
seconds), and every run returns the best point it actually evaluated.
"""

from __future__ import annotations

from . import problems
from .budget import Budget, StopReason
from .compare import Comparison, compare
from .constraints import Constraint, Eq, Ineq, linear
from .distributed import ExecutorError, Parallel
from .methods import IterationInfo, Method, MethodInfo, method_infos
from .methods.auto import Auto
from .methods.constrained import AugmentedLagrangian, Penalty
from .methods.hybrid import Chain
from .methods.multistart import MultiStart
from .minimize import minimize
from .objective import Objective, ObjectiveDefinitionError
from .oracle import ObjectiveError
from .result import History, Result

__version__ = "0.1.0"


def methods() -> list[MethodInfo]:
    """Every registered method with its capabilities (family, gradient, bounds, ...)."""
    return method_infos()


__all__ = [
    "AugmentedLagrangian",
    "Auto",
    "Budget",
    "Chain",
    "Comparison",
    "Constraint",
    "Eq",
    "ExecutorError",
    "History",
    "Ineq",
    "IterationInfo",
    "Method",
    "MethodInfo",
    "MultiStart",
    "Objective",
    "ObjectiveDefinitionError",
    "ObjectiveError",
    "Parallel",
    "Penalty",
    "Result",
    "StopReason",
    "__version__",
    "compare",
    "linear",
    "methods",
    "minimize",
    "problems",
]
