"""Noisy objectives: an honest estimate of the best point instead of its luckiest sample.

On an objective whose repeated evaluations at one point differ, the lowest sample of a run is
biased low (it is the minimum of many noisy draws). The Oracle of such a run keeps the few
lowest samples at distinct points (:class:`Leaders`); after the method ends,
:func:`reevaluate_best` re-evaluates them, ``k`` times each, chooses the one with the lowest
mean, and estimates its value from ``k`` fresh evaluations made after the choice (so neither
the first sample nor the choice among candidates biases the estimate). Every re-evaluation is
an ordinary counted, recorded evaluation; :func:`reserve` of them is held back from the method's
budget so the re-evaluations fit inside the budget the user gave.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .oracle import Oracle

__all__ = ["CANDIDATES", "Leaders", "NoiseEstimate", "default_reevaluations", "mean_se", "reserve"]

#: How many of the lowest distinct samples compete in the final re-evaluation.
CANDIDATES = 3

#: Most re-evaluations per point chosen by default, and the share of the budget they may take.
_MAX_DEFAULT_K = 10
_DEFAULT_SHARE = 20  # the default reserve is at most 1/20 of the evaluation budget


def reserve(k: int) -> int:
    """Evaluations held back for ``k`` re-evaluations: each candidate, then the chosen one."""
    return (CANDIDATES + 1) * k


def default_reevaluations(evals: int | None) -> int:
    """Re-evaluations per point for a noisy objective when ``reevaluate=None``: up to 10,
    with the reserve at most 5% of the evaluation budget; 0 when that leaves fewer than 2
    (no standard error could be given). Without an evaluation limit: 5."""
    if evals is None:
        return 5
    k = min(_MAX_DEFAULT_K, evals // (_DEFAULT_SHARE * (CANDIDATES + 1)))
    return k if k >= 2 else 0


class Leaders:
    """The lowest few samples of a run at distinct points, by the Oracle's ranking key
    (feasible values first, then violations); a point keeps its lowest sample."""

    def __init__(self, size: int = CANDIDATES) -> None:
        self.size = size
        self.items: list[tuple[tuple[int, float], int, torch.Tensor]] = []

    def offer(self, key: tuple[int, float], index: int, x: torch.Tensor) -> None:
        """Consider the sample of evaluation ``index`` (1-based) at ``x`` with ranking ``key``."""
        items = self.items
        if len(items) >= self.size and (key, index) >= (items[-1][0], items[-1][1]):
            return
        for j, (k, _, y) in enumerate(items):
            if torch.equal(y, x):
                if key < k:
                    items[j] = (key, index, x.detach().clone())
                    items.sort(key=lambda t: (t[0], t[1]))
                return
        items.append((key, index, x.detach().clone()))
        items.sort(key=lambda t: (t[0], t[1]))
        del items[self.size :]


@dataclass
class NoiseEstimate:
    """The chosen point, its estimated value and how the estimate was made."""

    x: torch.Tensor
    fun: float
    index: int  # the evaluation whose sample made the point a candidate
    info: dict[str, Any] = field(default_factory=dict)


def mean_se(f: torch.Tensor) -> tuple[float, float]:
    """The mean of repeated values of one point and its standard error (NaN below 2)."""
    vals = f.double()
    mean = float(vals.mean())
    if not math.isfinite(mean) or vals.numel() < 2:
        return mean, math.nan
    return mean, float(vals.std(unbiased=True)) / math.sqrt(vals.numel())


def reevaluate_best(oracle: Oracle, k: int) -> NoiseEstimate | None:
    """Re-evaluate the run's candidates (``oracle.leaders``) and estimate the best one's value.

    Stage 1 (only when two or more feasible candidates compete): ``k`` evaluations of each,
    the lowest mean wins. Stage 2: ``k`` fresh evaluations of the winner; their mean is the
    estimate and their standard error is reported. Returns None when there is nothing to do.
    """
    leaders = oracle.leaders
    if leaders is None or not leaders.items or k <= 0:
        return None
    items = list(leaders.items)
    raw_best, raw_index = oracle.best_f, oracle.best_eval  # before the re-evaluations
    pool = [it for it in items if it[0][0] == 0] or items[:1]
    rows = []
    if len(pool) > 1:
        X = torch.stack([x for _, _, x in pool]).repeat_interleave(k, dim=0)
        f1 = oracle.values(X).reshape(len(pool), k)
        means = [mean_se(f1[i])[0] for i in range(len(pool))]
        for (key, index, _), m in zip(pool, means, strict=True):
            rows.append({"eval": index, "sample": key[1], "mean": m})
        order = sorted(range(len(pool)), key=lambda i: (means[i], i))
        chosen = pool[order[0]]
    else:
        chosen = pool[0]
    f2 = oracle.values(chosen[2].unsqueeze(0).expand(k, -1).clone())
    fun, se = mean_se(f2)
    info = {
        "reevaluations": k,
        "fun_se": se,
        "raw_best": raw_best,
        "raw_best_eval": raw_index,
        "chosen_eval": chosen[1],
        "chosen_sample": chosen[0][1],
        "candidates": rows,
        "spent": k * (len(pool) + 1) if len(pool) > 1 else k,
    }
    return NoiseEstimate(x=chosen[2].clone(), fun=fun, index=chosen[1], info=info)
