"""Problem: a test function with its start, bounds and known optimum, and the problem registry."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..core.objective import Objective

__all__ = ["Problem", "get", "names", "register_problem", "register_unavailable"]


@dataclass(frozen=True)
class Problem:
    """A reference problem: objective function, start point, bounds and optimum where known.

    ``fn`` maps a 1-D tensor to a scalar; ``batched`` (optional) maps ``(n, d)`` to ``(n,)``.
    ``f_opt`` is the optimal (or infimal) value and ``x_opt`` a minimizer, when known.
    ``constraints`` are :class:`optarena.Ineq` / :class:`optarena.Eq` objects, if any.

    A black box computed outside torch (bbob's C functions) may also give ``fn`` the methods
    ``array_value(x) -> float`` and ``array_values(X) -> (n,)``, the same function on float64
    numpy arrays: :meth:`objective` then evaluates through them, without a tensor per point.
    Replacing ``fn`` (a wrapper that logs or transforms) replaces that path with it.
    """

    name: str
    fn: Callable[[torch.Tensor], torch.Tensor]
    x0: torch.Tensor
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None
    f_opt: float | None = None
    x_opt: torch.Tensor | None = None
    differentiable: bool = True
    batched: Callable[[torch.Tensor], torch.Tensor] | None = None
    constraints: tuple[Any, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    noisy: bool = False

    @property
    def dim(self) -> int:
        """Number of variables."""
        return int(self.x0.numel())

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype the problem is defined in."""
        return self.x0.dtype

    def objective(self, **options: Any) -> Objective:
        """The problem as an :class:`Objective` (options are passed to its constructor)."""
        options.setdefault("name", self.name)
        options.setdefault("gradient", "autograd" if self.differentiable else "none")
        options.setdefault("noisy", self.noisy)
        arrays = self._arrays(options)
        if arrays is not None:
            one, many = arrays
            options.pop("backend", None)
            return Objective(
                one, backend="numpy", batched=many, default_x0=self.x0.clone(), **options
            )
        if self.batched is not None:
            options.setdefault("batched", self.batched)
        return Objective(self.fn, default_x0=self.x0.clone(), **options)

    def _arrays(self, options: dict[str, Any]) -> tuple[Callable[..., Any], Any] | None:
        """``fn``'s numpy form (one point, and rows unless ``batched`` is off), when it has one
        and ``options`` leave the objective's form open: no autograd, no other backend or
        batched function asked for, and ``batched`` is still ``fn``'s own."""
        one = getattr(self.fn, "array_value", None)
        many = getattr(self.fn, "array_values", None)
        if not (callable(one) and callable(many)) or options["gradient"] == "autograd":
            return None
        if options.get("backend", "numpy") != "numpy" or "batched" in options:
            return None
        if self.batched is None:
            return one, None
        if self.batched != getattr(self.fn, "batched", None):
            return None
        return one, many

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


_PROBLEMS: dict[str, Callable[..., Problem]] = {}
# Problems whose optional dependency is not installed: name -> what to install.
_UNAVAILABLE: dict[str, str] = {}


def register_problem(name: str) -> Callable[[Callable[..., Problem]], Callable[..., Problem]]:
    """Decorator for a factory ``f(**params) -> Problem`` registered under ``name``."""

    def deco(factory: Callable[..., Problem]) -> Callable[..., Problem]:
        if name in _PROBLEMS:
            raise ValueError(f"problem {name!r} is already registered")
        _PROBLEMS[name] = factory
        return factory

    return deco


def register_unavailable(name: str, requirement: str) -> None:
    """Record that problem ``name`` exists but needs ``requirement``, which is not installed:
    :func:`get` then says what to install instead of "unknown problem"."""
    _UNAVAILABLE[name] = requirement


def names() -> list[str]:
    """Names of every registered problem."""
    _load()
    return sorted(_PROBLEMS)


def get(name: str, **params: Any) -> Problem:
    """The problem ``name`` built with ``params`` (e.g. ``get("rosenbrock", b=100)``)."""
    _load()
    if name not in _PROBLEMS and name in _UNAVAILABLE:
        raise ImportError(f"problem {name!r} needs {_UNAVAILABLE[name]}, which is not installed")
    if name not in _PROBLEMS:
        close = difflib.get_close_matches(name, list(_PROBLEMS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown problem {name!r}.{hint} Known: {', '.join(sorted(_PROBLEMS))}")
    factory = _PROBLEMS[name]
    sig = inspect.signature(factory)
    unknown = sorted(set(params) - set(sig.parameters))
    if unknown:
        raise TypeError(
            f"unknown parameter(s) {unknown} for problem {name!r}; it takes "
            f"{sorted(sig.parameters) or 'none'}"
        )
    return factory(**params)


def _load() -> None:
    # registration side effect; bbob registers only when cocoex is installed (never imports it)
    from . import bbob, classic, constrained, seeds, variants  # noqa: F401
