"""An objective that changes x in place (x.clamp_(...)), as scipy allows: gradient-free
methods run it; gradient methods are told how to write it."""

from __future__ import annotations

import math

import pytest
import torch

import optarena as oa


def clamped(x: torch.Tensor) -> torch.Tensor:
    x.clamp_(-1.0, 1.0)
    return ((x - 0.5) ** 2).sum()


GRADIENT_FREE = [
    i.name
    for i in oa.methods()
    if not i.needs_grad and not i.requires_bounds and i.family in ("population", "external")
]


@pytest.mark.parametrize("name", GRADIENT_FREE)
def test_gradient_free_methods_run_it_and_count_the_refused_call(name: str) -> None:
    res = oa.minimize(clamped, torch.full((3,), 2.0, dtype=torch.float64), name, budget=60, seed=0)
    assert res.nfev == 60 or res.stop_reason is oa.StopReason.CONVERGED
    assert math.isnan(res.history.to_pandas()["f"].iloc[0])  # the call autograd refused
    assert res.fun < 3 * 0.25 + 1e-9  # a clamped point's value, never worse than x0's


@pytest.mark.parametrize("name", ["lbfgs", "adam"])
def test_gradient_methods_say_how_to_write_it(name: str) -> None:
    with pytest.raises(oa.ObjectiveError, match=r"changes x in place .*x = x\.clamp\(lo, hi\)"):
        oa.minimize(clamped, torch.full((3,), 2.0, dtype=torch.float64), name, budget=20)
