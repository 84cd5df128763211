"""What the caller hands an ask/tell Optimizer: told values."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["Told", "parse_values"]


class Told:
    """The objective of an ask/tell run: the values the caller told, in the order the Oracle
    asks for them (it evaluates exactly the rows being told, right after they are queued)."""

    __name__ = "ask_tell"

    def __init__(self) -> None:
        self.queue: deque[float] = deque()

    def __call__(self, x: torch.Tensor) -> float:
        return self.queue.popleft()


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
