"""Composites with nelder_mead / powell inside: the numpy fast path against the general path.

The one-point scipy methods evaluate float64 numpy points through ``value_array`` (the Oracle,
and the Scope of a composite's sub-run) without making tensors. This script runs the same
seeded composites on the numpy Rosenbrock function twice, alternately: as they run, and with
the adapter forced onto the general path (a tensor per point through ``value``), and prints
the CPU time per evaluation of each and their ratio (medians over repeats, one thread).

    python benchmarks/composite_fastpath.py [repeats] [evaluations]
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import statistics
import sys
import time
from typing import Any

import numpy as np
import torch

import optarena as oa
from optarena.methods.scipy._adapter import ScipyPoints

torch.set_num_threads(1)
_init = ScipyPoints.__init__


def _general(self: ScipyPoints, *args: Any, **kwargs: Any) -> None:
    """The adapter as built, then forced onto the general (tensor) path."""
    _init(self, *args, **kwargs)
    self._lean = False


def rosen(x: np.ndarray) -> float:
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


CASES = {
    "nelder_mead (the Oracle)": ("nelder_mead", {}),
    "multistart nelder_mead": ("multistart", {"local": "nelder_mead", "starts": 4}),
    "multistart powell": ("multistart", {"local": "powell", "starts": 4}),
    "chain random_search>nelder_mead": ("chain", {"phases": ("random_search", "nelder_mead")}),
    "chain pso>powell": ("chain", {"phases": ("pso", "powell"), "switch": 0.3}),
}


def run(method: str, options: dict[str, Any], d: int, evals: int) -> tuple[float, int]:
    obj = oa.Objective.from_numpy(rosen)
    x0 = np.ones(d)
    x0[::2] = -1.2
    t = time.process_time()
    res = oa.minimize(obj, x0, method, bounds=(-5.0, 5.0), budget=evals, seed=1, **options)
    return (time.process_time() - t) / res.nfev * 1e6, res.nfev


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    evals = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
    print("| case | d | nfev | fast path (us/eval) | general path (us/eval) | general / fast |")
    print("|---|---|---|---|---|---|")
    for d in (2, 10):
        for name, (method, options) in CASES.items():
            fast: list[float] = []
            slow: list[float] = []
            for i in range(reps):
                for general in (False, True) if i % 2 == 0 else (True, False):
                    ScipyPoints.__init__ = _general if general else _init  # type: ignore[method-assign]
                    us, n = run(method, options, d, evals)
                    (slow if general else fast).append(us)
            ScipyPoints.__init__ = _init  # type: ignore[method-assign]
            f, s = statistics.median(fast), statistics.median(slow)
            print(f"| {name} | {d} | {n} | {f:.1f} | {s:.1f} | {s / f:.2f} |", flush=True)


if __name__ == "__main__":
    main()
