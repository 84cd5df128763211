"""Global methods spend the budget they are given, and a constant added to f changes nothing.

Selected from the registry by flags (``is_global``) and, for the same-points test, by the
class attribute ``rank_based`` that methods steered by comparisons of values declare.

The objective is Rastrigin in [-5.12, 5.12]^5 with its values rounded to multiples of 2^-30:
then f + 1000 is exact in float64 (and so are differences of values), so any difference
between the two runs comes from a method's own rule, not from rounding of the sum.
"""

from __future__ import annotations

import math

import pytest
import torch

import optarena as oa
from optarena.methods import get_method_class, method_infos

D = 5
BUDGET = 5000
OFFSET = 1e3
GRID = 2.0**30
GLOBAL = sorted(i.name for i in method_infos() if i.is_global)


def rastrigin(X: torch.Tensor) -> torch.Tensor:
    """Rastrigin, values on a grid of 2^-30 (exactly shiftable by 1000 in float64), with
    Rastrigin's own gradient (the rounding is exact: q - f and f + (q - f) lose no bit)."""
    f = 10 * X.shape[-1] + (X * X - 10 * torch.cos(2 * math.pi * X)).sum(-1)
    q = torch.round(f.detach() * GRID) / GRID
    return f + (q - f.detach())


def run(name: str, offset: float) -> tuple[oa.Result, list[torch.Tensor]]:
    """``name`` with default options on Rastrigin + ``offset``; the result and every point
    the objective received, in order."""
    seen: list[torch.Tensor] = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        seen.append(X.detach().clone())
        return rastrigin(X) + offset

    def single(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone().reshape(1, -1))
        return rastrigin(x[None])[0] + offset

    obj = oa.Objective(single, batched=batched)
    lo = torch.full((D,), -5.12, dtype=torch.float64)
    x0 = torch.full((D,), 3.3, dtype=torch.float64)
    res = oa.minimize(obj, x0, name, bounds=(lo, -lo), budget=BUDGET, seed=3)
    return res, seen


def test_the_selection_is_not_empty() -> None:
    rank = [n for n in GLOBAL if getattr(get_method_class(n), "rank_based", False)]
    assert len(GLOBAL) >= 5 and len(rank) >= 3, (GLOBAL, rank)


@pytest.mark.parametrize("name", GLOBAL)
def test_global_methods_spend_the_budget_whatever_the_offset(name: str) -> None:
    res, seen = run(name, 0.0)
    shifted, seen_shifted = run(name, OFFSET)
    assert res.nfev == BUDGET, (res.stop_reason, res.message)
    assert shifted.nfev == BUDGET, (shifted.stop_reason, shifted.message)
    assert res.stop_reason is shifted.stop_reason is oa.StopReason.MAX_EVALS
    assert sum(len(x) for x in seen) == BUDGET
    if getattr(get_method_class(name), "rank_based", False):
        assert torch.equal(torch.cat(seen), torch.cat(seen_shifted))
        assert shifted.fun - OFFSET == res.fun
