"""LM-MA-ES: limited-memory matrix adaptation, O(m n) memory and time per sample.

I. Loshchilov, T. Glasmachers and H.-G. Beyer, "Large Scale Black-Box Optimization by
Limited-Memory Matrix Adaptation", IEEE Trans. Evolutionary Computation 23(2), 2019,
Algorithm 1. The search direction of a sample is ``d = T_m ... T_1 z`` with
``T_j = (1 - c_d,j) I + c_d,j M_j M_j^T``: ``m = 4 + floor(3 ln n)`` direction vectors ``M_j``,
each an evolution path with its own learning rate ``c_c,j = lam / (4^(j-1) n)`` and
weight ``c_d,j = 1 / (1.5^(j-1) n)``, so slow paths hold long-term and fast ones short-term
structure; the step size follows the squared-length rule of MA-ES with ``c_sigma = 2 lam / n``.
``(Alg. 1: ...)`` next to a line names the step of the algorithm it implements.

Documented choices: the paper's rates are meant for n >> lam; in small dimensions, where
``c_sigma`` or ``c_c,j`` would exceed 0.3 (and be undefined above 1), they are capped at 0.3
(0.5 and 1 failed on 2-D Rosenbrock for some seeds; 0.3 solved it on all tried).
A box is searched in coordinates scaled by the initial standard deviation of each coordinate
(0.3 of its width), so ``d`` is multiplied by that scale. The direction vectors, mean and paths
are float64; the samples and their transforms are in the samples' dtype (``_linear_cma.py``).
Box bounds, restarts (IPOP by default) and stopping tests are those of the linear family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .._registry import register
from ._cma import F64
from ._linear_cma import LinearCMA, LinearState

__all__ = ["LMMAES", "LMMAState"]

_RATE_CAP = 0.3  # largest c_sigma and c_c,j (the paper's values assume n >> lam)


@dataclass
class LMMAState(LinearState):
    """Run state of LM-MA-ES: the linear family's plus the direction vectors."""

    M: torch.Tensor | None = None  # (m, n) direction vectors M_j (evolution paths)
    scale: torch.Tensor | None = None  # (n,) initial std per coordinate over sigma_init
    scale_range: tuple[float, float] = (1.0, 1.0)  # max and min of scale
    cd: tuple[float, ...] = ()  # c_d,j
    cc: tuple[float, ...] = ()  # c_c,j
    c_sigma: float = 0.0


@register(
    "lm_maes",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    linear_memory=True,
    roles={"large_scale": 2},
)
@dataclass(frozen=True)
class LMMAES(LinearCMA):
    """LM-MA-ES (Loshchilov, Glasmachers & Beyer 2019): m direction vectors, O(m n) per sample.

    Args:
        sigma0: initial step size. ``None``: 0.3 of the box width per coordinate where the
            box is finite, else 0.5.
        popsize: population size; ``None`` is the default ``4 + floor(3 ln n)``.
        restarts: ``"ipop"`` (default), ``"bipop"`` or ``"none"``; restarts share the run's
            budget, later runs start at a uniform random point of a finite box, else at x0.
        max_restarts: most restarts with a larger population (``None``: until the budget is
            spent, the population growing at the first 9).
        popsize_factor: growth of the population at each restart.
        tolx, tolfun: the stopping tolerances (relative to the initial step size; on
            differences of values).
    """

    aux_rows: ClassVar[int] = 1  # the directions d of a generation's samples

    def _state_type(self) -> type[LinearState]:
        return LMMAState

    def _model(self, s: LMMAState, n: int) -> None:  # type: ignore[override]
        lam = s.strategy.lam
        m = 4 + math.floor(3 * math.log(n))  # (Alg. 1 settings) number of direction vectors
        s.M = torch.zeros(m, n, dtype=F64, device=s.mean.device)
        s.scale = s.std0 / float(s.std0.max())
        s.scale_range = (float(s.scale.max()), float(s.scale.min()))
        s.cd = tuple(1 / (1.5**j * n) for j in range(m))  # c_d,j = 1 / (1.5^(j-1) n)
        s.cc = tuple(min(_RATE_CAP, lam / (4**j * n)) for j in range(m))  # lam / (4^(j-1) n)
        s.c_sigma = min(_RATE_CAP, 2 * lam / n)  # c_sigma = 2 lam / n

    def _variances(self, s: LMMAState) -> torch.Tensor:  # type: ignore[override]
        assert s.scale is not None
        return (s.sigma * s.scale) ** 2

    def _setup(self, s: LMMAState, zt: torch.dtype) -> tuple[torch.Tensor, ...]:
        assert s.M is not None and s.scale is not None
        used = min(s.generation, s.M.shape[0])  # (Alg. 1: for j = 1 .. min(t, m))
        sd = (s.scale * s.sigma).to(zt)  # x = m + sigma * scale * d (Alg. 1: y + sigma d_i)
        return s.M[:used].to(zt), sd, s.mean.to(zt)

    def _sample(
        self, s: LMMAState, z: torch.Tensor, out: torch.Tensor, prep: tuple
    ) -> torch.Tensor:
        M, sd, mean = prep
        d = z.clone()  # (Alg. 1: d_i <- z_i)
        for j in range(M.shape[0]):  # (Alg. 1: d_i <- (1 - c_d,j) d_i + c_d,j M_j (M_j^T d_i))
            d.addr_(d @ M[j], M[j], beta=1 - s.cd[j], alpha=s.cd[j])
        torch.addcmul(mean, d, sd, out=out)
        return d

    def _sums(
        self, s: LMMAState, z: torch.Tensor, aux: torch.Tensor, w: torch.Tensor
    ) -> list[torch.Tensor]:
        return [w @ z.to(F64), w @ aux.to(F64)]  # sum_i w_i z_(i:lam), sum_i w_i d_(i:lam)

    def _learn(
        self, s: LMMAState, sums: list[torch.Tensor], order: np.ndarray
    ) -> tuple[float, float, float, float]:
        assert s.M is not None and s.scale is not None
        st, n = s.strategy, s.mean.numel()
        mueff = st.mueff
        zw, dw = sums
        c = s.c_sigma  # (Alg. 1: p_sigma <- (1 - c_s) p_sigma + sqrt(mu_w c_s (2 - c_s)) zw)
        s.ps = torch.add(s.ps * (1 - c), zw, alpha=math.sqrt(mueff * c * (2 - c)))
        cc = torch.tensor(s.cc, dtype=F64, device=s.M.device)
        gain = (mueff * cc * (2 - cc)).sqrt()  # (Alg. 1: M_j <- (1 - c_c,j) M_j + sqrt(..) zw)
        s.M = s.M.mul_((1 - cc)[:, None]).addr_(gain, zw)  # in place: (m, n) is the big state
        s.mean = torch.add(s.mean, s.scale * dw, alpha=s.sigma)  # (Alg. 1: y <- y + sigma dw)
        used = min(s.generation, s.M.shape[0])
        head = torch.stack([s.ps.square().sum(), s.mean.abs().max()])
        read = torch.cat([head, s.M[:used].square().sum(dim=1)]).tolist()  # one device read
        sq, mean_max, norms = read[0], read[1], read[2:]
        # (Alg. 1: sigma <- sigma exp(c_s / 2 (|p|^2 / n - 1)))
        s.sigma *= math.exp(c / 2 * (sq / n - 1))
        # bounds on the coordinate stds over sigma: ||T_j|| = 1 - c_d,j + c_d,j ||M_j||^2
        # at most, and its smallest singular value at least 1 - c_d,j
        hi = lo = 1.0
        for j in range(used):
            hi *= 1 - s.cd[j] + s.cd[j] * max(1.0, norms[j])
            lo *= 1 - s.cd[j]
        return hi * s.scale_range[0], lo * s.scale_range[1], math.sqrt(sq), mean_max
