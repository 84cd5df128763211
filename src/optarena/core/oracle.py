"""Oracle: the counted, budgeted view of an Objective that one run uses.

Every evaluation of every method goes through here, so the counts, the budget, the best point
and the History mean exactly the same whatever the method. Methods never count anything.
A limit of the Budget ends the run by raising :class:`StopRun` (a ``BaseException``, so no
``except Exception`` inside a third-party solver can swallow it).
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..budget import Budget, StopReason
from ..constraints import Constraint, ConstraintSet
from ..result import History
from .arrays import ArrayEvaluations
from .batch import BatchCut
from .errors import ObjectiveError, StopRun
from .evaluator import BatchRunner
from .gradients import GradientEvaluations
from .kinds import FirstCalls
from .noise import Leaders
from .objective import Objective, ObjectiveDefinitionError, RowError

__all__ = ["ObjectiveError", "Oracle", "StopRun"]  # the errors live in .errors


class Oracle(FirstCalls, GradientEvaluations, ArrayEvaluations):
    """Counts evaluations, enforces the budget, keeps the best point and the History.

    ``value`` returns the value used for ranking: any NaN or infinity becomes ``+inf`` (the
    History keeps the raw value). A gradient evaluation whose value or gradient is not finite
    ends the run with :attr:`StopReason.NON_FINITE` after it is recorded (unless the call
    says ``stop_on_nonfinite=False``): no gradient method can take a meaningful step from
    there, and some (scipy's trust-constr) would loop forever on NaN.

    Everything about the run is fixed at construction: ``box`` (finite-difference probes stay
    inside it), the constraints, and ``parallel`` (``minimize(..., executor=...)``), which
    evaluates batches in chunks on workers; their values are counted and recorded here exactly
    as local ones. Nothing outside this class writes its counts, best point or History.
    """

    def __init__(
        self,
        objective: Objective,
        x0: torch.Tensor,
        budget: Budget,
        *,
        box: tuple[torch.Tensor, torch.Tensor] | None = None,
        record_x: bool | None = None,
        constraints: tuple[Constraint, ...] = (),
        parallel: BatchRunner | None = None,
        leaders: int = 0,
    ) -> None:
        self.objective = objective
        self.parallel = parallel
        self.dtype = x0.dtype
        self.device = x0.device
        self._cpu = x0.device.type == "cpu"
        self.dim = int(x0.numel())
        self.budget = budget
        if record_x is None:
            record_x = self.dim <= 64
        self.constraints = ConstraintSet(constraints)
        self.history = History(self.dim, record_x, constrained=bool(self.constraints))
        self.nfev = 0
        self.ngev = 0
        self.ncev = 0
        self.njev = 0
        self.best_x: torch.Tensor | None = None
        self.best_f = math.inf
        self.best_eval: int | None = None
        self.best_violation = 0.0
        self._best_key: tuple[int, float] = (2, math.inf)
        self._last_c: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        self._last_batch_c: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        self.last_f = math.nan
        self.batch_mode = "none"
        self._t0 = time.perf_counter()
        self._x0 = x0.detach().clone()
        # The run's box, when it has one: finite-difference probes stay inside it.
        self.lower: torch.Tensor | None = None if box is None else box[0]
        self.upper: torch.Tensor | None = None if box is None else box[1]
        # The lowest few samples at distinct points, kept when the best point of a noisy
        # objective is to be re-evaluated (see .noise); None otherwise.
        self.leaders: Leaders | None = Leaders(leaders) if leaders > 0 else None
        self._init_arrays()

    # -- time and budget -------------------------------------------------------------------
    def restart_clock(self) -> None:
        """Start the run's clock now (called right before the first evaluation)."""
        self._t0 = time.perf_counter()

    @property
    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.perf_counter() - self._t0

    def remaining_evals(self) -> int | None:
        """Evaluations left in the budget (None when evaluations are not limited)."""
        return None if self.budget.evals is None else self.budget.evals - self.nfev

    def _check_before(self, n: int = 1, grad: bool = False) -> int:
        b = self.budget
        if b.evals is not None and self.nfev >= b.evals:
            raise StopRun(StopReason.MAX_EVALS)
        if grad and b.grad_evals is not None and self.ngev >= b.grad_evals:
            raise StopRun(StopReason.MAX_GRAD_EVALS)
        if b.seconds is not None and self.elapsed >= b.seconds:
            raise StopRun(StopReason.MAX_SECONDS)
        return n if b.evals is None else min(n, b.evals - self.nfev)

    @property
    def best_feasible(self) -> bool:
        """Whether the best point satisfies every constraint within its tolerance."""
        return self._best_key[0] == 0

    def _check_after(self, finite: bool = True) -> None:
        t = self.budget.target
        if t is not None and self.best_feasible and self.best_f <= t:
            raise StopRun(StopReason.TARGET_REACHED)
        if not finite:
            raise StopRun(
                StopReason.NON_FINITE,
                f"the objective or its gradient was not finite at evaluation {self.nfev}",
            )

    # -- conversion ------------------------------------------------------------------------
    def as_tensor(self, x: torch.Tensor | np.ndarray | float) -> torch.Tensor:
        """A private copy of ``x`` as a flat tensor of the run's dtype and device."""
        if isinstance(x, np.ndarray) and not x.flags.writeable:
            x = x.copy()  # scipy hands read-only arrays; torch warns on wrapping them
        t = torch.as_tensor(x).detach()
        t = t.to(device=self.device, dtype=self.dtype).reshape(-1).clone()
        if t.numel() != self.dim:
            raise ValueError(f"point has {t.numel()} entries, the problem has {self.dim}")
        return t

    # -- recording -------------------------------------------------------------------------
    def _key(self, ranked: float, beyond: float) -> tuple[int, float]:
        """Ranking: feasible points by value, then infeasible ones by violation."""
        if beyond > 0:
            return (1, beyond)
        return (0, ranked)

    def _record(self, x: torch.Tensor, f: float) -> float:
        self.nfev += 1
        finite = math.isfinite(f)
        ranked = f if finite else math.inf
        raw = beyond = 0.0
        if self.constraints:
            vals = self.constraints.values(x)
            self.ncev += 1
            self._last_c = (x.detach().clone(), vals)
            raw, beyond = self.constraints.excess(vals)
        key = self._key(ranked, beyond)
        if finite and key < self._best_key:
            self._best_key = key
            self.best_f = ranked
            self.best_x = x.detach().clone()
            self.best_eval = self.nfev
            self.best_violation = raw
        if self.leaders is not None and finite:
            self.leaders.offer(key, self.nfev, x)
        self.last_f = ranked
        xs = x.detach().cpu().double().numpy() if self.history.has_x else None
        self.history._append_one(f, self.ngev, self.elapsed, xs, raw, beyond == 0)
        return ranked

    # -- constraints -----------------------------------------------------------------------
    def constraint_values(self, x: torch.Tensor | np.ndarray) -> list[torch.Tensor]:
        """Values of each constraint at ``x``; reuses those computed with the objective there."""
        xt = self.as_tensor(x)
        if self._last_c is not None and torch.equal(self._last_c[0], xt):
            return self._last_c[1]
        vals = self.constraints.values(xt)
        self.ncev += 1
        self._last_c = (xt, vals)
        return vals

    def constraint_batch_values(self, X: torch.Tensor) -> list[torch.Tensor]:
        """Constraint values for the rows of ``X`` (shapes (n, m_i)); reuses those of the last
        evaluated batch when ``X`` is that batch."""
        Xt = torch.as_tensor(X).detach().to(device=self.device, dtype=self.dtype)
        last = self._last_batch_c
        if last is not None and last[0].shape == Xt.shape and torch.equal(last[0], Xt):
            return last[1]
        vals = self.constraints.batch_values(Xt)
        self.ncev += Xt.shape[0]
        return vals

    def constraint_jacobians(
        self, x: torch.Tensor | np.ndarray
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Values and exact autograd Jacobians of each constraint (one counted evaluation)."""
        self.njev += 1
        return self.constraints.values_and_jacobians(self.as_tensor(x))

    def _fail(self, e: BaseException, index: int) -> ObjectiveError:
        if isinstance(e, ObjectiveDefinitionError):
            return ObjectiveError(f"evaluation {index}: {e}", index)
        return ObjectiveError(
            f"the objective {self.objective.name!r} raised {type(e).__name__} at evaluation "
            f"{index}: {e}",
            index,
        )

    # -- evaluations -----------------------------------------------------------------------
    def value(self, x: torch.Tensor | np.ndarray) -> float:
        """f(x), counted as one evaluation; ``+inf`` stands for any non-finite value."""
        self._check_before()
        xt = self.as_tensor(x)
        if not self.objective.decided:
            self._decide(xt)
        if self.objective._probe is not None and (p := self._take_probe(xt)) is not None:
            ranked = self._record(xt, p.f)
            self._check_after()
            return ranked
        try:
            f = self.objective._value(xt.clone())
        except Exception as e:
            raise self._fail(e, self.nfev + 1) from e
        ranked = self._record(xt, f)
        self._check_after()
        return ranked

    def values(self, X: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Values of the rows of ``X`` (shape ``(n, d)``), ``+inf`` for non-finite ones.

        Evaluated as one batch (``batched``, ``vmap`` in chunks, or a loop). When fewer
        evaluations are left than rows, only the first rows are evaluated and recorded, then
        the run stops.
        """
        if type(X) is torch.Tensor and X.dtype == self.dtype and self._on_device(X):
            Xt = X.detach() if X.requires_grad else X  # the usual case: no conversion
        else:
            Xt = torch.as_tensor(X).detach().to(device=self.device, dtype=self.dtype)
        if Xt.ndim != 2 or Xt.shape[1] != self.dim:
            raise ValueError(f"a batch must have shape (n, {self.dim}), got {tuple(Xt.shape)}")
        n = Xt.shape[0]
        if n == 0:
            return torch.empty(0, dtype=self.dtype, device=self.device)
        if not self.objective.decided:
            self._check_before()
            self._decide(Xt[0])
        if self.objective._probe is not None:
            self._check_before()
            if (p := self._take_probe(Xt[0])) is not None:  # row 0 was evaluated by the probe
                head = torch.tensor([self._record(Xt[0].clone(), p.f)], dtype=self.dtype)
                self._check_after()
                head = head.to(self.device)
                return head if n == 1 else torch.cat([head, self.values(Xt[1:])])
        k = self._check_before(n)
        Xk = Xt if k == n else Xt[:k]  # never written to; the objective gets its own copy
        if self.parallel is not None:
            return self._values_on_workers(Xk.clone(), n)
        seconds = self.budget.seconds
        deadline = None if seconds is None else self._t0 + seconds
        try:
            f, self.batch_mode = self.objective._values(Xk.clone(), deadline)
        except BatchCut as e:  # the clock ran out between chunks: keep the rows done
            self._record_batch(Xk[: e.done.shape[0]], e.done)
            self._check_after()
            raise StopRun(StopReason.MAX_SECONDS) from None
        except RowError as e:
            self._record_batch(Xk[: e.index], e.done)
            cause = e.__cause__ if e.__cause__ is not None else e
            if not isinstance(cause, Exception):  # KeyboardInterrupt: end with what we have
                raise cause from None
            raise self._fail(cause, self.nfev + 1) from cause
        except Exception as e:
            raise self._fail(e, self.nfev + 1) from e
        ranked = self._record_batch(Xk, f)
        self._check_after()  # a target reached in a trimmed last batch still says so
        if k < n:
            raise StopRun(StopReason.MAX_EVALS)
        return self._to_tensor(ranked)

    def _on_device(self, X: torch.Tensor) -> bool:
        return X.is_cpu if self._cpu else X.device == self.device

    def _to_tensor(self, ranked: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(ranked)
        if t.dtype != self.dtype or not self._cpu:
            t = t.to(device=self.device, dtype=self.dtype)
        return t

    def _values_on_workers(self, Xk: torch.Tensor, n: int) -> torch.Tensor:
        """values() through the run's executor: chunks evaluated on workers, recorded here."""
        if self.parallel is None:  # pragma: no cover - called only with a runner
            raise RuntimeError("no batch runner")
        out = self.parallel.evaluate(Xk, self.nfev + 1, self.remaining_evals())
        self.batch_mode = out.mode or self.batch_mode
        self._record_batch(out.X, out.f)  # lost attempts are NaN rows: they were spent
        err = out.error
        if err is not None:
            if isinstance(err, Exception) and not isinstance(err, ObjectiveError):
                raise self._fail(err, self.nfev + 1) from err
            raise err  # the executor's own ExecutorError, or Ctrl-C
        if out.values.shape[0] < n:
            raise StopRun(StopReason.MAX_EVALS)
        self._check_after()
        ranked = np.where(np.isfinite(out.values), out.values, np.inf)
        return self._to_tensor(ranked)

    def _record_batch(self, X: torch.Tensor, f: np.ndarray) -> np.ndarray:
        """Record a batch; returns the values ranked for the method (+inf for non-finite)."""
        n = X.shape[0]
        if n == 0:
            return np.where(np.isfinite(f), f, np.inf)
        # argmin lands on a NaN if there is one (and on -inf before finite values): one cheap
        # pass tells whether any value must be ranked +inf
        i = int(f.argmin())
        if math.isnan(f[i]) or f[i] == -math.inf:
            ranked = np.where(np.isfinite(f), f, np.inf)
            i = int(ranked.argmin())
        else:
            ranked = f.copy()
        if self.constraints:
            cvals = self.constraints.batch_values(X)
            self.ncev += n
            self._last_batch_c = (X.detach().clone(), cvals)
            raw, beyond = self.constraints.batch_excess(cvals)
            feasible = beyond <= 0
            # the same ranking as single evaluations, over the rows with a finite value
            cands = [
                (self._key(float(r), float(b)), j)
                for j, (r, b) in enumerate(zip(ranked, beyond, strict=True))
                if math.isfinite(r)
            ]
            i = min(cands)[1] if cands else 0
            key = self._key(float(ranked[i]), float(beyond[i]))
        else:
            raw = feasible = None
            key = (0, float(ranked[i]))
        if math.isfinite(ranked[i]) and key < self._best_key:
            self._best_key = key
            self.best_f = float(ranked[i])
            self.best_x = X[i].clone()  # rows come detached from values()/values_and_grads()
            self.best_eval = self.nfev + i + 1
            self.best_violation = 0.0 if raw is None else float(raw[i])
        if self.leaders is not None:
            self._offer_leaders(X, ranked, beyond if self.constraints else None)
        self.last_f = float(ranked[-1])
        self.nfev += n
        xs = _numpy_copy(X) if self.history.has_x else None
        self.history._append_block(f, self.ngev, self.elapsed, xs, raw, feasible)
        return ranked

    def _offer_leaders(
        self, X: torch.Tensor, ranked: np.ndarray, beyond: np.ndarray | None
    ) -> None:
        """Offer the lowest few finite rows of a batch (before ``nfev`` counts it) to the
        leaders of a noisy run."""
        assert self.leaders is not None
        keys = [
            (self._key(float(r), 0.0 if beyond is None else float(beyond[j])), j)
            for j, r in enumerate(ranked)
            if math.isfinite(r)
        ]
        for key, j in sorted(keys)[: self.leaders.size]:
            self.leaders.offer(key, self.nfev + j + 1, X[j])

    # -- outcome ---------------------------------------------------------------------------
    def best(self) -> tuple[torch.Tensor, float]:
        """The best evaluated point and its value; the start point and ``inf`` if none."""
        if self.best_x is None:
            return self._x0.clone(), math.inf
        return self.best_x.clone(), self.best_f


def _numpy_copy(X: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of ``X`` (it may be a method's tensor, free to change later)."""
    if X.dtype == torch.float64 and X.is_cpu and not X.requires_grad:
        return X.numpy().copy()
    return X.detach().to("cpu", torch.float64).numpy().copy()
