"""What the scale tests of the linear-memory methods share: the batched test functions, the
peak memory of a fresh process at d = 10^6, and the host reads of ask/tell per generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import torch


def sphere(X: torch.Tensor) -> torch.Tensor:
    return (X * X).sum(dim=1)


def ellipsoid(X: torch.Tensor) -> torch.Tensor:
    w = 1e2 ** (torch.arange(X.shape[1], dtype=torch.float64) / (X.shape[1] - 1))
    return (w.to(X.dtype) * X * X).sum(dim=1)


_PEAK = textwrap.dedent(
    """
    import json, resource, sys, torch, optarena as oa
    torch.set_num_threads(1)
    def sphere(X):
        return (X * X).sum(dim=1)
    x0 = torch.ones(10**6, dtype=torch.float32)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    r = oa.minimize(oa.Objective(lambda x: (x * x).sum(), batched=sphere), x0, sys.argv[1],
                    budget=256, seed=0, popsize=256, restarts="none", memory=sys.argv[2])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"base": base, "peak": peak, "nfev": r.nfev}))
    """
)


def peak_run(name: str, cap: int, timeout: float) -> dict[str, Any]:
    """One generation of ``name`` at d = 10^6, popsize 256 under ``memory=cap`` in a fresh
    process: its RSS before the run (``base``), its peak RSS and nfev."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [sys.executable, "-c", _PEAK, name, str(cap)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


#: The Tensor methods that read a value on the host (on a GPU, each waits for the device).
READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "cpu", "numpy")


def reads_per_generation(
    meth: Any, state: Any, ctx: Any, monkeypatch: pytest.MonkeyPatch, generations: int = 6
) -> tuple[list[int], Any]:
    """Host reads of each of ``generations`` ask/tell steps on the sphere (counted by wrappers
    around the real methods), and the state after them."""
    counts = {"n": 0}
    for attr in READS:
        real = getattr(torch.Tensor, attr)

        def counted(self: torch.Tensor, *a: object, _real: object = real, **k: object) -> object:
            counts["n"] += 1
            return _real(self, *a, **k)  # type: ignore[operator]

        monkeypatch.setattr(torch.Tensor, attr, counted)
    per_generation = []
    with torch.no_grad():
        for _ in range(generations):
            before = counts["n"]
            X = meth.ask(state, ctx)
            state = meth.tell(state, X, sphere(X), ctx)
            per_generation.append(counts["n"] - before)
    monkeypatch.undo()
    return per_generation, state
