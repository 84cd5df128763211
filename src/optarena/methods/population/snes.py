"""SNES: separable natural evolution strategies (Schaul, Glasmachers & Schmidhuber, GECCO 2011).

A Gaussian with a centre and one standard deviation per coordinate follows the natural
gradient of the expected utility of its samples. The update lines cite Algorithm 1 of the
paper (the separable case of Wierstra et al., JMLR 2014, Algorithm 6); the utilities are the
NES rank-based fitness shaping, so only the order of the values matters. Memory O(lambda d),
time O(lambda d) per generation. Box bounds, restarts and stopping rules: see ``_nes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    """

    eta_mu: float = param(1.0, gt=0)
    eta_sigma: float | None = param(None, gt=0)

    def _default_popsize(self, n: int) -> int:
        return 4 + math.floor(3 * math.log(n))

    def _update(self, s: NESState, noise: torch.Tensor, f: torch.Tensor) -> None:
        n = s.mean.numel()
        eta_sigma = (3 + math.log(n)) / (5 * math.sqrt(n)) if self.eta_sigma is None else None
        eta_sigma = self.eta_sigma if eta_sigma is None else eta_sigma
        u = nes_utilities(f).to(s.mean.dtype)  # u_k by the rank of f(z_k)
        grad_mu = u @ noise  # nabla_mu J = sum_k u_k s_k
        grad_sigma = u @ noise.square_() - u.sum()  # nabla_sigma J = sum_k u_k (s_k^2 - 1)
        s.mean = torch.addcmul(s.mean, s.sigma, grad_mu, value=self.eta_mu)  # mu += eta_mu sigma g
        s.sigma = s.sigma * torch.exp(grad_sigma * (eta_sigma / 2))  # sigma *= exp(eta_s/2 g)
