"""Objective kinds (tensor, numpy, nn.Module subsets), budgets, History and Result."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from torch import nn

import optarena as oa


def sphere(x: torch.Tensor) -> torch.Tensor:
    return ((x - 1.0) ** 2).sum()


X0 = torch.zeros(4, dtype=torch.float64)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.body = nn.Linear(3, 5)
        self.head = nn.Linear(5, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.body(x))).squeeze(-1)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g)
    return x, torch.sin(x.sum(dim=1))


def test_module_head_only_leaves_body_untouched() -> None:
    net = Net()
    body_before = {k: v.clone() for k, v in net.body.state_dict().items()}
    x, y = data()
    obj = oa.Objective.from_module(
        net, nn.functional.mse_loss, args=(x,), target=y, params="head.*"
    )
    assert obj.parameter_names == ("head.weight", "head.bias")
    x0 = obj.default_x0
    assert x0 is not None and x0.numel() == 6
    res = oa.minimize(obj, method="lbfgs", line_search="strong_wolfe", budget=200)
    assert res.fun < float(obj.fn(x0).detach())
    for k, v in net.body.state_dict().items():
        assert torch.equal(v, body_before[k])
    obj.write_back(res.x)
    with torch.no_grad():
        loss = nn.functional.mse_loss(net(x), y)
    assert float(loss) == pytest.approx(res.fun, rel=1e-6)


def test_module_parameter_objects_and_errors() -> None:
    net = Net()
    x, y = data()
    obj = oa.Objective.from_module(
        net, nn.functional.mse_loss, args=(x,), target=y, params=[net.head.bias]
    )
    assert obj.parameter_names == ("head.bias",)
    with pytest.raises(ValueError, match="matches no parameter"):
        oa.Objective.from_module(net, nn.functional.mse_loss, args=(x,), params="tail.*")
    # a submodule's name selects every parameter under it, as its pattern does
    by_name = oa.Objective.from_module(net, nn.functional.mse_loss, args=(x,), params="head")
    by_glob = oa.Objective.from_module(net, nn.functional.mse_loss, args=(x,), params="head.*")
    assert by_name.parameter_names == by_glob.parameter_names == ("head.weight", "head.bias")
    with pytest.raises(ValueError, match="matches no parameter"):  # a prefix is not a module
        oa.Objective.from_module(net, nn.functional.mse_loss, args=(x,), params="hea")
    with pytest.raises(ValueError, match="does not belong"):
        oa.Objective.from_module(
            net, nn.functional.mse_loss, args=(x,), params=[nn.Parameter(torch.zeros(1))]
        )
    with pytest.raises(TypeError, match=r"nn\.Module"):
        oa.Objective.from_module(lambda z: z, nn.functional.mse_loss)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="needs a loss"):
        oa.minimize(net, method="adam")
    with pytest.raises(ValueError, match="entries"):
        obj.write_back(torch.zeros(7))


def test_module_objective_vmaps_populations() -> None:
    net = Net()
    x, y = data()
    obj = oa.Objective.from_module(net, nn.functional.mse_loss, args=(x,), target=y)
    x0 = obj.default_x0
    assert x0 is not None
    X = x0 + 0.1 * torch.randn(7, x0.numel(), generator=torch.Generator().manual_seed(2))
    vals, how = obj._values(X)
    assert how == "vmap"
    loop = np.array([obj._value(r) for r in X])
    np.testing.assert_allclose(vals, loop, rtol=1e-6)


def test_numpy_objective_has_no_gradient_unless_fd() -> None:
    obj = oa.Objective.from_numpy(lambda x: float(np.sum((x - 1.0) ** 2)))
    assert not obj.has_gradient
    res = oa.minimize(obj, np.zeros(4), "nelder_mead", budget=1000)
    assert res.fun < 1e-6
    assert res.ngev == 0
    with pytest.raises(ValueError, match="autograd"):
        oa.Objective.from_numpy(lambda x: 0.0, gradient="autograd")


def test_finite_differences_count_every_probe() -> None:
    calls = {"n": 0}

    def f(x: np.ndarray) -> float:
        calls["n"] += 1
        return float(np.sum((x - 1.0) ** 2))

    obj = oa.Objective.from_numpy(f, gradient="fd")
    res = oa.minimize(obj, np.zeros(4), "slsqp", budget=200)
    assert res.nfev == calls["n"]
    assert res.nfev == 5 * res.ngev  # 1 + d evaluations per gradient
    assert res.fun < 1e-8


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_non_differentiable_output_is_explained() -> None:
    # a plain function returning a float is found out by its first call, before the run
    with pytest.raises(ValueError, match=r"needs a gradient.*gradient='fd'"):
        oa.minimize(lambda x: float((x**2).sum()), X0, "adam", budget=5)
    # declared a torch function, it is refused at its first evaluation
    with pytest.raises(oa.ObjectiveError, match="autograd cannot trace"):
        oa.minimize(oa.Objective(lambda x: float((x**2).sum())), X0, "adam", budget=5)


def test_non_scalar_output_is_explained() -> None:
    with pytest.raises(oa.ObjectiveError, match="must return a scalar"):
        oa.minimize(lambda x: x**2, X0, "nelder_mead", budget=5)


def test_budget_grad_evals_and_seconds_and_target() -> None:
    res = oa.minimize(sphere, X0, "adam", budget=oa.Budget(grad_evals=7))
    assert res.ngev == 7 and res.stop_reason is oa.StopReason.MAX_GRAD_EVALS
    res = oa.minimize(sphere, X0, "adam", budget=oa.Budget(seconds=0.05))
    assert res.stop_reason is oa.StopReason.MAX_SECONDS and res.elapsed >= 0.05
    res = oa.minimize(sphere, X0, "lbfgs", budget=oa.Budget(evals=100, target=1e-3))
    assert res.stop_reason is oa.StopReason.TARGET_REACHED and res.fun <= 1e-3
    assert res.history.best_f[-2] > 1e-3


def test_budget_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        oa.Budget(evals=0)
    with pytest.raises(TypeError):
        oa.Budget(evals=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        oa.Budget(seconds=-1)
    with pytest.raises(TypeError, match="budget"):
        oa.minimize(sphere, X0, "adam", budget="100")  # type: ignore[arg-type]
    assert oa.Budget.coerce(None).evals == 10_000
    assert oa.Budget.coerce(oa.Budget(target=1.0)).evals == 10_000


def test_history_columns_and_pandas() -> None:
    res = oa.minimize(sphere, X0, "gd", lr=0.1, budget=20)
    h = res.history
    assert len(h) == 20
    assert h.evals.tolist() == list(range(1, 21))
    assert h.grad_evals.tolist() == list(range(1, 21))
    assert np.all(np.diff(h.seconds) >= 0)
    assert np.all(np.diff(h.best_f) <= 0)
    assert h.x.shape == (20, 4)
    df = h.to_pandas()
    assert list(df.columns) == ["evals", "grad_evals", "seconds", "f", "best_f"]
    with pytest.raises(ValueError):
        h.f[0] = 1.0  # read-only columns
    assert h.evals_to_reach(-1.0) is None


def test_result_is_frozen_and_reports() -> None:
    res = oa.minimize(sphere, X0, "lbfgs", seed=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.fun = 0.0  # type: ignore[misc]
    assert res.seed == 5 and res.method == "lbfgs"
    assert res.success
    assert res.best_eval is not None and res.history.f[res.best_eval - 1] == res.fun
    assert "lbfgs" in repr(res)
    np.testing.assert_allclose(res.x_numpy(), np.ones(4), atol=1e-6)


def test_seed_drawn_when_none_and_recorded() -> None:
    res = oa.minimize(sphere, X0, "lbfgs")
    assert isinstance(res.seed, int)


def test_x0_forms() -> None:
    assert oa.minimize(sphere, [0.0, 0.0], "lbfgs").x.dtype == torch.float64
    assert oa.minimize(sphere, np.zeros(2, np.float32), "lbfgs").x.dtype == torch.float32
    r = oa.minimize(lambda x: ((x - 2) ** 2).sum(), 0.0, "lbfgs")
    assert r.x.shape == (1,) and float(r.x[0]) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="required"):
        oa.minimize(sphere, None, "lbfgs")
    with pytest.raises(ValueError, match="empty"):
        oa.minimize(sphere, [], "lbfgs")
    with pytest.raises(TypeError, match="string"):
        oa.minimize("rosenbrock", None, "lbfgs")  # type: ignore[arg-type]


def test_bounds_forms() -> None:
    for b in [(-1, 1), ([-1] * 4, [1] * 4), [(-1, 1)] * 4]:
        r = oa.minimize(sphere, X0, "lbfgsb", bounds=b)
        assert float(r.x.max()) <= 1.0
    r = oa.minimize(
        lambda x: ((x - 5) ** 2).sum(), X0, "adam", lr=0.5, bounds=(-math.inf, 2.0), budget=200
    )
    assert float(r.x.max()) == pytest.approx(2.0)


def test_callback_sees_iterations_and_can_stop() -> None:
    seen = []

    def cb(info: oa.IterationInfo) -> bool:
        seen.append(info)
        return info.iteration == 3

    res = oa.minimize(sphere, X0, "adam", callback=cb, budget=100)
    assert res.stop_reason is oa.StopReason.CALLBACK
    assert [i.iteration for i in seen] == [1, 2, 3]
    assert seen[-1].nfev == 3
    with pytest.raises(TypeError, match="callback"):
        oa.minimize(sphere, X0, "adam", callback=3)  # type: ignore[arg-type]


def test_batched_declared_function_and_vmap_fallback_warns_once() -> None:
    calls = []

    def batched(X: torch.Tensor) -> torch.Tensor:
        calls.append(X.shape[0])
        return ((X - 1.0) ** 2).sum(dim=1)

    obj = oa.Objective(sphere, batched=batched)
    vals, how = obj._values(torch.zeros(5, 3))
    assert how == "batched" and calls == [5]
    np.testing.assert_allclose(vals, 3.0)

    def branchy(x: torch.Tensor) -> torch.Tensor:
        return x.sum() if float(x[0]) > 0 else -x.sum()  # data-dependent: not vmappable

    obj2 = oa.Objective(branchy)
    with pytest.warns(RuntimeWarning, match="vmap"):
        vals, how = obj2._values(torch.ones(4, 2))
    assert how == "loop"
    np.testing.assert_allclose(vals, 2.0)
    vals, how = obj2._values(torch.ones(2, 2))  # no second warning, still a loop
    assert how == "loop"


def test_objective_argument_errors() -> None:
    with pytest.raises(TypeError, match="callable"):
        oa.Objective(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        oa.Objective(sphere, backend="jax")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gradient"):
        oa.Objective(sphere, gradient="exact")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="chunk_size"):
        oa.Objective(sphere, chunk_size=0)
    with pytest.raises(TypeError, match="objective must be"):
        oa.minimize(3, X0, "adam")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        oa.minimize(sphere, X0, "adam", seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        oa.minimize(sphere, X0, "adam", seed=-1)


def test_method_instance_and_options_conflict() -> None:
    from optarena.methods.gradient.torch_optim import Adam

    res = oa.minimize(sphere, X0, Adam(lr=0.1), budget=10)
    assert res.method == "adam"
    with pytest.raises(TypeError, match="instance"):
        oa.minimize(sphere, X0, Adam(lr=0.1), lr=0.2)
    with pytest.raises(ValueError, match="lr"):
        Adam(lr=-1.0)


def test_scheduler_steps_learning_rate() -> None:
    res_const = oa.minimize(sphere, X0, "sgd", lr=0.1, budget=30)
    res_decay = oa.minimize(
        sphere,
        X0,
        "sgd",
        lr=0.1,
        budget=30,
        scheduler="exponential",
        scheduler_options={"gamma": 0.5},
    )
    assert res_decay.fun > res_const.fun  # the step size halves each step
    with pytest.raises(ValueError, match="unknown scheduler"):
        oa.minimize(sphere, X0, "sgd", scheduler="bogus")


def test_device_option() -> None:
    res = oa.minimize(sphere, X0, "lbfgs", device="cpu")
    assert res.x.device.type == "cpu"
    with pytest.raises(ValueError, match="device"):
        oa.minimize(sphere, X0, "lbfgs", device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            oa.minimize(sphere, X0, "lbfgs", device="cuda")


def test_public_evaluate_batch_is_uncounted_and_checked() -> None:
    obj = oa.Objective(sphere)
    vals = obj.evaluate_batch(torch.zeros(3, 4))
    np.testing.assert_allclose(vals, 4.0)
    assert obj.evaluate(torch.ones(4)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        obj.evaluate_batch(torch.zeros(4))


def test_finite_difference_probes_stay_in_the_box() -> None:
    seen: list[np.ndarray] = []

    def f(x: np.ndarray) -> float:
        seen.append(x.copy())
        return float(np.sum((x - 5.0) ** 2))  # optimum outside the box, at the upper bound

    obj = oa.Objective.from_numpy(f, gradient="fd")
    res = oa.minimize(obj, np.zeros(3), "lbfgsb", bounds=(-1.0, 1.0), budget=200)
    assert np.all(np.array(seen) <= 1.0) and np.all(np.array(seen) >= -1.0)
    np.testing.assert_allclose(res.x_numpy(), 1.0)
