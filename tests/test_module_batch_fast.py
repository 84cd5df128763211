"""The direct network path's fast parts: reused work buffers, the direct losses, exact tanh."""

from __future__ import annotations

import copy
import threading
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import optarena as oa
from optarena.core.memory import evaluation
from optarena.core.module_loss import DirectLoss


def _data(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(40, 5, generator=g).to(dtype)
    return xs, torch.sin(xs.sum(dim=1, keepdim=True) + xs[:, :2]).to(dtype)  # (40, 2)


def _net(dtype: torch.dtype = torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3), nn.ReLU(), nn.Linear(3, 2)
    ).to(dtype)


def _points(obj: oa.Objective, n: int, seed: int = 0) -> torch.Tensor:
    x0 = obj.default_x0
    assert x0 is not None
    g = torch.Generator().manual_seed(seed)
    return x0 + 0.3 * torch.randn(n, x0.numel(), generator=g, dtype=x0.dtype)


def _one_at_a_time(obj: oa.Objective, X: torch.Tensor) -> np.ndarray:
    return np.array([obj.evaluate(x) for x in X])  # functional_call and the loss itself


LOSSES = [
    ("mse", nn.functional.mse_loss),
    ("l1", nn.functional.l1_loss),
    ("MSELoss", nn.MSELoss()),
    ("MSELoss-sum", nn.MSELoss(reduction="sum")),
    ("L1Loss", nn.L1Loss()),
    ("L1Loss-sum", nn.L1Loss(reduction="sum")),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("loss", LOSSES, ids=lambda c: c[0])
def test_the_direct_losses_equal_torchs_losses(loss: tuple, dtype: torch.dtype) -> None:
    xs, ys = _data(dtype)
    obj = oa.Objective.from_module(_net(dtype), loss[1], args=(xs,), target=ys)
    assert isinstance(obj._module_batched.per_sample, DirectLoss)  # type: ignore[union-attr]
    X = _points(obj, 37)
    got, how = obj._values(X.clone())
    assert how == "module"
    rtol = 2e-6 if dtype == torch.float32 else 1e-13
    np.testing.assert_allclose(got, _one_at_a_time(obj, X), rtol=rtol)


def test_a_target_the_direct_loss_does_not_reproduce_keeps_the_loss_itself() -> None:
    """A target that broadcasts, of another dtype, or a loss that is not one of the two."""
    xs, ys = _data()
    cases = [
        (nn.functional.mse_loss, ys[:, :1]),  # (40, 1) against outputs (40, 2): broadcasts
        (nn.functional.mse_loss, ys.double()),
        (nn.functional.smooth_l1_loss, ys),
        (lambda o, t: ((o - t) ** 2).mean(), ys),
    ]
    for loss, target in cases:
        obj = oa.Objective.from_module(_net(), loss, args=(xs,), target=target)
        if target.shape == ys.shape:  # the shape is checked at each call
            assert not isinstance(obj._module_batched.per_sample, DirectLoss)  # type: ignore[union-attr]
        X = _points(obj, 6)
        with warnings.catch_warnings():  # mse_loss warns of the broadcast target
            warnings.simplefilter("ignore", UserWarning)
            got, how = obj._values(X.clone())
        assert how in ("module", "vmap")
        np.testing.assert_allclose(got, _one_at_a_time(obj, X), rtol=2e-6)


def test_a_loss_module_changed_after_construction_is_followed() -> None:
    """The loss module is read at each call: a new reduction or a forward hook is honoured."""
    xs, ys = _data()
    loss = nn.MSELoss()
    obj = oa.Objective.from_module(_net(), loss, args=(xs,), target=ys)
    X = _points(obj, 9)
    mean = obj.evaluate_batch(X)
    loss.reduction = "sum"
    np.testing.assert_allclose(obj.evaluate_batch(X), mean * ys.numel(), rtol=2e-6)
    handle = loss.register_forward_hook(lambda m, i, o: o * 3.0)
    try:
        np.testing.assert_allclose(obj.evaluate_batch(X), 3 * mean * ys.numel(), rtol=2e-6)
        np.testing.assert_allclose(obj.evaluate_batch(X), _one_at_a_time(obj, X), rtol=2e-6)
    finally:
        handle.remove()


def test_the_target_is_read_at_call_time() -> None:
    xs, ys = _data()
    target = ys.clone()
    obj = oa.Objective.from_module(_net(), nn.functional.mse_loss, args=(xs,), target=target)
    X = _points(obj, 5)
    before = obj.evaluate_batch(X)
    target.add_(1.0)
    after = obj.evaluate_batch(X)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, _one_at_a_time(obj, X), rtol=2e-6)
    assert torch.equal(target, ys + 1.0)  # the loss did not write into the target


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_work_buffers_reused_across_populations_give_the_same_values(dtype: torch.dtype) -> None:
    """Calls of other population sizes (other chunk shapes) reuse the buffers: each call's
    values equal the one-at-a-time values, and values returned before are left intact."""
    xs, ys = _data(dtype)
    obj = oa.Objective.from_module(_net(dtype), nn.functional.mse_loss, args=(xs,), target=ys)
    batch = obj._module_batched
    assert batch is not None
    sizes = [37, 5, 120, 1, 37]
    Xs = [_points(obj, n, seed=i) for i, n in enumerate(sizes)]
    refs = [_one_at_a_time(obj, X) for X in Xs]
    kept = []
    with torch.no_grad():
        for X, ref in zip(Xs, refs, strict=True):
            values = batch(X)  # the path itself: its result must not be a work buffer
            kept.append((values, values.clone()))
            np.testing.assert_allclose(
                values.numpy(), ref, rtol=2e-6 if dtype == torch.float32 else 1e-13
            )
    for values, copy_ in kept:
        assert torch.equal(values, copy_)
    assert batch._work.buffers  # the buffers were kept between calls


def test_a_loss_returning_a_view_of_the_output_never_returns_a_work_buffer() -> None:
    xs, _ = _data(torch.float64)
    net = _net(torch.float64)
    obj = oa.Objective.from_module(net, lambda o: o[0, 1], args=(xs,))  # a view of the output
    batch = obj._module_batched
    assert batch is not None
    X1, X2 = _points(obj, 8, seed=1), _points(obj, 8, seed=2)
    with torch.no_grad():
        first = batch(X1)
        keep = first.clone()
        batch(X2)
    assert torch.equal(first, keep)
    np.testing.assert_allclose(keep.numpy(), _one_at_a_time(obj, X1), rtol=1e-13)


def test_threads_sharing_an_objective_have_their_own_buffers() -> None:
    xs, ys = _data()
    obj = oa.Objective.from_module(_net(), nn.functional.mse_loss, args=(xs,), target=ys)
    Xs = [_points(obj, 50 + 7 * i, seed=i) for i in range(4)]
    refs = [obj.evaluate_batch(X) for X in Xs]
    errors: list[str] = []

    def work(i: int) -> None:
        for _ in range(30):
            got = obj.evaluate_batch(Xs[i])
            if not np.array_equal(got, refs[i]):
                errors.append(f"thread {i}: {np.abs(got - refs[i]).max()}")
                return

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_a_copied_objective_evaluates_alike() -> None:
    """The buffers are not part of the state: a deep copy (and a pickle) leaves them behind."""
    xs, ys = _data()
    obj = oa.Objective.from_module(_net(), nn.functional.mse_loss, args=(xs,), target=ys)
    X = _points(obj, 20)
    ref = obj.evaluate_batch(X)
    twin = copy.deepcopy(obj)
    got, how = twin._values(X.clone())
    assert how == "module"
    np.testing.assert_array_equal(got, ref)


def test_an_in_place_first_layer_leaves_the_inputs_alone() -> None:
    xs, ys = _data()
    keep = xs.clone()
    torch.manual_seed(0)
    net = nn.Sequential(nn.ReLU(inplace=True), nn.Linear(5, 2))
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    X = _points(obj, 6)
    got, how = obj._values(X.clone())
    assert how == "module"
    assert torch.equal(xs, keep)  # checked before the one-at-a-time reference runs the module
    np.testing.assert_allclose(got, _one_at_a_time(obj, X), rtol=2e-6)


def test_tanh_is_torchs_own() -> None:
    """The hidden activations are torch.tanh's: a float64 network whose output is one tanh
    unit matches one-at-a-time values to a few units in the last place."""
    torch.manual_seed(0)
    xs = torch.randn(64, 3, dtype=torch.float64)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1), nn.Tanh()).double()
    obj = oa.Objective.from_module(net, lambda o: o.sum(), args=xs)
    X = torch.cat([_points(obj, 6), 30 * _points(obj, 6, seed=1), 1e-9 * _points(obj, 6, seed=2)])
    np.testing.assert_allclose(obj.evaluate_batch(X), _one_at_a_time(obj, X), rtol=1e-14)


@pytest.mark.parametrize("low", [torch.bfloat16, torch.float16], ids=str)
def test_the_direct_loss_in_the_evaluation_dtype_equals_the_generic_one(low: torch.dtype) -> None:
    """With eval_dtype the output comes back in the inputs' dtype and the direct loss gives
    what the vmapped loss gives on the same outputs."""
    xs, ys = _data()
    obj = oa.Objective.from_module(_net(), nn.functional.mse_loss, args=(xs,), target=ys)
    batch = obj._module_batched
    assert batch is not None and isinstance(batch.per_sample, DirectLoss)
    X = _points(obj, 30)
    with evaluation(dtype=low):
        direct, how = obj._values(X.clone())
        assert how == "module"
        batch.per_sample = batch.per_sample.generic
        generic, how = obj._values(X.clone())
        assert how == "module"
    np.testing.assert_allclose(direct, generic, rtol=1e-6)


def test_vmap_is_made_only_when_a_population_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Making ``torch.func.vmap(fn)`` costs about as much as a small population's forward
    pass: the network path does not make it; an objective that needs it still gets it."""
    made: list[object] = []
    real = torch.func.vmap

    def counting(fn: object, *args: object, **kwargs: object) -> object:
        made.append(fn)
        return real(fn, *args, **kwargs)

    xs, ys = _data()
    obj = oa.Objective.from_module(_net(), nn.functional.mse_loss, args=(xs,), target=ys)
    X = _points(obj, 12)
    monkeypatch.setattr(torch.func, "vmap", counting)
    got, how = obj._values(X.clone())
    assert how == "module" and made == []
    plain = oa.Objective(obj.fn)
    again, how = plain._values(X.clone())
    assert how == "vmap" and made == [obj.fn]
    np.testing.assert_allclose(got, again, rtol=2e-6)


def test_infinite_and_nan_activations_match_one_at_a_time() -> None:
    """tanh of +-inf is +-1 and of NaN is NaN on the direct path too."""
    torch.manual_seed(0)
    xs = torch.randn(16, 3)
    xs[0, 0], xs[1, 1], xs[2, 2] = float("inf"), -float("inf"), float("nan")
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1), nn.Tanh())
    obj = oa.Objective.from_module(net, lambda o: o[3:].sum() + o[:2].sum(), args=xs)
    X = _points(obj, 7)
    got, how = obj._values(X.clone())
    assert how == "module"
    ref = _one_at_a_time(obj, X)
    assert np.isfinite(ref).all()  # rows 0 and 1 saturate; row 2 (NaN) is left out
    np.testing.assert_allclose(got, ref, rtol=2e-6)
