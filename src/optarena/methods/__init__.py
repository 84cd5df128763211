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
from ._registry import MethodInfo, get_method_class, method_infos, register, resolve_method

__all__ = [
    "Checkpoint",
    "ExternalMethod",
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
    """Names of the modules in this package that define methods (those not starting with _)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def _load_all() -> None:
    """Import every method module once, so each registers its methods."""
    global _LOADED
    if _LOADED:
        return
    for name in method_modules():
        importlib.import_module(f"{__name__}.{name}")
    _LOADED = True
