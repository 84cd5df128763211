"""The outcome of a run: a frozen Result and its columnar, evaluation-indexed History."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from .budget import StopReason

__all__ = ["History", "Result"]


class History:
    """Per-evaluation record of a run, kept as columns (one row per objective evaluation).

    Columns: ``evals`` (1-based evaluation index), ``grad_evals`` (gradient evaluations done so
    far), ``seconds`` (since the run started), ``f`` (the value as returned, NaN kept),
    ``best_f`` (best finite value so far among feasible points, ``inf`` before the first),
    ``violation`` (largest constraint violation, 0 without constraints) and, when recorded,
    ``x`` (the evaluated points, shape ``(n, d)``). Rows are appended in evaluation order only, so
    the x-axis of every plot is a count of evaluations, never an "iteration".
    """

    __slots__ = (
        "_blocks",
        "_cache",
        "_constrained",
        "_dim",
        "_n",
        "_pending",
        "_pending_x",
        "_record_x",
        "_stored",
    )

    _NAMES = ("evals", "grad_evals", "seconds", "f", "best_f", "violation")

    def __init__(self, dim: int, record_x: bool, constrained: bool = False) -> None:
        self._dim = dim
        self._record_x = record_x
        self._constrained = constrained
        self._blocks: list[tuple[np.ndarray | None, ...]] = []
        self._cache: dict[str, np.ndarray] | None = None
        self._n = 0
        self._stored = 0
        self._pending: list[tuple[float, int, float, float, bool]] = []
        self._pending_x: list[np.ndarray] = []

    # -- writing (the Oracle only) -------------------------------------------------------
    def _append_one(
        self,
        f: float,
        grad_evals: int,
        seconds: float,
        x: np.ndarray | None,
        violation: float = 0.0,
        feasible: bool = True,
    ) -> None:
        self._pending.append((f, grad_evals, seconds, violation, feasible))
        if self._record_x:
            self._pending_x.append(np.asarray(x, dtype=np.float64).reshape(self._dim))
        self._n += 1
        self._cache = None

    def _append_block(
        self,
        f: np.ndarray,
        grad_evals: int,
        seconds: float,
        x: np.ndarray | None,
        violation: np.ndarray | None = None,
        feasible: np.ndarray | None = None,
    ) -> None:
        """A batch of rows sharing one gradient count and one time (a generation)."""
        if self._pending:
            self._flush()
        if type(f) is not np.ndarray or f.dtype != np.float64:
            f = np.asarray(f, dtype=np.float64)
        n = f.shape[0]
        xs = None
        if self._record_x:
            ok = type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (n, self._dim)
            xs = x if ok else np.asarray(x, dtype=np.float64).reshape(n, self._dim)
        self._add(f, grad_evals, seconds, xs, violation, feasible)
        self._n += n
        self._cache = None

    def _flush(self) -> None:
        if not self._pending:
            return
        cols = np.array(self._pending, dtype=np.float64).reshape(-1, 5)
        xs = np.stack(self._pending_x) if self._record_x else None
        self._pending.clear()
        self._pending_x.clear()
        self._add(
            cols[:, 0],
            cols[:, 1].astype(np.int64),
            cols[:, 2],
            xs,
            cols[:, 3] if self._constrained else None,
            cols[:, 4].astype(bool) if self._constrained else None,
        )

    def _add(
        self,
        f: np.ndarray,
        g: np.ndarray | int,
        sec: np.ndarray | float,
        xs: np.ndarray | None,
        viol: np.ndarray | None,
        feasible: np.ndarray | None,
    ) -> None:
        # Per-block scalars (g, sec), absent constraint columns and the best-so-far column are
        # computed only when the columns are read: a generation costs a tuple, not numpy calls.
        n = f.shape[0]
        self._blocks.append((self._stored + 1, n, g, sec, f, viol, feasible, xs))
        self._stored += n

    # -- reading ------------------------------------------------------------------------
    def _columns(self) -> dict[str, np.ndarray]:
        if self._cache is None:
            self._flush()
            parts: dict[str, list[np.ndarray]] = {name: [] for name in self._NAMES}
            xs = []
            ok_parts = []
            for start, n, g, sec, f, viol, feasible, x in self._blocks:
                parts["evals"].append(np.arange(start, start + n, dtype=np.int64))
                parts["grad_evals"].append(np.broadcast_to(np.asarray(g, np.int64), (n,)))
                parts["seconds"].append(np.broadcast_to(np.asarray(sec, np.float64), (n,)))
                parts["f"].append(f)
                parts["violation"].append(np.zeros(n) if viol is None else np.asarray(viol))
                ok_parts.append(np.ones(n, dtype=bool) if feasible is None else feasible)
                if self._record_x:
                    xs.append(x)
            if parts["f"]:  # best finite feasible value so far, over every block at once
                f_all = np.concatenate(parts["f"]).astype(np.float64)
                ok = np.isfinite(f_all) & np.concatenate(ok_parts)
                parts["f"] = [f_all]  # concatenated once
                parts["best_f"] = [np.minimum.accumulate(np.where(ok, f_all, np.inf))]
            empty = (np.int64, np.int64, np.float64, np.float64, np.float64, np.float64)
            cols: dict[str, np.ndarray] = {}
            for name, dt in zip(self._NAMES, empty, strict=True):
                p = parts[name]
                cols[name] = np.concatenate(p).astype(dt) if p else np.empty(0, dtype=dt)
            if self._record_x:
                cols["x"] = np.concatenate(xs) if xs else np.empty((0, self._dim))
            for arr in cols.values():
                arr.setflags(write=False)
            self._cache = cols
        return self._cache

    @property
    def constrained(self) -> bool:
        """Whether the run had constraints (then ``violation`` is meaningful)."""
        return self._constrained

    @property
    def violation(self) -> np.ndarray:
        """Largest constraint violation at each evaluation (all 0 without constraints)."""
        return self._columns()["violation"]

    def __len__(self) -> int:
        return self._n

    @property
    def evals(self) -> np.ndarray:
        """1-based index of each evaluation."""
        return self._columns()["evals"]

    @property
    def grad_evals(self) -> np.ndarray:
        """Gradient evaluations done up to and including each evaluation."""
        return self._columns()["grad_evals"]

    @property
    def seconds(self) -> np.ndarray:
        """Wall time since the start of the run at the end of each evaluation."""
        return self._columns()["seconds"]

    @property
    def f(self) -> np.ndarray:
        """Objective value of each evaluation as returned (NaN and inf kept)."""
        return self._columns()["f"]

    @property
    def best_f(self) -> np.ndarray:
        """Best finite value up to each evaluation (``inf`` until the first finite one)."""
        return self._columns()["best_f"]

    @property
    def has_x(self) -> bool:
        """Whether evaluated points were recorded (they are for small dimensions by default)."""
        return self._record_x

    @property
    def x(self) -> np.ndarray:
        """Evaluated points, shape ``(len(self), d)``; raises if points were not recorded."""
        if not self._record_x:
            raise AttributeError(
                "this history did not record points; pass record_x=True to the Objective"
            )
        return self._columns()["x"]

    def as_dict(self) -> dict[str, np.ndarray]:
        """The scalar columns as a dict of 1-D arrays (points excluded; ``violation`` only
        for constrained runs)."""
        c = self._columns()
        names = self._NAMES if self._constrained else self._NAMES[:-1]
        return {k: c[k] for k in names}

    def to_pandas(self) -> Any:
        """The scalar columns as a ``pandas.DataFrame`` (needs pandas installed)."""
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("History.to_pandas() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.as_dict())

    def evals_to_reach(self, target: float) -> int | None:
        """Evaluations needed until the best value was ``<= target``; None if never."""
        hit = np.flatnonzero(self.best_f <= target)
        return int(self.evals[hit[0]]) if hit.size else None

    def __repr__(self) -> str:
        return f"History(n={self._n})"


@dataclass(frozen=True)
class Result:
    """The outcome of :func:`optarena.minimize`.

    ``x`` is the best point that was actually evaluated and ``fun`` its value (``inf`` when no
    finite value was ever seen, in which case ``x`` is the start). ``nfev`` and ``ngev`` are
    the exact numbers of objective and gradient evaluations; ``elapsed`` is wall time in
    seconds; ``stop_reason`` says why the run ended. With constraints, ``x`` is the best
    feasible point (within each constraint's tolerance) or, if none was found, the least
    violating one; ``ncev`` counts constraint evaluations, ``max_violation`` is the largest
    violation at ``x`` and ``feasible`` says whether it is within tolerance.

    ``x`` is a tensor of the run's dtype and device; on the CPU, ``np.asarray(res.x)``
    (or :meth:`x_numpy`, always a float64 copy) gives a numpy array. ``success`` is False for
    a run that ended by an error, on non-finite values, or because the method could not work
    (``method_failed``: e.g. an autograd gradient that is zero everywhere, a step function).
    """

    x: torch.Tensor
    fun: float
    nfev: int
    ngev: int
    elapsed: float
    stop_reason: StopReason
    history: History
    method: str
    seed: int | None
    message: str = ""
    best_eval: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    ncev: int = 0
    max_violation: float = 0.0
    feasible: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", MappingProxyType(dict(self.info)))

    @property
    def success(self) -> bool:
        """True when a finite value was found and the run ended normally (not by an error)."""
        return (
            math.isfinite(self.fun)
            and self.feasible
            and self.stop_reason
            not in (
                StopReason.ERROR,
                StopReason.NO_FINITE_VALUE,
                StopReason.NON_FINITE,
                StopReason.METHOD_FAILED,
            )
        )

    def x_numpy(self) -> np.ndarray:
        """The best point as a float64 numpy array."""
        return self.x.detach().cpu().double().numpy().copy()

    def __repr__(self) -> str:
        return (
            f"Result(method={self.method!r}, fun={self.fun:.10g}, nfev={self.nfev}, "
            f"ngev={self.ngev}, elapsed={self.elapsed:.3g}s, "
            f"stop_reason={self.stop_reason.value!r})"
        )
