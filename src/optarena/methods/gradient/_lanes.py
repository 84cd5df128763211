"""The multi-start driver of the quasi-Newton engine: many L-BFGS or BFGS searches as one.

Each lane of :class:`BatchedQuasiNewton` is one independent local search of the shared engine
(``_quasi_newton.py``); every round evaluates one point per lane in a single batch
(``values_and_grads``, or forward differences), so K starts cost K rows of one batched call
instead of K separate runs. This module adds what only many starts need: a queue of starts,
successive halving, duplicate detection and a line search that backtracks by interpolation.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...core.evaluator import Evaluator
from .._base import Method, RunContext
from ._quasi_newton import DenseBFGS, LimitedMemory, QuasiNewton

__all__ = ["BatchedQuasiNewton"]


class BatchedQuasiNewton:
    """Independent BFGS (dense) or L-BFGS searches advanced together in ``lanes``.

    Each round evaluates one point per lane, all in one batch: a new start, or the current
    trial point of the lane's backtracking Armijo line search. A lane whose trial is accepted
    updates its curvature and proposes the next trial at once, so no lane waits for another's
    line search. Dense BFGS starts from the identity and takes scipy's first trial step (the
    last decrease, extrapolated quadratically): on badly scaled problems such as mlp_identity
    that needs about half the evaluations of a scaled start. L-BFGS keeps ``history_size``
    pairs in compact form (:class:`LimitedMemory`). With bounds, directions live on the free
    variables and trial points on the projection arc, as in ``lbfgs``.
    """

    BACKTRACKS = 20
    MAX_DENSE_FLOATS = 2**27

    def __init__(
        self,
        local: Method,
        oracle: Evaluator,
        ctx: RunContext,
        lanes: int,
        dedup: float,
        exact: bool,
        cap: int,
        race: int = 0,
    ) -> None:
        self.oracle, self.ctx, self.dedup, self.exact, self.cap = oracle, ctx, dedup, exact, cap
        self.race, self.rung, self.cohort_rounds = race, race, 0
        self.dense = local.info.quasi_newton == "dense"
        if self.dense:
            self.gtol, self.ftol, self.xtol = float(local.gtol), 1e-15, 0.0  # type: ignore[attr-defined]
        else:
            tol = float(local.tolerance_change)  # type: ignore[attr-defined]
            self.gtol, self.ftol, self.xtol = float(local.tolerance_grad), tol, tol  # type: ignore[attr-defined]
        self.L, self.d = lanes, oracle.dim
        L, d, dt, dev = lanes, self.d, oracle.dtype, oracle.device
        like = torch.zeros(1, d, dtype=dt, device=dev)
        model: LimitedMemory | DenseBFGS
        if self.dense:
            model = DenseBFGS(L, d, like)
        else:
            model = LimitedMemory(L, int(local.history_size), d, like)  # type: ignore[attr-defined]
        self.qn = QuasiNewton(model, L, like, ctx.lower, ctx.upper)
        self.T = self.qn.X.clone()  # each lane's point to evaluate next
        self.Fold, self.F0 = self.qn.F.clone(), self.qn.F.clone()  # previous and start values
        self.alive = torch.zeros(L, dtype=torch.bool, device=dev)
        self.fresh = torch.zeros_like(self.alive)  # the trial point is the lane's start
        self.tries = torch.zeros(L, dtype=torch.long, device=dev)
        self.evals = torch.zeros(L, dtype=torch.long, device=dev)
        self.cost = 1 if exact else 1 + self.d
        self.min_x = torch.zeros(0, d, dtype=dt, device=dev)  # finished starts' minima
        self.min_f = torch.zeros(0, dtype=dt, device=dev)
        self.rounds = 0

    @classmethod
    def check_size(cls, local: Method, dim: int, lanes: int) -> None:
        """Refuse a dense BFGS whose matrices would not fit comfortably in memory."""
        if local.info.quasi_newton == "dense" and lanes * dim * dim > cls.MAX_DENSE_FLOATS:
            raise ValueError(
                f"batched bfgs keeps a {dim}x{dim} matrix per start ({lanes} at once): too "
                "large; use local='lbfgs' or fewer lanes"
            )

    def _vg(self, X: torch.Tensor) -> Any:
        if self.exact:
            return self.oracle.values_and_grads(X)
        return self.oracle.fd_values_and_grads(X, None, self.ctx.lower, self.ctx.upper)

    # -- lanes ---------------------------------------------------------------------------
    def run(self, cands: list[Any], found: list[dict[str, Any]]) -> None:
        """Run every candidate start to its end, recording each in ``found``."""
        self.queue, self.found = list(cands), found
        self._fill(torch.arange(self.L, device=self.T.device))
        while bool(self.alive.any()):
            ended = self._round()
            self.rounds += 1
            self.cohort_rounds += 1
            x, f = self.oracle.best()
            self.ctx.notify(self.oracle, self.rounds, x, f)
            if self.race:
                self._halve()
                if not bool(self.alive.any()):  # the cohort is done: the next one starts
                    self.rung, self.cohort_rounds = self.race, 0
                    self._fill(torch.arange(self.L, device=self.T.device))
            else:
                self._fill(ended)

    def _halve(self) -> None:
        """Successive halving: at rounds r, 2r, 4r, ... of a cohort, stop the worse half of
        its running starts (on multi-basin problems the starts bound for the best basin are
        usually ahead long before they converge)."""
        if self.cohort_rounds < self.rung:
            return
        self.rung *= 2
        a = torch.nonzero(self.alive).squeeze(1)
        if a.numel() < 2:
            return
        order = torch.argsort(self.qn.F[a], stable=True)
        for lane in a[order[(a.numel() + 1) // 2 :]].tolist():
            self._end(lane, "pruned")

    def _fill(self, lanes: torch.Tensor) -> None:
        """Give the next starts to ``lanes``: known ones (value and gradient from the sample)
        step at once, the others are evaluated in the next round."""
        n = min(lanes.numel(), len(self.queue))
        if n == 0:
            return
        lanes, take = lanes[:n], [self.queue.pop(0) for _ in range(n)]
        self.qn.X[lanes] = torch.stack([c[0] for c in take]).to(self.qn.X)
        self.T[lanes] = self.qn.X[lanes]
        self.alive[lanes], self.fresh[lanes], self.evals[lanes] = True, True, 0
        known = [j for j, c in enumerate(take) if c[2] is not None and self.exact]
        if known:
            k = lanes[known]
            f = torch.tensor([take[j][1] for j in known]).to(self.qn.F)
            g = torch.stack([take[j][2] for j in known]).to(self.qn.G)
            self.evals[k] = 1
            self._start(k, f, g)
            bad = k[~self.alive[k]]
            if bad.numel():
                self._fill(bad)

    def _start(self, a: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> None:
        """Lanes ``a`` have their start's value and gradient: reset them and take a step."""
        self.qn.start(a, self.qn.X[a], f, g)
        self.fresh[a], self.F0[a] = False, f
        self.Fold[a] = f + g.norm(dim=1) / 2  # scipy: the first trial step has length ~1
        ok = torch.isfinite(f) & torch.isfinite(g).all(1)
        for lane in a[~ok].tolist():
            self._end(lane, "non_finite")
        if bool(ok.any()):
            self._advance(a[ok])

    def _end(self, lane: int, why: str) -> None:
        self.alive[lane] = False
        f, f0 = float(self.qn.F[lane]), float(self.F0[lane])
        x = self.qn.X[lane].clone()
        self.found.append(
            {
                "x": x,
                "f": f if math.isfinite(f) else math.inf,
                "f0": f0 if math.isfinite(f0) else math.inf,
                "evals": int(self.evals[lane]),
                "ended": why,
            }
        )
        if math.isfinite(f) and why != "pruned":
            self.min_x = torch.cat([self.min_x, x.unsqueeze(0)])
            self.min_f = torch.cat([self.min_f, self.qn.F[lane : lane + 1]])

    # -- one round -----------------------------------------------------------------------
    def _round(self) -> torch.Tensor:
        a = torch.nonzero(self.alive).squeeze(1)
        f, g = self._vg(self.T[a])
        self.evals[a] += self.cost
        fresh = self.fresh[a]
        if bool(fresh.any()):
            self._start(a[fresh], f[fresh], g[fresh])
        r = ~fresh
        a, f, g, T = a[r], f[r], g[r], self.T[a[r]]
        ok = self.qn.sufficient_decrease(a, T, f, g)
        self._accept(a[ok], T[ok], f[ok], g[ok])
        self._backtrack(a[~ok], f[~ok])
        over = a[self.alive[a] & (self.evals[a] >= self.cap)]
        for lane in over.tolist():
            self._end(lane, "max_evals")
        return torch.nonzero(~self.alive).squeeze(1)

    def _accept(
        self, a: torch.Tensor, Xn: torch.Tensor, Fn: torch.Tensor, Gn: torch.Tensor
    ) -> None:
        if a.numel() == 0:
            return
        s, F = Xn - self.qn.X[a], self.qn.F[a]
        self.qn.accept(a, Xn, Fn, Gn)
        pg = self.qn.projected_gradient(Xn, Gn)
        conv = (pg.abs().amax(1) <= self.gtol) | (
            (F - Fn).abs() <= self.ftol * torch.clamp(Fn.abs(), min=1.0)
        )
        if self.xtol > 0:
            conv |= s.abs().amax(1) <= self.xtol
        self.Fold[a] = F
        dup = self._duplicate(Xn, Fn) & ~conv
        for why, mask in (("converged", conv), ("duplicate", dup)):
            for lane in a[mask].tolist():
                self._end(lane, why)
        go = ~(conv | dup)
        if bool(go.any()):
            self._advance(a[go])

    def _advance(self, a: torch.Tensor) -> None:
        """A new direction and first trial point for lanes ``a`` (at their current iterate)."""
        self.qn.direction(a)
        gd = self.qn.gd[a]
        if self.dense:  # scipy's BFGS: the last decrease, extrapolated quadratically
            t = 1.01 * 2 * (self.qn.F[a] - self.Fold[a]) / gd
            t = torch.where(torch.isfinite(t) & (t > 0), torch.clamp(t, max=1.0), 1.0)
        else:  # torch's LBFGS: a unit step, scaled down while no pair is stored
            t = self.qn.first_step(a)
        self.qn.t[a], self.tries[a] = t, 0
        flat = ~(gd < 0)  # a zero (projected) gradient: a stationary point
        for lane in a[flat].tolist():
            self._end(lane, "converged")
        a = a[~flat]
        self.T[a] = self.qn.trial(a)

    def _backtrack(self, a: torch.Tensor, f: torch.Tensor) -> None:
        """Shrink the trial step of rejected lanes (quadratic interpolation, clamped to
        [0.1, 0.5] of it); a lane whose step became negligible has converged as far as its
        line search can tell."""
        if a.numel() == 0:
            return
        t, gd, F = self.qn.t[a], self.qn.gd[a], self.qn.F[a]
        q = -gd * t * t / (2 * (f - F - gd * t))
        q = torch.where(torch.isfinite(q), q, 0.5 * t)
        t = torch.minimum(torch.maximum(q, 0.1 * t), 0.5 * t)
        self.qn.t[a] = t
        self.tries[a] += 1
        step = (t.unsqueeze(1) * self.qn.D[a]).abs().amax(1)
        small = step <= 1e-16 * (1 + self.qn.X[a].abs().amax(1))
        stuck = small | (self.tries[a] >= self.BACKTRACKS)
        for lane in a[stuck].tolist():
            self._end(lane, "line_search")
        a = a[~stuck]
        self.T[a] = self.qn.trial(a)

    def _duplicate(self, X: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
        """Lanes within ``dedup`` (relative, max-norm) of a finished start's lower minimum."""
        if self.dedup <= 0 or self.min_f.numel() == 0:
            return torch.zeros(X.shape[0], dtype=torch.bool, device=X.device)
        dist = (X.unsqueeze(1) - self.min_x.unsqueeze(0)).abs().amax(2)
        scale = 1.0 + self.min_x.abs().amax(1)
        near = (dist <= self.dedup * scale) & (self.min_f.unsqueeze(0) <= F.unsqueeze(1))
        return near.any(1)
