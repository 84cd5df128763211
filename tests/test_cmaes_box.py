"""CMA-ES's mapped box (``boundary="transform"``): pycma's periodic linear-quadratic map, its
inverse, and runs that keep every evaluation in the box, deterministic and offset-invariant.

pycma (``import cma``) is the reference of the map: its ``BoxConstraintsLinQuadTransformation``
is evaluated in the same process on the same points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.methods.population._cma import box_inverse, box_transform

F64 = torch.float64
D = 6
OFFSET = 1e3
GRID = 2.0**30


def test_the_map_is_pycmas_on_a_symmetric_box() -> None:
    transformations = pytest.importorskip("cma.transformations")
    lo = torch.full((D,), -5.0, dtype=F64)
    x = torch.randn(500, D, generator=torch.Generator().manual_seed(0), dtype=F64) * 20
    ref = transformations.BoxConstraintsLinQuadTransformation([[-5.0, 5.0]] * D)
    expected = np.array([ref(row.numpy().copy()) for row in x])
    assert np.array_equal(box_transform(x, lo, -lo).numpy(), expected)


def test_the_map_is_the_identity_inside_and_lands_in_the_box_everywhere() -> None:
    lo = torch.tensor([0.0, -math.inf, 1.0, 2.0, -3.0], dtype=F64)
    hi = torch.tensor([1.0, 3.0, math.inf, 2.0, 7.0], dtype=F64)
    x = torch.randn(2000, 5, generator=torch.Generator().manual_seed(1), dtype=F64) * 50
    y = box_transform(x, lo, hi)
    assert bool(torch.isfinite(y).all())
    assert bool(((y >= lo) & (y <= hi)).all())
    inner = torch.tensor([[0.5, -100.0, 50.0, 2.0, 2.0]], dtype=F64)
    assert torch.equal(box_transform(inner, lo, hi), inner)
    # the inverse is exact up to rounding, also in the quadratic zones and at the bounds
    pts = torch.stack((lo.nan_to_num(-7.0, -7.0, -7.0), hi.nan_to_num(9.0, 9.0, 9.0)))
    pts = torch.cat((pts, torch.tensor([[0.001, 2.99, 1.02, 2.0, 6.9]], dtype=F64)))
    back = box_transform(box_inverse(pts, lo, hi), lo, hi)
    assert torch.allclose(back, pts, rtol=0, atol=1e-12)


def shifted_sphere(X: torch.Tensor) -> torch.Tensor:
    """A sphere whose minimum (0.9, ..., 0.9) is near the upper corner of [-1, 1]^D, with
    values on a grid of 2^-30, so that f + 1000 is exact in float64."""
    f = ((X - 0.9) ** 2).sum(-1)
    return torch.round(f * GRID) / GRID


def run(seed: int, offset: float = 0.0, **kw) -> tuple[oa.Result, torch.Tensor]:
    seen: list[torch.Tensor] = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        seen.append(X.detach().clone())
        return shifted_sphere(X) + offset

    obj = oa.Objective(lambda x: batched(x[None])[0], batched=batched)
    lo = torch.full((D,), -1.0, dtype=F64)
    x0 = torch.full((D,), -0.5, dtype=F64)
    res = oa.minimize(
        obj, x0, "cmaes", bounds=(lo, -lo), budget=3000, seed=seed, boundary="transform", **kw
    )
    return res, torch.cat(seen)


def test_a_mapped_run_stays_in_the_box_and_is_deterministic_and_offset_invariant() -> None:
    res, seen = run(4)
    _, seen_again = run(4)
    shifted, seen_shifted = run(4, OFFSET)
    assert res.nfev == 3000 == seen.shape[0]
    assert bool(((seen >= -1) & (seen <= 1)).all())
    assert torch.equal(seen, seen_again) and torch.equal(seen, seen_shifted)
    assert shifted.fun - OFFSET == res.fun
    assert res.fun < 1e-8


def test_the_first_population_is_centred_on_x0() -> None:
    # x0 sits in the quadratic zone of the lower side: the mean is its preimage, so the
    # samples' images spread around x0 itself, not around a point moved by the map
    lo, hi = torch.zeros(2, dtype=F64), torch.ones(2, dtype=F64)
    x0 = torch.tensor([0.01, 0.5], dtype=F64)
    seen: list[torch.Tensor] = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        seen.append(X.detach().clone())
        return (X * X).sum(-1)

    obj = oa.Objective(lambda x: batched(x[None])[0], batched=batched)
    oa.minimize(
        obj, x0, "cmaes", bounds=(lo, hi), budget=6, seed=0, sigma0=1e-6, boundary="transform"
    )
    first = torch.cat(seen)[:6]
    assert torch.allclose(first, x0.expand_as(first), rtol=0, atol=1e-5)


def test_boundary_is_validated() -> None:
    with pytest.raises(ValueError, match="boundary"):
        oa.minimize(lambda x: (x * x).sum(), torch.zeros(2), "cmaes", budget=10, boundary="reflect")
