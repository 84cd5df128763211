"""Guarantees of the population family, checked for every method whose family is "population".

Methods are selected by capability from the registry, never by name, so a new ask/tell method
is covered the day it registers: resume from a checkpoint, one batch per generation, the last
generation trimmed to the budget, bounds at every evaluation, seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optarena as oa
from optarena.methods import Checkpoint, get_method_class

POPULATION = [i.name for i in oa.methods() if i.family == "population"]
POP_BOUNDED = [i.name for i in oa.methods() if i.family == "population" and i.supports_bounds]
POP_STOCHASTIC = [i.name for i in oa.methods() if i.family == "population" and i.stochastic]
BOX = (-3.0, 3.0)


def shifted(X: torch.Tensor) -> torch.Tensor:
    """A multimodal function with its minimum off-centre, one value per row."""
    return ((X - 0.7) ** 2).sum(dim=1) + 0.3 * torch.sin(5 * X).sum(dim=1)


class Recorder:
    """A batched objective that records the size of every batch and refuses single calls."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def single(self, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("a population method evaluated a single point outside a batch")

    def batched(self, X: torch.Tensor) -> torch.Tensor:
        self.batches.append(int(X.shape[0]))
        return shifted(X)

    def objective(self) -> oa.Objective:
        # chunk_size larger than any generation: one call per generation
        return oa.Objective(self.single, batched=self.batched, chunk_size=100_000)


def x0() -> torch.Tensor:
    return torch.tensor([1.0, -2.0, 0.5, 2.5], dtype=torch.float64)


def kwargs_for(name: str) -> dict:
    info = get_method_class(name).info
    return {"bounds": BOX} if info.supports_bounds else {}


def run(name: str, budget: int, seed: int = 11, **kw) -> oa.Result:
    obj = oa.Objective(lambda x: shifted(x.unsqueeze(0))[0], batched=shifted)
    return oa.minimize(obj, x0(), name, budget=budget, seed=seed, **kwargs_for(name), **kw)


@pytest.mark.parametrize("name", POPULATION)
def test_resume_from_checkpoint_continues_exactly(name: str) -> None:
    saved: dict[int, tuple[Checkpoint, int]] = {}

    def keep(info: oa.IterationInfo) -> None:
        assert info.checkpoint is not None, "population callbacks must carry a checkpoint"
        if info.iteration == 3:
            saved[3] = (info.checkpoint, info.nfev)

    budget = 600
    full = run(name, budget, callback=keep)
    assert 3 in saved, f"{name} ended before its third generation ({full.stop_reason})"
    cp, done = saved[3]
    assert cp.generation == 3
    resumed = run(name, budget - done, resume=cp)
    assert resumed.nfev == full.nfev - done
    assert resumed.stop_reason == full.stop_reason
    np.testing.assert_array_equal(resumed.history.f, full.history.f[done:])
    np.testing.assert_array_equal(resumed.history.x, full.history.x[done:])
    # the resumed run's best is the full run's best among the evaluations after the checkpoint
    after = full.history.f[done:]
    best = done + int(np.argmin(np.where(np.isfinite(after), after, np.inf)))
    assert torch.equal(resumed.x, torch.tensor(full.history.x[best]))
    assert resumed.fun == full.history.f[best]


@pytest.mark.parametrize("name", POPULATION)
def test_resuming_twice_from_one_checkpoint_is_identical(name: str) -> None:
    saved = []
    run(name, 300, callback=lambda i: saved.append(i.checkpoint) if i.iteration == 2 else None)
    a = run(name, 150, resume=saved[0])
    b = run(name, 150, resume=saved[0])
    np.testing.assert_array_equal(a.history.f, b.history.f)


@pytest.mark.parametrize("name", POPULATION)
def test_each_generation_is_one_batch(name: str) -> None:
    rec = Recorder()
    seen: list[int] = []
    res = oa.minimize(
        rec.objective(),
        x0(),
        name,
        budget=500,
        seed=5,
        callback=lambda info: seen.append(info.nfev),
        **kwargs_for(name),
    )
    assert sum(rec.batches) == res.nfev
    sizes = [int(s) for s in np.diff([0, *seen])]
    last = seen[-1] if seen else 0
    if res.nfev > last:  # a generation that ended the run (budget or target) has no callback
        sizes.append(res.nfev - last)
    assert rec.batches == sizes
    assert min(rec.batches) >= 1


@pytest.mark.parametrize("name", POPULATION)
def test_last_generation_is_trimmed_to_the_budget(name: str) -> None:
    kw = kwargs_for(name)
    rec = Recorder()
    oa.minimize(rec.objective(), x0(), name, budget=400, seed=2, **kw)
    declared = {p.name for p in get_method_class(name).info.options}
    if all(n == 1 for n in rec.batches[1:]) and "popsize" in declared:
        kw["popsize"] = 4  # a sequential method (one point per generation): its batch mode
        rec = Recorder()
        oa.minimize(rec.objective(), x0(), name, budget=400, seed=2, **kw)
    sizes = rec.batches
    cut = next((i for i in range(1, len(sizes)) if sizes[i] >= 2), None)
    assert cut is not None, f"{name} never asked for a generation of two points or more"
    budget = sum(sizes[:cut]) + 1  # one evaluation into generation `cut`
    rec2 = Recorder()
    res = oa.minimize(rec2.objective(), x0(), name, budget=budget, seed=2, **kw)
    assert res.nfev == budget
    assert res.stop_reason is oa.StopReason.MAX_EVALS
    assert rec2.batches == [*sizes[:cut], 1]
    full = oa.minimize(Recorder().objective(), x0(), name, budget=400, seed=2, **kw)
    np.testing.assert_array_equal(res.history.f, full.history.f[:budget])


def far_objective(points: list[np.ndarray], target: np.ndarray) -> oa.Objective:
    """A batched objective whose optimum lies outside the box; it records every point."""
    t = torch.from_numpy(target)

    def batched(X: torch.Tensor) -> torch.Tensor:
        points.append(X.numpy().copy())
        return ((X - t) ** 2).sum(dim=1)

    return oa.Objective(lambda x: batched(x.unsqueeze(0))[0], batched=batched)


@pytest.mark.parametrize("name", POP_BOUNDED)
def test_bounds_hold_over_a_long_run_against_a_wall(name: str) -> None:
    lo = np.array([-1.0, 0.0, 2.0, -5.0])
    hi = np.array([1.0, 1e-3, 2.5, 5.0])
    points: list[np.ndarray] = []
    res = oa.minimize(
        far_objective(points, np.array([3.0, -1.0, 2.6, 50.0])),
        torch.tensor([0.0, 5e-4, 2.2, 0.0], dtype=torch.float64),
        name,
        bounds=(lo, hi),
        budget=1500,
        seed=4,
    )
    pts = np.concatenate(points)
    assert pts.shape[0] == res.nfev
    assert (pts >= lo).all() and (pts <= hi).all()


@pytest.mark.parametrize("name", POP_BOUNDED)
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_bounds_hold_at_every_evaluation(name: str, data: st.DataObject) -> None:
    d = data.draw(st.integers(1, 5), label="d")
    finite = st.floats(-100, 100, allow_nan=False, allow_subnormal=False)
    lo = np.array(data.draw(st.lists(finite, min_size=d, max_size=d), label="lower"))
    width = st.floats(1e-3, 50, allow_nan=False)
    hi = lo + np.array(data.draw(st.lists(width, min_size=d, max_size=d), label="width"))
    u = np.array(data.draw(st.lists(st.floats(0, 1), min_size=d, max_size=d), label="x0"))
    start = np.clip(lo + u * (hi - lo), lo, hi)
    target = hi + (hi - lo) * data.draw(st.floats(0.5, 10), label="beyond")
    if data.draw(st.booleans(), label="below"):
        target = lo - (target - hi)
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed")
    points: list[np.ndarray] = []
    res = oa.minimize(
        far_objective(points, target),
        torch.from_numpy(start),
        name,
        bounds=(torch.from_numpy(lo), torch.from_numpy(hi)),
        budget=data.draw(st.integers(1, 80), label="budget"),
        seed=seed,
    )
    pts = np.concatenate(points)
    assert pts.shape[0] == res.nfev
    assert (pts >= lo).all() and (pts <= hi).all()


@pytest.mark.parametrize("name", POPULATION)
def test_same_seed_same_history_different_seed_different(name: str) -> None:
    a, b = run(name, 200, seed=1), run(name, 200, seed=1)
    np.testing.assert_array_equal(a.history.f, b.history.f)
    np.testing.assert_array_equal(a.history.x, b.history.x)
    if name in POP_STOCHASTIC:
        c = run(name, 200, seed=2)
        assert not np.array_equal(a.history.x, c.history.x)
