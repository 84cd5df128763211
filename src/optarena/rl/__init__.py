"""Policy search on gymnasium environments (install with ``pip install 'optarena[rl]'``).

:class:`PolicyObjective` turns episode returns into a noisy objective over a policy's flat
parameter vector (:class:`PolicySpec`: linear or MLP, argmax or ``tanh``-scaled actions),
played on vector environments; :func:`minimize_policy` runs one search seeded by the run's seed
and reports environment steps in ``Result.info``.
"""

from .envs import VectorEnvs, run_episodes
from .objective import PolicyObjective, episode_seeds
from .policy import PolicySpec, policy_for
from .search import minimize_policy

__all__ = [
    "PolicyObjective",
    "PolicySpec",
    "VectorEnvs",
    "episode_seeds",
    "minimize_policy",
    "policy_for",
    "run_episodes",
]
