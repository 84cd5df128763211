"""Optimizer overhead of particle swarms per objective evaluation, on a nearly free sphere.

Side by side in one process, one thread, medians over repeats, for d in (10, 100) and swarm
sizes (20, 100, 1000):

- ``optarena``: ``optarena.minimize(..., "pso")`` on a batched objective (Oracle, History with
  the evaluated points when d <= 64, as users run it);
- ``optarena nox``: the same with ``record_x=False`` (History without points);
- ``ask/tell``: optarena's PSO ``ask``/``tell`` driven by a bare loop (no Oracle, no History),
  which splits the time between the method and the run machinery;
- ``floor``: a minimal vectorized PSO loop in torch written below, the least a swarm costs
  (it clips to the box, the cheapest wall);
- ``pyswarms``: ``pyswarms.single.GlobalBestPSO`` (when installed), with the same wall;
- ``nevergrad``: nevergrad's ``ConfPSO`` through ask/tell (when installed; fewer evaluations,
  its cost per evaluation does not depend on the run length).

Prints a markdown table of CPU microseconds per evaluation and the ratios optarena/floor and
optarena/pyswarms. Every swarm uses the constriction coefficients and a velocity limit of one
box width. ``--boundary`` picks the wall of optarena and pyswarms: ``reflect`` (optarena's
default) or ``clip`` (the floor's, for an exact like-for-like ratio).

Usage: ``python benchmarks/pso_overhead.py [--repeats 7] [--gens 100] [--boundary clip]``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib.util  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import optarena as oa  # noqa: E402
from optarena.methods import RunContext, get_method_class  # noqa: E402

torch.set_num_threads(1)

W, C1, C2 = 0.7298, 1.49618, 1.49618
LO, HI = -5.0, 5.0
DIMS = (10, 100)
POPS = (20, 100, 1000)
NEVERGRAD_EVALS = 2000


def sphere_torch(X: torch.Tensor) -> torch.Tensor:
    """Batched sphere: one row per point."""
    return (X * X).sum(dim=1)


def sphere_numpy(X: np.ndarray) -> np.ndarray:
    """Batched sphere on numpy rows (pyswarms' calling convention)."""
    return (X * X).sum(axis=1)


def run_optarena(
    d: int, n: int, gens: int, seed: int, boundary: str = "reflect", record_x: bool | None = None
) -> int:
    """One optarena run; returns the evaluations done."""
    obj = oa.Objective(lambda x: (x * x).sum(), batched=sphere_torch, name="sphere")
    x0 = torch.full((d,), 1.0, dtype=torch.float64)
    res = oa.minimize(
        obj,
        x0,
        "pso",
        bounds=(LO, HI),
        budget=n * gens,
        seed=seed,
        record_x=record_x,
        popsize=n,
        boundary=boundary,
    )
    return res.nfev


def run_ask_tell(d: int, n: int, gens: int, seed: int, boundary: str = "reflect") -> int:
    """optarena's PSO alone: ask, evaluate, tell, converged, with no Oracle around it."""
    method = get_method_class("pso")(popsize=n, boundary=boundary)
    x0 = torch.full((d,), 1.0, dtype=torch.float64)
    lower = torch.full((d,), LO, dtype=torch.float64)
    upper = torch.full((d,), HI, dtype=torch.float64)
    ctx = RunContext(x0=x0, lower=lower, upper=upper, constraints=(), seed=seed)
    state = method.init(x0, ctx)
    for g in range(gens):
        X = method.ask(state, ctx)
        state = method.tell(state, X, sphere_torch(X), ctx)
        if method.converged(state):
            return n * (g + 1)
    return n * gens


def run_floor(d: int, n: int, gens: int, seed: int) -> int:
    """A minimal global-best PSO in torch: the same update, clipped to the box, nothing else."""
    g = torch.Generator().manual_seed(seed)
    lo = torch.full((d,), LO, dtype=torch.float64)
    hi = torch.full((d,), HI, dtype=torch.float64)
    vmax = hi - lo
    x = lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=torch.float64)
    v = torch.zeros_like(x)
    fx = sphere_torch(x)
    p, pf = x.clone(), fx.clone()
    best = p[torch.argmin(pf)]
    for _ in range(gens - 1):
        r = torch.rand(2, n, d, generator=g, dtype=torch.float64)
        v = W * v + C1 * r[0] * (p - x) + C2 * r[1] * (best - x)
        v = torch.clamp(v, -vmax, vmax)
        x = torch.clamp(x + v, lo, hi)
        fx = sphere_torch(x)
        better = fx < pf
        p[better] = x[better]
        pf[better] = fx[better]
        best = p[torch.argmin(pf)]
    return n * gens


def run_pyswarms(d: int, n: int, gens: int, seed: int, boundary: str = "reflect") -> int:
    """pyswarms' GlobalBestPSO with the same coefficients, box and generation count."""
    from pyswarms.single import GlobalBestPSO

    np.random.seed(seed)  # pyswarms draws from numpy's global generator
    lo, hi = np.full(d, LO), np.full(d, HI)
    opt = GlobalBestPSO(
        n_particles=n,
        dimensions=d,
        options={"c1": C1, "c2": C2, "w": W},
        bounds=(lo, hi),
        bh_strategy="reflective" if boundary == "reflect" else "nearest",
        velocity_clamp=(-(HI - LO), HI - LO),
    )
    opt.optimize(sphere_numpy, iters=gens, verbose=False)
    return n * gens


def run_nevergrad(d: int, n: int, gens: int, seed: int) -> int:
    """nevergrad's ConfPSO through ask/tell, one candidate at a time, as its API works."""
    import nevergrad as ng

    evals = max(n, NEVERGRAD_EVALS // n * n)
    param = ng.p.Array(shape=(d,)).set_bounds(LO, HI)
    param.random_state = np.random.RandomState(seed)
    opt = ng.families.ConfPSO(popsize=n)(parametrization=param, budget=evals, num_workers=n)
    for _ in range(evals // n):
        cands = [opt.ask() for _ in range(n)]
        vals = sphere_numpy(np.stack([c.value for c in cands]))
        for c, f in zip(cands, vals, strict=True):
            opt.tell(c, float(f))
    return evals


def available(module: str) -> bool:
    """True when ``module`` can be imported."""
    return importlib.util.find_spec(module) is not None


def measure(fn: Callable[[], int]) -> float:
    """CPU microseconds per evaluation of one call of ``fn``.

    CPU time of this process, not wall time: on a shared machine, time spent waiting for a
    core is not the optimizer's overhead. Everything runs on one thread, so the two agree on
    an idle machine.
    """
    t = time.process_time()
    evals = fn()
    return (time.process_time() - t) / evals * 1e6


def main() -> None:
    """Measure every configuration side by side and print the markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="runs per cell (median reported)")
    ap.add_argument("--gens", type=int, default=100, help="generations per run")
    ap.add_argument("--boundary", choices=("reflect", "clip"), default="reflect")
    args = ap.parse_args()
    logging.getLogger("pyswarms").setLevel(logging.WARNING)
    wall = args.boundary
    impls: dict[str, Callable[[int, int, int, int], int]] = {
        "optarena": functools.partial(run_optarena, boundary=wall),
        "optarena nox": functools.partial(run_optarena, boundary=wall, record_x=False),
        "ask/tell": functools.partial(run_ask_tell, boundary=wall),
        "floor": run_floor,
    }
    if available("pyswarms"):
        impls["pyswarms"] = functools.partial(run_pyswarms, boundary=wall)
    if available("nevergrad"):
        impls["nevergrad"] = run_nevergrad
    names = list(impls)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread, {args.gens} generations, "
        f"median of {args.repeats} runs, boundary={args.boundary}; CPU microseconds per "
        "evaluation\n"
    )
    head = ["d", "pop", *names, "optarena/floor"]
    if "pyswarms" in impls:
        head.append("optarena/pyswarms")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for d in DIMS:
        for n in POPS:
            for name in names:  # warm-up: imports, first-call dispatch
                impls[name](d, n, 2, 0)
            samples: dict[str, list[float]] = {k: [] for k in names}
            for rep in range(args.repeats):
                for name in names:
                    call = functools.partial(impls[name], d, n, args.gens, rep)
                    samples[name].append(measure(call))
            med = {k: statistics.median(v) for k, v in samples.items()}
            row = [str(d), str(n), *(f"{med[k]:.3g}" for k in names)]
            row.append(f"{med['optarena'] / med['floor']:.2f}")
            if "pyswarms" in med:
                row.append(f"{med['optarena'] / med['pyswarms']:.2f}")
            print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
