"""A noisy study's last part: its best point chosen and valued by re-evaluations handed out.

``minimize`` on a noisy objective re-evaluates the run's lowest samples at distinct points
(:mod:`optarena.core.noise`) once the method has ended: ``k`` evaluations of each candidate,
the lowest mean wins, and ``k`` fresh evaluations of the winner give the reported value and its
standard error. An ask/tell study does the same with the caller evaluating: once the method's
part ends (its budget, less the reserve, is spent; convergence; a target; the clock),
``ask()`` hands the re-evaluation points out like any candidates, and the study ends when the
last one is told. Told in the order asked, the History and the estimate are ``minimize``'s.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..core.noise import NoiseEstimate, mean_se

__all__ = ["Reevaluation"]

Leader = tuple[tuple[int, float], int, torch.Tensor]  # (ranking key, evaluation, point)


class Reevaluation:
    """The re-evaluation points of a noisy study, in two stages (see the module doc): which
    are out with the caller, which were told, and their values."""

    def __init__(self, k: int, leaders: list[Leader], raw_best: float, raw_index: int) -> None:
        self.k, self.raw_best, self.raw_index = k, raw_best, raw_index
        self.pool = [it for it in leaders if it[0][0] == 0] or leaders[:1]
        self.first: list[dict[str, Any]] = []  # stage 1: each candidate's mean
        self.chosen: Leader | None = None if len(self.pool) > 1 else self.pool[0]
        self.spent = 0
        if self.chosen is None:
            self._rows(torch.stack([x for _, _, x in self.pool]).repeat_interleave(k, dim=0))
        else:
            self._rows(self.chosen[2].unsqueeze(0).expand(k, -1).clone())

    def _rows(self, X: torch.Tensor) -> None:
        self.X = X
        self.out = [False] * X.shape[0]
        self.told = [False] * X.shape[0]
        self.f = torch.full((X.shape[0],), math.inf, dtype=X.dtype, device=X.device)

    @property
    def in_flight(self) -> int:
        """Re-evaluation points handed out and not told yet."""
        return sum(self.out)

    def hand(self, n: int | None) -> list[int]:
        """Up to ``n`` rows (None: all) neither out nor told, marked out; in row order."""
        free = [j for j, (o, t) in enumerate(zip(self.out, self.told, strict=True)) if not (o or t)]
        rows = free if n is None else free[:n]
        for j in rows:
            self.out[j] = True
        return rows

    def take(self, rows: list[int], ranked: list[float]) -> NoiseEstimate | None:
        """The values of ``rows``; after the last row of stage 2, the estimate."""
        for j, r in zip(rows, ranked, strict=True):
            self.f[j], self.told[j], self.out[j] = r, True, False
        self.spent += len(rows)
        if not all(self.told):
            return None
        if self.chosen is None:  # stage 1 told: the lowest mean wins
            f1 = self.f.reshape(len(self.pool), self.k)
            means = [mean_se(f1[i])[0] for i in range(len(self.pool))]
            for (key, index, _), m in zip(self.pool, means, strict=True):
                self.first.append({"eval": index, "sample": key[1], "mean": m})
            order = sorted(range(len(self.pool)), key=lambda i: (means[i], i))
            self.chosen = self.pool[order[0]]
            self._rows(self.chosen[2].unsqueeze(0).expand(self.k, -1).clone())
            return None
        fun, se = mean_se(self.f)
        info = {
            "reevaluations": self.k,
            "fun_se": se,
            "raw_best": self.raw_best,
            "raw_best_eval": self.raw_index,
            "chosen_eval": self.chosen[1],
            "chosen_sample": self.chosen[0][1],
            "candidates": self.first,
            "spent": self.spent,
        }
        return NoiseEstimate(x=self.chosen[2].clone(), fun=fun, index=self.chosen[1], info=info)

    # -- saving --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """This stage as plain data; rows out are saved as not handed out (after a restore
        nobody holds them: they are handed out again)."""
        return {
            "k": self.k,
            "raw": [self.raw_best, self.raw_index],
            "pool": leaders_state(self.pool),
            "first": [dict(r) for r in self.first],
            "chosen": None if self.chosen is None else leaders_state([self.chosen])[0],
            "spent": self.spent,
            "X": self.X.clone(),
            "told": list(self.told),
            "f": self.f.clone(),
        }

    @classmethod
    def from_state(cls, s: dict[str, Any], like: torch.Tensor) -> Reevaluation:
        """The stage :meth:`state` saved, its points on ``like``'s device and dtype."""
        self = cls.__new__(cls)
        self.k, self.spent = int(s["k"]), int(s["spent"])
        self.raw_best, self.raw_index = float(s["raw"][0]), int(s["raw"][1])
        self.pool = leaders_from_state(s["pool"], like)
        self.first = [dict(r) for r in s["first"]]
        chosen = s["chosen"]
        self.chosen = None if chosen is None else leaders_from_state([chosen], like)[0]
        self._rows(s["X"].to(like))
        self.told = [bool(t) for t in s["told"]]
        self.f = s["f"].to(like)
        return self


def leaders_state(items: list[Leader]) -> list[list[Any]]:
    """Leaders (``Oracle.leaders.items``) as plain lists."""
    return [[int(key[0]), float(key[1]), int(index), x.clone()] for key, index, x in items]


def leaders_from_state(saved: list[list[Any]], like: torch.Tensor) -> list[Leader]:
    """Leaders from :func:`leaders_state`'s lists."""
    return [((int(a), float(b)), int(i), x.to(like)) for a, b, i, x in saved]
