"""Penalty and AugmentedLagrangian around a global population method (cmaes) reach the
constrained optimum of easy problems within 2,000 evaluations.

Each outer iteration runs the inner method in a box around its start; that box must not
shrink faster than the solution moves (a fixed schedule held the iterate 0.03 outside the
half-space below, every later evaluation infeasible), and a larger budget must buy more outer
iterations (with a tenth of the budget per inner run, doubling it changed nothing).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

import optarena as oa

F64 = torch.float64


def shifted(x: torch.Tensor) -> torch.Tensor:
    return ((x - 3) ** 2).sum()


def half_space(x: torch.Tensor) -> torch.Tensor:
    return 1 - x.sum()


def disk(x: torch.Tensor) -> torch.Tensor:
    return 1 - (x**2).sum()


# (constraint, dimension, f*): the minimizer is the projection of (3, ..., 3) onto the set
CASES = {
    "half_space_d3": (half_space, 3, 3 * (3 - 1 / 3) ** 2),
    "disk_d2": (disk, 2, 2 * (3 - 1 / math.sqrt(2)) ** 2),
    "disk_d3": (disk, 3, 3 * (3 - 1 / math.sqrt(3)) ** 2),
}
WRAPPERS: dict[str, Callable[[], oa.Method]] = {
    "al": lambda: oa.AugmentedLagrangian("cmaes"),
    "penalty": lambda: oa.Penalty("cmaes"),
}


def _run(wrapper: str, case: str, seed: int, budget: int = 2000) -> tuple[oa.Result, float]:
    con, d, f_opt = CASES[case]
    res = oa.minimize(
        shifted,
        torch.zeros(d, dtype=F64),
        WRAPPERS[wrapper](),
        bounds=(-5, 5),
        constraints=[oa.Ineq(con)],
        budget=budget,
        seed=seed,
    )
    return res, f_opt


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_wrapped_cmaes_reaches_the_constrained_optimum(wrapper: str, case: str) -> None:
    for seed in (1, 2):  # seeds 1 and 2 were 15 % and 26 % from f* on the half-space
        res, f_opt = _run(wrapper, case, seed)
        assert res.feasible and res.nfev <= 2000
        assert res.max_violation <= 1e-8
        assert abs(res.fun - f_opt) <= 1e-3 * f_opt, (seed, res.fun, f_opt)


def test_a_larger_budget_buys_accuracy() -> None:
    """Twice the budget: more outer iterations, a larger penalty weight, a closer point."""
    small, f_opt = _run("penalty", "half_space_d3", 2, budget=1000)
    large, _ = _run("penalty", "half_space_d3", 2, budget=4000)
    assert large.fun - f_opt < 0.1 * (small.fun - f_opt)


def test_the_trust_box_follows_the_iterate() -> None:
    """The later inner runs sample around the solution, on both sides of the constraint
    (the shrinking box held them 0.03 outside it: none of the last 1,000 was feasible)."""
    con, d, _ = CASES["half_space_d3"]
    for seed in (1, 2):
        res = oa.minimize(
            shifted,
            torch.zeros(d, dtype=F64),
            oa.AugmentedLagrangian("cmaes"),
            bounds=(-5, 5),
            constraints=[oa.Ineq(con)],
            budget=2000,
            seed=seed,
            record_x=True,
        )
        late = res.history.x[-1000:]
        assert (1 - late.sum(axis=1) >= 0).mean() > 0.2
