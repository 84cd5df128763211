"""How a study stops on a failing trial: :class:`TrialError`, chained to the objective's
exception (with its traceback, also when the trial ran in another process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import Study
    from .trial import Outcome

__all__ = ["RemoteTraceback", "TrialError", "TrialFailed", "trial_error"]


class TrialError(RuntimeError):
    """A trial's objective raised an exception the study does not catch (``catch=``).

    The trial is stored as failed (with its traceback) before this is raised; ``number`` is
    the trial's number and ``study`` the :class:`~optarena.study.Study` so far. The
    objective's exception is the ``__cause__``. Calling again with the same store and name
    resumes the study (the failed trial stays failed)."""

    def __init__(self, message: str, number: int) -> None:
        super().__init__(message)
        self.number = number
        self.study: Study | None = None


class TrialFailed(Exception):
    """How a failed trial is told to the method (its message is the stored error)."""


class RemoteTraceback(Exception):
    """The traceback of an exception raised in another process, as text (pickle drops the
    traceback of an exception that crosses processes)."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return '\n"""\n' + self.tb.rstrip("\n") + '\n"""'


def trial_error(name: str, out: Outcome) -> TrialError:
    """The error that stops study ``name`` on trial ``out``, with its cause set: the
    objective's exception (given its traceback text when it came from another process)."""
    cause: BaseException | None = out.exc
    if cause is None or (cause.__traceback__ is None and out.traceback is not None):
        remote = RemoteTraceback(out.traceback or "")
        if cause is None:
            cause = remote
        else:
            cause.__cause__ = remote
    catch = (
        ""
        if "suggest_" in (out.error or "")
        else (
            " (to store such failures and go on, pass catch=(Exception,), or the exception "
            "types to expect)"
        )
    )
    err = TrialError(
        f"study {name!r}: trial {out.number} failed with {out.error}. The trial is stored as "
        f"failed{catch}; fix the objective and call again with the same store and name to "
        "resume the study",
        out.number,
    )
    err.__cause__ = cause
    return err
