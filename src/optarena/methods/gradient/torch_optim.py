"""The torch.optim family: sgd, adam, adamw, rmsprop, adagrad, adadelta.

Each step is exactly the training-loop step users know (one forward+backward, then
``optimizer.step()``), so a run follows torch.optim's trajectory bit for bit. Box bounds are
kept by projecting the iterate after every step; optional learning-rate schedulers step once
per optimizer step. The run state (iterate, optimizer and scheduler ``state_dict()``) is plain
tensors and numbers, so runs can be checkpointed and resumed exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch.optim import lr_scheduler

from ...core.evaluator import Evaluator
from .._base import GradientMethod, RunContext
from .._params import param
from .._registry import register
from ._torch import leaf, load_optimizer, save_optimizer, two_betas, warm_up_torch_optim

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


def _mapping(value: Any) -> str | None:
    return None if isinstance(value, Mapping) else "must be a mapping of keyword arguments"


def _scheduler_spec(value: Any) -> str | None:
    ok = value is None or isinstance(value, str) or callable(value)
    return None if ok else "must be a scheduler name, a callable or None"


@dataclass(frozen=True)
class _TorchOptim(GradientMethod):
    """Shared options: learning rate, scheduler and a gradient tolerance."""

    checkpointable: ClassVar[bool] = True

    lr: float = param(1e-3, "learning rate", gt=0)
    scheduler: str | Callable[[torch.optim.Optimizer], Any] | None = param(  # noqa: RUF009 (a declared option is a field)
        None,
        "learning-rate scheduler, stepped once per optimizer step",
        check=_scheduler_spec,
        accepts=f"one of {', '.join(_SCHEDULERS)}, a torch.optim.lr_scheduler class name, a "
        "callable optimizer -> scheduler, or None",
    )
    scheduler_options: Mapping[str, Any] = param(
        {}, "keyword arguments of the scheduler", check=_mapping, accepts="a mapping"
    )
    gtol: float = param(0.0, "stop when the largest gradient entry is at most this", ge=0)

    def validate(self) -> None:
        _scheduler_factory(self.scheduler, self.scheduler_options)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        warm_up_torch_optim()

    def _build(self, x: torch.Tensor) -> tuple[torch.optim.Optimizer, Any]:
        opt = self._optimizer([x])
        factory = _scheduler_factory(self.scheduler, self.scheduler_options)
        return opt, factory(opt) if factory is not None else None

    def init(self, x0: torch.Tensor, oracle: Evaluator, ctx: RunContext) -> TorchOptimState:
        x = leaf(x0)
        opt, sched = self._build(x)
        return TorchOptimState(x=x, optimizer=opt, scheduler=sched)

    def step(self, state: TorchOptimState, oracle: Evaluator, ctx: RunContext) -> bool:
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

    def save_state(self, state: TorchOptimState) -> dict[str, Any]:
        sched = state.scheduler
        return {
            "x": state.x.detach().clone(),
            "optimizer": save_optimizer(state.optimizer),
            "scheduler": None if sched is None else copy.deepcopy(sched.state_dict()),
            "steps": state.steps,
        }

    def load_state(self, saved: dict[str, Any], ctx: RunContext) -> TorchOptimState:
        x = leaf(saved["x"])
        opt, sched = self._build(x)  # the scheduler sets its initial rates, then both load
        load_optimizer(opt, saved["optimizer"])
        if sched is not None and saved["scheduler"] is not None:
            sched.load_state_dict(copy.deepcopy(saved["scheduler"]))
        return TorchOptimState(x=x, optimizer=opt, scheduler=sched, steps=saved["steps"])


_WD = "weight decay (L2 penalty added to the gradient)"


@register("sgd", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class SGD(_TorchOptim):
    """Stochastic gradient descent (torch.optim.SGD) with optional (Nesterov) momentum."""

    lr: float = param(1e-3, "learning rate", gt=0)
    momentum: float = param(0.0, "momentum factor", ge=0)
    dampening: float = param(0.0, "dampening of the momentum", ge=0)
    weight_decay: float = param(0.0, _WD, ge=0)
    nesterov: bool = param(False, "Nesterov momentum (needs momentum > 0, dampening = 0)")

    def validate(self) -> None:
        super().validate()
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True is not accepted with momentum={self.momentum!r} and "
                f"dampening={self.dampening!r}: nesterov momentum needs momentum > 0 and "
                "dampening = 0"
            )

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            params,
            lr=self.lr,
            momentum=self.momentum,
            dampening=self.dampening,
            weight_decay=self.weight_decay,
            nesterov=self.nesterov,
        )


_BETAS = "decay rates of the first and second moment estimates"


@register("adam", family="gradient", needs_grad=True, supports_bounds=True)
@dataclass(frozen=True)
class Adam(_TorchOptim):
    """Adam (torch.optim.Adam), optionally AMSGrad."""

    lr: float = param(1e-3, "learning rate", gt=0)
    betas: tuple[float, float] = param(
        (0.9, 0.999), _BETAS, check=two_betas, accepts="two numbers in [0, 1)"
    )
    eps: float = param(1e-8, "added to the denominator for stability", ge=0)
    weight_decay: float = param(0.0, _WD, ge=0)
    amsgrad: bool = param(False, "use the AMSGrad variant")

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
class AdamW(Adam):
    """AdamW (torch.optim.AdamW): Adam with decoupled weight decay."""

    weight_decay: float = param(1e-2, "decoupled weight decay coefficient", ge=0)

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

    lr: float = param(1e-2, "learning rate", gt=0)
    alpha: float = param(0.99, "smoothing constant of the squared-gradient average", ge=0, le=1)
    eps: float = param(1e-8, "added to the denominator for stability", ge=0)
    weight_decay: float = param(0.0, _WD, ge=0)
    momentum: float = param(0.0, "momentum factor", ge=0)
    centered: bool = param(False, "normalize by an estimate of the gradient's variance")

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

    lr: float = param(1e-2, "learning rate", gt=0)
    lr_decay: float = param(0.0, "learning-rate decay per step", ge=0)
    weight_decay: float = param(0.0, _WD, ge=0)
    initial_accumulator_value: float = param(0.0, "start of the squared-gradient sums", ge=0)
    eps: float = param(1e-10, "added to the denominator for stability", ge=0)

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

    lr: float = param(1.0, "coefficient that scales the delta", gt=0)
    rho: float = param(0.9, "decay rate of the squared-gradient average", ge=0, le=1)
    eps: float = param(1e-6, "added to the denominator for stability", ge=0)
    weight_decay: float = param(0.0, _WD, ge=0)

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        return torch.optim.Adadelta(
            params, lr=self.lr, rho=self.rho, eps=self.eps, weight_decay=self.weight_decay
        )
