"""The ask/tell Optimizer (see :mod:`optarena.ask_tell`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import torch

from ..budget import Budget, StopReason
from ..core.errors import StopRun
from ..core.noise import NoiseEstimate
from ..core.objective import Objective
from ..core.oracle import Oracle
from ..inputs import as_bounds, as_device, as_seed, as_x0
from ..methods import Facts, Method, RunContext, method_infos, resolve_method
from ..methods._base import Generations, PopulationMethod
from ..reevaluation import held_back as _held_back
from ..reevaluation import reevaluations as _reevaluations
from ..result import Result
from ..space import Space
from ..space.run import space_start
from ._inputs import Told, match_rows, parse_values, refuse_evaluation_settings
from ._noisy import Reevaluation
from ._outcome import study_result
from ._rows import OpenBatch
from ._saving import load, save

__all__ = ["Optimizer"]

REPEATS = 1000  # repeats in a row that end a study without an evaluation budget


class Optimizer(OpenBatch):
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
        noisy: the values are noisy: the method's elite is re-evaluated by default, and the
            best point is chosen and valued by re-evaluation as ``minimize`` does for an
            objective declared noisy (see ``reevaluate``).
        reevaluate: as in :func:`optarena.minimize`: once the method's part ends, ``ask()``
            hands out the 3 lowest samples' points ``k`` times each, then the winner's ``k``
            times; ``result().fun`` is the mean of the last ``k`` values and
            ``result().info["noise"]`` holds its standard error ``fun_se`` and the raw best
            sample. ``4 * k`` evaluations of the budget are held back for them. None: on a
            noisy study up to 10 within 5% of the budget (none below 160 evaluations), else 0.
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
        reevaluate: int | None = None,
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
        meth = resolve_method(method, options, caller=Optimizer)
        info = meth.info
        if info.family != "population" or not isinstance(meth, PopulationMethod):
            able = ", ".join(i.name for i in method_infos() if i.family == "population")
            raise ValueError(
                f"ask/tell drives population methods ({able}); {info.name!r} is "
                f"{'an' if info.family[0] in 'aeiou' else 'a'} {info.family} method: run it "
                "with optarena.minimize"
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
        self._k = _reevaluations(reevaluate, obj, self.budget)  # re-evaluations of the best
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
        self._reset_rows()
        self._cache: dict[tuple[Any, ...], float] = {}  # configuration key -> value told
        self.cache_hits = 0  # candidates answered from the cache instead of handed out
        self._incremental = self._takes_rows_one_by_one()
        # repeats of a noisy objective (or the elite's second values) are worth evaluating
        self._caching = self.space is not None and self._run.elite == 0 and not self._noisy
        self._reeval: Reevaluation | None = None  # a noisy study's last part, once begun
        self._method_end: tuple[StopReason, str] | None = None  # why the method's part ended
        self._estimate: NoiseEstimate | None = None

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
        # the clock is checked when candidates are handed out (values told late still count);
        # the method's budget holds back the re-evaluations of a noisy study's best point
        budget = dataclasses.replace(_held_back(self.budget, self._k), seconds=None)
        return Oracle(
            self._obj, self._x0, budget, box=self._box, record_x=True, leaders=3 * (self._k > 0)
        )

    def _time_up(self) -> bool:
        s = self.budget.seconds
        if s is None or self._reeval is not None or self._oracle.elapsed < s:
            return False  # the re-evaluations run after the clock, as in minimize
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
        return self._rows_out() if self._reeval is None else self._reeval.in_flight

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
        flight (tpe); else at most the rest of the generation. Never more than the budget
        left. Empty (k = 0) only while candidates are out: every row of the generation is
        out and some are not told (tell them, or more with ``popsize=``), or the ``seconds``
        budget is spent and the study ends when they are told. After ``load_state_dict``,
        the candidates out when the study was saved are handed out again first."""
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ValueError(f"ask(n) takes a positive int or None, got {n!r}")
        if not self.done and self._time_up() and not self.done and self._reeval is None:
            return self._empty()  # candidates are out: the study ends when they are told
        if self.done:
            why = f": {self._message}" if self._message else ""
            raise RuntimeError(f"the study has ended ({self.stop_reason}){why}")
        if self._reeval is not None:
            return self._handed(self._reeval.X, self._reeval.hand(n))
        handed = self._hand_lost(n)  # nobody holds them since the restore
        B = self._batch
        rows = [] if B is None else [B[j].clone() for j in handed]
        configs = [dict(self._configs[j]) for j in handed] if self.space is not None else []
        repeats = 0  # candidates in a row answered from the cache
        while (n is None or len(rows) < n) and self._room() and self._reeval is None:
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
        if self._reeval is not None:  # the method's part ended on a repeat: re-evaluations
            return self.ask(n)
        if self.space is not None:
            return configs
        return torch.stack(rows) if rows else self._empty()  # type: ignore[return-value]

    def _handed(self, X: torch.Tensor, rows: list[int]) -> torch.Tensor | list[dict[str, Any]]:
        """Rows ``rows`` of ``X`` as candidates (configurations with a space)."""
        if self.space is not None:
            return [self.space.encoding.decode_keyed(X[j])[0] for j in rows]
        return X[rows].clone() if rows else self._empty()  # type: ignore[return-value]

    def _reuse(self, j: int) -> None:
        """Row ``j`` repeats a configuration told before: its value is told again (counted
        as one evaluation, as ``minimize(space=)`` counts a cache hit) instead of handing
        it out."""
        self.cache_hits += 1
        self._record([j], [self._cache[self._keys[j]]], [None])

    def tell(self, candidates: Any, values: Any) -> None:
        """Record the values of candidates this optimizer handed out, in any order: a tensor
        (k, d) or (d,) (a list of dicts, or one dict, with a space) and k values (numbers,
        NaN, or exception instances for failed evaluations). Candidates are matched by
        exact value: tell them as ``ask()`` returned them. Nothing is recorded when any
        candidate or value is refused."""
        if self.done:
            raise RuntimeError(f"the study has ended ({self.stop_reason}): it takes no more values")
        if self._reeval is not None:
            r = self._reeval
            open_rows = [j for j, o in enumerate(r.out) if o]
            configs = None
            if self.space is not None:
                configs = [self.space.encoding.decode_keyed(x)[0] for x in r.X]
            rows = match_rows(candidates, r.X, configs, open_rows, len(r.out), self._x0, True)
            vals, errors = parse_values(values, len(rows))
            if rows:
                self._reevaluated(rows, vals, errors)
            return
        rows = self._match(candidates)
        vals, errors = parse_values(values, len(rows))
        if rows:
            self._record(rows, vals, errors)

    def _count(self, X: torch.Tensor, vals: list[float], errors: list[str | None]) -> Any:
        """Values of the points ``X`` through the Oracle (counted, ranked, recorded), with
        the failures' messages; the ranked values, or None when the Oracle stopped the run."""
        before = self._oracle.nfev
        self._told.queue.extend(vals)
        try:
            ranked = self._oracle.values(X)
        except StopRun as stop:  # a target reached, the clock, the budget: recorded first
            self._stop(stop.reason, stop.message or f"stopped: {stop.reason}")
            ranked = None
        finally:
            self._told.queue.clear()
        for i in range(self._oracle.nfev - before):
            if errors[i] is not None:
                self.failures[before + i + 1] = errors[i]
        return ranked

    def _record(self, rows: list[int], vals: list[float], errors: list[str | None]) -> None:
        """Values of rows of the open batch, through the Oracle; the method learns them."""
        B = self._open_batch()
        before = self._oracle.nfev
        ranked = self._count(B[rows], vals, errors)
        if self.space is not None:  # a failure may pass: only values are reused
            for i in range(self._oracle.nfev - before):
                if errors[i] is None:
                    self._cache.setdefault(self._keys[rows[i]], vals[i])
        if ranked is None or self._reeval is not None:
            return
        self._mark_told(rows, ranked.tolist())
        if self._incremental:
            self._check(self._take_told())
        elif all(self._told_mask):
            self._batch = None
            with torch.no_grad():
                self._check(self._run.take(self._values))
        if not self.done and self._oracle.remaining_evals() == 0 and self.in_flight == 0:
            self._stop(
                StopReason.MAX_EVALS, f"the budget of {self.budget.evals} evaluations is spent"
            )
        self._time_up()

    def _reevaluated(self, rows: list[int], vals: list[float], errors: list[str | None]) -> None:
        """Values of re-evaluation points; the study ends with the last one's estimate."""
        r = self._reeval
        assert r is not None
        ranked = self._count(r.X[rows], vals, errors)
        if ranked is None:  # cannot happen within the reserve; the raw best stands
            return
        est = r.take(rows, ranked.tolist())
        if est is not None:
            self._estimate = est
            assert self._method_end is not None
            self._reeval = None
            self.stop_reason, self._message = self._method_end

    def _check(self, told: bool) -> None:
        if told and self.method.converged(self._run.state):
            g = self._run.generation
            self._stop(StopReason.CONVERGED, self.method.stop_message(self._run.state, g))

    def _stop(self, reason: StopReason, message: str) -> None:
        """End the study, or on a noisy one the method's part of it: the re-evaluations of
        its best point are handed out next (a study with no finite value has none)."""
        if self._reeval is None and self._estimate is None and self._k > 0:
            o = self._oracle
            if o.best_x is not None and o.leaders is not None and o.leaders.items:
                self._method_end = (reason, message)
                o.budget = Budget(evals=self.budget.evals)  # the reserve; no clock or target
                self._reeval = Reevaluation(self._k, list(o.leaders.items), o.best_f, o.best_eval)
                self._batch = None  # candidates of the method still out are not taken
                return
        self.stop_reason, self._message = reason, message

    # -- outcome -------------------------------------------------------------------------
    def result(self) -> Result:
        """The study so far as a :class:`~optarena.Result` (a ``SpaceResult`` with a space):
        the best point told, its value, ``nfev``, the History. An open study's stop reason
        is ``callback`` (the caller ends it); ``info["failures"]`` lists failed evaluations
        with their messages; a noisy study's ``info["noise"]`` says how ``fun`` was
        estimated (or why it is the raw best sample)."""
        return study_result(self)

    # -- saving and restoring ------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything the study needs to continue bit-identically in another process: the
        method's state and random generators, the open generation and what of it was told,
        and every evaluation told (points, values, failures). Plain data (tensors, lists,
        dicts, numbers, strings; the method's state as the dict of its attributes), so
        ``torch.save`` it and ``torch.load(f)`` reads it back with its default
        ``weights_only=True``, or ``pickle`` it. Candidates out when it is saved are handed
        out again after ``load_state_dict``."""
        return save(self)

    def load_state_dict(self, saved: Mapping[str, Any]) -> None:
        """Continue the study ``saved`` (from :meth:`state_dict`) here. This optimizer must be
        made with the method, options, x0/space, bounds and seed of the one that saved it
        (anything else is refused, saying what differs). The candidates that were out when
        it was saved are handed out again by ``ask()``, before new ones (a value kept for
        one may also be told directly). The History's rows are recorded again, so their
        ``seconds`` restart; points, values and counts are the saved ones."""
        load(self, saved)

    def __repr__(self) -> str:
        state = "open" if self.stop_reason is None else str(self.stop_reason)
        return (
            f"Optimizer({self.method.label!r}, nfev={self.nfev}, generation={self.generation}, "
            f"in_flight={self.in_flight}, {state})"
        )
