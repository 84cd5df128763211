"""Declarative hyperparameters: each option states its type, range, default and meaning once.

A method's options are dataclass fields declared with :func:`param`::

    popsize: int = param(40, "particles per generation", ge=1)
    boundary: str = param("reflect", "what a particle does at a wall", choices=("reflect", "clip"))
    vmax: float | None = param(1.0, "velocity limit, fraction of the box width", gt=0)

The registry validates every declared option when the method is constructed (``ValueError``
saying which option, what it got and what it takes), lists them (``optarena methods NAME``,
``MethodInfo.options``), and the tests generate bad-option cases from the declarations.
Types come from the field's annotation (``int``, ``float``, ``bool``, ``str``, with
``| None`` for options that may be None); anything else is checked by ``check=``, a function
returning what is wrong as a phrase that follows the option's name ("must be (low, high) with
low <= high"), or None, and must refuse values of foreign types (the generated tests pass it a
bare ``object()``); ``accepts=`` then says in words what it takes. A float option takes finite
numbers only: "no limit" is spelled None.
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
_NO_CHOICE = "__no_such_choice__"


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
    accepts: str | None = None  # what the option takes, in words, where ``check`` decides

    def constraint(self) -> str:
        """What the option accepts, in words (for listings and error messages)."""
        if self.accepts is not None:
            text = self.accepts
        elif self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            kind = {"int": "an int", "float": "a finite number", "bool": "True or False"}.get(
                self.kind or "", "a string" if self.kind == "str" else "a value"
            )
            parts = []
            for op, v in ((">", self.gt), (">=", self.ge), ("<", self.lt), ("<=", self.le)):
                if v is not None:
                    parts.append(f"{op} {v:g}")
            text = kind + (" " + " and ".join(parts) if parts else "")
        if self.optional:
            text = "True, False or None" if text == "True or False" else text + " or None"
        return text

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` for this option, as a phrase that follows its name
        ("must be < 1"); None when the value is accepted."""
        if value is None:
            return None if self.optional or self.default is None else "cannot be None"
        kind = self.kind
        if kind == "bool" and not isinstance(value, bool):
            return "must be True or False"
        if kind == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            return "must be an int"
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return "must be a number"
            if not math.isfinite(value):
                return "must be a finite number"
        if kind == "str" and not isinstance(value, str):
            return "must be a string"
        if self.choices is not None and value not in self.choices:
            return "must be one of " + ", ".join(repr(c) for c in self.choices)
        if kind in ("int", "float"):
            for op, bound, ok in (
                (">", self.gt, lambda b: value > b),
                (">=", self.ge, lambda b: value >= b),
                ("<", self.lt, lambda b: value < b),
                ("<=", self.le, lambda b: value <= b),
            ):
                if bound is not None and not ok(bound):
                    return f"must be {op} {bound:g}"
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
    accepts: str | None = None,
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
        "accepts": accepts,
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
            first = _first_sentence(text)
            for name in m.group(1).split(","):
                out[name.strip()] = first
    return out


def _first_sentence(text: str) -> str:
    """``text`` up to its first ``.`` or ``;`` that ends a sentence outside brackets."""
    depth = 0
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch in ".;" and depth <= 0 and (i + 1 == len(text) or text[i + 1] == " "):
            return text[:i]
    return text


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
                accepts=spec.get("accepts"),
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
            accepts = p.constraint()
            takes = "" if wrong == f"must be {accepts}" else f"; it takes {accepts}"
            meaning = f". {p.name}: {p.doc}" if p.doc else ""
            raise ValueError(
                f"{p.name}={value!r} is not accepted by {owner}: {p.name} {wrong}{takes}{meaning}"
            )


def bad_values(p: Param) -> list[Any]:
    """Values the declaration of ``p`` refuses (for the generated bad-option tests)."""
    bad: list[Any] = []
    if p.kind in ("int", "float"):
        bad += ["1", True]  # a string or a bool where a number belongs
        bad += [1.5] if p.kind == "int" else [math.nan, math.inf]
        for value in (p.gt, p.lt, None if p.ge is None else p.ge - 1):
            if value is not None:
                bad.append(value)
        if p.le is not None:
            bad.append(p.le + 1)
    elif p.kind == "bool":
        bad += ["yes", 1]
    elif p.kind == "str":
        bad.append(3)
    elif p.check is not None:
        bad.append(object())  # no option takes a bare object
    if p.choices is not None:
        bad.append(_NO_CHOICE)
    if not p.optional:
        bad.append(None)
    return bad
