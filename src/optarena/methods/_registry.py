"""The method registry: every method registers itself with its capabilities.

``minimize``, the CLI, the benchmark runner and the contract tests find methods here, never in
hand-kept lists, so adding a method is adding one file.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from ._base import Method

__all__ = ["MethodInfo", "get_method_class", "method_infos", "register", "resolve_method"]

Family = Literal["gradient", "population", "external"]


@dataclass(frozen=True)
class MethodInfo:
    """What a method is and can do; tests and ``minimize`` select methods by these flags."""

    name: str
    family: Family
    needs_grad: bool
    supports_bounds: bool
    supports_constraints: bool = False
    stochastic: bool = False
    is_global: bool = False
    requires_bounds: bool = False
    summary: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The flags as a plain dict (for tables and JSON)."""
        return dataclasses.asdict(self)


_REGISTRY: dict[str, type[Method]] = {}
M = TypeVar("M", bound="type[Method]")


def register(
    name: str,
    *,
    family: Family,
    needs_grad: bool,
    supports_bounds: bool,
    supports_constraints: bool = False,
    stochastic: bool = False,
    is_global: bool = False,
    requires_bounds: bool = False,
) -> Callable[[M], M]:
    """Class decorator adding a method (a frozen dataclass of hyperparameters) to the registry."""

    def deco(cls: M) -> M:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"a method named {name!r} is already registered")
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"method {name!r} must be a dataclass")
        doc = (cls.__doc__ or "").strip().splitlines()
        cls.info = MethodInfo(  # type: ignore[attr-defined]
            name=name,
            family=family,
            needs_grad=needs_grad,
            supports_bounds=supports_bounds,
            supports_constraints=supports_constraints,
            stochastic=stochastic,
            is_global=is_global,
            requires_bounds=requires_bounds,
            summary=doc[0] if doc else "",
        )
        _REGISTRY[name] = cls
        return cls

    return deco


def _ensure_loaded() -> None:
    from . import _load_all

    _load_all()


def method_infos() -> list[MethodInfo]:
    """Capabilities of every registered method, sorted by name."""
    _ensure_loaded()
    return [_REGISTRY[n].info for n in sorted(_REGISTRY)]  # type: ignore[attr-defined]


def get_method_class(name: str) -> type[Method]:
    """The class registered under ``name``; ``ValueError`` naming close matches if unknown."""
    _ensure_loaded()
    key = name.strip().lower().replace("-", "_")
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"unknown method {name!r}.{hint} Registered methods: {', '.join(sorted(_REGISTRY))} "
        "(optarena.methods() lists them with their capabilities)"
    )


def resolve_method(method: str | Method, options: dict[str, Any]) -> Method:
    """A method instance from a name plus options, or an instance (then no options allowed)."""
    from ._base import Method

    if isinstance(method, Method):
        if options:
            raise TypeError(
                f"options {sorted(options)} were given with a method instance; set them on "
                f"the instance instead, e.g. dataclasses.replace(method, **options)"
            )
        return method
    if not isinstance(method, str):
        raise TypeError(
            f"method must be a registered name or a Method instance, got {type(method).__name__}"
        )
    if ">" in method:
        # "cmaes>lbfgs": a chain of phases, built by the registered "chain" method
        phases = tuple(part.strip() for part in method.split(">"))
        if not all(phases):
            raise ValueError(f"empty phase in method chain {method!r}")
        return get_method_class("chain")(*phases, **options)  # type: ignore[call-arg]
    cls = get_method_class(method)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(
            f"unknown option(s) {unknown} for method {cls.info.name!r}; "  # type: ignore[attr-defined]
            f"its options are {sorted(fields) or 'none'}"
        )
    return cls(**options)
