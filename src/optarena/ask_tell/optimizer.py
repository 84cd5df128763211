"""The ask/tell Optimizer (see :mod:`optarena.ask_tell`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from ..budget import Budget, StopReason
from ..core.errors import StopRun
from ..core.objective import Objective
from ..core.oracle import Oracle
from ..inputs import as_bounds, as_device, as_seed, as_x0
from ..methods import Facts, Method, RunContext, method_infos, resolve_method
from ..methods._base import Checkpoint, Generations, PopulationMethod
from ..result import Result
from ..space import Space, SpaceResult
from ..space.run import space_start
from ._inputs import Told, parse_values

__all__ = ["Optimizer"]

FORMAT = 1  # of state_dict()


class Optimizer:
    """A population method as an object the caller asks for candidates and tells values.

    Args:
        method: the name of a registered population method (``optarena.methods()``, family
            ``"population"``) or an instance of one.
        x0: start point (1-D); with ``space=``, a configuration dict or None (the centre).
        bounds: as :func:`optarena.minimize` reads them (not with ``space=``).
        space: a search space (:class:`optarena.Space` or its dict): candidates are then
            configuration dicts, encoded as ``minimize(space=...)`` encodes them.
        budget: an int (evaluations) or a :class:`~optarena.Budget`; None: no limit (the
            caller decides when to stop).
        seed: seeds every draw of the method (None: one is drawn, see ``self.seed``).
        noisy: the values are noisy: the method's elite is re-evaluated by default, as
            ``minimize`` does for an objective declared noisy.
        device: where candidates live (default: x0's device).
        **options: the method's hyperparameters.
    """

    def __init__(
        self,
        method: str | Method = "cmaes",
        x0: Any = None,
        *,
        bounds: Any = None,
        space: Space | Mapping[str, Any] | None = None,
        budget: Budget | int | None = None,
        seed: int | None = None,
        noisy: bool = False,
        device: str | torch.device | None = None,
        **options: Any,
    ) -> None:
        self.space: Space | None = None
        if space is not None:
            self.space = space if isinstance(space, Space) else Space(space)
            x0, bounds = space_start(self.space, x0, bounds)
        self.method = resolve_method(method, options)
        info = self.method.info
        if info.family != "population" or not isinstance(self.method, PopulationMethod):
            able = ", ".join(i.name for i in method_infos() if i.family == "population")
            raise ValueError(
                f"ask/tell drives population methods ({able}); {info.name!r} is a "
                f"{info.family} method: run it with optarena.minimize"
            )
        self._told = Told()
        obj = Objective(self._told, gradient="none", vectorize=False, noisy=noisy)
        x0_t = as_x0(x0, obj, None)
        if device is not None:
            x0_t = x0_t.to(as_device(device))
        self._box = as_bounds(bounds, x0_t)
        facts = Facts(gradient="none", bounded=self._box is not None, subject="ask/tell")
        if (reason := info.refusal(facts)) is not None:
            raise ValueError(reason)
        self.budget = Budget() if budget is None else Budget.coerce(budget)
        self.seed = as_seed(seed)
        self._obj, self._x0, self._noisy = obj, x0_t, bool(noisy)
        self._ctx = self._new_context()
        self._oracle = self._new_oracle()
        self.method.check(self._ctx, self._oracle)
        with torch.no_grad():
            self._run: Generations = self.method.start(self._ctx, self._noisy)
        self.failures: dict[int, str] = {}  # evaluation index (1-based) -> error message
        self.stop_reason: StopReason | None = None
        self._message = ""
        self._batch: torch.Tensor | None = None  # the rows being handed out
        self._configs: list[dict[str, Any]] = []  # and their configurations (space)
        self._next = 0  # rows of the batch handed out so far
        self._told_mask: list[bool] = []
        self._values = torch.empty(0)

    def _new_context(self) -> RunContext:
        """The run's context as minimize makes it (with a space, its encoding, which
        space-aware methods read)."""
        lower, upper = (None, None) if self._box is None else self._box
        enc = None if self.space is None else self.space.encoding
        return RunContext(self._x0, lower, upper, (), self.seed, space=enc)

    def _new_oracle(self) -> Oracle:
        # the clock is checked when candidates are handed out (values told late still count)
        budget = dataclasses.replace(self.budget, seconds=None)
        return Oracle(self._obj, self._x0, budget, box=self._box, record_x=True)

    def _time_up(self) -> bool:
        s = self.budget.seconds
        if s is None or self._oracle.elapsed < s:
            return False
        if self.in_flight == 0 and not self.done:
            self._stop(StopReason.MAX_SECONDS, f"the budget of {s} seconds is spent")
        return True

    # -- the study -----------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True once the study has ended (budget, target, convergence): ``ask`` refuses."""
        return self.stop_reason is not None

    @property
    def in_flight(self) -> int:
        """Candidates handed out and not told yet."""
        return self._next - sum(self._told_mask)

    @property
    def nfev(self) -> int:
        """Evaluations told so far (failures included)."""
        return self._oracle.nfev

    @property
    def generation(self) -> int:
        """Generations told to the method so far."""
        return self._run.generation

    def ask(self, n: int | None = None) -> torch.Tensor | list[dict[str, Any]]:
        """Up to ``n`` candidates (None: the rest of the current generation), as a tensor of
        shape ``(k, d)`` or, with a space, a list of ``k`` configuration dicts. Fewer than
        ``n`` at the end of a generation or of the budget; none (k = 0) while every row of
        this generation is out and some have not been told."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"ask(n) takes a positive int or None, got {n!r}")
        if not self.done and self._time_up() and not self.done:
            return self._empty()
        if self.done:
            raise RuntimeError(f"the study has ended ({self.stop_reason}): {self._message}")
        B = self._open_batch()
        k = B.shape[0] - self._next
        left = self._oracle.remaining_evals()
        if left is not None:
            k = min(k, left - self.in_flight)
        k = max(0, k if n is None else min(n, k))
        a, self._next = self._next, self._next + k
        if self.space is not None:
            return [dict(c) for c in self._configs[a : a + k]]
        return B[a : a + k].clone()

    def _open_batch(self) -> torch.Tensor:
        if self._batch is None:
            with torch.no_grad():
                B = self._run.batch()
            self._batch, self._next = B, 0
            self._told_mask = [False] * B.shape[0]
            self._values = torch.full((B.shape[0],), math.inf, dtype=B.dtype, device=B.device)
            self._configs = [] if self.space is None else [self.space.decode(x) for x in B]
        return self._batch

    def tell(self, candidates: Any, values: Any) -> None:
        """Record the values of candidates this optimizer handed out, in any order: a tensor
        (k, d) or (d,) (a list of dicts, or one dict, with a space) and k values (numbers,
        NaN, or exception instances for failed evaluations). Nothing is recorded when any
        candidate or value is refused."""
        if self.done:
            raise RuntimeError(f"the study has ended ({self.stop_reason}): it takes no more values")
        rows = self._match(candidates)
        vals, errors = parse_values(values, len(rows))
        if not rows:
            return
        B = self._open_batch()
        before = self._oracle.nfev
        self._told.queue.extend(vals)
        try:
            ranked = self._oracle.values(B[rows])
        except StopRun as stop:  # a target reached, the clock, the budget: recorded first
            self._stop(stop.reason, stop.message or f"stopped: {stop.reason}")
            ranked = None
        finally:
            self._told.queue.clear()
        for i in range(self._oracle.nfev - before):
            if errors[i] is not None:
                self.failures[before + i + 1] = errors[i]
        if ranked is None:
            return
        for j, r in zip(rows, ranked.tolist(), strict=True):
            self._values[j] = r
            self._told_mask[j] = True
        if all(self._told_mask):
            self._batch = None
            with torch.no_grad():
                told = self._run.take(self._values)
                if told and self.method.converged(self._run.state):
                    g = self._run.generation
                    self._stop(StopReason.CONVERGED, self.method.stop_message(self._run.state, g))
        if not self.done and self._oracle.remaining_evals() == 0 and self.in_flight == 0:
            self._stop(StopReason.MAX_EVALS, "")
        self._time_up()

    def _empty(self) -> torch.Tensor | list[dict[str, Any]]:
        """No candidates (the clock is spent while some are in flight)."""
        if self.space is not None:
            return []
        return self._x0.new_empty((0, self._x0.numel()))

    def _stop(self, reason: StopReason, message: str) -> None:
        self.stop_reason, self._message = reason, message

    def _match(self, candidates: Any) -> list[int]:
        """The rows of the current batch the candidates are (handed out, not told yet)."""
        if self.space is not None:
            if isinstance(candidates, Mapping):
                candidates = [candidates]
            if not isinstance(candidates, Sequence) or isinstance(candidates, str):
                raise TypeError("with a space, tell() takes a configuration dict or a list")
            items: list[Any] = list(candidates)
        else:
            seq = isinstance(candidates, list | tuple) and len(candidates) > 0
            if seq and all(isinstance(c, torch.Tensor) for c in candidates):
                candidates = torch.stack([c.detach().reshape(-1) for c in candidates])
            X = torch.as_tensor(candidates).detach()
            X = X.to(device=self._x0.device, dtype=self._x0.dtype)
            if X.ndim == 1:
                X = X.reshape(1, -1)
            d = self._x0.numel()
            if X.ndim != 2 or X.shape[1] != d:
                raise ValueError(
                    f"candidates must have shape (k, {d}) or ({d},), got {tuple(X.shape)}"
                )
            items = list(X)
        if not items:
            return []
        open_rows = [j for j in range(self._next) if not self._told_mask[j]]
        first = open_rows[: len(items)]
        B = self._batch
        fast = self.space is None and B is not None and len(first) == len(items)
        if fast and torch.equal(B[first], torch.stack(items)):  # told as handed out
            return first
        rows: list[int] = []
        for i, c in enumerate(items):
            j = self._find(c, [j for j in open_rows if j not in rows])
            if j is None:
                again = self._find(c, rows)
                told = again is None and self._find(c, range(self._next)) is not None
                why = (
                    "is given twice"
                    if again is not None
                    else "was told already"
                    if told
                    else "was never handed out by ask()"
                )
                raise ValueError(
                    f"candidate {i} of tell() {why}: tell() takes the candidates ask() "
                    f"returned ({self.in_flight} in flight), each once"
                )
            rows.append(j)
        return rows

    def _find(self, c: Any, among: Any) -> int | None:
        if self._batch is None:
            return None
        if self.space is None:
            return next((j for j in among if torch.equal(self._batch[j], c)), None)
        return next((j for j in among if self._configs[j] == c), None)

    # -- outcome -------------------------------------------------------------------------
    def result(self) -> Result:
        """The study so far as a :class:`~optarena.Result` (a ``SpaceResult`` with a space):
        the best point told, its value, ``nfev``, the History. An open study's stop reason
        is ``callback`` (the caller ends it); ``info["failures"]`` lists failed evaluations
        with their messages."""
        o = self._oracle
        x, fun = o.best()
        reason, message = self.stop_reason, self._message
        if reason is None:
            reason = StopReason.CALLBACK
            message = f"open study: {o.nfev} evaluations told, {self.in_flight} in flight"
        if o.best_x is None and reason is not StopReason.CALLBACK:
            message = (message + "; " if message else "") + "no finite objective value was seen"
            reason = StopReason.NO_FINITE_VALUE
        failures = [{"eval": i, "error": e} for i, e in sorted(self.failures.items())]
        res = Result(
            x=x,
            fun=fun if math.isfinite(fun) else math.inf,
            nfev=o.nfev,
            ngev=0,
            elapsed=o.elapsed,
            stop_reason=reason,
            history=o.history,
            method=self.method.label,
            seed=self.seed,
            message=message,
            best_eval=o.best_eval,
            info={"failures": failures, "generations": self._run.generation},
        )
        if self.space is None:
            return res
        base = {f.name: getattr(res, f.name) for f in fields(Result)}
        return SpaceResult(**base, config=self.space.decode(x), space=self.space)

    # -- saving and restoring ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the study needs to continue bit-identically in another process (plain
        tensors, arrays, numbers; ``torch.save`` / ``pickle`` it): the method's state and
        random generators, the open generation and what of it was handed out and told, and
        every evaluation told (points, values, failures)."""
        run = self._run
        cp = self.method.checkpoint(run.state, run.generation, self._ctx)
        h = self._oracle.history
        return {
            "format": FORMAT,
            "checkpoint": {f.name: getattr(cp, f.name) for f in fields(Checkpoint)},
            "elite": run.elite,
            "open": None if run.X is None else _clone(run.X),
            "first": _clone(run.f),
            "elite_rows": _clone(run.idx),
            "handed": self._next if self._batch is not None else 0,
            "told": list(self._told_mask) if self._batch is not None else [],
            "values": self._values.clone() if self._batch is not None else None,
            "x": h.x.copy(),
            "f": h.f.copy(),
            "failures": dict(self.failures),
            "stop": None if self.stop_reason is None else (str(self.stop_reason), self._message),
            "space": None if self.space is None else self.space.to_dict(),
        }

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        """Continue the study ``saved`` (from :meth:`state_dict`) here. This optimizer must be
        made with the method, options, x0/space, bounds and seed of the one that saved it
        (anything else is refused, saying what differs). The History's rows are recorded
        again, so their ``seconds`` restart; points, values and counts are the saved ones."""
        if not isinstance(saved, Mapping) or saved.get("format") != FORMAT:
            raise ValueError("load_state_dict() takes a dict made by Optimizer.state_dict()")
        mine = None if self.space is None else self.space.to_dict()
        if saved["space"] != mine:
            raise ValueError(f"the saved study searched space {saved['space']!r}, not {mine!r}")
        if saved["elite"] != self._run.elite:
            raise ValueError(
                f"the saved study re-evaluated {saved['elite']} elite rows per generation, "
                f"this one {self._run.elite}: make it with the same noisy= and options"
            )
        f = np.asarray(saved["f"], dtype=np.float64)
        if self.budget.evals is not None and f.shape[0] > self.budget.evals:
            raise ValueError(
                f"the saved study told {f.shape[0]} evaluations, more than this budget "
                f"({self.budget.evals})"
            )
        cp = Checkpoint(**saved["checkpoint"])
        ctx = self._new_context()
        state, gen = self.method.restore(cp, ctx)  # refuses other settings, sets the generators
        run = Generations(self.method, ctx, state, gen, int(saved["elite"]))
        run.X, run.f, run.idx = saved["open"], saved["first"], saved["elite_rows"]
        oracle = self._new_oracle()
        if f.shape[0]:
            self._told.queue.extend(f.tolist())
            try:
                oracle.values(torch.as_tensor(saved["x"]).to(self._x0))
            except StopRun:
                pass  # the saved study had stopped there too ("stop" says why)
            finally:
                self._told.queue.clear()
        self._ctx, self._run, self._oracle = ctx, run, oracle
        self.failures = dict(saved["failures"])
        stop = saved["stop"]
        self.stop_reason = None if stop is None else StopReason(stop[0])
        self._message = "" if stop is None else stop[1]
        self._batch = None
        if run.X is not None:
            self._open_batch()
            self._next = int(saved["handed"])
            self._told_mask = list(saved["told"])
            self._values = saved["values"].clone()

    def __repr__(self) -> str:
        state = "open" if self.stop_reason is None else str(self.stop_reason)
        return (
            f"Optimizer({self.method.label!r}, nfev={self.nfev}, generation={self.generation}, "
            f"in_flight={self.in_flight}, {state})"
        )


def _clone(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clone()
