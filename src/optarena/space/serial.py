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
from collections.abc import Mapping
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
        raise TypeError(f"{where}: the tuple {value!r} would come back from JSON as a list")
    raise TypeError(
        f"{where}: {value!r} ({type(value).__name__}) cannot be written to JSON and read back "
        "as the same value; JSON holds None, bool, int, float, str, lists and dicts with "
        "string keys (use a name and map it to the object in the objective)"
    )


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


def _param_from_dict(name: str, d: Any) -> Any:
    if not isinstance(d, Mapping) or d.get("type") not in _KEYS:
        raise ValueError(
            f"space dict: {name!r} must be a dict with 'type' one of {sorted(_KEYS)}, got {d!r}"
        )
    kind = d["type"]
    unknown = sorted(set(d) - _KEYS[kind])
    if unknown:
        raise ValueError(f"space dict: unknown key(s) {unknown} for the {kind} {name!r}")
    if kind == "real":
        return Real(d["lo"], d["hi"], log=d.get("log", False))
    if kind == "int":
        return Int(d["lo"], d["hi"], log=d.get("log", False))
    if kind == "fixed":
        return Fixed(d["value"])
    options = d["options"]
    if not isinstance(options, list):
        raise ValueError(f"space dict: the options of {name!r} must be a list, got {options!r}")
    branches = d.get("branches")
    if branches is None:
        return Choice(options, ordered=d.get("ordered", False))
    if not isinstance(branches, list) or len(branches) != len(options):
        raise ValueError(f"space dict: {name!r} needs one branch per option")
    subs = [space_from_dict({"version": VERSION, "params": b}) for b in branches]
    try:
        table = dict(zip(options, subs, strict=True))
    except TypeError:  # an unhashable option: the dict form never makes one
        table = {}
    if len(table) != len(options):
        raise ValueError(f"space dict: the options of the conditional {name!r} must be distinct")
    return Choice(table, ordered=d.get("ordered", False))


def space_from_dict(data: Mapping[str, Any]) -> Space:
    """The space a :func:`space_to_dict` dict describes; ValueError names what is wrong."""
    from .space import Space

    if not isinstance(data, Mapping):
        raise ValueError(f"a space dict must be a dict, got {type(data).__name__}")
    unknown = sorted(set(data) - {"version", "params"})
    if unknown:
        raise ValueError(f"space dict: unknown key(s) {unknown}; expected 'version' and 'params'")
    if data.get("version") != VERSION:
        raise ValueError(f"space dict: version {data.get('version')!r} is not {VERSION}")
    params = data.get("params")
    if not isinstance(params, Mapping):
        raise ValueError("space dict: 'params' must be a dict of parameters")
    return Space({name: _param_from_dict(name, d) for name, d in params.items()})
