"""Linear-memory methods at scale: overhead and peak memory per evaluation, quality at d = 1,000.

Overhead (default): every optarena method registered with ``linear_memory=True`` beside the
peers installed here (EvoTorch: SNES, PGPE, CEM, CMAES(separable=True); pycma with
``CMA_diagonal=True``; evosax when importable) on the nearly free batched sphere, one thread,
population 100 (``--popsize``), float32 points for the torch libraries (``--dtype``; pycma is
float64 numpy). Each cell (library x dimension) runs in a fresh subprocess: the CPU time of the
generations after the first (set-up and first generation excluded) over their evaluations is
the overhead in microseconds per evaluation, and ``ru_maxrss`` of that process the peak memory
(torch's allocations are invisible to tracemalloc). A cell runs at least 2 timed generations
and stops after about ``--seconds`` of CPU; ``--repeats`` runs each cell again (alternating
the order) and the table shows medians. optarena's methods run through ``minimize`` (what
users get: Oracle, History, budget), with restarts off so no restart lands in the timing.

Quality (``--quality``): d = 1,000, sphere, axis-parallel ellipsoid (condition 1e6) and
Rastrigin, x0 ~ U[-1, 1] (one x0 per seed, the same for every library), initial step size
``--sigma0``, budget 100 d evaluations, median best value over ``--seeds`` seeds. optarena's
methods with their defaults (IPOP restarts), pycma's sep-CMA with its defaults (one run),
EvoTorch with its default population where it has one, else 100.

Memory cap (``--memory 1GB``): d = 10^6 (``--dims``), popsize 256 (``--popsize``), each method
of ``--only`` (default: every linear-memory method: sep_cmaes, lm_maes, snes, pgpe, openai_es)
without a cap and with ``minimize(memory=...)``, each cell in a fresh subprocess, alternating;
the table gives the peak RSS of the process above its RSS before the run (torch imported, x0
made), the CPU time per evaluation of each and their ratio (median of ``--repeats``).

Evaluation dtype (``--precision``): a population of ``--popsize`` MLPs (64-256-256-10, tanh,
85,002 parameters, batch of 256 inputs, cross-entropy) evaluated through the direct Sequential
path in float32 and with ``eval_dtype`` bfloat16 and float16, alternating in one process; the
median wall time per evaluation of each (one thread) and the largest difference of the values.

Run: ``.venv/bin/python benchmarks/scale.py [--dims 1000,10000,100000] [--seconds 3]``,
``--dims 1000,10000,100000,1000000`` for the full table (about 10 GB of free memory and
several minutes), ``--quality [--seeds 5]``. Markdown tables go to stdout.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import optarena as oa  # noqa: E402

Fn = Callable[[torch.Tensor], torch.Tensor]
EVOTORCH = ("SNES", "PGPE", "CEM", "CMAES_sep")
#: The algorithm each peer implements (the table groups the same algorithm together).
ALGORITHM = {
    "sep_cmaes": "separable CMA-ES",
    "lm_maes": "LM-MA-ES",
    "evotorch.CMAES_sep": "separable CMA-ES",
    "pycma.diagonal": "separable CMA-ES",
    "evotorch.SNES": "SNES",
    "evotorch.PGPE": "PGPE",
    "evotorch.CEM": "CEM",
    "snes": "SNES",
    "pgpe": "PGPE",
    "openai_es": "OpenAI-ES",
}


# -- problems ---------------------------------------------------------------------------------
def sphere(X: torch.Tensor) -> torch.Tensor:
    """sum x_i^2, rows of a batch."""
    return (X * X).sum(dim=1)


def ellipsoid(X: torch.Tensor) -> torch.Tensor:
    """sum 1e6^(i / (d - 1)) x_i^2: axis-parallel, condition 1e6."""
    d = X.shape[1]
    w = 1e6 ** (torch.arange(d, dtype=torch.float64) / (d - 1))
    return (w.to(X.dtype) * X * X).sum(dim=1)


def rastrigin(X: torch.Tensor) -> torch.Tensor:
    """10 d + sum (x_i^2 - 10 cos(2 pi x_i))."""
    return (10 + X * X - 10 * torch.cos(2 * math.pi * X)).sum(dim=1)


PROBLEMS: dict[str, Fn] = {"sphere": sphere, "ellipsoid": ellipsoid, "rastrigin": rastrigin}


def linear_methods() -> list[str]:
    """optarena's methods whose memory and time per generation are linear in d."""
    return [i.name for i in oa.methods() if i.linear_memory]


def peers() -> tuple[list[str], list[str]]:
    """(installed peer runners, notes about the missing ones)."""
    names, notes = [], []
    if importlib.util.find_spec("evotorch"):
        names += [f"evotorch.{a}" for a in EVOTORCH]
    else:
        notes.append("EvoTorch is not installed: skipped")
    if importlib.util.find_spec("cma"):
        names.append("pycma.diagonal")
    else:
        notes.append("pycma is not installed: skipped")
    if not importlib.util.find_spec("evosax"):
        notes.append(
            "evosax is not installed here: its Sep_CMA_ES, LM_MA_ES, SNES and OpenES skipped"
        )
    return names, notes


# -- one library, run until a budget or a CPU-time limit ----------------------------------------
def run(
    runner: str,
    fn: Fn,
    x0: np.ndarray,
    *,
    popsize: int | None,
    sigma0: float,
    budget: int,
    seed: int,
    dtype: torch.dtype,
    seconds: float | None = None,
    memory: str | None = None,
) -> dict[str, float]:
    """Run ``runner`` on ``fn`` from ``x0``; returns best value, evaluations, and the CPU seconds
    and evaluations of the generations after the first (the overhead's measure)."""
    marks: list[tuple[float, int]] = []  # (process time, evaluations) after each generation

    def tick(nfev: int) -> bool:
        marks.append((time.process_time(), nfev))
        return seconds is not None and len(marks) >= 3 and marks[-1][0] - marks[0][0] > seconds

    best = math.inf
    if runner in {i.name for i in oa.methods()}:
        opts = {"sigma0": sigma0} if popsize is None else {"sigma0": sigma0, "popsize": popsize}
        if seconds is not None:
            opts["restarts"] = "none"

        def cb(info: oa.IterationInfo) -> bool:
            return tick(info.nfev)

        cb.wants_checkpoint = False  # type: ignore[attr-defined]
        obj = oa.Objective(lambda x: fn(x[None])[0], batched=fn)
        res = oa.minimize(
            obj,
            torch.as_tensor(x0, dtype=dtype),
            runner,
            budget=budget,
            seed=seed,
            callback=cb,
            memory=memory,
            **opts,
        )
        best = float(res.fun)
    elif runner == "pycma.diagonal":
        import cma

        o = {"CMA_diagonal": True, "seed": seed + 1, "verbose": -9, "maxfevals": budget}
        if popsize is not None:
            o["popsize"] = popsize
        es = cma.CMAEvolutionStrategy(x0, sigma0, o)
        n = 0
        while not es.stop():
            X = es.ask()
            f = fn(torch.from_numpy(np.asarray(X))).numpy()
            es.tell(X, f.tolist())
            n += len(X)
            best = min(best, float(f.min()))
            if tick(n) or n >= budget:
                break
    else:
        from evotorch import Problem
        from evotorch import algorithms as A

        logging.getLogger("evotorch").setLevel(logging.ERROR)
        prob = Problem(
            "min", fn, solution_length=x0.size, initial_bounds=(-1.0, 1.0), vectorized=True,
            dtype=dtype, seed=seed,
        )  # fmt: skip
        center = torch.as_tensor(x0, dtype=dtype)
        algo = runner.split(".", 1)[1]
        lam = popsize if popsize is not None else 100
        if algo == "SNES":
            s = A.SNES(prob, stdev_init=sigma0, popsize=popsize, center_init=center)
        elif algo == "PGPE":  # ClipUp with its usual settings: center lr = max_speed / 2
            s = A.PGPE(
                prob, popsize=lam, center_learning_rate=0.075, stdev_learning_rate=0.1,
                stdev_init=sigma0, optimizer_config={"max_speed": 0.15}, center_init=center,
            )  # fmt: skip
        elif algo == "CEM":
            s = A.CEM(
                prob, popsize=lam, parenthood_ratio=0.5, stdev_init=sigma0, center_init=center
            )
        else:
            s = A.CMAES(
                prob, stdev_init=sigma0, popsize=popsize, center_init=center, separable=True
            )
        n = 0
        while n < budget:
            s.step()
            n += len(s.population)
            best = min(best, float(s.status["best_eval"]))
            if tick(n):
                break
    timed = (marks[-1][0] - marks[0][0], marks[-1][1] - marks[0][1]) if len(marks) > 1 else (0, 0)
    return {"best": best, "cpu": timed[0], "evals": timed[1]}


# -- overhead cells, each in a fresh process -----------------------------------------------------
def cell(
    runner: str, d: int, popsize: int, seconds: float, dtype: str, memory: str | None = None
) -> dict[str, float]:
    """One overhead measurement (in this process): microseconds per evaluation, peak RSS
    (and its growth over the RSS before the run, ``grown_mb``)."""
    x0 = np.full(d, 1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    out = run(
        runner, sphere, x0, popsize=popsize, sigma0=0.5, budget=10**12, seed=0,
        dtype=getattr(torch, dtype), seconds=seconds, memory=memory,
    )  # fmt: skip
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    us = 1e6 * out["cpu"] / max(1, out["evals"])
    return {"us": us, "rss_mb": rss_mb, "grown_mb": rss_mb - before, "best": out["best"]}


def selected(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(runners to measure: optarena's linear methods, then the peers; notes on skipped ones)."""
    names, notes = peers()
    runners = linear_methods() + names
    if args.only:
        keep = set(args.only.split(","))
        runners = [r for r in runners if r in keep]
    return runners, notes


def overhead(args: argparse.Namespace) -> None:
    runners, notes = selected(args)
    dims = [int(x) for x in args.dims.split(",")]
    us: dict[tuple[str, int], list[float]] = {}
    rss: dict[tuple[str, int], list[float]] = {}
    for rep in range(args.repeats):
        order = runners if rep % 2 == 0 else runners[::-1]
        for d in dims:
            for r in order:
                cmd = [sys.executable, __file__, "--cell", r, str(d), str(args.popsize),
                       str(args.seconds), args.dtype]  # fmt: skip
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    print(f"<!-- {r} d={d} failed: {p.stderr.strip()[-300:]} -->", file=sys.stderr)
                    continue
                res = json.loads(p.stdout.strip().splitlines()[-1])
                us.setdefault((r, d), []).append(res["us"])
                rss.setdefault((r, d), []).append(res["rss_mb"])
                print(f"  {r:22s} d={d:>8d}  {res['us']:10.1f} us/eval  {res['rss_mb']:8.0f} MB",
                      file=sys.stderr)  # fmt: skip
    print(f"Overhead per evaluation, us of CPU (one thread), sphere, popsize {args.popsize}, "
          f"{args.dtype} (pycma float64); median of {args.repeats}; peak RSS in MB of the "
          f"cell's process (torch import included)\n")  # fmt: skip
    print("| method | algorithm | " + " | ".join(f"d = {d:,}" for d in dims) + " | "
          + " | ".join(f"MB at {d:,}" for d in dims) + " |")  # fmt: skip
    print("|---|---|" + "---:|" * (2 * len(dims)))
    for r in sorted(runners, key=lambda r: (ALGORITHM.get(r, r), r)):
        cells = [f"{statistics.median(us[(r, d)]):,.1f}" if (r, d) in us else "-" for d in dims]
        mem = [f"{statistics.median(rss[(r, d)]):,.0f}" if (r, d) in rss else "-" for d in dims]
        print(f"| {r} | {ALGORITHM.get(r, '')} | " + " | ".join(cells + mem) + " |")
    for note in notes:
        print(f"\n{note}")


def capped(args: argparse.Namespace) -> None:
    """Peak memory and time per evaluation without and with ``minimize(memory=...)``."""
    names = args.only.split(",") if args.only else linear_methods()
    d = int(args.dims.split(",")[-1])
    cells: dict[tuple[str, str], list[dict[str, float]]] = {}
    for rep in range(args.repeats):
        for r in names:
            caps = ["none", args.memory] if rep % 2 == 0 else [args.memory, "none"]
            for cap in caps:
                cmd = [sys.executable, __file__, "--cell", r, str(d), str(args.popsize),
                       str(args.seconds), args.dtype, cap]  # fmt: skip
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode != 0:
                    print(f"<!-- {r} {cap} failed: {p.stderr.strip()[-300:]} -->", file=sys.stderr)
                    continue
                res = json.loads(p.stdout.strip().splitlines()[-1])
                cells.setdefault((r, cap), []).append(res)
                print(f"  {r:12s} memory={cap:8s} {res['us']:10.1f} us/eval  "
                      f"{res['grown_mb']:8.0f} MB grown  {res['rss_mb']:8.0f} MB peak",
                      file=sys.stderr)  # fmt: skip

    def med(r: str, cap: str, key: str) -> float:
        return statistics.median(c[key] for c in cells.get((r, cap), [{key: math.nan}]))

    print(f"d = {d:,}, popsize {args.popsize}, {args.dtype}, sphere (declared batched), one "
          f"thread; memory cap {args.memory}; median of {args.repeats}; MB = peak RSS of the "
          "cell's process above its RSS before the run (peak RSS in brackets)\n")  # fmt: skip
    print("| method | MB, no cap | MB, cap | us/eval, no cap | us/eval, cap | time ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in names:
        a, b = med(r, "none", "us"), med(r, args.memory, "us")
        print(f"| {r} | {med(r, 'none', 'grown_mb'):,.0f} ({med(r, 'none', 'rss_mb'):,.0f}) | "
              f"{med(r, args.memory, 'grown_mb'):,.0f} ({med(r, args.memory, 'rss_mb'):,.0f}) | "
              f"{a:,.0f} | {b:,.0f} | {b / a:.2f} |")  # fmt: skip


def precision(args: argparse.Namespace) -> None:
    """Time per evaluation of a network population in float32, bfloat16 and float16."""
    from optarena.core.memory import evaluation

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 256), torch.nn.Tanh(), torch.nn.Linear(256, 256), torch.nn.Tanh(),
        torch.nn.Linear(256, 10),
    )  # fmt: skip
    xs, ys = torch.randn(256, 64), torch.randint(0, 10, (256,))
    obj = oa.Objective.from_module(net, torch.nn.functional.cross_entropy, args=(xs,), target=ys)
    x0 = obj.default_x0
    assert x0 is not None
    X = x0 + 0.05 * torch.randn(args.popsize, x0.numel())
    kinds = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
    times: dict[str, list[float]] = {k: [] for k in kinds}
    values: dict[str, np.ndarray] = {}
    for rep in range(max(3, args.repeats)):
        for k in kinds if rep % 2 == 0 else list(kinds)[::-1]:
            with evaluation(dtype=kinds[k]):
                t = time.perf_counter()
                values[k], how = obj._values(X.clone())
                times[k].append((time.perf_counter() - t) / X.shape[0])
            assert how == "module", how
    print(f"{x0.numel():,}-parameter MLP, batch 256, population {args.popsize}, one thread; "
          f"median of {max(3, args.repeats)}\n")  # fmt: skip
    print("| eval_dtype | us per evaluation | ratio to float32 | largest relative difference |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times["float32"])
    for k in kinds:
        t = statistics.median(times[k])
        rel = np.max(np.abs(values[k] - values["float32"]) / np.abs(values["float32"]))
        print(f"| {k} | {1e6 * t:,.1f} | {t / base:.2f} | {rel:.1e} |")


def quality(args: argparse.Namespace) -> None:
    runners, notes = selected(args)
    d, budget = args.quality_dim, 100 * args.quality_dim
    found: dict[tuple[str, str], list[float]] = {}
    for seed in range(args.seeds):
        x0 = np.random.default_rng(1000 + seed).uniform(-1, 1, d)
        for pname, fn in PROBLEMS.items():
            for r in runners:
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = run(r, fn, x0, popsize=None, sigma0=args.sigma0, budget=budget,
                              seed=seed, dtype=torch.float64)  # fmt: skip
                found.setdefault((r, pname), []).append(out["best"])
                print(f"  seed {seed} {pname:9s} {r:22s} {out['best']:.3g} "
                      f"({time.perf_counter() - t:.1f} s)", file=sys.stderr)  # fmt: skip
    print(f"Best value after {budget:,} evaluations (100 d), d = {d:,}, x0 ~ U[-1, 1], "
          f"sigma0 = {args.sigma0}, median of {args.seeds} seeds\n")  # fmt: skip
    print("| method | algorithm | " + " | ".join(PROBLEMS) + " |")
    print("|---|---|" + "---:|" * len(PROBLEMS))
    for r in sorted(runners, key=lambda r: (ALGORITHM.get(r, r), r)):
        vals = [f"{statistics.median(found[(r, p)]):.3g}" for p in PROBLEMS]
        print(f"| {r} | {ALGORITHM.get(r, '')} | " + " | ".join(vals) + " |")
    for note in notes:
        print(f"\n{note}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dims", default="1000,10000,100000")
    ap.add_argument("--popsize", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--quality", action="store_true")
    ap.add_argument("--quality-dim", type=int, default=1000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sigma0", type=float, default=0.5)
    ap.add_argument("--only", default="", help="comma-separated runner names to keep")
    ap.add_argument("--memory", default="", help="a cap such as 1GB: peak memory and time with it")
    ap.add_argument("--precision", action="store_true", help="a network population by dtype")
    ap.add_argument("--cell", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.cell:
        r, d, lam, sec, dtype, *cap = args.cell
        mem = None if not cap or cap[0] == "none" else cap[0]
        print(json.dumps(cell(r, int(d), int(lam), float(sec), dtype, mem)))
    elif args.precision:
        precision(args)
    elif args.memory:
        if args.dims == ap.get_default("dims"):
            args.dims = "1000000"
        if args.popsize == ap.get_default("popsize"):
            args.popsize = 256
        capped(args)
    elif args.quality:
        quality(args)
    else:
        overhead(args)


if __name__ == "__main__":
    main()
