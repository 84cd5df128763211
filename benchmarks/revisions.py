"""Run-machinery overhead of this working tree against an earlier revision, side by side.

A refactor must not slow the evaluation path. This script exports ``src/`` of ``--base`` (a
git revision) into a temporary folder and times the same workloads with both trees, in
alternating subprocesses (one torch thread each), so that both see the same machine load.
Workloads use the public API only, so any revision since ``minimize`` existed can be compared:

- ``pso``, ``cmaes``, ``random_search``: population runs on a batched 10-d sphere (the method and
  the Oracle per evaluation, the objective nearly free);
- ``lbfgs``, ``adam``, ``lbfgsb``: gradient runs on the 10-d Rosenbrock (per-evaluation cost
  of one point at a time);
- ``multistart``: batched L-BFGS lanes on Rosenbrock;
- ``mlp_pop``: a population of mlp_identity networks (its declared batched function);
- ``module_pop``: a population of 32-30-1 tanh MLPs on 256 samples through
  ``Objective.from_module`` (the direct Sequential path).

Prints microseconds per evaluation (median over repeats) for each tree and the ratio
new/base; ratios within about 0.9-1.1 are noise on these shared machines.

Usage: ``python benchmarks/revisions.py --base ec34d77 [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WORKER = r"""
import json, sys, time
import torch
torch.set_num_threads(1)
import optarena as oa

def sphere(x):
    return (x * x).sum()

def sphere_b(X):
    return (X * X).sum(dim=1)

def rosen(x):
    return (100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2).sum()

D = 10
x0 = torch.full((D,), 0.5, dtype=torch.float64)
sph = oa.Objective(sphere, batched=sphere_b)
ros = oa.Objective(rosen)
g = torch.Generator().manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(32, 30), torch.nn.Tanh(), torch.nn.Linear(30, 1))
inp, tgt = torch.randn(256, 32, generator=g), torch.randn(256, 1, generator=g)
MOD = oa.Objective.from_module(net, torch.nn.functional.mse_loss, args=(inp,), target=tgt)

def run(name):
    if name in ("pso", "cmaes", "random_search"):
        return oa.minimize(sph, x0, name, bounds=(-5, 5), budget=20000, seed=1)
    if name == "lbfgs":
        return oa.minimize(ros, x0, "lbfgs", budget=3000, seed=1, line_search="strong_wolfe")
    if name == "adam":
        return oa.minimize(ros, x0, "adam", budget=3000, seed=1, lr=0.01)
    if name == "lbfgsb":
        return oa.minimize(ros, x0, "lbfgsb", bounds=(-5, 5), budget=3000, seed=1)
    if name == "multistart":
        return oa.minimize(ros, x0, "multistart", bounds=(-5, 5), budget=5000, seed=1)
    if name == "module_pop":
        return oa.minimize(MOD, None, "pso", bounds=(-1, 1), budget=3000, seed=1, popsize=100)
    if name == "mlp_pop":
        p = oa.problems.get("mlp_identity")
        return oa.minimize(p, method="pso", budget=10000, seed=1, popsize=100)
    raise ValueError(name)

out = {}
for name in sys.argv[1].split(","):
    run(name)  # warm-up
    t0 = time.process_time()
    res = run(name)
    out[name] = (time.process_time() - t0) / max(res.nfev, 1) * 1e6
print(json.dumps(out))
"""

WORKLOADS = (
    "pso",
    "cmaes",
    "random_search",
    "lbfgs",
    "adam",
    "lbfgsb",
    "multistart",
    "mlp_pop",
    "module_pop",
)


def export(rev: str, into: Path) -> Path:
    """``src/`` of revision ``rev`` unpacked under ``into``; returns that src folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "src"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def measure(src: Path, names: str) -> dict[str, float]:
    """One subprocess timing every workload with the package found in ``src``."""
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, names], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="HEAD", help="git revision to compare with")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", default=",".join(WORKLOADS))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_src = export(args.base, Path(tmp))
        new_src = ROOT / "src"
        samples: dict[str, dict[str, list[float]]] = {"base": {}, "new": {}}
        for r in range(args.repeats):
            order = (("base", base_src), ("new", new_src))
            for tag, src in order if r % 2 == 0 else order[::-1]:
                for k, v in measure(src, args.only).items():
                    samples[tag].setdefault(k, []).append(v)
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", args.base],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"| workload | base {rev} (us/eval) | this tree (us/eval) | new / base |")
    print("|---|---|---|---|")
    for k in args.only.split(","):
        b = statistics.median(samples["base"][k])
        n = statistics.median(samples["new"][k])
        ratios = [x / y for x, y in zip(samples["new"][k], samples["base"][k], strict=True)]
        print(f"| {k} | {b:.1f} | {n:.1f} | {statistics.median(ratios):.2f} |")


if __name__ == "__main__":
    main()
