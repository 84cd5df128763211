"""Every Result says why its run ended: a limit of the budget or the target names itself and
the evaluation that found the best value; a method's own criterion keeps its own words."""

from __future__ import annotations

import pytest
import torch

import optarena as oa
from optarena.methods import get_method_class

ALL = [i.name for i in oa.methods()]


def bumpy(x: torch.Tensor) -> torch.Tensor:
    return ((x - 0.3) ** 2).sum() + 1.0 + 0.5 * torch.sin(3 * x).sum() ** 2


def run(name: str, budget: oa.Budget | int) -> oa.Result:
    kw: dict = {"seed": 7}
    if get_method_class(name).info.requires_bounds:
        kw["bounds"] = (-2.0, 2.0)
    x0 = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    return oa.minimize(bumpy, x0, name, budget=budget, **kw)


@pytest.mark.parametrize("name", ALL)
def test_every_method_says_why_its_run_ended(name: str) -> None:
    res = run(name, 37)
    assert res.message, res.stop_reason
    if res.stop_reason.is_budget:  # the generic words, or a composite's own about its phase
        assert "budget" in res.message, res.message


@pytest.mark.parametrize("name", ["cmaes", "pso", "nelder_mead", "adam"])
def test_a_spent_budget_names_itself_and_the_best_evaluation(name: str) -> None:
    res = run(name, 37)
    assert res.stop_reason is oa.StopReason.MAX_EVALS
    assert res.message == (
        f"the budget of 37 evaluations is spent; best value found at evaluation {res.best_eval}"
    )


def test_the_target_and_the_clock_name_themselves() -> None:
    res = run("cmaes", oa.Budget(evals=5000, target=1.5))
    assert res.stop_reason is oa.StopReason.TARGET_REACHED
    assert res.message == f"the target 1.5 is reached; best value found at evaluation {res.nfev}"
    res = run("random_search", oa.Budget(seconds=0.05))
    assert res.stop_reason is oa.StopReason.MAX_SECONDS
    assert res.message.startswith("the time budget of 0.05 s is spent"), res.message


def test_gradient_budget_names_itself() -> None:
    res = run("lbfgs", oa.Budget(grad_evals=3))
    assert res.stop_reason is oa.StopReason.MAX_GRAD_EVALS
    assert res.message.startswith("the budget of 3 gradient evaluations is spent"), res.message


@pytest.mark.parametrize("name", ALL)
def test_success_only_when_converged_or_on_target(name: str) -> None:
    """scipy's meaning: a spent budget is not success (cmaes ended a Rastrigin run in a local
    minimum with success=True); the method's convergence test or the target is."""
    res = run(name, 37)
    converged = res.stop_reason in (oa.StopReason.CONVERGED, oa.StopReason.TARGET_REACHED)
    assert res.success is (converged and res.feasible), (res.stop_reason, res.message)
    on_target = run(name, oa.Budget(evals=5000, target=2.0))
    if on_target.stop_reason is oa.StopReason.TARGET_REACHED:
        assert on_target.success and on_target.fun <= 2.0


def test_a_callback_stop_is_not_success() -> None:
    x0 = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)
    res = oa.minimize(bumpy, x0, "adam", budget=100, callback=lambda info: info.nfev >= 10)
    assert res.stop_reason is oa.StopReason.CALLBACK and not res.success
