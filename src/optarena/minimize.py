"""minimize(): validate everything, resolve the method, run its family's loop, return a Result.

This module holds no method names: capabilities come from the registry's MethodInfo.
"""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .budget import Budget, StopReason
from .constraints import Constraint
from .distributed import Parallel
from .methods import IterationInfo, Method, RunContext, method_infos, resolve_method
from .methods._base import Checkpoint, PopulationMethod
from .objective import Objective
from .oracle import ObjectiveError, Oracle, StopRun
from .problems import Problem
from .result import Result

__all__ = ["as_objective", "minimize"]

BoundsLike = Any


def as_objective(objective: Any) -> tuple[Objective, Problem | None]:
    """The Objective for what the user passed (Objective, Problem or tensor function)."""
    if isinstance(objective, Objective):
        return objective, None
    if isinstance(objective, Problem):
        return objective.objective(), objective
    if isinstance(objective, str):
        raise TypeError(
            f"got the string {objective!r} as objective; for a test problem pass "
            f"optarena.problems.get({objective!r})"
        )
    if isinstance(objective, nn.Module):
        raise TypeError(
            "an nn.Module needs a loss: use Objective.from_module(module, loss, args=..., "
            "target=..., params=...) and pass that"
        )
    if callable(objective):
        return Objective(objective), None
    raise TypeError(
        "objective must be a function of a 1-D tensor, an optarena.Objective or a Problem, "
        f"got {type(objective).__name__}"
    )


def _as_x0(x0: Any, objective: Objective, problem: Problem | None) -> torch.Tensor:
    if x0 is None:
        if problem is not None:
            return problem.x0.clone()
        d = objective.default_x0
        if d is None:
            raise ValueError("x0 is required: pass the start point as a 1-D tensor or array")
        return d
    ref = objective.default_x0 if problem is None else problem.x0
    if isinstance(x0, torch.Tensor):
        t = x0.detach().clone()
        if not t.is_floating_point():
            t = t.to(torch.float64)
    elif isinstance(x0, np.ndarray):
        t = torch.from_numpy(np.array(x0, dtype=np.float64 if x0.dtype.kind in "biu" else None))
    else:
        try:
            t = torch.as_tensor(np.asarray(x0, dtype=np.float64))
        except (TypeError, ValueError) as e:
            raise TypeError(f"x0 must be a 1-D array of numbers, got {x0!r}") from e
    if not t.is_floating_point():
        raise TypeError(f"x0 must hold real numbers, got dtype {t.dtype}")
    if t.ndim == 0:
        t = t.reshape(1)
    if t.ndim != 1:
        raise ValueError(
            f"x0 must be 1-D, got shape {tuple(t.shape)}; flatten it (x0.reshape(-1)) and "
            "reshape inside the objective"
        )
    if t.numel() == 0:
        raise ValueError("x0 is empty: there is nothing to optimize")
    if ref is not None:
        if t.numel() != ref.numel():
            raise ValueError(f"x0 has {t.numel()} entries, the objective expects {ref.numel()}")
        t = t.to(dtype=ref.dtype, device=ref.device)
    if not bool(torch.isfinite(t).all()):
        bad = torch.nonzero(~torch.isfinite(t)).reshape(-1).tolist()
        raise ValueError(f"x0 has NaN or infinite entries at indices {bad}; give a finite start")
    return t


def _as_bounds(bounds: BoundsLike, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    if bounds is None:
        return None
    d = x0.numel()
    if hasattr(bounds, "lb") and hasattr(bounds, "ub"):  # scipy.optimize.Bounds
        bounds = (bounds.lb, bounds.ub)
    try:
        arr = np.asarray(
            [
                np.asarray(b.detach().cpu() if isinstance(b, torch.Tensor) else b, dtype=np.float64)
                for b in bounds
            ]
            if not isinstance(bounds, np.ndarray | torch.Tensor)
            else np.asarray(bounds, dtype=np.float64),
            dtype=np.float64,
        )
    except (TypeError, ValueError) as e:
        raise TypeError(
            "bounds must be (lower, upper) with scalars or arrays of length d, or a list of "
            f"d (low, high) pairs; got {bounds!r}"
        ) from e
    if arr.shape == (2,):
        lo, hi = np.full(d, arr[0]), np.full(d, arr[1])
    elif arr.shape == (2, d):
        lo, hi = arr[0], arr[1]
    elif arr.shape == (d, 2):
        lo, hi = arr[:, 0], arr[:, 1]
    else:
        raise ValueError(
            f"bounds have shape {arr.shape}; expected (lower, upper) as two scalars or two "
            f"arrays of length {d}, or {d} (low, high) pairs"
        )
    if np.isnan(lo).any() or np.isnan(hi).any():
        raise ValueError("bounds contain NaN; use -inf/inf for a side without a bound")
    if (lo > hi).any():
        i = int(np.flatnonzero(lo > hi)[0])
        raise ValueError(f"lower bound > upper bound at index {i}: {lo[i]} > {hi[i]}")
    lower = torch.as_tensor(lo).to(dtype=x0.dtype, device=x0.device)
    upper = torch.as_tensor(hi).to(dtype=x0.dtype, device=x0.device)
    # Round inwards when the problem's dtype cannot hold the bounds exactly (float32 x0 with
    # float64 bounds), so that no evaluated point lies outside the box the user gave.
    if x0.dtype != torch.float64:
        lo_t, hi_t = torch.as_tensor(lo), torch.as_tensor(hi)
        low_cut = (lower.double().cpu() < lo_t).to(lower.device)
        high_cut = (upper.double().cpu() > hi_t).to(upper.device)
        lower = torch.where(low_cut, torch.nextafter(lower, upper), lower)
        upper = torch.where(high_cut, torch.nextafter(upper, lower), upper)
    outside = (x0 < lower) | (x0 > upper)
    if bool(outside.any()):
        i = int(torch.nonzero(outside)[0])
        raise ValueError(
            f"x0 is outside the bounds at index {i}: {float(x0[i])} not in "
            f"[{float(lower[i])}, {float(upper[i])}]; clip it into the box or widen the bounds"
        )
    return lower, upper


def _as_constraints(constraints: Any) -> tuple[Constraint, ...]:
    if constraints is None:
        return ()
    if isinstance(constraints, Constraint):
        return (constraints,)
    if not isinstance(constraints, Sequence):
        raise TypeError("constraints must be a sequence of optarena.Ineq / optarena.Eq")
    out = tuple(constraints)
    for c in out:
        if not isinstance(c, Constraint):
            raise TypeError(
                f"constraints must be optarena.Ineq(fun) or optarena.Eq(fun), got {c!r}"
            )
    return out


def _names_where(pred: Callable[[Any], bool]) -> str:
    return ", ".join(i.name for i in method_infos() if pred(i))


def _check_capabilities(
    method: Method, objective: Objective, bounds: Any, constraints: tuple[Constraint, ...]
) -> None:
    info = method.info
    if info.needs_grad and not objective.has_gradient:
        raise ValueError(
            f"method {info.name!r} needs a gradient, but objective {objective.name!r} has none "
            f"(gradient={objective.gradient!r}). Use a gradient-free method "
            f"({_names_where(lambda i: not i.needs_grad)}), or build the objective with "
            "gradient='fd' for finite differences (each probe is counted)"
        )
    if bounds is not None and not info.supports_bounds:
        raise ValueError(
            f"method {info.name!r} does not support bounds; methods that do: "
            f"{_names_where(lambda i: i.supports_bounds)}"
        )
    if bounds is None and info.requires_bounds:
        raise ValueError(f"method {info.name!r} searches a box and needs bounds=(lower, upper)")
    if constraints and not info.supports_constraints:
        raise ValueError(
            f"method {info.name!r} cannot handle constraints and optarena never drops them "
            f"silently. Use a method that supports them "
            f"({_names_where(lambda i: i.supports_constraints) or 'none registered'}), or wrap "
            f"this one: optarena.Penalty({info.name!r}) or "
            f"optarena.AugmentedLagrangian({info.name!r})"
        )


def _as_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device must be like 'cpu' or 'cuda:0', got {device!r}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no CUDA device here")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} asked for, but torch sees no MPS device here")
    return dev


def _seed(seed: Any) -> int:
    if seed is None:
        return secrets.randbits(63)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"seed must be a non-negative int or None, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return int(seed)


def minimize(
    objective: Objective | Problem | Callable[[torch.Tensor], Any],
    x0: Any = None,
    method: str | Method = "lbfgs",
    *,
    bounds: BoundsLike = None,
    constraints: Sequence[Constraint] | Constraint | None = (),
    budget: Budget | int | None = None,
    seed: int | None = None,
    callback: Callable[[IterationInfo], Any] | None = None,
    record_x: bool | None = None,
    resume: Checkpoint | None = None,
    device: str | torch.device | None = None,
    executor: Any = None,
    **options: Any,
) -> Result:
    """Minimize ``objective`` from ``x0`` with ``method`` and return the best evaluated point.

    Args:
        objective: a function of a 1-D tensor, an :class:`Objective` (numpy functions,
            ``nn.Module`` parameters) or a :class:`Problem` (which supplies x0, its
            constraints, and its bounds to methods that need a box).
        x0: start point (1-D). Optional for problems and module objectives.
        method: a registered name (see :func:`optarena.methods`) or a Method instance.
        bounds: ``(lower, upper)`` (scalars or arrays) or a list of ``(low, high)`` pairs.
        constraints: :class:`optarena.Ineq` / :class:`optarena.Eq` objects.
        budget: an int (evaluations) or a :class:`Budget`; default 10,000 evaluations.
        seed: seeds every random draw of the run; ``None`` draws one (kept in the Result).
        callback: called after every iteration with an :class:`IterationInfo`; returning a
            truthy value stops the run.
        record_x: keep every evaluated point in the History (default: when d <= 64).
        device: where points live and the objective runs (``"cuda"`` when present); the
            default is x0's device. Data the objective closes over must be on it too.
        resume: a :class:`Checkpoint` from ``IterationInfo.checkpoint`` of an earlier run of a
            population method, to continue it exactly (same objective, method and seed).
        executor: evaluate batches (population generations, finite-difference probes) in
            chunks on workers: a ``concurrent.futures.Executor``, a ``distributed.Client``,
            or :class:`optarena.distributed.Parallel` to set chunks, retries and timeout. The
            objective must pickle (cloudpickle: lambdas are fine). Same seed, same History as
            without it; ``result.info["worker_retries"]`` counts chunk attempts lost with a
            dead worker. A gradient method with an autograd gradient is refused (ValueError).
        **options: hyperparameters of the method (e.g. ``lr=0.1``).

    Raises:
        ValueError / TypeError: bad input, before any evaluation.
        ObjectiveError: the objective raised; ``err.result`` holds the best-so-far Result.
        ExecutorError: (an ObjectiveError) the workers could not deliver some values.
    """
    obj, problem = as_objective(objective)
    meth = resolve_method(method, options)
    x0_t = _as_x0(x0, obj, problem)
    if device is not None:
        x0_t = x0_t.to(_as_device(device))
    cons = _as_constraints(constraints)
    if not cons and problem is not None:
        cons = tuple(problem.constraints)
    if bounds is None and problem is not None and meth.info.requires_bounds and problem.bounds:
        bounds = problem.bounds
    box = _as_bounds(bounds, x0_t)
    _check_capabilities(meth, obj, box, cons)
    bud = Budget.coerce(budget)
    run_seed = _seed(seed)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    if resume is not None and not (
        isinstance(resume, Checkpoint) and isinstance(meth, PopulationMethod)
    ):
        raise TypeError("resume= takes a Checkpoint of a population method's run")
    parallel = None if executor is None else Parallel.coerce(executor)
    if parallel is not None:
        parallel.check(meth, obj)
    oracle = Oracle(obj, x0_t, bud, record_x=record_x, constraints=cons)
    if box is not None:
        oracle.lower, oracle.upper = box
    ctx = RunContext(
        x0=x0_t,
        lower=None if box is None else box[0],
        upper=None if box is None else box[1],
        constraints=cons,
        seed=run_seed,
        callback=callback,
        resume=resume,
    )
    meth.check(ctx, oracle)
    if parallel is None:
        return run_method(meth, oracle, ctx)
    oracle.parallel = parallel.open(obj)  # ships the objective: the last check, then runs
    try:
        result = run_method(meth, oracle, ctx)
    finally:
        oracle.parallel.close()
    if oracle.parallel.batches == 0:
        warnings.warn(
            f"executor= was not used: method {meth.label!r} evaluated one point at a time, "
            "in this process",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def run_method(meth: Method, oracle: Oracle, ctx: RunContext) -> Result:
    """Run a validated method on an Oracle and package the outcome (used by wrappers too)."""
    message = ""
    info: dict[str, Any] = {}
    oracle.restart_clock()
    try:
        outcome = meth.run(oracle, ctx)
        reason, message, info = outcome.reason, outcome.message, dict(outcome.info)
    except StopRun as stop:
        reason, message = stop.reason, stop.message
    except KeyboardInterrupt:
        reason, message = StopReason.INTERRUPTED, "interrupted (Ctrl-C); best-so-far kept"
    except ObjectiveError as err:
        err.result = _result(meth, oracle, ctx, StopReason.ERROR, str(err), info)
        raise
    if oracle.best_x is None and reason not in (StopReason.INTERRUPTED, StopReason.CALLBACK):
        message = (message + "; " if message else "") + "no finite objective value was seen"
        reason = StopReason.NO_FINITE_VALUE
    return _result(meth, oracle, ctx, reason, message, info)


def _result(
    meth: Method,
    oracle: Oracle,
    ctx: RunContext,
    reason: StopReason,
    message: str,
    info: dict[str, Any],
) -> Result:
    x, fun = oracle.best()
    if oracle.parallel is not None:
        run = oracle.parallel
        info = {**info, "worker_retries": run.lost_attempts, "lost_evals": run.lost_evals}
    return Result(
        x=x,
        fun=fun if math.isfinite(fun) else math.inf,
        nfev=oracle.nfev,
        ngev=oracle.ngev,
        elapsed=oracle.elapsed,
        stop_reason=reason,
        history=oracle.history,
        method=meth.label,
        seed=ctx.seed,
        message=message,
        best_eval=oracle.best_eval,
        info=info,
        ncev=oracle.ncev,
        max_violation=oracle.best_violation,
        feasible=not oracle.constraints or oracle.best_feasible,
    )
