"""The torch.optim family: sgd, adam, adamw, rmsprop, adagrad, adadelta.

Each step is exactly the training-loop step users know (one forward+backward, then
``optimizer.step()``), so a run follows torch.optim's trajectory bit for bit. Box bounds are
kept by projecting the iterate after every step; optional learning-rate schedulers step once
per optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import lr_scheduler

from ...core.oracle import Oracle
from .._base import GradientMethod, RunContext
from .._registry import register

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "RMSprop"]

_SCHEDULERS: dict[str, str] = {
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

SchedulerSpec = str | Callable[[torch.optim.Optimizer], Any] | None


def warm_up_torch_optim() -> None:
    """Import what torch.optim's first ``step()`` imports lazily (about a second of
    ``torch._dynamo``), before the run's clock starts, so it never counts as run time."""
    import torch._dynamo  # noqa: F401


def _scheduler_factory(
    spec: SchedulerSpec, options: Mapping[str, Any]
) -> Callable[[torch.optim.Optimizer], Any] | None:
    if spec is None:
        if options:
            raise ValueError("scheduler_options given without a scheduler")
        return None
    if callable(spec):
        return spec
    if isinstance(spec, str):
        cls_name = _SCHEDULERS.get(spec.lower(), spec)
        cls = getattr(lr_scheduler, cls_name, None)
        if not isinstance(cls, type):
            raise ValueError(
                f"unknown scheduler {spec!r}; use one of {sorted(_SCHEDULERS)}, a class name of "
                "torch.optim.lr_scheduler, or a callable optimizer -> scheduler"
            )
        return lambda opt: cls(opt, **dict(options))
    raise TypeError(f"scheduler must be a name, a callable or None, got {type(spec).__name__}")


@dataclass
class TorchOptimState:
    """Run state: the iterate (a leaf tensor), the torch optimizer and its scheduler."""

    x: torch.Tensor
    optimizer: torch.optim.Optimizer
    scheduler: Any
    steps: int = 0


@dataclass(frozen=True)
class _TorchOptim(GradientMethod):
    """Shared options: learning rate, scheduler and a gradient tolerance."""

    lr: float = 1e-3
    scheduler: SchedulerSpec = None
    scheduler_options: Mapping[str, Any] = field(default_factory=dict)
    gtol: float = 0.0

    def __post_init__(self) -> None:
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if not (self.gtol >= 0):
            raise ValueError(f"gtol must be >= 0, got {self.gtol!r}")
        _scheduler_factory(self.scheduler, self.scheduler_options)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def check(self, ctx: RunContext, oracle: Oracle) -> None:
        warm_up_torch_optim()

    def init(self, x0: torch.Tensor, oracle: Oracle, ctx: RunContext) -> TorchOptimState:
        x = x0.detach().clone().requires_grad_(True)
        opt = self._optimizer([x])
        factory = _scheduler_factory(self.scheduler, self.scheduler_options)
        sched = factory(opt) if factory is not None else None
        return TorchOptimState(x=x, optimizer=opt, scheduler=sched)

    def step(self, state: TorchOptimState, oracle: Oracle, ctx: RunContext) -> bool:
        f, g = oracle.value_and_grad(state.x)
        if float(g.abs().max()) <= self.gtol:
            return True
        state.optimizer.zero_grad(set_to_none=True)
        state.x.grad = g.clone()
        state.optimizer.step()
        if state.scheduler is not None:
            if isinstance(state.scheduler, lr_scheduler.ReduceLROnPlateau):
                state.scheduler.step(f)
            else:
                state.scheduler.step()
        if ctx.bounded:
            with torch.no_grad():
                state.x.copy_(ctx.project(state.x))
        state.steps += 1
        return False


def _check_nonneg(**kw: float) -> None:
    for k, v in kw.items():
        if not (isinstance(v, int | float) and v >= 0):
            raise ValueError(f"{k} must be >= 0, got {v!r}")


def _check_betas(betas: tuple[float, float]) -> None:
    if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
        raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")


@register("sgd", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class SGD(_TorchOptim):
    """Stochastic gradient descent (torch.optim.SGD) with optional (Nesterov) momentum."""

    lr: float = 1e-3
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nonneg(
            momentum=self.momentum, dampening=self.dampening, weight_decay=self.weight_decay
        )
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            params,
            lr=self.lr,
            momentum=self.momentum,
            dampening=self.dampening,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
        )


@register("adam", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class Adam(_TorchOptim):
    """Adam (torch.optim.Adam), optionally AMSGrad."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_betas(self.betas)
        _check_nonneg(eps=self.eps, weight_decay=self.weight_decay)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            params,
            lr=self.lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            amsgrad=self.amsgrad,
        )


@register("adamw", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class AdamW(_TorchOptim):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay."""

    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-2
    amsgrad: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_betas(self.betas)
        _check_nonneg(eps=self.eps, weight_decay=self.weight_decay)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.AdamW(
            params,
            lr=self.lr,
            betas=self.betas,
            eps=self.eps,
            weight_decay=self.weight_decay,
            amsgrad=self.amsgrad,
        )


@register("rmsprop", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class RMSprop(_TorchOptim):
    """RMSprop (torch.optim.RMSprop)."""

    lr: float = 1e-2
    alpha: float = 0.99
    eps: float = 1e-8
    weight_decay: float = 0.0
    momentum: float = 0.0
    centered: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha!r}")
        _check_nonneg(eps=self.eps, weight_decay=self.weight_decay, momentum=self.momentum)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(
            params,
            lr=self.lr,
            alpha=self.alpha,
            eps=self.eps,
            weight_decay=self.weight_decay,
            momentum=self.momentum,
            centered=self.centered,
        )


@register("adagrad", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class Adagrad(_TorchOptim):
    """Adagrad (torch.optim.Adagrad)."""

    lr: float = 1e-2
    lr_decay: float = 0.0
    weight_decay: float = 0.0
    initial_accumulator_value: float = 0.0
    eps: float = 1e-10

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_nonneg(
            lr_decay=self.lr_decay,
            weight_decay=self.weight_decay,
            eps=self.eps,
            initial_accumulator_value=self.initial_accumulator_value,
        )

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adagrad(
            params,
            lr=self.lr,
            lr_decay=self.lr_decay,
            weight_decay=self.weight_decay,
            initial_accumulator_value=self.initial_accumulator_value,
            eps=self.eps,
        )


@register("adadelta", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class Adadelta(_TorchOptim):
    """Adadelta (torch.optim.Adadelta)."""

    lr: float = 1.0
    rho: float = 0.9
    eps: float = 1e-6
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], got {self.rho!r}")
        _check_nonneg(eps=self.eps, weight_decay=self.weight_decay)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adadelta(
            params, lr=self.lr, rho=self.rho, eps=self.eps, weight_decay=self.weight_decay
        )
