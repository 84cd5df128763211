"""Saving and restoring an ask/tell study: ``Optimizer.state_dict`` / ``load_state_dict``.

Candidates out when a study is saved were never told, and after a restore nobody holds them
(the process that evaluated them is gone): the restored study hands them out again first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..budget import Budget, StopReason
from ..core.errors import StopRun
from ..core.noise import NoiseEstimate
from ..methods._base import Checkpoint, Generations
from ._noisy import Reevaluation, leaders_from_state, leaders_state
from ._plain import plain, rebuilt

if TYPE_CHECKING:
    from .optimizer import Optimizer

__all__ = ["FORMAT", "load", "save"]

FORMAT = 2  # of state_dict(); 1: before noisy studies' re-evaluations were saved


def save(opt: Optimizer) -> dict[str, Any]:
    """The study ``opt`` as plain data: tensors, lists, dicts, numbers, strings (see
    ``state_dict``)."""
    run = opt._run
    cp = opt.method.checkpoint(run.state, run.generation, opt._ctx)
    h = opt._oracle.history
    is_open = opt._batch is not None
    leaders = opt._oracle.leaders
    est = opt._estimate
    return {
        "format": FORMAT,
        "checkpoint": plain({f.name: getattr(cp, f.name) for f in fields(Checkpoint)}),
        "elite": run.elite,
        "open": None if run.X is None else run.X.clone(),
        "first": None if run.f is None else run.f.clone(),
        "elite_rows": None if run.idx is None else run.idx.clone(),
        "handed": opt._next if is_open else 0,
        "told": list(opt._told_mask) if is_open else [],
        "values": opt._values.clone() if is_open else None,
        "x": plain(h.x),
        "f": plain(h.f),
        "failures": dict(opt.failures),
        "cache_hits": opt.cache_hits,
        "stop": None if opt.stop_reason is None else (str(opt.stop_reason), opt._message),
        "space": None if opt.space is None else opt.space.to_dict(),
        "reevaluate": opt._k,
        "leaders": None if leaders is None else leaders_state(leaders.items),
        "reevaluation": None if opt._reeval is None else opt._reeval.state(),
        "method_end": None if opt._method_end is None else [str(r) for r in opt._method_end],
        "estimate": None if est is None else [est.x.clone(), est.fun, est.index, est.info],
    }


def load(opt: Optimizer, saved: Mapping[str, Any]) -> None:
    """Continue the study ``saved`` in ``opt`` (see ``load_state_dict``)."""
    if not isinstance(saved, Mapping) or saved.get("format") not in (1, FORMAT):
        raise ValueError("load_state_dict() takes a dict made by Optimizer.state_dict()")
    mine = None if opt.space is None else opt.space.to_dict()
    if saved["space"] != mine:
        raise ValueError(f"the saved study searched space {saved['space']!r}, not {mine!r}")
    if saved["elite"] != opt._run.elite or saved.get("reevaluate", 0) != opt._k:
        raise ValueError(
            f"the saved study re-evaluated {saved['elite']} elite rows per generation and its "
            f"best point {saved.get('reevaluate', 0)} times, this one {opt._run.elite} and "
            f"{opt._k}: make it with the same noisy=, reevaluate= and options"
        )
    ran = saved["checkpoint"].get("method")
    if ran != opt.method.info.name:
        raise ValueError(
            f"load_state_dict() got a study of method {ran!r}, but this Optimizer runs "
            f"{opt.method.info.name!r}: make it as Optimizer({ran!r}, ...) with the options, "
            "x0 or space, bounds and seed of the one that saved it"
        )
    f = np.asarray(saved["f"], dtype=np.float64)
    xs = np.asarray(saved["x"], dtype=np.float64)
    if opt.budget.evals is not None and f.shape[0] > opt.budget.evals:
        raise ValueError(
            f"the saved study told {f.shape[0]} evaluations, more than this budget "
            f"({opt.budget.evals})"
        )
    cp = Checkpoint(
        **{**saved["checkpoint"], "state": rebuilt(saved["checkpoint"]["state"], opt._run.state)}
    )
    ctx = opt._new_context()
    diff = opt.method.resume_mismatch(cp, ctx)
    if diff is not None:
        diff = diff.replace("(checkpoint)", "(saved study)").replace("(this run)", "(this one)")
        raise ValueError(
            f"load_state_dict() got a study saved under other settings: {diff}. Make this "
            "Optimizer with the method, options, x0 or space, bounds and seed of the one "
            "that saved it"
        )
    state, gen = opt.method.restore(cp, ctx)  # sets the generators
    run = Generations(opt.method, ctx, state, gen, int(saved["elite"]))
    run.X, run.f, run.idx = saved["open"], saved["first"], saved["elite_rows"]
    oracle = opt._new_oracle()
    if saved.get("method_end") is not None:  # the re-evaluations had begun: the reserve too
        oracle.budget = Budget(evals=opt.budget.evals)
    if f.shape[0]:
        opt._told.queue.extend(f.tolist())
        try:
            oracle.values(torch.as_tensor(xs).to(opt._x0))
        except StopRun:
            pass  # the saved study had stopped there too ("stop" says why)
        finally:
            opt._told.queue.clear()
    if saved.get("leaders") is not None and oracle.leaders is not None:
        oracle.leaders.items = leaders_from_state(saved["leaders"], opt._x0)
    opt._ctx, opt._run, opt._oracle = ctx, run, oracle
    opt.failures = dict(saved["failures"])
    opt.cache_hits = int(saved.get("cache_hits", 0))
    opt._cache = {}
    if opt.space is not None:  # the values told, failures apart, in the order told
        enc = opt.space.encoding
        for i, (x, v) in enumerate(zip(xs, f.tolist(), strict=True)):
            if i + 1 not in opt.failures:
                opt._cache.setdefault(enc.decode_keyed(x)[1], v)
    stop = saved["stop"]
    opt.stop_reason = None if stop is None else StopReason(stop[0])
    opt._message = "" if stop is None else stop[1]
    _load_noise(opt, saved)
    opt._reset_rows()
    opt._incremental = opt._takes_rows_one_by_one()
    if run.X is not None and opt._reeval is None and saved["values"] is not None:
        opt._open_batch()
        opt._next = int(saved["handed"])
        opt._told_mask = list(saved["told"])
        opt._values = saved["values"].clone()
        opt._lose_rows_out()  # nobody holds them now: ask() hands them out again


def _load_noise(opt: Optimizer, saved: Mapping[str, Any]) -> None:
    """A noisy study's re-evaluation part: under way (rows out are handed out again), or
    ended with its estimate."""
    end, r, est = saved.get("method_end"), saved.get("reevaluation"), saved.get("estimate")
    opt._method_end = None if end is None else (StopReason(end[0]), end[1])
    opt._reeval = None if r is None else Reevaluation.from_state(r, opt._x0)
    opt._estimate = None
    if est is not None:
        x, fun, index, info = est
        opt._estimate = NoiseEstimate(x=x.to(opt._x0), fun=float(fun), index=int(index), info=info)
