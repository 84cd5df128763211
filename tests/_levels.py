"""One good categorical level among eight: the test of space-aware methods learning a Choice
(catcma, tpe) against random sampling at equal evaluations."""

from __future__ import annotations

from typing import Any

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
