"""Answers for probes outside the box, for solvers that treat the bounds as constraints they
may violate on the way (scipy's COBYLA: its first simplex steps ``rhobeg`` past a start on the
bound).

Every evaluation must stay in the box, and a probe answered with the value at the clipped point
tells a linear model that nothing changes past the wall (from a start on the bound COBYLA then
never leaves the start). Such a probe ``y`` is answered by linear extrapolation along its
outward direction from two points inside: ``p``, ``y`` clipped into the box, and ``m``, ``y``
mirrored through ``p`` (pulled in where the box is narrower), each evaluated and counted:
``h(y) ~ h(p) + (h(p) - h(m)) / s`` with ``m = p - s (y - p)``. It is exact for linear
functions, so the solver's linear models see the slope they would have seen outside.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.oracle import Oracle

__all__ = ["OutsideProbes"]


class OutsideProbes:
    """Objective and constraint values of probes outside ``[lower, upper]``, extrapolated from
    evaluations inside (the last probe's answers are memoized: scipy asks for the objective
    and each constraint at the same point)."""

    def __init__(
        self, oracle: Oracle, lower: np.ndarray, upper: np.ndarray, seen: Any = None
    ) -> None:
        self.oracle = oracle
        self.seen = seen  # told each value evaluated here (the wall watch)
        self.lower, self.upper = lower, upper
        self.width = upper - lower
        self._key: bytes | None = None
        self._f = math.nan
        self._c: list[np.ndarray] | None = None

    def inward(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
        """``(p, m, s)`` for a probe outside the box, None for one inside."""
        p = np.clip(y, self.lower, self.upper)
        d = np.where(self.width > 0, y - p, 0.0)  # nothing varies along a fixed coordinate
        if not d.any():
            return None if np.array_equal(p, y) else (p, p, 0.0)
        out = d != 0
        s = float(min(1.0, np.min(self.width[out] / np.abs(d[out]))))
        m = np.clip(p - s * d, self.lower, self.upper)
        return p, m, s

    def _values(self, y: np.ndarray, with_f: bool) -> None:
        key = y.tobytes()
        if key == self._key and (not with_f or not math.isnan(self._f)):
            return
        found = self.inward(y)
        assert found is not None
        p, m, s = found
        fp, cp = self._at(p, with_f)
        if s == 0.0:  # outside only along coordinates the box fixes: the value at p
            self._key, self._f, self._c = key, fp, cp
            return
        fm, cm = self._at(m, with_f)
        f = fp + (fp - fm) / s if math.isfinite(fp) and math.isfinite(fm) else math.inf
        self._key, self._f = key, f
        self._c = [a + (a - b) / s for a, b in zip(cp, cm, strict=True)]

    def _at(self, x: np.ndarray, with_f: bool) -> tuple[float, list[np.ndarray]]:
        """The objective (when asked for) and the constraints at a point inside the box."""
        oracle = self.oracle
        t = oracle.as_tensor(x)
        f = math.nan
        if with_f:
            f = oracle.value(t)
            if self.seen is not None:
                self.seen(f)
        if not oracle.constraints:
            return f, []
        return f, [c.detach().cpu().double().numpy() for c in oracle.constraint_values(t)]

    def objective(self, inside: Any) -> Any:
        """scipy's objective: ``inside(y)`` in the box, the extrapolated value outside."""

        def f(y: np.ndarray) -> float:
            y = np.asarray(y, dtype=np.float64)
            if self.inward(y) is None:
                return inside(y)
            self._values(y, with_f=True)
            return self._f

        return f

    def constraint(self, inside: Any, i: int, sign: float = 1.0) -> Any:
        """scipy's constraint ``i``: ``inside(y)`` in the box, extrapolated outside."""

        def c(y: np.ndarray) -> np.ndarray:
            y = np.asarray(y, dtype=np.float64)
            if self.inward(y) is None:
                return inside(y)
            self._values(y, with_f=False)
            assert self._c is not None
            return sign * self._c[i]

        return c
