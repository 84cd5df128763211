"""What a new user meets first, from the README only: plain numpy functions in composites,
refusals that name what works, errors that name what the function returned, and evaluation
counts that equal the calls of the user's function."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import optarena as oa
from optarena.methods._registry import Facts, get_method_class
from optarena.methods.composite.multistart import MultiStart


class Calls:
    """Wraps a function and counts every call of it, whatever it returns or raises."""

    def __init__(self, fn) -> None:
        self.fn, self.n = fn, 0

    def __call__(self, x):
        self.n += 1
        return self.fn(x)


def scipy_style(x) -> float:
    """As a scipy user writes it: converts its input, returns a float."""
    x = np.asarray(x, dtype=np.float64)
    return float(np.sum((x - 1.0) ** 2))


def torch_quadratic(x: torch.Tensor) -> torch.Tensor:
    return ((x - 1.0) ** 2).sum()


X0 = np.zeros(3)


# -- 1. a chain with a gradient phase on a numpy function -----------------------------------
def test_a_gradient_phase_on_a_numpy_function_is_refused_before_the_run() -> None:
    """It used to fail at the first evaluation of the lbfgs phase, after the whole global phase;
    now the chain refuses after the one call that tells what the function is, naming the ways
    out: the 'local' phase, or finite differences."""
    f = Calls(scipy_style)
    with pytest.raises(ValueError, match="needs a gradient") as err:
        oa.minimize(f, X0, method="cmaes>lbfgs", budget=2000, seed=0)
    assert "method='cmaes>local'" in str(err.value) and "gradient='fd'" in str(err.value)
    assert f.n <= 2  # the first call, with a tensor (it raised), then with a numpy array
    # declared a numpy function, nothing is called at all
    g = Calls(scipy_style)
    with pytest.raises(ValueError, match="needs a gradient"):
        oa.minimize(oa.Objective.from_numpy(g), X0, method="cmaes>lbfgs", budget=2000)
    assert g.n == 0


def test_the_ways_out_of_the_chain_refusal_run() -> None:
    f = Calls(scipy_style)
    res = oa.minimize(f, X0, method="cmaes>local", budget=600, seed=0)
    assert res.fun < 1e-6 and res.nfev == f.n == len(res.history)
    assert res.info["phases"][-1]["method"] not in ("lbfgs", "bfgs")
    g = Calls(scipy_style)
    fd = oa.Objective.from_numpy(g, gradient="fd")
    res = oa.minimize(fd, X0, method="cmaes>lbfgs", budget=600, seed=0)
    assert res.fun < 1e-6 and res.nfev == g.n


# -- 2. composites with their default inner methods on a numpy function ---------------------
@pytest.mark.parametrize("name", ["multistart", "penalty", "augmented_lagrangian", "chain"])
def test_composites_with_default_inner_methods_run_on_a_numpy_function(name: str) -> None:
    """They used to fail at evaluation 1: the inner method was chosen (and the gradient
    asked for) before the function's kind was known."""
    f = Calls(scipy_style)
    res = oa.minimize(f, X0, method=name, budget=600, seed=0)
    assert res.fun < 1e-6 and res.nfev == f.n == len(res.history)
    np.testing.assert_allclose(np.asarray(res.x), np.ones(3), atol=1e-3)


@pytest.mark.parametrize(
    ("method", "options"),
    [("pso>local", {}), ("multistart", {"local": "pso"}), ("penalty", {"inner": "pso"})],
)
def test_what_no_kind_would_fix_is_refused_without_any_call(method: str, options) -> None:
    """The first call tells the kind; a refusal that does not depend on it comes first."""
    f = Calls(scipy_style)
    with pytest.raises(ValueError, match="needs bounds"):
        oa.minimize(f, X0, method=method, budget=100, **options)
    assert f.n == 0


def test_multistart_on_a_numpy_function_reports_the_local_method_it_chose() -> None:
    res = oa.minimize(scipy_style, X0, method="multistart", budget=400, seed=0)
    local = get_method_class(res.info["local"]).info
    assert not local.needs_grad and local.rank("local") is not None
    res = oa.minimize(torch_quadratic, X0, method="multistart", budget=400, seed=0)
    assert res.info["local"] == MultiStart().local_method().label


def test_penalty_with_a_constraint_on_a_numpy_function() -> None:
    cons = [{"type": "ineq", "fun": lambda x: 1.5 - x[0] - x[1]}]  # x0 + x1 <= 1.5
    for name in ("penalty", "augmented_lagrangian"):
        f = Calls(scipy_style)
        res = oa.minimize(f, X0, method=name, constraints=cons, budget=3000, seed=0)
        assert res.feasible and res.nfev == f.n
        assert res.fun < 0.5**2 / 2 + 1e-3  # the optimum: x = (0.75, 0.75, 1)


# -- 3. the refusal lists only what works ---------------------------------------------------
def _listed(message: str) -> list[str]:
    inside = re.search(r"fits the problem \(([^)]*)\)", message)
    assert inside is not None, message
    return [
        n
        for n in re.split(
            r"[,;]\s*(?:or, with their inner methods left to choose, )?", inside.group(1)
        )
        if n
    ]


@pytest.mark.parametrize("bounds", [None, (-2.0, 2.0)])
def test_gradient_refusal_names_only_methods_that_run(bounds) -> None:
    """Every method the refusal names runs on the objective it refused (it used to name
    methods that need a box, and composites that then failed at evaluation 1)."""
    with pytest.raises(ValueError) as err:
        oa.minimize(scipy_style, X0, method="lbfgs", bounds=bounds, budget=100)
    names = _listed(str(err.value))
    facts = Facts(gradient="none", bounded=bounds is not None)
    assert names and all(get_method_class(n).info.fits(facts) for n in names)
    assert ("pso" in names) == (bounds is not None)  # a box method only with a box
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            f = Calls(scipy_style)
            res = oa.minimize(f, X0, method=name, bounds=bounds, budget=60, seed=0)
            assert res.nfev == f.n and np.isfinite(res.fun), name


# -- 4. a value of the wrong shape is named as what it is -----------------------------------
@pytest.mark.parametrize(
    ("returned", "named"),
    [
        (lambda x: np.ones(3) * np.sum(x), r"returned a numpy array of shape \(3,\)"),
        (lambda x: [1.0, 2.0], "returned a list of length 2"),
        (lambda x: None, "returned None"),
        (lambda x: torch.as_tensor(x) * 2, r"returned a tensor of shape \(3,\)"),
    ],
)
@pytest.mark.parametrize("method", ["nelder_mead", "cmaes"])
def test_a_value_of_the_wrong_shape_is_named(returned, named: str, method: str) -> None:
    box = {"bounds": (-1, 1)} if method == "cmaes" else {}
    with pytest.raises(oa.ObjectiveError, match=named) as err:
        oa.minimize(oa.Objective.from_numpy(returned), X0, method=method, budget=50, **box)
    assert "must return a scalar" in str(err.value) and "numpy array" in str(err.value)


# -- 5. nfev equals the calls of the user's function ----------------------------------------
class Net(nn.Module):
    """Not a Sequential: its population evaluations loop over forward calls (vectorize off)."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.lin(x)


def _module_objective() -> tuple[oa.Objective, Net]:
    torch.manual_seed(0)
    net = Net().double()
    data = torch.randn(16, 2, dtype=torch.float64)
    target = data @ torch.tensor([[1.0], [-2.0]], dtype=torch.float64) + 0.5
    obj = oa.Objective.from_module(
        net, nn.functional.mse_loss, args=(data,), target=target, vectorize=False
    )
    return obj, net


# one method of each family: gradient, external, population, composite
FAMILIES = ["lbfgs", "nelder_mead", "cmaes", "chain"]


@pytest.mark.parametrize("method", FAMILIES)
@pytest.mark.parametrize("kind", ["numpy", "torch", "module"])
def test_nfev_equals_the_calls_of_the_users_function(kind: str, method: str) -> None:
    """A plain numpy function is called once with a tensor (which tells it from a torch
    function, and raises) before the call with numpy: that call is counted too."""
    if kind == "numpy" and method == "lbfgs":
        method = "slsqp"  # a gradient method refuses it: finite differences, every probe counted
    box = {"bounds": (-3.0, 3.0)}
    if kind == "module":
        obj, net = _module_objective()
        res = oa.minimize(obj, method=method, budget=300, seed=0, **box)
        calls = net.calls
    else:
        f = Calls(scipy_style if kind == "numpy" else torch_quadratic)
        objective = f
        if kind == "torch":  # one call per point in populations too
            objective = oa.Objective(f, backend="auto", vectorize=False)
        if kind == "numpy" and method == "slsqp":
            objective = oa.Objective.from_numpy(f, gradient="fd")
        res = oa.minimize(objective, X0, method=method, budget=300, seed=0, **box)
        calls = f.n
    assert res.nfev == calls == len(res.history)


def test_a_budget_of_one_never_makes_a_second_call() -> None:
    """With one evaluation, a numpy function's failed call with a tensor is not followed by a
    second call: the error says how to declare a numpy function."""
    f = Calls(scipy_style)
    with pytest.raises(oa.ObjectiveError, match=r"Objective\.from_numpy"):
        oa.minimize(f, X0, method="nelder_mead", budget=1)
    assert f.n == 1
    g = Calls(scipy_style)
    res = oa.minimize(g, X0, method="nelder_mead", budget=2)
    assert res.nfev == g.n == 2 and res.fun == 3.0


# -- 6. a callback that returns True stops the run, and the Result says so ------------------
@pytest.mark.parametrize("method", ["lbfgs", "nelder_mead", "cmaes", "chain", "multistart"])
def test_a_truthy_callback_stop_is_stated(method: str) -> None:
    seen = []

    def stop_at_second(info) -> bool:
        seen.append(info.nfev)
        return len(seen) >= 2

    res = oa.minimize(
        torch_quadratic, X0, method=method, bounds=(-3, 3), budget=2000, seed=0,
        callback=stop_at_second,
    )  # fmt: skip
    assert res.stop_reason is oa.StopReason.CALLBACK and "callback" in res.message
    assert len(seen) == 2 and res.nfev < 2000


@pytest.mark.parametrize("method", ["lbfgs", "nelder_mead", "cmaes", "chain"])
def test_a_callback_raising_stop_iteration_stops_the_run_as_in_scipy(method: str) -> None:
    """scipy's callbacks stop a run by raising StopIteration: the same habit works here."""
    seen = []

    def stop_at_second(info) -> None:
        seen.append(info.nfev)
        if len(seen) >= 2:
            raise StopIteration

    res = oa.minimize(
        torch_quadratic, X0, method=method, bounds=(-3, 3), budget=2000, seed=0,
        callback=stop_at_second,
    )  # fmt: skip
    assert res.stop_reason is oa.StopReason.CALLBACK and "StopIteration" in res.message
    assert len(seen) == 2 and res.nfev < 2000 and res.x is not None


def test_an_objective_converting_its_input_to_floats_gets_no_warning_from_the_probe() -> None:
    """A training objective reads its hyperparameters with float(h[0]): the first call's
    gradient-requiring tensor (the kind probe) must not make torch warn the user about it."""

    def objective(h):
        return (float(h[0]) - 1.0) ** 2 + (float(h[1]) + 2.0) ** 2

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = oa.minimize(objective, [0.0, 0.0], "nelder_mead", budget=200)
    assert res.fun < 1e-3
    assert not [w for w in caught if "requires_grad" in str(w.message)]


def test_a_torch_function_returning_a_float_is_not_tried_with_vmap() -> None:
    """A function of a tensor that returns a Python float (a training loop, ``.item()``) cannot
    be vectorized: populations evaluate it point by point without vmap's warning."""
    calls = []

    def objective(h):
        calls.append(1)
        return float(((h - 0.5) ** 2).sum())

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = oa.minimize(objective, [0.0, 0.0], "cmaes", bounds=(-2, 2), budget=200, seed=0)
    assert res.nfev == len(calls) == 200 and res.fun < 1e-3
    assert not [w for w in caught if "vectorized" in str(w.message)]
