"""How much the results store adds to the wall time of runs of a cheap problem.

Runs a small spec (sphere, d = 10, several method families, 2,000 evaluations per run) and
times, per run, the run itself (``execute``: problem, minimize, record) and the store's write
of that run (one transaction: the run row and 2,000 history rows through executemany) into a
WAL-mode SQLite file. Prints both totals and their ratio; the design target is < 5%.
Writing costs about a microsecond per evaluation, so a run whose evaluations cost less than
that (a vectorized population on a trivial function) is dominated by its write; with
``workers`` > 1 the parent writes while the workers compute.

    .venv/bin/python benchmarks/store_overhead.py [--budget 2000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from optarena.bench import MethodEntry, ProblemEntry, Spec, Store
from optarena.bench.runner import execute, torch_threads

METHODS = ("nelder_mead", "adam", "lbfgsb", "pso", "cmaes", "random_search")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    spec = Spec(
        problems=(ProblemEntry("sphere", {"dim": 10}),),
        methods=tuple(MethodEntry(m) for m in METHODS),
        seeds=args.seeds,
        budget=args.budget,
        name="store_overhead",
        deterministic_once=False,
    )
    tasks = spec.plan().tasks
    with torch_threads(1):
        execute(tasks[0])  # warm-up: first-call imports are not the store's cost
        with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "overhead.sqlite") as st:
            run_s, write_s, rows = [], [], 0
            per_method: dict[str, list[tuple[float, float]]] = {}
            for task in tasks:
                t0 = time.perf_counter()
                rec = execute(task)
                t1 = time.perf_counter()
                st.write(rec)
                t2 = time.perf_counter()
                run_s.append(t1 - t0)
                write_s.append(t2 - t1)
                rows += rec.nfev
                per_method.setdefault(task.method, []).append((t1 - t0, t2 - t1))
    total_run, total_write = sum(run_s), sum(write_s)
    print(f"{len(tasks)} runs, {rows} history rows, budget {args.budget} evaluations per run")
    print(f"runs:   {total_run:.3f} s")
    print(f"writes: {total_write:.3f} s ({1e6 * total_write / rows:.2f} us per history row)")
    print(f"store overhead: {100 * total_write / total_run:.2f}% of run time (target < 5%)")
    print("per method (medians): run time, write time, write/run")
    for m, pairs in per_method.items():
        run = statistics.median(p[0] for p in pairs)
        write = statistics.median(p[1] for p in pairs)
        ratio = statistics.median(p[1] / p[0] for p in pairs)
        print(f"  {m:14s} {1e3 * run:8.2f} ms {1e3 * write:6.2f} ms {100 * ratio:7.2f}%")


if __name__ == "__main__":
    main()
