"""Batched evaluation throughput against the tutorial's one-candidate-at-a-time loop.

The tutorial evaluated each candidate by writing a numpy vector into the model's weights
through ``.data``, running the forward pass and calling ``.item()``. optarena evaluates a whole
population per call: ``torch.func.vmap`` over ``functional_call`` in cache-sized chunks,
``Objective.from_module``'s direct path for feed-forward networks (one GEMM per layer for all
candidates), or the problem's declared batched function. Both are timed side by side in one run, one
thread: each repeat samples every variant in turn (enough calls for 2,000 loop or 20,000
batched evaluations), and the table reports median evaluations per second and the median of
the per-repeat speed-ups over the loop.

    python benchmarks/throughput.py [--repeats 7]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import platform
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


def sample(fn: Callable, arg: object, evals: int, n: int) -> float:
    """Seconds per call of ``fn(arg)`` (n rows), timed over enough calls for ``evals`` rows."""
    calls = max(1, evals // n)
    t = time.perf_counter()
    for _ in range(calls):
        fn(arg)
    return (time.perf_counter() - t) / calls


def side_by_side(fns: dict[str, tuple[Callable, object, int]], n: int, repeats: int) -> dict:
    """Per-call time of each function, sampled in turn within each repeat; returns the median
    time of each and the median of its per-repeat ratio to the first (the loop)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, (fn, arg, evals) in fns.items():
            times[k].append(sample(fn, arg, evals, n))
    base = times[next(iter(fns))]
    return {
        k: (statistics.median(ts), statistics.median(b / t for b, t in zip(base, ts, strict=True)))
        for k, ts in times.items()
    }


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
    generic = oa.Objective(obj.fn)  # the same function, vmap over functional_call
    x0 = obj.default_x0
    assert x0 is not None
    loop = tutorial_loop(model, inputs, target)
    print(f"\n### {name} ({x0.numel()} parameters)\n")
    head = "| population | loop evals/s | vmap (speed-up) | from_module (speed-up) |"
    sep = "|---|---|---|---|"
    if declared is not None:
        head += " declared batched (speed-up) |"
        sep += "---|"
    print(head)
    print(sep)
    g = torch.Generator().manual_seed(0)
    for n in pops:
        X = x0 + 0.1 * torch.randn(n, x0.numel(), generator=g, dtype=x0.dtype)
        Xn = X.numpy()
        fns = {
            "loop": (loop, Xn, 2_000),
            "vmap": (generic.evaluate_batch, X, 20_000),
            "module": (obj.evaluate_batch, X, 20_000),
        }
        if declared is not None:
            fns["declared"] = (declared.evaluate_batch, X, 20_000)
        for k, (fn, arg, _) in fns.items():
            np.testing.assert_allclose(fn(arg[:5]), loop(Xn[:5]), rtol=1e-5, err_msg=k)
        res = side_by_side(fns, n, repeats)
        row = f"| {n} | {n / res['loop'][0]:,.0f} |"
        for k in list(fns)[1:]:
            t, ratio = res[k]
            row += f" {n / t:,.0f} ({ratio:.1f}x) |"
        print(row)


def cpu_description() -> str:
    """The CPU model and torch's vector kernels: the loop's speed, and so the ratios, depend on
    both (AVX-512 Xeons run the one-network loop faster than AVX2 machines)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    kernels = torch.backends.cpu.get_cpu_capability()
    return f"{model}, {os.cpu_count()} logical cores, torch CPU capability {kernels}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"# evaluation throughput, torch {torch.__version__}, one thread, "
        f"{time.strftime('%Y-%m-%d')}\n# CPU: {cpu_description()}\n"
        f"# load average at the start (1, 5, 15 min): {load}; the ratios are measured side "
        "by side, the evaluations per second are not comparable across loads"
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
