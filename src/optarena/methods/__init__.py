"""Optimization methods. Every public module here registers at least one method.

The methods live in family subpackages (``gradient``, ``population``, ``scipy``,
``composite``); the flat module paths of earlier versions (``optarena.methods.cmaes``, ...)
still import, as the module at the new path, with a ``DeprecationWarning`` naming it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import pkgutil
import sys
import types
import warnings
from types import ModuleType
from typing import overload

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
    "MOVED",
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


#: Module paths of earlier versions (below this package) and where each module lives now.
MOVED = {
    "gd": "gradient.gd",
    "lbfgs": "gradient.lbfgs",
    "torch_optim": "gradient.torch_optim",
    "cmaes": "population.cmaes",
    "pso": "population.pso",
    "random_search": "population.random_search",
    "scipy_local": "scipy.local",
    "annealing": "scipy.annealing",
    "de": "scipy.de",
    "hybrid": "composite.chain",
    "multistart": "composite.multistart",
    "auto": "composite.auto",
    "constrained": "composite.constrained",
}


class _MovedLoader(importlib.abc.Loader):
    """Loads an old module path as the module at its new path (the same module object, so
    nothing runs or registers twice)."""

    def __init__(self, new: str) -> None:
        self.new = new
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(
            f"{spec.name} has moved to {self.new}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(self.new)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system has set the old path's spec on the module: give it back its own
        module.__spec__ = self.spec


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old flat module paths of :data:`MOVED` (last on ``sys.meta_path``, so a
    real module of the same name always wins)."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, leaf = fullname.rpartition(".")
        if package != __name__ or leaf not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _MovedLoader(f"{__name__}.{MOVED[leaf]}"))


if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
    sys.meta_path.append(_MovedFinder())


class _MethodsModule(types.ModuleType):
    """``optarena.methods`` is this package and, called, the listing of every method:
    ``optarena.methods()`` and ``import optarena.methods.population.cmaes`` both work."""

    @overload
    def __call__(self) -> list[MethodInfo]: ...
    @overload
    def __call__(self, name: str) -> MethodInfo: ...
    def __call__(self, name: str | None = None) -> list[MethodInfo] | MethodInfo:
        """Every registered method with its capabilities (family, gradient, bounds, ...), or
        one method's (``name``, spelled as ``minimize`` takes it), whose ``options`` hold
        each option's default, accepted values and meaning (``optarena methods NAME``)."""
        if name is None:
            return method_infos()
        return get_method_class(name).info  # type: ignore[attr-defined]


sys.modules[__name__].__class__ = _MethodsModule
