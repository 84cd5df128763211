"""Problems the tests of the space-aware methods (catcma, tpe) share: one good categorical
level among eight (learned, against random sampling at equal evaluations) and a mixed
function of reals, an integer and a categorical with a known optimum."""

from __future__ import annotations

from typing import Any

import numpy as np

import optarena as oa
from optarena.space import Choice, Real, Space

LEVELS = Space({"c": Choice([f"g{i}" for i in range(8)]), "x": Real(-1.0, 1.0)})


def good_level(config: dict[str, Any]) -> float:
    """One good level of 8 among noise-free reals: the level is what matters."""
    return (0.0 if config["c"] == "g5" else 1.0) + 0.01 * (config["x"] - 0.3) ** 2


def picked(method: str, seed: int, budget: int) -> float:
    """The share of the second half's evaluations that took the good level."""
    res = oa.minimize(good_level, space=LEVELS, method=method, budget=budget, seed=seed)
    configs = res.configs()[budget // 2 :]
    return sum(c["c"] == "g5" for c in configs) / max(len(configs), 1)


def mixed(config: dict[str, Any]) -> float:
    """Reals x0..x2 at 0.5, the integer z at 4, the level "b": optimum 0."""
    x = np.array([config[f"x{i}"] for i in range(3)])
    off = {"a": 3.0, "b": 0.0, "c": 1.0}[config["c"]]
    return float(np.sum((x - 0.5) ** 2) + (config["z"] - 4) ** 2 + off)
