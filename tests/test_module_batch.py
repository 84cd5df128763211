"""The direct population path of Objective.from_module for feed-forward Sequentials."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import optarena as oa
from optarena.core.batch import balanced
from optarena.core.module_batch import _ELEMENTWISE


def _data(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    xs = torch.randn(40, 5, generator=g).to(dtype)
    return xs, torch.sin(xs.sum(dim=1, keepdim=True)).to(dtype)


def _check(obj: oa.Objective, kind: str = "module", n: int = 37, rtol: float = 2e-6) -> None:
    """Batched values equal one-at-a-time values (functional_call), computed the named way."""
    x0 = obj.default_x0
    assert x0 is not None
    g = torch.Generator().manual_seed(0)
    X = x0 + 0.3 * torch.randn(n, x0.numel(), generator=g, dtype=x0.dtype)
    values, how = obj._values(X.clone())
    assert how == kind
    ref = np.array([obj.evaluate(x) for x in X])
    np.testing.assert_allclose(values, ref, rtol=rtol, atol=1e-7)


def _net(act: nn.Module, bias: bool = True) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 7, bias=bias), act, nn.Linear(7, 3), act, nn.Linear(3, 1))


@pytest.mark.parametrize(
    "layer", sorted(_ELEMENTWISE, key=lambda t: t.__name__), ids=lambda t: t.__name__
)
def test_every_elementwise_layer_matches_functional_call(layer: type[nn.Module]) -> None:
    xs, ys = _data()
    act = layer(0.1, -1.0) if layer is nn.Threshold else layer()
    obj = oa.Objective.from_module(_net(act), nn.functional.mse_loss, args=(xs,), target=ys)
    _check(obj)


@pytest.mark.parametrize(
    "params",
    [None, "4.*", ["0.bias"], ["2.weight", "4.bias"], "0.weight"],
    ids=["all", "head", "first-bias", "mixed", "first-weight"],
)
def test_parameter_subsets(params: object) -> None:
    xs, ys = _data()
    obj = oa.Objective.from_module(
        _net(nn.Tanh()), nn.functional.mse_loss, args=(xs,), target=ys, params=params
    )
    _check(obj)


def test_nested_no_bias_float64_and_loss_without_target() -> None:
    xs, _ = _data(torch.float64)
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Sequential(nn.Linear(5, 6, bias=False), nn.GELU()),
        nn.Dropout(0.5),
        nn.Sequential(nn.Sequential(nn.Linear(6, 2), nn.Softplus(beta=2.0))),
    ).double()
    net.eval()  # dropout is the identity in eval mode

    def loss(out: torch.Tensor) -> torch.Tensor:
        return out.pow(2).sum() + out[:, 0].abs().mean()

    obj = oa.Objective.from_module(net, loss, args=xs)
    _check(obj, rtol=1e-12)


def test_reused_layer_and_tied_weights() -> None:
    xs, ys = _data()
    torch.manual_seed(2)
    shared = nn.Linear(5, 5)
    net = nn.Sequential(shared, nn.ReLU(), shared, nn.Tanh(), nn.Linear(5, 1))
    _check(oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys))
    a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    tied = nn.Sequential(nn.Linear(5, 4), a, nn.Sigmoid(), b, nn.Linear(4, 1))
    obj = oa.Objective.from_module(tied, nn.functional.mse_loss, args=(xs,), target=ys)
    assert obj.default_x0 is not None and obj.default_x0.numel() == 24 + 20 + 4 + 5
    _check(obj)


def test_fixed_parameters_are_read_at_call_time() -> None:
    xs, ys = _data()
    net = _net(nn.ReLU())
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys, params="4.*")
    X = obj.default_x0.repeat(3, 1)  # type: ignore[union-attr]
    before = obj.evaluate_batch(X)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    after, how = obj._values(X.clone())
    assert how == "module"
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, obj.evaluate(X[0]), rtol=2e-6)


def test_inputs_are_never_modified() -> None:
    xs, ys = _data()
    keep = xs.clone()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Tanh(), nn.ReLU(inplace=True), nn.Linear(5, 1))
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    _check(obj)
    assert torch.equal(xs, keep)


def _unsupported() -> list[tuple[str, nn.Module, dict]]:
    xs, ys = _data()

    class MySequential(nn.Sequential):
        pass

    hooked = _net(nn.ReLU())
    hooked[1].register_forward_hook(lambda m, i, o: o * 2)
    training_dropout = nn.Sequential(nn.Linear(5, 3), nn.Dropout(0.0), nn.Linear(3, 1))
    return [
        ("subclass", MySequential(nn.Linear(5, 1)), {"args": (xs,), "target": ys}),
        ("hook", hooked, {"args": (xs,), "target": ys}),
        (
            "batchnorm",
            nn.Sequential(nn.Linear(5, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).eval(),
            {},
        ),
        ("prelu", nn.Sequential(nn.Linear(5, 3), nn.PReLU(), nn.Linear(3, 1)), {}),
        ("softmax", nn.Sequential(nn.Linear(5, 3), nn.Softmax(dim=1), nn.Linear(3, 1)), {}),
        ("train-dropout", training_dropout, {}),
        ("3-d input", _net(nn.ReLU()), {"args": (xs.reshape(8, 5, 5),), "target": None}),
        ("kwargs", _net(nn.ReLU()), {"args": (), "kwargs": {"input": xs}}),
    ]


@pytest.mark.parametrize("case", _unsupported(), ids=lambda c: c[0])
def test_anything_else_uses_vmap_with_the_same_values(case: tuple) -> None:
    _, net, call = case
    xs, ys = _data()
    call = {"args": (xs,), "target": ys, **call}
    loss = nn.functional.mse_loss if call["target"] is not None else lambda o: o.square().mean()
    obj = oa.Objective.from_module(net, loss, **call)
    assert obj._module_batched is None
    _check(obj, kind="vmap", n=5)


def test_declared_batched_and_vectorize_false_take_precedence() -> None:
    xs, ys = _data()
    net = _net(nn.ReLU())
    obj = oa.Objective.from_module(
        net, nn.functional.mse_loss, args=(xs,), target=ys, vectorize=False
    )
    assert obj._module_batched is None
    _check(obj, kind="loop", n=3)


def test_a_loss_the_direct_path_cannot_run_falls_back_and_stays_right() -> None:
    """A loss that only works one sample at a time: vmap fails too, the loop answers."""
    xs, ys = _data()

    def loss(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.tensor(float(((out - target) ** 2).mean().item()))

    obj = oa.Objective.from_module(_net(nn.ReLU()), loss, args=(xs,), target=ys)
    assert obj._module_batched is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _check(obj, kind="loop", n=4)
    assert obj._module_batched is None  # not tried again
    assert any("cannot be vectorized" in str(w.message) for w in caught)


def test_global_hooks_are_honoured() -> None:
    xs, ys = _data()
    obj = oa.Objective.from_module(_net(nn.ReLU()), nn.functional.mse_loss, args=(xs,), target=ys)
    handle = nn.modules.module.register_module_forward_hook(
        lambda m, i, o: o + 1.0 if isinstance(m, nn.Linear) else o
    )
    try:
        with pytest.warns(RuntimeWarning, match="global module hooks"):
            _check(obj, kind="vmap", n=4)
    finally:
        handle.remove()


def test_minimize_through_the_direct_path_is_reproducible() -> None:
    xs, ys = _data()
    obj = oa.Objective.from_module(_net(nn.Tanh()), nn.functional.mse_loss, args=(xs,), target=ys)
    box = (-2.0, 2.0)
    runs = [oa.minimize(obj, method="pso", budget=400, bounds=box, seed=5) for _ in range(2)]
    assert runs[0].fun == runs[1].fun
    assert runs[0].fun < obj.evaluate(obj.default_x0)  # type: ignore[arg-type]
    np.testing.assert_array_equal(runs[0].history.f, runs[1].history.f)


def test_a_changed_module_is_followed() -> None:
    """The module is read at each call, like functional_call: a swapped layer or a replaced
    parameter object gets a new plan; a hook added later sends populations to vmap."""
    xs, ys = _data()
    net = _net(nn.Tanh())
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    _check(obj)
    net[1] = nn.ReLU()
    _check(obj)
    with torch.no_grad():
        net[2].weight = nn.Parameter(net[2].weight * 3)
    _check(obj)
    net[3].register_forward_hook(lambda m, i, o: o * 0)
    with pytest.warns(RuntimeWarning, match="no longer a plain feed-forward"):
        _check(obj, kind="vmap", n=5)
    assert obj._module_batched is None


def test_dropout_switched_to_training_leaves_the_direct_path() -> None:
    xs, ys = _data()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 4), nn.Dropout(0.0), nn.Linear(4, 1)).eval()
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(xs,), target=ys)
    _check(obj)
    net.train()
    with pytest.warns(RuntimeWarning, match="direct population path"):
        _check(obj, kind="vmap", n=4)


def test_float64_networks_with_tiny_activations_match_one_at_a_time() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 1), nn.Tanh()).double()
    xs = torch.randn(64, 3, dtype=torch.float64)
    obj = oa.Objective.from_module(net, lambda o: o.pow(2).mean(), args=xs)
    X = 1e-8 * torch.randn(4, 4, dtype=torch.float64)
    np.testing.assert_allclose(obj.evaluate_batch(X), [obj.evaluate(x) for x in X], rtol=1e-12)


@given(st.integers(1, 100_000), st.integers(1, 5_000))
def test_balanced_chunks(n: int, step: int) -> None:
    rows = balanced(n, step)
    chunks = -(-n // rows)
    assert 1 <= rows <= step
    assert chunks == -(-n // step)  # no more chunks than plain slicing
    assert n - (chunks - 1) * rows > 0  # the last chunk is not empty
