"""compare(): a quick, fair, in-process comparison of methods on one problem.

Every method gets the same evaluation budget and the same seeds; the summary reports final
values over the seeds and the evaluations and seconds each method needed to reach targets
(by default ``f_opt + 10^k`` when the optimum is known). Methods the problem cannot serve
(a gradient method on a non-differentiable problem) are listed as skipped, with the reason.
For many problems, stored results and resuming, use :mod:`optarena.bench`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .bench.inputs import SpecError, parse_budget, parse_seeds
from .bench.plan import MethodEntry, Subject, Task, plan_problem
from .bench.runner import torch_threads
from .bench.summary import RunOutcome, Summary, SummaryRow, summarize
from .bench.targets import Target, as_targets, hits_from_history
from .budget import Budget
from .core.oracle import ObjectiveError
from .minimize import as_objective, minimize
from .problems import Problem
from .problems import get as get_problem
from .result import Result

__all__ = ["Comparison", "compare"]

MethodsArg = str | tuple[str, Mapping[str, Any]] | MethodEntry
_PASS_THROUGH = {"x0", "constraints", "record_x", "callback", "executor"}


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`: per-run Results and a summary table.

    ``results[label]`` holds the Results of the runs that finished (one per seed, or one for a
    deterministic method); ``errors[label]`` the messages of runs whose objective raised;
    ``skipped[label]`` why a method could not run at all.
    """

    problem: str
    budget: Budget
    seeds: tuple[int, ...]
    targets: tuple[Target, ...]
    results: Mapping[str, tuple[Result, ...]]
    errors: Mapping[str, tuple[str, ...]]
    skipped: Mapping[str, str]
    summary: Summary

    @property
    def rows(self) -> tuple[SummaryRow, ...]:
        """Summary rows, best median first."""
        return self.summary.rows

    def table(self, fmt: str = "markdown") -> str:
        """The summary as a markdown (default) or CSV table, then the skipped methods."""
        text = self.summary.table(fmt)
        if fmt == "markdown" and self.skipped:
            text += "\nSkipped: " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items())
            text += "\n"
        return text

    def to_pandas(self) -> Any:
        """The summary rows as a pandas DataFrame (needs pandas)."""
        return self.summary.to_pandas()

    def __str__(self) -> str:
        return self.table()


def _entries(methods: Any) -> list[MethodEntry]:
    """Normalize names, (name, options) pairs, MethodEntry objects or a label mapping."""
    if isinstance(methods, Mapping):
        out = []
        for label, m in methods.items():
            e = _entries([m])[0]
            out.append(MethodEntry(e.name, e.options, str(label), e.bounds))
        return out
    if isinstance(methods, str | MethodEntry) or (
        isinstance(methods, tuple) and len(methods) == 2 and isinstance(methods[1], Mapping)
    ):
        methods = [methods]
    out = []
    for m in methods:
        if isinstance(m, MethodEntry):
            out.append(m)
        elif isinstance(m, str):
            out.append(MethodEntry(m))
        elif isinstance(m, tuple) and len(m) == 2 and isinstance(m[1], Mapping):
            out.append(MethodEntry(m[0], dict(m[1])))
        else:
            raise TypeError(
                f"a method must be a name, a (name, options) pair or a MethodEntry, got {m!r}"
            )
    return out


class _Runs:
    """The runs of one method: Results, error messages and summary outcomes."""

    def __init__(self, group: str, label: str, method: str, targets: tuple[Target, ...]) -> None:
        self.group, self.label, self.method, self.targets = group, label, method, targets
        self.results: list[Result] = []
        self.errors: list[str] = []
        self.outcomes: list[RunOutcome] = []

    def one(self, target: Any, **kwargs: Any) -> None:
        """Run minimize once; an exception during the run is recorded as an error."""
        res: Result | None
        try:
            res = minimize(target, **kwargs)
            status = "ok"
        except ObjectiveError as e:
            res, status = e.result, "error"
            self.errors.append(str(e))
        except (TypeError, ValueError) as e:
            if not self.outcomes:  # refused on the first seed: the method does not apply
                raise
            res, status = None, "error"  # a later seed failing keeps the finished ones
            self.errors.append(f"{type(e).__name__}: {e}")
        except Exception as e:  # a failing method must not end the whole comparison
            res, status = None, "error"
            self.errors.append(f"{type(e).__name__}: {e}")
        if res is not None and status == "ok":
            self.results.append(res)
        h = None if res is None else res.history
        self.outcomes.append(
            RunOutcome(
                group=self.group,
                label=self.label,
                method=self.method,
                status=status,
                fun=None if res is None else (res.fun if res.feasible else math.inf),
                nfev=0 if res is None else res.nfev,
                elapsed=0.0 if res is None else res.elapsed,
                hits=(None,) * len(self.targets)
                if h is None
                else hits_from_history(h.best_f, h.evals, h.seconds, self.targets),
                stop_reason="error" if res is None else res.stop_reason.value,
            )
        )


def compare(
    problem: Problem | str | Any,
    methods: MethodsArg | Sequence[MethodsArg] | Mapping[str, MethodsArg],
    budget: Budget | int,
    seeds: int | Iterable[int] = 5,
    targets: Iterable[float | Target] | None = None,
    *,
    bounds: Any = None,
    deterministic_once: bool = True,
    threads: int | None = 1,
    **kw: Any,
) -> Comparison:
    """Run every method on ``problem`` with the same budget and seeds; summarize.

    Args:
        problem: a Problem, a registered problem name, or an Objective / tensor function
            (then pass ``x0=``).
        methods: ``"adam"``, ``("adam", {"lr": 0.1})``, a list of those, a mapping
            ``{label: ("adam", {"lr": 0.1})}``, or ``"*"`` for every registered method. A
            method's box bounds follow its entry's policy (``MethodEntry(bounds="auto")``
            gives the box to global methods only).
        budget: evaluations (int) or a Budget, the same for every run.
        seeds: a count ``n`` (seeds 0..n-1) or the seeds themselves.
        targets: values to reach; default ``f_opt + 10^k`` (k = 0, -3, -6) when known.
        bounds: the box ``(lower, upper)``; default the problem's.
        deterministic_once: run a non-stochastic method once instead of once per seed.
        threads: torch threads during the runs (restored after; None leaves the setting).
            One thread is much faster for small problems and matches the bench runner.
        **kw: passed to :func:`minimize`: ``x0``, ``constraints``, ``record_x``, ``callback``.
    """
    unknown = sorted(set(kw) - _PASS_THROUGH)
    if unknown:
        raise TypeError(
            f"compare() got unexpected keyword(s) {unknown}; method options go with each "
            "method, e.g. ('adam', {'lr': 0.1}); passed to minimize: "
            + ", ".join(sorted(_PASS_THROUGH))
        )
    if isinstance(problem, str):
        problem = get_problem(problem)
    try:
        bud = parse_budget(budget)
        seed_list = parse_seeds(seeds)
    except SpecError as e:
        raise ValueError(str(e)) from None
    objective, prob = as_objective(problem)
    if prob is None and kw.get("x0") is None:
        raise TypeError(
            "compare() on a function needs its start point: compare(f, methods, budget, "
            "x0=...) (a registered problem or a Problem carries its own)"
        )
    box = bounds if bounds is not None else (prob.bounds if prob is not None else None)
    constrained = bool(kw.get("constraints")) or bool(prob is not None and prob.constraints)
    base = (
        Subject.of(prob, keyed=False)
        if prob is not None
        else Subject(objective.name, registered=False)
    )
    subject = replace(
        base,
        gradient=objective.gradient,
        has_box=box is not None,
        constrained=constrained,
        executor=kw.get("executor") is not None,
    )
    name = subject.name
    tg = as_targets(targets, subject.f_opt)
    target = prob if prob is not None else objective
    plan = plan_problem(
        subject,
        _entries(methods),
        bud,
        seed_list,
        spec="compare",
        deterministic_once=deterministic_once,
        keyed=False,
    )
    by_label: dict[str, list[Task]] = {}
    for t in plan.tasks:
        by_label.setdefault(t.label, []).append(t)

    results: dict[str, tuple[Result, ...]] = {}
    errors: dict[str, tuple[str, ...]] = {}
    skipped: dict[str, str] = {s.label: s.reason for s in plan.skipped}
    outcomes: list[RunOutcome] = []
    with torch_threads(threads):
        for label, tasks in by_label.items():
            run = _Runs(name, label, tasks[0].method, tg)
            try:
                for t in tasks:
                    run.one(
                        target,
                        method=t.method,
                        bounds=box if t.bounds else None,
                        budget=bud,
                        seed=t.seed,
                        **kw,
                        **dict(t.options),
                    )
            except (TypeError, ValueError) as e:  # refused before the first evaluation
                skipped[label] = str(e)
                continue
            outcomes += run.outcomes
            if run.results:
                results[label] = tuple(run.results)
            if run.errors:
                errors[label] = tuple(run.errors)
    summary = Summary(tuple(summarize(outcomes, {name: tg})), {name: tg})
    return Comparison(
        problem=name,
        budget=bud,
        seeds=seed_list,
        targets=tg,
        results=results,
        errors=errors,
        skipped=skipped,
        summary=summary,
    )
