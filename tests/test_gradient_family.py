"""Checkpoints and declared options, checked for every method the registry lists.

Methods are selected by capability (``checkpointable``, family), never by name: a method whose
run state is plain tensors resumes from a checkpoint exactly as the uninterrupted run goes on;
``resume=`` is refused clearly for the others; gradient methods declare every option.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import optarena as oa
from optarena.methods import Checkpoint, get_method_class
from optarena.methods._params import bad_values, declared_params

F64 = torch.float64
BOX = (-3.0, 3.0)
INFOS = {i.name: i for i in oa.methods()}
CHECKPOINTABLE = sorted(n for n in INFOS if get_method_class(n).checkpointable)
NOT_CHECKPOINTABLE = sorted(n for n in INFOS if not get_method_class(n).checkpointable)
GRADIENT = sorted(n for n, i in INFOS.items() if i.family == "gradient")
CASES = [
    (name, bounded)
    for name in CHECKPOINTABLE
    for bounded in (False, True)
    if (bounded or not INFOS[name].requires_bounds) and (not bounded or INFOS[name].supports_bounds)
]


def fn(x: torch.Tensor) -> torch.Tensor:
    """Smooth, multimodal, minimum off-centre; one value per call (autograd gradient)."""
    return ((x - 0.7) ** 2).sum() + 0.3 * torch.sin(5 * x).sum()


def x0() -> torch.Tensor:
    return torch.tensor([1.0, -2.0, 0.5, 2.5], dtype=F64)


def options(name: str) -> dict:
    # learning rates that move within a few steps, outer steps of L-BFGS that do not converge
    # at once; the other options keep their defaults
    if name == "lbfgs":
        return {"max_iter": 2}
    return {"lr": 0.05} if name in GRADIENT else {}


def run(name: str, bounded: bool, budget: int, **kw) -> oa.Result:
    box = {"bounds": BOX} if bounded else {}
    return oa.minimize(fn, x0(), name, budget=budget, seed=5, **box, **options(name), **kw)


@pytest.mark.parametrize(("name", "bounded"), CASES)
def test_resume_continues_exactly_as_the_uninterrupted_run(name: str, bounded: bool) -> None:
    saved: dict[str, tuple[Checkpoint, int]] = {}

    def keep(info: oa.IterationInfo) -> None:
        assert info.checkpoint is not None, f"{name} is checkpointable: callbacks carry one"
        if info.iteration == 3:
            saved["cp"] = (info.checkpoint, info.nfev)

    budget = 400
    full = run(name, bounded, budget, callback=keep)
    assert "cp" in saved, f"{name} ended before its third iteration ({full.stop_reason})"
    cp, done = saved["cp"]
    assert cp.method == name and cp.iteration == 3
    resumed = run(name, bounded, budget - done, resume=cp)
    assert resumed.nfev == full.nfev - done
    assert resumed.stop_reason == full.stop_reason
    np.testing.assert_array_equal(resumed.history.f, full.history.f[done:])
    np.testing.assert_array_equal(resumed.history.x, full.history.x[done:])
    # resuming twice from the same checkpoint gives the same run: the checkpoint is not consumed
    again = run(name, bounded, budget - done, resume=cp)
    np.testing.assert_array_equal(again.history.f, resumed.history.f)


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("sgd", {"momentum": 0.9, "scheduler": "step", "scheduler_options": {"step_size": 2}}),
        ("adam", {"scheduler": "plateau", "scheduler_options": {"patience": 1}}),
        (
            "rmsprop",
            {
                "centered": True,
                "momentum": 0.5,
                "scheduler": "cosine",
                "scheduler_options": {"T_max": 7},
            },
        ),
        ("lbfgs", {"line_search": "strong_wolfe", "history_size": 3, "max_iter": 2}),
        ("lbfgs", {"max_iter": 2, "history_size": 2, "bounds": (-2.0, 2.5)}),
    ],
)
def test_resume_keeps_schedulers_and_curvature(name: str, kw: dict) -> None:
    kw = {"lr": 0.05, **kw} if name != "lbfgs" else kw
    cps: list[tuple[Checkpoint, int]] = []

    def keep(info: oa.IterationInfo) -> None:
        if info.iteration == 5:
            assert info.checkpoint is not None
            cps.append((info.checkpoint, info.nfev))

    full = oa.minimize(fn, x0(), name, budget=300, callback=keep, **kw)
    ((cp, done),) = cps
    resumed = oa.minimize(fn, x0(), name, budget=300 - done, resume=cp, **kw)
    np.testing.assert_array_equal(resumed.history.f, full.history.f[done:])


def a_checkpoint() -> Checkpoint:
    cps: list[Checkpoint] = []
    oa.minimize(fn, x0(), "gd", budget=5, callback=lambda i: cps.append(i.checkpoint))
    return cps[0]


@pytest.mark.parametrize("name", NOT_CHECKPOINTABLE)
def test_resume_is_refused_for_methods_that_cannot_checkpoint(name: str) -> None:
    box = {"bounds": BOX} if INFOS[name].requires_bounds else {}
    with pytest.raises(TypeError, match="cannot resume") as err:
        oa.minimize(fn, x0(), name, budget=50, resume=a_checkpoint(), **box)
    assert "gd" in str(err.value) and "adam" in str(err.value)  # says which methods can


def test_resume_refuses_another_methods_checkpoint_and_other_objects() -> None:
    with pytest.raises(ValueError, match="checkpoint of method 'gd'"):
        oa.minimize(fn, x0(), "adam", budget=50, resume=a_checkpoint())
    with pytest.raises(TypeError, match="takes a Checkpoint"):
        oa.minimize(fn, x0(), "adam", budget=50, resume={"state": 1})  # type: ignore[arg-type]


def test_no_checkpoint_is_built_without_a_callback_and_non_checkpointable_get_none() -> None:
    seen: list[object] = []
    oa.minimize(fn, x0(), "slsqp", budget=30, callback=lambda i: seen.append(i.checkpoint))
    assert seen and all(c is None for c in seen)


# -- declared options ------------------------------------------------------------------------
@pytest.mark.parametrize("name", GRADIENT)
def test_gradient_methods_declare_every_option(name: str) -> None:
    import dataclasses

    cls = get_method_class(name)
    declared = {p.name for p in declared_params(cls)}
    fields = {f.name for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    assert declared == fields
    assert all(p.doc for p in declared_params(cls)), "every option says what it means"
    assert "__post_init__" not in cls.__dict__, "cross-option rules go in validate()"


@pytest.mark.parametrize(
    ("name", "option", "value"),
    [
        (name, p.name, bad)
        for name in GRADIENT
        for p in declared_params(get_method_class(name))
        for bad in bad_values(p)
    ],
)
def test_bad_declared_values_are_refused_naming_the_option(name, option, value) -> None:
    with pytest.raises(ValueError, match=option):
        get_method_class(name)(**{option: value})


def test_cross_option_rules_and_ranges_beyond_the_declarations() -> None:
    cls = get_method_class
    with pytest.raises(ValueError, match="nesterov"):
        cls("sgd")(nesterov=True)
    with pytest.raises(ValueError, match="lr"):
        cls("gd")(lr=float("inf"))
    with pytest.raises(ValueError, match="betas"):
        cls("adam")(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="scheduler_options given without a scheduler"):
        cls("adam")(scheduler_options={"gamma": 0.5})
    assert cls("sgd")(momentum=0.9, nesterov=True).nesterov
    assert cls("lbfgs")().lr == 1.0 and cls("rmsprop")().lr == 1e-2  # defaults kept


# -- rebase ----------------------------------------------------------------------------------
def test_rebase_recomputes_what_the_box_state_caches() -> None:
    from optarena.core.oracle import Oracle
    from optarena.methods import RunContext
    from optarena.methods.gradient.lbfgs import LBFGS

    lo, hi = torch.full((4,), -3.0, dtype=F64), torch.full((4,), 3.0, dtype=F64)
    ctx = RunContext(x0=x0(), lower=lo, upper=hi, constraints=(), seed=0)
    method = LBFGS()
    first = Oracle(oa.Objective(fn), x0(), oa.Budget(100), box=(lo, hi))
    state = method.init(x0(), first, ctx)
    method.step(state, first, ctx)

    def other(x: torch.Tensor) -> torch.Tensor:
        return fn(x) + (x**2).sum()

    second = Oracle(oa.Objective(other), x0(), oa.Budget(100), box=(lo, hi))
    method.rebase(state, second)
    x = state.x.clone().requires_grad_(True)
    value = other(x)
    (grad,) = torch.autograd.grad(value, x)
    assert state.f == pytest.approx(float(value.detach()), rel=1e-15)
    torch.testing.assert_close(state.g, grad)
    assert second.nfev == 1
