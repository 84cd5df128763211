"""The variables of a run as space-aware methods see them: reals, integers, categoricals.

On ``minimize(space=...)`` the run's :class:`~optarena.space.encoding.Encoding` describes each
parameter's coordinates (:meth:`Encoding.layout`); on a plain box every coordinate is a real.
Integers (and ordered choices) are read through their cells: the integer ``lo + i`` owns the
coordinates between thresholds ``t[i - 1]`` and ``t[i]``, the value of a cell is its
representative coordinate (the integer itself, or its ``log10`` on a log scale), exactly as the
encoding decodes. An unordered choice of k options is k coordinates whose largest wins: a
method draws an option index and writes it as the one-hot point. A parameter with a single
value (and a box side of zero width) is ``fixed``: its coordinate never moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import log_ndtr

from .._base import RunContext
from ._box import require_finite_box

__all__ = ["Var", "active", "variables"]


@dataclass(frozen=True)
class Var:
    """One variable: ``kind`` is ``"real"``, ``"int"``, ``"cat"`` or ``"fixed"``; ``start``,
    ``size``: its coordinates; ``lower``/``upper``: the box of a real or int coordinate;
    ``lo``/``n``: an int's smallest value and number of values (a cat's options); ``parent``:
    ``(index of the parent cat variable, option)`` under which it is active."""

    kind: str
    start: int
    size: int
    lower: float
    upper: float
    lo: int = 0
    n: int = 0
    log: bool = False
    parent: tuple[int, int] | None = None

    # -- integers (and ordered choices) ---------------------------------------------------
    def values(self, idx: np.ndarray) -> np.ndarray:
        """The coordinate of the integer with cell index ``idx`` (0 for ``lo``)."""
        k = self.lo + np.asarray(idx, dtype=np.float64)
        return np.log10(k) if self.log else k

    def index(self, v: np.ndarray) -> np.ndarray:
        """The cell index of coordinates ``v`` (as the encoding decodes them)."""
        u = 10.0 ** np.asarray(v, dtype=np.float64) if self.log else np.asarray(v, np.float64)
        return np.clip(np.floor(u + 0.5) - self.lo, 0, self.n - 1).astype(np.int64)

    def thresholds(self, j: np.ndarray) -> np.ndarray:
        """The border between cells ``j`` and ``j + 1``."""
        t = self.lo + np.asarray(j, dtype=np.float64) + 0.5
        return np.log10(t) if self.log else t

    def cell(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The coordinates ``[a, b]`` owned by the integer of cell ``idx``."""
        idx = np.asarray(idx)
        a = np.where(idx > 0, self.thresholds(idx - 1), self.lower)
        b = np.where(idx < self.n - 1, self.thresholds(idx), self.upper)
        return a, b

    # -- categoricals ---------------------------------------------------------------------
    def option(self, X: np.ndarray) -> np.ndarray:
        """The option index each row of ``X`` (whole encoded points) takes."""
        if self.kind == "int":  # an ordered choice is an int over its indices
            return self.index(X[:, self.start])
        return np.argmax(X[:, self.start : self.start + self.size], axis=1)


def variables(ctx: RunContext, name: str) -> tuple[Var, ...]:
    """The run's variables: from the space's layout, else one real per box coordinate (a
    finite box is required either way; ``name`` is the method, for the error)."""
    lo_t, hi_t = require_finite_box(ctx, name)
    lower = lo_t.detach().cpu().double().numpy().reshape(-1)
    upper = hi_t.detach().cpu().double().numpy().reshape(-1)
    enc = ctx.space
    if enc is None:
        return tuple(
            Var("real" if hi > lo else "fixed", i, 1, float(lo), float(hi))
            for i, (lo, hi) in enumerate(zip(lower, upper, strict=True))
        )
    out: list[Var] = []
    where: dict[str, int] = {}
    for b in enc.layout():
        parent = None if b.parent is None else (where[b.parent[0]], b.parent[1])
        a, z = float(lower[b.start]), float(upper[b.start])
        if b.kind == "real":
            var = Var("real" if b.hi > b.lo else "fixed", b.start, 1, a, z, parent=parent)
        elif b.kind == "int":
            n = int(b.hi) - int(b.lo) + 1
            kind = "int" if n > 1 else "fixed"
            var = Var(kind, b.start, 1, a, z, lo=int(b.lo), n=n, log=b.log, parent=parent)
        elif b.ordered:
            n = len(b.options)
            var = Var("int" if n > 1 else "fixed", b.start, 1, a, z, lo=0, n=n, parent=parent)
        else:
            n = len(b.options)
            var = Var("cat" if n > 1 else "fixed", b.start, b.size, 0.0, 1.0, n=n, parent=parent)
        where[b.name] = len(out)
        out.append(var)
    return tuple(out)


def active(X: np.ndarray, vs: tuple[Var, ...]) -> np.ndarray:
    """``(rows, variables)``: True where the variable is active in that encoded point (its
    parent is active and takes its option)."""
    mask = np.ones((X.shape[0], len(vs)), dtype=bool)
    for i, v in enumerate(vs):  # a parent precedes its children in coordinate order
        if v.parent is not None:
            p, opt = v.parent
            mask[:, i] = mask[:, p] & (vs[p].option(X) == opt)
    return mask


def log_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``log(Phi(b) - Phi(a))`` for ``a <= b``, accurate in both tails."""
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    flip = a > 0  # right tail: Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
    lo, hi = np.where(flip, -b, a), np.where(flip, -a, b)
    la, lb = log_ndtr(lo), log_ndtr(hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = lb + np.log1p(-np.exp(np.minimum(la - lb, 0.0)))
    return np.where(np.isfinite(out), out, -math.inf)
