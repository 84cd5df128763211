"""Benchmark specs: problems x methods (with options) x seeds x budget, from TOML or Python.

:meth:`Spec.plan` validates every name, option and budget up front (a bad spec fails before
the first evaluation) and expands it, through :mod:`optarena.bench.plan`, into
:class:`Task` objects, each with a deterministic key that the store uses to resume.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..budget import Budget
from ..problems import Problem
from ..problems import get as get_problem
from .inputs import (
    SpecError,
    budget_to_dict,
    canonical_json,
    decode_params,
    encode_params,
    parse_budget,
    parse_seeds,
)
from .plan import (
    ALL_METHODS,
    BoundsPolicy,
    MethodEntry,
    Plan,
    Skipped,
    Subject,
    Task,
    choose_methods,
    method_label,
    plan_runs,
    resolve_entry,
    uses_bounds,
)

__all__ = [
    "ALL_METHODS",
    "BoundsPolicy",
    "MethodEntry",
    "Plan",
    "ProblemEntry",
    "Skipped",
    "Spec",
    "SpecError",
    "Task",
    "budget_to_dict",
    "canonical_json",
    "decode_params",
    "encode_params",
    "load_spec",
    "method_label",
    "parse_budget",
    "parse_seeds",
    "resolve_entry",
    "uses_bounds",
]


# -- the spec --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProblemEntry:
    """A problem by registered name, with factory parameters and an optional own budget."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget | int | None = None


@dataclass(frozen=True)
class Spec:
    """Problems x methods x seeds under one budget (a problem may set its own).

    ``deterministic_once``: a method that is not stochastic gives the same run for every
    seed, so it is run once (with the first seed) instead of once per seed.
    """

    problems: tuple[ProblemEntry, ...]
    methods: tuple[MethodEntry, ...]
    seeds: tuple[int, ...] | int = 5
    budget: Budget | int | None = None
    name: str = "spec"
    deterministic_once: bool = True

    # -- reading -----------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> Spec:
        """A spec from the tables of a TOML file (see ``benchmarks/specs/*.toml``)."""
        allowed = {
            "name",
            "description",
            "seeds",
            "budget",
            "problems",
            "methods",
            "deterministic_once",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SpecError(f"unknown top-level key(s) {unknown}; allowed: {sorted(allowed)}")
        for req in ("problems", "methods", "budget"):
            if req not in data:
                raise SpecError(f"the spec needs `{req}`")
        problems = tuple(
            _problem_entry(p, f"problems[{i}]") for i, p in enumerate(_as_list(data["problems"]))
        )
        methods = tuple(
            _method_entry(m, f"methods[{i}]") for i, m in enumerate(_as_list(data["methods"]))
        )
        once = data.get("deterministic_once", True)
        if not isinstance(once, bool):
            raise SpecError(f"deterministic_once must be true or false, got {once!r}")
        return cls(
            problems=problems,
            methods=methods,
            seeds=parse_seeds(data.get("seeds", 5)),
            budget=parse_budget(data["budget"]),
            name=str(data.get("name") or name or "spec"),
            deterministic_once=once,
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> Spec:
        """A spec read from a TOML file; its name defaults to the file's stem."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(f"spec file {str(p)!r} does not exist") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise SpecError(f"{p}: not valid TOML: {e}") from e
        try:
            return cls.from_dict(data, name=p.stem)
        except SpecError as e:
            raise SpecError(f"{p}: {e}") from e

    # -- planning ----------------------------------------------------------------------------
    def plan(self) -> Plan:
        """Validate everything and expand into tasks; raises SpecError before any run."""
        if not self.problems:
            raise SpecError("the spec lists no problems")
        if not self.methods:
            raise SpecError("the spec lists no methods")
        seeds = parse_seeds(self.seeds)
        default_budget = None if self.budget is None else parse_budget(self.budget)
        choices, skipped = choose_methods(self.methods)
        tasks: list[Task] = []
        keys: set[str] = set()
        for i, pe in enumerate(self.problems):
            where = f"problems[{i}] ({pe.name})"
            subject = _subject(pe, where)
            if pe.budget is not None:
                budget = parse_budget(pe.budget, f"{where}: budget")
            elif default_budget is not None:
                budget = default_budget
            else:
                raise SpecError(f"{where} has no budget and the spec sets none")
            got, skip = plan_runs(
                subject,
                choices,
                budget,
                seeds,
                spec=self.name,
                deterministic_once=self.deterministic_once,
            )
            for t in got:
                if t.key in keys:
                    raise SpecError(
                        f"{where}: {t.label!r} on {pe.name} is planned twice (the same "
                        "problem and parameters are listed twice); remove one"
                    )
                keys.add(t.key)
            tasks += got
            skipped += skip
        return Plan(self.name, tuple(tasks), tuple(skipped))


def load_spec(path: str | Path) -> Spec:
    """Read a spec from a TOML file."""
    return Spec.from_toml(path)


# -- validation helpers -----------------------------------------------------------------------
def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str | Mapping):
        return [value]
    if isinstance(value, Iterable):
        return list(value)
    raise SpecError(f"expected a list of names or tables, got {value!r}")


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    if "name" not in table or not isinstance(table["name"], str):
        raise SpecError(f'{where} needs name = "..."')


def _problem_entry(value: Any, where: str) -> ProblemEntry:
    if isinstance(value, str):
        return ProblemEntry(value)
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a problem name or a table, got {value!r}")
    _check_keys(value, {"name", "params", "budget"}, where)
    params = value.get("params", {})
    if not isinstance(params, Mapping):
        raise SpecError(f"{where}: params must be a table, got {params!r}")
    budget = value.get("budget")
    return ProblemEntry(
        value["name"], dict(params), None if budget is None else parse_budget(budget, where)
    )


def _method_entry(value: Any, where: str) -> MethodEntry:
    if isinstance(value, str):
        return MethodEntry(value)
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a method name or a table, got {value!r}")
    _check_keys(value, {"name", "options", "label", "bounds"}, where)
    options = value.get("options", {})
    if not isinstance(options, Mapping):
        raise SpecError(f"{where}: options must be a table, got {options!r}")
    label = value.get("label")
    if label is not None and not (isinstance(label, str) and label.strip()):
        raise SpecError(f"{where}: label must be a non-empty string")
    return MethodEntry(value["name"], dict(options), label, value.get("bounds", "auto"))


def _subject(pe: ProblemEntry, where: str) -> Subject:
    """The problem of an entry, built to check its parameters, as the plan's Subject."""
    if not isinstance(pe.params, Mapping):
        raise SpecError(f"{where}: params must be a mapping")
    given = json.loads(canonical_json(encode_params(pe.params), f"{where}: params"))
    try:
        problem: Problem = get_problem(pe.name, **decode_params(given))
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}") from e
    full = {**encode_params(problem.params), **given}
    canonical_json(full, f"{where}: params")
    return Subject.of(problem, given)
