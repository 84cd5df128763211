"""Which methods an experiment runs: method entries validated, ``"*"`` expanded, labels given.

A :class:`MethodEntry` names a registered method (or a chain ``"a>b"``) with options, a label
and a bounds policy; :func:`choose_methods` checks each one by building the method (unknown
methods and options fail here, before any run) and gives every choice a unique label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..methods import MethodInfo, method_infos, resolve_method
from .inputs import SpecError, canonical_json

__all__ = [
    "ALL_METHODS",
    "BOUNDS_POLICIES",
    "BoundsPolicy",
    "MethodChoice",
    "MethodEntry",
    "Skipped",
    "choose_methods",
    "method_label",
    "resolve_entry",
]

BoundsPolicy = Literal["auto", "always", "never"]
BOUNDS_POLICIES = ("auto", "always", "never")
#: A method entry with this name stands for every registered method not listed elsewhere.
ALL_METHODS = "*"


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
class Skipped:
    """A problem/method pair that cannot run, with the reason."""

    problem: str
    label: str
    reason: str


@dataclass(frozen=True)
class MethodChoice:
    """A validated method entry: label, method string, capabilities, options, bounds policy."""

    label: str
    method: str
    info: MethodInfo
    options: Mapping[str, Any]
    options_json: str
    bounds: BoundsPolicy


def method_label(name: str, options: Mapping[str, Any]) -> str:
    """Default label of a method entry: its name, with its options when there are any."""
    if not options:
        return name
    inner = ",".join(f"{k}={options[k]!r}" for k in sorted(options))
    return f"{name}({inner})"


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


def _options_text(options: Mapping[str, Any], where: str, keyed: bool) -> tuple[Any, str]:
    """(options, their canonical JSON): JSON types when ``keyed``, else as given."""
    if keyed:
        text = canonical_json(dict(options), f"{where}: options")
        return json.loads(text), text
    return dict(options), json.dumps(dict(options), sort_keys=True, default=repr)


def _choice(entry: MethodEntry, where: str, keyed: bool) -> MethodChoice:
    if not isinstance(entry.name, str):
        raise SpecError(f"{where}: the method name must be a string, got {entry.name!r}")
    if not isinstance(entry.options, Mapping):
        raise SpecError(f"{where}: options must be a mapping")
    options, options_json = _options_text(entry.options, where, keyed)
    try:
        method, info, default_label = resolve_entry(entry.name, options)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{where}: {e}" if keyed else str(e)) from e
    if entry.bounds == "always" and not info.supports_bounds:
        raise SpecError(f"{where}: method {method!r} does not support bounds; drop bounds")
    if entry.bounds == "never" and info.requires_bounds:
        raise SpecError(f"{where}: method {method!r} needs bounds; drop bounds = 'never'")
    label = entry.label or default_label
    return MethodChoice(label, method, info, options, options_json, entry.bounds)


def choose_methods(
    entries: Sequence[MethodEntry], *, keyed: bool = True
) -> tuple[list[MethodChoice], list[Skipped]]:
    """Validate method entries and expand ``"*"``; returns the choices and the registered
    methods ``"*"`` could not run with default options. ``keyed`` (a spec's entries, whose
    runs are stored and keyed): options must be JSON types and errors name the entry as
    ``methods[i]``. Raises SpecError.
    """
    named = {_canonical(e.name) for e in entries if e.name != ALL_METHODS}
    out: list[MethodChoice] = []
    unusable: list[Skipped] = []
    labels: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"methods[{i}] ({entry.name})"
        if entry.bounds not in BOUNDS_POLICIES:
            raise SpecError(
                f"{where}: bounds must be one of {BOUNDS_POLICIES}, got {entry.bounds!r}"
            )
        if entry.name == ALL_METHODS:
            if entry.options or entry.label:
                raise SpecError(
                    f"{where}: the '*' entry (every other method) takes no options or "
                    "label; list a method by name to give it options"
                )
            choices = []
            for info in method_infos():
                if info.name in named or (entry.bounds == "always" and not info.supports_bounds):
                    continue
                try:
                    choices.append(
                        _choice(MethodEntry(info.name, {}, None, entry.bounds), where, keyed)
                    )
                except SpecError as e:  # e.g. a composite that needs its parts named
                    unusable.append(Skipped("*", info.name, f"not run with defaults: {e}"))
        else:
            choices = [_choice(entry, where, keyed)]
        for c in choices:
            if c.label in labels:
                raise SpecError(
                    f"{where}: label {c.label!r} is used twice; give one another label "
                    "(label= in a spec, or a {label: method} mapping)"
                )
            labels.add(c.label)
            out.append(c)
    return out, unusable
