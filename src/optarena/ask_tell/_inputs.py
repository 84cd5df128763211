"""What the caller hands an ask/tell Optimizer: told candidates and their values."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Told", "match_rows", "parse_values", "refuse_evaluation_settings"]


class Told:
    """The objective of an ask/tell run: the values the caller told, in the order the Oracle
    asks for them (it evaluates exactly the rows being told, right after they are queued)."""

    __name__ = "ask_tell"

    def __init__(self) -> None:
        self.queue: deque[float] = deque()

    def __call__(self, x: torch.Tensor) -> float:
        return self.queue.popleft()


def refuse_evaluation_settings(memory: Any, eval_dtype: Any) -> None:
    """Refuse ``minimize``'s ``memory=`` and ``eval_dtype=``: they set how optarena evaluates a
    population, and with ask/tell the caller evaluates (accepting them would change nothing)."""
    given = [n for n, v in (("memory", memory), ("eval_dtype", eval_dtype)) if v is not None]
    if given:
        raise ValueError(
            f"{' and '.join(f'{n}=' for n in given)}: with ask/tell you evaluate the "
            "candidates, so optarena neither chunks nor casts them; evaluate the batch ask() "
            "returns in chunks and in the dtype you choose (e.g. X.to(torch.bfloat16)), and "
            "tell() the candidates as ask() returned them"
        )


def parse_values(values: Any, k: int) -> tuple[list[float], list[str | None]]:
    """``k`` told values as floats (NaN for a failure) and each failure's message."""
    if isinstance(values, BaseException) or _is_number(values):
        values = [values]
    elif isinstance(values, torch.Tensor | np.ndarray):
        values = values.reshape(-1).tolist() if values.ndim <= 1 else values
    if not isinstance(values, Sequence) or isinstance(values, str | bytes):
        raise TypeError(
            f"tell() takes one value per candidate (numbers, NaN, exceptions), got {values!r}"
        )
    if len(values) != k:
        raise ValueError(f"tell() got {k} candidates but {len(values)} values")
    out: list[float] = []
    errors: list[str | None] = []
    for i, v in enumerate(values):
        if isinstance(v, BaseException):
            out.append(math.nan)
            errors.append(f"{type(v).__name__}: {v}")
        elif _is_number(v):
            out.append(
                float(np.asarray(v).reshape(())) if not isinstance(v, torch.Tensor) else float(v)
            )
            errors.append(None)
        else:
            raise TypeError(
                f"value {i} of tell() is {type(v).__name__}: a value is a real number, NaN "
                "or the exception a failed evaluation raised"
            )
    return out, errors


def _is_number(v: Any) -> bool:
    if isinstance(v, torch.Tensor | np.ndarray):
        return v.numel() == 1 if isinstance(v, torch.Tensor) else v.size == 1
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def match_rows(
    candidates: Any,
    B: torch.Tensor | None,
    configs: list[dict[str, Any]] | None,
    open_rows: list[int],
    handed: int,
    x0: torch.Tensor,
    reevaluating: bool = False,
) -> list[int]:
    """The rows of the open batch ``B`` the told candidates are, among ``open_rows`` (handed
    out, not told yet); ``configs``: the rows' configurations when the study has a space;
    ``reevaluating``: ``B`` holds a noisy study's re-evaluation points. A candidate is
    matched by exact value (the contract: tell candidates as ask() returned them)."""
    if configs is not None:
        if isinstance(candidates, Mapping):
            candidates = [candidates]
        if not isinstance(candidates, Sequence) or isinstance(candidates, str):
            raise TypeError("with a space, tell() takes a configuration dict or a list")
        items: list[Any] = list(candidates)
    else:
        seq = isinstance(candidates, list | tuple) and len(candidates) > 0
        if seq and all(isinstance(c, torch.Tensor) for c in candidates):
            candidates = torch.stack([c.detach().reshape(-1) for c in candidates])
        if not isinstance(candidates, torch.Tensor):  # lists (JSON) in float64, not torch's
            candidates = np.asarray(candidates, dtype=np.float64)  # float32 default: exact
        X = torch.as_tensor(candidates).detach().to(device=x0.device, dtype=x0.dtype)
        if X.ndim == 1:
            X = X.reshape(1, -1)
        d = x0.numel()
        if X.ndim != 2 or X.shape[1] != d:
            raise ValueError(f"candidates must have shape (k, {d}) or ({d},), got {tuple(X.shape)}")
        items = list(X)
    if not items:
        return []
    first = open_rows[: len(items)]
    fast = configs is None and B is not None and len(first) == len(items)
    if fast and torch.equal(B[first], torch.stack(items)):  # told as handed out
        return first

    def find(c: Any, among: Any) -> int | None:
        if B is None:
            return None
        if configs is None:
            return next((j for j in among if torch.equal(B[j], c)), None)
        return next((j for j in among if configs[j] == c), None)

    rows: list[int] = []
    for i, c in enumerate(items):
        j = find(c, [j for j in open_rows if j not in rows])
        if j is None:
            again = find(c, rows)
            told = again is None and find(c, range(handed)) is not None
            if again is not None:
                why = "is given twice"
            elif told:
                why = "was told already"
            else:
                why = _not_found(configs is not None, reevaluating)
            raise ValueError(
                f"candidate {i} of tell() {why}: tell() takes the candidates ask() "
                f"returned ({len(open_rows)} in flight), each once, exactly as returned"
            )
        rows.append(j)
    return rows


def _not_found(space: bool, reevaluating: bool) -> str:
    """Why a told candidate matches none in flight, with the likely cause."""
    changed = "a key added, removed or changed" if space else "cast to float32 and back, rounded"
    why = (
        "matches no candidate ask() handed out: tell() matches candidates by exact value, "
        f"so one changed after ask() ({changed}) is not found"
    )
    if reevaluating:
        why += (
            "; the method's part of this noisy study has ended and its candidates still out "
            "are no longer taken: ask() hands out re-evaluations of the best points"
        )
    return why
