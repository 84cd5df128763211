"""The two ways a run ends early: a limit (StopRun) or the user's objective failing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..budget import StopReason

if TYPE_CHECKING:
    from ..result import Result

__all__ = ["CallbackError", "ObjectiveDefinitionError", "ObjectiveError", "StopRun"]


class StopRun(BaseException):
    """Raised by the Oracle to end a run (budget, target, non-finite values, callback)."""

    def __init__(self, reason: StopReason, message: str = "") -> None:
        super().__init__(reason.value if not message else f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class ObjectiveError(RuntimeError):
    """The user's objective raised; chained to the original exception.

    ``evaluation`` is the 1-based index of the failing evaluation and ``result`` the
    best-so-far Result of the run (set by :func:`optarena.minimize` before it re-raises).
    """

    def __init__(self, message: str, evaluation: int) -> None:
        super().__init__(message)
        self.evaluation = evaluation
        self.result: Result | None = None


class ObjectiveDefinitionError(TypeError):
    """The objective cannot do what was asked of it (e.g. a gradient of a numpy function)."""


class CallbackError(ObjectiveError):
    """The user's callback raised; chained to the original exception. An ObjectiveError, so
    ``result`` holds the best-so-far Result of the run, as for a failing objective."""
