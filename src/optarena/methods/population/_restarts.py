"""IPOP and BIPOP restart schedules for population methods (Auger & Hansen 2005, Hansen 2009).

A run of the method stops on its own criterion; the schedule then decides the next run's
population size and step-size factor, sharing the whole budget: IPOP multiplies the population
each time, BIPOP alternates such large runs with small ones of random size and step, giving
both regimes about the same number of evaluations.

In a finite box, a large run restarts at the box's centre (its step size a fraction of the
width, as the first run's): the one point from which the initial distribution reaches the
whole box evenly, where a uniform point of a d-dimensional box lies far out (at d = 10 about
9 units from the centre of [-5, 5]^10, against the 6.3 a step of 2 reaches). bbob, cmaes, 4
runs per problem: 1,115 / 881 / 784 triples solved at d = 2 / 5 / 10 against 1,101 / 856 / 759
from uniform points (Gallagher's f21 and f22 gain most; BENCHMARKS.md). BIPOP's small runs,
local by design, start at a uniform point of the box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

__all__ = [
    "MAX_GROWTH",
    "RESTART_KINDS",
    "RestartBook",
    "Restarting",
    "next_run",
    "next_start",
    "restart_point",
]

RESTART_KINDS = ("none", "ipop", "bipop")
#: Most population increases: later restarts keep the largest population (pycma's IPOP
#: default of 9 restarts reaches the same size), so a long budget never grows it without end.
MAX_GROWTH = 9
_F64 = torch.float64


@dataclass(kw_only=True)
class RestartBook:
    """Restart bookkeeping of one optimization: counters of the runs so far (plain numbers,
    so a deep copy of a state that holds it resumes exactly)."""

    run_evals: int = 0  # evaluations of the current run
    run_limit: int | None = None  # evaluation limit of a BIPOP small-population run
    restarts: int = 0  # restarts done (all kinds)
    large_restarts: int = 0  # IPOP / BIPOP large-population restarts done
    regime: str = "first"  # "first", "large" or "small" (BIPOP bookkeeping)
    evals_small: int = 0  # BIPOP: evaluations of the small-population runs and the first
    evals_large: int = 0  # BIPOP: evaluations of the large-population runs
    popsizes: list[int] = field(default_factory=list)  # population size of each run
    regimes: list[str] = field(default_factory=list)  # "first", "large" or "small", each run
    stop_reasons: list[str] = field(default_factory=list)  # why each finished run stopped
    stop: str = ""  # the criterion that ended the whole optimization ("" while running)

    def started(self, popsize: int) -> None:
        """Record the start of a run with ``popsize`` members."""
        self.run_evals = 0
        self.popsizes.append(popsize)
        self.regimes.append(self.regime)


def next_run(
    book: RestartBook,
    reason: str,
    *,
    kind: str,
    popsize_factor: float,
    max_restarts: int | None,
    generator: torch.Generator,
) -> tuple[int, float] | None:
    """Record that the current run stopped on ``reason``; the next run's (population size,
    step-size factor), or None when the schedule ``kind`` allows no further run.

    ``max_restarts=None`` restarts until the run's budget ends it; the population grows at
    the first :data:`MAX_GROWTH` large restarts and keeps its largest size after that."""
    book.stop_reasons.append(reason)
    if book.regime == "large":
        book.evals_large += book.run_evals
    else:
        book.evals_small += book.run_evals
    if kind == "none":
        return None
    lam0 = book.popsizes[0]
    sigma_factor = 1.0
    book.run_limit = None
    if kind == "bipop" and book.evals_small < max(1, book.evals_large):
        u = torch.rand(2, generator=generator, dtype=_F64).tolist()
        big = popsize_factor ** min(book.large_restarts, MAX_GROWTH)
        lam = max(2, math.floor(lam0 * big ** (u[0] ** 2)))
        sigma_factor = 10.0 ** (-2.0 * u[1])
        book.run_limit = max(lam, math.floor(0.5 * book.evals_large))
        book.regime = "small"
    else:
        if max_restarts is not None and book.large_restarts >= max_restarts:
            return None
        book.large_restarts += 1
        lam = math.floor(lam0 * popsize_factor ** min(book.large_restarts, MAX_GROWTH))
        book.regime = "large"
    book.restarts += 1
    return lam, sigma_factor


def restart_point(
    x0: torch.Tensor,
    lower: torch.Tensor | None,
    upper: torch.Tensor | None,
    generator: torch.Generator,
    small: bool = False,
) -> torch.Tensor:
    """Where a restarted run starts when the box and its width are finite (a width that
    overflows would give inf or NaN): its centre, or a uniform random point for a ``small``
    (BIPOP local) run; else ``x0`` (given in the dtype and on the device of the distribution)
    again."""
    if lower is None or upper is None:
        return x0
    if not bool(torch.isfinite(upper - lower).all()):  # also False for an infinite side
        return x0
    if not small:
        return lower + 0.5 * (upper - lower)
    u = torch.rand(x0.numel(), generator=generator, dtype=x0.dtype).to(x0.device)
    return lower + u * (upper - lower)


def next_start(
    book: RestartBook,
    reason: str,
    x0: torch.Tensor,
    lower: torch.Tensor | None,
    upper: torch.Tensor | None,
    *,
    kind: str,
    popsize_factor: float,
    max_restarts: int | None,
    generator: torch.Generator,
) -> tuple[torch.Tensor, int, float] | None:
    """Record that the current run stopped on ``reason``: the next run's start point
    (:func:`restart_point`), population size and step-size factor (:func:`next_run`), or None,
    with ``book.stop`` set, when the schedule ``kind`` allows no further run."""
    nxt = next_run(
        book,
        reason,
        kind=kind,
        popsize_factor=popsize_factor,
        max_restarts=max_restarts,
        generator=generator,
    )
    if nxt is None:
        book.stop = reason
        return None
    lam, sigma_factor = nxt
    small = book.regime == "small"
    return restart_point(x0, lower, upper, generator, small), lam, sigma_factor


class Restarting:
    """``converged`` and ``stop_message`` of a population method whose state is a
    :class:`RestartBook` (mixed in before the method's base class)."""

    def converged(self, state: RestartBook) -> bool:
        """True once a stopping criterion held and no restart is left."""
        return bool(state.stop)

    def stop_message(self, state: RestartBook, generation: int) -> str:
        """The criterion that ended the run, and those of the runs before restarts."""
        msg = f"stopped on {state.stop} after {generation} generations"
        if len(state.stop_reasons) > 1:
            msg += f"; earlier runs stopped on {', '.join(state.stop_reasons[:-1])}"
        return msg
