"""Episode return on a gymnasium environment as a noisy objective over policy parameters.

:class:`PolicyObjective` is an :class:`optarena.Objective` whose value at a parameter vector is
minus the mean return of ``episodes`` episodes of that policy (optarena minimizes). A population
is played in one vector environment of ``P * episodes`` slots, with one batched forward of all
``P`` policies per environment step (:meth:`.PolicySpec.act`).

Episode ``j`` of the ``e``-th evaluation made through the objective (counted from 0 since
construction or :meth:`PolicyObjective.reset`) starts from the seed
``episode_seeds(seed, e, 1, episodes)[0, j]`` (a hash of the three numbers): values depend on
the seed and the evaluation's place in the run, never on how the evaluations are batched
(unless ``common_episodes`` or ``observation_normalization``, below), and a run replays exactly
from the same seed (:func:`optarena.rl.minimize_policy` resets the objective
with the run's seed). Each evaluation draws fresh episodes, so the objective is declared
``noisy=True``: a run re-evaluates its best candidates before reporting one.

With ``common_episodes=True`` every evaluation of one batch plays the episodes of the batch's
first evaluation (common random numbers): the candidates of a generation are then ranked on the
same starts, so the spread of returns between starts (on Pendulum-v1 from about 0 to -1,500
for one policy) no longer hides the difference between the candidates. Each batch still draws
new episodes, and values then depend on how evaluations are batched.

With ``observation_normalization=True`` the policies act on observations normalized by the
running mean and standard deviation of every observation of the evaluations so far
(:class:`~.normalize.RunningStats`, as EvoTorch's ``GymNE``): a batch of evaluations is played
with the statistics as they were when it began, and its observations are added after it. Values
then depend on how evaluations are batched (a seeded run still replays exactly);
:meth:`PolicyObjective.module` returns a policy with the normalization as its first layer.

Environment steps are counted on the objective (:attr:`PolicyObjective.env_steps`, beside
:attr:`~PolicyObjective.evaluations` and :attr:`~PolicyObjective.episodes_played`):
``minimize_policy`` copies them into ``Result.info``.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.objective import Objective
from .envs import VectorEnvs, run_episodes
from .normalize import RunningStats
from .policy import GymPolicy, PolicySpec, policy_for

__all__ = ["PolicyObjective", "episode_seeds"]


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function (Steele, Lea & Flood 2014) on uint64 arrays (wrapping)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def episode_seeds(seed: int, first: int, n: int, episodes: int) -> np.ndarray:
    """The ``(n, episodes)`` episode seeds (ints below 2**32) of evaluations ``first`` to
    ``first + n - 1``: a SplitMix64 hash of (seed, evaluation, episode), so each seed depends
    on those three numbers alone, never on how evaluations are batched."""
    root = _splitmix64(np.array([seed], dtype=np.uint64))
    evals = _splitmix64(root + np.arange(first, first + n, dtype=np.uint64))
    mixed = _splitmix64(evals[:, None] + np.arange(episodes, dtype=np.uint64)[None, :])
    return (mixed >> np.uint64(32)).astype(np.int64)


def _env_keywords(env_id: str, env_kwargs: dict[str, Any], err: Exception) -> str:
    """Why keywords that PolicyObjective passed on to the environment were refused."""
    params = inspect.signature(PolicyObjective.__init__).parameters.values()
    own = [p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD]
    near = {k: difflib.get_close_matches(k, own, n=1, cutoff=0.6) for k in env_kwargs}
    said = [f"{m[0]}= for {k}=" for k, m in near.items() if m]
    hint = f" (did you mean {'; '.join(said)}?)" if said else ""
    return (
        f"{sorted(env_kwargs)} are neither PolicyObjective's own keywords ({', '.join(own)}) "
        f"nor {env_id}'s environment keywords, where they went{hint}: {err}"
    )


class PolicyObjective(Objective):
    """Minus the mean return of ``episodes`` episodes of a policy on ``env_id``.

    Args:
        env_id: a registered gymnasium id (``"CartPole-v1"``, ``"Pendulum-v1"``, ...) with a
            1-D ``Box`` observation space and ``Discrete`` or 1-D ``Box`` actions.
        hidden: hidden layer sizes of the MLP policy (``()``: a linear policy).
        policy: an explicit :class:`PolicySpec` instead of one built from the spaces.
        episodes: episodes per evaluation (their mean return is the value).
        seed: the episode seeds' root (see the module docstring); a nonnegative int.
        mode: ``"auto"``, ``"vector_entry_point"`` or ``"sync"`` (see :class:`.VectorEnvs`).
        common_episodes: every evaluation of a batch plays the same episodes (see the
            module docstring).
        observation_normalization: act on observations normalized by running statistics of
            the run's observations (see the module docstring).
        chunk_size: most candidates played in one vector environment (default 4096).
        env_kwargs: passed to ``gymnasium.make_vec``.

    The start point of a run defaults to the zero vector (all actions from the biases).
    """

    def __init__(
        self,
        env_id: str,
        hidden: Sequence[int] = (),
        *,
        policy: PolicySpec | None = None,
        episodes: int = 1,
        seed: int = 0,
        mode: str = "auto",
        common_episodes: bool = False,
        observation_normalization: bool = False,
        chunk_size: int = 4096,
        name: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
            raise ValueError(f"episodes must be a positive int, got {episodes!r}")
        if isinstance(hidden, int | str) or not all(isinstance(h, int) for h in hidden):
            raise TypeError(f"hidden takes the hidden layers' sizes, e.g. (16,), got {hidden!r}")
        try:
            self.envs = VectorEnvs(env_id, mode, **env_kwargs)
        except TypeError as e:  # a keyword meant for PolicyObjective, misspelled, went here
            if not env_kwargs:
                raise
            raise TypeError(_env_keywords(env_id, env_kwargs, e)) from e
        spec = policy or policy_for(self.envs.observation_space, self.envs.action_space, hidden)
        if spec.sizes[0] != self.envs.observation_space.shape[0]:
            raise ValueError(
                f"the policy takes {spec.sizes[0]} inputs, {env_id} observes "
                f"{self.envs.observation_space.shape[0]}"
            )
        self.policy = spec
        self.common_episodes = bool(common_episodes)
        self.obs_stats = RunningStats(spec.sizes[0]) if observation_normalization else None
        self.env_id = env_id
        self.episodes = episodes
        label = "-".join(map(str, spec.sizes))
        super().__init__(
            self._one,
            batched=self._batch,
            gradient="none",
            vectorize=False,
            chunk_size=chunk_size,
            name=name or f"{env_id} {label} policy",
            default_x0=torch.zeros(spec.dim, dtype=torch.float64),
            noisy=True,
        )
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        """Zero the counters, forget the observation statistics and restart the episode seeds
        (from ``seed`` when given)."""
        if seed is not None:
            if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
                raise ValueError(f"seed must be a nonnegative int, got {seed!r}")
            self.seed = int(seed)
        self.evaluations = 0
        self.episodes_played = 0
        self.env_steps = 0
        if getattr(self, "obs_stats", None) is not None:
            self.obs_stats.reset()

    def play(
        self, X: torch.Tensor, seeds: np.ndarray, observed: list[np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returns and step counts, each ``(P, k)``, of policy ``X[p]`` on the episodes
        seeded ``seeds[p]`` (``(P, k)``), all in one vector environment; uncounted. The
        observations met are appended to ``observed`` when given."""
        X = torch.as_tensor(X).detach()
        if not X.is_floating_point():
            X = X.to(torch.float64)
        P, k = seeds.shape
        continuous = self.policy.continuous

        rows: dict[str, Any] = {"for": None, "layers": None}
        norm = None
        if self.obs_stats is not None and self.obs_stats.count:
            norm = self.obs_stats.layer(X.dtype)

        def act(obs: np.ndarray, episodes: np.ndarray) -> np.ndarray:
            # slot i plays episode episodes[i], which is policy episodes[i] // k; the rows
            # of X are gathered again only when the slots change
            if rows["for"] is not episodes:
                rows["for"] = episodes
                rows["layers"] = self.policy.layers(X[torch.from_numpy(episodes // k)])
            o = torch.from_numpy(obs)
            if norm is not None:
                o = norm(o)
            a = self.policy.forward(rows["layers"], o.unsqueeze(1))[:, 0]
            return a.numpy().astype(np.float32) if continuous else a.numpy()

        observe = None if observed is None else observed.append
        returns, steps = run_episodes(self.envs, seeds.reshape(-1).tolist(), act, observe)
        return returns.reshape(P, k), steps.reshape(P, k)

    def returns(
        self, x: torch.Tensor | np.ndarray, episodes: int = 10, seed: int = 0
    ) -> np.ndarray:
        """The returns of ``episodes`` episodes of one policy, seeded from ``seed`` apart from
        any run's episodes (a separate test, e.g. of a search distribution's centre); uncounted."""
        seeds = np.random.SeedSequence(seed).generate_state(episodes, dtype=np.uint32)
        x = torch.as_tensor(x).detach().reshape(1, -1)
        return self.play(x, seeds.astype(np.int64).reshape(1, -1))[0][0]

    def module(self, x: torch.Tensor | np.ndarray) -> torch.nn.Sequential:
        """The policy of the vector ``x`` as a module on raw observations: the network of
        :meth:`.PolicySpec.module`, behind the current observation normalization if any."""
        net = self.policy.module(x)
        if self.obs_stats is None:
            return net
        dtype = next(net.parameters()).dtype
        first, *rest = net  # observations as tensors first, then their normalization
        return GymPolicy(first, self.obs_stats.layer(dtype), *rest).requires_grad_(False)

    def _batch(self, X: torch.Tensor) -> torch.Tensor:
        n = X.shape[0]
        if self.common_episodes:
            seeds = np.repeat(episode_seeds(self.seed, self.evaluations, 1, self.episodes), n, 0)
        else:
            seeds = episode_seeds(self.seed, self.evaluations, n, self.episodes)
        observed: list[np.ndarray] | None = None if self.obs_stats is None else []
        with torch.no_grad():
            returns, steps = self.play(X, seeds, observed)
        if self.obs_stats is not None and observed:
            self.obs_stats.update(np.concatenate(observed))
        self.evaluations += n
        self.episodes_played += n * self.episodes
        self.env_steps += int(steps.sum())
        return torch.from_numpy(-returns.mean(axis=1))

    def _one(self, x: torch.Tensor) -> float:
        return float(self._batch(x.reshape(1, -1))[0])
