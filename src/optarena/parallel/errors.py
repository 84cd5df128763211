"""The errors of evaluation on workers, as the caller of ``minimize(executor=...)`` sees them."""

from __future__ import annotations

from ..core.errors import ObjectiveError

__all__ = ["ExecutorError", "RemoteTraceback", "WorkerLost"]


class ExecutorError(ObjectiveError):
    """The workers could not deliver a chunk's values: a worker died on every attempt, the
    chunk took longer than ``timeout``, or the executor broke or refused the work.

    Like any :class:`~optarena.ObjectiveError`, ``evaluation`` is the 1-based index of the
    first evaluation that could not be obtained and ``result`` the best-so-far Result;
    ``attempts`` counts the submissions of the chunk. Chained to the executor's exception.
    """

    def __init__(self, message: str, evaluation: int, attempts: int) -> None:
        super().__init__(message, evaluation)
        self.attempts = attempts


class RemoteTraceback(Exception):
    """The traceback of an exception raised on a worker (its ``__cause__`` there)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


class WorkerLost(RuntimeError):
    """A chunk attempt lost with its worker, seen when Dask's scheduler reran the attempt: the
    rerun found the attempt already claimed and returned without calling the objective."""
