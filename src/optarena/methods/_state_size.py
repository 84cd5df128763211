"""The memory a method's own state takes at a dimension, checked before a run: a full
covariance of 19,329 parameters is 3 GB per matrix, which ``minimize(memory=)`` (a cap on the
evaluation of populations) does not see."""

from __future__ import annotations

import warnings

from ._registry import MethodInfo, method_infos

__all__ = ["WARN_BYTES", "check_state_size"]

#: Above this, a run without ``memory=`` is warned of the state it will allocate.
WARN_BYTES = 1 << 30


def _size(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def check_state_size(info: MethodInfo, label: str, dim: int, cap: int | None) -> None:
    """Refuse a method whose d x d state exceeds ``cap`` (``memory=``), or warn when it takes
    over ``WARN_BYTES`` without a cap; the message names the linear-memory methods."""
    need = info.dense_matrices * dim * dim * 8
    if need == 0 or need <= (WARN_BYTES if cap is None else cap):
        return
    linear = ", ".join(i.name for i in method_infos() if i.linear_memory)
    what = (
        f"method {label!r} keeps {info.dense_matrices} d x d matrices: {_size(need)} at d={dim:,}"
    )
    way = f"the linear-memory methods ({linear}) keep O(popsize x d)"
    if cap is not None:
        raise ValueError(f"{what}, over memory={_size(cap)}; {way}")
    warnings.warn(
        f"{what} (and decomposes one every few generations); {way}", RuntimeWarning, stacklevel=3
    )
