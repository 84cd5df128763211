"""No success at a wall: methods that stop against NaN/inf values, or search a box they
cannot sample, say so instead of reporting success (scipy and population methods)."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.budget import StopReason

F64 = torch.float64
OWN = [
    "slsqp",
    "lbfgsb",
    "bfgs",
    "trust_constr",
    "nelder_mead",
    "powell",
    "cobyla",
    "dual_annealing",
    "differential_evolution",
    "pso",
    "cmaes",
    "random_search",
]


def block(x: torch.Tensor) -> torch.Tensor:
    """0.25 + |x - (1, 0)|^2, NaN on the block 0.3 < x0 < 0.6, |x1| < 0.5 in front of it."""
    if 0.3 < float(x[0]) < 0.6 and abs(float(x[1])) < 0.5:
        return torch.tensor(math.nan, dtype=x.dtype)
    return 0.25 + (x[0] - 1) ** 2 + x[1] ** 2


def ring(x: torch.Tensor) -> torch.Tensor:
    """0.25 + |x - (1, 0)|^2 inside a thin annulus of inf values around its minimum."""
    if 0.5 < math.hypot(float(x[0]) - 1, float(x[1])) < 0.55:
        return torch.tensor(math.inf, dtype=x.dtype)
    return 0.25 + (x[0] - 1) ** 2 + x[1] ** 2


def only_x0(x: torch.Tensor) -> torch.Tensor:
    """Finite at (0, 0) only: every other evaluation is inf."""
    if float(x.abs().max()) == 0.0:
        return (x**2).sum() + 1.0
    return torch.tensor(math.inf, dtype=x.dtype)


def tail_finite(res: oa.Result, n: int) -> int:
    """How many of the last ``n`` evaluations were not finite."""
    f = res.history.f[-n:]
    return int((~np.isfinite(f)).sum())


@pytest.mark.parametrize("method", ["nelder_mead", "cobyla"])
@pytest.mark.parametrize("x0", [(0.0, 0.0), (0.2, 0.3)])
def test_collapse_at_a_nan_wall_is_not_success(method: str, x0: tuple[float, float]) -> None:
    # the simplex / trust region ends pressed against the NaN block at f ~ 0.74 (0.25 is
    # behind it); scipy calls that converged and the result said success=True
    res = oa.minimize(block, torch.tensor(x0, dtype=F64), method, budget=3000)
    if res.fun < 0.25 + 1e-6:  # got around the block: then a plain success is right
        assert res.success
        return
    assert not res.success
    assert res.stop_reason is StopReason.NON_FINITE
    assert "wall of NaN/inf values" in res.message
    f = res.history.f
    assert res.fun == np.nanmin(np.where(np.isfinite(f), f, np.nan))  # best finite kept


def test_cobyla_restart_from_the_best_point_gets_past_a_thin_wall() -> None:
    # from (-2, -1) COBYLA's first run collapses on the ring's outer edge (0.5525); a
    # restart from there with a smaller trust region crosses the ring to the minimum
    res = oa.minimize(ring, torch.tensor([-2.0, -1.0], dtype=F64), "cobyla", budget=3000)
    assert res.fun == pytest.approx(0.25, abs=1e-8)
    assert res.success and res.stop_reason is StopReason.CONVERGED


def test_a_far_nan_region_met_on_the_way_is_no_wall() -> None:
    # Powell's line search steps once into the block while converging at (1, 0), far from it:
    # the run reached the minimum and says so
    res = oa.minimize(block, torch.zeros(2, dtype=F64), "powell", budget=3000)
    assert (~np.isfinite(res.history.f)).any()
    assert res.fun == pytest.approx(0.25, abs=1e-10)
    assert res.success and res.stop_reason is StopReason.CONVERGED


def test_a_finite_run_converges_as_before() -> None:
    f = lambda x: 0.25 + (x[0] - 1) ** 2 + x[1] ** 2  # noqa: E731
    for method in ("nelder_mead", "cobyla", "powell"):
        res = oa.minimize(f, torch.tensor([0.0, 0.0], dtype=F64), method, budget=3000)
        assert res.success and res.stop_reason is StopReason.CONVERGED
        assert "wall" not in res.message


@pytest.mark.parametrize("method", ["nelder_mead", "powell", "cobyla"])
def test_stall_on_nothing_but_inf_is_not_success(method: str) -> None:
    # every evaluation but x0 is inf: the stall rule ("no improvement in the last 200
    # evaluations") used to end this as converged
    res = oa.minimize(only_x0, torch.zeros(2, dtype=F64), method, budget=5000)
    assert not res.success
    assert res.fun == 1.0
    assert res.stop_reason in (StopReason.NON_FINITE, StopReason.METHOD_FAILED)


SAMPLERS = ["pso", "random_search", "differential_evolution", "dual_annealing"]


@pytest.mark.parametrize("method", SAMPLERS)
@pytest.mark.parametrize("bounds", [(-1e308, 1e308), (-1.7e308, 1.7e308), (-math.inf, 1.0)])
def test_a_box_whose_width_overflows_is_refused_before_any_evaluation(method, bounds) -> None:
    calls = []

    def f(x: torch.Tensor) -> torch.Tensor:
        calls.append(x.clone())
        return (x**2).sum()

    with pytest.raises(ValueError, match="finite"):
        oa.minimize(f, torch.tensor([0.5, 0.5], dtype=F64), method, bounds=bounds, budget=300)
    assert calls == []


@pytest.mark.parametrize("restarts", ["none", "ipop", "bipop"])
def test_cmaes_in_a_box_whose_width_overflows_samples_finite_points(restarts: str) -> None:
    # the step size falls back to 0.5 there; restarts used to start at lower + u * inf
    res = oa.minimize(
        lambda x: ((x - 0.5) ** 2).sum(),
        torch.tensor([1.0, 2.0], dtype=F64),
        "cmaes",
        bounds=(-1e308, 1e308),
        budget=1500,
        seed=0,
        restarts=restarts,
        tolfun=1e-3,
    )
    assert np.isfinite(res.history.x).all()
    assert np.isfinite(res.history.f).all()
    assert res.fun < 1e-3


def test_trust_constr_with_huge_bounds_ends() -> None:
    # bounds of +-1e300 made scipy's interior point overflow and loop without evaluating
    # (no budget could stop it); run in a child process so a regression cannot hang the suite
    code = (
        "import torch, optarena as oa, warnings; warnings.simplefilter('ignore');"
        "r = oa.minimize(lambda x: ((x - 0.5) ** 2).sum(), torch.tensor([1.0, 2.0],"
        " dtype=torch.float64), 'trust_constr', bounds=(-1e300, 1e300), budget=300);"
        "print(r.fun, r.success)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    fun, success = out.stdout.split()
    assert float(fun) < 1e-12 and success == "True"


# -- the sweep: no method of these families claims success at a wall -----------------------
FAULTS = {
    "block": (block, (0.0, 0.0)),
    "ring": (ring, (-2.0, -1.0)),
    "only_x0": (only_x0, (0.0, 0.0)),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
@pytest.mark.parametrize("method", OWN)
def test_no_success_on_a_wall_or_worse_than_seen(method: str, fault: str) -> None:
    fn, x0 = FAULTS[fault]
    kw = {"bounds": (-3.0, 3.0)} if method != "bfgs" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = oa.minimize(fn, torch.tensor(x0, dtype=F64), method, budget=2500, seed=1, **kw)
    f = res.history.f
    finite = f[np.isfinite(f)]
    if not finite.size:  # (cmaes does not evaluate x0 here: nothing finite was seen)
        assert not res.success and res.stop_reason is StopReason.NO_FINITE_VALUE
        return
    assert res.fun == finite.min()  # the best finite value seen, never NaN
    if res.stop_reason is StopReason.CONVERGED:
        window = max(10, 2 * 2 + 2)
        assert tail_finite(res, window) == 0, res.message
        assert res.success
