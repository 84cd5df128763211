"""Many episodes at once on a gymnasium vector environment, each from its own seed.

:func:`run_episodes` plays one episode in every slot of a vector environment and returns each
slot's return and number of steps. Episode ``i`` starts exactly as ``gym.make(env_id)`` reset
with ``seeds[i]`` would start, whichever vector environment plays it, so a batch of episodes
gives the same returns as playing them one at a time on single environments.

:class:`VectorEnvs` keeps one vector environment per number of slots. It uses the
environment's own batched implementation when gymnasium registers one
(``vectorization_mode="vector_entry_point"``: CartPole's ``CartPoleVectorEnv`` steps every slot
with one numpy expression) and when this module knows how to start its slots from per-episode
seeds (:func:`seeded_reset`); otherwise a ``SyncVectorEnv`` of single environments, which
seeds each slot itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .batched import batched_env

__all__ = ["VectorEnvs", "run_episodes", "seeded_reset"]


def _cartpole_reset(env: Any, seeds: Sequence[int]) -> np.ndarray:
    """Reset a ``CartPoleVectorEnv`` with slot i drawn as ``CartPoleEnv.reset(seed=seeds[i])``
    draws its state: ``np_random(seed).uniform(-0.05, 0.05, size=4)``."""
    from gymnasium.utils import seeding

    env.reset(seed=int(seeds[0]))  # zeroes the step counters and the done flags
    for i, s in enumerate(seeds):
        rng, _ = seeding.np_random(int(s))
        env.state[:, i] = rng.uniform(low=env.low, high=env.high, size=(4,))
    return env.state.T.astype(np.float32)


def _cartpole_compact(envs: VectorEnvs, env: Any, keep: np.ndarray) -> Any:
    """A ``CartPoleVectorEnv`` of the kept slots, continuing their episodes."""
    small = envs.get(int(keep.sum())).unwrapped
    small.state = env.state[:, keep].copy()
    small.steps = env.steps[keep].copy()
    small.prev_done = np.zeros(small.num_envs, dtype=np.bool_)
    return small


def seeded_reset(env: Any) -> Callable[[Any, Sequence[int]], np.ndarray] | None:
    """How to start the slots of a batched vector environment (unwrapped) from per-episode
    seeds, or None when this module does not know its class."""
    from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

    return {CartPoleVectorEnv: _cartpole_reset}.get(type(env))


class VectorEnvs:
    """Vector environments of one gymnasium id, made once per number of slots and reused.

    ``mode``: ``"auto"`` (the environment's batched implementation when there is one this
    module can seed per episode, else this package's batched one when it has one, else
    ``"sync"``), ``"vector_entry_point"``, ``"batched"`` or ``"sync"``.
    ``kwargs`` go to ``gymnasium.make_vec`` (for instance ``max_episode_steps``).
    """

    def __init__(self, env_id: str, mode: str = "auto", **kwargs: Any) -> None:
        try:
            import gymnasium as gym
        except ImportError as e:
            raise ImportError("optarena.rl needs gymnasium: pip install 'optarena[rl]'") from e

        modes = ("auto", "vector_entry_point", "batched", "sync")
        if mode not in modes:
            raise ValueError(f"mode must be one of {modes}, got {mode!r}")
        self.env_id = env_id
        self.kwargs = kwargs
        spec = gym.spec(env_id)
        self._batched = batched_env(env_id, kwargs)
        if mode == "batched" and self._batched is None:
            raise ValueError(f"optarena.rl has no batched implementation of {env_id}")
        if mode == "auto":
            mode = "sync"
            if spec.vector_entry_point is not None:
                probe = gym.make_vec(env_id, 1, vectorization_mode="vector_entry_point", **kwargs)
                if seeded_reset(probe.unwrapped) is not None:
                    mode = "vector_entry_point"
                probe.close()
            elif self._batched is not None:
                mode = "batched"
        self.mode = mode
        self._envs: dict[int, Any] = {}
        one = gym.make_vec(
            env_id, 1, vectorization_mode="sync" if mode == "batched" else mode, **kwargs
        )
        self.observation_space = one.single_observation_space
        self.action_space = one.single_action_space
        self._envs[1] = one

    def get(self, n: int) -> Any:
        """The vector environment with ``n`` slots (made on first use)."""
        import gymnasium as gym

        if n not in self._envs and self.mode == "batched":
            assert self._batched is not None
            spec = gym.spec(self.env_id)
            steps = self.kwargs.get("max_episode_steps", spec.max_episode_steps)
            g = self.kwargs.get("g", spec.kwargs.get("g", 10.0))
            self._envs[n] = self._batched(n, g=g, max_episode_steps=steps)
        if n not in self._envs:
            self._envs[n] = gym.make_vec(
                self.env_id, n, vectorization_mode=self.mode, **self.kwargs
            )
        return self._envs[n]

    def reset(self, seeds: Sequence[int]) -> tuple[Any, np.ndarray]:
        """The vector environment of ``len(seeds)`` slots, reset with slot i from ``seeds[i]``,
        and its first observations."""
        env = self.get(len(seeds))
        if self.mode == "batched":
            return env, env.reset_seeded(seeds)
        seeded = seeded_reset(env.unwrapped)
        if seeded is not None:
            return env, seeded(env.unwrapped, seeds)
        if self.mode != "sync":
            raise ValueError(
                f"{type(env.unwrapped).__name__} cannot start its slots from per-episode "
                "seeds: use mode='sync'"
            )
        obs, _ = env.reset(seed=[int(s) for s in seeds])
        return env, obs

    def compact(self, env: Any, keep: np.ndarray) -> Any:
        """A vector environment holding only the slots ``keep`` (a boolean mask) of ``env``,
        their episodes continuing as they would have: ended episodes stop costing steps."""
        from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
        from gymnasium.vector import SyncVectorEnv

        if self.mode == "batched":
            return env.compact(keep)
        if isinstance(env.unwrapped, CartPoleVectorEnv):
            return _cartpole_compact(self, env.unwrapped, keep)
        if isinstance(env, SyncVectorEnv) and not env._autoreset_envs[keep].any():
            kept = [e for e, k in zip(env.envs, keep, strict=True) if k]
            small = SyncVectorEnv([(lambda e=e: e) for e in kept], copy=False)
            small.closed = True  # a view: closing it must not close the shared environments
            return small
        return None

    def close(self) -> None:
        """Close every environment made."""
        for env in self._envs.values():
            env.close()
        self._envs.clear()


def run_episodes(
    envs: VectorEnvs,
    seeds: Sequence[int],
    act: Callable[[np.ndarray, np.ndarray], np.ndarray],
    observe: Callable[[np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One episode per seed, all at once; returns each episode's return (float64) and its
    number of steps.

    ``act(obs, episodes)`` maps the observations of the environment's slots, ``(m, obs_dim)``,
    to their ``m`` actions; ``episodes`` gives the index (into ``seeds``) of the episode each
    slot plays, a new array whenever the slots change. Once half the slots hold ended
    episodes, the live ones move to a vector environment of their number
    (:meth:`VectorEnvs.compact`), so a long episode among short ones costs little; until then
    ended slots keep being stepped (they reset themselves) and are ignored. ``observe``, when
    given, receives the observations the live episodes act on, step by step (``(m, obs_dim)``).
    """
    env, obs = envs.reset(seeds)
    n = len(seeds)
    returns = np.zeros(n)
    steps = np.zeros(n, dtype=np.int64)
    slot_episode = np.arange(n)  # the episode each slot of ``env`` plays
    live = np.ones(n, dtype=bool)  # per slot
    while True:
        obs = np.asarray(obs)
        if observe is not None:
            observe(obs[live])
        obs, reward, terminated, truncated, _ = env.step(act(obs, slot_episode))
        episodes = slot_episode[live]
        returns[episodes] += np.asarray(reward, dtype=np.float64)[live]
        steps[episodes] += 1
        live &= ~(np.asarray(terminated) | np.asarray(truncated))
        m = int(live.sum())
        if m == 0:
            return returns, steps
        if 2 * m <= live.shape[0]:
            small = envs.compact(env, live)
            if small is not None:
                env, obs = small, np.asarray(obs)[live]
                slot_episode, live = slot_episode[live], np.ones(m, dtype=bool)
