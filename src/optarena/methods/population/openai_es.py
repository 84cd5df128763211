"""OpenAI-ES (Salimans, Ho, Chen, Sidor & Sutskever, "Evolution Strategies as a Scalable
Alternative to Reinforcement Learning", 2017).

An isotropic Gaussian of fixed standard deviation sigma around a centre, sampled in
antithetic pairs ``theta +- sigma eps`` (mirrored sampling); the values are replaced by
centred ranks in [-0.5, 0.5] (the paper's fitness shaping) and the centre follows
the estimated gradient ``1 / (n sigma) sum_i F_i eps_i`` (Algorithm 1) with Adam and an
optional L2 weight decay (the paper's choices for its experiments).

Sigma is fixed, so the centre cannot converge closer than about sigma: when the median value
of a generation has not improved for a stagnation period, sigma (and Adam's step, which is
tied to it) is multiplied by ``sigma_shrink`` and the search goes on from the current centre;
when sigma fell below ``tolx`` times its start, the run ends and restarts. The median, not the
best value: on a noisy objective whose values are bounded (CartPole's returns stop at 500)
the best sample reaches the bound long before the centre does, and shrinking sigma then
stopped the search (median of 5 seeds: no centre at 500 within 2,000 episodes). Memory O(lambda d),
time O(lambda d) per generation. Box bounds and restarts: see ``_nes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from .._params import param
from .._registry import register
from ._nes import NESMethod, NESState, adam_step, centered_ranks

__all__ = ["OpenAIES"]


@register(
    "openai_es",
    family="population",
    needs_grad=False,
    supports_bounds=True,
    stochastic=True,
    is_global=True,
    linear_memory=True,
    roles={"large_scale": 4},
)
@dataclass(frozen=True)
class OpenAIES(NESMethod):
    """OpenAI-ES (Salimans et al. 2017): antithetic sampling, centred ranks, Adam on the centre.

    Args:
        sigma0: the noise standard deviation (fixed between stagnations). ``None``: 0.1 of
            the box width where the box is finite, else 0.1.
        popsize: samples per generation, in antithetic pairs (odd: rounded up); ``None`` is
            ``2 (2 + floor(1.5 ln d))``.
        restarts: ``"ipop"`` (default: when sigma has shrunk below ``tolx`` of its start,
            restart from a random point of the box, or x0 without one, with the population
            times ``popsize_factor``) or ``"none"`` (one run, ending ``converged``).
        popsize_factor: growth of the population at each restart.
        tolx: a run ends when sigma fell below ``tolx`` times its start.
        learning_rate: Adam's step size as a multiple of sigma (the paper's 0.01 with
            sigma 0.02 is 0.5).
        weight_decay: L2 coefficient pulling the centre towards 0 (the paper's 0.005 in its
            experiments; 0 is none).
        sigma_shrink: factor applied to sigma when a run stagnates.
    """

    antithetic: ClassVar[bool] = True
    squares: ClassVar[bool] = False
    sigma_fraction: ClassVar[float] = 0.1
    sigma_default: ClassVar[float] = 0.1

    learning_rate: float = param(0.5, gt=0)
    weight_decay: float = param(0.0, ge=0)
    sigma_shrink: float = param(0.5, gt=0, lt=1)

    def _default_popsize(self, n: int) -> int:
        return 2 * (2 + math.floor(1.5 * math.log(n)))

    def _new_run(self, s: NESState) -> None:
        s.opt = {"m": torch.zeros_like(s.mean), "v": torch.zeros_like(s.mean), "t": 0}
        s.opt["median"], s.opt["median_generation"] = math.inf, s.generation

    def _stagnation(self, s: NESState) -> int:
        return 10 + math.ceil(3 * s.mean.numel() / s.popsize)

    def _last_progress(self, s: NESState, f: np.ndarray) -> int:
        """The last generation whose median value was the lowest of the run so far."""
        med = float(np.sort(f)[(f.size - 1) // 2])  # the lower median of the generation told
        if med < s.opt["median"]:
            s.opt["median"], s.opt["median_generation"] = med, s.generation
        return s.opt["median_generation"]

    def _stalled(self, s: NESState) -> str:
        s.sigma = s.sigma * self.sigma_shrink  # a smaller sigma, then a fresh Adam
        self._new_run(s)
        return ""

    def _utilities(self, f: torch.Tensor) -> torch.Tensor:
        return centered_ranks(f)  # F_i: centred ranks, +0.5 for the best

    def _learn(
        self, s: NESState, u: torch.Tensor, gz: torch.Tensor, gz2: torch.Tensor | None, host: Any
    ) -> float | None:
        lam = u.shape[0]
        grad = gz.div_(s.sigma).div_(lam)  # g = 1 / (n sigma) sum_i F_i eps_i
        if self.weight_decay > 0:
            grad.add_(s.mean, alpha=-self.weight_decay)  # L2 decay: ascent on -c ||theta||^2 / 2
        o = s.opt
        o["t"] += 1
        step = adam_step(o["m"], o["v"], o["t"], grad, self.learning_rate)
        s.mean = torch.addcmul(s.mean, step, s.sigma)  # theta += Adam(g), in units of sigma
        return None
