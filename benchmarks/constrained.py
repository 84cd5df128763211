"""Evaluations to reach a feasible target, per constrained method and wrapper.

Native methods (slsqp, trust_constr, cobyla) and the Penalty / AugmentedLagrangian wrappers
around gradient-based and gradient-free inner methods, on the constrained test problems.
A run reaches the target when it has evaluated a point within 1e-6 (relative) of f* whose
violation is within the constraints' tolerance.

    python benchmarks/constrained.py [--budget 5000] [--seeds 3]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import torch

import optarena as oa
from optarena import problems as P
from optarena.methods import get_method_class

PROBLEMS = ["flower_constrained", "rosenbrock_disk", "hs07", "rosen_suzuki"]


def candidates() -> list[tuple[str, object]]:
    """(label, method) pairs: native methods, then wrappers around several inner methods."""
    out: list[tuple[str, object]] = []
    for info in oa.methods():
        if info.supports_constraints and info.name not in ("penalty", "augmented_lagrangian"):
            out.append((info.name, info.name))
    inners = [("lbfgs", {"line_search": "strong_wolfe"}), ("lbfgsb", {}), ("nelder_mead", {})]
    inners += [(n, {}) for n in ("cmaes", "pso") if _registered(n)]
    for inner, opts in inners:
        out.append((f"penalty({inner})", oa.Penalty(inner, inner_options=opts, tol=1e-7)))
        out.append((f"al({inner})", oa.AugmentedLagrangian(inner, inner_options=opts, tol=1e-7)))
    return out


def _registered(name: str) -> bool:
    try:
        get_method_class(name)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=int, default=5000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# constrained problems, budget {args.budget}, {time.strftime('%Y-%m-%d')}\n")
    for name in PROBLEMS:
        p = P.get(name, dtype=torch.float64) if name == "flower_constrained" else P.get(name)
        assert p.f_opt is not None
        target = p.f_opt + 1e-6 * (1 + abs(p.f_opt))
        print(f"## {name} (f* = {p.f_opt:.12g})\n")
        print(
            "| method | evals to target (median) | reached | final f - f* (median) "
            "| max violation (median) |"
        )
        print("|---|---|---|---|---|")
        for label, method in candidates():
            results = []
            for seed in range(args.seeds):
                try:
                    results.append(
                        oa.minimize(
                            p, method=method, budget=args.budget, seed=seed, bounds=p.bounds
                        )
                    )
                except (ValueError, oa.ObjectiveError) as e:
                    results = []
                    print(f"| {label} | error: {e} | | | |")
                    break
            if not results:
                continue
            hits = [r.history.evals_to_reach(target) for r in results if r.feasible]
            reached = [h for h in hits if h is not None]
            med = statistics.median(reached) if reached else math.nan
            gap = statistics.median(r.fun - p.f_opt for r in results)
            viol = statistics.median(r.max_violation for r in results)
            print(
                f"| {label} | {'-' if math.isnan(med) else int(med)} | "
                f"{len(reached)}/{len(results)} | {gap:.2e} | {viol:.1e} |"
            )
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
