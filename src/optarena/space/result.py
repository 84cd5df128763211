"""SpaceResult: a Result that also speaks in configurations (dicts) rather than encoded points."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..result import Result
from .params import Fixed
from .space import Space

__all__ = ["SpaceResult"]


@dataclass(frozen=True, repr=False)
class SpaceResult(Result):
    """The outcome of ``minimize(f, space=...)``: a :class:`~optarena.Result` (``x`` is the
    best point of the encoded box) plus ``config``, the best configuration as a dict, the
    ``space`` and ``cache_hits``, the candidates whose configuration had been evaluated
    before (counted in ``nfev``, ``f`` not called again)."""

    config: dict[str, Any] = field(default_factory=dict)
    space: Space | None = None
    cache_hits: int = 0

    def configs(self) -> list[dict[str, Any]]:
        """The configuration of every evaluation, in order (one per History row)."""
        assert self.space is not None
        return [self.space.decode(x) for x in self.history.x]

    def to_pandas(self) -> Any:
        """The History as a ``pandas.DataFrame``, one row per evaluation: ``evals``,
        ``seconds``, ``f``, ``best_f``, ``cached`` (the configuration was evaluated before)
        and one column per searched parameter (None where a conditional one is inactive;
        fixed values are left out)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("SpaceResult.to_pandas() needs pandas: pip install pandas") from e
        assert self.space is not None
        enc = self.space.encoding
        names = [n for n in self.space.names if not _all_fixed(self.space, n)]
        cols: dict[str, list[Any]] = {n: [] for n in names}
        cached, seen = [], set()
        for x in self.history.x:
            config, key = enc.decode_keyed(x)
            cached.append(key in seen)
            seen.add(key)
            for n in names:
                cols[n].append(config.get(n))
        h = self.history
        frame = {"evals": h.evals, "seconds": h.seconds, "f": h.f, "best_f": h.best_f}
        frame["cached"] = np.array(cached, dtype=bool)
        for n in names:
            frame[n] = pd.Series(cols[n], dtype=_dtype(cols[n]))
        return pd.DataFrame(frame)

    def __repr__(self) -> str:
        base = super().__repr__()
        return f"{base[:-1]}, config={self.config!r}, cache_hits={self.cache_hits})"


def _all_fixed(space: Space, name: str) -> bool:
    return all(isinstance(p, Fixed) for n, p in space.walk() if n == name)


def _dtype(values: list[Any]) -> Any:
    """int and float columns keep a numeric dtype (nullable for inactive rows)."""
    present = [v for v in values if v is not None]
    if present and all(type(v) is int for v in present):
        return "Int64"
    if present and all(type(v) is float for v in present):
        return "float64"
    return object
