"""minimize(): validate everything, resolve the method, run its family's loop, return a Result.

This module holds no method names: capabilities come from the registry's MethodInfo.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from .budget import Budget, StopReason, limit_message
from .constraints import Constraint
from .core.errors import ObjectiveError, StopRun
from .core.memory import evaluation
from .core.objective import Objective
from .core.oracle import Oracle
from .inputs import (
    BoundsLike,
    as_bounds,
    as_constraints,
    as_device,
    as_eval_dtype,
    as_memory,
    as_objective,
    as_seed,
    as_x0,
)
from .methods import Facts, IterationInfo, Method, RunContext, resolve_method
from .methods._base import Checkpoint
from .methods._registry import get_method_class, method_infos
from .methods._state_size import check_state_size
from .parallel import Parallel
from .problems import Problem
from .progress import Progress, finish, observe
from .reevaluation import held_back as _held_back
from .reevaluation import reevaluations as _reevaluations
from .reevaluation import settle as _settle
from .result import Result
from .space.run import SpacePlan, space_plan

__all__ = ["as_objective", "minimize"]


def minimize(
    objective: Objective | Problem | Callable[[torch.Tensor], Any],
    x0: Any = None,
    method: str | Method | None = None,
    *,
    bounds: BoundsLike = None,
    constraints: Sequence[Any] | Constraint | Any = (),
    budget: Budget | int | None = None,
    seed: int | None = None,
    callback: Callable[[IterationInfo], Any] | None = None,
    record_x: bool | None = None,
    resume: Checkpoint | Mapping[str, Any] | None = None,
    device: str | torch.device | None = None,
    executor: Any = None,
    reevaluate: int | None = None,
    progress: bool | Progress = False,
    space: Any = None,
    memory: int | str | None = None,
    eval_dtype: str | torch.dtype | None = None,
    **options: Any,
) -> Result:
    """Minimize ``objective`` from ``x0`` with ``method`` and return the best evaluated point.

    Args:
        objective: a function of a 1-D tensor, an :class:`Objective` (numpy functions,
            ``nn.Module`` parameters) or a :class:`Problem` (which supplies x0, its
            constraints, and its bounds to methods that need a box).
        x0: start point (1-D, real; ints and bools become float64, complex is refused).
            Optional for problems and module objectives.
        method: a registered name (see :func:`optarena.methods`) or a Method instance;
            ``None``: ``lbfgs``, or ``auto`` with a ``space`` (as Optuna picks a sampler).
        bounds: ``(lower, upper)`` (each a scalar or an array of length d), d ``(low, high)``
            pairs with ``None`` for an open side (as scipy reads them), ``optarena.Bounds``
            or ``scipy.optimize.Bounds``. Two arrays or tensors are ``(lower, upper)``; for
            d = 2, two rows of two numbers are ambiguous and refused unless they read the same
            both ways (see :func:`optarena.inputs.as_bounds`).
        constraints: :class:`optarena.Ineq` / :class:`optarena.Eq` objects, or scipy's
            ``LinearConstraint``, ``NonlinearConstraint`` (numpy functions; Jacobian from
            ``jac`` or finite differences) and ``{"type": "ineq" | "eq", "fun": ...}`` dicts,
            read as scipy reads them (see :mod:`optarena.scipy_forms`).
        budget: an int (evaluations) or a :class:`Budget`; default 10,000 evaluations. A
            Budget limited only by ``grad_evals`` also gets that default evaluation cap (and a
            warning) on a method that needs no gradient, which it might never bind.
        seed: seeds every random draw of the run, an int in [0, 2**63 - 1]; ``None`` draws
            one (kept in the Result).
        callback: called after every iteration with an :class:`IterationInfo`; returning a
            truthy value, or raising ``StopIteration`` as in scipy, stops the run with the
            best point so far (``stop_reason`` ``"callback"``, said in the message).
        record_x: keep every evaluated point in the History (default: when d <= 64).
        device: where points live and the objective runs (``"cuda"`` when present); the
            default is x0's device. Data the objective closes over must be on it too.
        resume: a :class:`Checkpoint` from ``IterationInfo.checkpoint`` of an earlier run of a
            checkpointable method (population methods, gd, the torch.optim methods, lbfgs), to
            continue it exactly (same objective, method and seed), or its ``state_dict()``
            (plain data: ``torch.save`` it, ``torch.load`` reads it with weights_only=True).
        executor: evaluate batches (population generations, finite-difference probes) in
            chunks on workers: a ``concurrent.futures.Executor``, a ``distributed.Client``,
            or :class:`optarena.parallel.Parallel` to set chunks, retries and timeout. The
            objective must pickle (cloudpickle: lambdas are fine). Same seed, same History as
            without it; ``result.info["worker_retries"]`` counts chunk attempts lost with a
            dead worker. A gradient method with an autograd gradient is refused (ValueError).
        progress: show a live line on stderr (evaluations / budget, best so far, evaluations
            per second); a :class:`optarena.progress.Progress` sets the stream and interval.
        reevaluate: re-evaluations ``k`` of the best point, for objectives whose values are
            noisy (``Objective(..., noisy=True)`` or a noisy Problem). The 3 lowest samples at
            distinct points are evaluated ``k`` times each, the lowest mean wins, and
            ``result.fun`` is the mean of ``k`` further evaluations of it (the luckiest sample
            of a run is biased low); ``result.info["noise"]`` holds the raw best sample, ``k``,
            the standard error ``fun_se`` and the candidates. ``4 * k`` evaluations are held
            back from the method's budget for this (they are counted in ``nfev``). ``None``:
            on a noisy objective up to 10, within 5% of the evaluation budget (none below 160
            evaluations), else 0. They run even after a ``seconds`` limit has ended the method.
        space: a search space (:class:`optarena.Space` or its dict: ``Real``, ``Int``,
            ``Choice``, fixed values); the objective is then ``f(config: dict) -> float``, the
            space's box encoding sets the bounds, ``x0`` is a configuration dict or ``None``
            (the centre of the box) and each configuration is evaluated once per run (a
            repeat reuses its value and still counts in ``nfev``). Returns a
            :class:`optarena.space.SpaceResult` (``.config``, ``.to_pandas()``,
            ``.cache_hits``). See :mod:`optarena.space`.
        memory: the most memory a generation's evaluation may hold, in bytes or as a string
            (``"2GB"``, ``"512MiB"``). Populations are evaluated in chunks whose estimated
            working memory stays within half of it (:mod:`optarena.core.memory` says how it
            is estimated); the linear-memory methods draw, evaluate and learn from a
            generation in chunks whose buffers take the other half, with the same results as
            without a cap. The run's fixed state (the method's vectors, the History) is not
            counted.
        eval_dtype: evaluate populations in this dtype (``"float32"``, ``"bfloat16"``,
            ``"float16"`` or a torch dtype): the function receives the candidates in it (a
            module objective's forward pass runs in it, the loss in the parameters' dtype);
            the method's state, the History and ``result.x`` keep x0's dtype, and
            ``result.fun`` is the value at ``result.x`` rounded to ``eval_dtype``. Numpy
            functions are not affected.
        **options: hyperparameters of the method (e.g. ``lr=0.1``).

    Raises:
        ValueError / TypeError: bad input, before any evaluation.
        ObjectiveError: the objective raised; ``err.result`` holds the best-so-far Result.
        ExecutorError: (an ObjectiveError) the workers could not deliver some values.
    """
    plan: SpacePlan | None = None
    if space is not None:
        plan = space_plan(
            objective,
            space,
            x0,
            bounds=bounds,
            constraints=constraints,
            executor=executor,
            reevaluate=reevaluate,
        )
        objective, x0, bounds, record_x = plan.objective, plan.x0, plan.bounds, True
    obj, problem = as_objective(objective)
    if method is None:
        method = "lbfgs" if space is None else "auto"
    meth = resolve_method(method, options, caller=minimize)
    if plan is not None and (why := plan.refusal(meth.info)) is not None:
        raise ValueError(why)
    x0_t = as_x0(x0, obj, problem, bounds)
    if device is not None:
        x0_t = x0_t.to(as_device(device))
    cons = as_constraints(constraints)
    if not cons and problem is not None:
        cons = tuple(problem.constraints)
    if bounds is None and problem is not None and meth.info.requires_bounds and problem.bounds:
        bounds = problem.bounds
    box = as_bounds(bounds, x0_t)
    parallel = None if executor is None else Parallel.coerce(executor)
    facts = Facts(
        gradient=obj.gradient,
        bounded=box is not None,
        constrained=bool(cons),
        executor=parallel is not None,
        subject=f"objective {obj.name!r}",
    )
    reason = meth.info.refusal(facts)
    if reason is not None:
        raise ValueError(reason)
    resume = _check_resume(resume, meth)
    if seed is None and resume is not None:  # a resume continues the checkpoint's stream
        seed = getattr(resume, "made_under", {}).get("seed")
    run_seed = as_seed(seed)
    mem, edt = as_memory(memory), as_eval_dtype(eval_dtype)
    check_state_size(meth.info, meth.label, x0_t.numel(), mem)
    if parallel is not None and (mem is not None or edt is not None):
        raise ValueError(
            "memory= and eval_dtype= set how this process evaluates; with executor= the "
            "workers evaluate the chunks: set chunks with Parallel(chunks=...) and the dtype "
            "in the objective instead"
        )
    bud = Budget.coerce(budget).binding(meth.info.needs_grad, f"method {meth.label!r}")
    k = _reevaluations(reevaluate, obj, bud)
    full, bud = bud, _held_back(bud, k)
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    with (
        evaluation(mem, edt) as settings,
        observe(progress, full, meth.label, callback) as callback,
    ):
        ctx = RunContext(
            x0=x0_t,
            lower=None if box is None else box[0],
            upper=None if box is None else box[1],
            constraints=cons,
            seed=run_seed,
            callback=callback,
            resume=resume,
            space=None if plan is None else plan.space.encoding,
        )
        if parallel is None:
            oracle = Oracle(
                obj, x0_t, bud, box=box, record_x=record_x, constraints=cons, leaders=3 * (k > 0)
            )
            meth.check(ctx, oracle)
            _probe(obj, x0_t, meth, resume, facts)
            if plan is None:
                result = _settle(run_method(meth, oracle, ctx), oracle, full, k, reevaluate is None)
            else:
                try:
                    result = plan.result(run_method(meth, oracle, ctx))
                except ObjectiveError as err:
                    err.result = None if err.result is None else plan.result(err.result)
                    raise
            if (mem is not None or edt is not None) and not settings.batched_rows[0]:
                warnings.warn(
                    f"memory= and eval_dtype= had no effect: method {meth.label!r} evaluated "
                    "one point at a time (they act on populations and batches of points)",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return finish(callback, result)
        # the method's own checks come first: opening ships the objective to the workers
        meth.check(ctx, Oracle(obj, x0_t, bud, box=box, record_x=False, constraints=cons))
        _probe(obj, x0_t, meth, resume, facts)
        runner = parallel.open(obj)
        oracle = Oracle(
            obj,
            x0_t,
            bud,
            box=box,
            record_x=record_x,
            constraints=cons,
            parallel=runner,
            leaders=3 * (k > 0),
        )
        try:
            result = _settle(run_method(meth, oracle, ctx), oracle, full, k, reevaluate is None)
        finally:
            runner.close()
        if runner.batches == 0:
            warnings.warn(
                f"executor= was not used: method {meth.label!r} evaluated one point at a time, "
                "in this process",
                RuntimeWarning,
                stacklevel=2,
            )
        return finish(callback, result)


def _probe(obj: Objective, x0: torch.Tensor, meth: Method, resume: Any, facts: Facts) -> None:
    """A plain function's first call, at x0, tells a numpy function from a torch one before a
    method that needs a gradient runs (the run counts that call as its first evaluation)."""
    if obj.decided or resume is not None or not meth.info.needs_grad:
        return
    obj.probe(x0)
    found = dataclasses.replace(facts, gradient=obj.gradient)
    if obj.gradient == "none" and facts.gradient != "none":  # the first call's value told
        found = dataclasses.replace(
            found,
            subject=f"{facts.subject}, which returns a Python number or a numpy value (.item(), "
            "float(...), numpy: no autograd graph reaches x),",
        )
    reason = meth.info.refusal(found)
    if reason is not None:
        raise ValueError(reason)


def _check_resume(resume: Any, meth: Method) -> Checkpoint | None:
    """The Checkpoint of ``resume=`` (one, or its ``state_dict()``), refused when it is not
    one of this method's kind of run."""
    if resume is None:
        return None
    if isinstance(resume, Mapping) and "format" in resume:
        resume = Checkpoint.from_state_dict(resume)
    if not isinstance(resume, Checkpoint):
        raise TypeError(
            "resume= takes a Checkpoint (IterationInfo.checkpoint) or its state_dict(), got "
            f"{type(resume).__name__}"
        )
    if not type(meth).checkpointable:
        able = [i.name for i in method_infos() if get_method_class(i.name).checkpointable]
        raise TypeError(
            f"method {meth.label!r} cannot resume from a checkpoint (its run state is not plain "
            f"tensors); resume= works with {', '.join(able)}"
        )
    if resume.method != meth.info.name:
        raise ValueError(
            f"resume= got a checkpoint of method {resume.method!r}, but the method is "
            f"{meth.info.name!r}; resume with the method that made it"
        )
    return resume


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
    if not message:
        message = limit_message(oracle.budget, reason, oracle.best_eval)
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
