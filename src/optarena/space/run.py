"""``minimize(f, space=...)``: a function of a configuration dict run as a box problem.

The space's encoding (:mod:`optarena.space.encoding`) becomes the bounds; x0 is a given
configuration (encoded) or the centre of the box. The objective the methods see decodes each
point and calls ``f(config)`` -- unless that configuration was evaluated before in this run:
then its value is reused and ``f`` is not called again. A reused value still counts as one
evaluation (``nfev``, the History, the budget), so a search that keeps proposing the same
configurations still ends when its budget is spent; ``result.cache_hits`` and
``result.info["space"]`` say how many candidates were reused and how many real calls ``f`` got.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch

from ..core.objective import Objective
from ..methods import Facts, MethodInfo, method_infos
from ..problems import Problem
from ..result import Result
from .encoding import Encoding
from .result import SpaceResult
from .space import Space

__all__ = ["SpacePlan", "space_plan", "space_result", "space_start"]


@dataclass
class CachedCall:
    """The function the methods minimize: a point of the box -> ``f(decoded config)``, each
    configuration computed once per run (see the module doc)."""

    fn: Callable[[dict[str, Any]], Any]
    encoding: Encoding
    values: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    calls: int = 0
    hits: int = 0

    def __call__(self, x: torch.Tensor) -> Any:
        config, key = self.encoding.decode_keyed(x)
        if key in self.values:
            self.hits += 1
            return self.values[key]
        self.calls += 1
        y = self.fn(config)
        if isinstance(y, torch.Tensor) and y.numel() == 1:
            y = float(y.detach())
        elif isinstance(y, int | float | np.integer | np.floating) and not isinstance(y, bool):
            y = float(y)
        else:  # not a scalar: the Objective refuses it with its own message; not cached
            return y
        self.values[key] = y
        return y


@dataclass
class SpacePlan:
    """What ``minimize`` runs for a space: the objective over the box, x0, the bounds."""

    space: Space
    objective: Objective
    x0: torch.Tensor
    bounds: tuple[torch.Tensor, torch.Tensor]
    cache: CachedCall

    def refusal(self, info: MethodInfo) -> str | None:
        """Why a method cannot search this space (None when it can): a gradient cannot move
        integers or categories."""
        discrete = self.space.discrete
        if not (info.needs_grad and discrete):
            return None
        facts = Facts(gradient="none", bounded=True)
        fit = [
            i.name
            for i in method_infos()
            if i.family in ("population", "external") and i.fits(facts)
        ]
        return (
            f"method {info.name!r} needs a gradient, but the space has integer or categorical "
            f"parameters ({', '.join(map(repr, discrete))}) that no gradient moves. Use a "
            f"gradient-free method: {', '.join(fit)}"
        )

    def result(self, res: Result) -> SpaceResult:
        """``res`` with the best configuration, the space and the cache counts."""
        return space_result(res, self.space, self.cache.calls, self.cache.hits)


def space_result(res: Result, space: Space, calls: int, hits: int) -> SpaceResult:
    """``res`` of a run over ``space`` with its best configuration and its cache counts:
    ``calls`` configurations evaluated, ``hits`` candidates answered from the cache."""
    info = {**res.info, "space": {"calls": calls, "cache_hits": hits}}
    message = res.message
    if hits:
        message = (message + "; " if message else "") + (
            f"{hits} of {res.nfev} candidates repeated a configuration already evaluated: "
            "its value was reused, not evaluated again (each counted in nfev)"
        )
    base = {f.name: getattr(res, f.name) for f in fields(Result)}
    base.update(info=info, message=message)
    return SpaceResult(**base, config=space.decode(res.x), space=space, cache_hits=hits)


def space_start(
    space: Space, x0: Any, bounds: Any
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """x0 (a configuration dict, or None for the centre of the space) and bounds of the
    encoded box of ``space``, for ``minimize(space=)`` and the ask/tell Optimizer."""
    if bounds is not None:
        raise ValueError("with space=, the space sets the bounds: leave bounds= out")
    enc = space.encoding
    if enc.dim == 0:
        raise ValueError("the space has nothing to search: every entry is a fixed value")
    if x0 is None:
        start = enc.centre
    elif isinstance(x0, Mapping):
        start = enc.encode(x0)
    else:
        raise TypeError(
            "with space=, x0 is a configuration dict (or None for the centre of the space), "
            f"got {type(x0).__name__}"
        )
    lower = torch.as_tensor(enc.lower, dtype=torch.float64)
    upper = torch.as_tensor(enc.upper, dtype=torch.float64)
    return torch.as_tensor(start, dtype=torch.float64), (lower, upper)


def space_plan(
    fn: Any,
    space: Space | Mapping[str, Any],
    x0: Any,
    *,
    bounds: Any,
    constraints: Any,
    executor: Any,
    reevaluate: int | None,
) -> SpacePlan:
    """Check what ``minimize(space=...)`` was given and build the box problem."""
    sp = space if isinstance(space, Space) else Space(space)
    if isinstance(fn, Objective | Problem) or not callable(fn):
        raise TypeError(
            "with space=, the objective is a function of a configuration dict "
            f"(f(config) -> float), got {type(fn).__name__}"
        )
    if bounds is not None:  # before the other arguments (space_start checks it too)
        raise ValueError("with space=, the space sets the bounds: leave bounds= out")
    if constraints is not None and (
        not isinstance(constraints, list | tuple) or len(constraints) > 0
    ):
        raise ValueError(
            "constraints= are not supported with space= yet: add a penalty for the violation "
            "to the objective's value (the configuration is a dict), or minimize over a box "
            "with Ineq / Eq constraints (minimize(f, x0, bounds=..., constraints=...))"
        )
    if executor is not None:
        raise ValueError(
            "executor= is not supported with space= yet (the cache of configurations lives "
            "in this process)"
        )
    if reevaluate:
        raise ValueError(
            "reevaluate= does not apply with space=: a configuration already evaluated is not "
            "evaluated again"
        )
    start, box = space_start(sp, x0, bounds)
    enc = sp.encoding
    cache = CachedCall(fn, enc)
    obj = Objective(
        cache,
        gradient="none" if sp.discrete else "fd",
        vectorize=False,
        name=getattr(fn, "__name__", type(fn).__name__),
    )
    return SpacePlan(sp, obj, start, box, cache)
