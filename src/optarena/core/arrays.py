"""The Oracle's evaluations of single numpy points, as scipy-style solvers ask for them.

A mixin of :class:`~optarena.core.oracle.Oracle` (kept apart so that each module has one
job). On a float64 CPU run of a decided numpy or torch function, with no constraints and no
noisy-run leaders, a point travels from the solver to the function as numpy: no tensor is made
per evaluation, and it is counted and recorded exactly as :meth:`Oracle.value` records it.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from ..budget import Budget
    from ..constraints import ConstraintSet
    from ..result import History
    from .errors import ObjectiveError
    from .objective import Objective

__all__ = ["ArrayEvaluations"]

_F64 = np.dtype(np.float64)
_clock, _isfinite = time.perf_counter, math.isfinite


class ArrayEvaluations:
    """``value_array``: f at a float64 numpy point, counted, without a tensor per call."""

    objective: Objective
    budget: Budget
    constraints: ConstraintSet
    history: History
    dim: int
    dtype: torch.dtype
    nfev: int
    ngev: int
    best_x: torch.Tensor | None
    best_f: float
    best_eval: int | None
    best_violation: float
    last_f: float
    leaders: object | None
    _best_key: tuple[int, float]
    _cpu: bool
    _t0: float

    if TYPE_CHECKING:

        def value(self, x: torch.Tensor | np.ndarray) -> float: ...
        def _check_before(self, n: int = 1, grad: bool = False) -> int: ...
        def _check_after(self, finite: bool = True) -> None: ...
        def _fail(self, e: BaseException, index: int) -> ObjectiveError: ...

    def _init_arrays(self) -> None:
        """Whether this run can take the numpy path (float64 on the CPU, nothing that needs a
        tensor per evaluation: constraints, the leaders of a noisy run)."""
        self._shape = (self.dim,)
        self._lean = (
            self._cpu
            and self.dtype == torch.float64
            and not self.constraints
            and self.leaders is None
        )
        self._lean_ready = False  # and the objective is a decided function with no probe

    def value_array(self, x: np.ndarray) -> float:
        """f(x) for a point scipy-style solvers hand over as a float64 array of shape ``(d,)``,
        which the Oracle may keep as its best point (the caller never writes to it again):
        counted and recorded exactly as :meth:`value`, without making a tensor when the run
        can (see :meth:`_init_arrays`; the function gets its own copy). Any other point or run
        takes :meth:`value`."""
        obj = self.objective
        if not self._lean_ready:
            # the first evaluation of a plain function decides its kind and takes the probe
            self._lean_ready = self._lean and obj._probe is None and obj.backend != "auto"
            if not self._lean_ready:
                return self.value(x)
        if type(x) is not np.ndarray or x.dtype is not _F64 or x.shape != self._shape:
            return self.value(x)
        b = self.budget
        if (b.evals is not None and self.nfev >= b.evals) or b.seconds is not None:
            self._check_before()
        try:
            f = obj._value_array(x)
        except Exception as e:
            raise self._fail(e, self.nfev + 1) from e
        self.nfev += 1
        finite = _isfinite(f)
        ranked = f if finite else math.inf
        if finite and f < self.best_f:  # without constraints the key is (0, best_f)
            self._best_key = (0, f)
            self.best_f = f
            self.best_x = torch.from_numpy(x)  # x is the Oracle's own from now on
            self.best_eval = self.nfev
            self.best_violation = 0.0
        self.last_f = ranked
        self.history._append_owned(f, self.ngev, _clock() - self._t0, x)
        if b.target is not None:
            self._check_after()
        return ranked
