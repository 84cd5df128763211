"""Policy search on gymnasium environments (install with ``pip install 'optarena[rl]'``).

:class:`PolicyObjective` turns episode returns into a noisy objective over a policy's flat
parameter vector (:class:`PolicySpec`: linear or MLP, argmax or ``tanh``-scaled actions),
optionally ranking a generation on common episodes and normalizing observations by running
statistics (:class:`RunningStats`), played on vector environments (Pendulum-v1 on a batched
numpy implementation, :class:`PendulumVectorEnv`); :func:`minimize_policy` runs one search
seeded by the run's seed and reports environment steps in ``Result.info``.
"""

from .batched import PendulumVectorEnv
from .envs import VectorEnvs, run_episodes
from .normalize import ObsNorm, RunningStats
from .objective import PolicyObjective, episode_seeds
from .policy import PolicySpec, policy_for
from .search import minimize_policy

__all__ = [
    "ObsNorm",
    "PendulumVectorEnv",
    "PolicyObjective",
    "PolicySpec",
    "RunningStats",
    "VectorEnvs",
    "episode_seeds",
    "minimize_policy",
    "policy_for",
    "run_episodes",
]
