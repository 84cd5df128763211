"""Evaluation settings of one run: a memory cap and the dtype populations are evaluated in.

``minimize(memory=..., eval_dtype=...)`` sets them for the duration of the run with
:func:`evaluation`, a context (a ``contextvars`` variable: sub-runs of composites see it, other
threads and runs do not). What reads them:

* :mod:`.batch` sizes the chunks of a population evaluation so that their *estimated*
  working memory stays within half the cap (:func:`eval_rows`): the direct Sequential path
  from its widest pair of activations times the data batch, any other path from the point's
  size (a chunk's input and three temporaries of its size per row, what an elementwise
  expression such as ``(X * X).sum(1)`` holds). The estimate is not a measurement: an
  objective that holds more per row than that can exceed the cap.
* the linear-memory methods (``_linear_cma.py``, ``_nes_blocks.py``) draw, evaluate and
  learn from a generation in chunks whose buffers (samples, candidates, the copy the
  objective receives) take at most the other half, when the whole population would not fit.

``eval_dtype`` hands the candidates to the function in that dtype (a network's forward pass
runs in it: see :mod:`.module_batch`); the method's own state keeps its dtype.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = [
    "EvalSettings",
    "as_eval_dtype",
    "as_memory",
    "current",
    "eval_rows",
    "evaluation",
    "population_rows",
]

_UNITS = {"": 1, "B": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_EVAL_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@dataclass(frozen=True)
class EvalSettings:
    """How populations are evaluated in the current run (None: no cap / the points' dtype)."""

    memory: int | None = None  # bytes
    dtype: torch.dtype | None = None
    # rows evaluated together under these settings (a population or a batch of differences):
    # a run that never evaluated two points at once had nothing for them to act on
    batched_rows: list[int] = field(default_factory=lambda: [0], compare=False, repr=False)

    def saw_batch(self, n: int) -> None:
        """Note that ``n`` rows were evaluated in one batch under these settings."""
        if n > 1:
            self.batched_rows[0] += n


_DEFAULT = EvalSettings()
_SETTINGS: ContextVar[EvalSettings | None] = ContextVar("optarena_eval_settings", default=None)


def current() -> EvalSettings:
    """The evaluation settings in force (the defaults outside a run that set them)."""
    return _SETTINGS.get() or _DEFAULT


@contextlib.contextmanager
def evaluation(
    memory: int | None = None, dtype: torch.dtype | None = None
) -> Iterator[EvalSettings]:
    """Evaluate with at most ``memory`` bytes and in ``dtype`` inside the ``with`` block."""
    settings = EvalSettings(memory, dtype)
    token = _SETTINGS.set(settings)
    try:
        yield settings
    finally:
        _SETTINGS.reset(token)


def as_memory(memory: Any) -> int | None:
    """A memory cap in bytes: an int, or a string such as ``"2GB"``, ``"512 MiB"``, ``"1.5G"``
    (decimal units K, M, G, T; ``KiB``/``MiB``/``GiB``/``TiB`` binary)."""
    if memory is None:
        return None
    if isinstance(memory, bool):
        raise TypeError(f"memory must be a number of bytes or a string like '2GB', got {memory!r}")
    if isinstance(memory, int | float):
        value = float(memory)
    elif isinstance(memory, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(i?)B?\s*", memory, re.IGNORECASE)
        if m is None:
            raise ValueError(
                f"memory={memory!r} is not a size: write bytes as an int or a string like "
                "'2GB', '512MB', '1.5GiB'"
            )
        unit = m.group(2).upper()
        base = 1024 ** "KMGT".index(unit) * 1024 if unit and m.group(3) else _UNITS[unit]
        value = float(m.group(1)) * base
    else:
        raise TypeError(f"memory must be a number of bytes or a string like '2GB', got {memory!r}")
    if not value >= 1 << 20:
        raise ValueError(f"memory={memory!r} is below 1 MiB: give at least '1MiB'")
    return int(value)


def as_eval_dtype(dtype: Any) -> torch.dtype | None:
    """The dtype populations are evaluated in: a floating torch dtype or its name."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name not in _EVAL_DTYPES:
            raise ValueError(f"eval_dtype={dtype!r}: choose one of {', '.join(_EVAL_DTYPES)}")
        return _EVAL_DTYPES[name]
    if isinstance(dtype, torch.dtype) and dtype in _EVAL_DTYPES.values():
        return dtype
    raise ValueError(f"eval_dtype={dtype!r}: choose one of {', '.join(_EVAL_DTYPES)}")


def eval_rows(per_row: float, default: int) -> int:
    """Rows per evaluation chunk: ``default``, lowered so that ``per_row`` bytes a row stay
    within half the current cap (at least one row)."""
    cap = current().memory
    if cap is None:
        return default
    return max(1, min(default, int(cap // 2 // max(per_row, 1.0))))


def population_rows(per_row: float, block: int, total: int) -> int:
    """Rows of a generation a linear-memory method holds at once: ``total`` when they take
    at most half the cap (or there is none), else a multiple of ``block`` that fits (at
    least one block)."""
    cap = current().memory
    if cap is None or per_row * total <= cap // 2:
        return total
    return max(block, int(cap // 2 // max(per_row, 1.0)) // block * block)
