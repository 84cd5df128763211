"""PGPE with symmetric sampling (Sehnke et al., Neural Networks 2010) and ClipUp for the centre
(Toklu, Liskowski & Srivastava, PPSN 2020).

Policy gradients with parameter-based exploration: a diagonal Gaussian over the parameters,
sampled in symmetric pairs ``mu +- eps``; the centre follows the difference of each pair's
values and the standard deviations follow their mean, both as centred ranks (so only the order
of the values matters). The centre moves by ClipUp: a momentum step along the normalized
gradient, its speed clipped at ``max_speed``.

A step size that needs no tuning: ClipUp's speed limit is a fraction of the current sampling
radius ``||sigma||`` (the expected length of a perturbation), and its step is half of it (the
ClipUp paper's rule ``alpha = v_max / 2``). The centre then never moves further per generation
than the population explores, on any scale of x, and its steps shrink as sigma adapts down,
so it can converge. Memory O(lambda d), time O(lambda d) per generation. Box bounds, restarts
and stopping rules: see ``_nes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from .._params import param
from .._registry import register
from ._nes import NESMethod, NESState, centered_ranks, clipup_clip, clipup_push

__all__ = ["PGPE"]


@register(
    "pgpe",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    linear_memory=True,
    roles={"large_scale": 3},
)
@dataclass(frozen=True)
class PGPE(NESMethod):
    """PGPE (Sehnke et al. 2010): symmetric sampling, ClipUp centre steps, adaptive stdevs.

    Args:
        sigma0: initial standard deviation of every coordinate. ``None``: 0.2 of the box
            width where the box is finite, else 0.5.
        popsize: samples per generation, in symmetric pairs (odd: rounded up); ``None`` is
            ``2 (2 + floor(1.5 ln d))``, about CMA-ES's default rounded up to pairs.
        restarts: ``"ipop"`` (default: when a run ends, restart from a random point of the
            box, or x0 without one, with the population times ``popsize_factor``) or
            ``"none"`` (one run, ending ``converged``).
        popsize_factor: growth of the population at each restart.
        tolx: a run ends when every standard deviation fell below ``tolx`` times its start.
        max_speed: ClipUp's speed limit as a fraction of the sampling radius ``||sigma||``
            (times ``min(1, sqrt(lambda / d))``); the step is half the limit (Toklu et al.).
            0.4 gives about EvoTorch's usual 0.15 on Pendulum's 81-parameter MLP with
            sigma0 = 0.1; the former 0.05 moved the centre 8x slower (6,000 Pendulum
            episodes: best centre -1,161 against -395; CartPole's 4-16-2 MLP: no centre at
            500 within 2,000 episodes against 576).
        momentum: ClipUp's momentum (the paper's 0.9).
        stdev_lr: learning rate of the standard deviations (Sehnke et al.'s alpha_sigma).
        stdev_max_change: largest relative change of a standard deviation per generation.
    """

    antithetic: ClassVar[bool] = True

    max_speed: float = param(0.4, gt=0)
    momentum: float = param(0.9, ge=0, lt=1)
    stdev_lr: float = param(0.1, gt=0)
    stdev_max_change: float = param(0.2, gt=0, lt=1)

    def _default_popsize(self, n: int) -> int:
        return 2 * (2 + math.floor(1.5 * math.log(n)))

    def _new_run(self, s: NESState) -> None:
        s.opt = {"velocity": torch.zeros_like(s.mean)}
        s.opt["radius"] = float(torch.linalg.vector_norm(s.sigma))  # ||sigma||, read per run

    def _utilities(self, f: torch.Tensor) -> torch.Tensor:
        return centered_ranks(f)

    def _learn(
        self, s: NESState, u: torch.Tensor, gz: torch.Tensor, gz2: torch.Tensor | None, host: Any
    ) -> float | None:
        assert gz2 is not None
        lam = u.shape[0]
        # centre (symmetric sampling): mean over pairs of (r+ - r-) / 2 * eps, eps = sigma z
        grad_mu = gz.mul_(s.sigma).div_(lam)
        # stdevs: mean over pairs of (r+ + r-) / 2 * (eps^2 - sigma^2) / sigma, baseline 0
        grad_sigma = (gz2 - u.sum()).mul_(s.sigma).div_(lam)
        c = self.stdev_max_change
        delta = (grad_sigma * self.stdev_lr).clamp_(-c * s.sigma, c * s.sigma)
        sigma = s.sigma + delta
        radius = s.opt.get("radius")  # ||sigma||: read with the last generation's statistics
        if radius is None:  # (a state saved without it)
            radius = float(torch.linalg.vector_norm(s.sigma))
        vmax = self.max_speed * radius * min(1.0, math.sqrt(lam / s.mean.numel()))
        (gnorm,) = host.read(torch.linalg.vector_norm(grad_mu))  # with the values
        v = clipup_push(s.opt["velocity"], grad_mu, gnorm, vmax / 2, self.momentum)
        norms = (
            torch.linalg.vector_norm(v),
            (sigma / s.sigma0).max(),
            torch.linalg.vector_norm(sigma),
        )
        vnorm, ratio, s.opt["radius"] = host.read(*norms)
        s.mean = s.mean + clipup_clip(v, vnorm, vmax)  # x <- x + v (ClipUp)
        s.sigma = sigma
        return ratio
