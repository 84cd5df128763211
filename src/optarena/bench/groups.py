"""bbob runs as COCO reports them: solved fractions and runtime ECDFs per function group.

A run reaches the precision ``t`` at the first evaluation whose best-so-far value has
``f - f_opt <= t`` (COCO's measure). Per method label and dimension:

- the solved fraction of a group is the share of (run, target) pairs reached within the
  budget, over its runs (function x instance x seed) and the targets (1e-1, 1e-3, 1e-8 unless
  a spec sets others);
- the runtime ECDF of a group is, against evaluations / dimension, the share of (run,
  target) pairs reached by then, over COCO's 51 targets 10^2 ... 10^-8.

Every (run, target) pair weighs the same; a run that failed counts what it reached first.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..problems.bbob import GROUPS, group_of
from .targets import DEFAULT_DELTAS

__all__ = [
    "ALL",
    "COCO_TARGETS",
    "ECDF_DELTAS",
    "BBOBRun",
    "GroupCurve",
    "bbob_runs",
    "group_curves",
    "group_tables",
    "solved",
]

#: The precisions on f - f_opt of the solved fraction (COCO's fixed-budget table).
COCO_TARGETS = (1e-1, 1e-3, 1e-8)
#: COCO's 51 ECDF targets, 10^2 down to 10^-8.
ECDF_DELTAS = tuple(float(d) for d in DEFAULT_DELTAS)
#: The pseudo-group of every function.
ALL = "all functions"


@dataclass(frozen=True)
class BBOBRun:
    """One stored bbob run: where it ran and the evaluations of its best-so-far changes."""

    label: str
    function: int
    instance: int
    dim: int
    seed: int
    evals: np.ndarray  # evaluation index of each best-so-far change (increasing)
    gap: np.ndarray  # best f - f_opt after each of them (non-increasing)
    nfev: int

    @property
    def group(self) -> str:
        """The COCO function group of the run's function."""
        return group_of(self.function)

    def first_hits(self, deltas: Sequence[float]) -> np.ndarray:
        """Per precision, the evaluation that first reached it (``inf``: never)."""
        d = np.asarray(deltas, dtype=np.float64)
        idx = np.searchsorted(-self.gap, -d, side="left")  # -gap is non-decreasing
        out = np.full(d.shape, np.inf)
        ok = idx < self.gap.size
        out[ok] = self.evals[idx[ok]]
        return out


def bbob_runs(store: object, keys: Iterable[str] | None = None) -> list[BBOBRun]:
    """The bbob runs among the stored ones (only ``keys`` when given), in storage order."""
    rows = [r for r in store.selected_runs(keys) if r["problem"] == "bbob"]  # type: ignore[attr-defined]
    changes = store.best_changes(r["run_id"] for r in rows)  # type: ignore[attr-defined]
    out = []
    for r in rows:
        params = json.loads(r["problem_params"])
        c = changes.get(r["run_id"])
        f_opt = r["f_opt"]
        if c is None or f_opt is None:  # no history: nothing reached
            evals, gap = np.empty(0, np.int64), np.empty(0)
        else:
            gap = np.minimum.accumulate(np.asarray(c["best_f"], dtype=np.float64) - f_opt)
            evals = np.asarray(c["evals"], dtype=np.int64)
        out.append(
            BBOBRun(
                label=r["label"],
                function=int(params["function"]),
                instance=int(params["instance"]),
                dim=int(params["dim"]),
                seed=int(r["seed"]),
                evals=evals,
                gap=gap,
                nfev=int(r["nfev"]),
            )
        )
    return out


def _by(runs: Iterable[BBOBRun]) -> dict[tuple[str, int, str], list[BBOBRun]]:
    """Runs by (label, dim, group), every run also under :data:`ALL`."""
    out: dict[tuple[str, int, str], list[BBOBRun]] = {}
    for r in runs:
        out.setdefault((r.label, r.dim, r.group), []).append(r)
        out.setdefault((r.label, r.dim, ALL), []).append(r)
    return out


def solved(
    runs: Iterable[BBOBRun], targets: Sequence[float] = COCO_TARGETS
) -> dict[tuple[str, int, str], tuple[int, int]]:
    """(pairs reached, pairs) by (label, dim, group): the solved fraction's two counts."""
    out = {}
    for key, rs in _by(runs).items():
        hit = sum(int(np.isfinite(r.first_hits(targets)).sum()) for r in rs)
        out[key] = (hit, len(rs) * len(targets))
    return out


@dataclass(frozen=True)
class GroupCurve:
    """A runtime ECDF: ``fraction[i]`` of the (run, target) pairs are reached once
    evaluations / dim reach ``x[i]`` (a step function, 0 before ``x[0]``); ``budget`` is the
    largest evaluations / dim any of the runs used."""

    label: str
    dim: int
    group: str
    runs: int
    x: np.ndarray
    fraction: np.ndarray
    budget: float

    def at(self, x: float) -> float:
        """The fraction reached by ``x`` evaluations / dim."""
        i = int(np.searchsorted(self.x, x, side="right"))
        return float(self.fraction[i - 1]) if i else 0.0


def group_curves(
    runs: Iterable[BBOBRun], deltas: Sequence[float] = ECDF_DELTAS
) -> list[GroupCurve]:
    """One ECDF per (label, dim, group) present (and per (label, dim) over all functions)."""
    out = []
    for (label, dim, group), rs in _by(runs).items():
        hits = np.concatenate([r.first_hits(deltas) for r in rs]) / dim
        total = hits.size
        reached = np.sort(hits[np.isfinite(hits)])
        x, counts = np.unique(reached, return_counts=True)
        budget = max(r.nfev for r in rs) / dim
        out.append(
            GroupCurve(label, dim, group, len(rs), x, np.cumsum(counts) / total, float(budget))
        )
    order = {g: i for i, g in enumerate([*GROUPS, ALL])}
    return sorted(out, key=lambda c: (c.dim, order[c.group], c.label))


# -- tables -----------------------------------------------------------------------------------
_SHORT = {
    "separable": "separable f1-5",
    "low or moderate conditioning": "low/moderate cond. f6-9",
    "high conditioning, unimodal": "high cond. f10-14",
    "multimodal, adequate global structure": "multimodal, adequate f15-19",
    "multimodal, weak global structure": "multimodal, weak f20-24",
    ALL: "all",
}


def _checkpoints(budget: float) -> list[float]:
    """Evaluations / dim where the ECDF table reads the curves: powers of ten, and the budget."""
    top = max(budget, 1.0)
    pts = [10.0**k for k in range(math.floor(math.log10(top)) + 1)]
    return pts if math.isclose(pts[-1], top) else [*pts, top]


def _fmt_x(x: float) -> str:
    return f"{x:g}"


def group_tables(
    store: object, keys: Iterable[str] | None = None, targets: Sequence[float] | None = None
) -> str:
    """Markdown: the solved fraction per group, and the ECDF per group at a few budgets
    (empty when the store holds no bbob run)."""
    runs = bbob_runs(store, keys)
    if not runs:
        return ""
    tg = tuple(targets) if targets else COCO_TARGETS
    counts = solved(runs, tg)
    labels = list(dict.fromkeys(r.label for r in runs))
    dims = sorted({r.dim for r in runs})
    groups = [*GROUPS, ALL]
    head = ["method", "d", *(_SHORT[g] for g in groups)]
    lines = [
        "",
        "bbob: solved fraction of (run, target) pairs per COCO function group, targets "
        + ", ".join(f"{t:g}" for t in tg)
        + " on f - f_opt",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for d in dims:
        for lab in labels:
            if (lab, d, ALL) not in counts:
                continue
            cells = []
            for g in groups:
                hit, n = counts.get((lab, d, g), (0, 0))
                cells.append(f"{hit / n:.3f}" if n else "-")
            lines.append(f"| {lab} | {d} | " + " | ".join(cells) + " |")
    curves = group_curves(runs)
    budget = max(c.budget for c in curves)
    xs = _checkpoints(budget)
    head = ["d", "group", "method", *(f"{_fmt_x(x)}" for x in xs)]
    lines += [
        "",
        "bbob: runtime ECDF, fraction of (run, target) pairs reached by evaluations / d "
        "(columns), COCO's 51 targets 1e2 ... 1e-8",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for c in curves:
        cells = [f"{c.at(x):.3f}" if x <= c.budget * (1 + 1e-12) else "" for x in xs]
        lines.append(f"| {c.dim} | {_SHORT[c.group]} | {c.label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
