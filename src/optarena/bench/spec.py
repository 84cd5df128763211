"""Benchmark specs: problems x methods (with options) x seeds x budget, from TOML or Python.

:meth:`Spec.plan` validates every name, option and budget up front (a bad spec fails before
the first evaluation) and expands it, through :mod:`optarena.bench.plan`, into
:class:`Task` objects, each with a deterministic key that the store uses to resume.

A problem entry may vary parameters over a ``grid`` (``grid = { dim = [2, 5], function =
"1-24" }``: every combination, in the order written); a budget may scale with the dimension
(``budget = "1000*dim"``, also as ``evals`` in a table); ``targets`` lists the precisions on
``f - f_opt`` that tables count as solved; ``coco_output`` names a folder for COCO-format
output of the bbob runs (:mod:`optarena.bench.coco`). ``benchmarks/specs/bbob.toml`` uses
them all.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
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
    "PerDim",
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
    "read_budget",
    "resolve_entry",
    "uses_bounds",
]


# -- the spec --------------------------------------------------------------------------------
@dataclass(frozen=True)
class PerDim:
    """A budget that scales with the problem's dimension: ``"1000*dim"`` is
    ``PerDim(evals=1000)``; ``rest`` holds the other limits (seconds, ...) as written."""

    evals: int
    rest: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, dim: int, where: str = "budget") -> Budget:
        """The Budget of a problem in ``dim`` dimensions."""
        return parse_budget({**self.rest, "evals": self.evals * dim}, where)


_PER_DIM = re.compile(r"^\s*(?:(\d+)\s*\*\s*dim|dim\s*\*\s*(\d+))\s*$")


def _per_dim(text: str, where: str) -> int:
    m = _PER_DIM.match(text)
    factor = None if m is None else int(m.group(1) or m.group(2))
    if not factor:
        raise SpecError(
            f"{where}: {text!r} is not a budget; give a number of evaluations or a table such "
            'as {evals = 2000, seconds = 60}, or "N*dim" with N a positive int ("1000*dim": '
            "1000 evaluations per variable)"
        )
    return factor


def read_budget(value: Any, where: str = "budget") -> Budget | PerDim:
    """A budget as a spec writes it: an int, ``"N*dim"``, or a table whose ``evals`` may be
    ``"N*dim"``; checked now, resolved per problem when it is ``"N*dim"``."""
    if isinstance(value, PerDim):
        return value
    if isinstance(value, str):
        return PerDim(_per_dim(value, where))
    if isinstance(value, Mapping) and isinstance(value.get("evals"), str):
        rest = {k: v for k, v in value.items() if k != "evals"}
        rule = PerDim(_per_dim(value["evals"], f"{where}: evals"), rest)
        rule.resolve(1, where)  # the other limits are checked now
        return rule
    return parse_budget(value, where)


@dataclass(frozen=True)
class ProblemEntry:
    """A problem by registered name, with factory parameters and an optional own budget."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget | PerDim | int | None = None


@dataclass(frozen=True)
class Spec:
    """Problems x methods x seeds under one budget (a problem may set its own).

    ``deterministic_once``: a method that is not stochastic gives the same run for every
    seed, so it is run once (with the first seed) instead of once per seed. ``targets``:
    precisions on ``f - f_opt`` that summaries count as solved (COCO's 1e-1, 1e-3, 1e-8
    by default in the bbob tables). ``coco_output``: a folder for COCO-format output of
    the bbob runs (:mod:`optarena.bench.coco`).
    """

    problems: tuple[ProblemEntry, ...]
    methods: tuple[MethodEntry, ...]
    seeds: tuple[int, ...] | int = 5
    budget: Budget | PerDim | int | None = None
    name: str = "spec"
    deterministic_once: bool = True
    targets: tuple[float, ...] = ()
    coco_output: str | None = None

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
            "targets",
            "coco_output",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SpecError(f"unknown top-level key(s) {unknown}; allowed: {sorted(allowed)}")
        for req in ("problems", "methods", "budget"):
            if req not in data:
                raise SpecError(f"the spec needs `{req}`")
        problems = tuple(
            entry
            for i, p in enumerate(_as_list(data["problems"]))
            for entry in _problem_entries(p, f"problems[{i}]")
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
            budget=read_budget(data["budget"]),
            name=str(data.get("name") or name or "spec"),
            deterministic_once=once,
            targets=_targets(data.get("targets", ())),
            coco_output=_coco_output(data.get("coco_output")),
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
        default_budget = None if self.budget is None else read_budget(self.budget)
        targets = _targets(self.targets)
        coco = _coco_output(self.coco_output)
        choices, skipped = choose_methods(self.methods)
        tasks: list[Task] = []
        keys: set[str] = set()
        for i, pe in enumerate(self.problems):
            where = f"problems[{i}] ({pe.name})"
            subject, dim = _subject(pe, where, coco is not None)
            if pe.budget is not None:
                budget = read_budget(pe.budget, f"{where}: budget")
            elif default_budget is not None:
                budget = default_budget
            else:
                raise SpecError(f"{where} has no budget and the spec sets none")
            if isinstance(budget, PerDim):
                budget = budget.resolve(dim, f"{where}: budget")
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
            if coco is not None and pe.name == "bbob":
                got = [dataclasses.replace(t, coco=coco) for t in got]
            tasks += got
            skipped += skip
        return Plan(self.name, tuple(tasks), tuple(skipped), coco, targets)


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


def _problem_entries(value: Any, where: str) -> list[ProblemEntry]:
    """The problems of one entry: one, or (with ``grid``) one per combination of values."""
    if isinstance(value, str):
        return [ProblemEntry(value)]
    if not isinstance(value, Mapping):
        raise SpecError(f"{where} must be a problem name or a table, got {value!r}")
    _check_keys(value, {"name", "params", "budget", "grid"}, where)
    params = value.get("params", {})
    if not isinstance(params, Mapping):
        raise SpecError(f"{where}: params must be a table, got {params!r}")
    budget = value.get("budget")
    budget = None if budget is None else read_budget(budget, f"{where}: budget")
    grid = _grid(value.get("grid", {}), params, where)
    names = list(grid)
    return [
        ProblemEntry(value["name"], {**params, **dict(zip(names, combo, strict=True))}, budget)
        for combo in itertools.product(*grid.values())
    ]


_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


def _grid(grid: Any, params: Mapping[str, Any], where: str) -> dict[str, list[Any]]:
    """``grid = { dim = [2, 5], function = "1-24" }``: the values of each varied parameter."""
    if not isinstance(grid, Mapping):
        raise SpecError(f"{where}: grid must be a table of value lists, got {grid!r}")
    both = sorted(set(grid) & set(params))
    if both:
        raise SpecError(f"{where}: {both} set in both params and grid; keep one")
    out: dict[str, list[Any]] = {}
    for k, v in grid.items():
        if isinstance(v, str) and (m := _RANGE.match(v)):
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise SpecError(f"{where}: grid.{k} = {v!r} is an empty range")
            v = list(range(lo, hi + 1))
        if isinstance(v, str | Mapping) or not isinstance(v, Iterable) or not list(v):
            raise SpecError(
                f"{where}: grid.{k} must be a non-empty list ([2, 5, 10]) or an int range "
                f'("1-24"), got {v!r}'
            )
        values = list(v)
        if len({canonical_json(x, f"{where}: grid.{k}") for x in values}) != len(values):
            raise SpecError(f"{where}: grid.{k} repeats a value: {values}")
        out[k] = values
    return out


def _targets(value: Any) -> tuple[float, ...]:
    """``targets = [1e-1, 1e-3, 1e-8]``: distinct positive precisions on ``f - f_opt``."""
    vals = [value] if isinstance(value, int | float) else value
    ok = isinstance(vals, list | tuple) and all(
        isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) and t > 0
        for t in vals
    )
    if not ok or len(set(vals)) != len(vals):
        raise SpecError(
            f"targets must be distinct positive numbers, precisions on f - f_opt such as "
            f"[1e-1, 1e-3, 1e-8], got {value!r}"
        )
    return tuple(sorted((float(t) for t in vals), reverse=True))


def _coco_output(value: Any) -> str | None:
    """The COCO output folder, made absolute (workers may start elsewhere)."""
    if value is None:
        return None
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f'coco_output must be a folder name such as "coco", got {value!r}')
    return str(Path(value).expanduser().resolve())


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


def _subject(pe: ProblemEntry, where: str, coco: bool = False) -> tuple[Subject, int]:
    """The problem of an entry, built to check its parameters, as the plan's Subject, and its
    dimension; ``coco``: refuse a bbob dimension that has no COCO format."""
    if not isinstance(pe.params, Mapping):
        raise SpecError(f"{where}: params must be a mapping")
    given = json.loads(canonical_json(encode_params(pe.params), f"{where}: params"))
    try:
        problem: Problem = get_problem(pe.name, **decode_params(given))
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}") from e
    full = {**encode_params(problem.params), **given}
    canonical_json(full, f"{where}: params")
    if coco and pe.name == "bbob":
        from .coco import CocoError, check_dim

        try:
            check_dim(problem.dim, where)
        except CocoError as e:
            raise SpecError(str(e)) from None
    return Subject.of(problem, given), problem.dim
