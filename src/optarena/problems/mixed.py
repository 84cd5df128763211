"""Mixed-integer test functions on search spaces: exact, cheap, with known optima.

A :class:`SpaceProblem` is a function of a configuration dict over a :class:`~optarena.Space`,
with its optimal value and an optimal configuration given exactly. Two are registered:

- ``mixed_integer``: 5 reals in [-5, 5] through a rotated ellipsoid of condition 1e3, plus
  5 integers in [-10, 10] each paying ``(z - z*)^2``; the optimum is at a non-zero point
  with dyadic reals and non-zero integers (never the centre of the box, where searches start).
- ``mixed_categorical``: the same plus 3 categoricals of 4 levels that add offsets
  0, 1, 3 and 10; the level worth 0 is never the first option (the one the centre decodes to).

``f_opt`` is 0.0 exactly: at the optimum every term is an exact zero in float64. Integer and
categorical mistakes cost at least 1, so ``f < 1`` means every discrete coordinate is right.
``space_problem(name, **params)`` builds one, ``space_problem_names()`` lists them.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..space import Choice, Int, Real, Space

__all__ = [
    "SpaceProblem",
    "mixed_categorical",
    "mixed_integer",
    "register_space_problem",
    "space_problem",
    "space_problem_names",
]

# The optimum: dyadic reals (exact in binary) and non-zero integers, away from the box centre.
X_OPT = (1.25, -2.5, 0.75, 3.0, -1.5)
Z_OPT = (3, -7, 5, -2, 8)
LEVELS = ("a", "b", "c", "d")
OFFSETS = (0.0, 1.0, 3.0, 10.0)
# For each categorical: the offset index of each level, so its best level is "c", "d", "b".
LEVEL_OFFSETS = ((3, 1, 0, 2), (2, 3, 1, 0), (1, 0, 3, 2))


@dataclass(frozen=True)
class SpaceProblem:
    """A test function of a configuration dict: its space, ``fn(config) -> float``, the exact
    optimal value ``f_opt`` and a configuration ``config_opt`` reaching it.

    Calling the problem checks the configuration against the space first (missing, unknown,
    out-of-range or non-integer entries raise ValueError), so a search that hands it a
    malformed dict fails loudly rather than scoring it.
    """

    name: str
    space: Space
    fn: Callable[[Mapping[str, Any]], float]
    f_opt: float
    config_opt: dict[str, Any]
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __call__(self, config: Mapping[str, Any]) -> float:
        self.space.encode(config)  # validates: raises ValueError naming the bad entry
        return float(self.fn(config))

    @property
    def dim(self) -> int:
        """Number of searched parameters."""
        return len(self.space.names)

    def solved(self, config: Mapping[str, Any]) -> bool:
        """True when every integer and categorical of ``config`` equals the optimum's (the
        discrete part of the problem is solved; the reals may still be improving)."""
        return all(config[n] == self.config_opt[n] for n in self.space.discrete)


_SPACE_PROBLEMS: dict[str, Callable[..., SpaceProblem]] = {}


def register_space_problem(
    name: str,
) -> Callable[[Callable[..., SpaceProblem]], Callable[..., SpaceProblem]]:
    """Decorator for a factory ``f(**params) -> SpaceProblem`` registered under ``name``."""

    def deco(factory: Callable[..., SpaceProblem]) -> Callable[..., SpaceProblem]:
        if name in _SPACE_PROBLEMS:
            raise ValueError(f"space problem {name!r} is already registered")
        _SPACE_PROBLEMS[name] = factory
        return factory

    return deco


def space_problem_names() -> list[str]:
    """Names of every registered space problem."""
    return sorted(_SPACE_PROBLEMS)


def space_problem(name: str, **params: Any) -> SpaceProblem:
    """The space problem ``name`` built with ``params`` (``space_problem("mixed_integer")``)."""
    if name not in _SPACE_PROBLEMS:
        close = difflib.get_close_matches(name, list(_SPACE_PROBLEMS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown space problem {name!r}.{hint} Known: {', '.join(space_problem_names())}"
        )
    factory = _SPACE_PROBLEMS[name]
    unknown = sorted(set(params) - set(inspect.signature(factory).parameters))
    if unknown:
        raise TypeError(f"unknown parameter(s) {unknown} for space problem {name!r}")
    return factory(**params)


def rotation(dim: int, seed: int) -> np.ndarray:
    """A fixed orthogonal matrix: QR of a seeded Gaussian matrix, signs made unique."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


def _check_condition(condition: float) -> float:
    if isinstance(condition, bool) or not isinstance(condition, int | float):
        raise TypeError(f"condition must be a number, got {condition!r}")
    if not (math.isfinite(condition) and condition >= 1):
        raise ValueError(f"condition must be finite and >= 1, got {condition!r}")
    return float(condition)


@dataclass(frozen=True)
class _Mixed:
    """The mixed function: rotated ellipsoid over the reals, squared distance over the
    integers, level offsets over the categoricals."""

    rot: np.ndarray
    weights: np.ndarray
    categoricals: int

    def __call__(self, config: Mapping[str, Any]) -> float:
        x = np.array([config[f"x{i}"] for i in range(len(X_OPT))], dtype=np.float64)
        y = self.rot @ (x - np.array(X_OPT))
        total = float(np.sum(self.weights * y * y))
        total += float(sum((int(config[f"z{i}"]) - z) ** 2 for i, z in enumerate(Z_OPT)))
        for j in range(self.categoricals):
            level = LEVELS.index(config[f"c{j}"])
            total += OFFSETS[LEVEL_OFFSETS[j][level]]
        return total


def _build(name: str, categoricals: int, condition: float, seed: int, text: str) -> SpaceProblem:
    condition = _check_condition(condition)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    n = len(X_OPT)
    params: dict[str, Any] = {f"x{i}": Real(-5.0, 5.0) for i in range(n)}
    params.update({f"z{i}": Int(-10, 10) for i in range(len(Z_OPT))})
    params.update({f"c{j}": Choice(list(LEVELS)) for j in range(categoricals)})
    opt: dict[str, Any] = {f"x{i}": v for i, v in enumerate(X_OPT)}
    opt.update({f"z{i}": v for i, v in enumerate(Z_OPT)})
    opt.update({f"c{j}": LEVELS[LEVEL_OFFSETS[j].index(0)] for j in range(categoricals)})
    weights = condition ** (np.arange(n) / (n - 1))
    fn = _Mixed(rotation(n, seed), weights, categoricals)
    return SpaceProblem(
        name=name,
        space=Space(params),
        fn=fn,
        f_opt=0.0,
        config_opt=opt,
        params={"condition": condition, "seed": seed},
        description=text,
    )


@register_space_problem("mixed_integer")
def mixed_integer(condition: float = 1e3, seed: int = 0) -> SpaceProblem:
    """5 reals in [-5, 5] (rotated ellipsoid of ``condition``, rotation from ``seed``) plus
    5 integers in [-10, 10]; optimum 0 at a non-zero integer point."""
    return _build(
        "mixed_integer",
        0,
        condition,
        seed,
        "rotated ellipsoid over 5 reals plus squared distance over 5 integers in [-10, 10]",
    )


@register_space_problem("mixed_categorical")
def mixed_categorical(condition: float = 1e3, seed: int = 0) -> SpaceProblem:
    """:func:`mixed_integer` plus 3 categoricals of 4 levels with offsets 0, 1, 3, 10."""
    return _build(
        "mixed_categorical",
        3,
        condition,
        seed,
        "mixed_integer plus 3 categoricals of 4 levels adding 0, 1, 3 or 10",
    )
