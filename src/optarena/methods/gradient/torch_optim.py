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
from ._schedulers import (
    HORIZON_DOC,
    SCHEDULERS,
    build_scheduler,
    check_scheduler,
    needs_horizon,
    run_horizon,
    try_scheduler,
)
from ._torch import leaf, load_optimizer, save_optimizer, two_betas, warm_up_torch_optim

__all__ = ["SGD", "Adadelta", "Adagrad", "Adam", "AdamW", "RMSprop"]


@dataclass
class TorchOptimState:
    """Run state: the iterate (a leaf tensor), the torch optimizer, its scheduler and the
    horizon the scheduler was built with (optimizer steps the run's budget allowed)."""

    x: torch.Tensor
    optimizer: torch.optim.Optimizer
    scheduler: Any
    steps: int = 0
    horizon: int | None = None


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
        accepts=f"a name ({', '.join(SCHEDULERS)}) or class name of torch.optim.lr_scheduler, "
        "a callable optimizer -> scheduler",
    )
    scheduler_options: Mapping[str, Any] = param(
        {}, HORIZON_DOC, check=_mapping, accepts="a mapping"
    )
    gtol: float = param(0.0, "stop when the largest gradient entry is at most this", ge=0)

    def validate(self) -> None:
        check_scheduler(self.scheduler, self.scheduler_options)
        if isinstance(self.scheduler, str):  # values torch refuses show now, not mid-run
            probe = torch.zeros(1, requires_grad=True)
            try_scheduler(self.scheduler, self.scheduler_options, self._optimizer([probe]))

    def _optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        raise NotImplementedError

    def check(self, ctx: RunContext, oracle: Evaluator) -> None:
        warm_up_torch_optim()
        if ctx.resume is None and needs_horizon(self.scheduler, self.scheduler_options):
            self._build(torch.zeros(1, requires_grad=True), horizon=run_horizon(oracle))

    def _build(self, x: torch.Tensor, horizon: int | None) -> tuple[torch.optim.Optimizer, Any]:
        opt = self._optimizer([x])
        return opt, build_scheduler(self.scheduler, self.scheduler_options, opt, horizon)

    def init(self, x0: torch.Tensor, oracle: Evaluator, ctx: RunContext) -> TorchOptimState:
        x = leaf(x0)
        horizon = run_horizon(oracle)
        opt, sched = self._build(x, horizon)
        return TorchOptimState(x=x, optimizer=opt, scheduler=sched, horizon=horizon)

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
            "horizon": state.horizon,
        }

    def load_state(self, saved: dict[str, Any], ctx: RunContext) -> TorchOptimState:
        x = leaf(saved["x"])
        horizon = saved.get("horizon")
        opt, sched = self._build(x, horizon)  # the scheduler sets its initial rates, then both load
        load_optimizer(opt, saved["optimizer"])
        if sched is not None and saved["scheduler"] is not None:
            sched.load_state_dict(copy.deepcopy(saved["scheduler"]))
        return TorchOptimState(
            x=x, optimizer=opt, scheduler=sched, steps=saved["steps"], horizon=horizon
        )


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
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError(
                f"nesterov=True is not accepted with momentum={self.momentum!r} and "
                f"dampening={self.dampening!r}: nesterov momentum needs momentum > 0 and "
                "dampening = 0"
            )
        super().validate()

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
