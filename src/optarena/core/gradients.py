"""The gradient evaluations of the Oracle: autograd for one point or a batch, and forward
differences whose every probe is a counted evaluation.

A mixin of :class:`~optarena.core.oracle.Oracle` (kept apart so that each module has one
job); it writes counts only through the Oracle it is part of.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..budget import Budget, StopReason
from .errors import ObjectiveError, StopRun
from .fd import fd_gradients, fd_probes, fd_relative_step
from .kinds import Probe
from .objective import Objective, ObjectiveDefinitionError
from .rows import RowFailure, exact_rows

__all__ = ["GradientEvaluations"]


class GradientEvaluations:
    """Values with gradients, counted as evaluations and gradient evaluations."""

    objective: Objective
    budget: Budget
    dim: int
    dtype: torch.dtype
    device: torch.device
    nfev: int
    ngev: int
    lower: torch.Tensor | None
    upper: torch.Tensor | None

    if TYPE_CHECKING:

        def _check_before(self, n: int = 1, grad: bool = False) -> int: ...
        def _check_after(self, finite: bool = True) -> None: ...
        def _record(self, x: torch.Tensor, f: float) -> float: ...
        def _record_batch(self, X: torch.Tensor, f: np.ndarray) -> np.ndarray: ...
        def _fail(self, e: BaseException, index: int) -> ObjectiveError: ...
        def _take_probe(self, first: torch.Tensor) -> Probe | None: ...
        def as_tensor(self, x: Any) -> torch.Tensor: ...
        def values(self, X: Any) -> torch.Tensor: ...

    def value_and_grad(
        self, x: torch.Tensor | np.ndarray, *, stop_on_nonfinite: bool = True
    ) -> tuple[float, torch.Tensor]:
        """f(x) and its gradient: one evaluation and one gradient evaluation (autograd), or
        ``1 + d`` evaluations and one gradient evaluation with finite differences.

        A non-finite value or gradient ends the run (NON_FINITE) unless
        ``stop_on_nonfinite=False``: then the caller gets it (value ``+inf``) and decides."""
        mode = self.objective.gradient
        if mode == "none":
            raise ObjectiveDefinitionError(
                f"objective {self.objective.name!r} has no gradient (declared gradient='none')"
            )
        if mode == "fd":
            return self._fd_value_and_grad(self.as_tensor(x), stop_on_nonfinite)
        self._check_before(grad=True)
        xt = self.as_tensor(x)
        p = self._take_probe(xt) if self.objective._probe is not None else None
        try:
            if p is None:
                f, g, flat = self.objective._value_grad_flat(xt.clone())
            elif p.g is None:
                raise p.grad_error or ObjectiveDefinitionError("no autograd gradient")
            else:
                f, g, flat = p.f, p.g, p.flat
        except Exception as e:
            raise self._fail(e, self.nfev + 1) from e
        self.ngev += 1
        ranked = self._record(xt, f)
        g = g.to(dtype=self.dtype).reshape(-1)
        self._check_after(
            not stop_on_nonfinite or (math.isfinite(f) and bool(torch.isfinite(g).all()))
        )
        if flat and stop_on_nonfinite and self.ngev == 1:
            raise StopRun(
                StopReason.METHOD_FAILED,
                "the autograd gradient at the first point is exactly zero, and zero everywhere: "
                "the value depends on x only through steps (floor, round, sign, ...), so no "
                "gradient method can move. Use a gradient-free method (nelder_mead, cmaes) or "
                "gradient='fd'",
            )
        return ranked, g

    def _fd_value_and_grad(
        self, x: torch.Tensor, stop_on_nonfinite: bool
    ) -> tuple[float, torch.Tensor]:
        self._check_before(grad=True)
        # the first point of the run, with a variable free to move (not fixed by the box)
        at_start = self.nfev == 0 and self.ngev == 0
        if at_start and self.lower is not None and self.upper is not None:
            at_start = bool((self.upper > self.lower).any())
        f, G = self.fd_values_and_grads(x.unsqueeze(0))
        f0, g = float(f[0]), G[0]
        self._check_after(
            not stop_on_nonfinite or (math.isfinite(f0) and bool(torch.isfinite(g).all()))
        )
        if at_start and stop_on_nonfinite and not bool(g.any()):
            rel = fd_relative_step(self.objective.fd_step, x.dtype)
            raise StopRun(
                StopReason.METHOD_FAILED,
                "the finite-difference gradient at the start is exactly zero: no probe "
                f"x + h*e_i (relative step {rel:.2g} in {str(x.dtype).removeprefix('torch.')}) "
                "changed the value. The function is flat there or changes only in steps "
                "(floor, round, a table lookup, ...), or x0 is a minimum flatter than the "
                "rounding of f at that step, so no gradient method can move. Use a "
                "gradient-free method (nelder_mead, cmaes) or a larger fd_step",
            )
        return f0, g

    def fd_values_and_grads(
        self,
        X: torch.Tensor,
        f0: torch.Tensor | None = None,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Values and forward-difference gradients of the rows of ``X`` from one batch.

        Probes ``x + h_i e_i`` with ``h_i = rel * max(1, |x_i|)`` (backward where the step
        would leave the box: ``lower``/``upper``, default the run's box), ``rel`` the
        objective's ``fd_step`` or, by default, ``sqrt(eps)`` of the dtype of ``X`` (see
        :func:`.fd.fd_relative_step`); the quotient divides by the step each probe really
        made. Every probe is one counted evaluation, every row one gradient evaluation;
        ``f0`` reuses known values.
        """
        lower = self.lower if lower is None else lower
        upper = self.upper if upper is None else upper
        n = X.shape[0]
        limit = self.budget.grad_evals
        if limit is not None and self.ngev + n > limit:  # gradients left decide the rows done
            left = limit - self.ngev
            if left > 0:
                self.fd_values_and_grads(X[:left], None if f0 is None else f0[:left], lower, upper)
            raise StopRun(StopReason.MAX_GRAD_EVALS)
        rel = fd_relative_step(self.objective.fd_step, X.dtype)
        P, taken = fd_probes(rel, X, lower, upper)
        d = X.shape[1]
        rows = P.reshape(n * d, d) if f0 is not None else torch.cat([X, P.reshape(n * d, d)])
        vals = self.values(rows)
        if f0 is None:
            f0, vals = vals[:n], vals[n:]
        G = fd_gradients(f0, vals, taken)
        self.ngev += n
        return f0, G

    def values_and_grads(self, X: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Values (``+inf`` for non-finite ones) and gradients of the rows of ``X``.

        The batched counterpart of :meth:`value_and_grad`, so that many points (the starts of
        a multi-start search) cost one differentiated call instead of one each: every row is
        one evaluation and one gradient evaluation, recorded as one block (its rows share the
        block's clock reading and gradient count). When fewer evaluations or gradient
        evaluations are left than rows, only the first rows are evaluated and recorded, then
        the run stops. A non-finite row does not end the run, whatever
        ``stop_on_nonfinite``: the caller drops that point and goes on with the others.
        Objectives with ``gradient="fd"`` get forward differences, every probe counted.

        Returns:
            The ranked values, shape ``(n,)``, and the gradients, shape ``(n, d)``.
        """
        Xt = torch.as_tensor(X).detach().to(device=self.device, dtype=self.dtype)
        if Xt.ndim != 2 or Xt.shape[1] != self.dim:
            raise ValueError(f"a batch must have shape (n, {self.dim}), got {tuple(Xt.shape)}")
        mode = self.objective.gradient
        if mode == "none":
            raise ObjectiveDefinitionError(
                f"objective {self.objective.name!r} has no gradient (declared gradient='none')"
            )
        if mode == "fd":
            return self.fd_values_and_grads(Xt)
        n = Xt.shape[0]
        if n == 0:
            return Xt.new_empty(0), Xt.new_empty((0, self.dim))
        k = self._check_before(n, grad=True)
        limit = self.budget.grad_evals
        if limit is not None:
            k = min(k, limit - self.ngev)
        if self.objective._probe is not None:
            p = self._take_probe(Xt[0])
            if p is not None:  # row 0 was evaluated by the probe: the rest as a batch
                if p.g is None:
                    err = p.grad_error or ObjectiveDefinitionError("no autograd gradient")
                    raise self._fail(err, self.nfev + 1) from err
                self.ngev += 1
                r0 = self._record(Xt[0].clone(), p.f)
                self._check_after()
                f0 = torch.tensor([r0], dtype=self.dtype, device=self.device)
                g0 = p.g.to(device=self.device, dtype=self.dtype).reshape(1, -1)
                if n == 1:
                    return f0, g0
                f1, G1 = self.values_and_grads(Xt[1:])
                return torch.cat([f0, f1]), torch.cat([g0, G1])
            k = self._check_before(n, grad=True)
            if limit is not None:
                k = min(k, limit - self.ngev)
        Xk = Xt[:k].clone()
        try:
            f, G = exact_rows(self.objective, Xk)
        except RowFailure as e:
            self.ngev += e.index
            self._record_batch(Xk[: e.index], e.f)
            if not isinstance(e.cause, Exception):  # Ctrl-C: end with what was evaluated
                raise e.cause from None
            raise self._fail(e.cause, self.nfev + 1) from e.cause
        self.ngev += k
        self._record_batch(Xk, f)
        self._check_after()
        if k < n:
            grads_left = limit is not None and self.ngev >= limit
            raise StopRun(StopReason.MAX_GRAD_EVALS if grads_left else StopReason.MAX_EVALS)
        ranked = torch.as_tensor(np.where(np.isfinite(f), f, np.inf), device=self.device)
        return ranked.to(self.dtype), G.to(self.dtype)
