"""The one quasi-Newton engine of the gradient family, batched over independent lanes.

A lane is one local search: its iterate, value, gradient, curvature model, search direction and
trial step. :class:`QuasiNewton` holds every lane's tensors and does what each iteration needs:
the direction on the free variables (those not held at a bound by the gradient), the trial
point on the projection arc P(x + t d) (Kim, Sra & Dhillon 2010), the Armijo test and the
curvature update. The curvature model is :class:`LimitedMemory` (L-BFGS in compact form) or
:class:`DenseBFGS`. The box variant of ``lbfgs`` is one lane of it; ``multistart`` runs many
(``_lanes.py``). Which evaluations to make and when to stop stay with the callers.
"""

from __future__ import annotations

import torch

__all__ = ["DenseBFGS", "LimitedMemory", "QuasiNewton", "free_mask"]


def free_mask(
    X: torch.Tensor, G: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor
) -> torch.Tensor:
    """Variables not held at a bound by the gradient (the others stay fixed for a step)."""
    return ~(((lower >= X) & (G > 0)) | ((upper <= X) & (G < 0)))


class QuasiNewton:
    """``lanes`` quasi-Newton searches over ``d`` variables, inside a box when one is given.

    Tensors (one row per lane): ``X``, ``F``, ``G`` (iterate, value, gradient), ``D`` and
    ``gd`` (search direction and its slope), ``t`` (trial step length). ``F`` has
    ``value_dtype`` (default: the points' dtype). Lane indices ``a`` are long tensors; every
    method works on those lanes only.
    """

    C1 = 1e-4  # Armijo's sufficient-decrease constant

    def __init__(
        self,
        model: LimitedMemory | DenseBFGS,
        lanes: int,
        like: torch.Tensor,
        lower: torch.Tensor | None = None,
        upper: torch.Tensor | None = None,
        value_dtype: torch.dtype | None = None,
    ) -> None:
        d = like.shape[-1]
        z = {"dtype": like.dtype, "device": like.device}
        self.model, self.lower, self.upper = model, lower, upper
        self.X = torch.zeros(lanes, d, **z)
        self.G, self.D = torch.zeros_like(self.X), torch.zeros_like(self.X)
        self.gd, self.t = torch.zeros(lanes, **z), torch.ones(lanes, **z)
        # values may be kept wider than points: the Armijo test compares nearly equal values
        self.F = torch.full(
            (lanes,), torch.inf, dtype=value_dtype or like.dtype, device=like.device
        )

    @property
    def bounded(self) -> bool:
        """True inside a box."""
        return self.lower is not None

    def project(self, X: torch.Tensor) -> torch.Tensor:
        """Rows of ``X`` clipped into the box (unchanged without one)."""
        if self.lower is None or self.upper is None:
            return X
        return torch.minimum(torch.maximum(X, self.lower), self.upper)

    def projected_gradient(self, X: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        """P(x - g) - x in a box, g without one: zero exactly at a stationary point."""
        return self.project(X - G) - X if self.bounded else G

    def direction(self, a: torch.Tensor) -> None:
        """Set the direction ``D`` and slope ``gd`` of lanes ``a`` at their iterates: the
        quasi-Newton step on the free variables; a lane whose step is not a descent direction
        forgets its curvature and takes the (free) steepest descent."""
        G = self.G[a]
        free = None
        if self.lower is not None and self.upper is not None:
            free = free_mask(self.X[a], G, self.lower, self.upper)
        g = G if free is None else G * free
        D = self.model.step(a, g, free)
        D = D if free is None else D * free
        gd = (G * D).sum(1)
        reset = ~(gd < 0)
        if bool(reset.any()):
            self.model.clear(a[reset])
            D = torch.where(reset.unsqueeze(1), -g, D)
            gd = (G * D).sum(1)
        self.D[a], self.gd[a] = D, gd

    def first_step(self, a: torch.Tensor, lr: float = 1.0) -> torch.Tensor:
        """torch's LBFGS step length: ``lr``, scaled by min(1, 1/|g|_1) while a lane holds no
        curvature pair (its direction is then the raw gradient)."""
        first = torch.clamp(1.0 / self.G[a].abs().sum(1), max=1.0)
        t = torch.where(self.model.count(a) == 0, first, torch.ones_like(first))
        return t if lr == 1.0 else t * lr

    def trial(self, a: torch.Tensor) -> torch.Tensor:
        """The trial points P(x + t d) of lanes ``a``."""
        return self.project(self.X[a] + self.t[a].unsqueeze(1) * self.D[a])

    def sufficient_decrease(
        self, a: torch.Tensor, T: torch.Tensor, f: torch.Tensor, g: torch.Tensor
    ) -> torch.Tensor:
        """Armijo along the projection arc: f(T) <= f(x) + c1 g'(T - x), with finite f and g."""
        X, F, G = self.X[a], self.F[a], self.G[a]
        ok = torch.isfinite(f) & torch.isfinite(g).all(1)
        return ok & (f <= F + self.C1 * (G * (T - X)).sum(1))

    def accept(self, a: torch.Tensor, T: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> None:
        """Lanes ``a`` move to their accepted trials, learning the pair (T - x, g(T) - g(x))."""
        self.update(a, T - self.X[a], g - self.G[a])
        self.X[a], self.F[a], self.G[a] = T, f, g

    def update(self, a: torch.Tensor, s: torch.Tensor, y: torch.Tensor) -> None:
        """Learn the pairs (s, y) of lanes ``a`` that carry curvature (s'y > 1e-10 y'y)."""
        sy = (s * y).sum(1)
        ok = (sy > 1e-10 * (y * y).sum(1)) & (sy > 0)
        if bool(ok.any()):
            self.model.push(a[ok], s[ok], y[ok], sy[ok])

    def start(self, a: torch.Tensor, X: torch.Tensor, f: torch.Tensor, g: torch.Tensor) -> None:
        """Lanes ``a`` start afresh at ``X`` with values ``f`` and gradients ``g``."""
        self.X[a], self.F[a], self.G[a] = X, f, g
        self.model.clear(a)


class DenseBFGS:
    """One dense BFGS matrix B (the Hessian model) per lane, from the identity."""

    def __init__(self, lanes: int, d: int, like: torch.Tensor) -> None:
        self.B = torch.eye(d, dtype=like.dtype, device=like.device).repeat(lanes, 1, 1)
        self.pushed = torch.zeros(lanes, dtype=torch.long, device=like.device)

    def count(self, a: torch.Tensor) -> torch.Tensor:
        """Pairs learned since the lanes' last reset."""
        return self.pushed[a]

    def clear(self, a: torch.Tensor) -> None:
        """Back to the identity for lanes ``a``."""
        d = self.B.shape[-1]
        self.B[a] = torch.eye(d, dtype=self.B.dtype, device=self.B.device)
        self.pushed[a] = 0

    def push(self, a: torch.Tensor, s: torch.Tensor, y: torch.Tensor, sy: torch.Tensor) -> None:
        """B+ = B - B s s'B / s'Bs + y y' / y's  (Nocedal & Wright, eq. 6.19)."""
        B = self.B[a]
        Bs = (B @ s.unsqueeze(2)).squeeze(2)
        sBs = (s * Bs).sum(1).clamp(min=1e-300).view(-1, 1, 1)
        yy = y.unsqueeze(2) * y.unsqueeze(1)
        self.B[a] = B - Bs.unsqueeze(2) * Bs.unsqueeze(1) / sBs + yy / sy.view(-1, 1, 1)
        self.pushed[a] += 1

    def step(self, a: torch.Tensor, g: torch.Tensor, free: torch.Tensor | None) -> torch.Tensor:
        """-B^-1 g on the free variables (B restricted to them, identity elsewhere); a lane
        whose model is singular forgets it and steps along -g."""
        B = self.B[a]
        if free is not None:
            ff = free.to(B.dtype)
            B = B * ff.unsqueeze(2) * ff.unsqueeze(1) + torch.diag_embed(1.0 - ff)
        D, info = torch.linalg.solve_ex(B, -g)
        bad = (info != 0) | ~torch.isfinite(D).all(1)
        if bool(bad.any()):
            self.clear(a[bad])
            D = torch.where(bad.unsqueeze(1), -g, D)
        return D


class LimitedMemory:
    """The last ``m`` curvature pairs of every lane, oldest first, with the small matrices of
    the compact L-BFGS form kept up to date as pairs arrive (Byrd, Nocedal & Schnabel 1994,
    Theorem 2.2): ``R`` the upper triangle of S'Y (unit diagonal on empty slots), ``YtY`` and
    ``D`` its diagonal, so a product costs O(m d + m^2) per lane instead of a Python loop over
    pairs."""

    def __init__(self, lanes: int, m: int, d: int, like: torch.Tensor) -> None:
        z = {"dtype": like.dtype, "device": like.device}
        self.m = m
        self.S = torch.zeros(lanes, m, d, **z)
        self.Y = torch.zeros(lanes, m, d, **z)
        self.R = torch.eye(m, **z).repeat(lanes, 1, 1)
        self.YtY = torch.zeros(lanes, m, m, **z)
        self.D = torch.zeros(lanes, m, **z)
        self.cnt = torch.zeros(lanes, dtype=torch.long, device=like.device)

    def count(self, a: torch.Tensor) -> torch.Tensor:
        """Pairs held by lanes ``a``."""
        return self.cnt[a]

    def clear(self, a: torch.Tensor) -> None:
        """Forget the pairs of lanes ``a``."""
        self.S[a], self.Y[a], self.YtY[a], self.D[a] = 0.0, 0.0, 0.0, 0.0
        self.R[a] = torch.eye(self.m, dtype=self.R.dtype, device=self.R.device)
        self.cnt[a] = 0

    def push(
        self, a: torch.Tensor, s: torch.Tensor, y: torch.Tensor, sy: torch.Tensor | None = None
    ) -> None:
        """Append one pair to each lane of ``a``, dropping the oldest of full lanes."""
        if a.numel() == 0:
            return
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

    def step(self, a: torch.Tensor, g: torch.Tensor, free: torch.Tensor | None) -> torch.Tensor:
        """The quasi-Newton step -H g of lanes ``a``."""
        return -self.product(a, g, free)

    def product(self, a: torch.Tensor, g: torch.Tensor, free: torch.Tensor | None) -> torch.Tensor:
        """H g for the lanes ``a``; with a free-variable mask the pairs are restricted to it."""
        k = max(1, int(self.cnt[a].max()))
        S, Y, cnt = self.S[a, :k], self.Y[a, :k], self.cnt[a]
        if free is not None and not bool(free.all()):
            return masked_product(S, Y, cnt, g, free)
        R, YtY, D = self.R[a, :k, :k], self.YtY[a, :k, :k], self.D[a, :k]
        ar = torch.arange(a.numel(), device=a.device)
        last = torch.clamp(cnt - 1, min=0)
        yy = YtY[ar, last, last]
        gamma = torch.where((cnt > 0) & (yy > 0), D[ar, last] / yy, torch.ones_like(yy))
        return compact_product(S, Y, R, YtY, D, gamma, g)


def compact_product(
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


def masked_product(
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
    return compact_product(S, Y, R, YtY, D, gamma, g)
