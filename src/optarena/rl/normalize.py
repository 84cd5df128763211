"""Observation normalization with running statistics, kept with the policy.

Policies search faster when every input has about unit scale: Pendulum's angular speed spans
[-8, 8] beside cos and sin in [-1, 1]. :class:`RunningStats` accumulates the mean and
variance of every observation the search's episodes met (as EvoTorch's ``GymNE`` does with
``observation_normalization=True``); a policy then acts on ``(obs - mean) / stdev``, with the
variance floored at ``min_variance`` so a constant input is not blown up. :class:`ObsNorm` is
that map as a module, placed in front of the policy network so the final policy is usable on
raw observations.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["ObsNorm", "RunningStats"]


class RunningStats:
    """Count, mean and sum of squared deviations of observation vectors, merged batch by batch
    (Chan et al.'s parallel update, in float64). Empty: the map is the identity."""

    def __init__(self, dim: int, min_variance: float = 1e-2) -> None:
        if dim < 1 or not min_variance > 0:
            raise ValueError("dim must be positive and min_variance > 0")
        self.dim = int(dim)
        self.min_variance = float(min_variance)
        self.reset()

    def reset(self) -> None:
        """Forget every observation."""
        self.count = 0
        self.mean = np.zeros(self.dim)
        self.m2 = np.zeros(self.dim)

    def update(self, obs: np.ndarray) -> None:
        """Add the rows of ``obs`` (``(n, dim)``)."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1, self.dim)
        n = x.shape[0]
        if n == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        total = self.count + n
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2_b + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def stdev(self) -> np.ndarray:
        """Standard deviation of each entry, its variance floored at ``min_variance``."""
        var = self.m2 / self.count if self.count else np.ones(self.dim)
        return np.sqrt(np.maximum(var, self.min_variance))

    def copy(self) -> RunningStats:
        """An independent copy."""
        c = RunningStats(self.dim, self.min_variance)
        c.count, c.mean, c.m2 = self.count, self.mean.copy(), self.m2.copy()
        return c

    def layer(self, dtype: torch.dtype = torch.float64) -> ObsNorm:
        """The current map as an :class:`ObsNorm` module (identity while empty)."""
        if not self.count:
            return ObsNorm(torch.zeros(self.dim, dtype=dtype), torch.ones(self.dim, dtype=dtype))
        mean = torch.as_tensor(self.mean, dtype=dtype)
        return ObsNorm(mean, torch.as_tensor(self.stdev, dtype=dtype))


class ObsNorm(nn.Module):
    """``(obs - mean) / stdev``, the policy's first layer (fixed buffers, no parameters)."""

    def __init__(self, mean: torch.Tensor, stdev: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("stdev", stdev.detach().clone())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs.to(self.mean.dtype) - self.mean) / self.stdev
