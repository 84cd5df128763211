"""Spaces as plain, JSON-able dicts, so a spec file or a result store can hold them.

The form (version 1)::

    {"version": 1, "params": {
        "lr":  {"type": "real", "lo": 0.0001, "hi": 0.1, "log": true},
        "width": {"type": "int", "lo": 8, "hi": 256, "log": true},
        "act": {"type": "choice", "options": ["relu", "tanh"], "ordered": false},
        "opt": {"type": "choice", "options": ["adam", "sgd"], "ordered": false,
                "branches": [{"beta1": {...}}, {"momentum": {...}}]},
        "epochs": {"type": "fixed", "value": 10}}}

Option and fixed values must be JSON values that come back as they went in: None, bool, int,
finite float, str, lists of them and dicts with string keys (a tuple would come back a list,
so it is refused with the others).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .params import Choice, Fixed, Int, Param, Real

if TYPE_CHECKING:
    from .space import Space

__all__ = ["space_from_dict", "space_to_dict"]

VERSION = 1


def _json_value(value: Any, where: str) -> Any:
    """``value`` if JSON holds it exactly, else TypeError naming where it is."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{where}: {value!r} cannot be written to JSON (not finite)")
        return value
    if isinstance(value, list):
        return [_json_value(v, where) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(v, where) for k, v in value.items()}
    if isinstance(value, tuple):
        raise TypeError(
            f"{where}: the tuple {value!r} would come back from JSON as a list; write it as "
            f"the list {_as_lists(value)!r} (the objective then gets a list: tuple(...) there if "
            "it needs one), or name it, e.g. Choice(['a', 'b']) mapped to the value in the "
            "objective"
        )
    raise TypeError(
        f"{where}: {value!r} ({type(value).__name__}) cannot be written to JSON and read back "
        "as the same value; JSON holds None, bool, int, float, str, lists and dicts with "
        "string keys (use a name and map it to the object in the objective)"
    )


def _as_lists(value: Any) -> Any:
    """``value`` with its tuples written as lists (the form JSON gives back)."""
    if isinstance(value, tuple | list):
        return [_as_lists(v) for v in value]
    return value


def _param_to_dict(name: str, p: Param) -> dict[str, Any]:
    if isinstance(p, Real | Int):
        return {"type": type(p).__name__.lower(), "lo": p.lo, "hi": p.hi, "log": p.log}
    if isinstance(p, Fixed):
        return {"type": "fixed", "value": _json_value(p.value, f"fixed value {name!r}")}
    out: dict[str, Any] = {
        "type": "choice",
        "options": [_json_value(o, f"option of {name!r}") for o in p.options],
        "ordered": p.ordered,
    }
    if p.branches is not None:
        out["branches"] = [space_to_dict(b)["params"] for b in p.branches]
    return out


def space_to_dict(space: Space) -> dict[str, Any]:
    """``space`` as a JSON-able dict (see the module doc)."""
    return {
        "version": VERSION,
        "params": {name: _param_to_dict(name, p) for name, p in space.params.items()},
    }


_KEYS = {
    "real": {"type", "lo", "hi", "log"},
    "int": {"type", "lo", "hi", "log"},
    "fixed": {"type", "value"},
    "choice": {"type", "options", "ordered", "branches"},
}
_REQUIRED = {"real": ("lo", "hi"), "int": ("lo", "hi"), "fixed": ("value",), "choice": ("options",)}


def _params_from_dict(params: Any, where: str, under: str) -> dict[str, Param]:
    """The parameters of a ``params`` dict (``where``: what it is, for errors); ``under``: the
    option and parameter a branch hangs from (empty at the top), to name nested ones."""
    if not isinstance(params, Mapping):
        raise ValueError(
            f"space dict: {where} must be a dict of parameters (name -> parameter dict), got "
            f"{type(params).__name__} {params!r}"
        )
    return {name: _param_from_dict(d, f"{name!r}{under}") for name, d in params.items()}


def _param_from_dict(d: Any, where: str) -> Param:
    """One parameter from its dict; every error names it (``where``) and what is wrong."""
    kind = d.get("type") if isinstance(d, Mapping) else None
    if not isinstance(kind, str) or kind not in _KEYS:
        got = f"'type' {kind!r}" if isinstance(d, Mapping) else f"{type(d).__name__} {d!r}"
        raise ValueError(
            f"space dict: the parameter {where} must be a dict with 'type' one of "
            f"{sorted(_KEYS)}, got {got}"
        )
    unknown = sorted(set(d) - _KEYS[kind])
    if unknown:
        raise ValueError(f"space dict: unknown key(s) {unknown} for the {kind} {where}")
    missing = [k for k in _REQUIRED[kind] if k not in d]
    if missing:
        raise ValueError(
            f"space dict: the {kind} {where} is missing {' and '.join(map(repr, missing))} "
            f"(it needs {' and '.join(map(repr, _REQUIRED[kind]))})"
        )
    for flag in ("log", "ordered"):
        if flag in d and not isinstance(d[flag], bool):
            raise ValueError(f"space dict: {flag!r} of the {kind} {where} must be true or false")
    if kind == "choice":
        return _choice_from_dict(d, where)
    with _named(kind, where):
        if kind == "fixed":
            return Fixed(d["value"])
        return (Real if kind == "real" else Int)(d["lo"], d["hi"], log=d.get("log", False))


@contextmanager
def _named(kind: str, where: str) -> Iterator[None]:
    """A parameter's own check (``Real(...)``, ``Choice(...)``) failing, named in the error."""
    try:
        yield
    except (TypeError, ValueError) as e:
        raise type(e)(f"space dict: the {kind} {where}: {e}") from None


def _choice_from_dict(d: Mapping[str, Any], where: str) -> Choice:
    options, branches, ordered = d["options"], d.get("branches"), d.get("ordered", False)
    with _named("choice", where):
        if not isinstance(options, list):
            raise ValueError(f"'options' must be a list, got {options!r}")
        if branches is None:
            return Choice(options, ordered=ordered)
        if not isinstance(branches, list) or len(branches) != len(options):
            raise ValueError(
                f"'branches' must be a list of one dict of parameters per option "
                f"({len(options)}), got {branches!r}"
            )
    from .space import Space

    subs = [
        Space(_params_from_dict(b, f"the branch of option {o!r} of {where}",
                                f" under option {o!r} of {where}"))
        for o, b in zip(options, branches, strict=True)
    ]  # fmt: skip
    with _named("choice", where):
        try:
            table = dict(zip(options, subs, strict=True))
        except TypeError:  # an unhashable option: the dict form never makes one
            raise ValueError(
                f"the options of a conditional choice name its branches: each must be a str, "
                f"number, bool or None, got {options!r}"
            ) from None
        if len(table) != len(options):
            raise ValueError("the options of a conditional choice must be distinct")
        return Choice(table, ordered=ordered)


def space_from_dict(data: Mapping[str, Any]) -> Space:
    """The space a :func:`space_to_dict` dict describes; ValueError or TypeError names what is
    wrong and where (the parameter, nested ones by the option they hang from)."""
    from .space import Space

    if not isinstance(data, Mapping):
        raise ValueError(
            f"a space dict must be a dict with 'version' and 'params', got {type(data).__name__}"
        )
    unknown = sorted(set(data) - {"version", "params"})
    if unknown:
        raise ValueError(f"space dict: unknown key(s) {unknown}; expected 'version' and 'params'")
    version = data.get("version")
    if "version" not in data:
        raise ValueError(f"space dict: no 'version' key (this optarena reads version {VERSION})")
    if isinstance(version, bool) or version != VERSION:
        raise ValueError(
            f"space dict: version {version!r} is not {VERSION}, the version this optarena reads"
        )
    if "params" not in data:
        raise ValueError("space dict: no 'params' key (the dict of parameters)")
    return Space(_params_from_dict(data["params"], "'params'", ""))
