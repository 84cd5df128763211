"""Space: a search space built from a (nested) dict of parameters.

``Space({"lr": Real(1e-4, 1e-1, log=True), "width": Int(8, 256, log=True),
"act": Choice(["relu", "tanh"]), "epochs": 10})`` -- keys are the names the objective receives,
values are :class:`Real`, :class:`Int`, :class:`Choice` (a dict of options makes conditional
parameters) or fixed values. A configuration is a flat dict: the parameters of a conditional
option sit next to the others, present only when their parent takes that option, so a name
may repeat only among the options of one Choice (never two can be active at once).

Spaces compare by value and in order (the order of the keys fixes the encoding, so
``{"a", "b"}`` and ``{"b", "a"}`` are different spaces), print as they are written and
round-trip through JSON (:meth:`Space.to_json`, :meth:`Space.from_json`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from .params import Choice, Fixed, Int, Param, Real

if TYPE_CHECKING:
    from .encoding import Encoding

__all__ = ["Space"]


def _param(name: str, value: Any) -> Param:
    """A space entry as a parameter: plain values are fixed; ambiguous containers refused."""
    if isinstance(value, Real | Int | Choice | Fixed):
        return value
    if isinstance(value, Mapping):
        raise TypeError(
            f"space: {name!r} is a dict, which is ambiguous: for conditional parameters use "
            "Choice({option: {sub-space}}), for a fixed dict value wrap it in Fixed({...})"
        )
    if isinstance(value, list | tuple | set | frozenset):
        raise TypeError(
            f"space: {name!r} is a {type(value).__name__}, which is ambiguous: write "
            f"Choice({list(value)!r}) to choose among its items, or Fixed(...) to pass it as "
            "it is"
        )
    return Fixed(value)


class Space:
    """A search space: an ordered mapping of names to parameters (see the module doc)."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, params: Mapping[str, Any] | Space) -> None:
        if isinstance(params, Space):
            params = params.params
        if not isinstance(params, Mapping):
            raise TypeError(f"a space is a dict of parameters, got {type(params).__name__}")
        out: dict[str, Param] = {}
        for name, value in params.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"space: parameter names must be non-empty strings, got {name!r}")
            out[name] = _param(name, value)
        self.params: dict[str, Param] = out
        _active_names(self)  # refuses a name that two active parameters would share

    # -- reading ----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Every parameter name (conditional ones included, each once), in encoding order."""
        return list(dict.fromkeys(name for name, _ in self.walk()))

    def walk(self) -> list[tuple[str, Param]]:
        """``(name, parameter)`` for every parameter, depth first (a Choice, then the
        parameters of each of its options in order)."""
        out: list[tuple[str, Param]] = []
        for name, p in self.params.items():
            out.append((name, p))
            if isinstance(p, Choice) and p.branches is not None:
                for sub in p.branches:
                    out.extend(sub.walk())
        return out

    @property
    def discrete(self) -> list[str]:
        """Names of the Int and Choice parameters (those a gradient cannot move)."""
        return list(dict.fromkeys(n for n, p in self.walk() if isinstance(p, Int | Choice)))

    @cached_property
    def encoding(self) -> Encoding:
        """The box-of-reals encoding of this space (:class:`optarena.space.Encoding`)."""
        from .encoding import Encoding

        return Encoding(self)

    # -- the encoding, for convenience ------------------------------------------------------
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """A configuration (dict) as a point of the encoded box (inactive coordinates at the
        centre of their range)."""
        return self.encoding.encode(config)

    def decode(self, x: Any) -> dict[str, Any]:
        """The configuration (dict of native values) a point of the encoded box stands for."""
        return self.encoding.decode(x)

    def sample(self, rng: np.random.Generator | int | None = None, n: int = 1) -> list[dict]:
        """``n`` configurations drawn natively (see :meth:`Encoding.sample`)."""
        return self.encoding.sample(rng, n)

    # -- comparing, printing, serializing ---------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            other = Space(other)
        if not isinstance(other, Space):
            return NotImplemented
        return list(self.params.items()) == list(other.params.items())

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{k!r}: {v.value!r}"
            if isinstance(v, Fixed) and not _needs_fixed(v)
            else f"{k!r}: {v!r}"
            for k, v in self.params.items()
        )
        return f"Space({{{inner}}})"

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict of this space (TypeError names a value JSON cannot hold)."""
        from .serial import space_to_dict

        return space_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Space:
        """The space :meth:`to_dict` wrote."""
        from .serial import space_from_dict

        return space_from_dict(data)

    def to_json(self, **kwargs: Any) -> str:
        """This space as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> Space:
        """The space :meth:`to_json` wrote."""
        return cls.from_dict(json.loads(text))


def _needs_fixed(p: Fixed) -> bool:
    return isinstance(p.value, Mapping | list | tuple | set | frozenset)


def _active_names(space: Space) -> set[str]:
    """Every name that can be active under ``space``; raises when two parameters that can be
    active together share a name (the options of one Choice may repeat names)."""
    seen: set[str] = set(space.params)
    for name, p in space.params.items():
        if not (isinstance(p, Choice) and p.branches is not None):
            continue
        below: set[str] = set()
        for opt, sub in zip(p.options, p.branches, strict=True):
            names = _active_names(sub)
            clash = sorted(names & seen)
            if clash:
                raise ValueError(
                    f"space: {clash[0]!r} under option {opt!r} of {name!r} is also a parameter "
                    "that is active at the same time; give it another name"
                )
            below |= names
        seen |= below
    return seen
