"""Optimization methods. Every public module here registers at least one method."""

from __future__ import annotations

import importlib
import pkgutil

from ._base import (
    Checkpoint,
    ExternalMethod,
    GradientMethod,
    IterationInfo,
    Method,
    Outcome,
    PopulationMethod,
    RunContext,
)
from ._registry import (
    Facts,
    MethodInfo,
    get_method_class,
    method_infos,
    register,
    resolve_method,
)

__all__ = [
    "Checkpoint",
    "ExternalMethod",
    "Facts",
    "GradientMethod",
    "IterationInfo",
    "Method",
    "MethodInfo",
    "Outcome",
    "PopulationMethod",
    "RunContext",
    "get_method_class",
    "method_infos",
    "method_modules",
    "register",
    "resolve_method",
]

_LOADED = False


def method_modules() -> list[str]:
    """Dotted names (below this package) of the modules that define methods: every module of
    the family subpackages whose name does not start with ``_``."""
    found = []
    for m in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        rel = m.name.removeprefix(f"{__name__}.")
        if not m.ispkg and not any(part.startswith("_") for part in rel.split(".")):
            found.append(rel)
    return sorted(found)


def _load_all() -> None:
    """Import every method module once, so each registers its methods."""
    global _LOADED
    if _LOADED:
        return
    for name in method_modules():
        importlib.import_module(f"{__name__}.{name}")
    _LOADED = True
