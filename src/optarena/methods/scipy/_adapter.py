"""The adapter every ``scipy.optimize.minimize`` method shares: the Oracle as scipy's fun/jac,
constraints with exact Jacobians, and an honest stop reason.

scipy's own "converged" is not taken on trust where it can be wrong: a gradient-free method
whose simplex or trust region collapsed against evaluations that returned NaN/inf reports
success at the wall. The adapter watches the last evaluations of each attempt; a run that
"converged" with non-finite values among them is restarted from the best finite point (a
method's :meth:`ScipyMethod._restart` says how), and ends with :attr:`StopReason.NON_FINITE`
and a message when the restarts cannot get past the wall.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.optimize as so
import torch

from ...budget import StopReason
from ...core.errors import StopRun
from ...core.evaluator import Evaluator
from ...core.oracle import Oracle
from .._base import ExternalMethod, Outcome, RunContext
from .._params import param

__all__ = ["ScipyConstraints", "ScipyMethod", "ScipyPoints", "ScipyRun"]

_F64 = np.dtype(np.float64)
_maximum, _minimum = np.maximum, np.minimum

#: Restarts from the best finite point after a "convergence" against non-finite values.
WALL_RESTARTS = 2
#: A non-finite probe this many times the final search scale from the best point is no wall.
WALL_NEAR = 100.0


class ScipyPoints:
    """The points a scipy solver asks for, evaluated one at a time: clipped into the box when
    the method keeps to it, copied once, and handed to the evaluator's ``value_array`` on a
    float64 CPU run (numpy from scipy to the objective, no tensor per call; a composite's
    Scope forwards them to the run's Oracle), else to ``value``.

    :meth:`value` returns the value and the point evaluated as a float64 array that nobody
    writes to again (the evaluator may keep it for the History and the best point)."""

    def __init__(self, oracle: Evaluator, ctx: RunContext, clip: bool) -> None:
        self.oracle = oracle
        self.ctx = ctx
        self.clip = clip and ctx.lower is not None and ctx.upper is not None
        self._array = oracle.value_array
        self._shape = (oracle.dim,)
        self._lean = oracle.dtype == torch.float64 and oracle.device.type == "cpu"
        self._lo = self._hi = None
        if self.clip and self._lean:
            assert ctx.lower is not None and ctx.upper is not None
            self._lo, self._hi = ctx.lower.numpy(), ctx.upper.numpy()

    def tensor(self, xk: np.ndarray) -> torch.Tensor:
        """The point scipy asked for as the run's tensor, clipped when the method keeps to the
        box (for constraints and gradients)."""
        x = self.oracle.as_tensor(np.asarray(xk, dtype=np.float64))
        return self.ctx.project(x) if self.clip else x

    def value(self, xk: np.ndarray) -> tuple[float, np.ndarray]:
        """f at the point scipy asked for (counted by the evaluator), and that point."""
        if self._lean:
            # a new array either way: scipy may reuse its own
            if self._lo is None:
                x = np.array(xk, dtype=np.float64)
            else:
                x = _maximum(xk, self._lo)
                _minimum(x, self._hi, out=x)
            if x.shape == self._shape and x.dtype is _F64:
                return self._array(x), x
        t = self.tensor(xk)
        f = self.oracle.value(t)
        return f, t.detach().cpu().double().numpy()

    def watched(self, seen: Callable[[np.ndarray, float], None]) -> Callable[[np.ndarray], float]:
        """scipy's ``fun``: :meth:`value`, then ``seen(point, value)``, in one call."""
        value = self.value
        array, lo, hi = self._array, self._lo, self._hi
        if not self._lean:

            def fun(xk: np.ndarray) -> float:
                f, x = value(xk)
                seen(x, f)
                return f

            return fun

        def lean(xk: np.ndarray) -> float:  # value(), inlined: the path of every evaluation
            if lo is None:
                x = xk.copy() if type(xk) is np.ndarray else np.array(xk, dtype=np.float64)
            else:
                x = _maximum(xk, lo)
                _minimum(x, hi, out=x)
            f = array(x)  # checks dtype and shape (anything else takes Oracle.value)
            seen(x, f)
            return f

        return lean


class ScipyConstraints:
    """Constraint values and exact Jacobians for scipy, counted by the Oracle, memoized per x."""

    def __init__(self, oracle: Oracle, point: Any) -> None:
        self.oracle = oracle
        self.point = point
        self._jac_x: np.ndarray | None = None
        self._jacs: list[np.ndarray] = []

    def fun(self, i: int, sign: float = 1.0) -> Any:
        def f(xk: np.ndarray) -> np.ndarray:
            vals = self.oracle.constraint_values(self.point(xk))
            return sign * vals[i].detach().cpu().double().numpy()

        return f

    def jac(self, i: int, sign: float = 1.0) -> Any:
        def j(xk: np.ndarray) -> np.ndarray:
            xk = np.asarray(xk, dtype=np.float64)
            if self._jac_x is None or not np.array_equal(self._jac_x, xk):
                pairs = self.oracle.constraint_jacobians(self.point(xk))
                self._jacs = [jac.detach().cpu().double().numpy() for _, jac in pairs]
                self._jac_x = xk.copy()
            return sign * self._jacs[i]

        return j


class _Stalled(StopRun):
    """The best value has not moved for ``stall`` evaluations (ends one scipy attempt)."""


class ScipyRun:
    """One run's bookkeeping around scipy: the stall watch, the finiteness of the latest
    evaluations (the wall test) and the gradient at the best point (methods that check it)."""

    def __init__(self, oracle: Oracle, stall: int | None, marks: bool = True) -> None:
        self.oracle = oracle
        self.stall = stall
        self.marks = marks  # False: the window alone, for methods whose iterations fit in it
        self.mark_best, self.mark_at = math.inf, 0
        self.window = max(10, 2 * oracle.dim + 2)
        self.tail: list[bool] = []  # finiteness of each evaluation of the current attempt
        self.points: list[np.ndarray] = []  # and where it was
        self.iterations: list[int] = [0]  # len(tail) at the end of each iteration
        self.best_grad: np.ndarray | None = None
        self.constrained = bool(oracle.constraints)  # else "feasible" means "finite"
        self._best_seen = math.nan  # the best value at the last evaluation
        self._most = 8 * self.window  # evaluations kept without iteration marks

    def seen(self, x: np.ndarray, f: float, grad: torch.Tensor | None = None) -> None:
        """Record one evaluation's point (float64, never written to again), value (and
        gradient); stop when the best has stalled."""
        oracle = self.oracle
        tail = self.tail
        tail.append(math.isfinite(f))
        self.points.append(x)
        if not self.marks and len(tail) > self._most:  # keep what latest() looks at
            del tail[: -self.window], self.points[: -self.window]
        if grad is not None and oracle.best_eval == oracle.nfev:
            self.best_grad = grad.detach().cpu().double().numpy().copy()
        # scipy's own tests can go on forever at a solution (SLSQP with a tight ftol on some
        # equality-constrained problems); stop once the best value has not moved for `stall`
        # evaluations.
        best = oracle.best_f
        if best == self._best_seen and not self.constrained:
            # the usual evaluation: the best has not moved since the last one, so only the
            # stall clock runs (it waits while nothing finite has been found)
            if best == math.inf:
                self.mark_at = oracle.nfev
            elif self.stall is not None and oracle.nfev - self.mark_at >= self.stall:
                raise _Stalled(
                    StopReason.CONVERGED, f"no improvement in the last {self.stall} evaluations"
                )
            return
        self._best_seen = best
        feasible = oracle.best_feasible if self.constrained else best < math.inf
        if best < self.mark_best or not feasible:  # any gain: |f| sets no scale
            self.mark_best, self.mark_at = best, oracle.nfev
        elif self.stall is not None and oracle.nfev - self.mark_at >= self.stall:
            raise _Stalled(
                StopReason.CONVERGED, f"no improvement in the last {self.stall} evaluations"
            )

    def restart(self) -> None:
        """A new attempt: a fresh window and stall mark."""
        self.tail.clear()
        self.points.clear()
        self.iterations = [0]
        self.mark_at = self.oracle.nfev

    def iterated(self) -> None:
        """scipy finished an iteration (its callback)."""
        if not self.marks:
            return
        self.iterations.append(len(self.tail))
        del self.iterations[:-2]
        cut = min(self.iterations[0], len(self.tail) - self.window)
        if cut > 0:  # keep only what latest() can look at
            del self.tail[:cut], self.points[:cut]
            self.iterations = [i - cut for i in self.iterations]

    def _start(self) -> int:
        if not self.marks:
            return max(0, len(self.tail) - self.window)
        return max(0, min(len(self.tail) - self.window, self.iterations[0]))

    def latest(self) -> list[bool]:
        """The latest evaluations: those of the last full iteration and after (a Powell
        iteration is d line searches), at least the last ``2 d + 2`` (and 10)."""
        return self.tail[self._start() :]

    def at_wall(self) -> int:
        """How many of the latest evaluations were not finite and pressed against the best
        point (0: no wall in sight).

        A non-finite probe counts when it lies within ``WALL_NEAR`` times the median distance
        of the latest finite probes from the best point: at a wall the method's last probes
        close in on it (measured: 1e-7 to 1.2 times that distance), while a line search that
        once stepped into a far NaN region while converging elsewhere lies 6e3 to 8e6 times
        farther than the search's final scale. With no finite probe around the best point
        every non-finite one counts.
        """
        start = self._start()
        flags = self.tail[start:]
        if all(flags):
            return 0
        best = self.oracle.best_x
        if best is None or not any(flags):
            return sum(not ok for ok in flags)
        b = best.detach().cpu().double().numpy()
        pts = np.array(self.points[start:])
        ok = np.array(flags)
        dist = np.linalg.norm(pts - b, axis=1)
        around = dist[ok & (dist > 0)]
        if not around.size:  # nothing finite was found anywhere around the best point
            return int((~ok).sum())
        near = dist[~ok] <= WALL_NEAR * float(np.median(around))
        return int(near.sum())


@dataclass(frozen=True)
class ScipyMethod(ExternalMethod):
    """Shared machinery: wrap the Oracle as scipy's fun/jac and run scipy.optimize.minimize."""

    _scipy_name: ClassVar[str] = ""
    _uses_grad: ClassVar[bool] = False
    #: Whether the wall test needs scipy's iteration ends (a callback per iteration). A method
    #: whose iterations never take more evaluations than the window (``2 d + 2``, at least
    #: 10) does without: the latest window of evaluations always covers its last iteration.
    _marks_iterations: ClassVar[bool] = True
    stall: int | None = param(
        200, "stop after this many evaluations without a better value (None: never)", gt=0
    )

    def _options(self) -> dict[str, Any]:
        raise NotImplementedError

    def _extra(self, oracle: Oracle, ctx: RunContext) -> dict[str, Any]:
        return {}

    def _constraints(self, cons: ScipyConstraints) -> list[Any]:
        """scipy's constraint objects for this method (dicts with exact Jacobians)."""
        out: list[Any] = []
        for i, c in enumerate(cons.oracle.constraints.items):
            out.append({"type": c.kind, "fun": cons.fun(i), "jac": cons.jac(i)})
        return out

    def _scipy_bounds(self, lower: np.ndarray, upper: np.ndarray) -> so.Bounds:
        """The box as scipy receives it (every evaluation stays in the run's box anyway)."""
        return so.Bounds(lower, upper)

    def _restart(self, kwargs: dict[str, Any], attempt: int) -> dict[str, Any]:
        """scipy's keyword arguments for restart ``attempt`` (1, 2, ...) from the best finite
        point after a collapse against non-finite values (default: the same settings)."""
        return kwargs

    def _wrap(self, fun: Any, cons: ScipyConstraints, ctx: RunContext) -> tuple[Any, Any]:
        """The objective and constraints scipy calls (a method may answer probes outside the
        box differently); default: as given."""
        return fun, cons

    def _finish(
        self, res: so.OptimizeResult, oracle: Oracle, run: ScipyRun, ctx: RunContext
    ) -> Outcome:
        """The Outcome of a finished scipy call (methods may check a failure's point)."""
        message = str(res.get("message", ""))
        # scipy returns no status when there is nothing to optimize (every variable fixed)
        info = {"scipy_status": int(res.get("status", 0))}
        if res.success:
            return Outcome(StopReason.CONVERGED, message, info)
        return Outcome(StopReason.METHOD_FAILED, message, info)

    def _stalled(
        self, message: str, oracle: Oracle, run: ScipyRun, ctx: RunContext
    ) -> Outcome | None:
        """The Outcome when the stall rule ended a run away from any wall (None: converged,
        as the rule says; a method that can check its point says more)."""
        return None

    def solve(self, oracle: Oracle, ctx: RunContext) -> Outcome:
        iteration = 0
        run = ScipyRun(oracle, self.stall, marks=self._marks_iterations)
        points = ScipyPoints(oracle, ctx, clip=ctx.bounded and self.info.supports_bounds)
        point, seen = points.tensor, run.seen
        fun = points.watched(seen)

        def fun_and_grad(xk: np.ndarray) -> tuple[float, np.ndarray]:
            x = point(xk)
            f, g = oracle.value_and_grad(x)
            seen(x.detach().cpu().double().numpy(), f, g)
            return f, g.detach().cpu().double().numpy()

        def callback(xk: Any, *args: Any) -> None:
            nonlocal iteration
            iteration += 1
            run.iterated()
            if ctx.callback is None:
                return
            x = xk.x if isinstance(xk, so.OptimizeResult) else xk
            ctx.notify(oracle, iteration, torch.as_tensor(np.asarray(x)), None)

        cons = ScipyConstraints(oracle, point)
        objective, cons = self._wrap(fun_and_grad if self._uses_grad else fun, cons, ctx)
        kwargs: dict[str, Any] = {"method": self._scipy_name, "options": self._options()}
        kwargs.update(self._extra(oracle, ctx))
        if ctx.constraints:
            kwargs["constraints"] = self._constraints(cons)
        if self._uses_grad:
            kwargs["jac"] = True
        if ctx.bounded and self.info.supports_bounds:
            assert ctx.lower is not None and ctx.upper is not None
            kwargs["bounds"] = self._scipy_bounds(
                ctx.lower.detach().cpu().double().numpy(),
                ctx.upper.detach().cpu().double().numpy(),
            )
        if self._marks_iterations or ctx.callback is not None:
            kwargs["callback"] = callback  # marks iterations for the wall test
        x = ctx.x0.detach().cpu().double().numpy()
        attempt = 0
        while True:
            run.restart()  # each attempt gets its own window and stall mark
            start_best = oracle.best_f
            try:
                outcome = self._finish(so.minimize(objective, x, **kwargs), oracle, run, ctx)
            except _Stalled as stalled:
                if not run.at_wall():
                    checked = self._stalled(stalled.message, oracle, run, ctx)
                    if checked is None:
                        raise
                    return checked
                outcome = Outcome(StopReason.CONVERGED, stalled.message)
            hits = run.at_wall()
            if outcome.reason is not StopReason.CONVERGED or not hits:
                return outcome
            gained = oracle.best_f < start_best
            if attempt >= WALL_RESTARTS or oracle.best_x is None or (attempt and not gained):
                return Outcome(
                    StopReason.NON_FINITE,
                    f"{self.info.name} stopped at a wall of NaN/inf values: {hits} of its last "
                    f"{len(run.latest())} evaluations were not finite, next to the best "
                    f"point (scipy said: {outcome.message}); restarted {attempt} time(s) from "
                    "the best finite point without getting past it. The best finite point is "
                    "kept; if the minimum lies on the edge of where the objective is defined, "
                    "give bounds that keep the search inside",
                    {**outcome.info, "wall_restarts": attempt},
                )
            attempt += 1
            x = oracle.best_x.detach().cpu().double().numpy()
            kwargs = self._restart(kwargs, attempt)
