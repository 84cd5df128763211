"""optimize(): a study of an expensive objective, asynchronous, stored trial by trial, resumable.

The loop keeps up to ``in_flight`` trials running: whenever one finishes it is stored (one
transaction, with its reports), told to the method, and a new candidate is asked for. The
method is the public ask/tell :class:`~optarena.ask_tell.Optimizer`, so a study can be
replayed: same space, method, options and seed, and the same asks and tells in the same
order, give the same candidates. Resuming a study is exactly that replay (see
:func:`optimize`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..ask_tell import Optimizer
from ..bench.store import Store
from ..methods import Method
from ..space import Space, SpaceResult
from .checks import (
    as_catch,
    as_timeout,
    check_description,
    check_options,
    method_options,
    method_settings,
    popsize_of_in_flight,
    positive,
    space_text,
    warn_sequential,
    warn_unused_pruner,
)
from .errors import TrialError, TrialFailed, trial_error
from .executors import backend
from .lock import study_lock
from .pruners import Pruner, as_pruner
from .record import write_run_record
from .result import Study, TrialRecord
from .tables import (
    create_study,
    dumps,
    open_store,
    stored_asks,
    stored_trials,
    study_row,
    trials_frame,
    write_ask,
)
from .trial import Finished, Outcome, run_trial, takes_trial

__all__ = ["optimize"]


def _told_value(row: Mapping[str, Any]) -> float | BaseException:
    """What the method is told for a finished trial: its value (complete), its last reported
    value (pruned: an early, usually pessimistic estimate that still ranks the region as
    poor), or a failure (failed: the error; pruned before any report: NaN)."""
    v = row["value"]
    if row["status"] == "failed":
        return TrialFailed(row["error"] or "failed")
    return math.nan if v is None else float(v)


def _same(a: Any, b: Any) -> bool:
    return json.loads(dumps(a)) == json.loads(dumps(b))


class _Replay:
    """The study's candidates by number, asked from the optimizer in order."""

    def __init__(self, opt: Optimizer) -> None:
        self.opt = opt
        self.asked: list[dict[str, Any]] = []

    def until(self, number: int, name: str) -> None:
        while len(self.asked) <= number:
            got = self.opt.ask(1) if not self.opt.done else []
            if not got:
                raise ValueError(
                    f"study {name!r}: the stored trials cannot be replayed (the method gives no "
                    f"candidate number {len(self.asked)}); was the store written by another "
                    "version of optarena?"
                )
            self.asked.append(got[0])


def optimize(
    objective: Callable[..., Any],
    space: Space | Mapping[str, Any],
    *,
    method: str | Method = "tpe",
    n_trials: int,
    in_flight: int = 1,
    executor: Any = None,
    store: Store | str | Path | None = None,
    name: str = "study",
    pruner: Pruner | str | Mapping[str, Any] | None = None,
    seed: int | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = (),
    timeout: float | None = None,
    **options: Any,
) -> Study:
    """Run a study: ``n_trials`` trials of ``objective`` on configurations of ``space``
    proposed by ``method`` (a population method: ``tpe``, ``cmaes``, ``random_search``...).

    ``objective(config)`` returns the value to minimize; declared with two parameters,
    ``objective(config, trial)`` also gets the :class:`~optarena.study.Trial`
    (``trial.report(step, value)`` for pruning); configurations are dicts of the space's
    values (Optuna's ``trial.suggest_*`` calls are refused with that form).

    Failures: a trial whose objective raises is stored as failed, with the one-line error
    (``trials``) and the traceback (:meth:`Study.traceback`), then the study stops with a
    :class:`~optarena.study.TrialError` chained to the objective's exception (carrying the
    study so far), as Optuna's default ``catch=()`` does: a bug in the objective would fail
    every trial, and the traceback says where at once. ``catch`` (an exception class or a
    tuple of them, e.g. ``catch=(Exception,)``) names the exceptions that are failures to
    expect: such a trial is stored as failed, told to the method as a failure, and the study
    goes on. A NaN value is always such a failure, and so is a worker process that died.
    A stopped study resumes as an interrupted one does.

    ``timeout`` (seconds): no trial is launched after that time; the trials running finish
    and are stored, and the study is returned (its ``message`` says so; calling again
    resumes it).

    At most ``in_flight`` trials run at once, on ``executor``: None (this process, one at a
    time: ``in_flight > 1`` then warns), a ``concurrent.futures.Executor``, a
    ``distributed.Client``, a Dask scheduler address or ``"local:N"``. When a trial finishes a
    new one starts at once if the method has a candidate. ``tpe`` proposes a candidate beside
    the pending ones (treated as constant liars) and learns each value as it comes, so it keeps
    ``in_flight`` trials running at all times. A generational method with a ``popsize`` option
    below ``in_flight`` gets ``popsize=in_flight`` unless you set it, so that ``in_flight``
    trials can run; it needs every value of a generation before it proposes the next, so the
    number in flight drops while a generation's last trials finish (with trial times varying 5x,
    3 in flight averaged 1.8 with ``popsize=3`` and 2.8 with ``popsize=6``): a larger popsize
    keeps workers busier at the price of fewer model updates.

    Every finished trial is written to ``store`` (a path or a Store; None: memory only) at
    once. Calling again with the same store and ``name`` resumes (``n_trials`` counts the
    study's trials in all, not the trials of this call: 40 stored and ``n_trials=50`` run 10
    more; the returned ``message`` says so when none was left to run): the stored trials are
    replayed on a fresh method in the order they were told (never run again; a replayed
    candidate that differs from the stored one is refused), the trials that were running
    when the process died run again, then the study goes on to ``n_trials``. The space,
    method, options, seed and pruner must be the stored ones (``seed=None`` takes the stored
    seed; ``in_flight`` may change): the stored trials were pruned by the stored pruner, and a
    study keeps one rule (to prune otherwise, start a study under another name).
    Each trial's ask is recorded as it is launched, so the replay interleaves asks and tells
    as they ran, whatever order parallel trials finished in. Ctrl-C ends the study: the
    study so far is returned (its ``message`` says so; the trials running are not stored)
    and the same call resumes it.

    ``pruner`` (:class:`MedianPruner`, :class:`SuccessiveHalvingPruner`, their names, or
    None) decides from the trials finished when a trial was launched. A pruned trial is
    stored as ``'pruned'`` with its reports and last reported value, which the method is told.
    """
    n_trials, in_flight = positive("n_trials", n_trials), positive("in_flight", in_flight)
    options, catch_, limit = (
        check_options(method, options),
        as_catch(catch),
        as_timeout(timeout),
    )
    warn_sequential(in_flight, executor)
    space = space if isinstance(space, Space) else Space(space)
    prn = as_pruner(pruner)
    with_trial = takes_trial(objective)
    warn_unused_pruner(prn, with_trial)
    opts = method_options(method, options, in_flight)
    label = method if isinstance(method, str) else method.info.name
    described = opts if isinstance(method, str) else method_settings(method)
    mine = {"space": space_text(space, store is not None), "method": label,
            "options": dumps(described), "seed": seed, "in_flight": in_flight,
            "pruner": None if prn is None else dumps(prn.to_dict())}  # fmt: skip
    with open_store(store) as st, study_lock(st, name):
        row = study_row(st, name)
        if row is not None:
            if popsize_of_in_flight(row["options"], options, opts):
                opts = json.loads(row["options"])  # resumed with another in_flight
                mine["options"] = row["options"]
            check_description(row, mine, name)
            seed = row["seed"]
        opt = Optimizer(method, space=space, seed=seed, **opts)
        if row is None:
            create_study(st, name, {**mine, "seed": opt.seed})
        loop = _Loop(opt, st, name, objective, with_trial, prn, in_flight, n_trials)
        loop.catch, loop.timeout = catch_, limit
        loop.replay()
        stop: TrialError | None = None
        with backend(executor) as be:
            be.check(objective)
            try:
                loop.run(be)
            except TrialError as e:
                stop = e
        result = opt.result()
        write_run_record(st, name, result, label, mine["options"], n_trials, loop.interrupted,  # type: ignore[arg-type]
                         None if stop is None else _failed_line(loop, stop.number))  # fmt: skip
        study = _study(loop, label, result, trials_frame(st, name))
    if stop is not None:
        stop.study = study
        raise stop
    return study


class _Loop:
    """The state of one call: replayed candidates, finished trials, the tell counter."""

    def __init__(
        self,
        opt: Optimizer,
        st: Store,
        name: str,
        objective: Callable[..., Any],
        with_trial: bool,
        pruner: Pruner | None,
        in_flight: int,
        n_trials: int,
    ) -> None:
        self.opt, self.st, self.name = opt, st, name
        self.objective, self.with_trial, self.pruner = objective, with_trial, pruner
        self.in_flight, self.n_trials = in_flight, n_trials
        self.cands = _Replay(opt)
        self.finished: list[Finished] = []
        self.rows: list[dict[str, Any]] = []  # finished trials: number, status, value, params
        self.pending: list[int] = []  # numbers to run again (running when a process died)
        self.told = 0
        self.resumed = 0
        self.message = ""
        self.interrupted = False
        self.catch: tuple[type[BaseException], ...] = ()
        self.timeout: float | None = None

    def replay(self) -> None:
        """Tell the stored trials again, in their order, checking every candidate. Each
        candidate is asked after as many tells as when it was first asked (``study_asks``):
        a method that proposes beside trials in flight (tpe) draws from what it was told."""
        stored = stored_trials(self.st, self.name)
        asks = stored_asks(self.st, self.name)
        for t in stored:
            self._ask_until(asks, t["told"])
            self.cands.until(t["number"], self.name)  # a store without ask records
            cand = self.cands.asked[t["number"]]
            if not _same(cand, t["params"]):
                raise ValueError(
                    f"study {self.name!r}: replaying trial {t['number']} gives {cand!r}, but the "
                    f"store holds {t['params']!r}; the method no longer reproduces this study "
                    "(another optarena or torch version?): start a new study"
                )
            self._tell({**t, "params": cand})  # the space's key order, as a fresh run's
        self.told = 1 + max((t["told"] for t in stored), default=-1)
        self.resumed = len(stored)
        self._ask_until(asks, self.told)  # asked after the last tell: running when it stopped
        done = {t["number"] for t in stored}
        top = max(done, default=-1)
        if top >= 0:
            self.cands.until(top, self.name)
        self.pending = [n for n in range(len(self.cands.asked)) if n not in done]

    def _ask_until(self, asks: Mapping[int, int], tells: int) -> None:
        """Ask again the candidates that were asked after at most ``tells`` tells."""
        while asks.get(len(self.cands.asked), tells + 1) <= tells:
            self.cands.until(len(self.cands.asked), self.name)

    def _tell(self, row: Mapping[str, Any]) -> None:
        self.finished.append(Finished(row["number"], row["status"], dict(row["reports"])))
        self.rows.append({k: row[k] for k in ("number", "status", "value", "params", "error")})
        self.rows[-1]["traceback"] = row.get("traceback")
        if not self.opt.done:
            self.opt.tell(self.cands.asked[row["number"]], _told_value(row))

    def _next(self) -> int | None:
        if self.pending:
            return self.pending.pop(0)
        if self.opt.done:
            self._stopped()
            return None
        got = self.opt.ask(1)
        if not got:
            if self.opt.done:  # it stopped while asking (the space looks exhausted)
                self._stopped()
            return None
        self.cands.asked.append(got[0])
        number = len(self.cands.asked) - 1
        write_ask(self.st, self.name, number, self.told)  # before launch: a resume replays it
        return number

    def _stopped(self) -> None:
        """Say why the method ended the study before ``n_trials``."""
        why = self.opt.result().message
        self.message = f"the method stopped ({self.opt.stop_reason})" + (f": {why}" if why else "")

    def _launch(self, be: Any, number: int) -> Any:
        """Submit trial ``number`` with a snapshot of the trials finished so far."""
        args = (self.with_trial, number, self.cands.asked[number], self.pruner)
        return be.submit(run_trial, self.objective, *args, tuple(self.finished), self.catch)

    def run(self, be: Any) -> None:
        """Launch, collect, store, tell, until ``n_trials`` trials are stored."""
        from .tables import write_trial

        running: dict[Any, int] = {}
        if self.resumed >= self.n_trials:
            self.message = (
                f"the store already holds {self.resumed} trials of study {self.name!r}: n_trials "
                f"counts the study's trials in all, not the trials of this call (pass n_trials="
                f"{self.resumed + self.n_trials} for {self.n_trials} more)"
            )
        t0 = time.monotonic()
        try:
            while True:
                late = self.timeout is not None and time.monotonic() - t0 >= self.timeout
                if late and not running:
                    self._timed_out()
                    return
                while len(running) < min(self.in_flight, self.n_trials - len(self.rows)):
                    if self.timeout is not None and time.monotonic() - t0 >= self.timeout:
                        break
                    number = self._next()
                    if number is None:
                        break
                    running[self._launch(be, number)] = number
                if not running:
                    return
                stop: Outcome | None = None
                for fut in sorted(be.wait_first(running), key=running.__getitem__):
                    number = running.pop(fut)
                    out: Outcome = be.outcome(fut, number)
                    params = self.cands.asked[number]
                    write_trial(self.st, self.name, out, params, self.told)
                    self.told += 1
                    keys = ("number", "status", "value", "error", "reports", "traceback")
                    self._tell({**{k: getattr(out, k) for k in keys}, "params": params})
                    stop = out if out.raised and stop is None else stop
                if stop is not None:  # the trials finished with it are stored first
                    raise trial_error(self.name, stop)
        except KeyboardInterrupt:  # Ctrl-C: the study so far is returned (and stored)
            be.cancel(list(running))
            self.interrupted = True
            self.message = (
                "interrupted (Ctrl-C); the trials running were not stored: call again with "
                "the same store and name to resume"
            )
        except BaseException:
            be.cancel(list(running))
            raise

    def _timed_out(self) -> None:
        """Say that ``timeout`` ended the study (the trials launched before it were stored)."""
        if len(self.rows) < self.n_trials and not self.message:
            self.message = (
                f"timeout: {self.timeout:g} s reached with {len(self.rows)} trials stored; call "
                "again with the same store and name to go on"
            )


def _failed_line(loop: _Loop, number: int) -> str:
    """``"trial N failed: Type: message"`` for the run record of a stopped study."""
    return f"trial {number} failed: " + next(
        str(r["error"]) for r in loop.rows if r["number"] == number
    )


def _study(loop: _Loop, label: str, result: SpaceResult, frame: Any) -> Study:
    rows = loop.rows
    complete = [r for r in rows if r["status"] == "complete" and r["value"] is not None]
    best = min(complete, key=lambda r: (r["value"], r["number"]), default=None)
    count = {s: sum(r["status"] == s for r in rows) for s in ("complete", "pruned", "failed")}
    message = loop.message
    errors = [r["error"] for r in rows if r["status"] == "failed"]
    if errors and not complete:  # a bug in the objective fails every trial: say which
        what = "every trial failed" if len(errors) == len(rows) else "no trial completed"
        first = f"{what} (the first error: {errors[0]})"
        message = f"{message}; {first}" if message else first
    return Study(
        name=loop.name,
        method=label,
        seed=loop.opt.seed,
        best_value=math.inf if best is None else float(best["value"]),
        best_config=None if best is None else dict(best["params"]),
        best_number=None if best is None else int(best["number"]),
        n_complete=count["complete"],
        n_pruned=count["pruned"],
        n_failed=count["failed"],
        resumed=loop.resumed,
        result=result,
        trials=frame,
        message=message,
        tracebacks={r["number"]: r["traceback"] for r in rows if r.get("traceback")},
        records=tuple(
            TrialRecord(int(r["number"]), dict(r["params"]), r["value"], r["status"], r["error"])
            for r in sorted(rows, key=lambda r: r["number"])
        ),
    )
