"""Separable CMA-ES: CMA-ES with a diagonal covariance matrix, O(n) memory and time per sample.

R. Ros and N. Hansen, "A Simple Modification in CMA-ES Achieving Linear Time and Space
Complexity", PPSN X, 2008: the covariance matrix is kept diagonal, so sampling, the update and
the inverse square root are coordinate-wise, and its learning rates are raised by (n + 2) / 3
(Sect. 2.3 of the paper), because a diagonal has n, not n^2 / 2, entries to learn. The rates
before that factor, the weights, the paths and the step-size control are those of
N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772, 2016); ``(eq. N)``
next to a line is that tutorial's equation restricted to a diagonal C. Positive weights only
(as in the paper: negative ones could drive a diagonal entry below zero).

Step size: the paper's cumulative step-size adaptation (CSA, eq. 44) learns at a rate of about
1/n and is slow in large dimensions; from n = 300 on (``step_size="auto"``, as pycma decides)
the default is two-point adaptation (TPA: N. Hansen, "CMA-ES with Two-Point Step-Size
Adaptation", INRIA RR-6527, 2008, with pycma's constants): the first two samples of a generation
are the mirrored pair m +- sigma y along the last mean shift (y of a random sample's length);
when the one ahead ranks better the step size grows, else it shrinks.

Box bounds, restarts (IPOP by default, until the budget is spent) and stopping tests are those
of the linear-memory family (``_linear_cma.py``); the distribution is float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .._params import param
from .._registry import register
from ._cma import F64
from ._linear_cma import LinearCMA, LinearState

__all__ = ["SepCMAES", "SepCMAState"]

_TPA_DIMENSION = 300  # step_size="auto" uses TPA from this dimension on (as pycma)
_TPA_C = 0.3  # TPA's smoothing of the rank differences (pycma)


@dataclass
class SepCMAState(LinearState):
    """Run state of separable CMA-ES: the linear family's plus the diagonal model."""

    C: torch.Tensor | None = None  # (n,) diagonal of the covariance matrix
    pc: torch.Tensor | None = None  # (n,) evolution path of the rank-one update
    c1: float = 0.0  # learning rates of this run, times (n + 2) / 3
    cmu: float = 0.0
    max_var: torch.Tensor | None = None  # (n,) largest variance per coordinate (bounded)
    tpa: bool = False  # two-point step-size adaptation in this run
    shift: torch.Tensor | None = None  # (n,) last mean shift (TPA's direction)
    tpa_s: float = 0.0  # TPA's smoothed rank difference


@register(
    "sep_cmaes",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    linear_memory=True,
    roles={"large_scale": 1},
)
@dataclass(frozen=True)
class SepCMAES(LinearCMA):
    """Separable CMA-ES (Ros & Hansen 2008): diagonal covariance, O(n) per sample, restarts.

    Args:
        sigma0: initial step size. ``None``: 0.3 of the box width per coordinate where the
            box is finite, else 0.5 (the initial diagonal holds those widths).
        popsize: population size; ``None`` is the default ``4 + floor(3 ln n)``.
        restarts: ``"ipop"`` (default), ``"bipop"`` or ``"none"``; restarts share the run's
            budget, later runs start at a uniform random point of a finite box, else at x0.
        max_restarts: most restarts with a larger population (``None``: until the budget is
            spent, the population growing at the first 9).
        popsize_factor: growth of the population at each restart.
        tolx, tolfun: the stopping tolerances (relative to the initial step size; on
            differences of values).
        step_size: ``"csa"`` (the paper's path length control), ``"tpa"`` (two-point
            adaptation, faster in large dimensions) or ``"auto"`` (TPA from n = 300 on).

    With bounds, no coordinate's standard deviation exceeds a third of the box width.
    """

    max_std_ratio: ClassVar[float | None] = 1e7  # condition number of C above 1e14

    step_size: str = param(
        "auto",
        "step-size rule: csa (path length), tpa (two-point) or auto (tpa from n = 300 on)",
        choices=("auto", "csa", "tpa"),
    )

    def _state_type(self) -> type[LinearState]:
        return SepCMAState

    def _model(self, s: SepCMAState, n: int) -> None:  # type: ignore[override]
        rel = s.std0 / float(s.std0.max())
        s.C = rel * rel
        s.pc = torch.zeros_like(s.mean)
        st = s.strategy
        factor = (n + 2) / 3  # Ros & Hansen 2008, Sect. 2.3: c_cov' = (n + 2) / 3 * c_cov
        s.c1 = min(1.0, factor * st.c1)
        s.cmu = min(1.0 - s.c1, factor * st.cmu)
        s.max_var = None
        s.tpa = self.step_size == "tpa" or (self.step_size == "auto" and n >= _TPA_DIMENSION)
        s.shift, s.tpa_s = None, 0.0
        if s.lower is not None and s.upper is not None:
            width = s.upper - s.lower
            s.max_var = torch.where(width > 0, (width / 3) ** 2, torch.inf)

    def _variances(self, s: SepCMAState) -> torch.Tensor:  # type: ignore[override]
        assert s.C is not None
        return s.C * (s.sigma * s.sigma)

    def _setup(self, s: SepCMAState, zt: torch.dtype) -> tuple[torch.Tensor, ...]:
        assert s.C is not None
        D = s.C.sqrt()
        return D, (D * s.sigma).to(zt), s.mean.to(zt)

    def _prepare(self, s: SepCMAState, z: torch.Tensor, start: int, prep: tuple) -> None:
        if not (s.tpa and s.shift is not None and start == 0 and z.shape[0] >= 2):
            return
        u = s.shift / prep[0]  # TPA's mirrored pair: C^(-1/2) of the last mean shift, as a z
        norm = torch.linalg.vector_norm(u)  # (no host read: a zero or non-finite norm keeps z)
        ok = (norm > 0) & torch.isfinite(norm)
        z0 = z[0].to(F64)
        u = torch.where(ok, u * (torch.linalg.vector_norm(z0) / norm), z0)  # z[0]'s length
        z[1] = torch.where(ok, -u, z[1].to(F64))
        z[0] = u

    def _sample(self, s: SepCMAState, z: torch.Tensor, out: torch.Tensor, prep: tuple) -> None:
        _, sd, mean = prep  # (eq. 39) with B = I: y = D z ~ N(0, C)
        torch.addcmul(mean, z, sd, out=out)  # (eq. 40): x = m + sigma y

    def _sums(
        self, s: SepCMAState, z: torch.Tensor, aux: None, w: torch.Tensor
    ) -> list[torch.Tensor]:
        zs = z.to(F64)  # (k, n) selected samples, best first
        zw = w @ zs  # (eq. 41) in z-space
        return [zw, w @ zs.square_()]  # and sum w_i z_i^2 (the rank-mu update's)

    def _learn(
        self, s: SepCMAState, sums: list[torch.Tensor], order: np.ndarray
    ) -> tuple[float, float, float, float]:
        assert s.C is not None and s.pc is not None
        st, n = s.strategy, s.mean.numel()
        paired = s.tpa and s.shift is not None and st.lam >= 2
        zw, wz2 = sums
        yw = s.C.sqrt() * zw  # (eq. 41): sum w_i y_i = D sum w_i z_i
        s.shift = yw * s.sigma  # the mean shift: TPA's next direction
        s.mean = torch.add(s.mean, s.shift)  # (eq. 42), c_m = 1
        cs_norm = math.sqrt(st.cs * (2 - st.cs) * st.mueff)
        s.ps = torch.add(s.ps * (1 - st.cs), zw, alpha=cs_norm)  # (eq. 43): C^(-1/2) yw = zw
        norm_ps = torch.linalg.vector_norm(s.ps)  # hsig stays on the device: 1.0 or 0.0
        h = (
            norm_ps / math.sqrt(1 - (1 - st.cs) ** (2 * s.generation))
            < (1.4 + 2 / (n + 1)) * st.chin
        ).to(F64)
        cc_norm = math.sqrt(st.cc * (2 - st.cc) * st.mueff)
        s.pc = torch.add(s.pc * (1 - st.cc), yw * h, alpha=cc_norm)  # (eq. 45)
        delta_h = (1 - h) * (st.cc * (2 - st.cc))
        decay = 1 + s.c1 * delta_h - s.c1 - s.cmu * st.wsum
        rank_mu = s.C * wz2  # sum w_i y_i^2 = C sum w_i z_i^2
        # (eq. 47) on the diagonal, with the rates c1, cmu raised by (n + 2) / 3
        s.C = (s.C * decay).add_(s.pc.square(), alpha=s.c1).add_(rank_mu, alpha=s.cmu)
        cmax_t, cmin_t = torch.aminmax(s.C)
        read = [norm_ps, cmax_t, cmin_t, s.mean.abs().max()]
        if s.max_var is not None:
            read.append((s.C / s.max_var).max())
        stats = torch.stack(read).tolist()  # the generation's one read from the device
        nps, cmax, cmin, mean_max = stats[:4]
        if not s.tpa:
            s.sigma *= math.exp((st.cs / st.damps) * (nps / st.chin - 1))  # (eq. 44)
        elif paired:  # TPA: rank of the pair's back point minus that of its front point
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            zr = float(rank[1] - rank[0]) / (st.lam - 1)  # in [-1, 1], > 0: ahead is better
            s.tpa_s = (1 - _TPA_C) * s.tpa_s + _TPA_C * math.copysign(abs(zr) ** 0.5, zr)
            damp = 0.7 + 2 * math.log(n) + 2 * math.log(max(1, st.lam - n))
            s.sigma *= math.exp(s.tpa_s / damp)
        if s.max_var is not None:  # no coordinate's std above a third of the box width
            ratio = stats[4] * s.sigma * s.sigma
            if ratio > 1:
                s.sigma /= math.sqrt(ratio)
        if cmax > 0 and math.isfinite(cmax):  # keep the overall scale in sigma: max(C) = 1
            k = math.sqrt(cmax)  # (the same distribution; C and sigma no longer drift apart)
            s.C, s.pc, s.sigma = s.C.div_(cmax), s.pc.div_(k), s.sigma * k
            cmin, cmax = cmin / cmax, 1.0
        return math.sqrt(max(cmax, 0.0)), math.sqrt(max(cmin, 0.0)), nps, mean_max
