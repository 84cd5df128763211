"""Benchmark specs: problems x methods (with options) x seeds x budget, checked before running.

A :class:`Spec` is built in Python or read from TOML; :meth:`Spec.plan` validates every name,
option and budget up front (a bad spec fails before the first evaluation) and expands it into
:class:`Task` objects, each with a deterministic key that the store uses to resume.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..budget import Budget
from ..methods import MethodInfo, method_infos, resolve_method
from ..problems import Problem
from ..problems import get as get_problem

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
    "inapplicable_reason",
    "load_spec",
    "method_label",
    "parse_budget",
    "parse_seeds",
    "resolve_entry",
    "uses_bounds",
]

BoundsPolicy = Literal["auto", "always", "never"]
_POLICIES = ("auto", "always", "never")
#: A method entry with this name stands for every registered method not listed elsewhere.
ALL_METHODS = "*"


class SpecError(ValueError):
    """The spec is invalid; the message says where and what to change."""


# -- small shared helpers (also used by compare and the CLI) -----------------------------------
def canonical_json(obj: Any, where: str = "value") -> str:
    """Sorted, compact JSON: the stable text that keys and the store use."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise SpecError(
            f"{where} must hold only numbers, strings, booleans, lists and tables so runs can "
            f"be stored and keyed ({e})"
        ) from e


def _is_dtype_key(key: str) -> bool:
    return key == "dtype" or key.endswith("_dtype")


def encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Problem parameters as JSON types (torch dtypes become strings such as ``"float32"``)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        out[k] = str(v).removeprefix("torch.") if isinstance(v, torch.dtype) else v
    return out


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Problem parameters for the factory (``dtype = "float64"`` becomes ``torch.float64``)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if _is_dtype_key(k) and isinstance(v, str):
            dt = getattr(torch, v.removeprefix("torch."), None)
            if not isinstance(dt, torch.dtype):
                raise SpecError(f"parameter {k} = {v!r} is not a torch dtype (e.g. 'float64')")
            v = dt
        out[k] = v
    return out


def budget_to_dict(budget: Budget) -> dict[str, Any]:
    """The limits of a Budget as a plain dict (None for no limit)."""
    return {
        "evals": budget.evals,
        "grad_evals": budget.grad_evals,
        "seconds": budget.seconds,
        "target": budget.target,
    }


def parse_budget(value: Any, where: str = "budget") -> Budget:
    """A Budget from an int (evaluations), a table of limits or a Budget."""
    if isinstance(value, Budget):
        budget = value
    elif isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise SpecError(f"{where} must be a positive number of evaluations, got {value}")
        budget = Budget(evals=value)
    elif isinstance(value, Mapping):
        allowed = {"evals", "grad_evals", "seconds", "target"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        try:
            budget = Budget(**dict(value))
        except (TypeError, ValueError) as e:
            raise SpecError(f"{where}: {e}") from e
    else:
        raise SpecError(
            f"{where} must be a number of evaluations or a table such as "
            f"{{evals = 2000, seconds = 60}}, got {value!r}"
        )
    if budget.unlimited:
        raise SpecError(f"{where} sets no limit; give evals, grad_evals or seconds")
    return budget


def parse_seeds(value: Any, where: str = "seeds") -> tuple[int, ...]:
    """Seeds from a count ``n`` (seeds 0..n-1) or a list of distinct non-negative ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise SpecError(f"{where} must be a positive count or a list of seeds, got {value}")
        return tuple(range(value))
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        seeds = tuple(value)
        bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
        if not seeds or bad:
            raise SpecError(f"{where} must be non-negative ints, got {list(seeds)}")
        if len(set(seeds)) != len(seeds):
            raise SpecError(f"{where} has repeated seeds: {list(seeds)}")
        return seeds
    raise SpecError(f"{where} must be a count (5) or a list of ints ([0, 1, 2]), got {value!r}")


def method_label(name: str, options: Mapping[str, Any]) -> str:
    """Default label of a method entry: its name, with its options when there are any."""
    if not options:
        return name
    inner = ",".join(f"{k}={options[k]!r}" for k in sorted(options))
    return f"{name}({inner})"


def uses_bounds(info: MethodInfo, policy: str) -> bool:
    """Whether a run gets the problem's box: always, never, or (auto) for global searches."""
    if policy == "always":
        return True
    if policy == "never":
        return False
    return info.is_global or info.requires_bounds


def inapplicable_reason(
    info: MethodInfo,
    *,
    differentiable: bool,
    has_box: bool,
    constrained: bool,
    problem: str,
    policy: str = "auto",
) -> str | None:
    """Why ``info`` cannot run on the problem (None when it can)."""
    if info.needs_grad and not differentiable:
        return f"needs a gradient and {problem} is not differentiable"
    if uses_bounds(info, policy) and not has_box:
        return f"needs box bounds and {problem} has none"
    if constrained and not info.supports_constraints:
        return f"cannot handle the constraints of {problem}"
    return None


# -- the spec --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProblemEntry:
    """A problem by registered name, with factory parameters and an optional own budget."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    budget: Budget | int | None = None


@dataclass(frozen=True)
class MethodEntry:
    """A method by registered name (or ``"*"``), with options, a label and a bounds policy.

    ``bounds``: ``"auto"`` gives the problem's box to global methods and to methods that need
    one; ``"always"`` to every run; ``"never"`` to none.
    """

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    label: str | None = None
    bounds: BoundsPolicy = "auto"


@dataclass(frozen=True)
class Task:
    """One run: everything that determines its numbers, plus its key and label.

    ``params`` and ``options`` are JSON types (they come from the canonical JSON), so what
    the store records is exactly what ran.
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

    def build_problem(self) -> Problem:
        """The problem instance of this run."""
        return get_problem(self.problem, **decode_params(self.params))


@dataclass(frozen=True)
class Skipped:
    """A problem/method pair that cannot run, with the reason."""

    problem: str
    label: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """The validated runs of a spec, in a stable order, and the pairs that were skipped."""

    spec: str
    tasks: tuple[Task, ...]
    skipped: tuple[Skipped, ...]

    @property
    def keys(self) -> list[str]:
        """Keys of every planned run."""
        return [t.key for t in self.tasks]


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
        methods, skipped = self._expand_methods()
        tasks: list[Task] = []
        seen: dict[str, str] = {}
        for i, pe in enumerate(self.problems):
            where = f"problems[{i}] ({pe.name})"
            problem, given, full_json = _build_problem(pe, where)
            if pe.budget is not None:
                budget = parse_budget(pe.budget, f"{where}: budget")
            elif default_budget is not None:
                budget = default_budget
            else:
                raise SpecError(f"{where} has no budget and the spec sets none")
            for c in methods:
                info = c.info
                reason = inapplicable_reason(
                    info,
                    differentiable=problem.differentiable,
                    has_box=problem.bounds is not None,
                    constrained=bool(problem.constraints),
                    problem=pe.name,
                    policy=c.bounds,
                )
                if reason is not None:
                    skipped.append(Skipped(pe.name, c.label, reason))
                    continue
                run_seeds = seeds[:1] if self.deterministic_once and not info.stochastic else seeds
                bounds = uses_bounds(info, c.bounds)
                for seed in run_seeds:
                    key = run_key(
                        pe.name, full_json, c.method, c.options_json, bounds, seed, budget
                    )
                    if key in seen:
                        raise SpecError(
                            f"{c.label!r} and {seen[key]!r} on {pe.name} are the same runs "
                            "(same method, options and problem); remove one"
                        )
                    seen[key] = c.label
                    tasks.append(
                        Task(
                            key=key,
                            spec=self.name,
                            problem=pe.name,
                            params=given,
                            problem_params=full_json,
                            method=c.method,
                            label=c.label,
                            options=c.options,
                            options_json=c.options_json,
                            bounds=bounds,
                            seed=seed,
                            budget=budget,
                            f_opt=problem.f_opt,
                        )
                    )
        return Plan(self.name, tuple(tasks), tuple(skipped))

    def _expand_methods(self) -> tuple[list[_Choice], list[Skipped]]:
        named = {_canonical(e.name) for e in self.methods if e.name != ALL_METHODS}
        out: list[_Choice] = []
        unusable: list[Skipped] = []
        labels: set[str] = set()
        for i, entry in enumerate(self.methods):
            where = f"methods[{i}] ({entry.name})"
            if entry.bounds not in _POLICIES:
                raise SpecError(f"{where}: bounds must be one of {_POLICIES}, got {entry.bounds!r}")
            if entry.name == ALL_METHODS:
                if entry.options or entry.label:
                    raise SpecError(
                        f"{where}: the '*' entry (every other method) takes no options or "
                        "label; list a method by name to give it options"
                    )
                choices = []
                for info in method_infos():
                    if info.name in named or (
                        entry.bounds == "always" and not info.supports_bounds
                    ):
                        continue
                    try:
                        choices.append(
                            _check_method(MethodEntry(info.name, {}, None, entry.bounds), where)
                        )
                    except SpecError as e:  # e.g. a composite that needs its parts named
                        unusable.append(Skipped("*", info.name, f"not run with defaults: {e}"))
            else:
                choices = [_check_method(entry, where)]
            for c in choices:
                if c.label in labels:
                    raise SpecError(f"{where}: label {c.label!r} is used twice; set label=")
                labels.add(c.label)
                out.append(c)
        return out, unusable


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


def _build_problem(pe: ProblemEntry, where: str) -> tuple[Problem, dict[str, Any], str]:
    if not isinstance(pe.params, Mapping):
        raise SpecError(f"{where}: params must be a mapping")
    given = json.loads(canonical_json(encode_params(pe.params), f"{where}: params"))
    try:
        problem = get_problem(pe.name, **decode_params(given))
    except SpecError as e:
        raise SpecError(f"{where}: {e}") from e
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}") from e
    full = {**encode_params(problem.params), **given}
    return problem, given, canonical_json(full, f"{where}: params")


@dataclass(frozen=True)
class _Choice:
    """A validated method entry: label, method string, capabilities, options."""

    label: str
    method: str
    info: MethodInfo
    options: dict[str, Any]
    options_json: str
    bounds: str


def _canonical(name: str) -> str:
    return ">".join(p.strip().lower().replace("-", "_") for p in name.split(">"))


def resolve_entry(name: str, options: Mapping[str, Any]) -> tuple[str, MethodInfo, str]:
    """The method string to run, its capabilities and its default label, for a name (or a
    chain ``"a>b"``) and options. Raises TypeError / ValueError for an unknown method or
    options it does not take.
    """
    inst = resolve_method(name, dict(options))
    info: MethodInfo = inst.info
    method = _canonical(name) if ">" in name else info.name
    base = str(getattr(inst, "label", method))  # composites name their parts
    return method, info, method_label(base, {} if ">" in base else options)


def _check_method(entry: MethodEntry, where: str) -> _Choice:
    if not isinstance(entry.name, str):
        raise SpecError(f"{where}: the method name must be a string, got {entry.name!r}")
    if not isinstance(entry.options, Mapping):
        raise SpecError(f"{where}: options must be a mapping")
    options_json = canonical_json(dict(entry.options), f"{where}: options")
    options = json.loads(options_json)
    try:
        method, info, default_label = resolve_entry(entry.name, options)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}") from e
    if entry.bounds == "always" and not info.supports_bounds:
        raise SpecError(f"{where}: method {method!r} does not support bounds; drop bounds")
    if entry.bounds == "never" and info.requires_bounds:
        raise SpecError(f"{where}: method {method!r} needs bounds; drop bounds = 'never'")
    label = entry.label or default_label
    return _Choice(label, method, info, options, options_json, entry.bounds)
