"""Chunk bookkeeping of one batch on workers: the row slices and the state of each one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Chunk", "cancel", "spent_before", "split"]


@dataclass
class Chunk:
    """Rows ``start:stop`` of a batch and the state of their evaluation."""

    start: int
    stop: int
    future: Any = None
    deadline: float | None = None
    attempts: int = 0
    lost: int = 0
    values: np.ndarray | None = None
    mode: str = ""
    raised: tuple[int, np.ndarray, BaseException] | None = None
    fatal: tuple[str, BaseException | None] | None = None
    timed_out: bool = False
    skipped: bool = False

    @property
    def resolved(self) -> bool:
        """True when nothing more is awaited for this chunk."""
        return (
            self.values is not None
            or self.raised is not None
            or self.fatal is not None
            or self.timed_out
            or self.skipped
        )

    def overdue(self, now: float) -> bool:
        """True when the current attempt is past its deadline."""
        return not self.resolved and self.deadline is not None and now >= self.deadline


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``min(parts, n)`` contiguous slices of ``range(n)``, sizes differing by at most one."""
    m = max(1, min(parts, n))
    size, extra = divmod(n, m)
    out, start = [], 0
    for j in range(m):
        stop = start + size + (j < extra)
        out.append((start, stop))
        start = stop
    return out


def spent_before(chunks: list[Chunk], i: int) -> int:
    """Evaluations recorded before chunk ``i``'s next attempt (known so far)."""
    before = sum((c.stop - c.start) * (1 + c.lost) for c in chunks[:i])
    return before + (chunks[i].stop - chunks[i].start) * chunks[i].lost


def cancel(chunks: list[Chunk]) -> None:
    """Cancel the pending attempt of each chunk (its result, if it comes, is not used)."""
    for c in chunks:
        if c.future is not None:
            c.future.cancel()
            c.future = None
