"""The small mixed space and cheap objective the study tests share."""

from __future__ import annotations

from optarena.space import Choice, Int, Real

SPACE = {"x": Real(-3.0, 3.0), "n": Int(0, 5), "act": Choice(["relu", "tanh"])}


def quadratic(c: dict) -> float:
    """Minimum 0 at x = 1, n = 0, act = relu."""
    return (c["x"] - 1.0) ** 2 + c["n"] + (c["act"] == "tanh")
