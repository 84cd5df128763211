"""A live progress line for one run: evaluations / budget, best so far, evaluations per second.

The display is an observer of the run's callback: :func:`observe` returns the callback to hand
to the run (the user's own one, composed with the display) and closes the line when the run
ends, also on an exception or Ctrl-C; :func:`finish` ends it with the Result's final numbers.
Off, :func:`observe` returns the user's callback unchanged, so it costs nothing. On, each
iteration costs one clock read; the line is redrawn at most every ``interval`` seconds (10
times a second by default), on stderr.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .budget import Budget

if TYPE_CHECKING:
    from .methods import IterationInfo

__all__ = ["Progress", "ProgressLine", "finish", "observe", "wants_progress", "wrap_callback"]

Callback = Callable[["IterationInfo"], Any]
R = TypeVar("R")


@dataclass(frozen=True)
class Progress:
    """How to show a run's progress: where (default stderr) and how often at most.

    ``minimize(progress=True)`` uses the defaults; pass a Progress to choose the stream,
    the redraw interval in seconds or the label shown before the line.
    """

    file: IO[str] | None = None
    interval: float = 0.1
    label: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.interval, int | float) or isinstance(self.interval, bool):
            raise TypeError(f"Progress.interval must be a number, got {self.interval!r}")
        if not self.interval >= 0 or math.isinf(self.interval):
            raise ValueError(f"Progress.interval must be >= 0 seconds, got {self.interval}")

    @classmethod
    def coerce(cls, progress: bool | Progress | None) -> Progress | None:
        """``progress=`` of public functions as a Progress, or None when off."""
        if progress is None or progress is False:
            return None
        if progress is True:
            return cls()
        if isinstance(progress, cls):
            return progress
        raise TypeError(f"progress must be a bool or a Progress, got {type(progress).__name__}")


class ProgressLine:
    """The callback that feeds one run's progress line; call :meth:`close` when the run ends.

    Composes with the user's ``callback``: it is called first and its return value (a truthy
    one stops the run) is passed on. Best so far is the lowest ``best_f`` reported; for a
    composite it is the lowest over its sub-runs.
    """

    def __init__(
        self, callback: Callback | None, progress: Progress, budget: Budget, label: str
    ) -> None:
        from tqdm import tqdm

        self.callback = callback
        self.interval = float(progress.interval)
        self.label = progress.label if progress.label is not None else label
        self.budget = budget
        self.best = math.inf
        self.info: Any = None
        self.closed = False
        self.draws = 0
        self.nfev = 0
        self.ngev = 0
        self.stop: str | None = None
        self._next = 0.0
        self._bar = tqdm(
            total=budget.evals,
            desc=self.label,
            unit="eval",
            file=progress.file if progress.file is not None else sys.stderr,
            dynamic_ncols=True,
            mininterval=0.0,
            miniters=0,
            leave=True,
            disable=False,
        )

    @property
    def wants_checkpoint(self) -> bool:
        """Whether an iteration's Checkpoint is of use: only to the user's own callback (the
        line never reads it, and a family loop can skip building one when this is False)."""
        return self.callback is not None

    def __call__(self, info: IterationInfo) -> Any:
        stop = None if self.callback is None else self.callback(info)
        self.info = info
        self.nfev, self.ngev = info.nfev, info.ngev
        if info.best_f < self.best:
            self.best = info.best_f
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self._draw()
        return stop

    def _draw(self) -> None:
        """Redraw the line from the last state seen (tqdm computes the rate)."""
        self.draws += 1
        self._bar.set_postfix_str(self.postfix(), refresh=False)
        self._bar.update(self.nfev - self._bar.n)  # one write: mininterval and miniters are 0

    def postfix(self) -> str:
        """``best=..., grads=..., phase=..., stop=...``: what follows the counts on the line."""
        parts = [f"best={self.best:.6g}"]
        if self.ngev:
            parts.append(f"grads={self.ngev}" + _of(self.budget.grad_evals))
        if self.budget.seconds is not None:
            parts.append(f"limit={self.budget.seconds:g}s")
        phase = getattr(self.info, "phase", None)
        if phase:
            parts.append(f"phase={phase}")
        if self.stop is not None:
            parts.append(f"stop={self.stop}")
        return ", ".join(parts)

    def finish(self, result: Any) -> None:
        """End the line with the run's Result: its counts, best value and stop reason (the
        last iteration can precede the last evaluations, e.g. a batch cut by the budget)."""
        if result is not None and not self.closed:
            self.nfev, self.ngev = result.nfev, result.ngev
            self.best = min(self.best, result.fun)
            self.stop = str(result.stop_reason)
        self.close()

    def close(self) -> None:
        """Draw the last state seen and end the line (idempotent)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._draw()
        finally:
            self._bar.close()


def _of(limit: int | None) -> str:
    return "" if limit is None else f"/{limit}"


def wrap_callback(
    callback: Callback | None,
    progress: bool | Progress | None,
    budget: Budget | int | None,
    label: str,
) -> Callback | None:
    """The callback to run with: ``callback`` itself when ``progress`` is off, else a
    :class:`ProgressLine` around it (the caller closes it: prefer :func:`observe`)."""
    shown = Progress.coerce(progress)
    if shown is None:
        return callback
    return ProgressLine(callback, shown, Budget.coerce(budget), label)


@contextmanager
def observe(
    progress: bool | Progress | None,
    budget: Budget | int | None,
    label: str,
    callback: Callback | None = None,
) -> Iterator[Callback | None]:
    """Yield the callback for a run showing ``progress``; the line is closed on leaving, also
    on an exception or Ctrl-C. Off, the user's ``callback`` is yielded unchanged."""
    wrapped = wrap_callback(callback, progress, budget, label)
    if not isinstance(wrapped, ProgressLine):
        yield wrapped
        return
    try:
        yield wrapped
    except BaseException as e:  # an ObjectiveError carries the best-so-far Result
        wrapped.finish(getattr(e, "result", None))
        raise
    finally:
        wrapped.close()


def finish(callback: Any, result: R) -> R:
    """``result``, after ending the progress line when ``callback`` is one (see
    :meth:`ProgressLine.finish`); a no-op for any other callback."""
    if isinstance(callback, ProgressLine):
        callback.finish(result)
    return result


def wants_progress(choice: bool | None, *streams: Any) -> bool:
    """``--progress/--no-progress`` of the CLI: an explicit choice wins; by default the line is
    shown only when every stream (stdout, where the result goes, and stderr, where the line
    goes) is a terminal."""
    if choice is not None:
        return choice
    streams = streams or (sys.stdout, sys.stderr)
    return all(_isatty(s) for s in streams)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
