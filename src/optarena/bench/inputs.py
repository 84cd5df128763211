"""What specs hand in, read once: budgets, seeds, problem parameters and canonical JSON.

Every value that decides a run's numbers goes through :func:`canonical_json`, the stable text
that run keys and the store use, so the same experiment always gets the same key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from ..budget import Budget
from ..inputs import MAX_SEED

__all__ = [
    "SpecError",
    "budget_to_dict",
    "canonical_json",
    "decode_params",
    "encode_params",
    "parse_budget",
    "parse_seeds",
]


class SpecError(ValueError):
    """The spec is invalid; the message says where and what to change."""


def canonical_json(obj: Any, where: str = "value") -> str:
    """Sorted, compact JSON: the stable text that keys and the store use."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as e:
        raise SpecError(
            f"{where} must hold only numbers, strings, booleans, lists and tables so runs can "
            f"be stored and keyed ({e})"
        ) from e


def _is_dtype_key(key: str) -> bool:
    return key == "dtype" or key.endswith("_dtype")


def encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Problem parameters as JSON types (torch dtypes become strings such as ``"float32"``)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        out[k] = str(v).removeprefix("torch.") if isinstance(v, torch.dtype) else v
    return out


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Problem parameters for the factory (``dtype = "float64"`` becomes ``torch.float64``)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if _is_dtype_key(k) and isinstance(v, str):
            dt = getattr(torch, v.removeprefix("torch."), None)
            if not isinstance(dt, torch.dtype):
                raise SpecError(f"parameter {k} = {v!r} is not a torch dtype (e.g. 'float64')")
            v = dt
        out[k] = v
    return out


def budget_to_dict(budget: Budget) -> dict[str, Any]:
    """The limits of a Budget as a plain dict (None for no limit)."""
    return {
        "evals": budget.evals,
        "grad_evals": budget.grad_evals,
        "seconds": budget.seconds,
        "target": budget.target,
    }


def parse_budget(value: Any, where: str = "budget") -> Budget:
    """A Budget from an int (evaluations), a table of limits or a Budget."""
    if isinstance(value, Budget):
        budget = value
    elif isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise SpecError(f"{where} must be a positive number of evaluations, got {value}")
        budget = Budget(evals=value)
    elif isinstance(value, Mapping):
        allowed = {"evals", "grad_evals", "seconds", "target"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        try:
            budget = Budget(**dict(value))
        except (TypeError, ValueError) as e:
            raise SpecError(f"{where}: {e}") from e
    else:
        raise SpecError(
            f"{where} must be a number of evaluations or a table such as "
            f"{{evals = 2000, seconds = 60}}, got {value!r}"
        )
    if budget.unlimited:
        raise SpecError(f"{where} sets no limit; give evals, grad_evals or seconds")
    return budget


def parse_seeds(value: Any, where: str = "seeds") -> tuple[int, ...]:
    """Seeds from a count ``n`` (seeds 0..n-1) or a list of distinct non-negative ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise SpecError(f"{where} must be a positive count or a list of seeds, got {value}")
        return tuple(range(value))
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        seeds = tuple(value)
        bad = [
            s
            for s in seeds
            if isinstance(s, bool) or not isinstance(s, int) or s < 0 or s > MAX_SEED
        ]
        if not seeds or bad:
            raise SpecError(
                f"{where} must be non-negative ints up to 2**63 - 1 (the store keeps 64-bit "
                f"seeds), got {list(seeds)}"
            )
        if len(set(seeds)) != len(seeds):
            raise SpecError(f"{where} has repeated seeds: {list(seeds)}")
        return seeds
    raise SpecError(f"{where} must be a count (5) or a list of ints ([0, 1, 2]), got {value!r}")
