"""The batched quasi-Newton engine of ``multistart``: many L-BFGS or BFGS searches as one.

Each lane of :class:`BatchedQuasiNewton` is one independent local search; every round
evaluates one point per lane in a single batch (``Oracle.values_and_grads``, or forward
differences), so K starts cost K rows of one batched call instead of K separate runs.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ...core.oracle import Oracle
from .._base import Method, RunContext

__all__ = ["BatchedQuasiNewton"]


class BatchedQuasiNewton:
    """Independent BFGS (dense) or L-BFGS searches advanced together in ``lanes``.

    Each round evaluates one point per lane, all in one batch: a new start, or the current
    trial point of the lane's backtracking Armijo line search. A lane whose trial is accepted
    updates its curvature and proposes the next trial at once, so no lane waits for another's
    line search. Dense BFGS starts from the identity and takes scipy's first trial step (the
    last decrease, extrapolated quadratically): on badly scaled problems such as mlp_identity
    that needs about half the evaluations of a scaled start. L-BFGS keeps ``history_size``
    pairs in compact form (:class:`_Pairs`). With bounds, directions live on the free
    variables and trial points on the projection arc, as in ``lbfgs``.
    """

    C1 = 1e-4
    BACKTRACKS = 20
    MAX_DENSE_FLOATS = 2**27

    def __init__(
        self,
        local: Method,
        oracle: Oracle,
        ctx: RunContext,
        lanes: int,
        dedup: float,
        exact: bool,
        cap: int,
        race: int = 0,
    ) -> None:
        self.oracle, self.ctx, self.dedup, self.exact, self.cap = oracle, ctx, dedup, exact, cap
        self.race, self.rung, self.cohort_rounds = race, race, 0
        self.dense = local.info.name == "bfgs"
        if self.dense:
            self.gtol, self.ftol, self.xtol = float(local.gtol), 1e-15, 0.0  # type: ignore[attr-defined]
        else:
            tol = float(local.tolerance_change)  # type: ignore[attr-defined]
            self.gtol, self.ftol, self.xtol = float(local.tolerance_grad), tol, tol  # type: ignore[attr-defined]
        self.bounded = ctx.lower is not None
        self.L, self.d = lanes, oracle.dim
        L, d, dt, dev = lanes, self.d, oracle.dtype, oracle.device
        self.X = torch.zeros(L, d, dtype=dt, device=dev)
        self.G, self.D, self.T = torch.zeros_like(self.X), torch.zeros_like(self.X), self.X.clone()
        self.F = torch.full((L,), math.inf, dtype=dt, device=dev)
        self.Fold, self.F0 = self.F.clone(), self.F.clone()  # previous and start values
        self.gd, self.t = torch.zeros_like(self.F), torch.ones_like(self.F)
        self.alive = torch.zeros(L, dtype=torch.bool, device=dev)
        self.fresh = torch.zeros_like(self.alive)  # the trial point is the lane's start
        self.tries = torch.zeros(L, dtype=torch.long, device=dev)
        self.evals = torch.zeros(L, dtype=torch.long, device=dev)
        self.cost = 1 if exact else 1 + self.d
        self.min_x = torch.zeros(0, d, dtype=dt, device=dev)  # finished starts' minima
        self.min_f = torch.zeros(0, dtype=dt, device=dev)
        if self.dense:
            self.B = torch.eye(d, dtype=dt, device=dev).repeat(L, 1, 1)
        else:
            self.pairs = _Pairs(L, int(local.history_size), d, self.X)  # type: ignore[attr-defined]
        self.rounds = 0

    @classmethod
    def check_size(cls, local: Method, dim: int, lanes: int) -> None:
        """Refuse a dense BFGS whose matrices would not fit comfortably in memory."""
        if local.info.name == "bfgs" and lanes * dim * dim > cls.MAX_DENSE_FLOATS:
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
        self._fill(torch.arange(self.L, device=self.X.device))
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
                    self._fill(torch.arange(self.L, device=self.X.device))
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
        order = torch.argsort(self.F[a], stable=True)
        for lane in a[order[(a.numel() + 1) // 2 :]].tolist():
            self._end(lane, "pruned")

    def _fill(self, lanes: torch.Tensor) -> None:
        """Give the next starts to ``lanes``: known ones (value and gradient from the sample)
        step at once, the others are evaluated in the next round."""
        n = min(lanes.numel(), len(self.queue))
        if n == 0:
            return
        lanes, take = lanes[:n], [self.queue.pop(0) for _ in range(n)]
        self.X[lanes] = torch.stack([c[0] for c in take]).to(self.X)
        self.T[lanes] = self.X[lanes]
        self.alive[lanes], self.fresh[lanes], self.evals[lanes] = True, True, 0
        known = [j for j, c in enumerate(take) if c[2] is not None and self.exact]
        if known:
            k = lanes[known]
            f = torch.tensor([take[j][1] for j in known]).to(self.F)
            g = torch.stack([take[j][2] for j in known]).to(self.G)
            self.evals[k] = 1
            self._start(k, f, g)
            bad = k[~self.alive[k]]
            if bad.numel():
                self._fill(bad)

    def _start(self, a: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> None:
        """Lanes ``a`` have their start's value and gradient: reset them and take a step."""
        self.F[a], self.G[a], self.fresh[a], self.F0[a] = f, g, False, f
        self.Fold[a] = f + g.norm(dim=1) / 2  # scipy: the first trial step has length ~1
        self._forget(a)
        ok = torch.isfinite(f) & torch.isfinite(g).all(1)
        for lane in a[~ok].tolist():
            self._end(lane, "non_finite")
        if bool(ok.any()):
            self._advance(a[ok])

    def _forget(self, a: torch.Tensor) -> None:
        if self.dense:
            self.B[a] = torch.eye(self.d, dtype=self.B.dtype, device=self.B.device)
        else:
            self.pairs.clear(a)

    def _end(self, lane: int, why: str) -> None:
        self.alive[lane] = False
        f, f0 = float(self.F[lane]), float(self.F0[lane])
        x = self.X[lane].clone()
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
            self.min_f = torch.cat([self.min_f, self.F[lane : lane + 1]])

    # -- one round -----------------------------------------------------------------------
    def _round(self) -> torch.Tensor:
        a = torch.nonzero(self.alive).squeeze(1)
        f, g = self._vg(self.T[a])
        self.evals[a] += self.cost
        fresh = self.fresh[a]
        if bool(fresh.any()):
            self._start(a[fresh], f[fresh], g[fresh])
        r = ~fresh
        a, f, g = a[r], f[r], g[r]
        X, F, G, T = self.X[a], self.F[a], self.G[a], self.T[a]
        ok = torch.isfinite(f) & torch.isfinite(g).all(1)
        ok &= f <= F + self.C1 * (G * (T - X)).sum(1)
        self._accept(a[ok], X[ok], F[ok], G[ok], T[ok], f[ok], g[ok])
        self._backtrack(a[~ok], f[~ok], F[~ok])
        over = a[self.alive[a] & (self.evals[a] >= self.cap)]
        for lane in over.tolist():
            self._end(lane, "max_evals")
        return torch.nonzero(~self.alive).squeeze(1)

    def _accept(
        self,
        a: torch.Tensor,
        X: torch.Tensor,
        F: torch.Tensor,
        G: torch.Tensor,
        Xn: torch.Tensor,
        Fn: torch.Tensor,
        Gn: torch.Tensor,
    ) -> None:
        if a.numel() == 0:
            return
        s, y = Xn - X, Gn - G
        self._update(a, s, y)
        pg = (self.ctx.project(Xn - Gn) - Xn) if self.bounded else Gn
        conv = (pg.abs().amax(1) <= self.gtol) | (
            (F - Fn).abs() <= self.ftol * torch.clamp(Fn.abs(), min=1.0)
        )
        if self.xtol > 0:
            conv |= s.abs().amax(1) <= self.xtol
        self.Fold[a] = F
        self.X[a], self.F[a], self.G[a] = Xn, Fn, Gn
        dup = self._duplicate(Xn, Fn) & ~conv
        for why, mask in (("converged", conv), ("duplicate", dup)):
            for lane in a[mask].tolist():
                self._end(lane, why)
        go = ~(conv | dup)
        if bool(go.any()):
            self._advance(a[go])

    def _advance(self, a: torch.Tensor) -> None:
        """A new direction and first trial point for lanes ``a`` (at their current iterate)."""
        X, F, G = self.X[a], self.F[a], self.G[a]
        free = self._free(X, G) if self.bounded else None
        g = G if free is None else G * free
        D = self._newton(a, g, free) if self.dense else -self.pairs.product(a, g, free)
        D = D if free is None else D * free
        gd = (G * D).sum(1)
        reset = ~(gd < 0)
        if bool(reset.any()):  # not a descent direction: forget that lane's curvature
            self._forget(a[reset])
            D = torch.where(reset.unsqueeze(1), -g, D)
            gd = (G * D).sum(1)
        if self.dense:  # scipy's BFGS: the last decrease, extrapolated quadratically
            t = 1.01 * 2 * (F - self.Fold[a]) / gd
            t = torch.where(torch.isfinite(t) & (t > 0), torch.clamp(t, max=1.0), 1.0)
        else:  # torch's LBFGS: a unit step, scaled down while no pair is stored
            first = torch.clamp(1.0 / G.abs().sum(1), max=1.0)
            t = torch.where(self.pairs.cnt[a] == 0, first, torch.ones_like(first))
        self.D[a], self.gd[a], self.t[a], self.tries[a] = D, gd, t, 0
        flat = ~(gd < 0)  # a zero (projected) gradient: a stationary point
        for lane in a[flat].tolist():
            self._end(lane, "converged")
        self._trial(a[~flat])

    def _trial(self, a: torch.Tensor) -> None:
        T = self.X[a] + self.t[a].unsqueeze(1) * self.D[a]
        self.T[a] = self.ctx.project(T) if self.bounded else T

    def _backtrack(self, a: torch.Tensor, f: torch.Tensor, F: torch.Tensor) -> None:
        """Shrink the trial step of rejected lanes (quadratic interpolation, clamped to
        [0.1, 0.5] of it); a lane whose step became negligible has converged as far as its
        line search can tell."""
        if a.numel() == 0:
            return
        t, gd = self.t[a], self.gd[a]
        q = -gd * t * t / (2 * (f - F - gd * t))
        q = torch.where(torch.isfinite(q), q, 0.5 * t)
        t = torch.minimum(torch.maximum(q, 0.1 * t), 0.5 * t)
        self.t[a] = t
        self.tries[a] += 1
        step = (t.unsqueeze(1) * self.D[a]).abs().amax(1)
        stuck = (step <= 1e-16 * (1 + self.X[a].abs().amax(1))) | (self.tries[a] >= self.BACKTRACKS)
        for lane in a[stuck].tolist():
            self._end(lane, "line_search")
        self._trial(a[~stuck])

    def _newton(self, a: torch.Tensor, g: torch.Tensor, free: torch.Tensor | None) -> torch.Tensor:
        """-B^-1 g on the free variables (B restricted to them, identity elsewhere)."""
        B = self.B[a]
        if free is not None:
            ff = free.to(B.dtype)
            B = B * ff.unsqueeze(2) * ff.unsqueeze(1) + torch.diag_embed(1.0 - ff)
        D, info = torch.linalg.solve_ex(B, -g)
        bad = (info != 0) | ~torch.isfinite(D).all(1)
        if bool(bad.any()):  # a singular model: forget it, step along -g
            self._forget(a[bad])
            D = torch.where(bad.unsqueeze(1), -g, D)
        return D

    def _update(self, a: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> None:
        sy = (s * y).sum(1)
        ok = (sy > 1e-10 * (y * y).sum(1)) & (sy > 0)
        if not bool(ok.any()):
            return
        a, s, y, sy = a[ok], s[ok], y[ok], sy[ok]
        if not self.dense:
            self.pairs.push(a, s, y)
            return
        # B+ = B - B s s'B / s'Bs + y y' / y's  (Nocedal & Wright, eq. 6.19)
        B = self.B[a]
        Bs = (B @ s.unsqueeze(2)).squeeze(2)
        sBs = (s * Bs).sum(1).clamp(min=1e-300).view(-1, 1, 1)
        yy = y.unsqueeze(2) * y.unsqueeze(1)
        self.B[a] = B - Bs.unsqueeze(2) * Bs.unsqueeze(1) / sBs + yy / sy.view(-1, 1, 1)

    def _free(self, X: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        lo, hi = self.ctx.lower, self.ctx.upper
        assert lo is not None and hi is not None
        return ~(((lo >= X) & (G > 0)) | ((hi <= X) & (G < 0)))

    def _duplicate(self, X: torch.Tensor, F: torch.Tensor) -> torch.Tensor:
        """Lanes within ``dedup`` (relative, max-norm) of a finished start's lower minimum."""
        if self.dedup <= 0 or self.min_f.numel() == 0:
            return torch.zeros(X.shape[0], dtype=torch.bool, device=X.device)
        dist = (X.unsqueeze(1) - self.min_x.unsqueeze(0)).abs().amax(2)
        scale = 1.0 + self.min_x.abs().amax(1)
        near = (dist <= self.dedup * scale) & (self.min_f.unsqueeze(0) <= F.unsqueeze(1))
        return near.any(1)


class _Pairs:
    """The curvature pairs of every lane, oldest first, with the small matrices of the compact
    L-BFGS form kept up to date as pairs arrive (Byrd, Nocedal & Schnabel 1994, Theorem 2.2):
    ``R`` the upper triangle of S'Y (unit diagonal on empty slots), ``YtY`` and ``D`` its
    diagonal, so a product costs O(m d + m^2) per lane instead of a Python loop over pairs."""

    def __init__(self, lanes: int, m: int, d: int, like: torch.Tensor) -> None:
        z = {"dtype": like.dtype, "device": like.device}
        self.m = m
        self.S = torch.zeros(lanes, m, d, **z)
        self.Y = torch.zeros(lanes, m, d, **z)
        self.R = torch.eye(m, **z).repeat(lanes, 1, 1)
        self.YtY = torch.zeros(lanes, m, m, **z)
        self.D = torch.zeros(lanes, m, **z)
        self.cnt = torch.zeros(lanes, dtype=torch.long, device=like.device)

    def clear(self, a: torch.Tensor) -> None:
        """Forget the pairs of lanes ``a``."""
        self.S[a], self.Y[a], self.YtY[a], self.D[a] = 0.0, 0.0, 0.0, 0.0
        self.R[a] = torch.eye(self.m, dtype=self.R.dtype, device=self.R.device)
        self.cnt[a] = 0

    def push(self, a: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> None:
        """Append one pair to each lane of ``a``, dropping the oldest of full lanes."""
        full = self.cnt[a] >= self.m
        if bool(full.any()):
            f = a[full] if not bool(full.all()) or a.numel() != self.cnt.numel() else slice(None)
            for M in (self.S, self.Y, self.D):
                M[f, :-1] = M[f, 1:].clone()
            for M in (self.R, self.YtY):
                M[f, :-1, :-1] = M[f, 1:, 1:].clone()
        pos = torch.clamp(self.cnt[a], max=self.m - 1)
        self.S[a, pos], self.Y[a, pos] = s, y
        col = (self.S[a] @ y.unsqueeze(2)).squeeze(2)  # s_i'y_new for every slot i
        yrow = (self.Y[a] @ y.unsqueeze(2)).squeeze(2)
        slots = torch.arange(self.m, device=a.device).unsqueeze(0)
        after = slots > pos.unsqueeze(1)
        self.R[a, pos] = torch.where(after, self.R[a, pos], 0.0)  # nothing newer than it yet
        self.R[a, :, pos] = torch.where(after, 0.0, col)
        self.YtY[a, pos] = yrow
        self.YtY[a, :, pos] = yrow
        self.D[a, pos] = (s * y).sum(1)
        self.cnt[a] = torch.clamp(self.cnt[a] + 1, max=self.m)

    def product(self, a: torch.Tensor, g: torch.Tensor, free: torch.Tensor | None) -> torch.Tensor:
        """H g for the lanes ``a``; with a free-variable mask the pairs are restricted to it."""
        k = max(1, int(self.cnt[a].max()))
        S, Y, cnt = self.S[a, :k], self.Y[a, :k], self.cnt[a]
        if free is not None and not bool(free.all()):
            return _masked_product(S, Y, cnt, g, free)
        R, YtY, D = self.R[a, :k, :k], self.YtY[a, :k, :k], self.D[a, :k]
        ar = torch.arange(a.numel(), device=a.device)
        last = torch.clamp(cnt - 1, min=0)
        yy = YtY[ar, last, last]
        gamma = torch.where((cnt > 0) & (yy > 0), D[ar, last] / yy, torch.ones_like(yy))
        return _compact(S, Y, R, YtY, D, gamma, g)


def _compact(
    S: torch.Tensor,
    Y: torch.Tensor,
    R: torch.Tensor,
    YtY: torch.Tensor,
    D: torch.Tensor,
    gamma: torch.Tensor,
    g: torch.Tensor,
) -> torch.Tensor:
    """H g = gamma g + S p - gamma Y v with v = R^-1 S'g and
    p = R^-T ((D + gamma Y'Y) v - gamma Y'g): the compact form with H0 = gamma I."""
    u = (S @ g.unsqueeze(2)).squeeze(2)
    w = (Y @ g.unsqueeze(2)).squeeze(2)
    v = torch.linalg.solve_triangular(R, u.unsqueeze(2), upper=True).squeeze(2)
    z = D * v + gamma.unsqueeze(1) * ((YtY @ v.unsqueeze(2)).squeeze(2) - w)
    p = torch.linalg.solve_triangular(R.transpose(1, 2), z.unsqueeze(2), upper=False).squeeze(2)
    Sp = (S.transpose(1, 2) @ p.unsqueeze(2)).squeeze(2)
    Yv = (Y.transpose(1, 2) @ v.unsqueeze(2)).squeeze(2)
    return gamma.unsqueeze(1) * (g - Yv) + Sp


def _masked_product(
    S: torch.Tensor, Y: torch.Tensor, cnt: torch.Tensor, g: torch.Tensor, free: torch.Tensor
) -> torch.Tensor:
    """The compact product with every pair restricted to the free variables (rebuilt each
    time, since the free set changes); pairs that lose their curvature there are dropped."""
    n, m, _ = S.shape
    S, Y = S * free.unsqueeze(1), Y * free.unsqueeze(1)
    StY = S @ Y.transpose(1, 2)
    diag = torch.diagonal(StY, dim1=1, dim2=2)
    valid = (torch.arange(m, device=S.device).unsqueeze(0) < cnt.unsqueeze(1)) & (diag > 1e-300)
    vf = valid.to(S.dtype)
    S, Y = S * vf.unsqueeze(2), Y * vf.unsqueeze(2)
    R = torch.triu(StY * vf.unsqueeze(2) * vf.unsqueeze(1)) + torch.diag_embed(1.0 - vf)
    D = diag * vf
    YtY = Y @ Y.transpose(1, 2)
    ar = torch.arange(n, device=S.device)
    last = torch.clamp(cnt - 1, min=0)
    yy = YtY[ar, last, last]
    gamma = torch.where(valid[ar, last] & (yy > 0), D[ar, last] / yy, torch.ones_like(yy))
    return _compact(S, Y, R, YtY, D, gamma, g)
