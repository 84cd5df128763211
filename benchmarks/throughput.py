"""Batched evaluation throughput against the tutorial's one-candidate-at-a-time loop.

The tutorial evaluated each candidate by writing a numpy vector into the model's weights
through ``.data``, running the forward pass and calling ``.item()``. optarena evaluates a whole
population per call (the problem's batched function, or ``torch.func.vmap`` over
``functional_call`` in cache-sized chunks). Both are timed side by side in one run, one
thread, median of repeats; the table reports evaluations per second and the speed-up.

    python benchmarks/throughput.py [--repeats 5]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

import optarena as oa
from optarena.problems.seeds import mlp_identity_data


def tutorial_loop(model: nn.Module, inputs: torch.Tensor, target: torch.Tensor) -> Callable:
    """The tutorial's evaluation: set weights from a numpy vector via .data, forward, .item()."""
    params = list(model.parameters())

    def evaluate(X: np.ndarray) -> np.ndarray:
        out = np.empty(len(X))
        for k, x in enumerate(X):
            start = 0
            for p in params:
                n = p.numel()
                p.data = torch.from_numpy(x[start : start + n]).reshape(p.shape).to(p.dtype)
                start += n
            with torch.no_grad():
                out[k] = nn.functional.mse_loss(model(inputs), target).item()
        return out

    return evaluate


def best_time(fn: Callable, arg: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def case(
    name: str,
    model: nn.Module,
    inputs: torch.Tensor,
    target: torch.Tensor,
    pops: list[int],
    repeats: int,
    declared: oa.Objective | None = None,
) -> None:
    obj = oa.Objective.from_module(model, nn.functional.mse_loss, args=(inputs,), target=target)
    x0 = obj.default_x0
    assert x0 is not None
    loop = tutorial_loop(model, inputs, target)
    print(f"\n### {name} ({x0.numel()} parameters)\n")
    head = "| population | loop evals/s | vmap evals/s | vmap speed-up |"
    sep = "|---|---|---|---|"
    if declared is not None:
        head += " batched evals/s | batched speed-up |"
        sep += "---|---|"
    print(head)
    print(sep)
    g = torch.Generator().manual_seed(0)
    for n in pops:
        X = x0 + 0.1 * torch.randn(n, x0.numel(), generator=g, dtype=x0.dtype)
        Xn = X.numpy()
        reps = max(1, min(repeats, 20000 // n))
        t_loop = best_time(loop, Xn, reps)
        t_vmap = best_time(obj.evaluate_batch, X, reps)
        np.testing.assert_allclose(obj.evaluate_batch(X[:5]), loop(Xn[:5]), rtol=1e-5)
        row = f"| {n} | {n / t_loop:,.0f} | {n / t_vmap:,.0f} | {t_loop / t_vmap:.1f}x |"
        if declared is not None:
            t_b = best_time(declared.evaluate_batch, X, reps)
            row += f" {n / t_b:,.0f} | {t_loop / t_b:.1f}x |"
        print(row)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(
        f"# evaluation throughput, torch {torch.__version__}, one thread, "
        f"{time.strftime('%Y-%m-%d')}"
    )
    inputs, target = mlp_identity_data(42)
    tiny = nn.Sequential(nn.Linear(2, 2, bias=False), nn.ReLU(), nn.Linear(2, 2)).double()
    problem = oa.problems.get("mlp_identity")
    case(
        "mlp_identity",
        tiny,
        inputs,
        target,
        [10, 100, 1000, 10000],
        args.repeats,
        declared=problem.objective(),
    )
    g = torch.Generator().manual_seed(1)
    xs = torch.randn(256, 32, generator=g)
    ys = torch.sin(xs.sum(dim=1, keepdim=True))
    mlp = nn.Sequential(nn.Linear(32, 30), nn.Tanh(), nn.Linear(30, 1))
    case("32-30-1 MLP, batch 256", mlp, xs, ys, [10, 100, 1000, 10000], args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
