"""Scope: a capped, watched, optionally transformed view of a parent evaluator (one sub-run).

Composites run their inner methods through a Scope: a phase of a chain, one start of a
multi-start, one outer iteration of a penalty method. The Scope is an :class:`Evaluator`, so
any method runs on it unchanged, and every evaluation still goes through the parent (the run's
Oracle, or an enclosing Scope): the parent alone counts, keeps the run's best point and writes
the History. The Scope reads the parent's counts and keeps only what the sub-run needs: its own
best point, first and last value.

- ``cap``: evaluations this sub-run may spend; once spent (a last batch trimmed to what is
  left), the sub-run ends with :class:`ScopeEnded` (``why == "share"``).
- ``watch(scope)``: called after every evaluation or batch; it may end the sub-run by raising
  ``ScopeEnded(why, scope)``.
- ``transform``: a merit function on top of the objective (penalty, augmented Lagrangian): the
  inner method sees ``f + term(constraint values)``, gradients through the constraints'
  Jacobians, and an unconstrained problem.

A gradient evaluation whose value or gradient is not finite ends the sub-run, not the whole run
(``ScopeEnded`` with ``why == "non_finite"``): the inner method diverged, and the composite that
opened the Scope decides what follows (a more cautious restart from the best point, the next
phase or start).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from ..budget import StopReason
from ..constraints import ConstraintSet
from .errors import StopRun
from .evaluator import Evaluator

if TYPE_CHECKING:
    from ..budget import Budget
    from ..result import History
    from .objective import Objective

__all__ = [
    "CAP_SPENT",
    "DIVERGED",
    "ConstraintEvaluator",
    "Merit",
    "Scope",
    "ScopeEnded",
    "sub_seed",
]

#: Why a sub-run ended when its cap was spent.
CAP_SPENT = "share"
#: Why a sub-run ended when a gradient evaluation gave a non-finite value or gradient.
DIVERGED = "non_finite"


def sub_seed(seed: int, salt: int) -> int:
    """The seed of sub-run ``salt`` of a run seeded ``seed``: distinct sub-runs draw
    independent streams, and the same run always gives the same sub-seeds."""
    return (seed * 1_000_003 + salt) % (2**63)


class ScopeEnded(BaseException):
    """A sub-run was ended through its Scope (its cap, or its watch); ``why`` says how.

    A ``BaseException``, like :class:`StopRun`, so that no ``except Exception`` inside a
    third-party solver swallows it; whoever opened ``scope`` catches it (and only that one).
    """

    def __init__(self, why: str, scope: Scope) -> None:
        super().__init__(why)
        self.why = why
        self.scope = scope


class Merit(Protocol):
    """A merit term computed from constraint values: the Scope's ``transform``.

    ``merit(vals, want_grad)`` takes the values of each constraint at one point (a list of
    ``(m_i,)`` tensors) and returns the term and one weight vector per constraint, so that the
    merit is ``f + term`` and its gradient ``f' + sum_i w_i @ J_i``; ``merit.batch(vals)``
    takes ``(n, m_i)`` values and returns the ``(n,)`` terms.
    """

    def __call__(
        self, vals: list[torch.Tensor], want_grad: bool
    ) -> tuple[float, list[torch.Tensor]]: ...

    def batch(self, vals: list[torch.Tensor]) -> torch.Tensor: ...


@runtime_checkable
class ConstraintEvaluator(Evaluator, Protocol):
    """An evaluator that also evaluates the run's constraints (the Oracle, a Scope)."""

    def constraint_values(self, x: Any) -> list[torch.Tensor]: ...

    def constraint_batch_values(self, X: torch.Tensor) -> list[torch.Tensor]: ...

    def constraint_jacobians(self, x: Any) -> list[tuple[torch.Tensor, torch.Tensor]]: ...


_F64 = np.dtype(np.float64)


def _ranked(f: float) -> float:
    return f if math.isfinite(f) else math.inf


class Scope:
    """The parent evaluator as one sub-run sees it; see the module docstring."""

    def __init__(
        self,
        parent: Evaluator,
        *,
        cap: int | None = None,
        watch: Callable[[Scope], None] | None = None,
        transform: Merit | None = None,
    ) -> None:
        self._constrained = parent if isinstance(parent, ConstraintEvaluator) else None
        if transform is not None and self._constrained is None:
            raise TypeError("a transformed Scope needs a parent that evaluates constraints")
        self.parent = parent
        self.cap = cap
        self.watch = watch
        self.transform = transform
        self.start = parent.nfev
        self.objective: Objective = parent.objective
        self.dim: int = parent.dim
        self.dtype: torch.dtype = parent.dtype
        self.device: torch.device = parent.device
        self.budget: Budget = parent.budget
        self.history: History = parent.history  # the parent's: a Scope never writes it
        # the merit problem is unconstrained: the constraints are inside the merit
        self.constraints = ConstraintSet(()) if transform is not None else parent.constraints
        self.best_x: torch.Tensor | None = None
        self.best_f = math.inf
        self.best_eval: int | None = None  # the parent's evaluation index of best_x
        self.last_f = math.nan
        self.first_f = math.inf  # the sub-run's first value (best of its first batch)
        # value_array forwards numpy points to the parent (no transform to apply to them)
        self._lean = transform is None and self.dtype == torch.float64 and self.device.type == "cpu"
        self._shape = (self.dim,)

    # -- counts (read from the parent) -------------------------------------------------------
    @property
    def nfev(self) -> int:
        """The run's evaluations so far (the parent's count)."""
        return self.parent.nfev

    @property
    def ngev(self) -> int:
        """The run's gradient evaluations so far (the parent's count)."""
        return self.parent.ngev

    @property
    def elapsed(self) -> float:
        """Seconds since the run started (the parent's clock)."""
        return self.parent.elapsed

    @property
    def used(self) -> int:
        """Evaluations spent by this sub-run."""
        return self.parent.nfev - self.start

    @property
    def best_feasible(self) -> bool:
        """Whether the best point is feasible: always, for the unconstrained merit problem."""
        return self.transform is not None or bool(getattr(self.parent, "best_feasible", True))

    def remaining_evals(self) -> int | None:
        """Evaluations left to this sub-run: its cap and the parent's limit, whichever is less."""
        left = self.parent.remaining_evals()
        if self.cap is None:
            return left
        mine = self.cap - self.used
        return mine if left is None else min(mine, left)

    def as_tensor(self, x: Any) -> torch.Tensor:
        """A private copy of ``x`` as a flat tensor of the run's dtype and device."""
        return self.parent.as_tensor(x)

    def best(self) -> tuple[torch.Tensor, float]:
        """This sub-run's best point and value (the parent's best point and ``inf`` before
        the sub-run's first evaluation)."""
        if self.best_x is None:
            return self.parent.best()[0], math.inf
        return self.best_x.clone(), self.best_f

    # -- bookkeeping ---------------------------------------------------------------------------
    def _gate(self, n: int = 1) -> int:
        """How many of ``n`` evaluations the cap allows (ScopeEnded when none)."""
        if self.cap is None:
            return n
        left = self.cap - self.used
        if left <= 0:
            raise ScopeEnded(CAP_SPENT, self)
        return min(n, left)

    def _keep(self, x: torch.Tensor | np.ndarray, f: float, index: int) -> None:
        """Note one evaluation (the best of a batch): first, best and last value, then the
        watch. A numpy ``x`` comes from :meth:`value_array`: nobody writes to it again."""
        if math.isnan(self.last_f):  # the sub-run's first evaluation (or batch)
            self.first_f = f
        if f < self.best_f:
            best = torch.from_numpy(x) if type(x) is np.ndarray else x.detach().clone()
            self.best_f, self.best_x, self.best_eval = f, best, index
        self.last_f = f
        if self.watch is not None:
            self.watch(self)

    def _keep_rows(self, X: torch.Tensor, f: torch.Tensor, trimmed: bool) -> None:
        i = int(torch.argmin(f))
        self._keep(X[i], float(f[i]), self.parent.nfev - X.shape[0] + i + 1)
        self.last_f = float(f[-1])
        if trimmed:
            raise ScopeEnded(CAP_SPENT, self)

    def _batch(self, X: Any) -> torch.Tensor:
        return torch.as_tensor(X).detach().to(device=self.device, dtype=self.dtype)

    # -- the merit transform -------------------------------------------------------------------
    def _cons(self) -> ConstraintEvaluator:
        if self._constrained is None:
            raise TypeError("the parent of this Scope does not evaluate constraints")
        return self._constrained

    def _merit_grad(self, x: torch.Tensor, f: float, g: torch.Tensor) -> tuple[float, torch.Tensor]:
        """Merit value and gradient at ``x`` from f, f' and the constraints' Jacobians."""
        assert self.transform is not None
        pairs = self._cons().constraint_jacobians(x)
        term, weights = self.transform([v for v, _ in pairs], want_grad=True)
        g = g.clone()
        for w, (_, jac) in zip(weights, pairs, strict=True):
            if jac.numel():
                g = g + (w.to(jac.dtype) @ jac).to(g.dtype)
        return _ranked(f + term), g

    def _merit_batch(self, X: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """Merit values of the rows of ``X`` from their objective values ``f``."""
        assert self.transform is not None
        if X.shape[0] == 0:
            return f
        term = self.transform.batch(self._cons().constraint_batch_values(X))
        m = f + term.to(f.dtype)
        return torch.where(torch.isfinite(m), m, torch.full_like(m, math.inf))

    def _merit_rows(
        self, X: torch.Tensor, f: torch.Tensor, G: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out_f, out_G = f.clone(), G.clone()
        for j in range(X.shape[0]):
            fj, gj = self._merit_grad(X[j], float(f[j]), G[j])
            out_f[j], out_G[j] = fj, gj
        return out_f, out_G

    # -- evaluations ---------------------------------------------------------------------------
    def value(self, x: Any) -> float:
        """f(x) (the merit with a transform), counted once by the parent."""
        self._gate()
        xt = self.as_tensor(x)
        f = self.parent.value(xt)
        if self.transform is not None:
            term, _ = self.transform(self._cons().constraint_values(xt), want_grad=False)
            f = _ranked(f + term)
        self._keep(xt, f, self.parent.nfev)
        return f

    def value_array(self, x: np.ndarray) -> float:
        """f(x) for a float64 numpy point of shape ``(d,)`` that the caller never writes to
        again (scipy-style solvers): the parent's ``value_array``, so no tensor is made per
        call, under this Scope's cap and watch and kept exactly as :meth:`value` keeps it.
        With a transform (the merit needs the constraints' tensors), or any other point or
        dtype, :meth:`value`."""
        if not self._lean or type(x) is not np.ndarray or x.dtype is not _F64:
            return self.value(x)
        if x.shape != self._shape:
            return self.value(x)
        self._gate()
        f = self.parent.value_array(x)
        self._keep(x, f, self.parent.nfev)
        return f

    def value_and_grad(
        self, x: Any, *, stop_on_nonfinite: bool = True
    ) -> tuple[float, torch.Tensor]:
        """f(x) and its gradient (the merit's with a transform), counted by the parent.

        A value or gradient that is not finite ends this sub-run (``ScopeEnded`` with
        :data:`DIVERGED`, after it is counted and recorded) instead of the whole run, unless
        ``stop_on_nonfinite=False``: then the caller gets it (value ``+inf``) and decides."""
        self._gate()
        xt = self.as_tensor(x)
        try:
            f, g = self.parent.value_and_grad(xt, stop_on_nonfinite=stop_on_nonfinite)
        except StopRun as stop:  # the Oracle's end of the run on a non-finite gradient
            if stop.reason is not StopReason.NON_FINITE:
                raise
            self._keep(xt, math.inf, self.parent.nfev)
            raise ScopeEnded(DIVERGED, self) from None
        except ScopeEnded as end:  # an enclosing Scope's: this evaluation is this sub-run's
            if end.why != DIVERGED:
                raise
            self._keep(xt, math.inf, self.parent.nfev)
            raise ScopeEnded(DIVERGED, self) from None
        if self.transform is not None:
            f, g = self._merit_grad(xt, f, g)
        self._keep(xt, f, self.parent.nfev)
        if stop_on_nonfinite and not (math.isfinite(f) and bool(torch.isfinite(g).all())):
            raise ScopeEnded(DIVERGED, self)  # the merit's terms were not finite
        return f, g

    def values(self, X: Any) -> torch.Tensor:
        """Values of the rows of ``X``; a batch larger than the cap allows is trimmed, its
        leading rows evaluated, then the sub-run ends."""

        def evaluate(Xk: torch.Tensor) -> torch.Tensor:
            f = self.parent.values(Xk)
            return f if self.transform is None else self._merit_batch(Xk, f)

        return self._rows(X, evaluate)

    def values_and_grads(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Values and gradients of the rows of ``X``, trimmed to the cap like :meth:`values`."""

        def evaluate(Xk: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            f, G = self.parent.values_and_grads(Xk)
            return (f, G) if self.transform is None else self._merit_rows(Xk, f, G)

        return self._rows(X, evaluate)

    def _rows(self, X: Any, evaluate: Callable[[torch.Tensor], Any]) -> Any:
        """``evaluate`` the rows of ``X`` the cap allows (an empty or malformed batch goes to
        the parent as it is); the sub-run ends after a trimmed batch."""
        Xt = self._batch(X)
        n = Xt.shape[0] if Xt.ndim == 2 else 0
        if n == 0:
            return evaluate(Xt)
        k = self._gate(n)
        out = evaluate(Xt[:k])
        self._keep_rows(Xt[:k], out[0] if isinstance(out, tuple) else out, k < n)
        return out

    def fd_values_and_grads(
        self,
        X: torch.Tensor,
        f0: torch.Tensor | None = None,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Values and forward-difference gradients of the rows of ``X`` (the parent's probes,
        each counted there); only as many rows as the cap pays for, then the sub-run ends.
        With a transform the merit's gradient adds the constraints' exact Jacobians to the
        objective's differences (``f0``, when given, holds merit values)."""
        n = X.shape[0]
        per_row = self.dim + (0 if f0 is not None else 1)
        k = n
        if self.cap is not None:
            k = min(n, max(0, self.cap - self.used) // per_row)
            if k == 0:
                raise ScopeEnded(CAP_SPENT, self)
        Xk, f0k = X[:k], None if f0 is None else f0[:k]
        if self.transform is not None and f0k is not None:  # back to objective values
            term = self.transform.batch(self._cons().constraint_batch_values(Xk))
            f0k = f0k - term.to(f0k.dtype)
        f, G = self.parent.fd_values_and_grads(Xk, f0k, lower, upper)
        if self.transform is not None:
            f, G = self._merit_rows(Xk, f, G)
        self._keep_rows(Xk, f, k < n)
        return f, G

    # -- constraints (of the parent; none for the merit problem) -------------------------------
    def constraint_values(self, x: Any) -> list[torch.Tensor]:
        """Values of each constraint at ``x`` (none inside a transformed Scope)."""
        return [] if self.transform is not None else self._cons().constraint_values(x)

    def constraint_batch_values(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Constraint values for the rows of ``X`` (none inside a transformed Scope)."""
        if self.transform is not None:
            return []
        return self._cons().constraint_batch_values(X)

    def constraint_jacobians(self, x: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Values and Jacobians of each constraint (none inside a transformed Scope)."""
        if self.transform is not None:
            return []
        return self._cons().constraint_jacobians(x)
