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
        "_pending_f",
        "_pending_g",
        "_pending_ok",
        "_pending_s",
        "_pending_v",
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
        self._stored = 0  # rows in blocks (the pending rows are counted by their lists)
        # Single rows wait in plain lists, one per column (an append each: the cheapest write
        # in Python), and become one block of arrays when a batch comes or the columns are read.
        self._pending_f: list[float] = []
        self._pending_g: list[int] = []
        self._pending_s: list[float] = []
        self._pending_v: list[float] = []  # constrained runs only
        self._pending_ok: list[bool] = []  # constrained runs only
        # their points are copied into rows of one buffer (a row write costs what a copy
        # does; an array kept per row would cost its allocation and, at the flush, its release)
        self._pending_x = np.empty((0, dim), dtype=np.float64)

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
        if self._record_x:
            x = np.asarray(x, dtype=np.float64).reshape(self._dim)
        self._append_owned(f, grad_evals, seconds, x, violation, feasible)

    def _append_owned(
        self,
        f: float,
        grad_evals: int,
        seconds: float,
        x: np.ndarray | None,
        violation: float = 0.0,
        feasible: bool = True,
    ) -> None:
        """One row; its point ``x`` (float64, shape ``(d,)``, when points are recorded) is
        copied before this returns."""
        if self._record_x:
            i = len(self._pending_f)
            try:
                self._pending_x[i] = x
            except IndexError:  # the buffer is full
                self._grow(i)
                self._pending_x[i] = x
        self._pending_f.append(f)
        self._pending_g.append(grad_evals)
        self._pending_s.append(seconds)
        if self._constrained:
            self._pending_v.append(violation)
            self._pending_ok.append(feasible)
        # (the columns cached for reading go stale: _columns() sees the pending row)

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
        if self._pending_f:
            self._flush()
        if type(f) is not np.ndarray or f.dtype != np.float64:
            f = np.asarray(f, dtype=np.float64)
        n = f.shape[0]
        xs = None
        if self._record_x:
            ok = type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (n, self._dim)
            xs = x if ok else np.asarray(x, dtype=np.float64).reshape(n, self._dim)
        self._add(f, grad_evals, seconds, xs, violation, feasible)
        self._cache = None

    def _flush(self) -> None:
        if not self._pending_f:
            return
        f = np.array(self._pending_f, dtype=np.float64)
        g = np.array(self._pending_g, dtype=np.int64)
        sec = np.array(self._pending_s, dtype=np.float64)
        xs = viol = ok = None
        if self._record_x:
            xs = self._pending_x[: f.shape[0]].copy()
        if self._constrained:
            viol = np.array(self._pending_v, dtype=np.float64)
            ok = np.array(self._pending_ok, dtype=bool)
        for part in (
            self._pending_f,
            self._pending_g,
            self._pending_s,
            self._pending_v,
            self._pending_ok,
        ):
            part.clear()
        self._add(f, g, sec, xs, viol, ok)
        self._cache = None

    def _grow(self, n: int) -> None:
        """Room for more pending points: twice as many (at first, up to 256 rows or 512 kB)."""
        first = min(256, max(1, (1 << 16) // max(1, self._dim)))
        buf = np.empty((max(first, 2 * n), self._dim), dtype=np.float64)
        buf[:n] = self._pending_x[:n]
        self._pending_x = buf

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
        if self._cache is None or self._pending_f:
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
        return self._stored + len(self._pending_f)

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
        return f"History(n={len(self)})"


@dataclass(frozen=True)
class Result:
    """The outcome of :func:`optarena.minimize`.

    ``x`` is the best point that was actually evaluated and ``fun`` its value (``inf`` when no
    finite value was ever seen, in which case ``x`` is the start). ``nfev`` and ``ngev`` are
    the exact numbers of objective and gradient evaluations; ``elapsed`` is wall time in
    seconds; ``stop_reason`` says why the run ended and ``message`` in words (a spent budget
    or a reached target names itself and the evaluation that found the best value). With
    constraints, ``x`` is the best feasible point (within each constraint's tolerance) or, if
    none was found, the least violating one; ``ncev`` counts constraint evaluations,
    ``max_violation`` is the largest violation at ``x`` and ``feasible`` says whether it is
    within tolerance.

    ``x`` is a tensor of the run's dtype and device; on the CPU, ``np.asarray(res.x)``
    (or :meth:`x_numpy`, always a float64 copy) gives a numpy array. ``success`` is True only
    when the target was reached or the method converged (scipy's meaning): False for a run
    that spent its budget (a global method that restarts until the budget ends says False
    unless a target is given), was stopped, ended by an error, on non-finite values, or
    because the method could not work (``method_failed``: e.g. an autograd gradient that is
    zero everywhere, a step function).
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
        """True when the run reached the budget's target or the method's own convergence
        test ended it, with a finite (and feasible) value, as scipy's ``success``: a run
        ended by a limit of the budget, the callback, Ctrl-C, an error or non-finite values
        is not known to have found what it looked for (give ``Budget(target=...)`` to say
        what counts)."""
        return (
            math.isfinite(self.fun)
            and self.feasible
            and self.stop_reason in (StopReason.CONVERGED, StopReason.TARGET_REACHED)
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
