"""Optimizer overhead per evaluation of CMA-ES implementations on a nearly free batched sphere.

Every library runs whole generations of ``f(X) = sum(X**2, axis=1)`` in float64 on one thread
(about ``--evals`` evaluations; runs of slow libraries are cut to about ``--seconds``), and the
CPU time of the whole run (set-up included; the process's CPU time, so other load on a shared
machine weighs less than on wall time) is divided by the number of evaluations; the table
shows medians over repeats, in microseconds per evaluation, and ratios to pycma and to the
fastest library of the same row.
Measured: optarena's ``cmaes`` through ``minimize`` (what users get: Oracle, History, budget)
and its bare ask/tell loop, pycma's ask/tell loop, CyberAgent ``cmaes``, evotorch's CMAES and
nevergrad's ParametrizedCMA; libraries that are not installed are skipped with a note.

Population size 0 means each library's default (``4 + floor(3 ln d)``) with its default
options: optarena's ``cmaes`` then runs as users get it (IPOP restarts, default stopping
tests), the others run their plain ask/tell loop. ``--defaults`` measures that setting at
d = 2, 5, 10, 20, 100, 530 and 1,000 (the rows of the issue-15 and issue-17 targets); runs at
large d are cut to about ``--seconds`` but never below 50 generations, so they include several
of the lazy decompositions of C.

Run: ``.venv/bin/python benchmarks/cmaes_overhead.py [--evals 20000] [--repeats 5] [--quick]``
(``--dims`` and ``--popsizes`` pick the rows, ``--libraries`` the columns; ``--defaults`` the
default-options table.)
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import optarena as oa  # noqa: E402
from optarena.methods import RunContext  # noqa: E402
from optarena.methods.population.cmaes import CMAES  # noqa: E402

Runner = Callable[[int, int, int, int], int]  # (d, popsize, generations, seed) -> evaluations
SIGMA0 = 1.0
DEFAULT_DIMS = [2, 5, 10, 20, 100, 530, 1000]
MIN_GENERATIONS = 50  # a cut run still spans several lazy decompositions of C


def default_popsize(d: int) -> int:
    """The default population size of every library here (Hansen 2016, eq. 48)."""
    return 4 + int(3 * np.log(d))


def pop_of(d: int, lam: int) -> int:
    """The population a run uses: ``lam``, or the default when ``lam`` is 0."""
    return lam or default_popsize(d)


def sphere_np(X: np.ndarray) -> np.ndarray:
    """The nearly free objective, numpy rows."""
    return np.einsum("ij,ij->i", X, X)


def sphere_torch(X: torch.Tensor) -> torch.Tensor:
    """The nearly free objective, torch rows."""
    return (X * X).sum(dim=1)


def x0_of(d: int) -> np.ndarray:
    """The common start point."""
    return np.full(d, 3.0)


def _options(lam: int) -> dict:
    """optarena's options: a fixed population without stopping tests, or the defaults."""
    return {"popsize": lam, "tolx": 0.0, "tolfun": 0.0} if lam else {}


def run_optarena(d: int, lam: int, gens: int, seed: int) -> int:
    """optarena's cmaes through minimize (Oracle, History and budget included)."""
    obj = oa.Objective(sphere_torch, batched=sphere_torch)
    res = oa.minimize(
        obj,
        torch.from_numpy(x0_of(d)),
        "cmaes",
        budget=gens * pop_of(d, lam),
        seed=seed,
        sigma0=SIGMA0,
        **_options(lam),
    )
    return res.nfev


def run_optarena_bare(d: int, lam: int, gens: int, seed: int) -> int:
    """optarena's cmaes ask/tell alone, without the Oracle (the method's own cost)."""
    method = CMAES(sigma0=SIGMA0, **_options(lam))
    x0 = torch.from_numpy(x0_of(d))
    ctx = RunContext(x0=x0, lower=None, upper=None, constraints=(), seed=seed)
    state = method.init(x0.clone(), ctx)
    n = 0
    with torch.no_grad():
        for _ in range(gens):
            X = method.ask(state, ctx)
            state = method.tell(state, X, sphere_torch(X), ctx)
            n += X.shape[0]
            if method.converged(state):
                break
    return n


def run_pycma(d: int, lam: int, gens: int, seed: int) -> int:
    """pycma's CMAEvolutionStrategy ask/tell loop (numpy)."""
    import cma

    opts = {"seed": seed + 1, "verbose": -9, **({"popsize": lam} if lam else {})}
    es = cma.CMAEvolutionStrategy(x0_of(d), SIGMA0, opts)
    for _ in range(gens):
        X = es.ask()
        es.tell(X, sphere_np(np.asarray(X)).tolist())
    return gens * pop_of(d, lam)


def run_cyberagent(d: int, lam: int, gens: int, seed: int) -> int:
    """CyberAgent cmaes.CMA: one ask() per candidate, one tell() per generation (numpy)."""
    from cmaes import CMA

    opt = CMA(mean=x0_of(d), sigma=SIGMA0, population_size=lam or None, seed=seed)
    lam = opt.population_size
    for _ in range(gens):
        xs = [opt.ask() for _ in range(lam)]
        f = sphere_np(np.asarray(xs))
        opt.tell(list(zip(xs, f.tolist(), strict=True)))
    return gens * lam


def run_evotorch(d: int, lam: int, gens: int, seed: int) -> int:
    """evotorch's CMAES (torch, float64, vectorized problem), one step() per generation."""
    from evotorch import Problem
    from evotorch.algorithms import CMAES as EvoCMAES

    problem = Problem(
        "min",
        sphere_torch,
        solution_length=d,
        initial_bounds=(-1.0, 1.0),
        vectorized=True,
        dtype=torch.float64,
        seed=seed,
    )
    searcher = EvoCMAES(
        problem, stdev_init=SIGMA0, popsize=pop_of(d, lam), center_init=torch.from_numpy(x0_of(d))
    )
    for _ in range(gens):
        searcher.step()
    return gens * pop_of(d, lam)


def run_nevergrad(d: int, lam: int, gens: int, seed: int) -> int:
    """nevergrad's ParametrizedCMA: one ask()/tell() per candidate (uses pycma inside)."""
    import nevergrad as ng

    lam = pop_of(d, lam)
    param = ng.p.Array(init=x0_of(d))
    param.random_state = np.random.RandomState(seed)
    opt = ng.families.ParametrizedCMA(popsize=lam, scale=SIGMA0)(
        parametrization=param, budget=gens * lam, num_workers=lam
    )
    for _ in range(gens):
        cands = [opt.ask() for _ in range(lam)]
        f = sphere_np(np.stack([c.value for c in cands]))
        for c, v in zip(cands, f.tolist(), strict=True):
            opt.tell(c, v)
    return gens * lam


LIBRARIES: list[tuple[str, str | None, Runner]] = [
    ("optarena cmaes (minimize)", None, run_optarena),
    ("optarena cmaes (ask/tell only)", None, run_optarena_bare),
    ("pycma", "cma", run_pycma),
    ("CyberAgent cmaes", "cmaes", run_cyberagent),
    ("evotorch CMAES", "evotorch", run_evotorch),
    ("nevergrad ParametrizedCMA", "nevergrad", run_nevergrad),
]


def measure(
    runs: dict[str, Runner], d: int, lam: int, gens: int, repeats: int, seconds: float
) -> dict[str, float]:
    """Median microseconds per evaluation of each library over ``repeats`` runs, after a
    warm-up run; the libraries alternate within each repeat, so a change of the machine's
    load weighs on all of them alike.

    Runs of slow libraries are shortened to about ``seconds`` each (at least
    :data:`MIN_GENERATIONS`): the cost per evaluation of a steady run does not depend on its
    length.
    """
    lengths = {}
    for name, run in runs.items():
        warm = max(2, min(gens // 10, MIN_GENERATIONS // 5))
        t0 = time.process_time()
        run(d, lam, warm, 0)
        per_gen = (time.process_time() - t0) / warm
        lengths[name] = max(min(gens, MIN_GENERATIONS), min(gens, int(seconds / per_gen)))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, run in runs.items():
            t0 = time.process_time()
            n = run(d, lam, lengths[name], r + 1)
            times[name].append((time.process_time() - t0) / n * 1e6)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main(argv: list[str] | None = None) -> None:
    """Measure every installed library on every (d, popsize) and print a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evals", type=int, default=20000, help="evaluations per run (about)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per cell (median)")
    ap.add_argument("--seconds", type=float, default=2.0, help="longest run of a slow library")
    ap.add_argument("--quick", action="store_true", help="2,000 evaluations, 3 repeats")
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 100])
    ap.add_argument(
        "--popsizes", type=int, nargs="+", default=[20, 100, 1000], help="0: the default"
    )
    ap.add_argument(
        "--defaults", action="store_true", help=f"default options at d = {DEFAULT_DIMS}"
    )
    ap.add_argument(
        "--libraries",
        nargs="+",
        metavar="WORD",
        help="measure only the libraries whose name contains one of these words (e.g. "
        "optarena pycma)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.evals, args.repeats = 2000, 3
    if args.defaults:
        args.dims, args.popsizes = DEFAULT_DIMS, [0]
    libs = []
    for name, module, run in LIBRARIES:
        if args.libraries and not any(w.lower() in name.lower() for w in args.libraries):
            continue
        if module is not None and importlib.util.find_spec(module) is None:
            print(f"note: {name} skipped ({module!r} is not installed)")
            continue
        libs.append((name, run))
    warnings.filterwarnings("ignore")
    logging.disable(logging.INFO)  # evotorch logs every Problem it creates
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, python "
        f"{sys.version.split()[0]}; about {args.evals} evaluations per run, median of "
        f"{args.repeats}\n"
    )
    print("| d | popsize | library | us / evaluation | vs pycma | vs fastest |")
    print("|---|---|---|---|---|---|")
    for d in args.dims:
        for lam in args.popsizes:
            gens = max(5, round(args.evals / pop_of(d, lam)))
            cells = measure(dict(libs), d, lam, gens, args.repeats, args.seconds)
            peers = {k: v for k, v in cells.items() if "ask/tell only" not in k}
            fastest = min(peers.values())
            ref = cells.get("pycma")
            for name, us in cells.items():
                vs_ref = f"{us / ref:.2f}" if ref else "-"
                pop = lam or f"{pop_of(d, lam)} (default)"
                print(f"| {d} | {pop} | {name} | {us:.2f} | {vs_ref} | {us / fastest:.2f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
