"""What a new user of the gradient family runs into: learning-rate schedulers by name (their
horizon from the budget, their options checked), ``lbfgs``'s line search inside a box, and
the option listings.

The references are torch.optim training loops and scipy's L-BFGS-B, run in this process.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize as scipy_minimize
from torch.optim import lr_scheduler

import optarena as oa
from optarena.methods import Checkpoint
from optarena.methods.gradient._schedulers import SCHEDULERS
from optarena.methods.gradient._wolfe import segment_wolfe

F64 = torch.float64
NAMES = sorted(SCHEDULERS)
#: the keyword that is the length of the whole schedule, per name
HORIZON = {"cosine": "T_max", "polynomial": "total_iters", "onecycle": "total_steps"}


def sphere(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum()


def bumpy(x: torch.Tensor) -> torch.Tensor:
    return ((x - 0.7) ** 2).sum() + 0.3 * torch.sin(5 * x).sum()


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return 100 * (x[1] - x[0] ** 2) ** 2 + (1 - x[0]) ** 2


def keywords(name: str) -> list[str]:
    """The keywords the scheduler class of ``name`` takes after the optimizer."""
    cls = getattr(lr_scheduler, SCHEDULERS[name])
    return list(inspect.signature(cls).parameters)[1:]


def required(name: str) -> list[str]:
    cls = getattr(lr_scheduler, SCHEDULERS[name])
    params = list(inspect.signature(cls).parameters.values())[1:]
    return [p.name for p in params if p.default is inspect.Parameter.empty]


# -- schedulers by name ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_named_scheduler_without_options_runs_or_says_what_it_needs(name: str) -> None:
    """The horizon schedulers run on the budget's length; the others run on torch's defaults
    or raise the library's ValueError naming the option and the keyword they miss."""
    missing = [k for k in required(name) if k not in HORIZON.get(name, "") and k != "max_lr"]
    call = {"lr": 0.05, "scheduler": name, "budget": 30}
    if not missing:
        r = oa.minimize(sphere, torch.ones(3, dtype=F64), "sgd", **call)
        assert r.nfev == 30 and math.isfinite(r.fun)
        return
    with pytest.raises(ValueError, match="scheduler_options") as err:
        oa.minimize(sphere, torch.ones(3, dtype=F64), "sgd", **call)
    assert all(k in str(err.value) for k in missing)


@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_scheduler_keyword_names_it_and_what_is_taken(name: str) -> None:
    with pytest.raises(ValueError, match="scheduler_options") as err:
        oa.minimize(
            sphere,
            torch.ones(3, dtype=F64),
            "adam",
            scheduler=name,
            scheduler_options={"tmax": 50},
            budget=20,
        )
    text = str(err.value)
    assert "'tmax'" in text and all(k in text for k in keywords(name))


@pytest.mark.parametrize("name", sorted(HORIZON))
@pytest.mark.parametrize("method", ["sgd", "adam"])
def test_the_horizon_is_the_number_of_steps_the_budget_allows(name: str, method: str) -> None:
    """Same run as torch's training loop with the schedule's length set to the budget."""
    budget, lr = 40, 0.05
    r = oa.minimize(bumpy, torch.ones(3, dtype=F64), method, lr=lr, scheduler=name, budget=budget)

    x = torch.ones(3, dtype=F64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr) if method == "sgd" else torch.optim.Adam([x], lr=lr)
    kw = {HORIZON[name]: budget, **({"max_lr": lr} if name == "onecycle" else {})}
    sched = getattr(lr_scheduler, SCHEDULERS[name])(opt, **kw)
    losses = []
    for _ in range(budget):
        opt.zero_grad()
        loss = bumpy(x)
        loss.backward()
        losses.append(loss.item())
        opt.step()
        sched.step()
    np.testing.assert_array_equal(r.history.f, losses)
    # the user's own horizon is kept
    short = oa.minimize(
        bumpy,
        torch.ones(3, dtype=F64),
        method,
        lr=lr,
        scheduler=name,
        scheduler_options={HORIZON[name]: budget, **({"max_lr": lr} if name == "onecycle" else {})},
        budget=budget,
    )
    np.testing.assert_array_equal(short.history.f, losses)


@pytest.mark.parametrize("name", sorted(HORIZON))
def test_a_horizon_scheduler_without_an_evaluation_budget_asks_for_its_length(name: str) -> None:
    with pytest.raises(ValueError, match=HORIZON[name]):
        oa.minimize(
            sphere, torch.ones(3), "sgd", lr=0.05, scheduler=name, budget=oa.Budget(seconds=5.0)
        )


@pytest.mark.parametrize(
    ("name", "options"),
    [("cosine", {"T_max": 0}), ("cosine", {"eta_min": "low"}), ("step", {"step_size": "2"})],
)
def test_a_scheduler_value_torch_refuses_is_refused_before_the_run(name: str, options) -> None:
    seen: list[int] = []
    with pytest.raises(ValueError, match="scheduler_options"):
        oa.minimize(
            sphere,
            torch.ones(3),
            "sgd",
            scheduler=name,
            scheduler_options=options,
            budget=10,
            callback=lambda info: seen.append(info.nfev),
        )
    assert seen == []


@pytest.mark.parametrize("name", sorted(HORIZON))
def test_resume_keeps_the_horizon_of_the_first_run(name: str) -> None:
    cps: list[tuple[Checkpoint, int]] = []

    def keep(info: oa.IterationInfo) -> None:
        if info.iteration == 5:
            cps.append((info.checkpoint, info.nfev))

    kw = {"lr": 0.05, "momentum": 0.5, "scheduler": name}
    full = oa.minimize(bumpy, torch.ones(3, dtype=F64), "sgd", budget=60, callback=keep, **kw)
    ((cp, done),) = cps
    resumed = oa.minimize(bumpy, torch.ones(3, dtype=F64), "sgd", budget=60 - done, resume=cp, **kw)
    np.testing.assert_array_equal(resumed.history.f, full.history.f[done:])


# -- lbfgs in a box: the line search is honoured ------------------------------------------


def boxed(line_search: str | None, lower, upper, x0, budget: int = 300) -> oa.Result:
    x = torch.tensor(x0, dtype=F64)
    return oa.minimize(
        rosenbrock, x, "lbfgs", line_search=line_search, bounds=(lower, upper), budget=budget
    )


def test_lbfgs_line_search_changes_a_bounded_run() -> None:
    plain = boxed(None, -3.0, 3.0, [-1.0, 1.0], budget=200)
    wolfe = boxed("strong_wolfe", -3.0, 3.0, [-1.0, 1.0], budget=200)
    assert not np.array_equal(plain.history.x, wolfe.history.x)
    for r in (plain, wolfe):
        assert r.fun < 1e-9


@pytest.mark.parametrize("x0", [[-1.0, 0.4], [2.5, -2.0], [0.0, 0.0]])
def test_lbfgs_strong_wolfe_in_a_box_finds_lbfgsb_minimum_and_stays_inside(x0) -> None:
    lower = torch.tensor([-3.0, -3.0], dtype=F64)
    upper = torch.tensor([3.0, 0.5], dtype=F64)  # the minimum lies on the wall x1 = 0.5
    r = boxed("strong_wolfe", lower, upper, x0)
    ref = scipy_minimize(
        lambda v: float(rosenbrock(torch.tensor(v))),
        x0,
        method="L-BFGS-B",
        bounds=list(zip(lower.tolist(), upper.tolist(), strict=True)),
        tol=1e-14,
    )
    assert r.fun == pytest.approx(ref.fun, rel=1e-7, abs=1e-10)
    X = torch.tensor(np.array(r.history.x))
    assert bool(((lower <= X) & (upper >= X)).all())


def test_lbfgs_strong_wolfe_in_a_box_resumes_exactly() -> None:
    cps: list[tuple[Checkpoint, int]] = []

    def keep(info: oa.IterationInfo) -> None:
        if info.iteration == 4:
            cps.append((info.checkpoint, info.nfev))

    kw = {"line_search": "strong_wolfe", "bounds": (-2.0, 2.5), "history_size": 3}
    full = oa.minimize(bumpy, torch.ones(4, dtype=F64), "lbfgs", budget=200, callback=keep, **kw)
    ((cp, done),) = cps
    resumed = oa.minimize(
        bumpy, torch.ones(4, dtype=F64), "lbfgs", budget=200 - done, resume=cp, **kw
    )
    np.testing.assert_array_equal(resumed.history.f, full.history.f[done:])


def test_segment_wolfe_meets_strong_wolfe_or_stops_at_the_wall() -> None:
    """On phi(t) = (t - 100)^2 - 10^4 the slope barely changes: from t = 1 the search
    extrapolates until the slope has dropped enough; with the wall at t = 5 it stops there
    (the value still decreases enough) and never evaluates beyond it."""
    calls: list[float] = []

    def phi(t: float) -> tuple[float, float]:
        calls.append(t)
        return (t - 100.0) ** 2 - 1e4, 2.0 * (t - 100.0)

    t = segment_wolfe(phi, 1.0, math.inf, 0.0, -200.0, 1.0, 1e-12)
    f, s = phi(t)
    assert t > 1.0 and f <= 1e-4 * t * -200.0 and abs(s) <= 0.9 * 200.0
    calls.clear()
    assert segment_wolfe(phi, 1.0, 5.0, 0.0, -200.0, 1.0, 1e-12) == 5.0
    assert max(calls) == 5.0


# -- option listings ---------------------------------------------------------------------


def test_no_option_listing_says_none_twice() -> None:
    for info in oa.methods():
        for p in info.options:
            text = p.constraint()
            assert text.count("None") <= 1, f"{info.name}.{p.name}: {text!r}"


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_lbfgs_in_a_box_refuses_half_precision_before_evaluating(dtype: torch.dtype) -> None:
    """Was torch's raw NotImplementedError ("triangular_solve_cpu" not implemented for
    'Half') in the middle of the run."""
    calls: list[int] = []

    def f(x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return ((x - 0.3) ** 2).sum()

    with pytest.raises(ValueError, match=r"float32 or float64 .* x0\.float\(\)"):
        oa.minimize(f, torch.zeros(3, dtype=dtype), "lbfgs", bounds=(-1, 1), budget=20)
    assert calls == []
    assert oa.minimize(f, torch.zeros(3, dtype=dtype), "lbfgs", budget=20).nfev > 0  # no box
