"""A checkpoint resumes only the run it was made under (dimension, dtype, bounds, seed,
options); anything else is refused before any evaluation, saying what differs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optarena as oa


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum()


def checkpoint(name: str, d: int = 3, **kw) -> oa.methods.Checkpoint:
    saved = []
    oa.minimize(
        sphere,
        torch.ones(d, dtype=torch.float64),
        name,
        budget=200,
        seed=0,
        callback=lambda info: saved.append(info.checkpoint),
        **kw,
    )
    return saved[0]


@pytest.mark.parametrize("name", ["pso", "cmaes", "random_search"])
def test_another_box_is_refused(name: str) -> None:
    cp = checkpoint(name, bounds=(-2, 2))
    with pytest.raises(ValueError, match="bounds"):
        oa.minimize(
            sphere,
            torch.ones(3, dtype=torch.float64),
            name,
            budget=100,
            seed=0,
            bounds=(0.5, 1.5),
            resume=cp,
        )


@pytest.mark.parametrize("name", ["pso", "cmaes", "adam", "lbfgs"])
def test_another_seed_is_refused(name: str) -> None:
    box = {"bounds": (-2, 2)} if name == "pso" else {}
    cp = checkpoint(name, **box)
    with pytest.raises(ValueError, match=r"seed 0 \(checkpoint\) vs 1"):
        oa.minimize(
            sphere, torch.ones(3, dtype=torch.float64), name, budget=100, seed=1, resume=cp, **box
        )


@pytest.mark.parametrize("name", ["pso", "gd"])
def test_another_dimension_is_refused_clearly(name: str) -> None:
    box = {"bounds": (-2, 2)} if name == "pso" else {}
    cp = checkpoint(name, **box)
    with pytest.raises(ValueError, match=r"dimension 3 \(checkpoint\) vs 4"):
        oa.minimize(
            sphere, torch.ones(4, dtype=torch.float64), name, budget=100, seed=0, resume=cp, **box
        )


def test_another_dtype_and_other_options_are_refused() -> None:
    cp = checkpoint("adam", lr=0.1)
    with pytest.raises(ValueError, match="dtype 'float64' \\(checkpoint\\) vs 'float32'"):
        oa.minimize(sphere, torch.ones(3), "adam", budget=100, seed=0, resume=cp, lr=0.1)
    with pytest.raises(ValueError, match=r"option lr=0.1 \(checkpoint\) vs 0.2"):
        oa.minimize(
            sphere,
            torch.ones(3, dtype=torch.float64),
            "adam",
            budget=100,
            seed=0,
            resume=cp,
            lr=0.2,
        )


@pytest.mark.parametrize("name", ["pso", "cmaes"])
def test_the_same_settings_resume_exactly(name: str) -> None:
    x0 = torch.ones(3, dtype=torch.float64)
    saved = []
    full = oa.minimize(
        sphere,
        x0,
        name,
        bounds=(-2, 2),
        budget=200,
        seed=0,
        callback=lambda info: saved.append((info.nfev, info.checkpoint)),
    )
    done, cp = saved[1]
    resumed = oa.minimize(sphere, x0, name, bounds=(-2, 2), budget=200 - done, seed=0, resume=cp)
    np.testing.assert_array_equal(resumed.history.f, full.history.f[done:])
