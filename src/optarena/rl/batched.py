"""Batched numpy implementations of gymnasium environments that gymnasium steps one at a time.

:class:`PendulumVectorEnv` plays ``Pendulum-v1`` on many slots with one numpy expression per
step, where gymnasium (1.x) registers no batched implementation and a ``SyncVectorEnv`` steps
each slot in Python. Slot ``i`` reset from ``seeds[i]`` starts exactly as
``gym.make("Pendulum-v1").reset(seed=seeds[i])`` starts, and every step does the arithmetic of
``PendulumEnv.step`` in the same dtypes (float64 state, float32 torque and observations), so a
batch of episodes goes through the same states and observations, bit for bit, as the single
environments, and gets the same rewards but for the rounding of the squares in the cost
(numpy squares a scalar with ``pow`` / ``powf``, an array by a product: at most one float32
ulp of the torque term, about 1e-11 of a reward).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PendulumVectorEnv", "batched_env"]


def _angle_normalize(x: np.ndarray) -> np.ndarray:
    return ((x + np.pi) % (2 * np.pi)) - np.pi


class PendulumVectorEnv:
    """``Pendulum-v1`` on ``num_envs`` slots (gymnasium's ``PendulumEnv`` dynamics, reward and
    ``TimeLimit`` truncation after ``max_episode_steps``). Ended slots keep being stepped
    until :meth:`reset_seeded`; their results are to be ignored."""

    max_speed = 8
    max_torque = 2.0
    dt = 0.05
    m = 1.0
    length = 1.0

    def __init__(self, num_envs: int, g: float = 10.0, max_episode_steps: int = 200) -> None:
        if num_envs < 1 or max_episode_steps < 1:
            raise ValueError("num_envs and max_episode_steps must be positive")
        self.num_envs = int(num_envs)
        self.g = float(g)
        self.max_episode_steps = int(max_episode_steps)
        self.state = np.zeros((2, self.num_envs))  # theta, theta dot
        self.steps = np.zeros(self.num_envs, dtype=np.int64)

    @property
    def unwrapped(self) -> PendulumVectorEnv:
        """The environment itself (as gymnasium's vector environments name it)."""
        return self

    def _obs(self) -> np.ndarray:
        th, thdot = self.state
        return np.stack((np.cos(th), np.sin(th), thdot), axis=1).astype(np.float32)

    def reset_seeded(self, seeds: Sequence[int]) -> np.ndarray:
        """Start slot i as ``PendulumEnv.reset(seed=seeds[i])`` does (a uniform draw of the
        angle in [-pi, pi] and the speed in [-1, 1]); returns the first observations."""
        from gymnasium.utils import seeding

        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for {self.num_envs} slots")
        high = np.array([np.pi, 1.0])
        for i, s in enumerate(seeds):
            rng, _ = seeding.np_random(int(s))
            self.state[:, i] = rng.uniform(low=-high, high=high)
        self.steps[:] = 0
        return self._obs()

    def step(
        self, action: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        """One step of every slot with the torques ``action`` (``(num_envs, 1)``)."""
        th, thdot = self.state
        u = np.clip(np.asarray(action, dtype=np.float32), -self.max_torque, self.max_torque)
        u = u.reshape(self.num_envs, -1)[:, 0]
        costs = _angle_normalize(th) ** 2 + 0.1 * thdot**2 + 0.001 * (u**2)
        g, m, ln, dt = self.g, self.m, self.length, self.dt
        newthdot = thdot + (3 * g / (2 * ln) * np.sin(th) + 3.0 / (m * ln**2) * u) * dt
        newthdot = np.clip(newthdot, -self.max_speed, self.max_speed)
        newth = th + newthdot * dt
        self.state = np.stack((newth, newthdot))
        self.steps += 1
        truncated = self.steps >= self.max_episode_steps
        return self._obs(), -costs, np.zeros(self.num_envs, dtype=bool), truncated, {}

    def compact(self, keep: np.ndarray) -> PendulumVectorEnv:
        """A new environment of the kept slots (a boolean mask), continuing their episodes."""
        small = PendulumVectorEnv(int(keep.sum()), self.g, self.max_episode_steps)
        small.state = self.state[:, keep].copy()
        small.steps = self.steps[keep].copy()
        return small

    def close(self) -> None:
        """Nothing to release."""


def batched_env(env_id: str, kwargs: dict[str, Any]) -> type[PendulumVectorEnv] | None:
    """This module's batched class for a gymnasium id made with ``kwargs`` (None when the id's
    entry point is not one it implements, a keyword is one it does not take, or its
    episodes have no time limit)."""
    import gymnasium as gym

    spec = gym.spec(env_id)
    if spec.entry_point != "gymnasium.envs.classic_control.pendulum:PendulumEnv":
        return None
    if set(kwargs) - {"g", "max_episode_steps"} or set(spec.kwargs) - {"g"}:
        return None
    if kwargs.get("max_episode_steps", spec.max_episode_steps) is None:
        return None  # an episode without a time limit never ends
    return PendulumVectorEnv
