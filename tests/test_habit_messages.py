"""Habits users bring from scipy, torch and Optuna: each works, or is refused with a message
that says how optarena spells it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import optarena as oa
from optarena.core.errors import CallbackError, ObjectiveError


def rosen(x):  # a numpy-style function, as scipy users write it
    return float(sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def calls_backward(x: torch.Tensor) -> torch.Tensor:
    loss = ((x - 1) ** 2).sum()
    loss.backward()  # a training-loop habit: optarena differentiates the value itself
    return loss


@pytest.mark.parametrize("method", ["lbfgs", "adam", "cmaes", "nelder_mead"])
def test_an_objective_that_calls_backward_on_its_value_is_refused_with_the_way_out(
    method: str,
) -> None:
    with pytest.raises(ObjectiveError, match=r"calls \.backward\(\).*Return the loss"):
        oa.minimize(calls_backward, torch.zeros(3), method, budget=30)


def test_an_objective_that_trains_a_model_inside_still_runs() -> None:
    """backward on the model's own parameters, the hyperparameter read as a float: fine."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(32, 3, generator=g)
    Y = X @ torch.tensor([[1.0], [-2.0], [0.5]])

    def train(x: torch.Tensor) -> torch.Tensor:
        lr = float(x[0])
        w = torch.zeros(3, 1, requires_grad=True)
        for _ in range(5):
            loss = ((X @ w - Y) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                w -= lr * w.grad
                w.grad = None
        return ((X @ w - Y) ** 2).mean().detach()

    fn = oa.Objective(train, vectorize=False)  # a loop inside: no vmap
    res = oa.minimize(fn, torch.tensor([0.01]), "cmaes", bounds=[(1e-3, 0.3)], budget=24, seed=0)
    assert res.nfev == 24 and res.fun < float(train(torch.tensor([0.01])))


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("options", {"maxiter": 50}, "budget=N"),
        ("maxiter", 50, "budget=N"),
        ("maxfev", 50, "budget=N"),
        ("tol", 1e-6, "Budget(target="),
        ("jac", True, "Objective.from_numpy(f, gradient='fd')"),
        ("args", (1,), "functools.partial"),
        ("gradient", "fd", "Objective(f, gradient='fd')"),
        ("direction", "maximize", "minimize -f"),
        ("timeout", 10, "Budget(seconds="),
    ],
)
def test_foreign_option_names_are_refused_with_optarenas_spelling(
    option: str, value: object, says: str
) -> None:
    with pytest.raises(TypeError, match="unknown option") as err:
        oa.minimize(rosen, [0.0, 0.0, 0.0], "nelder_mead", **{option: value})
    assert says in str(err.value)


def test_an_unknown_option_without_a_known_habit_gets_no_hint() -> None:
    with pytest.raises(TypeError) as err:
        oa.minimize(rosen, [0.0, 0.0], "nelder_mead", frobnicate=1)
    assert str(err.value).endswith("['adaptive', 'fatol', 'stall', 'xatol']")


def test_a_scipy_style_callback_is_told_what_it_receives() -> None:
    seen: list = []
    with pytest.raises(CallbackError, match="receives an IterationInfo"):
        oa.minimize(
            rosen, [0.0] * 3, "nelder_mead", budget=50, callback=lambda xk: seen.append(xk.copy())
        )


def test_a_gradient_method_on_an_item_objective_says_why_there_is_no_gradient() -> None:
    with pytest.raises(ValueError, match=r"returns a Python number.*\.item\(\)"):
        oa.minimize(lambda x: ((x - 0.5) ** 2).sum().item(), torch.zeros(3), "lbfgs")


def test_params_takes_a_submodule() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    X, Y = torch.randn(8, 2), torch.randn(8, 1)
    mse = nn.functional.mse_loss
    head = oa.Objective.from_module(net, mse, args=(X,), target=Y, params=net[2])
    assert head.default_x0 is not None and head.default_x0.numel() == 4
    mixed = oa.Objective.from_module(net, mse, args=(X,), target=Y, params=[net[0], "2.bias"])
    assert mixed.default_x0 is not None and mixed.default_x0.numel() == 10
    with pytest.raises(ValueError, match="no parameter of the module"):
        oa.Objective.from_module(net, mse, args=(X,), target=Y, params=nn.Linear(3, 1))
    with pytest.raises(TypeError, match="submodules, got int"):
        oa.Objective.from_module(net, mse, args=(X,), target=Y, params=[3])


@pytest.mark.parametrize(
    ("method", "warns"), [("lbfgs", True), ("nelder_mead", True), ("cmaes", False)]
)
def test_memory_and_eval_dtype_say_when_they_had_nothing_to_act_on(
    method: str, warns: bool
) -> None:
    """They act on populations: a method that evaluates one point at a time is told."""
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        res = oa.minimize(
            lambda x: ((x - 1) ** 2).sum(),
            torch.zeros(3),
            method,
            budget=40,
            memory="100MB",
            eval_dtype="float32",
            seed=0,
        )
    said = [w for w in seen if "had no effect" in str(w.message)]
    assert res.nfev <= 40 and bool(said) == warns


def test_a_dense_state_over_the_memory_cap_is_refused_before_it_is_allocated() -> None:
    with pytest.raises(ValueError, match=r"keeps 4 d x d matrices: 288 MB at d=3,000.*sep_cmaes"):
        oa.minimize(lambda x: (x**2).sum(), torch.zeros(3000), "cmaes", budget=10, memory="50MB")
    res = oa.minimize(lambda x: (x**2).sum(), torch.zeros(3000), "sep_cmaes", budget=10,
                      memory="50MB", seed=0)  # fmt: skip
    assert res.nfev == 10


def test_a_large_dense_state_without_a_cap_is_warned_of(monkeypatch: pytest.MonkeyPatch) -> None:
    import optarena.methods._state_size as state_size

    monkeypatch.setattr(state_size, "WARN_BYTES", 1 << 20)  # 1 MiB: d = 400 holds 5 MB
    with pytest.warns(RuntimeWarning, match="keeps 4 d x d matrices: 5 MB at d=400"):
        oa.minimize(lambda x: (x**2).sum(), torch.zeros(400), "cmaes", budget=10, seed=0)


@pytest.mark.parametrize("method", ["nelder_mead", "cmaes", "lbfgs", "dual_annealing"])
def test_the_callback_has_scipys_fun(method: str) -> None:
    """A scipy callback reads ``intermediate_result.fun``: every method's IterationInfo has it,
    the value at x when there is one iterate, else the best so far."""
    seen: list[oa.IterationInfo] = []
    x0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
    oa.minimize(
        lambda x: ((x - 0.3) ** 2).sum(), x0, method, bounds=(-2, 2), budget=60, seed=0,
        callback=seen.append,
    )  # fmt: skip
    assert seen
    for info in seen:
        assert math.isfinite(info.fun)
        assert info.fun == (info.best_f if info.f is None else info.f)


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"buget": 20}, "did you mean budget= for buget=, of minimize()?"),
        ({"sed": 1}, "did you mean seed= for sed=, of minimize()?"),
        ({"sigma": 0.3}, "did you mean sigma0= for sigma=?"),
    ],
)
def test_a_misspelled_keyword_is_named_as_one(kw: dict, says: str) -> None:
    """Was: "unknown option(s) ['buget'] for method 'cmaes'", blaming the method."""
    with pytest.raises(TypeError, match="neither minimize\\(\\) nor method 'cmaes'") as err:
        oa.minimize(lambda x: (x * x).sum(), torch.zeros(2), "cmaes", **kw)
    assert says in str(err.value)
    with pytest.raises(TypeError, match="neither Optimizer\\(\\) nor method 'cmaes'"):
        oa.Optimizer("cmaes", x0=torch.zeros(2), **kw)
