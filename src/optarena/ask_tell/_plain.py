"""A saved study as plain data: tensors, lists, dicts, numbers and strings.

``torch.load`` reads such data with its default ``weights_only=True`` (it refuses other
classes), and a saved study does not depend on where a method's state class lives. A method's
run state (a dataclass, possibly holding others) is saved as the dict of its attributes and
rebuilt from the class of the same part of a fresh study's state: the one being restored
into, made with the same method and options.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from ..methods._checkpoint_data import to_plain

__all__ = ["plain", "rebuilt"]


def plain(obj: Any) -> Any:
    """``obj`` with dataclasses as dicts of their attributes (no class named: :func:`rebuilt`
    takes the classes from a fresh study's state), numpy arrays and numbers as tensors and
    Python numbers: a checkpoint's plain form (``methods._checkpoint_data``) without names."""
    return to_plain(obj, named=False)


def rebuilt(saved: Any, like: Any) -> Any:
    """:func:`plain`'s data back in the shape of ``like`` (a fresh state of the same method,
    or a class): a dict where ``like`` holds a dataclass, or where its class declares one
    (``sub: State | None``), becomes that class again, its attributes set as saved without
    running ``__init__`` (as a copy makes it)."""
    if dataclasses.is_dataclass(saved):  # saved by a version that kept the classes
        return saved
    cls = like if isinstance(like, type) else type(like)
    if dataclasses.is_dataclass(cls) and isinstance(saved, Mapping):
        hints = _hints(cls)
        out = object.__new__(cls)
        for k, v in saved.items():
            sub = None if isinstance(like, type) else getattr(like, k, None)
            object.__setattr__(
                out, k, rebuilt(v, _dataclass_in(hints.get(k)) if sub is None else sub)
            )
        return out
    if isinstance(like, Mapping) and isinstance(saved, Mapping):
        return {k: rebuilt(v, like.get(k)) for k, v in saved.items()}
    if isinstance(saved, list | tuple) and isinstance(like, list | tuple) and like:
        items = [rebuilt(v, like[min(i, len(like) - 1)]) for i, v in enumerate(saved)]
        return tuple(items) if isinstance(saved, tuple) else items
    return saved


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field annotations of a dataclass (empty when they cannot be resolved)."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation naming what only a type checker imports
        return {}


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass an annotation names (``State`` or ``State | None``), if any."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return hint
    return next((a for a in typing.get_args(hint) if _dataclass_in(a) is a), None)
