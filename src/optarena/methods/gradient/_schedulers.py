"""Learning-rate schedulers of the torch.optim family: names, keyword checks and horizons.

A scheduler is named (``"cosine"``, or a class name of ``torch.optim.lr_scheduler``) or given
as a callable optimizer -> scheduler. A named scheduler's ``scheduler_options`` are checked
against the class's keywords when the method is built (ValueError naming the option and the
keywords it takes), and the length of a schedule over the whole run (cosine's ``T_max``,
polynomial's ``total_iters``, onecycle's ``total_steps``) defaults to the run's horizon: the
number of optimizer steps its budget allows, one per gradient evaluation.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import lr_scheduler

from ...core.evaluator import Evaluator

__all__ = [
    "HORIZON_DOC",
    "SCHEDULERS",
    "SchedulerSpec",
    "build_scheduler",
    "check_scheduler",
    "needs_horizon",
    "run_horizon",
    "try_scheduler",
]

SCHEDULERS: dict[str, str] = {
    "step": "StepLR",
    "multistep": "MultiStepLR",
    "exponential": "ExponentialLR",
    "cosine": "CosineAnnealingLR",
    "cosine_warm_restarts": "CosineAnnealingWarmRestarts",
    "linear": "LinearLR",
    "constant": "ConstantLR",
    "polynomial": "PolynomialLR",
    "onecycle": "OneCycleLR",
    "plateau": "ReduceLROnPlateau",
}

#: the keyword of each scheduler class that is the length of the whole schedule
_HORIZON: dict[str, str] = {
    "CosineAnnealingLR": "T_max",
    "PolynomialLR": "total_iters",
    "OneCycleLR": "total_steps",
}

HORIZON_DOC = (
    "keyword arguments of the scheduler; when not given, cosine's T_max, polynomial's "
    "total_iters and onecycle's total_steps are the number of optimizer steps the evaluation "
    "budget allows (one per gradient evaluation), onecycle's max_lr is lr"
)

SchedulerSpec = str | Callable[[torch.optim.Optimizer], Any] | None


def _class(spec: str) -> type:
    """The scheduler class a name stands for (ValueError for an unknown name)."""
    cls = getattr(lr_scheduler, SCHEDULERS.get(spec.lower(), spec), None)
    kinds = (lr_scheduler.LRScheduler, lr_scheduler.ReduceLROnPlateau)
    if not isinstance(cls, type) or not issubclass(cls, kinds):
        raise ValueError(
            f"unknown scheduler {spec!r}; use one of {sorted(SCHEDULERS)}, a class name of "
            "torch.optim.lr_scheduler, or a callable optimizer -> scheduler"
        )
    return cls


def _keywords(cls: type) -> tuple[list[str], list[str]] | None:
    """(all keywords, required keywords) of a scheduler class after the optimizer; None when
    it takes arbitrary keywords."""
    params = list(inspect.signature(cls).parameters.values())[1:]  # after the optimizer
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    names = [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    return names, [n for n in required if n in names]


def _filled(cls: type, options: Mapping[str, Any]) -> set[str]:
    """The keywords of ``cls`` the run fills when the user leaves them out."""
    name = cls.__name__
    out = set()
    if name in _HORIZON:
        length = _HORIZON[name]
        if name != "OneCycleLR" or "epochs" not in options:
            out.add(length)
    if name == "OneCycleLR":
        out.add("max_lr")
    return out - set(options)


def needs_horizon(spec: SchedulerSpec, options: Mapping[str, Any]) -> bool:
    """True when the named scheduler's length comes from the run's horizon."""
    if not isinstance(spec, str):
        return False
    cls = _class(spec)
    return _HORIZON.get(cls.__name__) in _filled(cls, options)


def check_scheduler(spec: SchedulerSpec, options: Mapping[str, Any]) -> None:
    """ValueError for an unknown scheduler name, options without a scheduler, or options the
    named scheduler does not take or misses."""
    if spec is None:
        if options:
            raise ValueError("scheduler_options given without a scheduler")
        return
    if callable(spec):
        return
    if not isinstance(spec, str):
        raise TypeError(f"scheduler must be a name, a callable or None, got {type(spec).__name__}")
    cls = _class(spec)
    keywords = _keywords(cls)
    if keywords is None:
        return
    names, required = keywords
    where = f"scheduler {spec!r} (torch.optim.lr_scheduler.{cls.__name__})"
    unknown = [k for k in options if k not in names]
    if unknown:
        raise ValueError(
            f"scheduler_options={dict(options)!r} is not accepted: {where} takes no keyword "
            f"{', '.join(repr(k) for k in unknown)}; it takes {', '.join(names)}"
        )
    missing = [k for k in required if k not in options and k not in _filled(cls, options)]
    if missing:
        raise ValueError(
            f"scheduler_options={dict(options)!r} is not accepted: {where} needs "
            f"{', '.join(missing)} (for example scheduler_options={{{missing[0]!r}: ...}}); "
            f"it takes {', '.join(names)}"
        )


def run_horizon(evaluator: Evaluator) -> int | None:
    """The number of optimizer steps (one gradient evaluation each) the budget allows from
    now on; None when neither evaluations nor gradient evaluations are limited."""
    limits = []
    left = evaluator.remaining_evals()
    if left is not None:
        limits.append(left)
    grads = evaluator.budget.grad_evals
    if grads is not None:
        limits.append(grads - evaluator.ngev)
    return max(1, min(limits)) if limits else None


def build_scheduler(
    spec: SchedulerSpec,
    options: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    horizon: int | None,
) -> Any:
    """The scheduler of ``optimizer`` (None without one), with the run's ``horizon`` and
    learning rate filling what the user left out; a value torch refuses raises ValueError
    naming ``scheduler_options``."""
    if spec is None:
        return None
    if callable(spec):
        return spec(optimizer)
    cls = _class(spec)
    kw = dict(options)
    fill = _filled(cls, options)
    length = _HORIZON.get(cls.__name__)
    if length in fill:
        if horizon is None:
            raise ValueError(
                f"scheduler {spec!r} needs {length}, the length of the schedule: give "
                f"scheduler_options={{{length!r}: N}} or a budget of evaluations (its default "
                "is the number of optimizer steps the budget allows)"
            )
        kw[length] = horizon
    if "max_lr" in fill:
        kw["max_lr"] = optimizer.defaults["lr"]
    if cls.__name__ == "OneCycleLR" and "cycle_momentum" not in kw:
        kw["cycle_momentum"] = any(k in optimizer.defaults for k in ("momentum", "betas"))
    try:
        return cls(optimizer, **kw)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(
            f"scheduler_options={dict(options)!r} is not accepted by scheduler {spec!r} "
            f"(torch.optim.lr_scheduler.{cls.__name__}): {exc}"
        ) from exc


def try_scheduler(
    spec: SchedulerSpec, options: Mapping[str, Any], optimizer: torch.optim.Optimizer
) -> None:
    """Build a named scheduler on a throwaway ``optimizer`` and step it once, so that values
    torch refuses only when stepping raise ValueError before the run (callables are left
    alone: calling them may have effects)."""
    if not isinstance(spec, str):
        return
    sched = build_scheduler(spec, options, optimizer, horizon=100)
    try:
        with warnings.catch_warnings():  # "scheduler stepped before the optimizer": on purpose
            warnings.simplefilter("ignore", UserWarning)
            if isinstance(sched, lr_scheduler.ReduceLROnPlateau):
                sched.step(0.0)
            else:
                sched.step()
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise ValueError(
            f"scheduler_options={dict(options)!r} is not accepted by scheduler {spec!r} "
            f"(torch.optim.lr_scheduler.{type(sched).__name__}): {exc}"
        ) from exc
