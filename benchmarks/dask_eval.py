"""Populations of an expensive objective evaluated on Dask workers against one process.

A pso run whose objective sleeps a fixed time per point (standing in for a simulation or a
training run) is timed without an executor and on a LocalCluster (127.0.0.1, N worker
processes, one thread each), side by side in one run; histories must be identical. Also the
per-generation overhead with a free objective.

    python benchmarks/dask_eval.py [--workers 2] [--cost 0.05] [--budget 200]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import optarena as oa


def slow_sphere(cost: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def f(x: torch.Tensor) -> torch.Tensor:
        time.sleep(cost)
        return (x**2).sum()

    return f


def timed(fn: Callable[..., oa.Result], *args: Any, **kw: Any) -> tuple[float, oa.Result]:
    t = time.perf_counter()
    res = fn(*args, **kw)
    return time.perf_counter() - t, res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cost", type=float, default=0.05, help="seconds per evaluation")
    ap.add_argument("--budget", type=int, default=200)
    args = ap.parse_args(argv)
    from distributed import Client, LocalCluster

    torch.set_num_threads(1)
    x0 = np.full(5, 0.5)
    kw = {"bounds": (-1, 1), "budget": args.budget, "seed": 0, "popsize": 20}
    obj = oa.Objective(slow_sphere(args.cost), vectorize=False)
    free = oa.Objective(lambda x: (x**2).sum(), vectorize=False)
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        t_serial, r_serial = timed(oa.minimize, obj, x0, "pso", **kw)
        t_dask, r_dask = timed(oa.minimize, obj, x0, "pso", executor=client, **kw)
        same = np.array_equal(r_serial.history.f, r_dask.history.f)
        gens = args.budget // 20
        t_free, _ = timed(oa.minimize, free, x0, "pso", **kw)
        t_free_dask, _ = timed(oa.minimize, free, x0, "pso", executor=client, **kw)
    print(
        f"# Dask evaluation, {time.strftime('%Y-%m-%d')}, pso popsize 20, {args.budget} "
        f"evaluations, {args.workers} workers\n"
    )
    print("| objective | one process (s) | Dask (s) | speed-up | identical history |")
    print("|---|---|---|---|---|")
    print(
        f"| sleeps {args.cost * 1000:.0f} ms | {t_serial:.2f} | {t_dask:.2f} | "
        f"{t_serial / t_dask:.2f}x | {same} |"
    )
    print(
        f"| free (overhead per generation) | {t_free / gens * 1000:.2f} ms | "
        f"{t_free_dask / gens * 1000:.2f} ms | | |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
