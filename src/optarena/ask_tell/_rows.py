"""The open batch of an ask/tell study: its rows, which were handed out, told or lost."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..core.oracle import Oracle
from ..methods import RunContext
from ..methods._base import Generations, PopulationMethod
from ..space import Space
from ._inputs import match_rows

__all__ = ["OpenBatch"]


class OpenBatch:
    """The rows of the batch being handed out (a generation, or its elite's second
    evaluation): rows ``[0, _next)`` were handed out, each then told, out with the caller, or
    lost (out when the study was saved: nobody holds them after a restore, so ``ask`` hands
    them out again, before any new row). Part of :class:`~optarena.ask_tell.Optimizer`."""

    method: PopulationMethod
    space: Space | None
    _run: Generations
    _ctx: RunContext
    _oracle: Oracle
    _x0: torch.Tensor
    _incremental: bool

    def _reset_rows(self) -> None:
        self._batch: torch.Tensor | None = None  # the rows being handed out
        self._configs: list[dict[str, Any]] = []  # and their configurations (space)
        self._keys: list[tuple[Any, ...]] = []  # the configurations' keys (space)
        self._next = 0  # rows of the batch handed out so far
        self._told_mask: list[bool] = []
        self._lost: list[bool] = []  # handed out before a restore, not handed out again yet
        self._values = torch.empty(0)

    def _rows_out(self) -> int:
        """Rows handed out and not told (lost rows are not out: nobody holds them)."""
        return self._next - sum(self._told_mask) - sum(self._lost)

    def _room(self) -> bool:
        """Whether the budget has an evaluation left beside the candidates in flight."""
        left = self._oracle.remaining_evals()
        return left is None or left - self._rows_out() > 0

    def _open_batch(self) -> torch.Tensor:
        if self._batch is None:
            with torch.no_grad():
                B = self._run.batch()
            self._batch, self._next = B, 0
            self._told_mask = [False] * B.shape[0]
            self._lost = [False] * B.shape[0]
            self._values = torch.full((B.shape[0],), math.inf, dtype=B.dtype, device=B.device)
            self._configs, self._keys = [], []
            self._decode(B)
        return self._batch

    def _lose_rows_out(self) -> None:
        """Mark the rows out as lost (after a restore: they are handed out again)."""
        self._lost = [j < self._next and not t for j, t in enumerate(self._told_mask)]

    def _hand_lost(self, n: int | None) -> list[int]:
        """Up to ``n`` lost rows (None: all), handed out again, within the budget left."""
        rows: list[int] = []
        for j, lost in enumerate(self._lost):
            if (n is not None and len(rows) >= n) or not self._room():
                break
            if lost:
                self._lost[j] = False
                rows.append(j)
        return rows

    def _decode(self, B: torch.Tensor) -> None:
        """The configurations and keys of new rows ``B`` (space)."""
        if self.space is not None:
            for x in B:
                config, key = self.space.encoding.decode_keyed(x)
                self._configs.append(config)
                self._keys.append(key)

    def _extend(self, k: int) -> None:
        """``k`` more rows (fewer at the end of the budget) proposed beside the open ones."""
        left = self._oracle.remaining_evals()
        if left is not None:
            k = min(k, left - self._rows_out())
        B = self._batch
        assert B is not None
        pending = B[[j for j, t in enumerate(self._told_mask) if not t]]
        with torch.no_grad():
            more = self.method.ask_more(self._run.state, self._ctx, pending, k)
        self._batch = self._run.X = torch.cat([B, more])
        self._told_mask += [False] * k
        self._lost += [False] * k
        self._values = torch.cat([self._values, torch.full_like(more[:, 0], math.inf)])
        self._decode(more)

    def _mark_told(self, rows: list[int], ranked: list[float]) -> None:
        for j, r in zip(rows, ranked, strict=True):
            self._values[j] = r
            self._told_mask[j] = True
            self._lost[j] = False

    def _take_told(self) -> bool:
        """Tell the method the rows told so far (``ask_more`` methods); the others stay open.
        Returns whether the method was told (``Generations.take``)."""
        B, mask = self._batch, self._told_mask
        assert B is not None
        told = [j for j, t in enumerate(mask) if t]
        rest = [j for j, t in enumerate(mask) if not t]
        run = self._run
        run.X = B[told]
        with torch.no_grad():
            taken = run.take(self._values[told])
        if not rest:
            self._batch = None
            return taken
        self._batch = run.X = B[rest]
        self._next = sum(j < self._next for j in rest)  # the open rows handed out come first
        self._told_mask = [False] * len(rest)
        self._lost = [self._lost[j] for j in rest]
        self._values = self._values[rest]
        if self.space is not None:
            self._configs = [self._configs[j] for j in rest]
            self._keys = [self._keys[j] for j in rest]
        return taken

    def _empty(self) -> torch.Tensor | list[dict[str, Any]]:
        """No candidates (all out, some not told; or the clock is spent with some out)."""
        if self.space is not None:
            return []
        return self._x0.new_empty((0, self._x0.numel()))

    def _match(self, candidates: Any) -> list[int]:
        """The rows of the current batch the candidates are (handed out, not told yet; a
        row lost in a restore is taken too: its value may have been kept)."""
        open_rows = [j for j in range(self._next) if not self._told_mask[j]]
        configs = None if self.space is None else self._configs
        return match_rows(candidates, self._batch, configs, open_rows, self._next, self._x0)
