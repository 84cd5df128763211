"""Evaluation at scale: the memory cap, chunked generations, evaluation dtype, host reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import optarena as oa
from _scale_cases import ellipsoid, peak_run, reads_per_generation, sphere
from optarena.core.memory import as_eval_dtype, as_memory, evaluation
from optarena.methods import RunContext, resolve_method

LINEAR = ("sep_cmaes", "lm_maes")


# -- the cap at d = 10^6, lambda = 256 ------------------------------------------------------------
def test_a_million_parameters_and_256_candidates_stay_within_the_cap() -> None:
    """Peak RSS of a fresh process above its RSS after importing torch and making x0: within
    the 1 GB cap (one generation is 1 GB of float32 candidates; without a cap the peak is
    3.1 GB above it). lm_maes runs the same code (benchmarks/scale.py --memory measures it)."""
    name = "sep_cmaes"
    cap = 10**9
    out = peak_run(name, cap, timeout=300)
    assert out["nfev"] == 256
    assert out["peak"] - out["base"] <= cap, out


# -- same seed, same result with and without a cap ----------------------------------------------
@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bounds", [None, (-1.0, 2.5)])
def test_a_generation_in_chunks_gives_the_same_run(
    name: str, dtype: torch.dtype, bounds: tuple | None
) -> None:
    d = 100_000  # blocks of 20 rows; 24 candidates: 2 blocks, evaluated 20 and 4 at a time
    x0 = torch.full((d,), 2.0, dtype=dtype)
    runs = []
    for memory in (None, "40MB"):
        obj = oa.Objective(lambda x: ellipsoid(x[None])[0], batched=ellipsoid)
        sizes: list[int] = []

        def cb(info: oa.IterationInfo, sizes: list[int] = sizes) -> None:
            sizes.append(info.nfev)

        r = oa.minimize(
            obj, x0, name, budget=96, seed=5, popsize=24, bounds=bounds, memory=memory,
            callback=cb,
        )  # fmt: skip
        runs.append((np.asarray(r.history.f), r.x, r.fun, sizes))
    (f0, x_0, fun0, gens0), (f1, x_1, fun1, gens1) = runs
    np.testing.assert_array_equal(f0, f1)
    assert torch.equal(x_0, x_1) and fun0 == fun1
    assert gens0 == gens1 == [24, 48, 72, 96]


def test_the_chunks_of_a_capped_generation_are_what_the_objective_sees() -> None:
    d, seen = 100_000, []

    def f(X: torch.Tensor) -> torch.Tensor:
        seen.append(X.shape[0])
        return sphere(X)

    obj = oa.Objective(lambda x: sphere(x[None])[0], batched=f)
    x0 = torch.ones(d, dtype=torch.float32)
    oa.minimize(obj, x0, "sep_cmaes", budget=48, seed=0, popsize=24, memory="40MB")
    # the method: 4 buffers of 0.4 MB a row within 20 MB: 12 rows, at least one 20-row block;
    # the objective: a row and 3 temporaries of its size within 20 MB: 12 rows
    assert seen == [12, 8, 4] * 2
    seen.clear()
    oa.minimize(obj, x0, "sep_cmaes", budget=48, seed=0, popsize=24)
    assert seen == [16, 8, 16, 8]  # without a cap: the usual chunks of 16 rows


# -- the evaluation's chunks under a cap ----------------------------------------------------------
def test_declared_batched_chunks_shrink_to_the_cap() -> None:
    d, seen = 1000, []

    def f(X: torch.Tensor) -> torch.Tensor:
        seen.append(X.shape[0])
        return sphere(X)

    obj = oa.Objective(lambda x: (x * x).sum(), batched=f)
    X = torch.randn(100, d, dtype=torch.float64)
    ref = obj.evaluate_batch(X)
    assert seen == [32, 32, 32, 4]  # without a cap: about 256 KiB of inputs per call
    seen.clear()
    with evaluation(memory=2**20):  # 4 x 8 kB a row within 512 KiB: 16 rows
        np.testing.assert_array_equal(obj.evaluate_batch(X), ref)
    assert max(seen) == 16 and sum(seen) == 100


def _mlp(dtype: torch.dtype = torch.float32) -> tuple[nn.Sequential, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 64), nn.Tanh(), nn.Linear(64, 1)).to(dtype)
    xs = torch.randn(256, 8, dtype=dtype)
    return net, xs, torch.sin(xs.sum(dim=1, keepdim=True))


def test_the_direct_network_path_shrinks_its_chunks_to_the_cap() -> None:
    net, xs, ys = _mlp()
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    batch = obj._module_batched
    assert batch is not None
    rows: list[int] = []
    inner = batch.per_sample

    def per_sample(out: torch.Tensor) -> torch.Tensor:
        rows.append(out.shape[0])
        return inner(out)

    batch.per_sample = per_sample
    X = obj.default_x0 + 0.1 * torch.randn(200, obj.default_x0.numel())
    ref, how = obj._values(X.clone())
    assert how == "module" and max(rows) > 16
    rows.clear()
    per_row = batch.row_bytes(4)  # 4 * (641 + (65 + 64) * 256) bytes
    with evaluation(memory=2**20):
        got, how = obj._values(X.clone())
    assert how == "module"
    assert max(rows) == 2**19 // per_row and sum(rows) == 200
    np.testing.assert_allclose(got, ref, rtol=1e-6)


# -- evaluation in a lower precision ------------------------------------------------------------
def test_a_declared_batched_function_gets_the_evaluation_dtype() -> None:
    dtypes = set()

    def f(X: torch.Tensor) -> torch.Tensor:
        dtypes.add(X.dtype)
        return sphere(X)

    obj = oa.Objective(lambda x: (x * x).sum(), batched=f)
    x0 = torch.full((20,), 0.7, dtype=torch.float32)
    r = oa.minimize(obj, x0, "sep_cmaes", budget=60, seed=0, eval_dtype="bfloat16")
    assert dtypes == {torch.bfloat16}
    assert r.x.dtype == torch.float32  # the method's points keep x0's dtype
    # each value is f at its point rounded to bfloat16, computed in bfloat16
    X = torch.tensor(np.array(r.history.x), dtype=torch.float32)
    ref = sphere(X.to(torch.bfloat16)).double().numpy()
    np.testing.assert_array_equal(np.asarray(r.history.f), ref)


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16])
def test_a_network_is_evaluated_in_the_evaluation_dtype(low: torch.dtype) -> None:
    net, xs, ys = _mlp()
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    X = obj.default_x0 + 0.2 * torch.randn(30, obj.default_x0.numel())
    full, _ = obj._values(X.clone())
    with evaluation(dtype=low):
        got, how = obj._values(X.clone())
    assert how == "module"
    # the reference: the same network with its weights, inputs and candidates in `low`
    ref = []
    for x in X:
        o = torch.func.functional_call(
            net.to(low), obj._parameters.unflatten(x.to(low)), (xs.to(low),)
        )
        ref.append(float(nn.functional.mse_loss(o.float(), ys)))
    net.float()
    tol = 2e-2 if low == torch.bfloat16 else 2e-3
    np.testing.assert_allclose(got, ref, rtol=tol)
    assert not np.array_equal(got, full)  # the forward pass really ran in `low`
    np.testing.assert_allclose(got, full, rtol=tol)


def test_a_network_vmap_cannot_skip_runs_in_the_evaluation_dtype_too() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 1)

        def forward(self, v: torch.Tensor) -> torch.Tensor:
            return self.b(v + torch.tanh(self.a(v)))

    torch.manual_seed(0)
    net, xs = Residual(), torch.randn(64, 8)
    ys = xs.sum(dim=1, keepdim=True)
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    X = obj.default_x0 + 0.2 * torch.randn(10, obj.default_x0.numel())
    full, _ = obj._values(X.clone())
    with evaluation(dtype=torch.bfloat16):
        got, how = obj._values(X.clone())
    assert how == "vmap"
    assert not np.array_equal(got, full)
    np.testing.assert_allclose(got, full, rtol=3e-2)
    assert next(net.parameters()).dtype == torch.float32  # the module is left as it was


# -- host reads per generation ------------------------------------------------------------------
@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("on_device", [False, True])
def test_ask_and_tell_read_the_device_twice_per_generation(
    name: str, on_device: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a GPU every read of a tensor's value on the host waits for the device. Per
    generation, ask and tell read the values once (ranking, stopping tests) and the update's
    statistics once; the wrappers count the calls that would read (here on CPU)."""
    d = 400  # two-point step-size adaptation (sep_cmaes) from d = 300 on
    meth = resolve_method(name, {"popsize": 12})
    x0 = torch.ones(d, dtype=torch.float32)
    ctx = RunContext(x0=x0, lower=None, upper=None, constraints=(), seed=0, callback=None)
    state = meth.init(x0.clone(), ctx)
    if on_device:  # the draws a run on a GPU makes (seeded on the device), here on the CPU
        state.device_seed = 11
    per_generation, state = reads_per_generation(meth, state, ctx, monkeypatch)
    assert state.generation == 6 and state.restarts == 0
    assert max(per_generation) <= 2, per_generation


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("device_seed", [None, 11])
def test_a_generation_drawn_again_is_the_generation_asked(
    name: str, device_seed: int | None
) -> None:
    """What tell draws again under a cap (by blocks, from the saved generator state or the
    device seed) is exactly what ask drew, block for block; same seed, same draws."""
    d = 100_000  # blocks of 20 rows
    meth = resolve_method(name, {"popsize": 50})
    x0 = torch.ones(d, dtype=torch.float32)
    asked = []
    for _ in range(2):
        ctx = RunContext(x0=x0, lower=None, upper=None, constraints=(), seed=3, callback=None)
        state = meth.init(x0.clone(), ctx)
        state.device_seed = device_seed
        with torch.no_grad():
            for _ in range(2):  # the second generation: TPA's pair, LM-MA-ES' first vector
                state.draw = ctx.generator.get_state()
                X = meth.ask(state, ctx)
                zt = torch.float32
                again = list(meth._redrawn(state, zt, True))
                assert [a for a, *_ in again] == [0, 20, 40]
                for a, z, aux, x in again:
                    assert torch.equal(z, state.z[a : a + 20])
                    assert torch.equal(x, X[a : a + 20])
                    if aux is not None:
                        assert torch.equal(aux, state.aux[a // 20])
                state = meth.tell(state, X, sphere(X), ctx)
        asked.append(X)
    assert torch.equal(asked[0], asked[1])


# -- reading the options ------------------------------------------------------------------------
def test_memory_and_eval_dtype_are_read_and_checked() -> None:
    assert as_memory("2GB") == 2 * 10**9
    assert as_memory("512 MiB") == 512 * 2**20
    assert as_memory("1.5GiB") == int(1.5 * 2**30)
    assert as_memory(10**9) == 10**9 and as_memory(None) is None
    for bad in ("lots", "2 GBs", "-1GB", "0.5KB"):
        with pytest.raises(ValueError, match="memory"):
            as_memory(bad)
    with pytest.raises(TypeError):
        as_memory(True)
    assert as_eval_dtype("bfloat16") is torch.bfloat16
    assert as_eval_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match="eval_dtype"):
        as_eval_dtype("int8")
    with pytest.raises(ValueError, match="eval_dtype"):
        oa.minimize(sphere, [1.0, 2.0], "cmaes", eval_dtype="half precision")
    with pytest.raises(ValueError, match="memory"):
        oa.minimize(sphere, [1.0, 2.0], "cmaes", memory="big")


def test_the_settings_are_refused_with_workers_that_would_not_see_them() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(ValueError, match="executor"):
            oa.minimize(sphere, [1.0, 2.0], "cmaes", executor=pool, memory="1GB")
        with pytest.raises(ValueError, match="executor"):
            oa.minimize(sphere, [1.0, 2.0], "cmaes", executor=pool, eval_dtype="float32")


def test_no_setting_outlives_its_run() -> None:
    from optarena.core.memory import current

    oa.minimize(lambda x: (x * x).sum(), [1.0, 2.0], "cmaes", budget=20, memory="1GB")
    assert current().memory is None and current().dtype is None
