"""The ask/tell Optimizer (see :mod:`optarena.ask_tell`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import torch

from ..budget import Budget, StopReason
from ..core.errors import StopRun
from ..core.objective import Objective
from ..core.oracle import Oracle
from ..inputs import as_bounds, as_device, as_seed, as_x0
from ..methods import Facts, Method, RunContext, method_infos, resolve_method
from ..methods._base import Generations, PopulationMethod
from ..result import Result
from ..space import Space
from ..space.run import space_result, space_start
from ._inputs import Told, match_rows, parse_values, refuse_evaluation_settings
from ._saving import load, save

__all__ = ["Optimizer"]

REPEATS = 1000  # repeats in a row that end a study without an evaluation budget


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
        memory, eval_dtype: refused (ValueError) unless None: in ``minimize`` they chunk a
            population's evaluation and cast the candidates the function receives; here the
            caller evaluates, so the caller chunks and casts (and tells the candidates as
            handed out). A whole generation is handed out, so a cap could not bound it.
        **options: the method's hyperparameters.

    ``ask(n)`` gives ``n`` candidates (fewer at the end of the budget) for a method that
    proposes beside candidates in flight (``tpe``); any other method gives at most the rest
    of its current generation and none while all of it is out: make it with ``popsize=k``
    to keep k candidates in flight. With a space, configurations already told are answered
    from their values (counted as ``minimize(space=)`` counts cache hits), not handed out.
    See :mod:`optarena.ask_tell`.
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
        memory: int | str | None = None,
        eval_dtype: str | torch.dtype | None = None,
        **options: Any,
    ) -> None:
        refuse_evaluation_settings(memory, eval_dtype)
        self.space: Space | None = None
        if space is not None:
            self.space = space if isinstance(space, Space) else Space(space)
            x0, bounds = space_start(self.space, x0, bounds)
        meth = resolve_method(method, options)
        info = meth.info
        if info.family != "population" or not isinstance(meth, PopulationMethod):
            able = ", ".join(i.name for i in method_infos() if i.family == "population")
            raise ValueError(
                f"ask/tell drives population methods ({able}); {info.name!r} is a "
                f"{info.family} method: run it with optarena.minimize"
            )
        self.method: PopulationMethod = meth
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
        self._keys: list[tuple[Any, ...]] = []  # the configurations' keys (space)
        self._cache: dict[tuple[Any, ...], float] = {}  # configuration key -> value told
        self.cache_hits = 0  # candidates answered from the cache instead of handed out
        self._incremental = self._takes_rows_one_by_one()
        # repeats of a noisy objective (or the elite's second values) are worth evaluating
        self._caching = self.space is not None and self._run.elite == 0 and not self._noisy

    def _takes_rows_one_by_one(self) -> bool:
        """The method proposes candidates beside those in flight and learns each told value
        at once (``ask_more``), so a generation need not be complete to be told."""
        return self.method.has_ask_more() and self._run.elite == 0

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
        shape ``(k, d)`` or, with a space, a list of ``k`` configuration dicts. See the
        module doc for how many: ``n`` for a method that proposes beside candidates in
        flight (tpe); else at most the rest of the generation, none (k = 0) while every row
        of it is out and some have not been told. Never more than the budget left."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"ask(n) takes a positive int or None, got {n!r}")
        if not self.done and self._time_up() and not self.done:
            return self._empty()
        if self.done:
            raise RuntimeError(f"the study has ended ({self.stop_reason}): {self._message}")
        rows: list[torch.Tensor] = []
        configs: list[dict[str, Any]] = []
        repeats = 0  # candidates in a row answered from the cache
        while (n is None or len(rows) < n) and self._room():
            B = self._open_batch()
            if self._next == B.shape[0]:  # every row of the generation is out
                if n is None or not self._incremental:
                    break
                self._extend(n - len(rows))
                continue
            j = self._next
            self._next += 1
            if self._caching and self._keys[j] in self._cache:
                self._reuse(j)
                repeats += 1
                if repeats >= REPEATS and self.budget.evals is None and not self.done:
                    self._stop(
                        StopReason.CONVERGED,
                        f"the last {repeats} candidates the method proposed were all "
                        "configurations already evaluated: the space looks exhausted",
                    )
                if self.done:
                    break
                continue
            repeats = 0
            rows.append(B[j].clone())
            if self.space is not None:
                configs.append(dict(self._configs[j]))
        if self.space is not None:
            return configs
        return torch.stack(rows) if rows else self._empty()  # type: ignore[return-value]

    def _room(self) -> bool:
        """Whether the budget has an evaluation left beside the candidates in flight."""
        left = self._oracle.remaining_evals()
        return left is None or left - self.in_flight > 0

    def _extend(self, k: int) -> None:
        """``k`` more rows (fewer at the end of the budget) proposed beside the open ones."""
        left = self._oracle.remaining_evals()
        if left is not None:
            k = min(k, left - self.in_flight)
        B = self._batch
        assert B is not None
        pending = B[[j for j, t in enumerate(self._told_mask) if not t]]
        with torch.no_grad():
            more = self.method.ask_more(self._run.state, self._ctx, pending, k)
        self._batch = self._run.X = torch.cat([B, more])
        self._told_mask += [False] * k
        self._values = torch.cat([self._values, torch.full_like(more[:, 0], math.inf)])
        self._decode(more)

    def _reuse(self, j: int) -> None:
        """Row ``j`` repeats a configuration told before: its value is told again (counted
        as one evaluation, as ``minimize(space=)`` counts a cache hit) instead of handing
        it out."""
        self.cache_hits += 1
        self._record([j], [self._cache[self._keys[j]]], [None])

    def _open_batch(self) -> torch.Tensor:
        if self._batch is None:
            with torch.no_grad():
                B = self._run.batch()
            self._batch, self._next = B, 0
            self._told_mask = [False] * B.shape[0]
            self._values = torch.full((B.shape[0],), math.inf, dtype=B.dtype, device=B.device)
            self._configs, self._keys = [], []
            self._decode(B)
        return self._batch

    def _decode(self, B: torch.Tensor) -> None:
        """The configurations and keys of new rows ``B`` (space)."""
        if self.space is not None:
            for x in B:
                config, key = self.space.encoding.decode_keyed(x)
                self._configs.append(config)
                self._keys.append(key)

    def tell(self, candidates: Any, values: Any) -> None:
        """Record the values of candidates this optimizer handed out, in any order: a tensor
        (k, d) or (d,) (a list of dicts, or one dict, with a space) and k values (numbers,
        NaN, or exception instances for failed evaluations). Nothing is recorded when any
        candidate or value is refused."""
        if self.done:
            raise RuntimeError(f"the study has ended ({self.stop_reason}): it takes no more values")
        rows = self._match(candidates)
        vals, errors = parse_values(values, len(rows))
        if rows:
            self._record(rows, vals, errors)

    def _record(self, rows: list[int], vals: list[float], errors: list[str | None]) -> None:
        """Values of rows of the open batch, through the Oracle (counted, ranked, recorded)."""
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
            elif self.space is not None:  # a failure may pass: only values are reused
                self._cache.setdefault(self._keys[rows[i]], vals[i])
        if ranked is None:
            return
        for j, r in zip(rows, ranked.tolist(), strict=True):
            self._values[j] = r
            self._told_mask[j] = True
        if self._incremental:
            self._take_told()
        elif all(self._told_mask):
            self._batch = None
            with torch.no_grad():
                self._check(self._run.take(self._values))
        if not self.done and self._oracle.remaining_evals() == 0 and self.in_flight == 0:
            self._stop(StopReason.MAX_EVALS, "")
        self._time_up()

    def _check(self, told: bool) -> None:
        if told and self.method.converged(self._run.state):
            g = self._run.generation
            self._stop(StopReason.CONVERGED, self.method.stop_message(self._run.state, g))

    def _take_told(self) -> None:
        """Tell the method the rows told so far (``ask_more`` methods); the others stay open."""
        B, mask = self._batch, self._told_mask
        assert B is not None
        told = [j for j, t in enumerate(mask) if t]
        rest = [j for j, t in enumerate(mask) if not t]
        run = self._run
        run.X = B[told]
        with torch.no_grad():
            self._check(run.take(self._values[told]))
        if not rest:
            self._batch = None
            return
        self._batch = run.X = B[rest]
        self._next = sum(j < self._next for j in rest)  # the open rows handed out come first
        self._told_mask = [False] * len(rest)
        self._values = self._values[rest]
        if self.space is not None:
            self._configs = [self._configs[j] for j in rest]
            self._keys = [self._keys[j] for j in rest]

    def _empty(self) -> torch.Tensor | list[dict[str, Any]]:
        """No candidates (the clock is spent while some are in flight)."""
        if self.space is not None:
            return []
        return self._x0.new_empty((0, self._x0.numel()))

    def _stop(self, reason: StopReason, message: str) -> None:
        self.stop_reason, self._message = reason, message

    def _match(self, candidates: Any) -> list[int]:
        """The rows of the current batch the candidates are (handed out, not told yet)."""
        open_rows = [j for j in range(self._next) if not self._told_mask[j]]
        configs = None if self.space is None else self._configs
        return match_rows(candidates, self._batch, configs, open_rows, self._next, self._x0)

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
        return space_result(res, self.space, o.nfev - self.cache_hits, self.cache_hits)

    # -- saving and restoring ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the study needs to continue bit-identically in another process (plain
        tensors, arrays, numbers; ``torch.save`` / ``pickle`` it): the method's state and
        random generators, the open generation and what of it was handed out and told, and
        every evaluation told (points, values, failures)."""
        return save(self)

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        """Continue the study ``saved`` (from :meth:`state_dict`) here. This optimizer must be
        made with the method, options, x0/space, bounds and seed of the one that saved it
        (anything else is refused, saying what differs). The History's rows are recorded
        again, so their ``seconds`` restart; points, values and counts are the saved ones."""
        load(self, saved)

    def __repr__(self) -> str:
        state = "open" if self.stop_reason is None else str(self.stop_reason)
        return (
            f"Optimizer({self.method.label!r}, nfev={self.nfev}, generation={self.generation}, "
            f"in_flight={self.in_flight}, {state})"
        )
