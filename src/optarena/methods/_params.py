"""Declarative hyperparameters: each option states its type, range, default and meaning once.

A method's options are dataclass fields declared with :func:`param`::

    popsize: int = param(40, "particles per generation", ge=1)
    boundary: str = param("reflect", "what a particle does at a wall", choices=("reflect", "clip"))
    vmax: float | None = param(1.0, "velocity limit, fraction of the box width", gt=0)

The registry validates every declared option when the method is constructed (``ValueError``
saying which option, what it got and what it takes), lists them (``optarena methods NAME``,
``MethodInfo.options``), and the tests generate bad-option cases from the declarations.
Types come from the field's annotation (``int``, ``float``, ``bool``, ``str``, with
``| None`` for options that may be None); anything else is checked by ``check=``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Param", "bad_values", "declared_params", "param", "validate_params"]

_KEY = "optarena.param"
_SIMPLE = {"int", "float", "bool", "str"}


@dataclass(frozen=True)
class Param:
    """One declared option: what it is, what it accepts and what it defaults to."""

    name: str
    doc: str
    default: Any
    kind: str | None = None  # "int", "float", "bool", "str" or None (checked by ``check``)
    optional: bool = False  # None is accepted
    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None
    choices: tuple[Any, ...] | None = None
    check: Callable[[Any], str | None] | None = None  # returns what is wrong, or None

    def constraint(self) -> str:
        """What the option accepts, in words (for listings and error messages)."""
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            kind = {"int": "an int", "float": "a number", "bool": "True or False"}.get(
                self.kind or "", "a string" if self.kind == "str" else "a value"
            )
            parts = []
            for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
                if v is not None:
                    parts.append(f"{op} {v:g}")
            text = kind + (" " + " and ".join(parts) if parts else "")
        return text + (" or None" if self.optional else "")

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this option (None when it is accepted)."""
        if value is None:
            return None if self.optional or self.default is None else "None is not accepted"
        if self.choices is not None:
            return None if value in self.choices else "not a choice"
        kind = self.kind
        if kind == "bool" and not isinstance(value, bool):
            return "not True or False"
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            return "not an int"
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "not a number"
            if math.isnan(value):
                return "NaN"
        if kind == "str" and not isinstance(value, str):
            return "not a string"
        if kind in ("int", "float"):
            if self.gt is not None and not value > self.gt:
                return "out of range"
            if self.ge is not None and not value >= self.ge:
                return "out of range"
            if self.lt is not None and not value < self.lt:
                return "out of range"
            if self.le is not None and not value <= self.le:
                return "out of range"
        if self.check is not None:
            return self.check(value)
        return None

    def as_dict(self) -> dict[str, Any]:
        """The option as plain data (for tables and JSON)."""
        return {
            "name": self.name,
            "default": self.default,
            "accepts": self.constraint(),
            "doc": self.doc,
        }


def param(
    default: Any,
    doc: str = "",
    *,
    gt: float | None = None,
    ge: float | None = None,
    lt: float | None = None,
    le: float | None = None,
    choices: Sequence[Any] | None = None,
    check: Callable[[Any], str | None] | None = None,
) -> Any:
    """A dataclass field declaring one option (``doc``: its one-line meaning; when empty, the
    first sentence of the option's entry under ``Args:`` in the class docstring)."""
    spec = {
        "doc": doc,
        "gt": gt,
        "ge": ge,
        "lt": lt,
        "le": le,
        "choices": None if choices is None else tuple(choices),
        "check": check,
    }
    if isinstance(default, list | dict | set):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata={_KEY: spec})
    return dataclasses.field(default=default, metadata={_KEY: spec})


def _annotation_kind(annotation: Any) -> tuple[str | None, bool]:
    """(simple kind or None, None accepted) from a field annotation (string or type)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    parts = [p.strip() for p in text.split("|")]
    optional = "None" in parts
    rest = [p for p in parts if p != "None"]
    if len(rest) == 1 and rest[0] in _SIMPLE:
        return rest[0], optional
    if sorted(rest) == ["float", "int"]:
        return "float", optional
    return None, optional


def _docstring_args(cls: type) -> dict[str, str]:
    """First sentence of each ``name: text`` entry under ``Args:`` in the class docstrings."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        doc = klass.__dict__.get("__doc__") or ""
        if "Args:" not in doc:
            continue
        body = doc.split("Args:", 1)[1]
        entries = re.split(r"\n\s{4,8}(?=[A-Za-z_][\w, ]*:\s)", "\n" + body)
        for entry in entries:
            m = re.match(r"\s*([A-Za-z_][\w, ]*):\s+(.*)", entry, re.S)
            if not m:
                continue
            text = " ".join(m.group(2).split())
            first = re.split(r"(?<=[.;])\s", text, maxsplit=1)[0].rstrip(".;")
            for name in m.group(1).split(","):
                out[name.strip()] = first
    return out


def declared_params(cls: type) -> tuple[Param, ...]:
    """The options a method class declares with :func:`param`, in field order."""
    cached = cls.__dict__.get("_declared_params")
    if cached is not None:
        return cached
    docs = _docstring_args(cls)
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        spec = f.metadata.get(_KEY)
        if spec is None or not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        kind, optional = _annotation_kind(f.type)
        out.append(
            Param(
                name=f.name,
                doc=spec["doc"] or docs.get(f.name, ""),
                default=default,
                kind=kind,
                optional=optional or default is None,
                gt=spec["gt"],
                ge=spec["ge"],
                lt=spec["lt"],
                le=spec["le"],
                choices=spec["choices"],
                check=spec["check"],
            )
        )
    result = tuple(out)
    cls._declared_params = result  # type: ignore[attr-defined]
    return result


def validate_params(method: Any) -> None:
    """ValueError naming the first declared option of ``method`` whose value is not accepted."""
    for p in declared_params(type(method)):
        value = getattr(method, p.name)
        wrong = p.problem(value)
        if wrong is not None:
            name = getattr(type(method), "info", None)
            owner = f"method {name.name!r}" if name is not None else type(method).__name__
            raise ValueError(
                f"{p.name}={value!r} is not accepted by {owner} ({wrong}): {p.name} must be "
                f"{p.constraint()} ({p.doc})"
            )


def bad_values(p: Param) -> list[Any]:
    """Values the declaration of ``p`` refuses (for the generated bad-option tests)."""
    bad: list[Any] = []
    if p.choices is not None:
        bad.append("__no_such_choice__")
        return bad
    if p.kind in ("int", "float"):
        bad.append("1")  # a string where a number belongs
        if p.kind == "float":
            bad.append(math.nan)
        if p.kind == "int":
            bad.append(1.5)
        if p.gt is not None:
            bad.append(p.gt)
        if p.ge is not None:
            bad.append(p.ge - 1)
        if p.lt is not None:
            bad.append(p.lt)
        if p.le is not None:
            bad.append(p.le + 1)
    elif p.kind == "bool":
        bad.append("yes")
    elif p.kind == "str":
        bad.append(3)
    if not p.optional:
        bad.append(None)
    return bad
