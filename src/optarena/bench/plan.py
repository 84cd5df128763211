"""The experiment plan: which runs some methods make on a problem, with which box, under which key.

One place decides it for ``optarena bench`` specs, :func:`optarena.compare`, ``optarena run``,
``optarena plot`` and the demo:

- what a method entry stands for (a name with options, or ``"*"`` for every other registered
  method) and its label: :func:`choose_methods` (:mod:`optarena.bench.choose`);
- whether a run gets the problem's box: the entry's bounds policy, :func:`uses_bounds`;
- whether the method can run at all: :meth:`MethodInfo.refusal`, the one capability check,
  whose message becomes the skip reason;
- how many seeds it runs (a deterministic method runs once) and the key of each run
  (:func:`run_key`), which the store uses to resume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..budget import Budget
from ..methods import Facts, MethodInfo
from ..problems import Problem
from ..problems import get as get_problem
from .choose import (
    ALL_METHODS,
    BOUNDS_POLICIES,
    BoundsPolicy,
    MethodChoice,
    MethodEntry,
    Skipped,
    choose_methods,
    method_label,
    resolve_entry,
)
from .inputs import SpecError, budget_to_dict, canonical_json, decode_params, encode_params

__all__ = [
    "ALL_METHODS",
    "BOUNDS_POLICIES",
    "BoundsPolicy",
    "MethodChoice",
    "MethodEntry",
    "Plan",
    "Skipped",
    "Subject",
    "Task",
    "applicability",
    "choose_methods",
    "method_label",
    "plan_problem",
    "plan_runs",
    "resolve_entry",
    "run_key",
    "uses_bounds",
]


@dataclass(frozen=True)
class Task:
    """One run: everything that determines its numbers, plus its key and label.

    In a keyed plan (every spec) ``params`` and ``options`` are JSON types (they come from the
    canonical JSON), so what the store records is exactly what ran. ``coco``: a folder for
    COCO-format output (bbob problems; not part of the key: it changes no number).
    """

    key: str
    spec: str
    problem: str
    params: Mapping[str, Any]
    problem_params: str
    method: str
    label: str
    options: Mapping[str, Any]
    options_json: str
    bounds: bool
    seed: int
    budget: Budget
    f_opt: float | None
    coco: str | None = None

    def build_problem(self) -> Problem:
        """The problem instance of this run; with ``coco`` set, one that also writes every
        point it evaluates for the COCO output (:mod:`optarena.bench.coco`)."""
        problem = get_problem(self.problem, **decode_params(self.params))
        if self.coco is None:
            return problem
        from .coco import recording  # imports the bbob problem module

        return recording(problem, self.coco, self.key)


@dataclass(frozen=True)
class Plan:
    """The validated runs, in a stable order, and the pairs that were skipped."""

    spec: str
    tasks: tuple[Task, ...]
    skipped: tuple[Skipped, ...]
    coco_output: str | None = None  # the folder of COCO-format output, if asked for
    targets: tuple[float, ...] = ()  # precisions on f - f_opt a summary counts as solved

    @property
    def keys(self) -> list[str]:
        """Keys of every planned run."""
        return [t.key for t in self.tasks]

    @property
    def labels(self) -> dict[str, str]:
        """The label of every planned run, by key (what summaries show)."""
        return {t.key: t.label for t in self.tasks}


@dataclass(frozen=True)
class Subject:
    """What planning needs to know of a problem: what it offers, and its name and parameters.

    ``gradient``, ``has_box``, ``constrained`` and ``executor`` become the :class:`Facts` of
    the capability check; ``name`` and ``params_json`` (every factory parameter, canonical
    JSON) enter the run keys; ``params`` are the parameters as given.
    """

    name: str
    gradient: Literal["autograd", "fd", "none"] = "autograd"
    has_box: bool = False
    constrained: bool = False
    executor: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    params_json: str = "{}"
    f_opt: float | None = None
    registered: bool = True

    @classmethod
    def of(
        cls, problem: Problem, params: Mapping[str, Any] | None = None, *, keyed: bool = True
    ) -> Subject:
        """The subject of a problem built with ``params`` (JSON types); ``keyed``: its
        parameters must be JSON types (runs that are stored and keyed)."""
        given = dict(params or {})
        full = {**encode_params(problem.params), **given}
        text = (
            canonical_json(full, f"{problem.name}: params")
            if keyed
            else json.dumps(full, sort_keys=True, default=repr)
        )
        return cls(
            name=problem.name,
            gradient="autograd" if problem.differentiable else "none",
            has_box=problem.bounds is not None,
            constrained=bool(problem.constraints),
            params=given,
            params_json=text,
            f_opt=problem.f_opt,
        )

    @property
    def title(self) -> str:
        """How messages name it: ``problem rosenbrock`` or ``objective 'f'``."""
        return f"problem {self.name}" if self.registered else f"objective {self.name!r}"

    def facts(self, bounded: bool) -> Facts:
        """The facts a method meets here when its run gets the box (``bounded``) or not."""
        return Facts(
            gradient=self.gradient,
            bounded=bounded,
            constrained=self.constrained,
            executor=self.executor,
            subject=self.title,
        )


def uses_bounds(info: MethodInfo, policy: str) -> bool:
    """Whether a run asks for the problem's box: always, never, or (auto) for global searches
    and methods that need one."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    return info.is_global or info.requires_bounds


def applicability(choice: MethodChoice, subject: Subject) -> tuple[bool, str | None]:
    """(whether the run gets the box, why the method cannot run here or None)."""
    wants = uses_bounds(choice.info, choice.bounds)
    if wants and not subject.has_box and choice.bounds == "always":
        return False, f"bounds = 'always', but {subject.title} has no box"
    bounded = wants and subject.has_box
    return bounded, choice.info.refusal(subject.facts(bounded))


def run_key(
    problem: str,
    params_json: str,
    method: str,
    options_json: str,
    bounds: bool,
    seed: int,
    budget: Budget,
) -> str:
    """The deterministic key of a run: a hash of everything that determines its numbers."""
    text = canonical_json(
        {
            "problem": problem,
            "params": json.loads(params_json),
            "method": method,
            "options": json.loads(options_json),
            "bounds": bounds,
            "seed": seed,
            "budget": budget_to_dict(budget),
        }
    )
    return hashlib.sha256(text.encode()).hexdigest()


def plan_runs(
    subject: Subject,
    choices: Iterable[MethodChoice],
    budget: Budget,
    seeds: Sequence[int],
    *,
    spec: str = "spec",
    deterministic_once: bool = True,
    unique: bool = True,
) -> tuple[list[Task], list[Skipped]]:
    """The runs of ``choices`` on ``subject``, and the methods that cannot run there.

    A method that is not stochastic runs once (first seed) when ``deterministic_once``.
    ``unique``: two entries that make the same runs are an error (a spec names each once).
    """
    tasks: list[Task] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    for c in choices:
        bounded, reason = applicability(c, subject)
        if reason is not None:
            skipped.append(Skipped(subject.name, c.label, reason))
            continue
        run_seeds = seeds[:1] if deterministic_once and not c.info.stochastic else seeds
        for seed in run_seeds:
            key = run_key(
                subject.name, subject.params_json, c.method, c.options_json, bounded, seed, budget
            )
            if unique and key in seen:
                raise SpecError(
                    f"{c.label!r} and {seen[key]!r} on {subject.name} are the same runs "
                    "(same method, options and problem); remove one"
                )
            seen[key] = c.label
            tasks.append(
                Task(
                    key=key,
                    spec=spec,
                    problem=subject.name,
                    params=subject.params,
                    problem_params=subject.params_json,
                    method=c.method,
                    label=c.label,
                    options=c.options,
                    options_json=c.options_json,
                    bounds=bounded,
                    seed=seed,
                    budget=budget,
                    f_opt=subject.f_opt,
                )
            )
    return tasks, skipped


def plan_problem(
    subject: Subject,
    methods: Sequence[MethodEntry],
    budget: Budget,
    seeds: Sequence[int],
    *,
    spec: str = "spec",
    deterministic_once: bool = True,
    keyed: bool = True,
) -> Plan:
    """The plan of ``methods`` on one problem: what ``compare()``, ``optarena run`` and
    ``optarena plot`` execute (a spec plans each of its problems the same way)."""
    choices, unusable = choose_methods(methods, keyed=keyed)
    tasks, skipped = plan_runs(
        subject,
        choices,
        budget,
        seeds,
        spec=spec,
        deterministic_once=deterministic_once,
        unique=keyed,
    )
    return Plan(spec, tuple(tasks), tuple(unusable + skipped))
