"""A checkpoint as plain data and back: what ``torch.load`` reads with its default
``weights_only=True`` (tensors, numbers, strings, lists, tuples, dicts), so a run can be
resumed from a file without unpickling code. A run state's dataclasses are dicts that name
their class (``"__class__": "module:QualName"``), made again from optarena's own modules only.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["from_plain", "to_plain"]

CLASS = "__class__"


def to_plain(obj: Any, named: bool = True) -> Any:
    """``obj`` with dataclasses as dicts of their attributes (``named``: with their class
    under ``"__class__"``), numpy arrays as tensors and numpy numbers as Python numbers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        attrs = getattr(obj, "__dict__", None)
        if attrs is None:  # a slots class: its fields
            attrs = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        out = {k: to_plain(v, named) for k, v in attrs.items()}
        return {CLASS: f"{type(obj).__module__}:{type(obj).__qualname__}", **out} if named else out
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Mapping):
        return {k: to_plain(v, named) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(to_plain(v, named) for v in obj)
    if isinstance(obj, list):
        return [to_plain(v, named) for v in obj]
    return obj


def from_plain(data: Any) -> Any:
    """:func:`to_plain`'s data with its dataclasses made again (attributes set as saved,
    without running ``__init__``, as a copy makes them)."""
    if isinstance(data, Mapping):
        if CLASS not in data:
            return {k: from_plain(v) for k, v in data.items()}
        cls = _class(str(data[CLASS]))
        out = object.__new__(cls)
        for k, v in data.items():
            if k != CLASS:
                object.__setattr__(out, k, from_plain(v))
        return out
    if isinstance(data, tuple):
        return tuple(from_plain(v) for v in data)
    if isinstance(data, list):
        return [from_plain(v) for v in data]
    return data


def _class(name: str) -> type:
    """The dataclass ``module:QualName`` of one of optarena's modules."""
    module, _, qualname = name.partition(":")
    if not (module == "optarena" or module.startswith("optarena.")):
        raise ValueError(f"a checkpoint names class {name!r}, outside optarena: refused")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        raise ValueError(f"a checkpoint names {name!r}, which is not a run-state class")
    return obj
