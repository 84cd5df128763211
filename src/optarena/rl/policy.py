"""Policies as flat parameter vectors: one layout for a single network and for a population.

A :class:`PolicySpec` fixes a feed-forward architecture (a linear map, or an MLP with given
hidden sizes and ``tanh`` between layers) and an action head: the argmax of the outputs for a
discrete action space, ``tanh`` scaled to the box for a continuous one. A vector of
:attr:`PolicySpec.dim` numbers holds the layers in ``nn.Linear`` order (each weight row-major,
then its bias), so :meth:`PolicySpec.module` and :meth:`PolicySpec.vector` round-trip exactly,
and :meth:`PolicySpec.act` runs a whole population (one vector per row) with one batched matrix
product per layer, the same arithmetic as the module on one row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["Argmax", "GymPolicy", "Observations", "PolicySpec", "ScaledTanh", "policy_for"]


class Observations(nn.Module):
    """First layer of a policy module: observations as gymnasium gives them (numpy arrays of
    float32, lists, tensors of any float dtype) become tensors of the policy's dtype and
    device, so ``policy(obs)`` works as it comes from ``env.step``."""

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__()
        self.dtype, self.device = dtype, device

    def forward(self, obs: Any) -> torch.Tensor:
        return torch.as_tensor(obs, dtype=self.dtype, device=self.device)


class Argmax(nn.Module):
    """Discrete action head: the index of the largest output (first one on a tie)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.argmax(dim=-1)


class ScaledTanh(nn.Module):
    """Continuous action head: ``tanh`` of the outputs mapped onto ``[low, high]``."""

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", (high - low) / 2)
        self.register_buffer("centre", (high + low) / 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z) * self.scale + self.centre


class GymPolicy(nn.Sequential):
    """A policy module: tensors in, tensors out; a numpy observation (as gymnasium gives it)
    gets what ``env.step`` takes: an ``int`` for one observation of a discrete space, else a
    numpy array (float actions in the observations' float dtype)."""

    def forward(self, obs: Any) -> Any:
        out = super().forward(obs)
        if not isinstance(obs, np.ndarray):
            return out
        a = out.detach().cpu().numpy()
        if a.ndim == 0 and a.dtype.kind in "iu":
            return int(a)
        if a.dtype.kind == "f":
            return a.astype(obs.dtype if obs.dtype.kind == "f" else np.float32)
        return a


@dataclass(frozen=True)
class PolicySpec:
    """A policy architecture: ``sizes = (obs_dim, *hidden, out_dim)``.

    ``low``/``high`` given (a continuous action box of ``out_dim`` entries): actions are
    ``tanh`` of the outputs scaled to the box; absent: the action is the argmax of the
    ``out_dim`` outputs (``Discrete(out_dim)``).
    """

    sizes: tuple[int, ...]
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(
            not isinstance(s, int | np.integer) or s <= 0 for s in self.sizes
        ):
            raise ValueError(f"sizes must be two or more positive ints, got {self.sizes!r}")
        if (self.low is None) != (self.high is None):
            raise ValueError("give both low and high (a continuous action box) or neither")
        if self.low is not None:
            assert self.high is not None
            if len(self.low) != self.sizes[-1] or len(self.high) != self.sizes[-1]:
                raise ValueError(
                    f"the action box has {len(self.low)} entries, the policy "
                    f"{self.sizes[-1]} outputs"
                )
            if not all(np.isfinite([*self.low, *self.high])) or any(
                lo > hi for lo, hi in zip(self.low, self.high, strict=True)
            ):
                raise ValueError("the action box must be finite with low <= high")

    @property
    def continuous(self) -> bool:
        """True for a continuous action box (``tanh`` head), False for argmax."""
        return self.low is not None

    @property
    def dim(self) -> int:
        """Number of parameters: every layer's weights and biases."""
        return sum(o * i + o for i, o in zip(self.sizes[:-1], self.sizes[1:], strict=True))

    def _box(self, dtype: torch.dtype, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.low is not None and self.high is not None
        lo = torch.tensor(self.low, dtype=dtype, device=device)
        hi = torch.tensor(self.high, dtype=dtype, device=device)
        return lo, hi

    def module(self, x: torch.Tensor | np.ndarray) -> nn.Sequential:
        """A new :class:`GymPolicy` (Observations, Linear, Tanh, ..., Linear, head) holding the
        vector ``x`` (copied, in ``x``'s float dtype); its forward maps observations to
        actions: numpy ones as gymnasium gives them to actions ``env.step`` takes, tensors to
        tensors."""
        v = torch.as_tensor(x).detach()
        if v.shape != (self.dim,):
            raise ValueError(f"the policy has {self.dim} parameters, got shape {tuple(v.shape)}")
        dtype = v.dtype if v.is_floating_point() else torch.float64
        layers: list[nn.Module] = []
        for i, o in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            if layers:
                layers.append(nn.Tanh())
            layers.append(nn.Linear(i, o, dtype=dtype, device=v.device))
        net = GymPolicy(Observations(dtype, v.device), *layers)
        torch.nn.utils.vector_to_parameters(v.to(dtype), net.parameters())
        net.append(ScaledTanh(*self._box(dtype, v.device)) if self.continuous else Argmax())
        return net.requires_grad_(False)

    def vector(self, module: nn.Module) -> torch.Tensor:
        """The flat vector of a module built by :meth:`module` (its Linear layers in order)."""
        v = torch.nn.utils.parameters_to_vector(module.parameters()).detach().clone()
        if v.numel() != self.dim:
            raise ValueError(f"the module has {v.numel()} parameters, the policy {self.dim}")
        return v

    def layers(self, X: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A population ``X`` (``(P, dim)``) as views ``(W (P, out, in), b (P, out))``."""
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ValueError(f"expected a population (P, {self.dim}), got {tuple(X.shape)}")
        out, s = [], 0
        for i, o in zip(self.sizes[:-1], self.sizes[1:], strict=True):
            W = X[:, s : s + o * i].reshape(-1, o, i)
            s += o * i
            out.append((W, X[:, s : s + o]))
            s += o
        return out

    def act(self, X: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Actions of a population: row p of ``X`` acts on ``obs[p]`` (``(P, n, obs_dim)``);
        returns ``(P, n)`` action indices or ``(P, n, act_dim)`` continuous actions."""
        return self.forward(self.layers(X), obs)

    def forward(
        self, layers: list[tuple[torch.Tensor, torch.Tensor]], obs: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`act` on the population's :meth:`layers`, made once for many steps."""
        W0 = layers[0][0]
        h = obs.to(W0.dtype)
        for j, (W, b) in enumerate(layers):
            if j:
                h = torch.tanh(h)
            h = torch.baddbmm(b.unsqueeze(1), h, W.transpose(1, 2))
        if not self.continuous:
            return h.argmax(dim=-1)
        lo, hi = self._box(W0.dtype, W0.device)
        return torch.tanh(h) * ((hi - lo) / 2) + (hi + lo) / 2


def policy_for(observation_space: Any, action_space: Any, hidden: Sequence[int] = ()) -> PolicySpec:
    """The policy for a gymnasium environment's (single) spaces: ``Box`` observations,
    ``Discrete`` actions (argmax) or ``Box`` actions (``tanh`` scaled to the box)."""
    from gymnasium import spaces

    if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observations must be a 1-D Box, got {observation_space}")
    obs_dim = int(observation_space.shape[0])
    hidden = tuple(int(h) for h in hidden)
    if isinstance(action_space, spaces.Discrete):
        if int(action_space.start) != 0:
            raise ValueError("a Discrete action space must start at 0")
        return PolicySpec((obs_dim, *hidden, int(action_space.n)))
    if isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
        lo = tuple(float(v) for v in action_space.low)
        hi = tuple(float(v) for v in action_space.high)
        return PolicySpec((obs_dim, *hidden, len(lo)), lo, hi)
    raise ValueError(f"actions must be Discrete or a 1-D Box, got {action_space}")
