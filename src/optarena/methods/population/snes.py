"""SNES: separable natural evolution strategies (Schaul, Glasmachers & Schmidhuber, GECCO 2011).

A Gaussian with a centre and one standard deviation per coordinate follows the natural
gradient of the expected utility of its samples. The update lines cite Algorithm 1 of the
paper (the separable case of Wierstra et al., JMLR 2014, Algorithm 6); the utilities are the
NES rank-based fitness shaping, so only the order of the values matters. Memory O(lambda d),
time O(lambda d) per generation. Box bounds, restarts and stopping rules: see ``_nes``.

Two additions to the paper, both for large d. (1) The mean of the stdev gradient over the
coordinates (its isotropic part, a global step size) is followed at the rate ``eta_scale`` =
``(3 + ln d) / (5 d^(1/4))``, between the paper's per-coordinate rate ``(3 + ln d) / (5 sqrt
d)`` and the rate its estimate (a mean over d coordinates, noise of order ``1 / sqrt d``) would
bear. The paper's rate alone shrinks a too large start sigma by about ``exp(-c / d)`` per
generation: at d = 5,000 from sigma0 = 0.5 on the sphere, 20,000 evaluations never returned
below f(x0). (2) Above d = 1,000 the default sigma0 shrinks as ``sqrt(1000 / d)``. Measured at
d = 1,000, budget 100 d, seeds 0-2 (paper's rates -> these): sphere 2.1 -> 2e-10 (seed 0),
ellipsoid (condition 1e6) median 5.68e3 -> 5.62e3, Rastrigin 9.1e3 -> 3.6e3 (seed 0); d = 5,000
sphere from x0 = ones, 20,000 evaluations: 6,065 -> 882 (f(x0) = 5,000). At d = 1 the rates
are the paper's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .._params import param
from .._registry import register
from ._nes import NESMethod, NESState, nes_utilities

__all__ = ["SNES"]


@register(
    "snes",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    linear_memory=True,
    roles={"large_scale": 5},
)
@dataclass(frozen=True)
class SNES(NESMethod):
    """Separable NES (Schaul et al. 2011): diagonal Gaussian, natural-gradient updates, restarts.

    Args:
        sigma0: initial standard deviation of every coordinate. ``None``: 0.2 of the box
            width where the box is finite, else 0.5.
        popsize: samples per generation; ``None`` is the paper's ``4 + floor(3 ln d)``.
        restarts: ``"ipop"`` (default: when a run ends, restart from a random point of the
            box, or x0 without one, with the population times ``popsize_factor``) or
            ``"none"`` (one run, ending ``converged``).
        popsize_factor: growth of the population at each restart.
        tolx: a run ends when every standard deviation fell below ``tolx`` times its start.
        eta_mu: learning rate of the centre (the paper's 1).
        eta_sigma: learning rate of the standard deviations; ``None`` is the paper's
            ``(3 + ln d) / (5 sqrt d)``.
        eta_scale: learning rate of their common scale (the mean of the stdev gradient over
            the coordinates); ``None`` is ``(3 + ln d) / (5 d^(1/4))``; equal to
            ``eta_sigma``, the paper's SNES.
    """

    eta_mu: float = param(1.0, gt=0)
    eta_sigma: float | None = param(None, gt=0)
    eta_scale: float | None = param(None, gt=0)

    def _default_popsize(self, n: int) -> int:
        return 4 + math.floor(3 * math.log(n))

    def _default_sigma_scale(self, n: int) -> float:
        return min(1.0, math.sqrt(1000 / n))

    def _utilities(self, f: torch.Tensor) -> torch.Tensor:
        return nes_utilities(f)  # u_k by the rank of f(z_k)

    def _learn(
        self, s: NESState, u: torch.Tensor, gz: torch.Tensor, gz2: torch.Tensor | None, host: Any
    ) -> float | None:
        assert gz2 is not None
        n = s.mean.numel()
        base = (3 + math.log(n)) / 5
        eta_sigma = base / math.sqrt(n) if self.eta_sigma is None else self.eta_sigma
        eta_scale = base / n**0.25 if self.eta_scale is None else self.eta_scale
        grad_mu = gz  # nabla_mu J = sum_k u_k s_k
        grad_sigma = gz2 - u.sum()  # nabla_sigma J = sum_k u_k (s_k^2 - 1)
        g = grad_sigma.mean()  # its isotropic part: a common scale of every sigma_i
        s.mean = torch.addcmul(s.mean, s.sigma, grad_mu, value=self.eta_mu)  # mu += eta_mu sigma g
        # sigma *= exp(eta_s/2 g): the paper's rate on each coordinate's own part
        log_step = (grad_sigma - g).mul_(eta_sigma / 2).add_(g * (eta_scale / 2))
        s.sigma = s.sigma * torch.exp(log_step)
        return None
