"""Small validators shared by the methods' hyperparameter checks."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["is_number"]


def is_number(v: Any) -> bool:
    """A finite int or float (bools excluded, though Python counts them as ints)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
