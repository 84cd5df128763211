"""The fault matrix: every registered method against every way an objective goes wrong.

Each cell runs one method (taken from the registry, so a new method is covered the day it is
added) on one faulty objective with a small budget, and checks what a user is promised:

- no raw crash: the run returns a Result, raises :class:`optarena.ObjectiveError` with the
  best-so-far Result in ``err.result``, or refuses with ``ValueError``/``TypeError`` before it
  evaluates (at most the one call that shows what the function returns) with a message that
  names the way out;
- the Result's ``fun`` is the best finite value in its History, so ``success=True`` never comes
  with a point worse than one the run evaluated, and never when no value was finite;
- Ctrl-C ends the run with ``stop_reason == "interrupted"`` and the best so far;
- a disconnected autograd graph (a zero gradient that is not the function's) never ends in
  success once the run relied on a gradient;
- a run stopped against a wall of NaN/inf (the minimum lies behind it) does not call that
  success by "converged": a wall is a stated stop reason;
- bounds of +-1e308 are respected: every evaluated point is finite and inside them, and a box
  that wide does not turn every draw into a point on its walls;
- a cell that hangs fails after ``HANG`` seconds instead of stalling the suite.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.methods import get_method_class

NAMES = [i.name for i in oa.methods()]
BOX = 2.0
BUDGET = 30
WALL_BUDGET = 300  # enough for the local methods to reach their own stopping tests at a wall
X0 = (0.2, -0.4)
LATER = 6  # the "later" evaluation at which an objective raises or Ctrl-C is pressed
HANG = 20.0  # seconds after which a cell counts as hung (a cell takes well under one)

#: Words a refusal uses when it tells the user what to do instead.
ADVICE = re.compile(
    r"\b(use|pass|declare|give|set|write|remove|drop|wrap|choose|try|return|instead|convert|"
    r"make|build|methods that do|needs)\b",
    re.IGNORECASE,
)


class Hung(BaseException):
    """Raised by the watchdog into a cell that has not returned after ``HANG`` seconds."""


@contextlib.contextmanager
def watchdog(where: str) -> Iterator[None]:
    """End a cell that hangs (a solver looping without evaluating) instead of the whole run."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise Hung(f"{where}: no return after {HANG:.0f} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, HANG)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def x0() -> torch.Tensor:
    return torch.tensor(X0, dtype=torch.float64)


def sphere(x: torch.Tensor) -> torch.Tensor:
    """Minimum 0 at (1, 1): across the walls of the region faults below."""
    return ((x - 1.0) ** 2).sum()


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    """No method solves it from X0 in fewer than ``LATER`` evaluations, so the later faults
    happen mid-run."""
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


class Boom(Exception):
    """What the raising objectives raise (so the cause can be told from anything else)."""


@dataclass
class Fault:
    """One faulty objective: ``make(calls)`` builds it around a call counter."""

    name: str
    make: Callable[[list[int]], oa.Objective]
    expect: frozenset[str] = frozenset({"result"})  # "result", "error", "interrupt", "refusal"
    bounds: tuple[float, float] | None = None  # replaces the method's default box
    hint: str | None = None  # a word an error or refusal of this fault must contain
    later: bool = False  # the fault happens at call LATER (one call, one evaluation)
    wall: bool = False  # the minimum lies behind a wall of non-finite values
    budget: int = BUDGET


def counted(calls: list[int], fn: Callable[[torch.Tensor], object]) -> Callable:
    def wrapped(x: torch.Tensor) -> object:
        calls[0] += 1
        return fn(x)

    return wrapped


def _nan_region(calls: list[int]) -> oa.Objective:
    # NaN where x[0] > 0.5: the minimum (1, 1) lies behind a wall of NaN
    return oa.Objective(counted(calls, lambda x: torch.where(x[0] > 0.5, torch.nan, sphere(x))))


def _inf_region(calls: list[int]) -> oa.Objective:
    return oa.Objective(counted(calls, lambda x: torch.where(x[1] > 0.5, torch.inf, sphere(x))))


def _nan_at_x0(calls: list[int]) -> oa.Objective:
    start = x0()
    return oa.Objective(
        counted(calls, lambda x: torch.where((x == start).all(), torch.nan, sphere(x)))
    )


def _raise_first(calls: list[int]) -> oa.Objective:
    def fn(x: torch.Tensor) -> torch.Tensor:
        raise Boom("the objective failed")

    return oa.Objective(counted(calls, fn))


def _raise_later(calls: list[int]) -> oa.Objective:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if calls[0] == LATER:
            raise Boom(f"the objective failed at call {LATER}")
        return rosenbrock(x)

    return oa.Objective(counted(calls, fn), vectorize=False)


def _ctrl_c(calls: list[int]) -> oa.Objective:
    def fn(x: torch.Tensor) -> torch.Tensor:
        if calls[0] == LATER:
            raise KeyboardInterrupt
        return rosenbrock(x)

    return oa.Objective(counted(calls, fn), vectorize=False)


def _ctrl_c_first(calls: list[int]) -> oa.Objective:
    def fn(x: torch.Tensor) -> torch.Tensor:
        raise KeyboardInterrupt

    return oa.Objective(counted(calls, fn), vectorize=False)


def _vector(calls: list[int]) -> oa.Objective:
    return oa.Objective(counted(calls, lambda x: (x - 1.0) ** 2))


def _none(calls: list[int]) -> oa.Objective:
    return oa.Objective(counted(calls, lambda x: None))


def _disconnected_leaf(calls: list[int]) -> oa.Objective:
    # the value depends on x, but through a float: autograd sees a fresh leaf
    return oa.Objective(
        counted(calls, lambda x: torch.tensor(float(sphere(x.detach())), requires_grad=True)),
        vectorize=False,
    )


def _disconnected_param(calls: list[int]) -> oa.Objective:
    # a loss computed from a detached x plus a term on an nn.Parameter only
    p = torch.nn.Parameter(torch.ones((), dtype=torch.float64))
    return oa.Objective(counted(calls, lambda x: sphere(x.detach()) + 0.0 * p))


def _plain(calls: list[int]) -> oa.Objective:
    return oa.Objective(counted(calls, sphere))


ERROR = frozenset({"error"})
INTERRUPT = frozenset({"interrupt"})
BAD_RETURN = frozenset({"error", "refusal"})
#: a disconnected graph may be refused, or run by a method that never takes a gradient
DISCONNECTED = frozenset({"result", "error", "refusal"})

FAULTS = [
    Fault("nan_region", _nan_region, wall=True, budget=WALL_BUDGET),
    Fault("inf_region", _inf_region, wall=True, budget=WALL_BUDGET),
    Fault("nan_at_x0", _nan_at_x0),
    Fault("raise_first", _raise_first, expect=ERROR),
    Fault("raise_later", _raise_later, expect=ERROR, later=True),
    Fault("vector_return", _vector, expect=BAD_RETURN, hint="scalar"),
    Fault("none_return", _none, expect=BAD_RETURN, hint="scalar"),
    Fault("disconnected_leaf", _disconnected_leaf, expect=DISCONNECTED, hint="autograd"),
    Fault("disconnected_param", _disconnected_param, expect=DISCONNECTED, hint="autograd"),
    Fault("huge_bounds", _plain, bounds=(-1e308, 1e308)),
    Fault("ctrl_c_first", _ctrl_c_first, expect=INTERRUPT),
    Fault("ctrl_c_later", _ctrl_c, expect=INTERRUPT, later=True),
]


def run_kwargs(name: str, fault: Fault) -> dict:
    kw: dict = {"seed": 3, "budget": fault.budget}
    if fault.bounds is not None:
        kw["bounds"] = fault.bounds
    elif get_method_class(name).info.requires_bounds:
        kw["bounds"] = (-BOX, BOX)
    return kw


def best_finite(res: oa.Result) -> float:
    f = np.asarray(res.history.f, dtype=np.float64)
    ok = f[np.isfinite(f)]
    return float(ok.min()) if ok.size else math.inf


def check_result(res: oa.Result, where: str) -> None:
    """What every Result promises, whatever went wrong during the run."""
    assert len(res.history) == res.nfev, f"{where}: History has {len(res.history)} rows"
    assert not math.isnan(res.fun), f"{where}: NaN reported as the best value"
    best = best_finite(res)
    if math.isinf(best):
        assert not res.success, f"{where}: success=True, yet no evaluated value was finite"
        assert res.fun == math.inf, f"{where}: fun={res.fun} with no finite value evaluated"
    assert res.fun == best, (
        f"{where}: reports fun={res.fun!r} (success={res.success}, "
        f"stop_reason={res.stop_reason.value!r}) but evaluated {best!r}"
    )


def check_refusal(err: Exception, calls: int, fault: Fault, where: str) -> None:
    """A ValueError/TypeError is a refusal: before any call (a capability the method lacks),
    or, for faults in what the function returns, at the one call that shows it."""
    msg = str(err)
    probe = 1 if "refusal" in fault.expect else 0
    assert calls <= probe, (
        f"{where}: {type(err).__name__} after {calls} calls of the objective, where optarena "
        f"raises ObjectiveError or returns a Result: {msg}"
    )
    assert ADVICE.search(msg), f"{where}: the refusal names no way out: {msg}"
    if calls and fault.hint is not None:
        assert fault.hint in msg, f"{where}: the refusal does not say what was wrong: {msg}"


def check_error(e: oa.ObjectiveError, fault: Fault, where: str) -> None:
    """An ObjectiveError names the evaluation, is chained to the cause and carries the best
    so far."""
    assert "error" in fault.expect, f"{where}: ObjectiveError for a {fault.name}: {e}"
    assert e.result is not None, f"{where}: ObjectiveError without err.result"
    check_result(e.result, where)
    assert e.result.stop_reason is oa.StopReason.ERROR, f"{where}: {e.result.stop_reason}"
    assert not e.result.success
    assert f"evaluation {e.evaluation}" in str(e), f"{where}: the message names no evaluation"
    if fault.name.startswith("raise"):
        assert isinstance(e.__cause__, Boom), f"{where}: not chained to the objective's error"
    elif fault.hint is not None:
        assert fault.hint in str(e), f"{where}: the message does not say what was wrong: {e}"
    if fault.later:
        assert (e.evaluation, e.result.nfev) == (LATER, LATER - 1), (
            f"{where}: evaluation {e.evaluation}, nfev {e.result.nfev}; it was call {LATER}"
        )


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
@pytest.mark.parametrize("name", NAMES)
def test_fault(name: str, fault: Fault) -> None:
    where = f"{name} x {fault.name}"
    calls = [0]
    obj = fault.make(calls)
    try:
        with watchdog(where), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # vmap fallbacks and scipy chatter are not faults
            res = oa.minimize(obj, x0(), name, **run_kwargs(name, fault))
    except Hung as e:
        pytest.fail(f"{e} (the objective was called {calls[0]} times)")
    except oa.ObjectiveError as e:
        check_error(e, fault, where)
        return
    except KeyboardInterrupt:
        pytest.fail(f"{where}: Ctrl-C escaped the run instead of ending it with the best so far")
    except (ValueError, TypeError) as e:
        if isinstance(e.__cause__ or e.__context__, Boom):
            pytest.fail(f"{where}: the objective's exception surfaced as {type(e).__name__}")
        check_refusal(e, calls[0], fault, where)
        return
    except Exception as e:
        pytest.fail(f"{where}: raw crash {type(e).__name__}: {e}")

    check_result(res, where)
    if fault.later:
        assert calls[0] >= LATER, f"{where}: ended after {calls[0]} calls; the fault never came"
    if "result" not in fault.expect and "interrupt" not in fault.expect:
        pytest.fail(
            f"{where}: a {fault.name} ended with a Result ({res.stop_reason.value}, "
            f"fun={res.fun}) instead of an error"
        )
    if "interrupt" in fault.expect:
        assert res.stop_reason is oa.StopReason.INTERRUPTED, (
            f"{where}: Ctrl-C ended the run with {res.stop_reason.value!r}"
        )
        expected = LATER - 1 if fault.later else 0
        assert res.nfev == expected, f"{where}: {res.nfev} evaluations kept, {expected} done"
    if fault.wall and res.success:
        assert res.stop_reason is not oa.StopReason.CONVERGED, (
            f"{where}: success=True, 'converged' at fun={res.fun} against a wall of "
            f"non-finite values (x={res.x.tolist()}); a wall is a stated stop reason"
        )
    if fault.name.startswith("disconnected") and res.success:
        assert res.ngev == 0, (
            f"{where}: success=True ({res.stop_reason.value}, fun={res.fun}) after "
            f"{res.ngev} gradients of a value autograd cannot trace to x (they were zeros)"
        )
    if fault.bounds is not None and res.history.has_x and res.nfev:
        xs = np.asarray(res.history.x)
        lo, hi = fault.bounds
        assert np.isfinite(xs).all(), f"{where}: evaluated non-finite coordinates"
        assert (xs >= lo).all() and (xs <= hi).all(), f"{where}: evaluated outside the bounds"
        # the minimum (1, 1) is far inside: points piled on the walls mean that a width of
        # hi - lo = inf turned every draw into a clipped infinity
        on_wall = float(np.mean((xs == lo) | (xs == hi)))
        assert on_wall <= 0.5, f"{where}: {on_wall:.0%} of the evaluated coordinates on +-1e308"
