"""The one encoding of a search space as a box of reals, for gradient-free methods.

Coordinates, in the order of :meth:`Space.walk`:

- ``Real(lo, hi)``: one coordinate on ``[lo, hi]``; with ``log=True`` on
  ``[log10 lo, log10 hi]``, decoded as ``10 ** u``.
- ``Int(lo, hi)``: one coordinate on ``[lo - 0.5, hi + 0.5]`` rounded to the nearest integer
  (halves up), so every integer owns an interval of width 1; with ``log=True`` the coordinate
  is ``log10`` of that interval (``[log10(lo - 0.5), log10(hi + 0.5)]``), decoded as
  ``round(10 ** u)``.
- ``Choice`` of k options: one coordinate per option on ``[0, 1]``, the largest wins (the first
  on ties); ``ordered=True``: one coordinate on ``[-0.5, k - 0.5]`` rounded to an index.
- Fixed values: no coordinate.

The coordinates of a conditional option's parameters are always there; they are ignored when
decoding unless the choice takes that option, and :meth:`Encoding.encode` puts them at the
centre of their range. Decoding clamps to the parameter's range, so every point of the box
(and every rounding of it) decodes to a valid configuration.

A point drawn uniformly in the box decodes to exactly the native distribution of
:meth:`Encoding.sample`: Real uniform (log-uniform with ``log``), Int uniform over its integers
(with ``log``: each integer k weighted by ``log((k + 0.5) / (k - 0.5))``, the log-uniform law
rounded), every option of a Choice equally likely. So uniform random search in the box *is*
native random search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .params import Choice, Fixed, Int, Param, Real

if TYPE_CHECKING:
    from .space import Space

__all__ = ["Block", "Encoding"]


@dataclass(frozen=True)
class Block:
    """One parameter's coordinates in the box, as :meth:`Encoding.layout` describes them to
    methods that model each kind natively (integers, categoricals, log scales).

    ``kind``: ``"real"``, ``"int"`` or ``"choice"`` (unordered: ``size`` coordinates, the
    largest wins; ``ordered``: one coordinate rounded to an index). ``lower``/``upper``: the
    coordinates' box; ``lo``/``hi``: the native range of a Real or Int (None for a Choice);
    ``parent``: ``(choice name, option index)`` under which the parameter is active, None
    when it always is (a nested parameter is active when its parent is too).
    """

    name: str
    kind: str
    start: int
    size: int
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    log: bool = False
    lo: float | None = None
    hi: float | None = None
    options: tuple[Any, ...] = ()
    ordered: bool = False
    parent: tuple[str, int] | None = None


@dataclass(frozen=True)
class _Node:
    """One parameter of the compiled tree: its coordinates and, for a conditional Choice,
    the compiled sub-space of each option."""

    name: str
    param: Param
    start: int
    width: int
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    branches: tuple[tuple[_Node, ...], ...] | None = None


def _box(p: Param) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if isinstance(p, Real):
        return ((math.log10(p.lo),), (math.log10(p.hi),)) if p.log else ((p.lo,), (p.hi,))
    if isinstance(p, Int):
        lo, hi = p.lo - 0.5, p.hi + 0.5
        return ((math.log10(lo),), (math.log10(hi),)) if p.log else ((lo,), (hi,))
    if isinstance(p, Choice):
        k = len(p.options)
        if p.ordered:
            return ((-0.5,), (k - 0.5,))
        return ((0.0,) * k, (1.0,) * k)
    return ((), ())


class Encoding:
    """The box encoding of one :class:`Space` (see the module doc for the layout)."""

    def __init__(self, space: Space) -> None:
        self.space = space
        lower: list[float] = []
        upper: list[float] = []

        def compile_space(sp: Space) -> tuple[_Node, ...]:
            nodes = []
            for name, p in sp.params.items():
                lo, hi = _box(p)
                start = len(lower)
                lower.extend(lo)
                upper.extend(hi)
                branches = None
                if isinstance(p, Choice) and p.branches is not None:
                    branches = tuple(compile_space(b) for b in p.branches)
                nodes.append(_Node(name, p, start, len(lo), lo, hi, branches))
            return tuple(nodes)

        self._nodes = compile_space(space)
        self.lower = np.array(lower, dtype=np.float64)
        self.upper = np.array(upper, dtype=np.float64)
        self.dim = len(lower)

    @property
    def centre(self) -> np.ndarray:
        """The centre of the box (a Real on a log scale at its geometric mean, a Choice's
        coordinates all equal, so it decodes to its first option)."""
        return (self.lower + self.upper) / 2

    def layout(self) -> tuple[Block, ...]:
        """Every encoded parameter's block of coordinates, in coordinate order (fixed values
        have none and are left out): what a method needs to treat integers, categoricals and
        conditional parameters as such. Read-only; the encoding itself is unchanged."""
        out: list[Block] = []

        def walk(nodes: tuple[_Node, ...], parent: tuple[str, int] | None) -> None:
            for node in nodes:
                p = node.param
                if isinstance(p, Fixed):
                    continue
                common = dict(
                    name=node.name,
                    start=node.start,
                    size=node.width,
                    lower=node.lower,
                    upper=node.upper,
                    parent=parent,
                )
                if isinstance(p, Real | Int):
                    kind = "real" if isinstance(p, Real) else "int"
                    out.append(Block(kind=kind, log=p.log, lo=p.lo, hi=p.hi, **common))  # type: ignore[arg-type]
                else:
                    assert isinstance(p, Choice)
                    out.append(
                        Block(kind="choice", options=tuple(p.options), ordered=p.ordered, **common)  # type: ignore[arg-type]
                    )
                    if node.branches is not None:
                        for i, branch in enumerate(node.branches):
                            walk(branch, (node.name, i))

        walk(self._nodes, None)
        return tuple(sorted(out, key=lambda b: b.start))

    # -- decoding ----------------------------------------------------------------------------
    def decode(self, x: Any) -> dict[str, Any]:
        """The configuration a point of the box stands for: a flat dict of native values
        (``float``, ``int``, the Choice's own option objects, fixed values as given)."""
        return self.decode_keyed(x)[0]

    def key(self, x: Any) -> tuple[Any, ...]:
        """What identifies the configuration of ``x``: equal keys, equal configurations."""
        return self.decode_keyed(x)[1]

    def decode_keyed(self, x: Any) -> tuple[dict[str, Any], tuple[Any, ...]]:
        """The configuration of ``x`` and its key (Choice options by index, so unhashable
        options still give a hashable key)."""
        v = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
        v = v.reshape(-1)
        if v.shape[0] != self.dim:
            raise ValueError(f"the encoded space has {self.dim} coordinates, got {v.shape[0]}")
        config: dict[str, Any] = {}
        key: list[Any] = []
        self._decode(self._nodes, v, config, key)
        return config, tuple(key)

    def _decode(
        self, nodes: tuple[_Node, ...], v: np.ndarray, config: dict[str, Any], key: list[Any]
    ) -> None:
        for node in nodes:
            p = node.param
            if isinstance(p, Fixed):
                config[node.name] = p.value
                continue
            u = v[node.start : node.start + node.width]
            if isinstance(p, Real):
                val = 10.0 ** float(u[0]) if p.log else float(u[0])
                value: Any = min(max(val, p.lo), p.hi)
                key.append(value)
            elif isinstance(p, Int):
                val = 10.0 ** float(u[0]) if p.log else float(u[0])
                value = int(min(max(math.floor(val + 0.5), p.lo), p.hi))
                key.append(value)
            else:
                assert isinstance(p, Choice)
                k = len(p.options)
                if p.ordered:
                    idx = int(min(max(math.floor(float(u[0]) + 0.5), 0), k - 1))
                else:
                    idx = int(np.argmax(u))
                value = p.options[idx]
                key.append(idx)
            config[node.name] = value
            if node.branches is not None:
                self._decode(node.branches[idx], v, config, key)

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """The point of the box that decodes to ``config`` (Real values on a log scale to
        within rounding); inactive coordinates at the centre. Missing, unknown or
        out-of-range entries raise ValueError."""
        if not isinstance(config, Mapping):
            raise TypeError(f"a configuration is a dict, got {type(config).__name__}")
        out = self.centre.copy()
        used: set[str] = set()
        self._encode(self._nodes, config, out, used)
        unknown = sorted(set(config) - used, key=str)
        if unknown:
            raise ValueError(
                f"configuration: {unknown} are not parameters of the space (or not active "
                f"with the options chosen); its parameters: {self.space.names}"
            )
        return out

    def _encode(
        self, nodes: tuple[_Node, ...], config: Mapping[str, Any], out: np.ndarray, used: set[str]
    ) -> None:
        for node in nodes:
            p, name = node.param, node.name
            if isinstance(p, Fixed):
                if name in config and not _fixed_ok(p, config[name]):
                    raise ValueError(f"configuration: {name!r} is fixed at {p.value!r}")
                used.add(name)
                continue
            if name not in config:
                raise ValueError(f"configuration: {name!r} is missing")
            used.add(name)
            value = config[name]
            if isinstance(p, Real | Int):
                num = _number(p, name, value)
                out[node.start] = math.log10(num) if p.log else num
                continue
            assert isinstance(p, Choice)
            try:
                idx = p.index(value)
            except ValueError as e:
                raise ValueError(f"configuration: {name!r}: {e}") from None
            if p.ordered:
                out[node.start] = idx
            else:
                out[node.start : node.start + node.width] = 0.0
                out[node.start + idx] = 1.0
            if node.branches is not None:
                self._encode(node.branches[idx], config, out, used)

    # -- sampling ----------------------------------------------------------------------------
    def sample(self, rng: np.random.Generator | int | None = None, n: int = 1) -> list[dict]:
        """``n`` configurations drawn natively: the law of a uniform point of the box, decoded
        (see the module doc). ``rng``: a numpy Generator, a seed for one, or a
        ``torch.Generator`` (which draws that seed)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if isinstance(rng, torch.Generator):
            rng = int(torch.randint(2**62, (1,), generator=rng))
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        out = []
        for _ in range(n):
            config: dict[str, Any] = {}
            self._sample(self._nodes, gen, config)
            out.append(config)
        return out

    def _sample(
        self, nodes: tuple[_Node, ...], gen: np.random.Generator, config: dict[str, Any]
    ) -> None:
        for node in nodes:
            p = node.param
            if isinstance(p, Fixed):
                config[node.name] = p.value
            elif isinstance(p, Real):
                if p.log:
                    val = math.exp(gen.uniform(math.log(p.lo), math.log(p.hi)))
                else:
                    val = float(gen.uniform(p.lo, p.hi))
                config[node.name] = min(max(val, p.lo), p.hi)
            elif isinstance(p, Int):
                if p.log:
                    val = math.exp(gen.uniform(math.log(p.lo - 0.5), math.log(p.hi + 0.5)))
                    config[node.name] = int(min(max(math.floor(val + 0.5), p.lo), p.hi))
                else:
                    config[node.name] = int(gen.integers(p.lo, p.hi + 1))
            else:
                assert isinstance(p, Choice)
                idx = int(gen.integers(len(p.options)))
                config[node.name] = p.options[idx]
                if node.branches is not None:
                    self._sample(node.branches[idx], gen, config)


def _fixed_ok(p: Fixed, value: Any) -> bool:
    from .params import same_value

    return value is p.value or same_value(value, p.value)


def _number(p: Real | Int, name: str, value: Any) -> float:
    """A configuration's Real or Int value, checked against the parameter."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"configuration: {name!r} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ValueError(f"configuration: {name!r} must be finite, got {value!r}")
    if isinstance(p, Int) and float(value) != int(value):
        raise ValueError(f"configuration: {name!r} must be an integer, got {value!r}")
    if not p.lo <= float(value) <= p.hi:
        raise ValueError(f"configuration: {name!r} = {value!r} is outside [{p.lo}, {p.hi}]")
    return float(value)
