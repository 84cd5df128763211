"""CPU time per evaluation of the scipy methods that evaluate one point at a time, through
optarena and through ``scipy.optimize`` directly, on the same cheap function.

For each method (``dual_annealing``, ``nelder_mead``, ``powell``), d = 2 / 10 / 20 and a cheap
function written with torch (``minimize(f, ...)``) and with numpy (``Objective.from_numpy``),
optarena runs with an evaluation budget, then scipy runs the same algorithm with the same
options, seed and start, capped at the number of evaluations optarena made (for the torch
function scipy calls ``float(f(torch.from_numpy(x)))``, the least a user must write). Both run
the same trajectory (scipy's ``dual_annealing`` finishes its last local search past its
``maxfun``, so it may make more evaluations), and the ratio of CPU microseconds per evaluation
is optarena's overhead:
counting, budget, best point, History, NaN handling, the wall and stall watches. Runs
alternate, on one thread; the table gives medians over repeats.

``dual_annealing`` runs with ``local_search_gradient=False`` so that its local search is
scipy's own finite-difference L-BFGS-B on both sides (by default optarena's local search
stops on offset-invariant tests instead, and the trajectories would part).

Run: ``.venv/bin/python benchmarks/scipy_overhead.py [--repeats 7] [--evals 2000]
[--methods nelder_mead,powell] [--dims 2,10] [--profile nelder_mead:10:numpy]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.optimize as so  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import optarena as oa  # noqa: E402

METHODS = ("dual_annealing", "nelder_mead", "powell")
DIMS = (2, 10, 20)
KINDS = ("torch", "numpy")
LO, HI = -5.0, 5.0


def rosen_np(x: np.ndarray) -> float:
    """Rosenbrock's function, numpy (a few microseconds)."""
    return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


def rosen_torch(x: torch.Tensor) -> torch.Tensor:
    """Rosenbrock's function, torch."""
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


def x0_of(d: int) -> np.ndarray:
    """The common start: Rosenbrock's classic (-1.2, 1, -1.2, 1, ...)."""
    x = np.ones(d)
    x[::2] = -1.2
    return x


def run_optarena(method: str, d: int, kind: str, evals: int, seed: int) -> tuple[int, float]:
    """One optarena run; returns (evaluations, best value)."""
    f: Any = rosen_torch if kind == "torch" else oa.Objective.from_numpy(rosen_np)
    opts: dict[str, Any] = {}
    bounds = None
    if method == "dual_annealing":
        opts["local_search_gradient"] = False
        bounds = (np.full(d, LO), np.full(d, HI))
    res = oa.minimize(
        f, x0_of(d), method, bounds=bounds, budget=evals, seed=seed, record_x=True, **opts
    )
    return res.nfev, res.fun


def scipy_fun(kind: str) -> Callable[[np.ndarray], float]:
    """The function as scipy receives it directly."""
    if kind == "numpy":
        return rosen_np
    return lambda x: float(rosen_torch(torch.from_numpy(x)))


def run_scipy(method: str, d: int, kind: str, evals: int, seed: int) -> tuple[int, float]:
    """The same algorithm, options, start and seed through scipy.optimize directly, capped at
    ``evals`` evaluations; returns (evaluations, best value)."""
    fun = scipy_fun(kind)
    x0 = x0_of(d)
    if method == "dual_annealing":
        res = so.dual_annealing(
            fun,
            so.Bounds(np.full(d, LO), np.full(d, HI)),
            maxiter=10**9,
            maxfun=evals,
            rng=np.random.default_rng(seed),
            x0=x0,
            minimizer_kwargs={
                "method": "L-BFGS-B",
                "bounds": so.Bounds(np.full(d, LO), np.full(d, HI)),
                "options": {"maxiter": min(max(6 * d, 100), 1000), "ftol": 2.2e-9, "gtol": 1e-5},
            },
        )
    elif method == "nelder_mead":
        opts = {"maxfev": evals, "maxiter": 10**9, "xatol": 1e-8, "fatol": 1e-12}
        res = so.minimize(fun, x0, method="Nelder-Mead", options={**opts, "adaptive": True})
    else:
        opts = {"maxfev": evals, "maxiter": 10**9, "xtol": 1e-8, "ftol": 0.0}
        res = so.minimize(fun, x0, method="Powell", options=opts)
    return int(res.nfev), float(res.fun)


def cpu_us_per_eval(run: Callable[[], tuple[int, float]]) -> tuple[float, int, float]:
    """CPU microseconds per evaluation of one run, its evaluations and best value."""
    t = time.process_time()
    n, best = run()
    return (time.process_time() - t) / n * 1e6, n, best


def profile(spec: str, evals: int) -> None:
    """cProfile one optarena run, ``method:d:kind``, and print the top of the table."""
    method, d, kind = spec.split(":")
    run_optarena(method, int(d), kind, 50, 0)  # warm-up
    prof = cProfile.Profile()
    prof.enable()
    run_optarena(method, int(d), kind, evals, 0)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    """Measure each cell side by side and print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="runs per cell (median reported)")
    ap.add_argument("--evals", type=int, default=2000, help="evaluation budget of a run")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--dims", default=",".join(map(str, DIMS)))
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--profile", default="", help="method:d:kind: cProfile one run instead")
    args = ap.parse_args()
    if args.profile:
        profile(args.profile, args.evals)
        return
    print(
        f"torch {torch.__version__}, scipy {so.__name__ and __import__('scipy').__version__}, "
        f"1 thread, budget {args.evals}, median of {args.repeats} runs; CPU microseconds per "
        "evaluation\n"
    )
    print("| method | d | function | evals (optarena / scipy) | optarena | scipy | ratio |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for d in map(int, args.dims.split(",")):
            for kind in args.kinds.split(","):
                run_optarena(method, d, kind, 50, 0)  # warm-up: first-call dispatch
                ours: list[float] = []
                theirs: list[float] = []
                n = n2 = 0
                for rep in range(args.repeats):
                    us, n, _ = cpu_us_per_eval(
                        lambda: run_optarena(method, d, kind, args.evals, rep)  # noqa: B023
                    )
                    ours.append(us)
                    us2, n2, _ = cpu_us_per_eval(
                        lambda: run_scipy(method, d, kind, n, rep)  # noqa: B023
                    )
                    theirs.append(us2)
                a, b = statistics.median(ours), statistics.median(theirs)
                row = [method, str(d), kind, f"{n} / {n2}", f"{a:.1f}", f"{b:.1f}", f"{a / b:.2f}"]
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
