"""The kinds of parameter a search space holds: Real, Int, Choice (conditional or not), Fixed.

Each checks its own arguments at construction (a bad space fails before any evaluation), prints
as it is written and compares by value. Serialization to plain dicts lives in
:mod:`optarena.space.serial`; the encoding to a box of reals in :mod:`optarena.space.encoding`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .space import Space

__all__ = ["Choice", "Fixed", "Int", "Param", "Real", "same_value"]


def _real(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return out


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True, init=False)
class Real:
    """A real parameter in ``[lo, hi]``; ``log=True`` searches it on a log scale (lo > 0)."""

    lo: float
    hi: float
    log: bool = False

    def __init__(self, lo: float, hi: float, log: bool = False) -> None:
        lo_f, hi_f = _real(lo, "Real: lo"), _real(hi, "Real: hi")
        if lo_f >= hi_f:
            raise ValueError(
                f"Real({lo!r}, {hi!r}): lo must be below hi (for a constant, write the value "
                "itself in the space)"
            )
        if log and lo_f <= 0:
            raise ValueError(f"Real({lo!r}, {hi!r}, log=True): a log scale needs lo > 0")
        object.__setattr__(self, "lo", lo_f)
        object.__setattr__(self, "hi", hi_f)
        object.__setattr__(self, "log", bool(log))

    def __repr__(self) -> str:
        return f"Real({self.lo!r}, {self.hi!r}{', log=True' if self.log else ''})"


@dataclass(frozen=True, init=False)
class Int:
    """An integer parameter in ``[lo, hi]`` (both included); ``log=True`` needs lo >= 1."""

    lo: int
    hi: int
    log: bool = False

    def __init__(self, lo: int, hi: int, log: bool = False) -> None:
        lo_i, hi_i = _int(lo, "Int: lo"), _int(hi, "Int: hi")
        if lo_i >= hi_i:
            raise ValueError(
                f"Int({lo!r}, {hi!r}): lo must be below hi (for a constant, write the value "
                "itself in the space)"
            )
        if log and lo_i < 1:
            raise ValueError(f"Int({lo!r}, {hi!r}, log=True): a log scale needs lo >= 1")
        object.__setattr__(self, "lo", lo_i)
        object.__setattr__(self, "hi", hi_i)
        object.__setattr__(self, "log", bool(log))

    def __repr__(self) -> str:
        return f"Int({self.lo!r}, {self.hi!r}{', log=True' if self.log else ''})"


def same_value(a: Any, b: Any) -> bool:
    """Equal and of the same type (so that ``1``, ``1.0`` and ``True`` are three options)."""
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b)
    except Exception:  # values whose == is not a plain truth value (arrays): identity only
        return a is b


@dataclass(frozen=True, init=False, eq=False)
class Choice:
    """One of ``options`` (any Python values). Unordered by default: the options are
    categories; ``ordered=True`` says their order means something (small, medium, large).

    Conditional parameters: give a dict ``{option: sub-space dict}`` instead of a list; the
    parameters of an option's sub-space exist only when the choice takes that option, e.g.
    ``Choice({"adam": {"beta1": Real(0.8, 0.99)}, "sgd": {"momentum": Real(0, 0.99)}})``
    (an option without parameters maps to ``{}``).
    """

    options: tuple[Any, ...]
    ordered: bool
    branches: tuple[Space, ...] | None

    __hash__ = None  # type: ignore[assignment]  # options may be unhashable

    def __init__(self, options: Sequence[Any] | Mapping[Any, Any], ordered: bool = False) -> None:
        from .space import Space

        if isinstance(options, str | bytes) or not isinstance(options, Sequence | Mapping):
            raise TypeError(
                f"Choice takes a list of options or a dict {{option: sub-space dict}}, got "
                f"{type(options).__name__}"
            )
        if isinstance(ordered, bool) is False:
            raise TypeError(f"Choice: ordered must be True or False, got {ordered!r}")
        branches: tuple[Space, ...] | None = None
        if isinstance(options, Mapping):
            opts = tuple(options)
            subs = []
            for opt, sub in options.items():
                if isinstance(sub, Space):
                    subs.append(sub)
                elif isinstance(sub, Mapping):
                    subs.append(Space(sub))
                else:
                    raise TypeError(
                        f"Choice: option {opt!r} maps to {type(sub).__name__}; in the dict "
                        "form each option maps to its sub-space dict ({} for none)"
                    )
            branches = tuple(subs)
        else:
            opts = tuple(options)
        if not opts:
            raise ValueError("Choice needs at least one option, got none")
        for i, a in enumerate(opts):
            if any(same_value(a, b) for b in opts[:i]):
                raise ValueError(f"Choice: option {a!r} is given twice")
        object.__setattr__(self, "options", opts)
        object.__setattr__(self, "ordered", ordered)
        object.__setattr__(self, "branches", branches)

    @property
    def conditional(self) -> bool:
        """True when some option carries its own parameters."""
        return self.branches is not None

    def index(self, value: Any) -> int:
        """The position of ``value`` among the options; ValueError when it is not one."""
        for i, opt in enumerate(self.options):
            if same_value(opt, value):
                return i
        raise ValueError(f"{value!r} is not one of the options {list(self.options)!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Choice):
            return NotImplemented
        return (
            len(self.options) == len(other.options)
            and all(same_value(a, b) for a, b in zip(self.options, other.options, strict=True))
            and self.ordered == other.ordered
            and self.branches == other.branches
        )

    def __repr__(self) -> str:
        tail = ", ordered=True" if self.ordered else ""
        if self.branches is None:
            return f"Choice({list(self.options)!r}{tail})"
        inner = ", ".join(
            f"{o!r}: {b.params!r}" for o, b in zip(self.options, self.branches, strict=True)
        )
        return f"Choice({{{inner}}}{tail})"


@dataclass(frozen=True, eq=False)
class Fixed:
    """A constant handed to the objective as it is. A plain value in the space dict is one;
    wrap lists, tuples, sets and dicts in ``Fixed`` (written plainly they are ambiguous)."""

    value: Any

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Fixed):
            return NotImplemented
        return same_value(self.value, other.value)

    def __repr__(self) -> str:
        return f"Fixed({self.value!r})"


Param = Real | Int | Choice | Fixed
