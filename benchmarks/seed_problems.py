"""Evaluations to reach the target and final value, per method, on every SEEDS.md problem.

Every registered method that applies runs from the problem's own start point at one equal
evaluation budget (global methods get the problem's bounds); stochastic methods run several
seeds and report the median. Output: a markdown table per problem, for BENCHMARKS.md.

    python benchmarks/seed_problems.py [--budget 2000] [--seeds 3] [--problems a,b]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch

import optarena as oa
from optarena import problems as P

SEED_PROBLEMS = [
    "mlp_identity",
    "abs_square",
    "wavy_bowl",
    "rosenbrock",
    "flower",
    "flower_constrained",
]


def target_of(p: P.Problem) -> float | None:
    """Reached when within 1e-6 (relative to 1 + |f*|) of the known optimum."""
    return None if p.f_opt is None else p.f_opt + 1e-6 * (1 + abs(p.f_opt))


def applicable(info: oa.MethodInfo, p: P.Problem) -> bool:
    if info.needs_grad and not p.differentiable:
        return False
    if p.constraints and not info.supports_constraints:
        return False
    return not (info.requires_bounds and p.bounds is None)


def run(p: P.Problem, info: oa.MethodInfo, budget: int, seed: int) -> oa.Result | str:
    kw: dict = {}
    if info.requires_bounds or (info.is_global and info.supports_bounds):
        kw["bounds"] = p.bounds
    try:
        return oa.minimize(p, method=info.name, budget=budget, seed=seed, **kw)
    except (ValueError, TypeError, oa.ObjectiveError) as e:
        return f"error: {e}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--problems", default=",".join(SEED_PROBLEMS))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(
        f"# seed problems, budget {args.budget} evaluations, torch {torch.__version__}, "
        f"{time.strftime('%Y-%m-%d')}\n"
    )
    for name in args.problems.split(","):
        p = P.get(name)
        tgt = target_of(p)
        print(f"## {name} (f* = {p.f_opt}, target {tgt})\n")
        print("| method | final best (median) | evals to target (median) | reached | seconds |")
        print("|---|---|---|---|---|")
        for info in oa.methods():
            if not applicable(info, p):
                continue
            seeds = range(args.seeds) if info.stochastic else range(1)
            results = [run(p, info, args.budget, s) for s in seeds]
            ok = [r for r in results if isinstance(r, oa.Result)]
            if not ok:
                print(f"| {info.name} | {results[0]} | | | |")
                continue
            finals = [r.fun for r in ok]
            hits = [r.history.evals_to_reach(tgt) for r in ok] if tgt is not None else []
            reached = [h for h in hits if h is not None]
            med_hit = statistics.median(reached) if reached else math.nan
            secs = statistics.median(r.elapsed for r in ok)
            print(
                f"| {info.name} | {statistics.median(finals):.10g} | "
                f"{'-' if math.isnan(med_hit) else int(med_hit)} | "
                f"{len(reached)}/{len(ok)} | {secs:.3f} |"
            )
        print()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
