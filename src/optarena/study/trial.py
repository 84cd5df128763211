"""One trial: the object an objective reports to, and the function that runs a trial.

:func:`run_trial` is what an executor runs (in this process, another process or a Dask
worker): it calls the objective with the configuration (and the :class:`Trial` when the
objective declares a second parameter) and returns an :class:`Outcome`; it never raises for
the objective's errors, which become failed outcomes with their message and traceback
(``raised`` says whether the study must stop on it: see ``catch`` in :func:`run_trial`).
"""

from __future__ import annotations

import importlib
import inspect
import math
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .pruners import Pruner

__all__ = ["Finished", "ImportedObjective", "Outcome", "Trial", "TrialPruned", "run_trial"]

#: Between a failed trial's one-line error and its traceback in the stored error text.
TRACEBACK_MARK = "\n\n--- traceback ---\n"


class TrialPruned(Exception):
    """Raised by :meth:`Trial.report` when the pruner stops the trial (an objective may also
    raise it itself); the trial is stored as ``'pruned'`` with its last reported value."""


@dataclass(frozen=True)
class Finished:
    """What a pruner knows of a finished trial: its number, status and reported values."""

    number: int
    status: str
    reports: Mapping[int, float]


class Trial:
    """Handed to an objective that takes ``(config, trial)``: ``number`` (the order in which
    the trial was asked, from 0), ``params`` (its configuration) and :meth:`report`."""

    def __init__(
        self,
        number: int,
        params: Mapping[str, Any],
        pruner: Pruner | None = None,
        finished: Sequence[Finished] = (),
    ) -> None:
        self.number = int(number)
        self.params = dict(params)
        self.reports: dict[int, float] = {}
        self._pruner, self._finished = pruner, tuple(finished)
        self._prune = False

    def report(self, step: int, value: float) -> None:
        """Record the intermediate ``value`` at ``step`` (an int >= 0, larger than the last
        step reported) and raise :class:`TrialPruned` when the pruner says the trial should
        stop here. The pruner judges from the trials that had finished when this one was
        launched. (Optuna's order is ``report(value, step)``; here the step comes first.)"""
        if isinstance(step, np.integer):  # an epoch from numpy's arange
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            hint = (
                ": the step comes first, report(step, value) (Optuna's order is value, step)"
                if isinstance(value, int) and not isinstance(value, bool)
                else ""
            )
            raise ValueError(f"report() takes a step that is an int >= 0, got {step!r}{hint}")
        last = max(self.reports, default=-1)
        if step <= last:
            raise ValueError(
                f"trial {self.number} reported step {step} after step {last}: steps must "
                "increase (the pruners compare values at the same step)"
            )
        self.reports[step] = _reported(value)
        self._prune = self._pruner is not None and self._pruner.prune(
            self.reports, step, self._finished
        )
        if self._prune:
            raise TrialPruned(f"trial {self.number} pruned at step {step}")

    def should_prune(self) -> bool:
        """Whether the pruner stopped the trial at its last report (False before any).
        :meth:`report` already raises :class:`TrialPruned` then, so this is True only for
        an objective that caught it (Optuna's ``should_prune`` habit works as written)."""
        return self._prune

    def __repr__(self) -> str:
        return f"Trial(number={self.number}, params={self.params!r}, reports={len(self.reports)})"


@dataclass(frozen=True)
class Outcome:
    """A finished trial as the runner stores it and tells the method."""

    number: int
    status: str  # 'complete' | 'pruned' | 'failed'
    value: float | None
    error: str | None
    started: float
    finished: float
    seconds: float
    reports: dict[int, float] = field(default_factory=dict)
    traceback: str | None = None  # the objective's traceback (failed by an exception)
    raised: bool = False  # the objective raised an exception the study does not catch
    exc: BaseException | None = field(default=None, compare=False)  # that exception

    def __getstate__(self) -> dict[str, Any]:
        """Sent back from a worker: the exception only if it comes back from pickle (an
        exception whose class needs other arguments would break the whole result)."""
        state = dict(self.__dict__)
        try:
            pickle.loads(pickle.dumps(state["exc"]))
        except Exception:
            state["exc"] = None
        return state

    def stored_error(self) -> str | None:
        """The error as stored: the one-line message, then the traceback if any."""
        if self.error is None or self.traceback is None:
            return self.error
        return self.error + TRACEBACK_MARK + self.traceback


class ImportedObjective:
    """An objective named ``"module:function"``, imported where it runs (so it reaches Dask
    workers and other processes by name); ``path`` is put on ``sys.path`` first."""

    def __init__(self, ref: str, path: str | None = None) -> None:
        module, sep, name = ref.partition(":")
        if not sep or not module or not name:
            raise ValueError(f"an objective is named 'module:function', got {ref!r}")
        self.ref, self.path = ref, path

    def function(self) -> Callable[..., Any]:
        """The function itself (imported on first use)."""
        if self.path is not None and self.path not in sys.path:
            sys.path.insert(0, self.path)
        module, _, name = self.ref.partition(":")
        fn = importlib.import_module(module)
        for part in name.split("."):
            fn = getattr(fn, part)
        if not callable(fn):
            raise TypeError(f"{self.ref} is not callable")
        return fn  # type: ignore[return-value]

    def __call__(self, *args: Any) -> Any:
        return self.function()(*args)

    def __repr__(self) -> str:
        return f"ImportedObjective({self.ref!r})"


def takes_trial(objective: Callable[..., Any]) -> bool:
    """True when the objective declares two or more positional parameters: it is then called
    as ``objective(config, trial)``, else ``objective(config)``."""
    fn = objective.function() if isinstance(objective, ImportedObjective) else objective
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: config only
        return False
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(p.kind in kinds for p in sig.parameters.values()) >= 2


def run_trial(
    objective: Callable[..., Any],
    with_trial: bool,
    number: int,
    params: Mapping[str, Any],
    pruner: Pruner | None,
    finished: Sequence[Finished],
    catch: tuple[type[BaseException], ...] = (),
) -> Outcome:
    """Run one trial and say how it ended. The objective's exceptions become failures with
    their traceback; ``raised`` is set unless the exception is an instance of ``catch``, and
    always for ``suggest_*`` called on the configuration (an Optuna objective: every trial
    would fail the same way). ``seconds`` is the objective's own time (an objective named
    ``"module:function"`` is imported before the clock starts)."""
    fn = objective.function() if isinstance(objective, ImportedObjective) else objective
    trial = Trial(number, params, pruner, finished)
    started, t0 = time.time(), time.perf_counter()
    value: float | None = None
    error: str | None = None
    tb: str | None = None
    exc: Exception | None = None
    try:
        out = fn(dict(params), trial) if with_trial else fn(dict(params))
        value = _as_value(out)
        status = "complete"
        if math.isnan(value):
            status, value, error = "failed", None, "the objective returned NaN"
    except Exception as e:
        if not isinstance(e, TrialPruned) and not _optunas_pruned(e):
            status, value, error = "failed", None, f"{type(e).__name__}: {e}"
            tb = "".join(traceback.format_exception(e))
            hint = _optuna_suggest(e, with_trial)
            if hint is not None:
                error, exc = f"{error}: {hint}", e
            elif not isinstance(e, catch):
                exc = e
        else:
            status = "pruned"
            if trial.reports:
                last = trial.reports[max(trial.reports)]
                value = None if math.isnan(last) else last
    seconds = time.perf_counter() - t0
    return Outcome(number, status, value, error, started, time.time(), seconds, trial.reports,
                   tb, exc is not None, exc)  # fmt: skip


def _optuna_suggest(e: Exception, with_trial: bool) -> str | None:
    """What to write instead, when an Optuna objective calls ``trial.suggest_*`` on the
    configuration dict (or on the :class:`Trial` given as the second argument)."""
    name = getattr(e, "name", None)
    if not isinstance(e, AttributeError) or not str(name or "").startswith("suggest_"):
        return None
    if not isinstance(getattr(e, "obj", None), dict | Trial):
        return None
    form = "def objective(config, trial)" if with_trial else "def objective(config)"
    return (
        f"the configuration arrives as a dict drawn from the space, not from {name}() calls: "
        f"declare the parameters in the space, e.g. {{'lr': Real(1e-4, 1e-1, log=True)}}, and "
        f"read them in the objective, {form}: lr = config['lr'] (a second parameter, trial, "
        "takes trial.report(step, value) for pruning)"
    )


def _reported(value: Any) -> float:
    """A reported value as a float (a number or a one-element tensor/array)."""
    try:
        return _as_value(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"report() takes a number as the value, got {value!r}") from e


def _as_value(out: Any) -> float:
    """The objective's return value as a float (a number, or a one-element tensor/array)."""
    if hasattr(out, "item") and callable(out.item):
        try:
            out = out.item()
        except (RuntimeError, ValueError):
            shape = tuple(getattr(out, "shape", ()))
            raise TypeError(
                f"the objective returned a {type(out).__name__} of shape {shape}, not one number"
            ) from None
    if isinstance(out, bool) or not isinstance(out, int | float):
        raise TypeError(f"the objective returned {type(out).__name__}, not a number")
    return float(out)


def _optunas_pruned(e: Exception) -> bool:
    """True for Optuna's ``TrialPruned`` (objectives ported from Optuna raise it)."""
    return type(e).__name__ == "TrialPruned" and type(e).__module__.startswith("optuna")
