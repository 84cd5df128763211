"""optarena's global methods beside the peer libraries on COCO's bbob suite, fixed budget.

The protocol (issue 15): the 24 bbob functions, instances 1-5, d = 2, 5, 10, 20, a budget of
exactly 1000 * d evaluations, x0 uniform in [-4, 4]^d (the bbob problem's own reproducible
start), the box [-5, 5]^d, every method with its default options. A run solves a target
``t`` when some evaluation within the budget has ``f - f_opt <= t``; the table gives the
fraction of (function, instance, target) triples solved for t = 1e-1, 1e-3, 1e-8.

Every method evaluates the same cocoex C function through one counting wrapper, which also
measures the CPU time spent inside it: the overhead per evaluation is (CPU time of the run
minus CPU time in the objective) / evaluations. Peers are stopped by the wrapper when the
budget is spent (they can never exceed it); optarena's methods are only watched (a method that
spent more than the budget would be reported, and only its first 1000 * d values count).

Peers: pycma IPOP-CMA-ES (``cma.fmin2``, 9 restarts, population doubling), CyberAgent
``cmaes`` with IPOP restarts (its README's scheme), scipy ``differential_evolution`` (defaults,
and tol=0 without polish) and ``dual_annealing``, nevergrad ``NGOpt`` and ``PSO``. Peers
that are not installed are skipped with a note (``pip install -e ".[bench]"``).

Run: ``.venv/bin/python benchmarks/bbob.py [--dims 2,5] [--functions 1-24] [--instances 1-5]
[--methods cmaes,pycma_ipop] [--workers 2] [--json runs.json] [--runs runs.jsonl]
[--repeats 4] [--per-function]`` (``--runs``: each run appended as it finishes, and kept on a
rerun; ``--repeats``: that many runs per problem with other seeds, for differences that one run
per instance cannot tell from luck); ``--quick`` runs d = 2 and functions 1, 8, 15, 21 only.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from multiprocessing import get_context  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

import optarena as oa  # noqa: E402
from optarena.problems import Problem  # noqa: E402

TARGETS = (1e-1, 1e-3, 1e-8)
SIGMA0 = 2.0  # peers' initial step size: a fifth of the box width, as COCO's examples use
OPTARENA = {  # label -> (method, options): optarena's global methods with default options
    "cmaes": ("cmaes", {}),
    "cmaes_ipop": ("cmaes", {"restarts": "ipop"}),
    "pso": ("pso", {}),
    "differential_evolution": ("differential_evolution", {}),
    "dual_annealing": ("dual_annealing", {}),
    "auto": ("auto", {}),
}


class BudgetSpent(Exception):
    """Raised by the wrapper when a peer asks for an evaluation past the budget."""


class Timed:
    """The cocoex function behind a counter, a best-value record and a CPU-time meter.

    ``stop``: raise :class:`BudgetSpent` instead of evaluating past the budget (peers).
    """

    def __init__(self, bare, budget: int, stop: bool) -> None:
        self.bare, self.budget, self.stop = bare, budget, stop
        self.n = 0
        self.best = np.inf  # the best value among the first `budget` evaluations
        self.seconds = 0.0

    def __call__(self, x: np.ndarray):
        x = np.ascontiguousarray(x, dtype=np.float64)
        rows = 1 if x.ndim == 1 else x.shape[0]
        if self.stop and self.n + rows > self.budget:
            raise BudgetSpent
        t0 = time.process_time()
        y = self.bare(x)
        self.seconds += time.process_time() - t0
        left = max(self.budget - self.n, 0)
        self.n += rows
        vals = np.atleast_1d(np.asarray(y, dtype=np.float64))[:left]
        if vals.size and np.nanmin(vals) < self.best:  # NaN never ranks
            self.best = float(np.nanmin(vals))
        return y

    def scalar(self, x) -> float:
        """One point, as a Python float (what scipy, pycma and nevergrad call)."""
        return float(self(np.asarray(x, dtype=np.float64).reshape(-1)))


# -- the methods: each runs f (a Timed) from x0 in the box with the budget and a seed ----------
def run_optarena(label: str) -> Callable[[Problem, Timed, int, int], str]:
    method, options = OPTARENA[label]

    def run(problem: Problem, f: Timed, budget: int, seed: int) -> str:
        problem.fn._bare = f  # the problem's function evaluates through the meter
        res = oa.minimize(
            problem, method=method, bounds=problem.bounds, budget=budget, seed=seed, **options
        )
        if res.nfev != f.n:
            return f"nfev {res.nfev} != {f.n} calls"
        return res.stop_reason.value

    return run


def run_pycma(problem: Problem, f: Timed, budget: int, seed: int) -> str:
    import cma

    opts = {
        "bounds": [-5.0, 5.0],
        "maxfevals": budget,
        "seed": seed + 1,  # pycma draws its own seed when given 0
        "verbose": -9,
        "verb_log": 0,
        "verb_disp": 0,
    }
    cma.fmin2(f.scalar, problem.x0.numpy(), SIGMA0, opts, restarts=9, incpopsize=2)
    return "stopped"


def run_cyberagent(problem: Problem, f: Timed, budget: int, seed: int) -> str:
    from cmaes import CMA

    d = problem.dim
    box = np.array([[-5.0, 5.0]] * d)
    rng = np.random.default_rng(seed)
    mean, popsize = problem.x0.numpy(), None
    while True:  # IPOP: restart from a random mean with twice the population
        es = CMA(
            mean=mean,
            sigma=SIGMA0,
            bounds=box,
            seed=int(rng.integers(2**31)),
            population_size=popsize,
        )
        while not es.should_stop():
            sols = []
            for _ in range(es.population_size):
                x = es.ask()
                sols.append((x, f.scalar(x)))
            es.tell(sols)
        popsize = 2 * es.population_size
        mean = rng.uniform(-4.0, 4.0, size=d)


def run_scipy_de(tol0: bool) -> Callable[[Problem, Timed, int, int], str]:
    def run(problem: Problem, f: Timed, budget: int, seed: int) -> str:
        from scipy.optimize import differential_evolution

        extra = {"tol": 0.0, "polish": False} if tol0 else {}
        box = [(-5.0, 5.0)] * problem.dim
        differential_evolution(f.scalar, box, x0=problem.x0.numpy(), rng=seed, **extra)
        return "stopped"

    return run


def run_scipy_da(problem: Problem, f: Timed, budget: int, seed: int) -> str:
    from scipy.optimize import dual_annealing

    box = [(-5.0, 5.0)] * problem.dim
    dual_annealing(f.scalar, box, x0=problem.x0.numpy(), maxfun=budget, rng=seed)
    return "stopped"


def run_nevergrad(name: str) -> Callable[[Problem, Timed, int, int], str]:
    """nevergrad's optimizer ``name`` (NGOpt, PSO) on the box, asked one point at a time."""

    def run(problem: Problem, f: Timed, budget: int, seed: int) -> str:
        import nevergrad as ng

        param = ng.p.Array(init=problem.x0.numpy()).set_bounds(-5.0, 5.0)
        param.random_state = np.random.RandomState(seed)
        opt = ng.optimizers.registry[name](parametrization=param, budget=budget, num_workers=1)
        for _ in range(budget):
            cand = opt.ask()
            opt.tell(cand, f.scalar(cand.value))
        return "budget"

    return run


PEERS: dict[str, tuple[str, Callable]] = {  # label -> (module it needs, runner)
    "pycma_ipop": ("cma", run_pycma),
    "cmaes_cyberagent_ipop": ("cmaes", run_cyberagent),
    "scipy_de": ("scipy", run_scipy_de(tol0=False)),
    "scipy_de_tol0": ("scipy", run_scipy_de(tol0=True)),
    "scipy_dual_annealing": ("scipy", run_scipy_da),
    "nevergrad_ngopt": ("nevergrad", run_nevergrad("NGOpt")),
    "nevergrad_pso": ("nevergrad", run_nevergrad("PSO")),
}
LABELS = list(OPTARENA) + list(PEERS)


@dataclass
class Run:
    """One run's outcome."""

    label: str
    function: int
    instance: int
    dim: int
    evals: int
    best_delta: float  # best f - f_opt within the budget
    cpu: float  # CPU seconds of the whole run
    objective_cpu: float  # CPU seconds inside the objective
    status: str
    error: str = ""
    repeat: int = 0  # which of --repeats (0: the protocol's own seed)


def one_run(label: str, function: int, instance: int, dim: int, repeat: int = 0) -> Run:
    """Run ``label`` on one bbob problem (in a worker process); ``repeat`` > 0 draws other
    seeds for the same problem."""
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    budget = 1000 * dim
    seed = 10_000 * dim + 100 * function + instance + 1_000_000 * repeat
    problem = oa.problems.get("bbob", function=function, instance=instance, dim=dim)
    problem = replace(problem, x0=problem.x0.clone())
    f = Timed(problem.fn.bare, budget, stop=label in PEERS)
    runner = PEERS[label][1] if label in PEERS else run_optarena(label)
    error = ""
    t0 = time.process_time()
    try:
        status = runner(problem, f, budget, seed)
    except BudgetSpent:
        status = "budget"
    except Exception:
        status, error = "error", traceback.format_exc()
    cpu = time.process_time() - t0
    if f.n > budget and label not in PEERS:
        status = f"over budget ({f.n} of {budget})"
    delta = f.best - problem.f_opt
    return Run(label, function, instance, dim, f.n, delta, cpu, f.seconds, status, error, repeat)


def _init_worker() -> None:
    torch.set_num_threads(1)


def parse_ints(text: str) -> list[int]:
    """``"1-5,8"`` -> [1, 2, 3, 4, 5, 8]."""
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += range(int(lo), int(hi or lo) + 1)
    return out


def available(labels: list[str]) -> tuple[list[str], list[str]]:
    """The labels whose library is installed, and notes for the others."""
    keep, notes = [], []
    for label in labels:
        module = PEERS[label][0] if label in PEERS else "optarena"
        try:
            __import__(module)
        except ImportError:
            notes.append(f"{label} skipped: {module} is not installed")
            continue
        keep.append(label)
    return keep, notes


def tables(runs: list[Run], labels: list[str], dims: list[int]) -> str:
    """Markdown: solved fraction, overhead per evaluation and budget used, by dimension."""
    head = "| method | " + " | ".join(f"d = {d}" for d in dims) + " |\n"
    rule = "|---|" + "---|" * len(dims) + "\n"
    by = {(r.label, r.dim): [] for r in runs}
    for r in runs:
        by[(r.label, r.dim)].append(r)

    def cell(label: str, d: int, what: Callable[[list[Run]], str]) -> str:
        rs = by.get((label, d))
        return what(rs) if rs else "-"

    def solved(rs: list[Run]) -> str:
        hit = sum(r.best_delta <= t for r in rs for t in TARGETS)
        return f"{hit / (len(TARGETS) * len(rs)):.3f}"

    def overhead(rs: list[Run]) -> str:
        n = sum(r.evals for r in rs)
        return f"{1e6 * sum(r.cpu - r.objective_cpu for r in rs) / max(n, 1):.1f}"

    def used(rs: list[Run]) -> str:
        return f"{sum(min(r.evals / (1000 * r.dim), 1.0) for r in rs) / len(rs):.2f}"

    out = []
    for title, what in (
        ("Solved fraction of (function, instance, target) triples", solved),
        ("CPU overhead per evaluation, microseconds", overhead),
        ("Mean fraction of the budget used", used),
    ):
        rows = [
            f"| {lab} | " + " | ".join(cell(lab, d, what) for d in dims) + " |" for lab in labels
        ]
        out.append(f"{title}:\n\n" + head + rule + "\n".join(rows) + "\n")
    return "\n".join(out)


def versions() -> str:
    """Library versions and the commit, for the record."""
    parts = []
    for dist in ("torch", "numpy", "scipy", "cma", "cmaes", "nevergrad", "coco-experiment"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
    try:
        root = Path(__file__).resolve().parents[1]
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        sha = ""
    return f"optarena {sha or '?'}, " + ", ".join(parts) + f", Python {platform.python_version()}"


def key(r: Run) -> tuple[str, int, int, int, int]:
    """What identifies a run of a table: label, function, instance, dimension, repeat."""
    return (r.label, r.function, r.instance, r.dim, r.repeat)


def kept_runs(path: str | None, wanted: set[tuple[str, int, int, int, int]]) -> list[Run]:
    """The runs of this table already in the JSON lines file ``path`` (none without one)."""
    if path is None or not Path(path).exists():
        return []
    runs = [Run(**json.loads(line)) for line in Path(path).read_text().splitlines() if line]
    return [r for r in runs if key(r) in wanted]


def per_function(runs: list[Run], labels: list[str], dims: list[int]) -> str:
    """Markdown: solved (function, instance, target, repeat) triples per function."""
    cols = [(lab, d) for d in dims for lab in labels]
    hit: dict[tuple[str, int, int], int] = {}
    for r in runs:
        k = (r.label, r.dim, r.function)
        hit[k] = hit.get(k, 0) + sum(r.best_delta <= t for t in TARGETS)
    head = "| f | " + " | ".join(f"{lab} d = {d}" for lab, d in cols) + " |\n"
    rows = [
        f"| {f} | " + " | ".join(str(hit.get((lab, d, f), 0)) for lab, d in cols) + " |"
        for f in sorted({r.function for r in runs})
    ]
    return (
        "Solved triples per function:\n\n"
        + head
        + "|---|"
        + "---|" * len(cols)
        + "\n"
        + ("\n".join(rows) + "\n")
    )


def keep(run: Run, path: str | None) -> Run:
    """Append ``run`` to the JSON lines file ``path`` at once (if any); returns it."""
    if path is not None:
        with open(path, "a") as fh:
            fh.write(json.dumps(asdict(run)) + "\n")
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="2,5", help="the full table: 2,5,10,20 (hours)")
    ap.add_argument("--functions", default="1-24")
    ap.add_argument("--instances", default="1-5")
    ap.add_argument("--methods", default=",".join(LABELS), help="labels, comma-separated")
    ap.add_argument("--workers", type=int, default=2, help="processes (1: in this process)")
    ap.add_argument("--json", help="write every run to this file")
    ap.add_argument(
        "--runs",
        help="JSON lines file: each run appended as it finishes; runs already in it are kept "
        "and not run again (a long table resumes after an interruption)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="runs per problem, each with its own seed (1: the protocol's one run); the "
        "solved fraction is then over every run",
    )
    ap.add_argument("--per-function", action="store_true", help="also solved triples per f")
    ap.add_argument("--quick", action="store_true", help="d = 2, functions 1, 8, 15, 21")
    args = ap.parse_args(argv)
    if args.quick:
        args.dims, args.functions = "2", "1,8,15,21"
    dims, funcs, insts = (parse_ints(v) for v in (args.dims, args.functions, args.instances))
    unknown = sorted(set(args.methods.split(",")) - set(LABELS))
    if unknown:
        ap.error(f"unknown method label(s) {unknown}; known: {', '.join(LABELS)}")
    labels, notes = available([m for m in LABELS if m in args.methods.split(",")])
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    jobs = [
        (m, f, i, d, k)
        for d in sorted(dims, reverse=True)
        for m in labels
        for f in funcs
        for i in insts
        for k in range(args.repeats)
    ]
    print(
        f"{len(jobs)} runs: methods {', '.join(labels)}; d = {dims}; functions {args.functions}; "
        f"instances {args.instances}; {args.repeats} run(s) each",
        file=sys.stderr,
    )
    start, runs = time.perf_counter(), kept_runs(args.runs, set(jobs))
    done = {key(r) for r in runs}
    jobs = [j for j in jobs if j not in done]
    if args.workers <= 1:
        for j in jobs:
            runs.append(keep(one_run(*j), args.runs))
    else:
        ctx = get_context("spawn")
        with ProcessPoolExecutor(args.workers, mp_context=ctx, initializer=_init_worker) as pool:
            futures = [pool.submit(one_run, *j) for j in jobs]
            for k, fut in enumerate(as_completed(futures), 1):
                runs.append(keep(fut.result(), args.runs))
                if k % 50 == 0 or k == len(jobs):
                    print(
                        f"  {k}/{len(jobs)} runs, {time.perf_counter() - start:.0f} s",
                        file=sys.stderr,
                    )
    runs.sort(key=lambda r: (LABELS.index(r.label), r.dim, r.function, r.instance, r.repeat))
    print(
        f"bbob fixed budget 1000 * d, targets {TARGETS}, {len(funcs)} functions x "
        f"{len(insts)} instances x {args.repeats} run(s); {time.strftime('%Y-%m-%d')}, "
        f"{time.perf_counter() - start:.0f} s wall on {args.workers} processes\n{versions()}\n"
    )
    print(tables(runs, labels, sorted(dims)))
    if args.per_function:
        print(per_function(runs, labels, sorted(dims)))
    for note in notes:
        print(note)
    bad = [r for r in runs if r.status == "error" or r.status.startswith(("over", "nfev"))]
    for label in dict.fromkeys(r.label for r in bad):  # a count, and the first failure in full
        mine = [r for r in bad if r.label == label]
        where = ", ".join(f"f{r.function} i{r.instance} d{r.dim}" for r in mine)
        print(
            f"\n{label}: {len(mine)} failed run(s) ({where}); they count what they reached "
            f"before failing. First: {mine[0].status}\n{mine[0].error}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
