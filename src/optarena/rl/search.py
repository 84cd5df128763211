"""One policy search with the environment steps reported in the Result."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..methods import Method
from ..minimize import minimize
from ..result import Result
from .objective import PolicyObjective

__all__ = ["minimize_policy"]


def minimize_policy(
    objective: PolicyObjective, method: str | Method = "cmaes", *, seed: int = 0, **kwargs: Any
) -> Result:
    """:func:`optarena.minimize` on a policy objective whose episodes are seeded by the run's
    ``seed`` (the objective is reset first, so the same seed replays the same run).

    ``Result.info`` gains ``env_steps`` (environment steps of every evaluation of the run,
    re-evaluations included) and ``episodes`` (episodes played). The start point defaults to
    the zero policy; ``kwargs`` are ``minimize``'s (``x0``, ``budget``, options...).
    """
    objective.reset(seed)
    res = minimize(objective, method=method, seed=seed, **kwargs)
    info = {**res.info, "env_steps": objective.env_steps, "episodes": objective.episodes_played}
    return dataclasses.replace(res, info=info)
