"""The NES family (snes, pgpe, openai_es) at scale: a generation under a memory cap is drawn and
evaluated in chunks and drawn again by ``tell`` (same run as without the cap), its peak memory
at d = 10^6 stays within the cap, and a generation reads the device once (pgpe: twice)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optarena as oa
from _scale_cases import ellipsoid, peak_run, reads_per_generation, sphere
from optarena.methods import RunContext, resolve_method
from optarena.methods.population._linear_blocks import block_rows

NES = ("snes", "pgpe", "openai_es")


# -- the cap at d = 10^6, lambda = 256 ------------------------------------------------------------
@pytest.mark.parametrize("name", NES)
def test_a_million_parameters_and_256_candidates_stay_within_the_cap(name: str) -> None:
    """Peak RSS of a fresh process above its RSS after importing torch and making x0: within
    the 1 GB cap (one generation's candidates alone are 1 GB of float32; without a cap the
    noise, the candidates and the objective's copy of them take over 3 GB)."""
    cap = 10**9
    out = peak_run(name, cap, timeout=600)
    assert out["nfev"] == 256
    assert out["peak"] - out["base"] <= cap, out


# -- same seed, same result with and without a cap ----------------------------------------------
@pytest.mark.parametrize("name", NES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bounds", [None, (-1.0, 2.5)])
@pytest.mark.parametrize("popsize", [24, 60])
def test_a_generation_in_chunks_gives_the_same_run(
    name: str, dtype: torch.dtype, bounds: tuple | None, popsize: int
) -> None:
    """d = 10^5: blocks of 20 rows. 24 candidates are one block (12 mirrored pairs); 60 are
    3 blocks (snes) or 2 blocks of 30 mirrored pairs; under 40 MB they are evaluated 20
    rows at a time and drawn again by tell (the mirrored half drawn again at evaluation)."""
    d = 100_000
    assert block_rows(d) == 20
    x0 = torch.full((d,), 2.0, dtype=dtype)
    runs = []
    for memory in (None, "40MB"):
        obj = oa.Objective(lambda x: ellipsoid(x[None])[0], batched=ellipsoid)
        sizes: list[int] = []

        def cb(info: oa.IterationInfo, sizes: list[int] = sizes) -> None:
            sizes.append(info.nfev)

        r = oa.minimize(
            obj, x0, name, budget=3 * popsize, seed=5, popsize=popsize, bounds=bounds,
            memory=memory, callback=cb,
        )  # fmt: skip
        runs.append((np.asarray(r.history.f), r.x, r.fun, sizes))
    (f0, x_0, fun0, gens0), (f1, x_1, fun1, gens1) = runs
    np.testing.assert_array_equal(f0, f1)
    assert torch.equal(x_0, x_1) and fun0 == fun1
    assert gens0 == gens1 == [popsize, 2 * popsize, 3 * popsize]


@pytest.mark.parametrize("name", ["pgpe", "snes"])
def test_a_capped_generation_is_evaluated_in_chunks_of_whole_blocks(name: str) -> None:
    """What the objective receives under the cap: chunks of at most 20 rows (one block; the
    objective's own chunking of a row and 3 temporaries within 20 MB cuts them to 12), the
    mirrored half of pgpe's population after its first half."""
    d, seen = 100_000, []

    def f(X: torch.Tensor) -> torch.Tensor:
        seen.append(X.shape[0])
        return sphere(X)

    obj = oa.Objective(lambda x: sphere(x[None])[0], batched=f)
    x0 = torch.ones(d, dtype=torch.float32)
    oa.minimize(obj, x0, name, budget=60, seed=0, popsize=60, memory="40MB")
    per_chunk = [12, 8, 10] * 2 if name == "pgpe" else [12, 8, 12, 8, 12, 8]
    assert seen == per_chunk


@pytest.mark.parametrize("name", NES)
@pytest.mark.parametrize("device_seed", [None, 11])
def test_a_generation_drawn_again_is_the_generation_asked(
    name: str, device_seed: int | None
) -> None:
    """What is drawn again from the saved generator state (or, for draws made on a GPU, from
    the device seed: here on the CPU) is, block for block, the noise ask drew, and its points
    are the points asked (the mirrored ones from the same blocks)."""
    d = 100_000  # blocks of 20 rows
    meth = resolve_method(name, {"popsize": 100})
    x0 = torch.ones(d, dtype=torch.float32)
    ctx = RunContext(x0=x0, lower=None, upper=None, constraints=(), seed=3, callback=None)
    state = meth.init(x0.clone(), ctx)
    state.device_seed = device_seed
    half = 50 if name != "snes" else 100
    with torch.no_grad():
        for _ in range(2):
            draw = ctx.generator.get_state()
            X = meth.ask(state, ctx)
            state.draw = draw
            again = list(meth._redrawn(state))
            assert [a for a, _ in again] == list(range(0, half, 20))
            for a, z in again:
                b = a + z.shape[0]
                assert torch.equal(z, state.noise[a:b])
                assert torch.equal(meth._points(state, z, 1), X[a:b])
                if half < 100:
                    assert torch.equal(meth._points(state, z, -1), X[half + a : half + b])
            state = meth.tell(state, X, sphere(X), ctx)


# -- host reads per generation ------------------------------------------------------------------
@pytest.mark.parametrize("name", NES)
@pytest.mark.parametrize("bounds", [False, True])
def test_ask_and_tell_read_the_device_once_per_generation(
    name: str, bounds: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU every read of a tensor's value on the host waits for the device. Per
    generation, tell reads the values and the update's statistics together (pgpe reads the
    gradient's norm with the values, then the velocity's with the statistics); the wrappers
    count the calls that would read (here on CPU)."""
    d = 400
    meth = resolve_method(name, {"popsize": 12})
    x0 = torch.ones(d, dtype=torch.float32)
    lo, hi = (torch.full((d,), -5.0), torch.full((d,), 5.0)) if bounds else (None, None)
    ctx = RunContext(x0=x0, lower=lo, upper=hi, constraints=(), seed=0, callback=None)
    state = meth.init(x0.clone(), ctx)
    per_generation, state = reads_per_generation(meth, state, ctx, monkeypatch)
    assert state.generation == 6 and state.restarts == 0
    assert max(per_generation) <= (2 if name == "pgpe" else 1), per_generation


@pytest.mark.parametrize("name", NES)
def test_draws_made_on_the_device_give_a_run_of_their_own_seeded_and_learning(name: str) -> None:
    """The device's draws (seeded per block from the run's seed, generation and row; here on
    the CPU) make a different but equally seeded run: same seed, same run; each generation's
    noise is new; it learns as well as the run drawn on the host."""
    d = 50
    meth = resolve_method(name, {"popsize": 20})
    x0 = torch.full((d,), 2.0, dtype=torch.float64)
    runs = []
    for device_seed in (1234, 1234, None):
        ctx = RunContext(x0=x0, lower=None, upper=None, constraints=(), seed=4, callback=None)
        state = meth.init(x0.clone(), ctx)
        state.device_seed = device_seed
        noises, best = [], []
        with torch.no_grad():
            for _ in range(40):
                X = meth.ask(state, ctx)
                noises.append(state.noise.clone())
                f = sphere(X)
                best.append(float(f.min()))
                state = meth.tell(state, X, f, ctx)
        runs.append((noises, best))
    (n0, b0), (n1, b1), (n_host, b_host) = runs
    assert all(torch.equal(a, b) for a, b in zip(n0, n1, strict=True)) and b0 == b1
    assert not torch.equal(n0[0], n0[1]) and not torch.equal(n0[0], n_host[0])
    assert b0[-1] < 0.5 * b0[0] and b0[-1] < 2 * b_host[-1]
