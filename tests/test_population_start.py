"""A population run on a module's parameters evaluates their current values first: the Result
is never a network worse than the one the user started from (the population is drawn around
the start and never contains it), and a run that found nothing better says why."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import optarena as oa
from optarena.methods import PopulationMethod, method_infos, resolve_method


def _net_objective() -> oa.Objective:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    y = (X[:, :2].sum(1) > 0).long()
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    return oa.Objective.from_module(net, nn.functional.cross_entropy, args=(X,), target=y)


def _population_methods_with_sigma0() -> list[str]:
    out = []
    for info in method_infos():
        meth = resolve_method(info.name, {})
        if isinstance(meth, PopulationMethod) and hasattr(meth, "sigma0") and not info.needs_grad:
            out.append(info.name)
    return out


@pytest.mark.parametrize("method", _population_methods_with_sigma0())
def test_a_run_from_a_modules_weights_is_never_worse_than_them(method: str) -> None:
    obj = _net_objective()
    x0 = obj.default_x0
    assert x0 is not None
    f0 = float(obj.fn(x0))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        # a step far too large for weights of scale 0.3: every candidate is worse than x0
        res = oa.minimize(obj, method=method, budget=30, seed=0, sigma0=50.0)
    assert res.nfev <= 30
    assert res.fun <= f0 + 1e-12
    assert res.history.f[0] == pytest.approx(f0)  # the start is the first evaluation
    if res.best_eval == 1:
        assert any(
            "nothing better than the module's current weights" in str(w.message) for w in seen
        )


def test_a_plain_function_run_is_unchanged_by_this() -> None:
    """Only module objectives get the extra evaluation (x0 of a function is a guess)."""
    res = oa.minimize(lambda x: ((x - 1) ** 2).sum(), torch.zeros(4), "cmaes", budget=40, seed=0)
    assert res.history.f[0] != pytest.approx(4.0)  # x0 (value 4) was not evaluated
