"""Runtime ECDF data as COCO draws it: the fraction of (problem, target) pairs reached against
evaluations; targets and first hits come from :mod:`optarena.bench.targets`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...bench.targets import DEFAULT_DELTAS, ecdf_targets, first_reach
from .runs import Trace, group_runs

__all__ = ["DEFAULT_DELTAS", "EcdfCurve", "ecdf_data"]


@dataclass(frozen=True)
class EcdfCurve:
    """Fraction of (problem, target) pairs reached against evaluations, for one label.

    ``fraction[i]`` holds from ``evals[i]`` on (a step function, 0 before ``evals[0]``);
    ``max_evals`` is the largest number of evaluations any of the label's runs used.
    """

    label: str
    evals: np.ndarray
    fraction: np.ndarray
    max_evals: int


def ecdf_data(
    runs_by_problem: Mapping[str, Any],
    *,
    f_opt: Mapping[str, float | None] | None = None,
    targets: Mapping[str, Sequence[float]] | None = None,
    deltas: Sequence[float] = tuple(DEFAULT_DELTAS),
) -> list[EcdfCurve]:
    """Runtime ECDFs as COCO draws them, from the runs' histories.

    ``runs_by_problem`` maps a problem name to its runs (anything :func:`group_runs` reads).
    A problem's targets are ``targets[name]``, else ``f_opt[name] + deltas``, else (optimum
    unknown) the best value any run found on it plus ``deltas``. Every problem weighs the same,
    every target of a problem the same, and the runs of a label on a problem are averaged.
    """
    if not runs_by_problem:
        raise ValueError("no problems given")
    grouped = {p: group_runs(r) for p, r in runs_by_problem.items()}
    labels = list(dict.fromkeys(lab for g in grouped.values() for lab in g))
    hits: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {lab: [] for lab in labels}
    max_evals = dict.fromkeys(labels, 0)
    for prob, groups in grouped.items():
        tg = _targets(prob, groups, f_opt, targets, deltas)
        for lab in labels:
            traces = groups.get(lab, [])
            if not traces:  # a label that did not run on this problem reaches none of it
                continue
            weight = 1.0 / (len(grouped) * tg.size * len(traces))
            for t in traces:
                max_evals[lab] = max(max_evals[lab], int(t.evals[-1]) if len(t) else 0)
                idx = first_reach(t.best_f, tg)
                reached = idx < len(t)
                hits[lab].append((t.evals[idx[reached]], np.full(int(reached.sum()), weight)))
    out = []
    for lab in labels:
        ev = np.concatenate([h[0] for h in hits[lab]]) if hits[lab] else np.empty(0, np.int64)
        w = np.concatenate([h[1] for h in hits[lab]]) if hits[lab] else np.empty(0)
        uniq, inv = np.unique(ev, return_inverse=True)
        frac = np.cumsum(np.bincount(inv, weights=w, minlength=uniq.size))
        out.append(EcdfCurve(lab, uniq.astype(np.int64), np.minimum(frac, 1.0), max_evals[lab]))
    return out


def _targets(
    prob: str,
    groups: Mapping[str, list[Trace]],
    f_opt: Mapping[str, float | None] | None,
    targets: Mapping[str, Sequence[float]] | None,
    deltas: Sequence[float],
) -> np.ndarray:
    if targets is not None and prob in targets:
        tg = np.asarray(targets[prob], dtype=np.float64).reshape(-1)
    else:
        ref = None if f_opt is None else f_opt.get(prob)
        bests = (float(t.best_f[-1]) for ts in groups.values() for t in ts if len(t))
        found = ecdf_targets(ref, bests, deltas)
        if found is None:
            raise ValueError(f"no run found a finite value on {prob!r}: give its targets")
        tg = found
    if tg.size == 0 or not np.isfinite(tg).all():
        raise ValueError(f"targets of {prob!r} must be a non-empty list of finite numbers")
    return tg
