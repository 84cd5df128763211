"""Saving and restoring an ask/tell study: ``Optimizer.state_dict`` / ``load_state_dict``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..budget import StopReason
from ..core.errors import StopRun
from ..methods._base import Checkpoint, Generations

if TYPE_CHECKING:
    from .optimizer import Optimizer

__all__ = ["FORMAT", "load", "save"]

FORMAT = 1  # of state_dict()


def save(opt: Optimizer) -> dict[str, Any]:
    """The study ``opt`` as plain tensors, arrays and numbers (see ``state_dict``)."""
    run = opt._run
    cp = opt.method.checkpoint(run.state, run.generation, opt._ctx)
    h = opt._oracle.history
    is_open = opt._batch is not None
    return {
        "format": FORMAT,
        "checkpoint": {f.name: getattr(cp, f.name) for f in fields(Checkpoint)},
        "elite": run.elite,
        "open": None if run.X is None else run.X.clone(),
        "first": None if run.f is None else run.f.clone(),
        "elite_rows": None if run.idx is None else run.idx.clone(),
        "handed": opt._next if is_open else 0,
        "told": list(opt._told_mask) if is_open else [],
        "values": opt._values.clone() if is_open else None,
        "x": h.x.copy(),
        "f": h.f.copy(),
        "failures": dict(opt.failures),
        "cache_hits": opt.cache_hits,
        "stop": None if opt.stop_reason is None else (str(opt.stop_reason), opt._message),
        "space": None if opt.space is None else opt.space.to_dict(),
    }


def load(opt: Optimizer, saved: Mapping[str, Any]) -> None:
    """Continue the study ``saved`` in ``opt`` (see ``load_state_dict``)."""
    if not isinstance(saved, Mapping) or saved.get("format") != FORMAT:
        raise ValueError("load_state_dict() takes a dict made by Optimizer.state_dict()")
    mine = None if opt.space is None else opt.space.to_dict()
    if saved["space"] != mine:
        raise ValueError(f"the saved study searched space {saved['space']!r}, not {mine!r}")
    if saved["elite"] != opt._run.elite:
        raise ValueError(
            f"the saved study re-evaluated {saved['elite']} elite rows per generation, "
            f"this one {opt._run.elite}: make it with the same noisy= and options"
        )
    f = np.asarray(saved["f"], dtype=np.float64)
    if opt.budget.evals is not None and f.shape[0] > opt.budget.evals:
        raise ValueError(
            f"the saved study told {f.shape[0]} evaluations, more than this budget "
            f"({opt.budget.evals})"
        )
    cp = Checkpoint(**saved["checkpoint"])
    ctx = opt._new_context()
    state, gen = opt.method.restore(cp, ctx)  # refuses other settings, sets the generators
    run = Generations(opt.method, ctx, state, gen, int(saved["elite"]))
    run.X, run.f, run.idx = saved["open"], saved["first"], saved["elite_rows"]
    oracle = opt._new_oracle()
    if f.shape[0]:
        opt._told.queue.extend(f.tolist())
        try:
            oracle.values(torch.as_tensor(saved["x"]).to(opt._x0))
        except StopRun:
            pass  # the saved study had stopped there too ("stop" says why)
        finally:
            opt._told.queue.clear()
    opt._ctx, opt._run, opt._oracle = ctx, run, oracle
    opt.failures = dict(saved["failures"])
    opt.cache_hits = int(saved.get("cache_hits", 0))
    opt._cache = {}
    if opt.space is not None:  # the values told, failures apart, in the order told
        enc = opt.space.encoding
        for i, (x, v) in enumerate(zip(saved["x"], f.tolist(), strict=True)):
            if i + 1 not in opt.failures:
                opt._cache.setdefault(enc.decode_keyed(x)[1], v)
    stop = saved["stop"]
    opt.stop_reason = None if stop is None else StopReason(stop[0])
    opt._message = "" if stop is None else stop[1]
    opt._batch = None
    opt._incremental = opt._takes_rows_one_by_one()
    if run.X is not None:
        opt._open_batch()
        opt._next = int(saved["handed"])
        opt._told_mask = list(saved["told"])
        opt._values = saved["values"].clone()
