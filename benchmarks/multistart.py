"""Wall time of MultiStart("lbfgs", starts=64) against one L-BFGS run of the same length.

Both run side by side in this process, one thread, on mlp_identity (SEEDS.md section 1);
times are medians over ``--repeats`` runs. The 64 starts advance as one batched computation
(one batched value-and-gradient call per round), so the multi-start costs rounds, not starts:
its length is the number of rounds, i.e. the evaluations of its longest start. A single
L-BFGS run (torch.optim.LBFGS with strong-Wolfe line search, the registry's ``lbfgs``) ends by
itself after about a hundred evaluations, so its time per evaluation is measured over whole
runs and scaled to that length. The batched engine with one start gives a second reference.

    python benchmarks/multistart.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import optarena as oa
from optarena import problems
from optarena.methods.composite.multistart import MultiStart

F_OPT = 0.783054161501


def timed(fn, repeats: int) -> tuple[float, oa.Result]:
    """Median wall time of ``fn()`` and its last result."""
    times, res = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    p = problems.get("mlp_identity")
    # warm-up: imports, vmap/autograd code paths and torch.optim's first step
    oa.minimize(p, method=MultiStart("lbfgs", 4), budget=200, seed=0)
    oa.minimize(p, method="lbfgs", line_search="strong_wolfe", budget=50)

    t64, multi = timed(
        lambda: oa.minimize(p, method=MultiStart("lbfgs", 64), budget=10**6, seed=0),
        args.repeats,
    )
    length = max(multi.info["start_evals"])
    t_one, single = timed(
        lambda: oa.minimize(p, method="lbfgs", line_search="strong_wolfe", budget=length),
        args.repeats,
    )
    per_eval = t_one / single.nfev
    t_lane, lane = timed(
        lambda: oa.minimize(
            p, method=MultiStart("lbfgs", 1, start_evals=length), budget=10**6, seed=0
        ),
        args.repeats,
    )
    per_round = t_lane / lane.nfev

    rel = multi.fun / F_OPT - 1
    print("mlp_identity, one thread, medians of", args.repeats, "runs")
    print(f"  MultiStart('lbfgs', starts=64): {t64:.3f} s, {multi.nfev} evaluations,")
    print(f"    {length} rounds (longest start), f = {multi.fun:.12f} (rel. error {rel:.1e}),")
    print(f"    starts ended: {multi.info['ended']}")
    print(f"  single lbfgs (strong Wolfe) from x0: {t_one:.3f} s for {single.nfev} evaluations")
    print(f"    ({per_eval * 1e3:.3f} ms each), f = {single.fun:.6g}")
    print(f"  same length ({length} evaluations): {per_eval * length:.3f} s")
    print(f"  ratio multi-start / single run of the same length: {t64 / (per_eval * length):.2f}")
    print(f"  batched engine, one start: {per_round * 1e3:.3f} ms per round; 64 starts cost")
    print(f"    {t64 / length * 1e3:.3f} ms per round, {t64 / (per_round * length):.2f}x one start")
    found = multi.fun <= F_OPT * (1 + 1e-6)
    print(f"  finds f* within 1e-6: {found}")


if __name__ == "__main__":
    main()
